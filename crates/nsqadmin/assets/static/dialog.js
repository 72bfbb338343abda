// Confirmation dialog: modal, keeps keyboard focus inside, Escape cancels,
// and gives focus back to whatever opened it.

import {h} from './dom.js'

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])'

// confirmAction({title, body, confirmLabel, danger}) -> Promise<boolean>
export function confirmAction({title, body, confirmLabel = 'Confirm', danger = false}) {
  return new Promise((resolve) => {
    const opener = document.activeElement
    const titleId = `dlg-title-${Date.now()}`
    const cancel = h('button', {type: 'button', class: 'btn', 'data-dialog': 'cancel'}, 'Cancel')
    const ok = h('button', {type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', 'data-dialog': 'confirm'}, confirmLabel)
    const dlg = h('dialog', {class: 'dialog', 'aria-labelledby': titleId, 'aria-modal': 'true'},
      h('h2', {id: titleId, class: 'dialog-title'}, title),
      h('div', {class: 'dialog-body'}, body),
      h('div', {class: 'dialog-actions'}, cancel, ok))

    let settled = false
    const finish = (result) => {
      if (settled) return
      settled = true
      document.removeEventListener('keydown', onKey, true)
      if (dlg.open) dlg.close()
      dlg.remove()
      if (opener && typeof opener.focus === 'function' && opener.isConnected) opener.focus()
      resolve(result)
    }
    const onKey = (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault()
        finish(false)
      } else if (ev.key === 'Tab') {
        const items = Array.from(dlg.querySelectorAll(FOCUSABLE))
        if (!items.length) return
        const first = items[0]
        const last = items[items.length - 1]
        if (ev.shiftKey && (document.activeElement === first || !dlg.contains(document.activeElement))) {
          ev.preventDefault()
          last.focus()
        } else if (!ev.shiftKey && (document.activeElement === last || !dlg.contains(document.activeElement))) {
          ev.preventDefault()
          first.focus()
        }
      }
    }
    cancel.addEventListener('click', () => finish(false))
    ok.addEventListener('click', () => finish(true))
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault()
      finish(false)
    })
    // A click on the backdrop (outside the dialog box) cancels.
    dlg.addEventListener('click', (ev) => {
      if (ev.target !== dlg) return
      const r = dlg.getBoundingClientRect()
      const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom
      if (!inside) finish(false)
    })
    document.addEventListener('keydown', onKey, true)
    document.body.appendChild(dlg)
    dlg.showModal()
    // The safe choice gets the focus for destructive actions.
    ;(danger ? cancel : ok).focus()
  })
}
