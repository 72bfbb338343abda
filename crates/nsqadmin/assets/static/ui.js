// Building blocks shared by the pages.

import {h} from './dom.js'
import {config, href} from './api.js'
import {latency, num, quantile} from './fmt.js'

export function link(path, text, props = {}) {
  return h('a', {href: href(path), ...props}, text)
}

export function banner(kind, text, extra) {
  return h('div', {class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status'}, text, extra || null)
}

export function pill(text, kind = 'neutral', title) {
  return h('span', {class: `pill pill-${kind}`, title}, text)
}

export function button(label, onclick, {kind = '', key, title, small = true, disabled = false} = {}) {
  return h('button', {
    type: 'button',
    class: ['btn', small && 'btn-sm', kind && `btn-${kind}`],
    onclick,
    title,
    disabled,
    'data-key': key,
    'data-action': key,
  }, label)
}

// A page heading with breadcrumbs, badges and (admin only) actions.
export function pageHeader({crumbs = [], title, badges = [], actions = [], sub}) {
  const shown = config.isAdmin ? actions.filter(Boolean) : []
  return h('div', {class: ['page-head', shown.length && 'has-actions']},
    crumbs.length ? h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
      h('ol', null, crumbs.map((c) => h('li', null, c)))) : null,
    h('h1', {class: 'page-title', tabindex: '-1'}, title, ...badges.filter(Boolean).map((b) => [' ', b])),
    sub ? h('p', {class: 'page-sub'}, sub) : null,
    shown.length ? h('div', {class: 'page-actions', role: 'group', 'aria-label': 'Actions'}, shown) : null)
}

export function section(title, ...children) {
  const id = 'sec-' + String(title).toLowerCase().replace(/[^a-z0-9]+/g, '-')
  return h('section', {class: 'section', 'aria-labelledby': id, 'data-key': id},
    h('h2', {class: 'section-title', id}, title), ...children)
}

// Summary tiles: [{label, value, hint, kind}]
export function stats(items) {
  return h('dl', {class: 'stats'}, items.filter(Boolean).map((it) =>
    h('div', {class: ['stat', it.kind && `stat-${it.kind}`], 'data-stat': it.id || it.label},
      h('dt', null, it.label),
      h('dd', null, h('span', {class: 'stat-value'}, it.value), it.hint ? h('small', null, it.hint) : null))))
}

// table({columns: [{label, num, title}], rows: [[cell...] | {cells, cls, key}], foot, empty, label})
export function table({columns, rows, foot, empty = 'Nothing here.', label, cls}) {
  const head = h('thead', null, h('tr', null, columns.map((c) =>
    h('th', {scope: 'col', class: [c.num && 'num', c.cls], title: c.title}, c.label))))
  const bodyRows = rows.map((r) => {
    const row = Array.isArray(r) ? {cells: r} : r
    return h('tr', {class: row.cls, 'data-key': row.key, 'data-row': row.key},
      row.cells.map((cell, i) => {
        const c = columns[i] || {}
        return i === 0 && !c.num
          ? h('th', {scope: 'row', class: c.cls}, cell)
          : h('td', {class: [c.num && 'num', c.cls]}, cell)
      }))
  })
  if (!bodyRows.length) {
    bodyRows.push(h('tr', {class: 'empty-row'}, h('td', {colspan: columns.length}, empty)))
  }
  const tfoot = foot ? h('tfoot', null, h('tr', {class: 'totals'}, foot.map((cell, i) => {
    const c = columns[i] || {}
    return i === 0 ? h('th', {scope: 'row'}, cell) : h('td', {class: [c.num && 'num', c.cls]}, cell)
  }))) : null
  return h('div', {class: 'table-wrap', role: 'region', 'aria-label': label || 'table'},
    h('table', {class: ['table', cls]}, head, h('tbody', null, bodyRows), tfoot))
}

// Depth with its memory and backend parts.
export function depthCell(depth, memory, backend) {
  return h('span', {class: 'depth'}, num(depth),
    h('small', {class: 'split', title: 'in memory + on disk'}, `${num(memory)} + ${num(backend)}`))
}

export function yesNo(v, yes = 'yes', no = 'no') {
  return v ? pill(yes, 'ok') : h('span', {class: 'muted'}, no)
}

// Percentiles of an e2e aggregate; merged ones carry average/max, per-node ones value.
// An aggregate that counted no message has no meaningful percentiles.
export function percentiles(e2e) {
  if (!e2e || !Array.isArray(e2e.percentiles) || Number(e2e.count) === 0) return []
  return e2e.percentiles.map((p) => ({
    quantile: Number(p.quantile),
    value: p.value ?? p.average ?? p.max,
    max: p.max ?? p.value,
  }))
}

// Table of e2e latency: a row per node plus the merged row; null when nothing was measured.
export function e2eTable(total, nodes) {
  const merged = percentiles(total && total.e2e_processing_latency)
  const perNode = nodes.map((n) => percentiles(n.e2e_processing_latency))
  const quantiles = [...new Set([...merged, ...perNode.flat()].map((p) => p.quantile))].sort((a, b) => b - a)
  if (!quantiles.length) return null
  const cellsFor = (list, useMax) => quantiles.map((q) => {
    const p = list.find((x) => x.quantile === q)
    if (!p) return h('span', {class: 'muted', title: 'no messages measured'}, '–')
    return useMax && p.max !== undefined && p.max !== p.value
      ? h('span', {title: `max ${latency(p.max)}`}, latency(p.value))
      : latency(p.value)
  })
  return table({
    label: 'End-to-end processing latency',
    columns: [{label: 'Node'}, ...quantiles.map((q) => ({label: quantile(q), num: true}))],
    rows: nodes.map((n, i) => ({key: n.node, cells: [nodeLink(n.node, n.hostname), ...cellsFor(perNode[i])]})),
    foot: nodes.length > 1 && merged.length ? ['All nodes (average)', ...cellsFor(merged, true)] : null,
  })
}

export function nodeLink(node, hostname) {
  if (!node || node === '*') return hostname || node || '–'
  return h('a', {href: href(`nodes/${encodeURIComponent(node)}`), class: 'node-link'},
    h('span', null, node), hostname && hostname !== node ? h('small', null, hostname) : null)
}

export function loading(text = 'Loading…') {
  return h('div', {class: 'loading', role: 'status'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), text)
}

// One page of `items`, `size` per page. The page number (from 1) lives in `state[key]`, so it
// survives refreshes; it is clamped to the pages there are.
export function paginate(items, state, size, key = 'page') {
  const pages = Math.max(1, Math.ceil(items.length / size))
  const page = Math.min(Math.max(1, Math.floor(Number(state[key])) || 1), pages)
  state[key] = page
  const start = (page - 1) * size
  return {items: items.slice(start, start + size), page, pages, start, size, total: items.length}
}

// First / previous / next / last buttons for a list split by paginate(); null when it all fits on
// one page. `onPage(n)` is called with the page wanted.
export function pager(p, onPage, {label = 'Pages', noun = 'items', key = 'pager'} = {}) {
  if (p.pages <= 1) return null
  const go = (n, text, aria, name) => h('button', {
    type: 'button',
    class: 'btn btn-sm',
    'data-key': name,
    'data-page': name,
    'aria-label': aria,
    disabled: n < 1 || n > p.pages || n === p.page,
    onclick: () => onPage(n),
  }, text)
  const last = Math.min(p.total, p.start + p.size)
  return h('nav', {class: 'pager', 'aria-label': label, 'data-key': key},
    go(1, '«', 'First page', 'first'),
    go(p.page - 1, '‹ Previous', 'Previous page', 'prev'),
    h('span', {class: 'pager-status'}, `${num(p.start + 1)}–${num(last)} of ${num(p.total)} ${noun}`,
      h('small', {class: 'muted'}, ` · page ${num(p.page)} of ${num(p.pages)}`)),
    go(p.page + 1, 'Next ›', 'Next page', 'next'),
    go(p.pages, '»', 'Last page', 'last'))
}
