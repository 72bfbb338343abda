'use strict'

// The nsqadmin web UI in a real headless Chromium, against a real cluster:
// nsqlookupd, two nsqd and nsqadmin, started from the built binaries.

const assert = require('node:assert/strict')
const {after, before, describe, test} = require('node:test')

const {channelStats, http, nsqadmin, nsqd, nsqdStats, nsqlookupd, ok, topicStats, waitFor} = require('./cluster')
const {consume} = require('./consumer')
const {DESKTOP, PHONE, columnIndex, digits, launch, openPage, pageWait, rowCells, settled, shot} = require('./browser')

const enc = encodeURIComponent
const CHANNELS = 'section[data-key="sec-channels"]'
const NODES = 'section[data-key="sec-nodes"]'
const CLIENTS = 'section[data-key="sec-clients"]'

const cluster = {}
let browser
const pages = []

async function pub(node, topic, count, prefix = 'msg') {
  const body = Array.from({length: count}, (_, i) => `${prefix}-${i}`).join('\n')
  await ok('POST', `http://${node.http}/mpub?topic=${enc(topic)}`, body)
}

async function page(opts) {
  const p = await openPage(browser, opts)
  pages.push(p)
  return p
}

function ui(path = '', admin = cluster.admin, base = '/') {
  return `http://${admin.http}${base}${path}`
}

async function lookupdTopics() {
  const res = await ok('GET', `http://${cluster.lookupd.http}/topics`)
  const data = res.json.data || res.json
  return data.topics || []
}

async function lookupdChannels(topic) {
  const res = await http('GET', `http://${cluster.lookupd.http}/channels?topic=${enc(topic)}`)
  if (res.status !== 200) return []
  const data = res.json.data || res.json
  return data.channels || []
}

async function lookupdProducers(topic) {
  const res = await http('GET', `http://${cluster.lookupd.http}/lookup?topic=${enc(topic)}`)
  if (res.status !== 200) return []
  const data = res.json.data || res.json
  return data.producers || []
}

// Click an action button, confirm in the dialog, wait for the dialog to go.
async function confirmAction(p, action) {
  await p.click(`button[data-action="${action}"]`)
  await p.waitForSelector('dialog[open]')
  await p.click('dialog[open] [data-dialog="confirm"]')
  await p.waitForSelector('dialog', {state: 'detached'})
}

