'use strict'

// How the nsqadmin web UI copes with a large cluster: `fake_cluster` (crates/nsq-bench) serves
// N nsqd (default 10 x 1,000 topics x 5 channels x 1 client) and one nsqlookupd, nsqadmin is
// pointed at that lookupd, and headless Chromium opens every page of the UI and measures:
//
//   render    navigation to the page's data painted (ms), with the API calls' share
//   refresh   each automatic refresh (every history interval; 2 s on the counter page): the
//             refresh's wall time and the main thread's long tasks (> 50 ms) during it
//   input     the delay of key presses sent every 50 ms while the page refreshes (the time from
//             the browser receiving a key to the page's handler running it)
//   filter    on the topics list, typing into the filter box: the delay of each key and the
//             time from each key to the next paint (Event Timing)
//
// It is a measuring tool, not a test: it prints a table (and writes scale.json) and exits 0.
//
//   cargo build --release -p nsq-bench -p nsqadmin
//   node crates/nsqadmin/tests/browser/scale.js
//
// Environment:
//   FAKE_CLUSTER_BIN, NSQADMIN_BIN   binaries (default target/release/<name>)
//   CHROMIUM_BIN                      browser (default /usr/bin/chromium)
//   SCALE_NODES, SCALE_TOPICS, SCALE_CHANNELS, SCALE_CLIENTS   cluster size (10, 1000, 5, 1)
//   SCALE_PAGES        which pages, e.g. "topics node" (default: all)
//   SCALE_LOADS        times each page is opened for the render figures (default 3; the median
//                      is reported, and the slowest)
//   SCALE_REFRESHES    automatic refreshes observed per page (default 3)
//   SCALE_STATIC_DIR   serve the UI from this folder (nsqadmin --dev-static-dir), e.g. to try
//                      an edited crates/nsqadmin/assets/static without rebuilding
//   SCALE_ADMIN_ARGS   more nsqadmin flags (space separated)
//   SCALE_LABEL        a name for this run in scale.json (default "run")
//   BROWSER_ARTIFACTS  screenshots and scale.json (default target/browser-artifacts)

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const {Daemon, REPO_ROOT, sleep, waitFor} = require('./cluster')
const {ARTIFACTS, DESKTOP, launch, openPage} = require('./browser')

const env = (name, fallback) => process.env[name] || fallback
const bin = (name, fallback) => {
  const b = env(name, path.join('target', 'release', fallback))
  return path.isAbsolute(b) ? b : path.join(REPO_ROOT, b)
}

const SHAPE = {
  nodes: Number(env('SCALE_NODES', 10)),
  topics: Number(env('SCALE_TOPICS', 1000)),
  channels: Number(env('SCALE_CHANNELS', 5)),
  clients: Number(env('SCALE_CLIENTS', 1)),
}
const REFRESHES = Number(env('SCALE_REFRESHES', 3))
const LOADS = Math.max(1, Number(env('SCALE_LOADS', 3)))
const LABEL = env('SCALE_LABEL', 'run')
const SHOT_MAX_HEIGHT = 2400

// ---- the fake cluster and nsqadmin ----

