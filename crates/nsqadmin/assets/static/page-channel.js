// One channel: its nodes, clients, latency, actions and charts.

import {h} from './dom.js'
import {api, config, enc, get, warningOf} from './api.js'
import {duration, num, rate} from './fmt.js'
import {graphiteImage, target} from './graphite.js'
import {historySection, loadHistory} from './history.js'
import {graphiteRate, isEphemeral, lastSample} from './page-topic.js'
import {button, e2eTable, link, nodeLink, pageHeader, pill, section, stats, table} from './ui.js'

// Seconds a client has been connected: nsqadmin's `connected` (ns), else from connect_ts.
function connectedSeconds(c) {
  if (Number.isFinite(Number(c.connected)) && c.connected !== null && c.connected !== undefined) return Number(c.connected) / 1e9
  if (c.connect_ts) return Date.now() / 1000 - Number(c.connect_ts)
  return null
}

function tlsCell(c) {
  if (!c.tls) return h('span', {class: 'muted'}, 'no')
  const parts = [c.tls_version, c.tls_cipher_suite].filter(Boolean).join(' · ')
  return h('span', {class: 'tls', title: c.tls_negotiated_protocol ? `ALPN ${c.tls_negotiated_protocol}` : undefined},
    pill(c.tls_version || 'TLS', 'ok'), parts && c.tls_cipher_suite ? h('small', null, c.tls_cipher_suite) : null)
}

function compressionCell(c) {
  if (c.deflate) return pill('deflate', 'info')
  if (c.snappy) return pill('snappy', 'info')
  return h('span', {class: 'muted'}, 'none')
}

function identityCell(c) {
  if (!c.authed && !c.auth_identity) return h('span', {class: 'muted'}, '–')
  const name = c.auth_identity || 'authenticated'
  const label = c.auth_identity_url
    ? h('a', {href: c.auth_identity_url, target: '_blank', rel: 'noopener noreferrer'}, name)
    : name
  return h('span', null, pill('auth', 'ok'), ' ', label)
}

export function clientRows(clients) {
  return clients.map((c) => ({
    key: `${c.node}|${c.remote_address}|${c.client_id}`,
    cells: [
      h('span', {class: 'client-id'}, h('span', null, c.client_id || c.hostname || '–'),
        c.hostname && c.hostname !== c.client_id ? h('small', null, c.hostname) : null),
      h('code', null, c.remote_address || '–'),
      nodeLink(c.node),
      c.version || '–',
      h('span', {class: 'ua', title: c.user_agent || ''}, c.user_agent || '–'),
      identityCell(c),
      num(c.ready_count),
      num(c.in_flight_count),
      num(c.finish_count),
      num(c.requeue_count),
      num(c.message_count),
      h('span', {title: c.connect_ts ? new Date(c.connect_ts * 1000).toLocaleString() : ''}, duration(connectedSeconds(c))),
      tlsCell(c),
      compressionCell(c),
      c.sample_rate ? `${num(c.sample_rate)}%` : h('span', {class: 'muted'}, '–'),
    ],
  }))
}

export const CLIENT_COLUMNS = [
  {label: 'Client'}, {label: 'Address'}, {label: 'Node'}, {label: 'Protocol'}, {label: 'User agent'},
  {label: 'Identity'}, {label: 'RDY', num: true, title: 'ready count'}, {label: 'In flight', num: true},
  {label: 'Finished', num: true}, {label: 'Requeued', num: true}, {label: 'Messages', num: true},
  {label: 'Connected', num: true}, {label: 'TLS'}, {label: 'Compression'}, {label: 'Sample', num: true, title: 'sample rate'},
]

function channelActions(t, c, data, ctx) {
  const path = `api/topics/${enc(t)}/${enc(c)}`
  return [
    data.paused
      ? button('Unpause', () => ctx.run({done: `Channel ${c} unpaused.`, call: () => api('POST', path, {action: 'unpause'})}), {key: 'unpause-channel'})
      : button('Pause', () => ctx.run({
        confirm: {title: `Pause channel ${c}?`, body: 'Messages keep queueing in the channel but are not delivered to its consumers until it is unpaused.', confirmLabel: 'Pause channel'},
        done: `Channel ${c} paused.`,
        call: () => api('POST', path, {action: 'pause'}),
      }), {key: 'pause-channel'}),
    button('Empty', () => ctx.run({
      confirm: {title: `Empty channel ${c}?`, body: `Every queued message of the channel (${num(data.depth)} now) is dropped on every node. Messages in flight are not affected.`, confirmLabel: 'Empty channel', danger: true},
      done: `Channel ${c} emptied.`,
      call: () => api('POST', path, {action: 'empty'}),
    }), {key: 'empty-channel', kind: 'warn'}),
    button('Delete', () => ctx.run({
      confirm: {title: `Delete channel ${c}?`, body: `The channel and its queued messages are deleted on every node and in nsqlookupd; its consumers are disconnected.`, confirmLabel: 'Delete channel', danger: true},
      done: `Channel ${c} deleted.`,
      call: () => api('DELETE', path),
      then: () => ctx.navigate(`topics/${enc(t)}`),
    }), {key: 'delete-channel', kind: 'danger'}),
  ]
}