before(async () => {
  const started = Date.now()
  cluster.lookupd = await nsqlookupd().start()
  cluster.a = nsqd('nsqd-a', cluster.lookupd)
  cluster.b = nsqd('nsqd-b', cluster.lookupd)
  await Promise.all([cluster.a.start(), cluster.b.start()])
  cluster.admin = await nsqadmin('nsqadmin', cluster.lookupd).start()
  // Read-only unless X-Forwarded-User: alice, served under /admin/.
  cluster.acl = await nsqadmin('nsqadmin-acl', cluster.lookupd, ['--admin-user=alice', '--base-path=/admin']).start()
  // A second, unreachable lookupd: every answer is partial. Graphite configured (and unreachable).
  cluster.partial = await nsqadmin('nsqadmin-partial', cluster.lookupd,
    ['--lookupd-http-address=127.0.0.1:1', '--graphite-url=http://127.0.0.1:1', '--statsd-interval=10s']).start()
  const {a, b} = cluster
  // No lookupd, a fixed list of nsqd, and no history.
  cluster.direct = await nsqadmin('nsqadmin-direct', null,
    [`--nsqd-http-address=${a.http}`, `--nsqd-http-address=${b.http}`, '--history-interval=0']).start()

  // orders: on both nodes; archive on both (a consumer holds 3 in flight on a),
  // billing paused on a, an ephemeral channel with a consumer that finishes everything.
  for (const n of [a, b]) {
    await ok('POST', `http://${n.http}/topic/create?topic=orders`)
    await ok('POST', `http://${n.http}/channel/create?topic=orders&channel=archive`)
  }
  await ok('POST', `http://${a.http}/channel/create?topic=orders&channel=billing`)
  await ok('POST', `http://${a.http}/channel/pause?topic=orders&channel=billing`)
  cluster.holder = await consume({address: a.tcp, topic: 'orders', channel: 'archive', clientId: 'holder', rdy: 3})
  cluster.live = await consume({address: a.tcp, topic: 'orders', channel: 'live#ephemeral', clientId: 'tailer', rdy: 100, finish: true})
  await pub(a, 'orders', 20)
  await pub(b, 'orders', 10)

  // payments: only on b, one channel.
  await ok('POST', `http://${b.http}/topic/create?topic=payments`)
  await ok('POST', `http://${b.http}/channel/create?topic=payments&channel=ledger`)
  await pub(b, 'payments', 5)
  // Topics for the destructive actions.
  await pub(b, 'backlog', 7)
  await pub(a, 'doomed', 3)
  await pub(a, 'spread', 2)
  await pub(b, 'spread', 2)
  for (const n of [a, b]) await ok('POST', `http://${n.http}/channel/create?topic=orders&channel=trash`)

  // planned: known to nsqlookupd only (no nsqd carries it), with a channel.
  await ok('POST', `http://${cluster.lookupd.http}/topic/create?topic=planned`)
  await ok('POST', `http://${cluster.lookupd.http}/channel/create?topic=planned&channel=later`)

  // stream: steady traffic on b for the whole run, so charts and the counter move.
  // work is consumed (and finished) as it arrives; audit has no consumer and grows.
  await ok('POST', `http://${b.http}/topic/create?topic=stream`)
  for (const ch of ['work', 'audit']) await ok('POST', `http://${b.http}/channel/create?topic=stream&channel=${ch}`)
  cluster.worker = await consume({address: b.tcp, topic: 'stream', channel: 'work', clientId: 'worker', rdy: 20, finish: true})
  let tick = 0
  cluster.ticker = setInterval(() => {
    tick++
    const n = 2 + Math.round(2 * Math.sin(tick / 8))
    pub(b, 'stream', n, `t${tick}`).catch(() => {})
  }, 100)

  await waitFor('the consumer to hold 3 messages in flight', async () => {
    const c = await channelStats(a, 'orders', 'archive')
    return c && c.in_flight_count === 3 && c.depth === 17
  })
  await waitFor('the ephemeral consumer to finish 20 messages', () => cluster.live.messages.length === 20)
  await waitFor('nsqlookupd to know every topic on both nodes', async () => {
    const topics = await lookupdTopics()
    const producers = await lookupdProducers('orders')
    return ['orders', 'payments', 'backlog', 'doomed', 'spread'].every((t) => topics.includes(t)) && producers.length === 2
  })
  await waitFor('nsqadmin history to have samples of orders', async () => {
    const res = await ok('GET', `http://${cluster.admin.http}/api/history/topics/orders`)
    return (res.json.samples || []).length >= 3
  }, 20000)
  browser = await launch()
  console.log(`cluster and browser up in ${Date.now() - started} ms`)
})

after(async () => {
  clearInterval(cluster.ticker)
  for (const p of pages) await p.closeAll().catch(() => {})
  if (browser) await browser.close()
  for (const c of [cluster.holder, cluster.live, cluster.worker]) if (c) c.close()
  for (const d of [cluster.direct, cluster.partial, cluster.acl, cluster.admin, cluster.a, cluster.b, cluster.lookupd]) if (d) await d.stop()
})