function startFakeCluster() {
  const args = ['--nodes', SHAPE.nodes, '--topics', SHAPE.topics, '--channels', SHAPE.channels, '--clients', SHAPE.clients].map(String)
  const proc = spawn(bin('FAKE_CLUSTER_BIN', 'fake_cluster'), args, {stdio: ['ignore', 'pipe', 'pipe']})
  let log = ''
  proc.stderr.on('data', (d) => {
    log += d
  })
  return new Promise((resolve, reject) => {
    const found = {lookupd: null, nodes: []}
    let pending = ''
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`fake_cluster did not get ready; stderr:\n${log}`))
    }, 120000)
    proc.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot start fake_cluster (build it with cargo build --release -p nsq-bench, or set FAKE_CLUSTER_BIN): ${err.message}`))
    })
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`fake_cluster exited (${code}); stderr:\n${log}`))
    })
    proc.stdout.on('data', (chunk) => {
      pending += chunk
      let nl
      while ((nl = pending.indexOf('\n')) !== -1) {
        const [what, addr] = pending.slice(0, nl).trim().split(/\s+/)
        pending = pending.slice(nl + 1)
        if (what === 'lookupd-http') found.lookupd = addr
        if (what === 'nsqd-http') found.nodes.push(addr)
        if (what === 'ready') {
          clearTimeout(timer)
          resolve({...found, proc, stop: () => stopProc(proc)})
        }
      }
    })
  })
}

function stopProc(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    proc.once('exit', resolve)
    proc.kill('SIGTERM')
    setTimeout(() => proc.kill('SIGKILL'), 5000).unref()
  })
}

async function getJSON(url) {
  const res = await fetch(url, {headers: {Accept: 'application/vnd.nsq; version=1.0'}})
  if (!res.ok) throw new Error(`${url}: ${res.status}`)
  return res.json()
}

// ---- in-page instruments, installed before the app's scripts run ----

function instruments() {
  const m = (window.__scale = {longtasks: [], keys: [], events: [], refreshes: []})
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) m.longtasks.push({start: e.startTime, duration: e.duration})
    }).observe({type: 'longtask', buffered: true})
  } catch (err) { /* not supported */ }
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        m.events.push({type: e.name, start: e.startTime, delay: e.processingStart - e.startTime, duration: e.duration})
      }
    }).observe({type: 'event', buffered: true, durationThreshold: 16})
  } catch (err) { /* not supported */ }
  // Input delay of every key press: from the browser receiving it to the first handler.
  window.addEventListener('keydown', (ev) => {
    m.keys.push({at: ev.timeStamp, delay: performance.now() - ev.timeStamp})
  }, true)
  // A refresh starts when the spinner appears in the top bar and ends when the page is redrawn
  // (the spinner goes in the same task), measured to the next frame.
  const watch = () => {
    const tools = document.getElementById('tools')
    if (!tools) return setTimeout(watch, 5)
    let open = tools.querySelector('.spinner') ? {start: performance.now()} : null
    new MutationObserver(() => {
      const spinning = Boolean(tools.querySelector('.spinner'))
      if (spinning && !open) {
        open = {start: performance.now()}
      } else if (!spinning && open) {
        const r = open
        open = null
        r.drawn = performance.now()
        requestAnimationFrame(() => setTimeout(() => {
          r.end = performance.now()
          m.refreshes.push(r)
        }, 0))
      }
    }).observe(tools, {childList: true, subtree: true})
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch)
  else watch()
}

// ---- statistics ----

const round = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x))
const max = (xs) => (xs.length ? Math.max(...xs) : 0)
const sum = (xs) => xs.reduce((a, b) => a + b, 0)
function pct(xs, p) {
  if (!xs.length) return 0
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}
const median = (xs) => pct(xs, 50)

function tasksIn(longtasks, from, to) {
  return longtasks.filter((t) => t.start < to && t.start + t.duration > from)
}

// ---- one page ----

// Keeps pressing Shift (which does nothing) every 50 ms until stop() is called.
function pressKeys(page) {
  let running = true
  let sent = 0
  const done = (async () => {
    while (running) {
      await page.keyboard.press('Shift').catch(() => {})
      sent++
      await sleep(50)
    }
  })()
  return {stop: async () => {
    running = false
    await done
    return sent
  }}
}

// Opens the page afresh and measures its first render.
async function loadOnce(page, url, spec) {
  // Initial render: navigation start to the first frame after the data is drawn.
  await page.goto(url, {waitUntil: 'commit'})
  await page.waitForFunction(() => document.querySelector('main .page') && !document.querySelector('main .loading') &&
    !document.querySelector('#tools .spinner') && !/Updated –/.test(document.getElementById('tools').textContent),
  null, {polling: 'raf', timeout: 120000})
  const first = await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => {
    const api = performance.getEntriesByType('resource').filter((e) => /\/api\//.test(e.name))
    resolve({
      at: performance.now(),
      api: api.map((e) => ({name: e.name.replace(/^https?:\/\/[^/]+/, ''), start: e.startTime, end: e.responseEnd, bytes: e.encodedBodySize})),
      nodes: document.getElementsByTagName('*').length,
      rows: document.querySelectorAll('main tr').length,
      height: document.documentElement.scrollHeight,
    })
  }, 0))))
  const {longtasks: lt, refreshes: loads} = await page.evaluate(() => window.__scale)
  // The page's own API calls are the ones answered before its data was drawn (the topics
  // list asks for sparkline histories afterwards).
  const drawn = loads.length ? loads[0].drawn : first.at
  const painted = loads.length && loads[0].end ? loads[0].end : first.at
  const apiEnd = max(first.api.filter((a) => a.end <= drawn).map((a) => a.end))
  const render = {
    // The first frame after the data was drawn.
    ms: round(painted),
    drawnMs: round(drawn),
    observedMs: round(first.at),
    // When the last of the page's API answers was in (from navigation start: includes loading
    // the HTML and scripts), and what came after it (parsing the answer, building the page).
    apiMs: round(apiEnd),
    afterApiMs: round(painted - apiEnd),
    maxTaskMs: round(max(tasksIn(lt, 0, first.at).map((t) => t.duration))),
    domElements: first.nodes,
    tableRows: first.rows,
    pageHeight: first.height,
    apiCalls: first.api.length,
    apiKiB: round(sum(first.api.map((a) => a.bytes)) / 1024),
  }
  // Parts drawn after the data (the topics list's sparklines): until the last is in.
  if (spec.later) {
    await page.waitForFunction((sel) => !document.querySelector(sel), spec.later, {polling: 'raf', timeout: 60000})
    render.completeMs = round(await page.evaluate(() => performance.now()))
  }
  return render
}

async function measure(browser, base, spec) {
  const page = await openPage(browser, {viewport: DESKTOP})
  page.setDefaultTimeout(120000)
  await page.addInitScript(instruments)
  const out = {page: spec.name, path: spec.path}
  try {
    const loads = []
    for (let i = 0; i < LOADS; i++) loads.push(await loadOnce(page, base + spec.path, spec))
    // The load with the median time stands for the page; the slowest is kept too.
    out.render = {...loads.slice().sort((a, b) => a.ms - b.ms)[Math.floor((loads.length - 1) / 2)], slowestMs: max(loads.map((l) => l.ms))}
    out.loads = loads
    const first = {height: loads[loads.length - 1].pageHeight}

    // Screenshot: the top of the page (up to SHOT_MAX_HEIGHT px of it).
    fs.mkdirSync(ARTIFACTS, {recursive: true})
    const shotFile = path.join(ARTIFACTS, `scale-${spec.name}.png`)
    // (A taller viewport rather than a full-page shot: that lays out the whole page again at once.)
    const t0 = Date.now()
    try {
      await page.setViewportSize({width: DESKTOP.width, height: Math.min(first.height, SHOT_MAX_HEIGHT)})
      await page.screenshot({path: shotFile, timeout: 60000})
      out.screenshot = path.relative(REPO_ROOT, shotFile)
    } catch (err) {
      out.screenshot = `failed: ${err.message.split('\n')[0]}`
    }
    out.screenshotMs = Date.now() - t0
    await page.setViewportSize(DESKTOP)

    // Automatic refreshes, with key presses going on all the time.
    const since = await page.evaluate(() => performance.now())
    const keys = pressKeys(page)
    const seen = () => page.evaluate((t) => window.__scale.refreshes.filter((r) => r.start >= t).length, since)
    let sent
    try {
      await waitFor(`${REFRESHES} automatic refreshes of ${spec.name}`, async () => (await seen()) >= REFRESHES, 60000 + REFRESHES * 120000, 200)
    } finally {
      sent = await keys.stop()
    }
    const until = await page.evaluate(() => performance.now())
    const m = await page.evaluate(() => window.__scale)
    const refreshes = m.refreshes.filter((r) => r.start >= since).slice(0, REFRESHES).map((r) => {
      const tasks = tasksIn(m.longtasks, r.start, r.end)
      return {
        wallMs: round(r.end - r.start),
        maxTaskMs: round(max(tasks.map((t) => t.duration))),
        busyMs: round(sum(tasks.map((t) => t.duration))),
      }
    })
    const keyDelays = m.keys.filter((k) => k.at >= since).map((k) => k.delay)
    out.refresh = {
      count: refreshes.length,
      each: refreshes,
      medianWallMs: round(median(refreshes.map((r) => r.wallMs))),
      maxTaskMs: round(max(refreshes.map((r) => r.maxTaskMs))),
      medianBusyMs: round(median(refreshes.map((r) => r.busyMs))),
    }
    // Everything in the observed period, including work that follows a refresh (sparklines).
    const period = tasksIn(m.longtasks, since, until)
    out.period = {
      seconds: round((until - since) / 1000),
      longTasks: period.length,
      maxTaskMs: round(max(period.map((t) => t.duration))),
      busyPct: Math.round((1000 * sum(period.map((t) => t.duration))) / (until - since)) / 10,
    }
    out.input = {keys: sent, measured: keyDelays.length, p50Ms: round(median(keyDelays)), p95Ms: round(pct(keyDelays, 95)), maxMs: round(max(keyDelays))}

    if (spec.filter) out.filter = await typeFilter(page, spec.filter)
    out.errors = [...page.pageErrors, ...page.consoleErrors]
  } finally {
    await page.closeAll()
  }
  return out
}

// Types into the page's filter box, one key every 100 ms, through one automatic refresh.
async function typeFilter(page, {selector, text}) {
  await page.focus(selector)
  const since = await page.evaluate(() => performance.now())
  const refreshed = () => page.evaluate((t) => window.__scale.refreshes.some((r) => r.start >= t), since)
  let typed = 0
  const deadline = Date.now() + 40000
  while (Date.now() < deadline) {
    // Type the text, then delete it, again and again.
    for (const ch of text) {
      await page.keyboard.press(ch)
      typed++
      await sleep(100)
    }
    for (let i = 0; i < text.length; i++) {
      await page.keyboard.press('Backspace')
      typed++
      await sleep(100)
    }
    if (await refreshed()) break
  }
  await sleep(300)
  const m = await page.evaluate(() => window.__scale)
  const delays = m.keys.filter((k) => k.at >= since).map((k) => k.delay)
  // Event Timing: key press to the next paint (entries under 16 ms are not reported).
  const events = m.events.filter((e) => e.start >= since && (e.type === 'keydown' || e.type === 'input'))
  return {
    keys: typed,
    refreshedMeanwhile: await refreshed(),
    p50DelayMs: round(median(delays)),
    p95DelayMs: round(pct(delays, 95)),
    maxDelayMs: round(max(delays)),
    p95ToPaintMs: round(pct(events.filter((e) => e.type === 'keydown').map((e) => e.duration), 95)),
    maxToPaintMs: round(max(events.map((e) => e.duration))),
  }
}

// ---- the run ----

function report(results) {
  const rows = [['page', 'render ms', 'slowest', 'api ms', 'max task', 'elements', 'refresh ms', 'refresh max task', 'refresh busy', 'period max task', 'input p95', 'input max']]
  for (const r of results) {
    if (r.error) {
      rows.push([r.page, `error: ${r.error}`])
      continue
    }
    rows.push([r.page, r.render.ms, r.render.slowestMs, r.render.apiMs, r.render.maxTaskMs, r.render.domElements,
      r.refresh.medianWallMs, r.refresh.maxTaskMs, r.refresh.medianBusyMs, r.period.maxTaskMs, r.input.p95Ms, r.input.maxMs].map(String))
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)))
  for (const r of rows) console.log(r.map((c, i) => String(c ?? '').padStart(i ? widths[i] : 0).padEnd(i ? 0 : widths[i])).join('  '))
  for (const r of results) {
    if (r.filter) {
      const f = r.filter
      console.log(`${r.page} filter: ${f.keys} keys, delay p50 ${f.p50DelayMs} / p95 ${f.p95DelayMs} / max ${f.maxDelayMs} ms, ` +
        `key to paint p95 ${f.p95ToPaintMs} / max ${f.maxToPaintMs} ms${f.refreshedMeanwhile ? ' (a refresh happened meanwhile)' : ''}`)
    }
    if (r.errors && r.errors.length) console.log(`${r.page}: page errors: ${r.errors.join('; ')}`)
  }
}

async function main() {
  const started = Date.now()
  const cluster = await startFakeCluster()
  let admin
  let browser
  const results = []
  try {
    const extra = (process.env.SCALE_ADMIN_ARGS || '').split(/\s+/).filter(Boolean)
    if (process.env.SCALE_STATIC_DIR) extra.push(`--dev-static-dir=${path.resolve(process.env.SCALE_STATIC_DIR)}`)
    admin = await new Daemon('nsqadmin', bin('NSQADMIN_BIN', 'nsqadmin'),
      ['--http-address=127.0.0.1:0', `--lookupd-http-address=${cluster.lookupd}`, ...extra], ['HTTP']).start()
    const base = `http://${admin.http}/`
    console.log(`fake cluster: ${SHAPE.nodes} nsqd x ${SHAPE.topics} topics x ${SHAPE.channels} channels x ${SHAPE.clients} clients; nsqadmin at ${base}`)

    const nodes = (await getJSON(`${base}api/nodes`)).nodes || []
    const node = nodes.length ? `${nodes[0].broadcast_address}:${nodes[0].http_port}` : cluster.nodes[0]
    const enc = encodeURIComponent
    const PAGES = [
      {name: 'topics', path: 'topics', filter: {selector: '#topic-filter', text: 't99'}, later: 'main [title="loading history"]'},
      {name: 'topic', path: 'topics/t0'},
      {name: 'channel', path: 'topics/t0/c0'},
      {name: 'nodes', path: 'nodes'},
      {name: 'node', path: `nodes/${enc(node)}`},
      {name: 'counter', path: 'counter'},
      {name: 'lookup', path: 'lookup'},
    ]
    const wanted = (process.env.SCALE_PAGES || '').split(/\s+/).filter(Boolean)
    const pages = wanted.length ? PAGES.filter((p) => wanted.includes(p.name)) : PAGES

    // Let nsqadmin take two history samples first, so the topics list has its sparklines.
    const cfg = (await (await fetch(base)).text()).match(/"history_interval":\s*(\d+)/)
    if (cfg && Number(cfg[1]) > 0) {
      await waitFor('two history samples', async () =>
        ((await getJSON(`${base}api/history/topics/t0`)).samples || []).length >= 2, Number(cfg[1]) * 4000, 500)
    }

    browser = await launch()
    for (const spec of pages) {
      process.stderr.write(`measuring ${spec.name}…\n`)
      try {
        results.push(await measure(browser, base, spec))
      } catch (err) {
        results.push({page: spec.name, path: spec.path, error: err.message.split('\n')[0]})
      }
    }
  } finally {
    if (browser) await browser.close()
    if (admin) await admin.stop()
    await cluster.stop()
  }
  report(results)
  fs.mkdirSync(ARTIFACTS, {recursive: true})
  const file = path.join(ARTIFACTS, 'scale.json')
  let all = {}
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) { /* first run */ }
  all[LABEL] = {shape: SHAPE, at: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), results}
  fs.writeFileSync(file, JSON.stringify(all, null, 2) + '\n')
  console.log(`details in ${path.relative(process.cwd(), file)} ("${LABEL}"), screenshots in ${path.relative(process.cwd(), ARTIFACTS)}/scale-*.png`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
