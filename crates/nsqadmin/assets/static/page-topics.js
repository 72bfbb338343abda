// Topics list.

import {h} from './dom.js'
import {config, enc, get, warningOf} from './api.js'
import {num, rate} from './fmt.js'
import {sparkline} from './chart.js'
import {graphiteSpark} from './graphite.js'
import {historyEnabled} from './history.js'
import {link, pageHeader, table} from './ui.js'

// At most this many topics get a history sparkline per refresh.
const SPARK_LIMIT = 60
const SPARK_SECONDS = 300

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

export default {
  nav: 'topics',
  title: () => 'Topics',

  async load() {
    const res = await get('api/topics')
    const topics = Array.isArray(res.topics) ? res.topics.slice().sort() : []
    const history = new Map()
    if (historyEnabled() && topics.length) {
      const wanted = topics.slice(0, SPARK_LIMIT)
      const results = await mapLimited(wanted, 6, (t) =>
        get(`api/history/topics/${enc(t)}`).then((d) => d.samples || []).catch(() => null))
      wanted.forEach((t, i) => {
        if (results[i]) history.set(t, results[i])
      })
    }
    return {topics, history, warning: warningOf(res)}
  },

  render(data, ctx) {
    const filter = (ctx.state.filter || '').trim().toLowerCase()
    const shown = filter ? data.topics.filter((t) => t.toLowerCase().includes(filter)) : data.topics
    const withHistory = historyEnabled()

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
        } else {
          cells.push(h('span', {class: 'muted'}, '–'), h('span', {class: 'muted'}, '–'), h('span', {class: 'muted'}, ''))
        }
      }
      if (config.graphEnabled) cells.push(graphiteSpark({topic: t, key: 'message_count'}, `graphite message rate of ${t}`))
      return {key: t, cells}
    })

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
        ctx.rerender()
      },
    })
    const count = filter
      ? `${num(shown.length)} of ${num(data.topics.length)} topics`
      : `${num(data.topics.length)} ${data.topics.length === 1 ? 'topic' : 'topics'}`

    return h('div', null,
      pageHeader({title: 'Topics', sub: count}),
      h('div', {class: 'toolbar'}, search),
      data.topics.length
        ? table({label: 'Topics', columns, rows, cls: 'table-topics', empty: `No topic matches “${ctx.state.filter}”.`})
        : h('div', {class: 'empty'},
          h('p', null, 'No topics yet.'),
          h('p', {class: 'muted'}, 'Topics appear when a producer publishes to nsqd',
            config.isAdmin && config.lookupds.length ? [', or create one on the ', link('lookup', 'Lookup'), ' page.'] : '.')))
  },
}
