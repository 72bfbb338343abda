// One nsqd node: its topics, channels and clients.

import {h} from './dom.js'
import {enc, get, warningOf} from './api.js'
import {num} from './fmt.js'
import {CLIENT_COLUMNS, clientRows} from './page-channel.js'
import {isEphemeral} from './page-topic.js'
import {nodeId} from './page-nodes.js'
import {link, pageHeader, pager, paginate, pill, stats, table} from './ui.js'

// The node page's client table leaves out the Node column (it is this node).
const COLUMNS = CLIENT_COLUMNS.filter((c) => c.label !== 'Node')
const nodeless = (rows) => rows.map((r) => ({...r, cells: r.cells.filter((_, i) => i !== 2)}))

// Topics per page. An nsqd can carry thousands of topics, each with its channels and clients;
// drawing them all at once takes the browser many seconds (and as long again on every refresh).
export const PAGE_SIZE = 25

// A channel's clients, folded away: the table is only built while the list is open.
function clientList(name, c, ctx) {
  const open = ctx.state.openClients || (ctx.state.openClients = new Set())
  const id = `${name}\u0000${c.channel_name}`
  const isOpen = open.has(id)
  return h('details', {
    class: 'clients-details',
    'data-key': `clients-${name}-${c.channel_name}`,
    open: isOpen,
    ontoggle: (ev) => {
      const now = ev.currentTarget.open
      if (now === open.has(id)) return
      if (now) open.add(id)
      else open.delete(id)
      ctx.rerender()
    },
  },
  h('summary', null, `${c.channel_name}: ${num(c.clients.length)} ${c.clients.length === 1 ? 'client' : 'clients'}`),
  isOpen ? table({label: `Clients of ${name}/${c.channel_name}`, cls: 'table-clients', columns: COLUMNS, rows: nodeless(clientRows(c.clients))}) : null)
}

function topicBlock(node, t, ctx) {
  const channels = (Array.isArray(t.channels) ? t.channels : []).slice()
    .sort((a, b) => String(a.channel_name).localeCompare(String(b.channel_name)))
  const name = t.topic_name
  const clientLists = channels.filter((c) => (c.clients || []).length).map((c) => clientList(name, c, ctx))

  return h('section', {class: 'card topic-card', 'data-key': `topic-${name}`, 'data-topic': name},
    h('div', {class: 'card-head'},
      h('h2', {class: 'card-title'}, link(`topics/${enc(name)}`, name),
        t.paused ? [' ', pill('paused', 'warn')] : null, isEphemeral(name) ? [' ', pill('ephemeral', 'info')] : null),
      h('dl', {class: 'inline-stats'},
        h('div', null, h('dt', null, 'Depth'), h('dd', null, num(t.depth), h('small', null, ` (${num(t.memory_depth ?? (t.depth - (t.backend_depth || 0)))} + ${num(t.backend_depth)})`))),
        h('div', null, h('dt', null, 'Messages'), h('dd', null, num(t.message_count))),
        h('div', null, h('dt', null, 'Channels'), h('dd', null, num(channels.length))))),
    !channels.length ? h('p', {class: 'card-note muted'}, 'No channels: messages stay in the topic until a consumer subscribes.') : table({
      label: `Channels of ${name}`,
      cls: 'table-channels',
      columns: [
        {label: 'Channel'}, {label: 'Depth', num: true}, {label: 'Memory + disk', num: true}, {label: 'In flight', num: true},
        {label: 'Deferred', num: true}, {label: 'Requeued', num: true}, {label: 'Timed out', num: true},
        {label: 'Messages', num: true}, {label: 'Clients', num: true}, {label: 'State'},
      ],
      rows: channels.map((c) => ({
        key: c.channel_name,
        cells: [
          h('span', {class: 'name-cell'}, link(`topics/${enc(name)}/${enc(c.channel_name)}`, c.channel_name),
            isEphemeral(c.channel_name) ? pill('ephemeral', 'info') : null),
          num(c.depth),
          `${num(c.memory_depth ?? (c.depth - (c.backend_depth || 0)))} + ${num(c.backend_depth)}`,
          num(c.in_flight_count), num(c.deferred_count), num(c.requeue_count), num(c.timeout_count),
          num(c.message_count), num(c.client_count ?? (c.clients || []).length),
          c.paused ? pill('paused', 'warn') : pill('active', 'ok'),
        ],
      })),
      empty: 'No channels.',
    }),
    clientLists.length ? h('div', {class: 'client-lists'}, clientLists) : null)
}

