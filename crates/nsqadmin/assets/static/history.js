// Charts of the server's built-in history of a topic or channel.

import {h} from './dom.js'
import {config, enc, get} from './api.js'
import {duration, latency, quantile, rate} from './fmt.js'
import {lineChart} from './chart.js'
import {banner} from './ui.js'

const WINDOWS = [
  {label: '5m', seconds: 300},
  {label: '15m', seconds: 900},
  {label: '1h', seconds: 3600},
  {label: '6h', seconds: 21600},
  {label: '24h', seconds: 86400},
]
const WINDOW_KEY = 'nsqadmin.chartWindow'

export function historyEnabled() {
  return config.historyInterval > 0
}

export async function loadHistory(topic, channel) {
  if (!historyEnabled()) return null
  const path = channel === undefined
    ? `api/history/topics/${enc(topic)}`
    : `api/history/topics/${enc(topic)}/${enc(channel)}`
  try {
    const data = await get(path)
    return {interval: Number(data.interval) || 0, samples: Array.isArray(data.samples) ? data.samples : []}
  } catch (err) {
    return {error: err.message, samples: []}
  }
}

function chosenWindow() {
  const saved = localStorage.getItem(WINDOW_KEY)
  return saved === null ? 0 : Number(saved) || 0
}

// Per-second rate of a cumulative counter between samples; null across gaps and resets.
function deltaRate(samples, key, interval) {
  return samples.map((s, i) => {
    if (i === 0) return [s.ts, null]
    const prev = samples[i - 1]
    const dt = s.ts - prev.ts
    const dv = Number(s[key]) - Number(prev[key])
    if (!(dt > 0) || dt > interval * 2.5 || !(dv >= 0)) return [s.ts, null]
    return [s.ts, dv / dt]
  })
}

function windowPicker(current, retention, onPick) {
  const choices = WINDOWS.filter((w) => !retention || w.seconds < retention)
  choices.push({label: 'All', seconds: 0})
  return h('div', {class: 'segmented', role: 'group', 'aria-label': 'Time window'},
    choices.map((w) => h('button', {
      type: 'button',
      class: 'seg',
      'aria-pressed': String(current === w.seconds),
      'data-key': `win-${w.seconds}`,
      onclick: () => onPick(w.seconds),
    }, w.label)))
}

// The charts section for `hist` (from loadHistory).
export function historySection(hist, ctx, {title = 'History', depthTitle = 'Depth'} = {}) {
  const head = (extra) => h('div', {class: 'section-head'},
    h('h2', {class: 'section-title', id: 'sec-history'}, title), extra)
  if (!historyEnabled()) {
    return h('section', {class: 'section', 'data-key': 'history', 'aria-labelledby': 'sec-history'}, head(null),
      h('p', {class: 'muted'}, 'Built-in history is turned off (--history-interval=0).'))
  }
  if (!hist) return null
  const win = chosenWindow()
  const picker = windowPicker(win, config.historyRetention, (seconds) => {
    localStorage.setItem(WINDOW_KEY, String(seconds))
    ctx.rerender()
  })
  if (hist.error) {
    return h('section', {class: 'section', 'data-key': 'history', 'aria-labelledby': 'sec-history'}, head(null),
      banner('warning', `History unavailable: ${hist.error}`))
  }
  const interval = hist.interval || config.historyInterval
  const all = hist.samples.filter((s) => Number.isFinite(Number(s.ts)))
  const last = all.length ? Number(all[all.length - 1].ts) : Math.floor(Date.now() / 1000)
  const from = win ? last - win : (all.length ? Number(all[0].ts) : last - 60)
  const samples = win ? all.filter((s) => s.ts >= from) : all
  const series = (key) => samples.map((s) => [s.ts, s[key] ?? null])
  const width = ctx.chartWidth()
  const common = {width, height: 190, from, to: Math.max(last, from + interval)}
  const quantiles = [...new Set(samples.flatMap((s) => (s.e2e || []).map((p) => Number(p.quantile))))].sort((a, b) => b - a)

  const charts = [
    lineChart({...common, id: 'rate', title: 'Message rate (msg/s)', format: rate,
      series: [{label: 'rate', points: series('rate')}]}),
    lineChart({...common, id: 'depth', title: depthTitle,
      series: [{label: 'depth', points: series('depth'), tone: 1}]}),
    lineChart({...common, id: 'in-flight', title: 'In flight and deferred',
      series: [{label: 'in flight', points: series('in_flight_count'), tone: 2}, {label: 'deferred', points: series('deferred_count'), tone: 3}]}),
    lineChart({...common, id: 'e2e', title: 'End-to-end latency', format: latency, axisFormat: latency, minTop: 1e6,
      empty: 'No latency measured yet (needs consumers, and nsqd with --e2e-processing-latency-percentile)',
      series: quantiles.map((q, i) => ({label: quantile(q), tone: (i + 4) % 6,
        points: samples.map((s) => {
          const p = (s.e2e || []).find((x) => Number(x.quantile) === q)
          // nsqd reports 0 for a percentile it has no sample for.
          return [s.ts, p && Number(p.value) > 0 ? p.value : null]
        })}))}),
    lineChart({...common, id: 'requeues', title: 'Requeued and timed out (msg/s)', format: rate,
      series: [{label: 'requeued', points: deltaRate(samples, 'requeue_count', interval), tone: 3},
        {label: 'timed out', points: deltaRate(samples, 'timeout_count', interval), tone: 1}]}),
    lineChart({...common, id: 'clients', title: 'Clients',
      series: [{label: 'clients', points: series('clients'), tone: 5}]}),
  ]
  const note = `${samples.length} samples every ${duration(interval)}` +
    (config.historyRetention ? `, kept for ${duration(config.historyRetention)}` : '')
  return h('section', {class: 'section', 'data-key': 'history', 'aria-labelledby': 'sec-history'},
    head(h('div', {class: 'section-tools'}, h('span', {class: 'muted small'}, note), picker)),
    h('div', {class: 'chart-grid'}, charts))
}