export default {
  nav: 'topics',
  title: ([t, c]) => `Channel ${c} · ${t}`,

  async load([t, c]) {
    const [channel, hist, grate] = await Promise.all([
      get(`api/topics/${enc(t)}/${enc(c)}`), loadHistory(t, c), graphiteRate(t, c)])
    return {channel, hist, grate, warning: warningOf(channel)}
  },

  render({channel: data, hist, grate}, ctx) {
    const [t, c] = ctx.params
    const crumbs = [link('', 'Topics'), link(`topics/${enc(t)}`, t), h('span', {'aria-current': 'page'}, c)]
    if (!Array.isArray(data.nodes) || !data.nodes.length) {
      return h('div', null,
        pageHeader({crumbs, title: c}),
        h('div', {class: 'empty'},
          h('p', null, `No node reports a channel ${c} on topic ${t}.`),
          h('p', null, link(`topics/${enc(t)}`, `Back to topic ${t}`))),
        historySection(hist, ctx))
    }
    const nodes = data.nodes
    const clients = Array.isArray(data.clients) ? data.clients : []
    const latest = lastSample(hist)

    const nodeRows = nodes.map((n) => ({
      key: n.node,
      cells: [
        nodeLink(n.node, n.hostname), num(n.depth), `${num(n.memory_depth)} + ${num(n.backend_depth)}`,
        num(n.in_flight_count), num(n.deferred_count), num(n.requeue_count), num(n.timeout_count),
        num(n.message_count), num(n.client_count ?? (n.clients || []).length),
        n.paused ? pill('paused', 'warn') : pill('active', 'ok'),
      ],
    }))
    const foot = nodes.length > 1 ? [
      'All nodes', num(data.depth), `${num(data.memory_depth)} + ${num(data.backend_depth)}`,
      num(data.in_flight_count), num(data.deferred_count), num(data.requeue_count), num(data.timeout_count),
      num(data.message_count), num(data.client_count ?? clients.length), data.paused ? pill('paused', 'warn') : '',
    ] : null

    return h('div', null,
      pageHeader({
        crumbs,
        title: c,
        badges: [data.paused ? pill('paused', 'warn', 'Delivery to consumers is stopped') : null, isEphemeral(c) ? pill('ephemeral', 'info') : null],
        actions: channelActions(t, c, data, ctx),
        sub: h('span', null, 'Channel of topic ', link(`topics/${enc(t)}`, t)),
      }),
      stats([
        {label: 'Depth', value: num(data.depth), hint: `${num(data.memory_depth)} memory + ${num(data.backend_depth)} disk`, id: 'depth'},
        {label: 'In flight', value: num(data.in_flight_count), id: 'in-flight'},
        {label: 'Deferred', value: num(data.deferred_count), id: 'deferred'},
        {label: 'Requeued', value: num(data.requeue_count), id: 'requeued'},
        {label: 'Timed out', value: num(data.timeout_count), id: 'timed-out'},
        {label: 'Messages', value: num(data.message_count), id: 'messages'},
        latest && latest.rate !== null && latest.rate !== undefined ? {label: 'Rate', value: rate(latest.rate), hint: 'msg/s', id: 'rate'} : null,
        grate !== null && grate !== undefined ? {label: 'Rate (graphite)', value: String(grate), hint: 'msg/s', id: 'graphite-rate'} : null,
        {label: 'Clients', value: num(data.client_count ?? clients.length), id: 'clients'},
      ]),
      section('Nodes', table({
        label: 'Nodes carrying the channel',
        cls: 'table-nodes',
        columns: [
          {label: 'Node'}, {label: 'Depth', num: true}, {label: 'Memory + disk', num: true}, {label: 'In flight', num: true},
          {label: 'Deferred', num: true}, {label: 'Requeued', num: true}, {label: 'Timed out', num: true},
          {label: 'Messages', num: true}, {label: 'Clients', num: true}, {label: 'State'},
        ],
        rows: nodeRows,
        foot,
      })),
      section('Clients', table({
        label: 'Connected clients',
        cls: 'table-clients',
        columns: CLIENT_COLUMNS,
        rows: clientRows(clients),
        empty: 'No consumer is connected to this channel.',
      })),
      (() => {
        const e2e = e2eTable(data, nodes)
        return e2e ? section('End-to-end latency', e2e) : null
      })(),
      historySection(hist, ctx),
      config.graphEnabled ? section('Graphite', h('div', {class: 'chart-grid'},
        graphiteImage('Message rate', [target({topic: t, channel: c, key: 'message_count'})], {width: ctx.chartWidth()}),
        graphiteImage('Depth', [target({topic: t, channel: c, key: 'depth'})], {width: ctx.chartWidth(), colors: 'd8452f'}),
        graphiteImage('In flight', [target({topic: t, channel: c, key: 'in_flight_count'})], {width: ctx.chartWidth()}),
        graphiteImage('Requeued and timed out', [target({topic: t, channel: c, key: 'requeue_count'}), target({topic: t, channel: c, key: 'timeout_count'})], {width: ctx.chartWidth(), colors: 'a05cc9,d8452f'}),
      )) : null,
    )
  },
}