export default {
  nav: 'nodes',
  title: ([node]) => `Node ${node}`,

  async load([node]) {
    const [res, list] = await Promise.all([
      get(`api/nodes/${enc(node)}`),
      get('api/nodes').catch(() => null),
    ])
    const info = list && Array.isArray(list.nodes) ? list.nodes.find((n) => nodeId(n) === node) : null
    return {res, info, warning: warningOf(res)}
  },

  render({res, info}, ctx) {
    const [node] = ctx.params
    const topics = (Array.isArray(res.topics) ? res.topics : []).slice()
      .sort((a, b) => String(a.topic_name).localeCompare(String(b.topic_name)))
    const channelCount = topics.reduce((n, t) => n + (t.channels || []).length, 0)
    const filter = (ctx.state.filter || '').trim().toLowerCase()
    const matching = filter ? topics.filter((t) => String(t.topic_name).toLowerCase().includes(filter)) : topics
    const page = paginate(matching, ctx.state, PAGE_SIZE)
    const toPage = (top) => (n) => {
      ctx.state.page = n
      ctx.rerender()
      // From the bottom of the list: back up to its top.
      if (!top) document.querySelector('main .page-toolbar')?.scrollIntoView({block: 'center'})
    }
    const search = topics.length > PAGE_SIZE || filter ? h('input', {
      type: 'search',
      class: 'input',
      id: 'node-topic-filter',
      placeholder: 'Filter topics  ( / )',
      'aria-label': 'Filter the topics of this node',
      autocomplete: 'off',
      spellcheck: 'false',
      value: ctx.state.filter || '',
      oninput: (ev) => {
        ctx.state.filter = ev.target.value
        ctx.state.page = 1
        ctx.rerender()
      },
    }) : null
    const top = pager(page, toPage(true), {label: 'Pages of topics', noun: 'topics', key: 'pager-top'})
    return h('div', null,
      pageHeader({
        crumbs: [link('nodes', 'Nodes'), h('span', {'aria-current': 'page'}, node)],
        title: info && info.hostname ? info.hostname : node,
        badges: [info && info.out_of_date ? pill(`v${info.version} (out of date)`, 'warn') : null],
        sub: info ? `${node} · TCP ${info.broadcast_address}:${info.tcp_port} · nsqd v${info.version}` : node,
      }),
      stats([
        {label: 'Topics', value: num(topics.length), id: 'topics'},
        {label: 'Channels', value: num(channelCount), id: 'channels'},
        {label: 'Messages', value: num(res.total_messages), id: 'total-messages'},
        {label: 'Clients', value: num(res.total_clients), id: 'total-clients'},
      ]),
      search || top ? h('div', {class: 'toolbar page-toolbar'}, search, top) : null,
      !topics.length ? h('div', {class: 'empty'}, h('p', null, 'This node has no topics.'))
        : !matching.length ? h('div', {class: 'empty'}, h('p', null, `No topic of this node matches “${ctx.state.filter}”.`))
          : h('div', {class: 'cards'}, page.items.map((t) => topicBlock(node, t, ctx))),
      page.pages > 1 ? h('div', {class: 'toolbar toolbar-end'},
        pager(page, toPage(false), {label: 'Pages of topics (end of list)', noun: 'topics', key: 'pager-bottom'})) : null)
  },
}
