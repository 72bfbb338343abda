// Graphite graphs of the metrics nsqd pushes to statsd.
//
// nsqd names its metrics <prefix>.topic.<T>.<key> and
// <prefix>.topic.<T>.channel.<C>.<key>, where the prefix is --statsd-prefix
// with %s replaced by the node's address (dots and colons turned into
// underscores); statsd then files counters and gauges under the names given
// by --statsd-counter-format / --statsd-gauge-format.

import {h} from './dom.js'
import {config, enc} from './api.js'

const COUNTERS = new Set(['message_count', 'requeue_count', 'timeout_count', 'gc_runs'])

// Characters statsd would not keep in a metric path segment.
export function sanitize(name) {
  return String(name).replace(/ /g, '_').replace(/\//g, '-').replace(/[^a-zA-Z0-9_.-]/g, '')
}

// The node part of a metric name; "*" means every node.
function hostKey(node) {
  return node === '*' ? '*' : String(node).replace(/[.:]/g, '_')
}

function prefix(node) {
  const p = config.statsdPrefix.replace(/%s/g, hostKey(node))
  return p && !p.endsWith('.') ? p + '.' : p
}

// The full graphite name of one metric.
export function metricName({node = '*', topic, channel, key}) {
  let path = prefix(node)
  if (topic !== undefined) path += `topic.${sanitize(topic)}.`
  if (channel !== undefined) path += `channel.${sanitize(channel)}.`
  path += key
  const format = COUNTERS.has(key.replace(/_\d+$/, '')) ? config.statsdCounterFormat : config.statsdGaugeFormat
  return format.includes('%s') ? format.replace(/%s/g, path) : path
}

function isCounter(key) {
  return COUNTERS.has(key)
}

// A graphite target: summed over nodes, averaged per statsd interval, counters per second.
export function target(spec) {
  const interval = Math.max(1, config.statsdInterval)
  let t = metricName(spec)
  if ((spec.node || '*') === '*') t = `sumSeries(${t})`
  t = `summarize(${t},"${interval}sec","avg")`
  if (isCounter(spec.key)) t = `scale(${t},${1 / interval})`
  return t
}

function renderRoot() {
  if (config.graphiteUrl) return config.graphiteUrl.replace(/\/+$/, '') + '/render'
  return config.base + 'render'
}

// URL of a graphite PNG for `targets`.
export function renderUrl(targets, {from = '-2h', width = 560, height = 220, sparkline = false, colors} = {}) {
  const params = [
    ...targets.map((t) => `target=${enc(t)}`),
    `from=${enc(from)}`,
    `width=${width}`,
    `height=${height}`,
    'bgcolor=ffffff00',
    'fgcolor=5a6577',
    'majorGridLineColor=d9dee7',
    'minorGridLineColor=eef1f5',
    `colorList=${enc(colors || '2f7bd8,d8452f,2f9e6b,a05cc9')}`,
  ]
  if (sparkline) params.push('hideLegend=true', 'hideAxes=true', 'hideGrid=true', 'margin=0', 'graphOnly=true')
  else params.push('hideLegend=false', 'lineWidth=1.5', 'areaAlpha=0.15')
  return `${renderRoot()}?${params.join('&')}`
}

// A titled graphite image (lazy: graphite can be slow).
export function graphiteImage(title, targets, opts = {}) {
  return h('figure', {class: 'chart chart-graphite', 'data-key': `graphite-${title}`},
    h('figcaption', null, h('span', {class: 'chart-title'}, title), h('span', {class: 'chart-source'}, 'graphite')),
    h('img', {src: renderUrl(targets, opts), alt: `${title} (graphite)`, loading: 'lazy', width: opts.width || 560, height: opts.height || 220}))
}

export function graphiteSpark(spec, label) {
  return h('img', {class: 'graphite-spark', src: renderUrl([target(spec)], {from: '-2h', width: 120, height: 24, sparkline: true}),
    alt: label, loading: 'lazy', width: 120, height: 24})
}

// The graphite message-rate target for a topic or channel, for api/graphite.
export function rateTarget(topic, channel) {
  return `sumSeries(${metricName({node: '*', topic, channel, key: 'message_count'})})`
}
