// Live count of messages processed across the cluster.

import {h} from './dom.js'
import {config, enc, get, warningOf} from './api.js'
import {num, rate} from './fmt.js'
import {lineChart} from './chart.js'
import {graphiteImage, metricName} from './graphite.js'
import {link, pageHeader, section, table} from './ui.js'

const KEEP = 300 // readings kept for the rate chart

export default {
  nav: 'counter',
  title: () => 'Counter',
  refreshSeconds: 2,

  async load(_params, ctx) {
    const res = await get('api/counter')
    const stats = res.stats && typeof res.stats === 'object' ? Object.values(res.stats) : []
    const total = stats.reduce((n, s) => n + Number(s.message_count || 0), 0)
    const now = Date.now() / 1000
    const readings = ctx.state.readings || (ctx.state.readings = [])
    const prev = readings[readings.length - 1]
    let perSecond = null
    if (prev && now > prev.t && total >= prev.total) perSecond = (total - prev.total) / (now - prev.t)
    readings.push({t: now, total, rate: perSecond})
    if (readings.length > KEEP) readings.splice(0, readings.length - KEEP)
    return {stats, total, perSecond, warning: warningOf(res)}
  },

  render(data, ctx) {
    const readings = ctx.state.readings || []
    const byChannel = new Map()
    for (const s of data.stats) {
      const key = `${s.topic_name}\u0000${s.channel_name}`
      const cur = byChannel.get(key) || {topic: s.topic_name, channel: s.channel_name, count: 0, nodes: 0}
      cur.count += Number(s.message_count || 0)
      cur.nodes += 1
      byChannel.set(key, cur)
    }
    const rows = [...byChannel.values()].sort((a, b) => b.count - a.count).slice(0, 50)

    return h('div', null,
      pageHeader({title: 'Messages processed', sub: 'Messages delivered by every channel on every node, summed.'}),
      h('div', {class: 'counter'},
        h('div', {class: 'counter-value', id: 'counter-total', 'data-value': String(data.total), 'aria-live': 'polite'}, num(data.total)),
        h('div', {class: 'counter-rate', id: 'counter-rate'},
          data.perSecond === null ? 'measuring rate…' : `${rate(data.perSecond)} msg/s`)),
      readings.filter((r) => r.rate !== null).length > 1 ? lineChart({
        id: 'counter-rate-chart',
        title: 'Rate while this page is open (msg/s)',
        width: ctx.fullWidth(),
        height: 180,
        format: rate,
        series: [{label: 'rate', points: readings.map((r) => [r.t, r.rate]), tone: 2}],
      }) : null,
      config.graphEnabled ? section('Graphite', graphiteImage('Messages processed per second',
        [`scale(summarize(sumSeries(${metricName({topic: '*', channel: '*', key: 'message_count'})}),"${Math.max(1, config.statsdInterval)}sec","avg"),${1 / Math.max(1, config.statsdInterval)})`],
        {width: ctx.chartWidth(), colors: '2f9e6b'})) : null,
      rows.length ? section('By channel', table({
        label: 'Messages by channel',
        columns: [{label: 'Topic'}, {label: 'Channel'}, {label: 'Nodes', num: true}, {label: 'Messages', num: true}],
        rows: rows.map((r) => ({key: `${r.topic}/${r.channel}`, cells: [link(`topics/${enc(r.topic)}`, r.topic), link(`topics/${enc(r.topic)}/${enc(r.channel)}`, r.channel), num(r.nodes), num(r.count)]})),
      })) : null)
  },
}
