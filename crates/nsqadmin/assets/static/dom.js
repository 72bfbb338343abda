// Minimal DOM building and patching.
//
// Pages build a fresh element tree on every refresh with h()/svg() and the
// app patches the live document to match it with morph(), so focus, scroll
// position, text typed into inputs and open <details> survive auto-refresh.
// Event handlers are attached through a per-element table (el.__on) that
// morph() carries over, so a patched element always runs the newest handler.

const SVG_NS = 'http://www.w3.org/2000/svg'

function dispatch(ev) {
  const fn = this.__on && this.__on[ev.type]
  if (fn) fn.call(this, ev)
}

function listen(el, type, fn) {
  if (!el.__on) el.__on = {}
  if (!(type in el.__on)) el.addEventListener(type, dispatch)
  el.__on[type] = fn
}

function applyProps(el, props) {
  if (!props) return
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      listen(el, key.slice(2).toLowerCase(), value)
    } else if (key === 'class' && Array.isArray(value)) {
      const cls = value.filter(Boolean).join(' ')
      if (cls) el.setAttribute('class', cls)
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.dataset[k] = String(v)
      }
    } else if (key === 'style' && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, v)
    } else {
      el.setAttribute(key, value === true ? '' : String(value))
    }
  }
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === true) continue
    if (Array.isArray(child)) appendChildren(el, child)
    else if (child instanceof Node) el.appendChild(child)
    else el.appendChild(document.createTextNode(String(child)))
  }
}

// h('a', {href, class, onclick}, ...children): an HTML element.
export function h(tag, props, ...children) {
  const el = document.createElement(tag)
  applyProps(el, props)
  appendChildren(el, children)
  return el
}

// svg('path', {d}): an SVG element.
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag)
  applyProps(el, props)
  appendChildren(el, children)
  return el
}

function keyOf(node) {
  return node.nodeType === 1 ? node.getAttribute('data-key') : null
}

function syncAttributes(a, b) {
  const keepOpen = a.nodeName === 'DETAILS' || a.nodeName === 'DIALOG'
  for (const attr of Array.from(a.attributes)) {
    if (keepOpen && attr.name === 'open') continue
    if (!b.hasAttribute(attr.name)) a.removeAttribute(attr.name)
  }
  for (const attr of Array.from(b.attributes)) {
    if (keepOpen && attr.name === 'open') continue
    if (a.getAttribute(attr.name) !== attr.value) a.setAttribute(attr.name, attr.value)
  }
}

function syncHandlers(a, b) {
  const fresh = b.__on || {}
  const old = a.__on || {}
  for (const type of Object.keys(old)) {
    if (!(type in fresh)) old[type] = null
  }
  for (const [type, fn] of Object.entries(fresh)) listen(a, type, fn)
}

function morphNode(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName || keyOf(a) !== keyOf(b)) {
    a.replaceWith(b)
    return
  }
  if (a.nodeType === 3 || a.nodeType === 8) {
    if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue
    return
  }
  syncAttributes(a, b)
  syncHandlers(a, b)
  // A form control's current value and checked state belong to the user.
  morphChildren(a, b)
}

// Make the children of `target` match the children of `fresh` (which is consumed).
export function morph(target, fresh) {
  morphChildren(target, fresh)
}

function morphChildren(a, b) {
  const wanted = Array.from(b.childNodes)
  for (let i = 0; i < wanted.length; i++) {
    const current = a.childNodes[i]
    if (current) morphNode(current, wanted[i])
    else a.appendChild(wanted[i])
  }
  while (a.childNodes.length > wanted.length) a.lastChild.remove()
}

export function clear(el) {
  while (el.firstChild) el.lastChild.remove()
}
