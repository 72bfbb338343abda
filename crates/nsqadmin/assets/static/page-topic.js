// One topic: its nodes, channels, latency, actions and charts.

import {h} from './dom.js'
import {api, config, enc, get, warningOf} from './api.js'
import {num, rate} from './fmt.js'
import {graphiteImage, rateTarget, target} from './graphite.js'
import {historySection, loadHistory} from './history.js'
import {button, e2eTable, link, nodeLink, pageHeader, pill, section, stats, table} from './ui.js'

export async function graphiteRate(topic, channel) {
  if (!config.graphEnabled) return null
  try {
    const res = await get(`api/graphite?metric=rate&target=${enc(rateTarget(topic, channel))}`)
    return res.rate ?? null
  } catch (err) {
    return null
  }
}

export function lastSample(hist) {
  return hist && hist.samples && hist.samples.length ? hist.samples[hist.samples.length - 1] : null
}

export function isEphemeral(name) {
  return /#ephemeral$/.test(name || '')
}

function topicActions(t, data, ctx) {
  const path = `api/topics/${enc(t)}`
  return [
    data.paused
      ? button('Unpause', () => ctx.run({done: `Topic ${t} unpaused.`, call: () => api('POST', path, {action: 'unpause'})}), {key: 'unpause-topic'})
      : button('Pause', () => ctx.run({
        confirm: {title: `Pause topic ${t}?`, body: 'Messages published to the topic stay queued in the topic and are not passed to its channels until it is unpaused.', confirmLabel: 'Pause topic'},
        done: `Topic ${t} paused.`,
        call: () => api('POST', path, {action: 'pause'}),
      }), {key: 'pause-topic'}),
    button('Empty', () => ctx.run({
      confirm: {title: `Empty topic ${t}?`, body: `Every message queued in the topic itself (${num(data.depth)} now) is dropped on every node. Channels keep their messages.`, confirmLabel: 'Empty topic', danger: true},
      done: `Topic ${t} emptied.`,
      call: () => api('POST', path, {action: 'empty'}),
    }), {key: 'empty-topic', kind: 'warn'}),
    button('Delete', () => ctx.run({
      confirm: {title: `Delete topic ${t}?`, body: 'The topic, all its channels and every queued message are deleted on every node and in nsqlookupd. A producer that publishes again recreates it.', confirmLabel: 'Delete topic', danger: true},
      done: `Topic ${t} deleted.`,
      call: () => api('DELETE', path),
      then: () => ctx.navigate(''),
    }), {key: 'delete-topic', kind: 'danger'}),
  ]
}