describe('pages', () => {
  test('topics list shows every topic, links to it and filters', async () => {
    const p = await page()
    await p.goto(ui())
    await settled(p)
    await p.waitForSelector('a.topic-link >> text=orders')
    const names = await p.$$eval('a.topic-link', (as) => as.map((a) => a.textContent))
    for (const t of ['orders', 'payments', 'backlog', 'doomed', 'spread']) assert.ok(names.includes(t), `${t} in ${names}`)
    assert.equal(await p.getAttribute('a.topic-link >> text=orders', 'href'), '/topics/orders')
    assert.equal(await p.getAttribute('.mainnav a[aria-current="page"]', 'data-nav'), 'topics')

    await p.fill('#topic-filter', 'pay')
    await pageWait(p, 'the filter to apply', () => document.querySelectorAll('a.topic-link').length === 1)
    assert.equal(await p.textContent('a.topic-link'), 'payments')
    await p.fill('#topic-filter', '')

    await p.click('a.topic-link >> text=orders')
    await p.waitForURL(/\/topics\/orders$/)
    await p.waitForSelector(`${CHANNELS} a.channel-link`)
    assert.equal(await p.textContent('h1.page-title'), 'orders')
  })

  test('topic page shows both nodes and the real channel depths', async () => {
    const {a, b} = cluster
    const p = await page()
    await p.goto(ui('topics/orders'))
    await settled(p)
    const rowA = await rowCells(p, NODES, a.http)
    const rowB = await rowCells(p, NODES, b.http)
    assert.ok(rowA && rowB, 'a row per node')
    const depthCol = await columnIndex(p, NODES, 'Depth')
    const msgCol = await columnIndex(p, NODES, 'Messages')
    const ta = await topicStats(a, 'orders')
    const tb = await topicStats(b, 'orders')
    assert.equal(digits(rowA[depthCol]), ta.depth)
    assert.equal(digits(rowA[msgCol]), ta.message_count)
    assert.equal(digits(rowB[msgCol]), tb.message_count)

    const archiveA = await channelStats(a, 'orders', 'archive')
    const archiveB = await channelStats(b, 'orders', 'archive')
    const archive = await rowCells(p, CHANNELS, 'archive')
    assert.equal(digits(archive[await columnIndex(p, CHANNELS, 'Depth')]), archiveA.depth + archiveB.depth)
    assert.equal(digits(archive[await columnIndex(p, CHANNELS, 'In flight')]), 3)
    assert.equal(digits(archive[await columnIndex(p, CHANNELS, 'Clients')]), 1)
    const billing = await rowCells(p, CHANNELS, 'billing')
    assert.equal(digits(billing[await columnIndex(p, CHANNELS, 'Depth')]), 20)
    assert.match(billing[await columnIndex(p, CHANNELS, 'State')], /paused/)
    const live = await rowCells(p, CHANNELS, 'live#ephemeral')
    assert.ok(live, 'the ephemeral channel is listed')
    assert.match(live[0], /ephemeral/)
    assert.equal(await p.getAttribute(`${CHANNELS} a.channel-link >> text=live#ephemeral`, 'href'), '/topics/orders/live%23ephemeral')
    assert.ok(await p.$('section[data-key="sec-end-to-end-latency"]'), 'e2e percentiles shown')
  })

  test('channel page lists the connected consumer', async () => {
    const p = await page()
    await p.goto(ui('topics/orders/archive'))
    await settled(p)
    await p.waitForSelector(`${CLIENTS} tbody tr[data-row]`)
    const text = await p.textContent(CLIENTS)
    assert.match(text, /holder/)
    assert.match(text, /nsqadmin-browser-test\/1\.0/)
    const key = await p.getAttribute(`${CLIENTS} tbody tr[data-row]`, 'data-row')
    const cells = await rowCells(p, CLIENTS, key)
    assert.equal(digits(cells[await columnIndex(p, CLIENTS, 'In flight')]), 3)
    assert.equal(digits(cells[await columnIndex(p, CLIENTS, 'RDY')]), 3)
    assert.equal(cells[await columnIndex(p, CLIENTS, 'Node')], cluster.a.http)
    assert.match(cells[await columnIndex(p, CLIENTS, 'Connected')], /^\d+[smhd]/)
    assert.equal(digits(await p.textContent('[data-stat="in-flight"] .stat-value')), 3)
    assert.ok(await rowCells(p, NODES, cluster.a.http))
    assert.ok(await rowCells(p, NODES, cluster.b.http))
  })

  test('an unknown topic shows the server error, and a retry', async () => {
    const p = await page()
    await p.goto(ui('topics/no-such-topic'))
    await p.waitForSelector('.banner-error')
    assert.match(await p.textContent('.banner-error'), /\S/)
    assert.ok(await p.$('main button >> text=Try again'))
    assert.equal(await p.textContent('#version'), 'v1.3.0')
  })

  test('unknown channel gives an empty state, not an error', async () => {
    const p = await page()
    await p.goto(ui('topics/orders/no-such-channel'))
    await p.waitForSelector('.empty')
    assert.match(await p.textContent('.empty'), /No node reports a channel/)
  })

  test('nodes page shows both nsqd', async () => {
    const p = await page()
    await p.goto(ui('nodes'))
    await settled(p)
    for (const n of [cluster.a, cluster.b]) {
      const cells = await rowCells(p, 'main', n.http)
      assert.ok(cells, `row for ${n.http}`)
      const [, port] = n.http.split(':')
      const [, tcpPort] = n.tcp.split(':')
      assert.equal(digits(cells[2]), Number(tcpPort))
      assert.equal(digits(cells[3]), Number(port))
      assert.match(cells[4], /v\d+\.\d+\.\d+/)
    }
    assert.equal(await p.$('.row-warn'), null, 'no node is flagged')
    await p.click(`tr[data-row="${cluster.b.http}"] a.node-link`)
    await p.waitForURL((url) => decodeURIComponent(url.pathname) === `/nodes/${cluster.b.http}`)
    await p.waitForSelector('.topic-card[data-topic="payments"]')
  })

  test('node page shows its topics, channels, clients and totals', async () => {
    const p = await page()
    await p.goto(ui(`nodes/${enc(cluster.a.http)}`))
    await settled(p)
    await p.waitForSelector('.topic-card[data-topic="orders"]')
    assert.equal(await p.$('.topic-card[data-topic="payments"]'), null, 'payments lives on the other node')
    const card = '.topic-card[data-topic="orders"]'
    for (const ch of ['archive', 'billing', 'live#ephemeral', 'trash']) {
      assert.ok(await rowCells(p, card, ch), `channel ${ch}`)
    }
    assert.equal(digits(await p.textContent('[data-stat="total-clients"] .stat-value')), 2)
    const stats = await (await ok('GET', `http://${cluster.a.http}/stats?format=json`)).json
    const topics = (stats.data || stats).topics
    const total = topics.reduce((n, t) => n + t.message_count, 0)
    assert.equal(digits(await p.textContent('[data-stat="total-messages"] .stat-value')), total)
    await p.click(`${card} details.clients-details summary >> text=archive`)
    await p.waitForSelector(`${card} details[open] .table-clients`)
    assert.match(await p.textContent(`${card} details[open]`), /holder/)
  })

  test('counter page shows the messages processed', async () => {
    const p = await page()
    await p.goto(ui('counter'))
    await p.waitForSelector('#counter-total')
    const value = Number(await p.getAttribute('#counter-total', 'data-value'))
    assert.ok(value >= 20, `counter ${value}`)
    assert.equal(digits(await p.textContent('#counter-total')), value)
    await pageWait(p, 'a measured rate', () => /msg\/s/.test(document.querySelector('#counter-rate').textContent))
  })

  test('history charts draw lines once samples exist', async () => {
    const p = await page()
    await p.goto(ui('topics/orders'))
    await settled(p)
    for (const id of ['depth', 'in-flight', 'clients']) {
      await pageWait(p, `the ${id} chart to have a line`, (chart) => {
        const path = document.querySelector(`figure[data-chart="${chart}"] path.line`)
        return path && Number(path.dataset.points) >= 2 && (path.getAttribute('d').match(/L/g) || []).length >= 1
      }, id)
    }
    // The in-flight chart's latest value is the 3 messages the consumer holds.
    assert.match(await p.textContent('figure[data-chart="in-flight"] .legend'), /in flight\s*3/)
    await p.goto(ui('topics/orders/archive'))
    await settled(p)
    await pageWait(p, 'the channel depth chart', () => {
      const path = document.querySelector('figure[data-chart="depth"] path.line')
      return path && Number(path.dataset.points) >= 2
    })
  })

  test('lookup page lists lookupd and creates topics and channels', async () => {
    const p = await page()
    await p.goto(ui('lookup'))
    await settled(p)
    assert.match(await p.textContent('.lookupd-list'), new RegExp(cluster.lookupd.http.replace(/\./g, '\\.')))

    // An invalid name is refused in the browser, without a request.
    await p.fill('#create-topic', 'not a topic!')
    await p.click('#create-submit')
    assert.equal(await p.$eval('#create-topic', (el) => el.validity.valid), false)

    await p.fill('#create-topic', 'fresh-topic')
    await p.click('#create-submit')
    await waitFor('nsqlookupd to have fresh-topic', async () => (await lookupdTopics()).includes('fresh-topic'))
    await p.waitForSelector('li.inactive-topic[data-topic="fresh-topic"]')
    assert.equal(await p.inputValue('#create-topic'), '', 'the form is reset')

    await p.fill('#create-topic', 'fresh-topic')
    await p.fill('#create-channel', 'first')
    await p.click('#create-submit')
    await waitFor('nsqlookupd to have channel first', async () => (await lookupdChannels('fresh-topic')).includes('first'))
    await p.waitForSelector('li.inactive-topic[data-topic="fresh-topic"] [data-channel="first"]')

    // Inactive topics can be deleted from here.
    await confirmAction(p, 'delete-topic-fresh-topic')
    await waitFor('fresh-topic to leave nsqlookupd', async () => !(await lookupdTopics()).includes('fresh-topic'))
    await p.waitForSelector('li.inactive-topic[data-topic="fresh-topic"]', {state: 'detached'})
    assert.ok(await p.$('li.inactive-topic[data-topic="planned"] [data-channel="later"]'), 'lookupd-only topic with its channel')
  })
})

