// nsqlookupd view: the lookupds, topics and channels without producers, and creation.

import {h} from './dom.js'
import {api, config, enc, get, warningOf} from './api.js'
import {num} from './fmt.js'
import {button, pageHeader, section} from './ui.js'

// nsqd's rule for topic and channel names.
const NAME_RE = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/

function validName(s) {
  return s.length >= 1 && s.length <= 64 && NAME_RE.test(s)
}

function createForm(ctx) {
  const submit = async (ev) => {
    ev.preventDefault()
    const form = ev.currentTarget
    const topicInput = form.elements.topic
    const channelInput = form.elements.channel
    const topic = topicInput.value.trim()
    const channel = channelInput.value.trim()
    topicInput.setCustomValidity(validName(topic) ? '' : 'Use 1 to 64 letters, digits, ".", "_" or "-" (optionally ending in #ephemeral).')
    channelInput.setCustomValidity(!channel || validName(channel) ? '' : 'Use 1 to 64 letters, digits, ".", "_" or "-" (optionally ending in #ephemeral).')
    if (!form.reportValidity()) return
    const body = channel ? {topic, channel} : {topic}
    const ok = await ctx.run({
      done: channel ? `Created channel ${channel} on topic ${topic}.` : `Created topic ${topic}.`,
      call: () => api('POST', 'api/topics', body),
    })
    if (ok) form.reset()
  }
  const clearValidity = (ev) => ev.target.setCustomValidity('')
  return h('form', {class: 'create-form', id: 'create-form', novalidate: true, onsubmit: submit, 'data-key': 'create-form'},
    h('div', {class: 'field'},
      h('label', {for: 'create-topic'}, 'Topic'),
      h('input', {class: 'input', id: 'create-topic', name: 'topic', required: true, maxlength: 64, autocomplete: 'off', spellcheck: 'false', placeholder: 'topic name', oninput: clearValidity})),
    h('div', {class: 'field'},
      h('label', {for: 'create-channel'}, 'Channel ', h('small', {class: 'muted'}, '(optional)')),
      h('input', {class: 'input', id: 'create-channel', name: 'channel', maxlength: 64, autocomplete: 'off', spellcheck: 'false', placeholder: 'channel name', oninput: clearValidity})),
    h('div', {class: 'field field-submit'},
      h('button', {type: 'submit', class: 'btn btn-primary', id: 'create-submit'}, 'Create')),
    h('p', {class: 'form-help muted'},
      'The topic is registered in every nsqlookupd; a channel is also created on every nsqd that already has the topic. ',
      'Names use letters, digits, “.”, “_” and “-”, up to 64 characters.'))
}

export default {
  nav: 'lookup',
  title: () => 'Lookup',

  async load() {
    if (!config.lookupds.length) return {inactive: {}, warning: ''}
    const res = await get('api/topics?inactive=true')
    const inactive = res.topics && typeof res.topics === 'object' && !Array.isArray(res.topics) ? res.topics : {}
    return {inactive, warning: warningOf(res)}
  },

  render({inactive}, ctx) {
    const lookupds = config.lookupds
    const names = Object.keys(inactive).sort()
    const del = (label, path, what, body) => button('Delete', () => ctx.run({
      confirm: {title: `Delete ${what}?`, body, confirmLabel: 'Delete', danger: true},
      done: `Deleted ${what}.`,
      call: () => api('DELETE', path),
    }), {key: label, kind: 'danger', title: `Delete ${what}`})

    const inactiveList = names.length
      ? h('ul', {class: 'inactive-list'}, names.map((t) => h('li', {class: 'inactive-topic', 'data-key': `inactive-${t}`, 'data-topic': t},
        h('div', {class: 'inactive-row'},
          h('span', {class: 'topic-link'}, t),
          h('span', {class: 'muted small'}, `${num((inactive[t] || []).length)} ${(inactive[t] || []).length === 1 ? 'channel' : 'channels'}`),
          config.isAdmin ? del(`delete-topic-${t}`, `api/topics/${enc(t)}`, `topic ${t}`, 'The topic is removed from every nsqlookupd (and from any nsqd that still has it).') : null),
        (inactive[t] || []).length ? h('ul', {class: 'inactive-channels'}, inactive[t].slice().sort().map((c) =>
          h('li', {class: 'inactive-row', 'data-key': `inactive-${t}-${c}`, 'data-channel': c},
            h('span', null, c),
            config.isAdmin ? del(`delete-channel-${t}-${c}`, `api/topics/${enc(t)}/${enc(c)}`, `channel ${c} of ${t}`, 'The channel is removed from every nsqlookupd (and from any nsqd that still has it).') : null))) : null)))
      : h('p', {class: 'muted'}, 'None: every topic nsqlookupd knows has at least one nsqd producing it.')

    return h('div', null,
      pageHeader({title: 'Lookup'}),
      section('nsqlookupd',
        lookupds.length
          ? h('ul', {class: 'lookupd-list'}, lookupds.map((a) => h('li', {'data-key': a}, h('code', null, a))))
          : h('p', {class: 'muted'}, 'nsqadmin talks to a fixed list of nsqd (--nsqd-http-address); no nsqlookupd is configured.')),
      lookupds.length ? section('Topics and channels without producers',
        h('p', {class: 'section-note muted'}, 'Registered in nsqlookupd, but no nsqd currently carries them.'),
        inactiveList) : null,
      config.isAdmin && lookupds.length ? section('Create a topic or channel', createForm(ctx)) : null)
  },
}
