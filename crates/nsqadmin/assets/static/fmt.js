// Number, duration and time formatting.

const intFormat = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0})
const oneDecimal = new Intl.NumberFormat(undefined, {maximumFractionDigits: 1})
const twoDecimals = new Intl.NumberFormat(undefined, {maximumFractionDigits: 2})

// 1234567 -> "1,234,567" (separators follow the browser's locale).
export function num(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–'
  return intFormat.format(Number(n))
}

// Rates: "0", "0.25", "41.5", "1,204".
export function rate(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '–'
  const v = Number(n)
  if (Math.abs(v) >= 100) return intFormat.format(v)
  if (Math.abs(v) >= 10) return oneDecimal.format(v)
  return twoDecimals.format(v)
}

// Short form for chart axes: 950, 1.2k, 34k, 1.5M.
export function compact(n) {
  const v = Number(n)
  const a = Math.abs(v)
  if (a >= 1e9) return trim(v / 1e9) + 'G'
  if (a >= 1e6) return trim(v / 1e6) + 'M'
  if (a >= 1e4) return trim(v / 1e3) + 'k'
  if (a >= 100 || Number.isInteger(v)) return intFormat.format(v)
  if (a < 1) return String(Number(v.toPrecision(2)))
  return twoDecimals.format(v)
}

function trim(v) {
  return Math.abs(v) >= 100 ? String(Math.round(v)) : oneDecimal.format(v)
}

// A latency in nanoseconds: "850ns", "12.5µs", "3.2ms", "1.25s", "2m 5s".
export function latency(ns) {
  if (ns === null || ns === undefined || !Number.isFinite(Number(ns))) return '–'
  const v = Number(ns)
  if (v < 1e3) return `${Math.round(v)}ns`
  if (v < 1e6) return `${trim(v / 1e3)}µs`
  if (v < 1e9) return `${trim(v / 1e6)}ms`
  if (v < 60e9) return `${twoDecimals.format(v / 1e9)}s`
  return duration(v / 1e9)
}

// A duration in seconds: "45s", "3m 12s", "5h 2m", "3d 4h".
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return '–'
  let s = Math.max(0, Math.floor(Number(seconds)))
  const d = Math.floor(s / 86400)
  s -= d * 86400
  const hr = Math.floor(s / 3600)
  s -= hr * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  if (d > 0) return hr ? `${d}d ${hr}h` : `${d}d`
  if (hr > 0) return m ? `${hr}h ${m}m` : `${hr}h`
  if (m > 0) return s ? `${m}m ${s}s` : `${m}m`
  return `${s}s`
}

// Quantile 0.99 -> "p99", 0.999 -> "p99.9", 0.5 -> "p50".
export function quantile(q) {
  const p = Math.round(Number(q) * 100000) / 1000
  return `p${p}`
}

function pad(n) {
  return String(n).padStart(2, '0')
}

// Unix seconds -> "14:05:09" (local time).
export function clock(ts) {
  const d = new Date(ts * 1000)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

// Unix seconds -> "14:05" (local time).
export function clockShort(ts) {
  const d = new Date(ts * 1000)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`
}

// Unix seconds -> "2024-12-04 14:05:09" (local time).
export function dateTime(ts) {
  const d = new Date(ts * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ts)}`
}

export function plural(n, one, many) {
  return `${num(n)} ${Number(n) === 1 ? one : many || one + 's'}`
}
