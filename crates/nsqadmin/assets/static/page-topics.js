// Topics list.

import {h} from './dom.js'
import {config, enc, get, warningOf} from './api.js'
import {num, rate} from './fmt.js'
import {sparkline} from './chart.js'
import {graphiteSpark} from './graphite.js'
import {historyEnabled} from './history.js'
import {link, pageHeader, pager, paginate, table} from './ui.js'

// Topics per page: a cluster can have thousands, and a table of them all is slow to draw and to
// refresh; each row shown also costs a history request per refresh. The filter box finds any
// topic; the pager walks through them.
export const PAGE_SIZE = 50
const SPARK_SECONDS = 300
const HISTORY_CONCURRENCY = 6

async function mapLimited(items, limit, fn) {
  const out = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return out
}

// The sparklines of the topics on screen come after the list itself: each needs a request of its
// own, so the table is drawn first and redrawn once their histories are in. Every refresh
// (a new `data`) asks again; until then the previous samples are shown.
function wantHistory(data, topics, ctx) {
  const missing = topics.filter((t) => !data.requested.has(t))
  if (!missing.length) return
  for (const t of missing) data.requested.add(t)
  mapLimited(missing, HISTORY_CONCURRENCY, (t) =>
    get(`api/history/topics/${enc(t)}`).then((d) => d.samples || []).catch(() => null))
    .then((results) => {
      missing.forEach((t, i) => {
        if (results[i]) data.history.set(t, results[i])
        else if (!data.history.has(t)) data.history.set(t, [])
      })
      if (ctx.data === data) ctx.rerender()
    })
}

export default {
  nav: 'topics',
  title: () => 'Topics',

  async load(_params, _ctx, prev) {
    const res = await get('api/topics')
    const topics = Array.isArray(res.topics) ? res.topics.slice().sort() : []
    const history = new Map()
    if (prev && prev.history) {
      const present = new Set(topics)
      for (const [t, samples] of prev.history) if (present.has(t)) history.set(t, samples)
    }
    return {topics, history, requested: new Set(), warning: warningOf(res)}
  },

  render(data, ctx) {
    const filter = (ctx.state.filter || '').trim().toLowerCase()
    const matching = filter ? data.topics.filter((t) => t.toLowerCase().includes(filter)) : data.topics
    const page = paginate(matching, ctx.state, PAGE_SIZE)
    const shown = page.items
    const withHistory = historyEnabled()
    if (withHistory) wantHistory(data, shown, ctx)

    const columns = [{label: 'Topic'}]
    if (withHistory) {
      columns.push({label: 'Depth', num: true}, {label: 'Rate (msg/s)', num: true}, {label: 'Last 5 minutes', cls: 'spark-col'})
    }
    if (config.graphEnabled) columns.push({label: 'Rate (graphite)', cls: 'spark-col'})

    const rows = shown.map((t) => {
      const cells = [link(`topics/${enc(t)}`, t, {class: 'topic-link'})]
      if (withHistory) {
        const samples = data.history.get(t)
        if (samples && samples.length) {
          const last = samples[samples.length - 1]
          const cutoff = last.ts - SPARK_SECONDS
          const recent = samples.filter((s) => s.ts >= cutoff)
          cells.push(num(last.depth), rate(last.rate),
            sparkline(recent.map((s) => [s.ts, s.rate]), {label: `message rate of ${t}`}))
        } else if (!samples) {
          const wait = () => h('span', {class: 'muted', title: 'loading history'}, '…')
          cells.push(wait(), wait(), wait())
        } else {
          cells.push(h('span', {class: 'muted'}, '–'), h('span', {class: 'muted'}, '–'), h('span', {class: 'muted'}, ''))
        }
      }
      if (config.graphEnabled) cells.push(graphiteSpark({topic: t, key: 'message_count'}, `graphite message rate of ${t}`))
      return {key: t, cells}
    })
    const toPage = (top) => (n) => {
      ctx.state.page = n
      ctx.rerender()
      if (!top) window.scrollTo(0, 0)
    }

    const search = h('input', {
      type: 'search',
      class: 'input',
      id: 'topic-filter',
      placeholder: 'Filter topics  ( / )',
      'aria-label': 'Filter topics',
      autocomplete: 'off',
      spellcheck: 'false',
      value: ctx.state.filter || '',
      oninput: (ev) => {
        ctx.state.filter = ev.target.value
        ctx.state.page = 1
        ctx.rerender()
      },
    })
    const count = filter
      ? `${num(matching.length)} of ${num(data.topics.length)} topics`
      : `${num(data.topics.length)} ${data.topics.length === 1 ? 'topic' : 'topics'}`

    return h('div', null,
      pageHeader({title: 'Topics', sub: count}),
      h('div', {class: 'toolbar'}, search, pager(page, toPage(true), {label: 'Pages of topics', noun: 'topics', key: 'pager-top'})),
      data.topics.length
        ? table({label: 'Topics', columns, rows, cls: 'table-topics', empty: `No topic matches “${ctx.state.filter}”.`})
        : h('div', {class: 'empty'},
          h('p', null, 'No topics yet.'),
          h('p', {class: 'muted'}, 'Topics appear when a producer publishes to nsqd',
            config.isAdmin && config.lookupds.length ? [', or create one on the ', link('lookup', 'Lookup'), ' page.'] : '.')),
      page.pages > 1 && shown.length > 20 ? h('div', {class: 'toolbar toolbar-end'}, pager(page, toPage(false), {label: 'Pages of topics (end of list)', noun: 'topics', key: 'pager-bottom'})) : null)
  },
}
