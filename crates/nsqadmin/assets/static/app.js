// nsqadmin single-page app: routing, periodic refresh, action handling.

import {h, morph, clear} from './dom.js'
import {config, href, warningOf} from './api.js'
import {clock} from './fmt.js'
import {confirmAction} from './dialog.js'
import {banner, loading, pageHeader} from './ui.js'
import topicsPage from './page-topics.js'
import topicPage from './page-topic.js'
import channelPage from './page-channel.js'
import nodesPage from './page-nodes.js'
import nodePage from './page-node.js'
import counterPage from './page-counter.js'
import lookupPage from './page-lookup.js'

const notFoundPage = {
  nav: '',
  title: () => 'Not found',
  load: async () => ({}),
  render: () => h('div', null, pageHeader({title: 'Page not found'}),
    h('p', null, 'There is nothing at this address. ', h('a', {href: href('')}, 'Go to the topics list'), '.')),
}

const ROUTES = [
  [/^(?:topics\/?)?$/, topicsPage],
  [/^topics\/([^/]+)\/?$/, topicPage],
  [/^topics\/([^/]+)\/([^/]+)\/?$/, channelPage],
  [/^nodes\/?$/, nodesPage],
  [/^nodes\/([^/]+)\/?$/, nodePage],
  [/^counter\/?$/, counterPage],
  [/^lookup\/?$/, lookupPage],
]

const PAUSE_KEY = 'nsqadmin.autoRefreshOff'
const REFRESH_SECONDS = config.historyInterval > 0 ? Math.min(60, Math.max(1, config.historyInterval)) : 10

const main = document.getElementById('main')
const flashArea = document.getElementById('flash')
const tools = document.getElementById('tools')

const pageStates = new Map()
let current = null // {page, params, path, state, data, error, warning, loadedAt, seq}
let timer = null
let inFlight = false
let lastWidthClass = null

function decode(part) {
  try {
    return decodeURIComponent(part)
  } catch (err) {
    return part
  }
}

function appPath() {
  const p = location.pathname
  if (p.startsWith(config.base)) return p.slice(config.base.length)
  if (p + '/' === config.base) return ''
  return p.replace(/^\/+/, '')
}

function match(path) {
  for (const [re, page] of ROUTES) {
    const m = re.exec(path)
    if (m) return {page, params: m.slice(1).map(decode)}
  }
  return {page: notFoundPage, params: []}
}

// ---- flash messages (results of actions) ----

function flash(kind, text) {
  const close = h('button', {type: 'button', class: 'flash-close', 'aria-label': 'Dismiss'}, '×')
  const item = h('div', {class: `banner banner-${kind} flash`, role: kind === 'error' ? 'alert' : 'status'},
    h('span', null, text), close)
  close.addEventListener('click', () => item.remove())
  flashArea.appendChild(item)
  if (kind === 'success') setTimeout(() => item.remove(), 6000)
  while (flashArea.children.length > 4) flashArea.firstChild.remove()
}

// ---- the context handed to pages ----

function chartWidth() {
  const w = main.clientWidth - 2 * parseFloat(getComputedStyle(main).paddingLeft || '0')
  const cols = w >= 860 ? 2 : 1
  const gap = 16
  return Math.floor((w - gap * (cols - 1)) / cols) - 2 * 14 - 2
}

// Width available to a chart that spans the whole content column.
function fullWidth() {
  const w = main.clientWidth - 2 * parseFloat(getComputedStyle(main).paddingLeft || '0')
  return Math.floor(w) - 2 * 14 - 2
}

function makeContext() {
  return {
    get params() {
      return current.params
    },
    get state() {
      return current.state
    },
    // The data the page is showing (what load() returned last), for work that finishes later.
    get data() {
      return current ? current.data : null
    },
    config,
    chartWidth,
    fullWidth,
    rerender: () => draw(),
    refresh: () => refresh(),
    navigate,
    flash,
    // Run an admin action: optional confirmation, the call, a message, then a refresh.
    async run({confirm, done, call, then}) {
      if (!config.isAdmin) return false
      if (confirm && !(await confirmAction(confirm))) return false
      document.body.classList.add('busy')
      try {
        const res = await call()
        const warning = warningOf(res)
        flash(warning ? 'warning' : 'success', warning || done)
        if (then) then()
        else await refresh()
        return true
      } catch (err) {
        flash('error', `${done.replace(/\.$/, '')} failed: ${err.message}`)
        await refresh()
        return false
      } finally {
        document.body.classList.remove('busy')
      }
    },
  }
}
const ctx = makeContext()

// ---- rendering ----

function draw() {
  if (!current) return
  const {page} = current
  const body = []
  if (current.error) {
    body.push(banner('error', current.data ? `Could not refresh: ${current.error}` : current.error))
  }
  if (current.warning) body.push(banner('warning', current.warning))
  if (current.data) {
    body.push(page.render(current.data, ctx))
  } else if (!current.error) {
    body.push(loading())
  } else {
    body.push(h('p', null, h('button', {type: 'button', class: 'btn', onclick: () => refresh()}, 'Try again')))
  }
  const fresh = h('div', null, h('div', {class: 'page', 'data-key': current.path}, body))
  morph(main, fresh)
  // A table wider than the screen scrolls sideways; it must then be reachable with the keyboard.
  // (All the sizes are read before any attribute is written: one layout, not one per table.)
  const wraps = Array.from(main.querySelectorAll('.table-wrap'))
  const wide = wraps.map((wrap) => wrap.scrollWidth > wrap.clientWidth + 1)
  wraps.forEach((wrap, i) => {
    if (wide[i]) wrap.setAttribute('tabindex', '0')
    else wrap.removeAttribute('tabindex')
  })
  document.title = `${page.title(current.params, current.data)} · nsqadmin`
  drawTools()
}