describe('actions', () => {
  test('the confirmation dialog traps focus and Escape cancels', async () => {
    const p = await page()
    await p.goto(ui('topics/orders/archive'))
    await settled(p)
    await p.focus('button[data-action="pause-channel"]')
    await p.keyboard.press('Enter')
    await p.waitForSelector('dialog[open]')
    for (let i = 0; i < 5; i++) {
      await p.keyboard.press('Tab')
      assert.ok(await p.evaluate(() => document.querySelector('dialog[open]').contains(document.activeElement)), 'focus stays in the dialog')
    }
    await p.keyboard.press('Escape')
    await p.waitForSelector('dialog', {state: 'detached'})
    assert.equal(await p.evaluate(() => document.activeElement.dataset.action), 'pause-channel', 'focus goes back to the button')
    const c = await channelStats(cluster.a, 'orders', 'archive')
    assert.equal(c.paused, false, 'cancelled: not paused')
  })

  test('pause and unpause a channel', async () => {
    const {a, b} = cluster
    const p = await page()
    await p.goto(ui('topics/orders/archive'))
    await settled(p)
    await confirmAction(p, 'pause-channel')
    await waitFor('nsqd to report archive paused on both nodes', async () =>
      (await channelStats(a, 'orders', 'archive')).paused && (await channelStats(b, 'orders', 'archive')).paused)
    await p.waitForSelector('button[data-action="unpause-channel"]')
    await p.waitForSelector('.flash >> text=paused')
    await p.click('button[data-action="unpause-channel"]')
    await waitFor('nsqd to report archive unpaused', async () =>
      !(await channelStats(a, 'orders', 'archive')).paused && !(await channelStats(b, 'orders', 'archive')).paused)
    await p.waitForSelector('button[data-action="pause-channel"]')
  })

  test('empty a channel', async () => {
    const p = await page()
    await p.goto(ui('topics/orders/billing'))
    await settled(p)
    assert.equal(digits(await p.textContent('[data-stat="depth"] .stat-value')), 20)
    await confirmAction(p, 'empty-channel')
    await waitFor('billing to be empty', async () => (await channelStats(cluster.a, 'orders', 'billing')).depth === 0)
    await pageWait(p, 'the page to show depth 0', () => /^0/.test(document.querySelector('[data-stat="depth"] .stat-value').textContent))
  })

  test('delete a channel', async () => {
    const p = await page()
    await p.goto(ui('topics/orders/trash'))
    await settled(p)
    await confirmAction(p, 'delete-channel')
    await p.waitForURL(/\/topics\/orders$/)
    await waitFor('trash to be gone from both nodes', async () =>
      !(await channelStats(cluster.a, 'orders', 'trash')) && !(await channelStats(cluster.b, 'orders', 'trash')))
    await p.waitForSelector(`${CHANNELS} a.channel-link >> text=archive`)
    assert.equal(await rowCells(p, CHANNELS, 'trash'), null)
  })

  test('pause, unpause and empty a topic', async () => {
    const p = await page()
    await p.goto(ui('topics/backlog'))
    await settled(p)
    assert.equal(digits(await p.textContent('[data-stat="depth"] .stat-value')), 7)
    await confirmAction(p, 'pause-topic')
    await waitFor('backlog paused', async () => (await topicStats(cluster.b, 'backlog')).paused)
    await p.click('button[data-action="unpause-topic"]')
    await waitFor('backlog unpaused', async () => !(await topicStats(cluster.b, 'backlog')).paused)
    await p.waitForSelector('button[data-action="pause-topic"]')
    await confirmAction(p, 'empty-topic')
    await waitFor('backlog emptied', async () => (await topicStats(cluster.b, 'backlog')).depth === 0)
  })

  test('delete a topic', async () => {
    const p = await page()
    await p.goto(ui('topics/doomed'))
    await settled(p)
    await confirmAction(p, 'delete-topic')
    await p.waitForURL((url) => url.pathname === '/')
    await waitFor('doomed to be gone from nsqd', async () => !(await topicStats(cluster.a, 'doomed')))
    await waitFor('doomed to be gone from nsqlookupd', async () => !(await lookupdTopics()).includes('doomed'))
  })

  test('tombstone a topic on one node', async () => {
    const {a, b} = cluster
    const p = await page()
    await p.goto(ui('topics/spread'))
    await settled(p)
    assert.ok(await rowCells(p, NODES, b.http))
    await confirmAction(p, `tombstone-${b.http}`)
    await waitFor('spread to be deleted on b', async () => !(await topicStats(b, 'spread')))
    await waitFor('nsqlookupd to stop handing out b for spread', async () => {
      const producers = await lookupdProducers('spread')
      return producers.length === 1 && producers[0].http_port === Number(a.http.split(':')[1])
    })
    assert.ok(await topicStats(a, 'spread'), 'still on a')
  })
})

