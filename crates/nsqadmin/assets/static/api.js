// Talking to the nsqadmin JSON API, and the settings the server put in the page.

const raw = window.NSQADMIN || {}

function asNumber(v, fallback) {
  const n = Number(v)
  return Number.isFinite(n) ? n : fallback
}

function normaliseBase(p) {
  let base = typeof p === 'string' && p ? p : '/'
  if (!base.startsWith('/')) base = '/' + base
  if (!base.endsWith('/')) base += '/'
  return base
}

export const config = {
  version: String(raw.version || ''),
  userAgent: String(raw.user_agent || 'nsqadmin'),
  base: normaliseBase(raw.base_path),
  isAdmin: raw.is_admin !== false,
  graphEnabled: Boolean(raw.graph_enabled),
  graphiteUrl: String(raw.graphite_url || ''),
  statsdCounterFormat: String(raw.statsd_counter_format ?? 'stats.counters.%s.count'),
  statsdGaugeFormat: String(raw.statsd_gauge_format ?? 'stats.gauges.%s'),
  statsdPrefix: String(raw.statsd_prefix ?? 'nsq.%s'),
  statsdInterval: asNumber(raw.statsd_interval, 60),
  lookupds: Array.isArray(raw.nsqlookupd) ? raw.nsqlookupd.map(String) : [],
  historyInterval: asNumber(raw.history_interval, 0),
  historyRetention: asNumber(raw.history_retention, 0),
}

// An application path (no leading slash) under the base path.
export function href(path = '') {
  return config.base + path.replace(/^\/+/, '')
}

export const enc = encodeURIComponent

export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

// Calls the API; resolves to the decoded JSON body, rejects with ApiError.
export async function api(method, path, body) {
  const headers = {
    Accept: 'application/vnd.nsq; version=1.0',
    'X-UserAgent': config.userAgent,
  }
  const init = {method, headers, cache: 'no-store'}
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  let res
  try {
    res = await fetch(href(path), init)
  } catch (err) {
    throw new ApiError(0, `cannot reach nsqadmin (${err.message})`)
  }
  const text = await res.text()
  let data = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch (err) {
      data = null
    }
  }
  if (!res.ok) {
    const message = data && typeof data.message === 'string' && data.message
      ? data.message
      : text.trim() || `${res.status} ${res.statusText}`
    throw new ApiError(res.status, message)
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(res.status, `unexpected response from ${path}`)
  }
  return data
}

export const get = (path) => api('GET', path)

// The warning part of a response, if the server flagged a partial result.
export function warningOf(data) {
  const msg = data && typeof data.message === 'string' ? data.message : ''
  return msg.startsWith('WARNING:') ? msg : ''
}