function drawTools() {
  const off = localStorage.getItem(PAUSE_KEY) === '1'
  const stamp = current && current.loadedAt ? clock(current.loadedAt / 1000) : '–'
  const fresh = h('div', null,
    h('span', {class: ['updated', current && current.error && 'stale'], title: 'Last successful refresh'},
      inFlight ? h('span', {class: 'spinner spinner-sm', 'aria-hidden': 'true'}) : null,
      `Updated ${stamp}`),
    h('button', {
      type: 'button',
      class: 'btn btn-sm btn-ghost',
      id: 'auto-refresh',
      'aria-pressed': String(!off),
      title: off ? 'Automatic refresh is paused' : `Refreshing every ${refreshSeconds()}s`,
      onclick: () => {
        localStorage.setItem(PAUSE_KEY, off ? '0' : '1')
        schedule()
        drawTools()
      },
    }, h('span', {class: ['dot-live', off && 'dot-off'], 'aria-hidden': 'true'}), off ? 'Paused' : 'Live',
    off ? null : h('span', {class: 'wide-only'}, ` · ${refreshSeconds()}s`)),
    h('button', {type: 'button', class: 'btn btn-sm btn-ghost', id: 'refresh-now', onclick: () => refresh(), title: 'Refresh now', 'aria-label': 'Refresh now'},
      h('span', {class: 'narrow-only', 'aria-hidden': 'true'}, '↻'), h('span', {class: 'wide-only'}, 'Refresh')))
  morph(tools, fresh)
}

function markNav() {
  const section = current.page.nav
  for (const a of document.querySelectorAll('.mainnav a')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
}

// ---- loading ----

async function refresh() {
  if (!current) return
  const mine = current
  const seq = ++mine.seq
  inFlight = true
  drawTools()
  try {
    const data = await mine.page.load(mine.params, ctx, mine.data)
    if (mine !== current || seq !== mine.seq) return
    mine.data = data
    mine.error = null
    mine.warning = (data && data.warning) || ''
    mine.loadedAt = Date.now()
  } catch (err) {
    if (mine !== current || seq !== mine.seq) return
    mine.error = err.message || String(err)
  } finally {
    if (mine === current && seq === mine.seq) {
      inFlight = false
      draw()
    }
  }
}

function refreshSeconds() {
  return current && current.page.refreshSeconds ? Math.min(current.page.refreshSeconds, REFRESH_SECONDS) : REFRESH_SECONDS
}

function schedule() {
  clearTimeout(timer)
  if (localStorage.getItem(PAUSE_KEY) === '1') return
  timer = setTimeout(async () => {
    if (!document.hidden && !inFlight && !document.querySelector('dialog[open]')) await refresh()
    schedule()
  }, refreshSeconds() * 1000)
}

function route(focus) {
  const path = appPath()
  const {page, params} = match(path)
  if (!pageStates.has(path)) pageStates.set(path, {})
  current = {page, params, path, state: pageStates.get(path), data: null, error: null, warning: '', loadedAt: 0, seq: 0}
  clear(main)
  flashArea.querySelectorAll('.banner-error').forEach((el) => el.remove())
  markNav()
  draw()
  refresh().then(() => {
    if (focus) {
      const title = main.querySelector('.page-title')
      if (title) title.focus({preventScroll: true})
    }
  })
  schedule()
}

export function navigate(path, {replace = false} = {}) {
  const url = href(path)
  if (replace) history.replaceState(null, '', url)
  else history.pushState(null, '', url)
  window.scrollTo(0, 0)
  route(true)
}

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return
  const a = ev.target.closest('a[href]')
  if (!a || a.target || a.hasAttribute('download')) return
  const url = new URL(a.href, location.href)
  if (url.origin !== location.origin || !url.pathname.startsWith(config.base)) return
  const rest = url.pathname.slice(config.base.length)
  if (/^(static|api|render|fonts)\//.test(rest)) return
  if (url.hash && url.pathname === location.pathname) return
  ev.preventDefault()
  if (url.pathname === location.pathname && url.search === location.search) {
    refresh()
    return
  }
  history.pushState(null, '', url.pathname + url.search)
  window.scrollTo(0, 0)
  route(true)
})

window.addEventListener('popstate', () => route(true))

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && current && localStorage.getItem(PAUSE_KEY) !== '1' && Date.now() - current.loadedAt > refreshSeconds() * 1000) {
    refresh()
  }
})

window.addEventListener('resize', () => {
  clearTimeout(window.__resizeTimer)
  window.__resizeTimer = setTimeout(() => {
    const w = chartWidth()
    if (lastWidthClass !== null && Math.abs(lastWidthClass - w) < 24) return
    lastWidthClass = w
    draw()
  }, 150)
})

// "/" focuses the page's filter box, like most list UIs.
document.addEventListener('keydown', (ev) => {
  if (ev.key !== '/' || ev.ctrlKey || ev.metaKey || ev.altKey) return
  const t = ev.target
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return
  const box = main.querySelector('input[type=search]')
  if (box) {
    ev.preventDefault()
    box.focus()
  }
})

function footer() {
  const el = document.getElementById('footer')
  const mode = config.lookupds.length
    ? `${config.lookupds.length} nsqlookupd`
    : 'fixed nsqd list'
  morph(el, h('div', null, h('div', {class: 'footer-inner'},
    h('span', null, `nsqadmin v${config.version}`),
    h('span', null, mode),
    config.isAdmin ? null : h('span', {class: 'pill pill-neutral'}, 'read-only'))))
}

lastWidthClass = chartWidth()
document.getElementById('version').textContent = config.version ? `v${config.version}` : ''
footer()
route(false)