export default {
  nav: 'topics',
  title: ([t]) => `Topic ${t}`,

  async load([t]) {
    const [topic, hist, grate] = await Promise.all([get(`api/topics/${enc(t)}`), loadHistory(t), graphiteRate(t)])
    return {topic, hist, grate, warning: warningOf(topic)}
  },

  render({topic: data, hist, grate}, ctx) {
    const [t] = ctx.params
    const nodes = Array.isArray(data.nodes) ? data.nodes : []
    const channels = (Array.isArray(data.channels) ? data.channels : []).slice()
      .sort((a, b) => String(a.channel_name).localeCompare(String(b.channel_name)))
    const latest = lastSample(hist)
    const lookupMode = config.lookupds.length > 0

    const nodeColumns = [
      {label: 'Node'}, {label: 'Depth', num: true}, {label: 'Memory + disk', num: true, title: 'in memory + on disk'},
      {label: 'Messages', num: true}, {label: 'Channels', num: true}, {label: 'State'},
    ]
    const tombstone = config.isAdmin && lookupMode
    if (tombstone) nodeColumns.push({label: '', cls: 'actions-col'})
    const nodeRows = nodes.map((n) => {
      const cells = [
        nodeLink(n.node, n.hostname),
        num(n.depth),
        `${num(n.memory_depth)} + ${num(n.backend_depth)}`,
        num(n.message_count),
        Array.isArray(n.channels) ? num(n.channels.length) : '–',
        n.paused ? pill('paused', 'warn') : pill('active', 'ok'),
      ]
      if (tombstone) {
        cells.push(button('Tombstone', () => ctx.run({
          confirm: {
            title: `Tombstone ${t} on ${n.node}?`,
            body: `nsqlookupd stops handing out ${n.node} as a producer of ${t}, and the topic is deleted on that node. Use this when a node should no longer carry the topic.`,
            confirmLabel: 'Tombstone',
            danger: true,
          },
          done: `Topic ${t} tombstoned on ${n.node}.`,
          call: () => api('DELETE', `api/nodes/${enc(n.node)}`, {topic: t}),
        }), {key: `tombstone-${n.node}`, kind: 'danger'}))
      }
      return {key: n.node, cells}
    })
    const nodeFoot = nodes.length > 1
      ? ['All nodes', num(data.depth), `${num(data.memory_depth)} + ${num(data.backend_depth)}`, num(data.message_count), num(channels.length), data.paused ? pill('paused', 'warn') : '', tombstone ? '' : null].filter((c) => c !== null)
      : null

    const channelRows = channels.map((c) => ({
      key: c.channel_name,
      cells: [
        h('span', {class: 'name-cell'}, link(`topics/${enc(t)}/${enc(c.channel_name)}`, c.channel_name, {class: 'channel-link'}),
          isEphemeral(c.channel_name) ? pill('ephemeral', 'info') : null),
        num(c.depth),
        `${num(c.memory_depth)} + ${num(c.backend_depth)}`,
        num(c.in_flight_count),
        num(c.deferred_count),
        num(c.requeue_count),
        num(c.timeout_count),
        num(c.message_count),
        num(c.client_count ?? (c.clients || []).length),
        c.paused ? pill('paused', 'warn') : pill('active', 'ok'),
      ],
    }))

    const rateValue = latest && latest.rate !== null && latest.rate !== undefined ? rate(latest.rate) : null

    return h('div', null,
      pageHeader({
        crumbs: [link('', 'Topics'), h('span', {'aria-current': 'page'}, t)],
        title: t,
        badges: [data.paused ? pill('paused', 'warn', 'Messages are held in the topic') : null, isEphemeral(t) ? pill('ephemeral', 'info') : null],
        actions: topicActions(t, data, ctx),
      }),
      stats([
        {label: 'Depth', value: num(data.depth), hint: `${num(data.memory_depth)} memory + ${num(data.backend_depth)} disk`, id: 'depth'},
        {label: 'Messages', value: num(data.message_count), id: 'messages'},
        rateValue !== null ? {label: 'Rate', value: rateValue, hint: 'msg/s', id: 'rate'} : null,
        grate !== null && grate !== undefined ? {label: 'Rate (graphite)', value: String(grate), hint: 'msg/s', id: 'graphite-rate'} : null,
        {label: 'Channels', value: num(channels.length), id: 'channels'},
        {label: 'Nodes', value: num(nodes.length), id: 'nodes'},
      ]),
      section('Nodes', table({label: 'Nodes carrying the topic', columns: nodeColumns, rows: nodeRows, foot: nodeFoot, cls: 'table-nodes', empty: 'No node carries this topic right now.'})),
      section('Channels', table({
        label: 'Channels',
        cls: 'table-channels',
        columns: [
          {label: 'Channel'}, {label: 'Depth', num: true}, {label: 'Memory + disk', num: true, title: 'in memory + on disk'},
          {label: 'In flight', num: true}, {label: 'Deferred', num: true}, {label: 'Requeued', num: true},
          {label: 'Timed out', num: true}, {label: 'Messages', num: true}, {label: 'Clients', num: true}, {label: 'State'},
        ],
        rows: channelRows,
        empty: 'No channels. Messages stay in the topic until a consumer subscribes.',
      })),
      (() => {
        const e2e = e2eTable(data, nodes)
        return e2e ? section('End-to-end latency', e2e) : null
      })(),
      historySection(hist, ctx, {depthTitle: 'Topic depth (messages not yet passed to channels)'}),
      config.graphEnabled ? section('Graphite',
        h('div', {class: 'chart-grid'},
          graphiteImage('Message rate', [target({topic: t, key: 'message_count'})], {width: ctx.chartWidth()}),
          graphiteImage('Depth', [target({topic: t, key: 'depth'})], {width: ctx.chartWidth(), colors: 'd8452f'}),
          ...nodes.map((n) => graphiteImage(`Depth on ${n.hostname || n.node}`, [target({node: n.node, topic: t, key: 'depth'})], {width: ctx.chartWidth(), colors: 'd8452f'})))) : null,
    )
  },
}