describe('access and base path', () => {
  test('without the admin user every action is hidden', async () => {
    const p = await page()
    const base = '/admin/'
    await p.goto(ui('topics/orders', cluster.acl, base))
    await settled(p)
    await p.waitForSelector(`${CHANNELS} a.channel-link`)
    assert.equal(await p.$('.page-actions'), null)
    assert.equal(await p.$('button[data-action^="tombstone-"]'), null)
    assert.equal(await p.$('.footer .pill >> text=read-only') !== null, true)
    await p.goto(ui('topics/orders/archive', cluster.acl, base))
    await settled(p)
    assert.equal(await p.$('.page-actions'), null)
    await p.goto(ui('lookup', cluster.acl, base))
    await settled(p)
    assert.equal(await p.$('#create-form'), null)
    assert.equal(await p.$('.inactive-list button'), null)
    const res = await http('POST', `http://${cluster.acl.http}/admin/api/topics/orders/archive`, {action: 'pause'})
    assert.equal(res.status, 403)
  })

  test('the admin user gets the actions, and links stay under the base path', async () => {
    const p = await page({headers: {'X-Forwarded-User': 'alice'}})
    await p.goto(ui('', cluster.acl, '/admin/'))
    await settled(p)
    assert.equal(await p.getAttribute('a.topic-link >> text=orders', 'href'), '/admin/topics/orders')
    await p.click('a.topic-link >> text=orders')
    await p.waitForURL(/\/admin\/topics\/orders$/)
    await p.waitForSelector('button[data-action="pause-topic"]')
    await p.click(`${CHANNELS} a.channel-link >> text=archive`)
    await p.waitForURL(/\/admin\/topics\/orders\/archive$/)
    await p.waitForSelector('button[data-action="pause-channel"]')
    await p.click('.mainnav a[data-nav="nodes"]')
    await p.waitForURL(/\/admin\/nodes$/)
    await settled(p)
    await p.goBack()
    await p.waitForURL(/\/admin\/topics\/orders\/archive$/)
    await p.waitForSelector('button[data-action="pause-channel"]')
  })

  test('partial answers show a warning and flag nodes missing from a lookupd', async () => {
    const p = await page()
    await p.goto(ui('nodes', cluster.partial))
    await settled(p)
    await p.waitForSelector('.banner-warning')
    assert.match(await p.textContent('main'), /WARNING/)
    await p.waitForSelector('.row-warn')
    assert.match(await p.textContent('.row-warn'), /seen by 1 of 2/)
  })
})

