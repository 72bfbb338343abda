// Small SVG line charts: time on x, one or more series on y.
//
// A point is [unixSeconds, value]; a null value breaks the line (a gap in
// the history). Every drawn line is a <path class="line"> whose data-points
// attribute says how many points it joins.

import {h, svg} from './dom.js'
import {clock, clockShort, compact} from './fmt.js'

const MARGIN = {top: 12, right: 14, bottom: 26, left: 52}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]

// A "nice" axis top and step for values up to `max`.
function niceScale(max, ticks) {
  if (!(max > 0)) return {top: 1, step: 0.25}
  const rough = max / ticks
  const mag = Math.pow(10, Math.floor(Math.log10(rough)))
  const norm = rough / mag
  const stepNorm = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10
  const step = stepNorm * mag
  return {top: Math.ceil(max / step - 1e-9) * step, step}
}

// Split points into runs without nulls.
function segments(points) {
  const runs = []
  let run = []
  for (const [t, v] of points) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) {
      if (run.length) runs.push(run)
      run = []
    } else {
      run.push([t, Number(v)])
    }
  }
  if (run.length) runs.push(run)
  return runs
}

function fixed(n) {
  return Math.round(n * 10) / 10
}

function lastValue(points) {
  for (let i = points.length - 1; i >= 0; i--) {
    const v = points[i][1]
    if (v !== null && v !== undefined && Number.isFinite(Number(v))) return Number(v)
  }
  return null
}

