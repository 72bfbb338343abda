// nsqd nodes list.

import {h} from './dom.js'
import {config, enc, get, href, warningOf} from './api.js'
import {num} from './fmt.js'
import {banner, nodeLink, pageHeader, pill, table} from './ui.js'

const TOPIC_CHIPS = 8

export function nodeId(n) {
  const host = String(n.broadcast_address || '')
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `${bracketed}:${n.http_port}`
}

function topicChips(n) {
  const topics = Array.isArray(n.topics) ? n.topics : []
  if (!topics.length) return h('span', {class: 'muted'}, 'none')
  const shown = topics.slice(0, TOPIC_CHIPS)
  return h('span', {class: 'chips'},
    shown.map((t) => t.tombstoned
      ? h('span', {class: 'chip chip-tombstoned', title: `${t.topic} is tombstoned on this node`}, h('s', null, t.topic), ' tombstoned')
      : h('a', {class: 'chip', href: href(`topics/${enc(t.topic)}`)}, t.topic)),
    topics.length > shown.length ? h('span', {class: 'chip chip-more'}, `+${topics.length - shown.length} more`) : null)
}

export default {
  nav: 'nodes',
  title: () => 'Nodes',

  async load() {
    const res = await get('api/nodes')
    const nodes = Array.isArray(res.nodes) ? res.nodes : []
    return {nodes, warning: warningOf(res)}
  },

  render({nodes}) {
    const lookupds = config.lookupds.length
    const inconsistent = (n) => lookupds > 0 && (n.remote_addresses || []).length < lookupds
    const outdated = nodes.filter((n) => n.out_of_date).length
    const partial = nodes.filter(inconsistent).length

    const rows = nodes.map((n) => {
      const id = nodeId(n)
      const topics = Array.isArray(n.topics) ? n.topics : []
      const tomb = topics.filter((t) => t.tombstoned).length
      return {
        key: id,
        cls: [n.out_of_date && 'row-warn', inconsistent(n) && 'row-warn'].filter(Boolean).join(' ') || undefined,
        cells: [
          h('span', {class: 'name-cell'}, nodeLink(id, n.hostname),
            inconsistent(n) ? pill(`seen by ${(n.remote_addresses || []).length} of ${lookupds} lookupd`, 'warn',
              `Registered with: ${(n.remote_addresses || []).join(', ') || 'none'}`) : null),
          h('code', null, n.broadcast_address),
          num(n.tcp_port),
          num(n.http_port),
          n.out_of_date ? pill(`v${n.version}`, 'warn', 'Older than the newest nsqd in the cluster') : h('span', null, `v${n.version}`),
          h('span', null, num(topics.length - tomb), tomb ? h('small', {class: 'muted'}, ` +${tomb} tombstoned`) : null),
          topicChips(n),
        ],
      }
    })

    return h('div', null,
      pageHeader({title: 'Nodes', sub: `${num(nodes.length)} nsqd ${nodes.length === 1 ? 'node' : 'nodes'}` +
        (lookupds ? `, as reported by ${num(lookupds)} nsqlookupd` : '')}),
      outdated ? banner('warning', `${outdated} ${outdated === 1 ? 'node runs' : 'nodes run'} an older nsqd version than the rest of the cluster.`) : null,
      partial ? banner('warning', `${partial} ${partial === 1 ? 'node is' : 'nodes are'} not registered with every nsqlookupd, so some consumers may not find them.`) : null,
      table({
        label: 'nsqd nodes',
        cls: 'table-node-list',
        columns: [
          {label: 'Node'}, {label: 'Broadcast address'}, {label: 'TCP port', num: true}, {label: 'HTTP port', num: true},
          {label: 'Version'}, {label: 'Topics', num: true}, {label: 'Topic names'},
        ],
        rows,
        empty: 'No nsqd node is registered.',
      }))
  },
}