describe('other configurations', () => {
  test('graphite graphs use statsd metric names under the graphite URL', async () => {
    const p = await page()
    await p.goto(ui('topics/stream', cluster.partial))
    await settled(p)
    await p.waitForSelector('figure.chart-graphite img')
    const srcs = await p.$$eval('figure.chart-graphite img', (imgs) => imgs.map((i) => i.getAttribute('src')))
    assert.ok(srcs.every((s) => s.startsWith('http://127.0.0.1:1/render?')), srcs.join('\n'))
    const targets = srcs.map((s) => new URL(s).searchParams.getAll('target')).flat()
    assert.ok(targets.includes('scale(summarize(sumSeries(stats.counters.nsq.*.topic.stream.message_count.count),"10sec","avg"),0.1)'), targets.join('\n'))
    assert.ok(targets.includes('summarize(sumSeries(stats.gauges.nsq.*.topic.stream.depth),"10sec","avg")'), targets.join('\n'))
    const node = cluster.b.http.replace(/[.:]/g, '_')
    assert.ok(targets.includes(`summarize(stats.gauges.nsq.${node}.topic.stream.depth,"10sec","avg")`), targets.join('\n'))
    await p.goto(ui('', cluster.partial))
    await settled(p)
    assert.ok(await p.$('img.graphite-spark'), 'topic list sparklines')
  })

  test('with a fixed list of nsqd and no history', async () => {
    const p = await page()
    await p.goto(ui('', cluster.direct))
    await settled(p)
    await p.waitForSelector('a.topic-link >> text=orders')
    assert.equal(await p.$('.sparkline'), null, 'no history sparklines')
    await p.goto(ui('topics/orders', cluster.direct))
    await settled(p)
    assert.ok(await rowCells(p, NODES, cluster.a.http))
    assert.ok(await rowCells(p, NODES, cluster.b.http))
    assert.equal(await p.$('button[data-action^="tombstone-"]'), null, 'no tombstones without lookupd')
    assert.match(await p.textContent('section[data-key="history"]'), /turned off/)
    await p.goto(ui('lookup', cluster.direct))
    await settled(p)
    assert.match(await p.textContent('main'), /no nsqlookupd is configured/)
    assert.equal(await p.$('#create-form'), null)
    await p.goto(ui('nodes', cluster.direct))
    await settled(p)
    assert.ok(await rowCells(p, 'main', cluster.a.http))
    assert.equal(await p.$('.row-warn'), null)
  })

  test('auto-refresh can be paused and resumed', async () => {
    const p = await page()
    await p.goto(ui('counter'))
    await settled(p)
    await p.waitForSelector('#counter-total')
    await p.click('#auto-refresh')
    assert.equal(await p.getAttribute('#auto-refresh', 'aria-pressed'), 'false')
    const frozen = await p.getAttribute('#counter-total', 'data-value')
    // A "nothing happens" check needs time: wait until several refresh periods (1 s here) have
    // passed and nsqd's counts have clearly moved on, then the page must still show the old value.
    const pausedAt = Date.now()
    const before = (await topicStats(cluster.b, 'stream')).message_count
    await waitFor('nsqd to count more messages during 3 refresh periods', async () =>
      Date.now() - pausedAt >= 3000 && (await topicStats(cluster.b, 'stream')).message_count >= before + 20)
    assert.equal(await p.getAttribute('#counter-total', 'data-value'), frozen)
    await p.click('#auto-refresh')
    assert.equal(await p.getAttribute('#auto-refresh', 'aria-pressed'), 'true')
    await pageWait(p, 'the counter to move again', (v) => document.querySelector('#counter-total').dataset.value !== v, frozen)
  })
})