// lineChart({title, series: [{label, points}], format, axisFormat, width, height, from, to, id})
export function lineChart(opts) {
  const width = Math.max(240, Math.round(opts.width || 560))
  const height = Math.max(120, Math.round(opts.height || 200))
  const format = opts.format || compact
  const axisFormat = opts.axisFormat || compact
  const series = opts.series || []
  const plotW = width - MARGIN.left - MARGIN.right
  const plotH = height - MARGIN.top - MARGIN.bottom

  let tMin = opts.from
  let tMax = opts.to
  let vMax = 0
  let count = 0
  for (const s of series) {
    for (const [t, v] of s.points) {
      if (tMin === undefined || t < tMin) tMin = opts.from ?? t
      if (tMax === undefined || t > tMax) tMax = opts.to ?? t
      if (v !== null && v !== undefined && Number.isFinite(Number(v))) {
        vMax = Math.max(vMax, Number(v))
        count++
      }
    }
  }
  if (tMin === undefined) tMin = 0
  if (tMax === undefined || tMax <= tMin) tMax = tMin + 1
  const {top, step} = niceScale(Math.max(vMax, opts.minTop || 0), 4)
  const x = (t) => MARGIN.left + ((t - tMin) / (tMax - tMin)) * plotW
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH

  const grid = []
  for (let v = 0; v <= top + step / 2; v += step) {
    const yy = fixed(y(v))
    grid.push(svg('line', {class: 'grid', x1: MARGIN.left, x2: MARGIN.left + plotW, y1: yy, y2: yy}))
    grid.push(svg('text', {class: 'tick', x: MARGIN.left - 6, y: yy + 4, 'text-anchor': 'end'}, axisFormat(v)))
  }
  const span = tMax - tMin
  const maxTicks = Math.max(2, Math.floor(plotW / 78))
  const tStep = TIME_STEPS.find((s) => span / s <= maxTicks) || Math.ceil(span / maxTicks / 86400) * 86400
  const firstTick = Math.ceil(tMin / tStep) * tStep
  const showSeconds = tStep < 60
  for (let t = firstTick; t <= tMax; t += tStep) {
    const xx = fixed(x(t))
    grid.push(svg('line', {class: 'grid grid-x', x1: xx, x2: xx, y1: MARGIN.top, y2: MARGIN.top + plotH}))
    grid.push(svg('text', {class: 'tick', x: xx, y: height - 8, 'text-anchor': 'middle'},
      showSeconds ? clock(t) : clockShort(t)))
  }

  const lines = []
  series.forEach((s, i) => {
    const tone = `tone-${(s.tone ?? i) % 6}`
    for (const run of segments(s.points)) {
      const pts = run.map(([t, v]) => `${fixed(x(t))},${fixed(y(v))}`)
      if (run.length === 1) {
        const [t, v] = run[0]
        lines.push(svg('circle', {class: `dot ${tone}`, cx: fixed(x(t)), cy: fixed(y(v)), r: 2.5}))
        continue
      }
      if (series.length === 1) {
        const base = fixed(y(0))
        const area = `M${fixed(x(run[0][0]))},${base}L${pts.join('L')}L${fixed(x(run[run.length - 1][0]))},${base}Z`
        lines.push(svg('path', {class: `area ${tone}`, d: area}))
      }
      lines.push(svg('path', {class: `line ${tone}`, d: `M${pts.join('L')}`, dataset: {points: run.length}}))
    }
  })

  const cross = svg('line', {class: 'crosshair', x1: 0, x2: 0, y1: MARGIN.top, y2: MARGIN.top + plotH, visibility: 'hidden'})
  const tip = h('div', {class: 'chart-tip', hidden: true})
  const allTimes = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b)
  const onMove = (ev) => {
    const svgEl = ev.currentTarget.ownerSVGElement || ev.currentTarget
    const box = svgEl.getBoundingClientRect()
    const scale = width / box.width
    const px = (ev.clientX - box.left) * scale
    if (!allTimes.length) return
    const t = tMin + ((px - MARGIN.left) / plotW) * (tMax - tMin)
    let best = allTimes[0]
    for (const cand of allTimes) if (Math.abs(cand - t) < Math.abs(best - t)) best = cand
    const fig = svgEl.parentNode
    const line = fig.querySelector('.crosshair')
    const tipEl = fig.querySelector('.chart-tip')
    const xx = fixed(x(best))
    line.setAttribute('x1', xx)
    line.setAttribute('x2', xx)
    line.setAttribute('visibility', 'visible')
    const rows = series.map((s, i) => {
      const p = s.points.find((q) => q[0] === best)
      const v = p ? p[1] : null
      return h('div', {class: 'tip-row'},
        h('span', {class: `swatch tone-${(s.tone ?? i) % 6}`}), `${s.label}: `,
        h('strong', null, v === null || v === undefined ? '–' : format(v)))
    })
    tipEl.replaceChildren(h('div', {class: 'tip-time'}, clock(best)), ...rows)
    tipEl.hidden = false
    const left = xx / scale
    tipEl.style.left = `${Math.min(Math.max(left + 10, 0), box.width - tipEl.offsetWidth - 4)}px`
    if (left + 10 + tipEl.offsetWidth > box.width) tipEl.style.left = `${Math.max(0, left - tipEl.offsetWidth - 10)}px`
  }
  const onLeave = (ev) => {
    const fig = (ev.currentTarget.ownerSVGElement || ev.currentTarget).parentNode
    fig.querySelector('.crosshair').setAttribute('visibility', 'hidden')
    fig.querySelector('.chart-tip').hidden = true
  }

  const summary = series.map((s) => `${s.label} ${lastValue(s.points) === null ? 'no data' : format(lastValue(s.points))}`).join(', ')
  const chart = svg('svg', {
    class: 'chart-svg',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': `${opts.title}: ${count ? summary : 'no data yet'}`,
  },
  ...grid,
  svg('line', {class: 'axis', x1: MARGIN.left, x2: MARGIN.left + plotW, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH}),
  ...lines,
  cross,
  svg('rect', {class: 'hover', x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, onpointermove: onMove, onpointerleave: onLeave}),
  )

  const legend = h('ul', {class: 'legend'}, series.map((s, i) => h('li', null,
    h('span', {class: `swatch tone-${(s.tone ?? i) % 6}`}),
    s.label, ' ', h('strong', null, lastValue(s.points) === null ? '–' : format(lastValue(s.points))))))

  return h('figure', {class: 'chart', 'data-key': opts.id || opts.title, 'data-chart': opts.id || ''},
    h('figcaption', null, h('span', {class: 'chart-title'}, opts.title), legend),
    h('div', {class: 'chart-body'}, chart, tip,
      count ? null : h('p', {class: 'chart-empty'}, opts.empty || 'No samples yet')))
}

// A tiny line without axes for tables; `points` as for lineChart.
export function sparkline(points, {width = 96, height = 24, label = ''} = {}) {
  const runs = segments(points)
  const values = runs.flat().map((p) => p[1])
  if (!values.length) return h('span', {class: 'spark-empty', title: 'no history yet'}, '·')
  const ts = points.map((p) => p[0])
  const tMin = Math.min(...ts)
  const tMax = Math.max(tMin + 1, ...ts)
  const vMax = Math.max(...values) || 1
  const x = (t) => fixed(1 + ((t - tMin) / (tMax - tMin)) * (width - 2))
  const y = (v) => fixed(height - 2 - (v / vMax) * (height - 4))
  const paths = runs.map((run) => run.length === 1
    ? svg('circle', {class: 'dot', cx: x(run[0][0]), cy: y(run[0][1]), r: 1.5})
    : svg('path', {class: 'line', d: 'M' + run.map(([t, v]) => `${x(t)},${y(v)}`).join('L'), dataset: {points: run.length}}))
  return svg('svg', {class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label},
    ...paths)
}