describe('layout', () => {
  const shots = [
    ['topics', ''],
    ['topic', 'topics/stream'],
    ['channel', 'topics/stream/work'],
    ['nodes', 'nodes'],
    ['node', () => `nodes/${enc(cluster.b.http)}`],
    ['counter', 'counter'],
    ['lookup', 'lookup'],
  ]
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    test(`${size} screenshots, no page errors, no sideways scrolling`, async () => {
      const p = await page({viewport, isMobile: size === 'phone'})
      for (const [name, path] of shots) {
        await p.goto(ui(typeof path === 'function' ? path() : path))
        await settled(p)
        if (name === 'topic' || name === 'channel') {
          await pageWait(p, 'a rate line with points', () => {
            const line = document.querySelector('figure[data-chart="rate"] path.line')
            return line && Number(line.dataset.points) >= 5
          })
        }
        if (name === 'counter') await pageWait(p, 'a rate', () => /msg\/s/.test(document.querySelector('#counter-rate').textContent))
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
        assert.ok(overflow <= 0, `${name} (${size}) is ${overflow}px wider than the screen`)
        await shot(p, `${name}-${size}`)
      }
      assert.deepEqual(p.pageErrors, [])
      assert.deepEqual(p.consoleErrors, [])
    })
  }

  test('no page reported a script error', () => {
    for (const p of pages) {
      assert.deepEqual(p.pageErrors, [], 'uncaught errors')
      assert.deepEqual(p.consoleErrors, [], 'console errors')
    }
  })
})

// Last, as it adds topics the other tests do not expect: long lists come a page at a time.
describe('many topics', () => {
  const BULK = 130
  const bulk = (i) => `bulk-${String(i).padStart(3, '0')}`
  const TOP = 'nav.pager[data-key="pager-top"]'
  const status = (p) => p.textContent(`${TOP} .pager-status`)

  before(async () => {
    // The earlier tests' pages are done with; left open, they go on refreshing every second.
    for (const p of pages.splice(0)) await p.closeAll()
    const {b} = cluster
    for (let i = 0; i < BULK; i += 10) {
      await Promise.all(Array.from({length: Math.min(10, BULK - i)}, (_, j) =>
        ok('POST', `http://${b.http}/topic/create?topic=${bulk(i + j)}`)))
    }
    await waitFor('nsqlookupd to list the new topics', async () =>
      (await lookupdTopics()).filter((t) => t.startsWith('bulk-')).length === BULK)
  })

  test('the topics list shows 50 topics a page, with a pager that survives refreshes', async () => {
    const p = await page()
    await p.goto(ui())
    await settled(p)
    await p.waitForSelector(TOP)
    const total = digits(await p.textContent('.page-sub'))
    assert.ok(total > BULK, `${total} topics`)
    const links = () => p.$$eval('a.topic-link', (as) => as.map((a) => a.textContent))
    assert.equal((await links()).length, 50)
    assert.match(await status(p), new RegExp(`^1–50 of ${total} topics`))
    assert.ok(await p.isDisabled(`${TOP} [data-page="prev"]`))

    await p.click(`${TOP} [data-page="next"]`)
    await pageWait(p, 'the second page', () => /^51–100 /.test(document.querySelector('nav.pager .pager-status').textContent))
    assert.deepEqual(await links(), (await lookupdTopics()).sort().slice(50, 100))
    await p.click(`${TOP} [data-page="last"]`)
    const from = 50 * Math.floor((total - 1) / 50)
    await pageWait(p, 'the last page', (n) => document.querySelectorAll('a.topic-link').length === n, total - from)
    assert.ok((await links()).includes(bulk(BULK - 1)), 'the last topic is on the last page')
    assert.ok(await p.isDisabled(`${TOP} [data-page="next"]`))
    await p.click('#refresh-now')
    await pageWait(p, 'the refresh to finish', () => !document.querySelector('#tools .spinner'))
    assert.match(await status(p), new RegExp(`^${from + 1}–${total} `), 'still on the last page after a refresh')
    // Sparklines come after the list, for the topics on screen.
    await pageWait(p, 'the sparkline histories', () => !document.querySelector('main [title="loading history"]'))

    // A filter starts again from the first page; a list that fits on one has no pager.
    await p.fill('#topic-filter', 'bulk-12')
    await pageWait(p, 'the filter to apply', () => document.querySelectorAll('a.topic-link').length === 10)
    assert.equal(await p.$('nav.pager'), null)
    await p.fill('#topic-filter', '')
    await pageWait(p, 'the first page again', () => document.querySelectorAll('a.topic-link').length === 50)
    assert.match(await status(p), /^1–50 /)
    assert.deepEqual(p.pageErrors, [])
  })

  test('a node with many topics is paged and filtered; client lists are built when opened', async () => {
    const p = await page()
    await p.goto(ui(`nodes/${enc(cluster.b.http)}`))
    await settled(p)
    await p.waitForSelector('#node-topic-filter')
    const topics = digits(await p.textContent('[data-stat="topics"] .stat-value'))
    assert.ok(topics > BULK, `${topics} topics`)
    assert.equal((await p.$$('.topic-card')).length, 25)
    assert.match(await status(p), new RegExp(`^1–25 of ${topics} topics`))
    await p.click(`${TOP} [data-page="last"]`)
    const onLast = topics - 25 * (Math.ceil(topics / 25) - 1)
    await pageWait(p, 'the last page', (n) => document.querySelectorAll('.topic-card').length === n, onLast)
    const names = ((await nsqdStats(cluster.b)).topics || []).map((t) => t.topic_name).sort((x, y) => x.localeCompare(y))
    assert.ok(await p.$(`.topic-card[data-topic="${names[names.length - 1]}"]`), `${names[names.length - 1]} is on the last page`)

    await p.fill('#node-topic-filter', 'stream')
    await p.waitForSelector('.topic-card[data-topic="stream"]')
    assert.equal((await p.$$('.topic-card')).length, 1)
    assert.equal(await p.$('nav.pager'), null)
    const card = '.topic-card[data-topic="stream"]'
    assert.equal(await p.$(`${card} .table-clients`), null, 'no client table while the list is folded')
    await p.click(`${card} details.clients-details summary >> text=work`)
    await p.waitForSelector(`${card} details[open] .table-clients`)
    assert.match(await p.textContent(`${card} details[open] .table-clients`), /worker/)
    await p.click('#refresh-now')
    await pageWait(p, 'the refresh to finish', () => !document.querySelector('#tools .spinner'))
    assert.ok(await p.$(`${card} details[open] .table-clients`), 'still open after a refresh')
    await p.click(`${card} details.clients-details summary >> text=work`)
    await pageWait(p, 'the client table to go', (sel) => !document.querySelector(sel), `${card} .table-clients`)
    assert.deepEqual(p.pageErrors, [])
  })

  test('the pager fits a phone screen', async () => {
    const p = await page({viewport: PHONE, isMobile: true})
    for (const [name, path] of [['topics-paged', ''], ['node-paged', `nodes/${enc(cluster.b.http)}`]]) {
      await p.goto(ui(path))
      await settled(p)
      await p.waitForSelector(TOP)
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert.ok(overflow <= 0, `${name} (phone) is ${overflow}px wider than the screen`)
      await shot(p, `${name}-phone`)
    }
    assert.deepEqual(p.pageErrors, [])
    assert.deepEqual(p.consoleErrors, [])
  })
})
