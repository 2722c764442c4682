/// The dashboard `GET /dashboard` serves: one self-contained page (no CDN, no framework, no fonts to fetch) whose
/// inline script reads the JSON API (`/api/...`) and draws every chart as SVG, refreshing itself.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Cyclone · dashboard</title>
<style>
:root {
  --bg: #f4f5f7; --panel: #ffffff; --text: #1c2128; --muted: #57606a; --line: #d0d7de; --grid: #eaeef2;
  --accent: #0969da; --good: #1a7f37; --bad: #cf222e; --warn: #bf8700; --chip: #eaeef2;
  --c0: #0969da; --c1: #8250df; --c2: #0a7b83; --c3: #bc4c00; --c4: #bf3989; --c5: #6e7781;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #161b22; --text: #e6edf3; --muted: #9da7b3; --line: #30363d; --grid: #21262d;
    --accent: #58a6ff; --good: #3fb950; --bad: #ff7b72; --warn: #d29922; --chip: #262c36;
    --c0: #58a6ff; --c1: #bc8cff; --c2: #39c5cf; --c3: #f0883e; --c4: #f778ba; --c5: #8b949e;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .75rem 1rem; }
h1 { font-size: 1.15rem; margin: 0; margin-right: auto; }
h2 { font-size: 1rem; margin: 0 0 .25rem; }
label { color: var(--muted); }
select, button { font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--line);
  border-radius: 6px; padding: .25rem .5rem; }
button { cursor: pointer; }
button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: var(--panel); }
#range, #clock { display: inline-flex; gap: .25rem; }
#clock[hidden] { display: none; }
#status { width: 100%; margin: 0; color: var(--muted); font-size: .85rem; }
main { padding: 0 1rem 1.5rem; }
#empty, #error { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
#error { border-color: var(--bad); color: var(--bad); font-weight: 600; }
#panels { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1rem; }
@media (min-width: 1000px) {
  #panels { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .wide { grid-column: 1 / -1; }
}
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; min-width: 0; }
.sub { margin: 0 0 .5rem; color: var(--muted); font-size: .85rem; }
.nodata { margin: 1.5rem 0; text-align: center; color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .4rem 0 0; padding: 0; list-style: none;
  color: var(--muted); font-size: .8rem; }
.sw { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .3em; vertical-align: -.05em; }
svg { display: block; width: 100%; height: auto; overflow: visible; }
svg text { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: var(--grid); }
svg .axis, svg .tick { stroke: var(--line); }
svg .limit { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg text.limit-label { fill: var(--bad); }
svg .guide { stroke-width: 1; stroke-dasharray: 2 3; opacity: .45; }
svg .event { stroke-width: 3; }
svg .cell { stroke: var(--panel); stroke-width: 1; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
.num { text-align: right; }
td.reason { white-space: normal; min-width: 14rem; }
td small { color: var(--muted); }
.hot { color: var(--bad); font-weight: 600; }
.chip { display: inline-block; padding: 0 .45em; border-radius: 999px; background: var(--chip); font-size: .8rem; }
.st-live { background: var(--good); color: var(--panel); }
.st-canary { background: var(--accent); color: var(--panel); }
.st-rejected { background: var(--bad); color: var(--panel); }
ol.events { list-style: none; margin: 0; padding: 0; max-height: 26rem; overflow-y: auto; }
li.event { padding: .35rem 0; border-bottom: 1px solid var(--line); display: grid; grid-template-columns: auto 1fr; gap: 0 .75rem; }
li.event time { color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }
li.event .what { min-width: 0; overflow-wrap: anywhere; }
li.event .text { display: block; color: var(--muted); font-size: .85rem; }
.k-bad { border-left: 3px solid var(--bad); }
.k-good { border-left: 3px solid var(--good); }
.k-info { border-left: 3px solid var(--accent); }
.k-quiet { border-left: 3px solid var(--line); }
.bar { display: flex; height: 1.6rem; border-radius: 6px; overflow: hidden; background: var(--chip); }
.bar span { display: block; min-width: 2px; }
ul.split { list-style: none; padding: 0; margin: .5rem 0 0; display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; }
ul.split b { font-size: 1.1rem; }
@media (max-width: 600px) {
  header { padding: .6rem .6rem; }
  main { padding: 0 .5rem 1rem; }
  #panels { gap: .6rem; }
  section { padding: .6rem .7rem; }
  th, td { padding: .25rem .3rem; }
  th { white-space: normal; }
  table { font-size: .8rem; }
  td small { display: block; }
  /* the registry becomes one card per version */
  table.registry thead { display: none; }
  table.registry, table.registry tbody, table.registry tr { display: block; }
  table.registry tr { padding: .4rem 0; border-bottom: 1px solid var(--line); }
  table.registry td { display: flex; gap: .5rem; border: 0; padding: .1rem 0; white-space: normal; text-align: left; min-width: 0; }
  table.registry td::before { content: attr(data-label); flex: 0 0 7rem; color: var(--muted); }
}
</style>
</head>
<body>
<header>
  <h1>Cyclone</h1>
  <label id="model-label">Model <select id="model" aria-label="Model"></select></label>
  <div id="range" role="group" aria-label="Time range">
    <button type="button" data-range="1h">1h</button>
    <button type="button" data-range="24h">24h</button>
    <button type="button" data-range="7d">7d</button>
    <button type="button" data-range="all">all</button>
  </div>
  <div id="clock" role="group" aria-label="Clock" hidden title="A replay: draw its stream's time, or the wall clock it ran on">
    <button type="button" data-clock="stream">stream time</button>
    <button type="button" data-clock="wall">wall clock</button>
  </div>
  <p id="status" aria-live="polite">Loading…</p>
</header>
<main id="dashboard" data-state="loading" data-model="">
  <div id="panels">
    <section data-panel="traffic" class="wide"><h2>Traffic now</h2><div class="body"></div></section>
    <section data-panel="performance" class="wide"><h2>Performance</h2><p class="sub"></p><div class="body"></div></section>
    <section data-panel="volume"><h2>Volume</h2><p class="sub"></p><div class="body"></div></section>
    <section data-panel="latency"><h2>Latency</h2><p class="sub"></p><div class="body"></div></section>
    <section data-panel="drift" class="wide"><h2>Drift</h2><p class="sub"></p><div class="body"></div></section>
    <section data-panel="quality"><h2>Data quality</h2><p class="sub"></p><div class="body"></div></section>
    <section data-panel="events"><h2>Events</h2><div class="body"></div></section>
    <section data-panel="registry" class="wide"><h2>Registry</h2><div class="body"></div></section>
  </div>
</main>
<script>
(() => {
'use strict';

// ---- settings, state --------------------------------------------------------------------------------------------
const RANGES = { '1h': '1h', '24h': '24h', '7d': '7d', all: '1970-01-01T00:00:00Z' };
const LIMIT = 10000;
const EMPTY_TEXT = 'Nothing yet: no model has served a prediction. Send predictions to predict and run evaluate; this page refreshes itself.';
const query = new URLSearchParams(location.search);
const REFRESH_SECONDS = (() => {
  const n = Number(query.get('refresh'));
  return query.has('refresh') && Number.isFinite(n) && n >= 0 ? n : 30;
})();
// The page is served at <base>/dashboard and the API at <base>/api/..., so resolve API paths against the page's own path.
const API_ROOT = new URL(/\/dashboard\/$/.test(location.pathname) ? '../' : './', location.href);

const state = {
  model: query.get('model') || '',
  range: Object.hasOwn(RANGES, query.get('range') ?? '') ? query.get('range') : '7d',
  seq: 0,        // id of the newest refresh; answers of older ones are dropped
  renders: 0,    // completed renders, published as <html data-rendered>
  timer: 0,
  stale: false,  // a timed refresh was skipped while the tab was hidden
  view: null,    // the data last drawn, kept to redraw on resize
  clock: query.get('clock') === 'wall' ? 'wall' : 'stream',   // for a replay: which time the charts show
  stamped: '',   // the status line's first part
};

// A replay's clock marks, [wall ms, stream ms] in wall order (its replay_clock events), while the page shows stream
// time; null otherwise. Every instant the page shows goes through `time`, so one switch moves every chart and list.
let clockMarks = null;

const main = document.getElementById('dashboard');
const panels = document.getElementById('panels');
const modelSelect = document.getElementById('model');
const statusLine = document.getElementById('status');

// ---- small helpers ----------------------------------------------------------------------------------------------
const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const time = (iso) => toClock(Date.parse(iso));

/** A wall-clock instant in the replay's stream time: linear between the two marks around it; before the first
 * or after the last, shifted by that mark's offset (the wall clock's pace: outside the replay nothing is sped up). */
function toClock(t) {
  if (!clockMarks || !Number.isFinite(t)) return t;
  const n = clockMarks.length;
  if (t <= clockMarks[0][0]) return t + clockMarks[0][1] - clockMarks[0][0];
  if (t >= clockMarks[n - 1][0]) return t + clockMarks[n - 1][1] - clockMarks[n - 1][0];
  let lo = 0, hi = n - 1;              // the pair of marks around t (their wall times differ: see load)
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (clockMarks[mid][0] <= t) lo = mid; else hi = mid; }
  const [w0, s0] = clockMarks[lo], [w1, s1] = clockMarks[hi];
  return s0 + ((t - w0) * (s1 - s0)) / (w1 - w0);
}
const r1 = (v) => Math.round(v * 10) / 10;
const minOf = (xs) => xs.reduce((a, b) => (b < a ? b : a), Infinity);
const maxOf = (xs) => xs.reduce((a, b) => (b > a ? b : a), -Infinity);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function fmt(v) {
  if (!isNum(v)) return '—';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(3)));
}
const fmtInt = (v) => (isNum(v) ? v.toLocaleString('en-US') : '—');

/** "2026-11-29 10:00" (seconds only when not zero), UTC. */
function fmtTime(iso) {
  const t = time(iso);
  if (!Number.isFinite(t)) return '—';
  const s = new Date(t).toISOString();
  return s.slice(0, 10) + ' ' + (s.slice(17, 19) === '00' ? s.slice(11, 16) : s.slice(11, 19));
}

/** A short UTC label for an instant, precise enough for a time axis spanning `span` milliseconds. */
function shortTime(t, span) {
  const d = new Date(t);
  const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  const hm = d.toISOString().slice(11, 16);
  if (span >= 4 * 86400e3) return day;
  if (span >= 86400e3) return `${day} ${hm}`;
  if (span >= 600e3) return hm;
  return d.toISOString().slice(11, 19);
}

/** Maps the domain d0..d1 onto the range p0..p1 (pixels). */
const scale = (d0, d1, p0, p1) => (v) => (d1 === d0 ? (p0 + p1) / 2 : p0 + ((v - d0) * (p1 - p0)) / (d1 - d0));

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const start = Math.floor(lo / step) * step, end = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo: start, hi: end, ticks };
}

const TIME_STEPS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 172800, 604800, 2592000, 7776000, 31536000]
  .map((s) => s * 1000);

function timeTicks(t0, t1, count) {
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= count) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

function tickLabel(t, step) {
  const d = new Date(t), iso = d.toISOString();
  const midnight = iso.slice(11, 19) === '00:00:00';
  if (step >= 86400e3 || (midnight && step >= 3600e3)) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  return step < 60e3 ? iso.slice(11, 19) : iso.slice(11, 16);
}

/** Colour per version, stable across panels: the order versions appear in /api/models. */
function palette(versions) {
  const order = versions.map((m) => m.version);
  return (v) => {
    let i = order.indexOf(v);
    if (i < 0) { order.push(v); i = order.length - 1; }
    return `var(--c${i % 6})`;
  };
}

const section = (name) => panels.querySelector(`section[data-panel="${name}"]`);
const NO_DATA = '<p class="nodata">no data in this range</p>';

function put(name, { sub, body }) {
  const sec = section(name);
  const subEl = sec.querySelector('.sub');
  if (subEl && sub !== undefined) subEl.textContent = sub;
  const el = sec.querySelector('.body');
  const scroller = el.querySelector('ol.events, .table-wrap');   // a redraw keeps where the reader had scrolled to
  const at = scroller ? [scroller.scrollTop, scroller.scrollLeft] : null;
  el.innerHTML = body;
  const again = at && el.querySelector('ol.events, .table-wrap');
  if (again) [again.scrollTop, again.scrollLeft] = at;
}

function widthOf(name) {
  const w = section(name).querySelector('.body').clientWidth;
  return Math.max(280, Math.floor(w || 640));
}

const svgOpen = (W, H, label) =>
  `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}" preserveAspectRatio="xMinYMin meet">`;

/** Horizontal grid with y labels, the x axis with UTC time ticks. */
function axes({ W, H, m, x, y, t0, t1, yTicks, yFmt = fmt }) {
  let s = '';
  for (const v of yTicks) {
    const yy = r1(y(v));
    s += `<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}"/>`
      + `<text x="${m.l - 6}" y="${yy + 4}" text-anchor="end">${esc(yFmt(v))}</text>`;
  }
  const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor((W - m.l - m.r) / 80)));
  for (const t of ticks) {
    const xx = r1(x(t));
    s += `<line class="tick" x1="${xx}" x2="${xx}" y1="${H - m.b}" y2="${H - m.b + 4}"/>`
      + `<text x="${xx}" y="${H - m.b + 16}" text-anchor="middle">${esc(tickLabel(t, step))}</text>`;
  }
  return s + `<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}"/>`;
}

/** A path through points, broken where a value is missing. */
function linePath(points, x, y, key) {
  let d = '', pen = false;
  for (const p of points) {
    if (!isNum(p[key])) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${r1(x(p.t))},${r1(y(p[key]))}`;
    pen = true;
  }
  return d;
}

const legend = (items) => `<ul class="legend">${items.join('')}</ul>`;
const swatch = (color, label, extra = '') =>
  `<li><span class="sw" style="background:${color};${extra}"></span>${esc(label)}</li>`;

function eventTone(e) {
  const d = detailOf(e);
  if (e.kind === 'alert' || e.kind === 'retrain_failed' || e.kind === 'rolled_back') return 'bad';
  if (e.kind === 'retrain_finished') return d.outcome === 'rejected' ? 'bad' : 'good';
  if (e.kind === 'promoted' || e.kind === 'deployed') return 'good';
  if (e.kind === 'canary_started' || e.kind === 'image_pushed') return 'info';
  return 'quiet';
}
const TONE_COLOR = { bad: 'var(--bad)', good: 'var(--good)', info: 'var(--accent)', quiet: 'var(--muted)' };
const detailOf = (e) => (e.detail && typeof e.detail === 'object' ? e.detail : {});
const versionLabel = (v) => (v == null || v === '' ? '' : `v${v}`);

// ---- API --------------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message, path) { super(message); this.status = status; this.path = path; }
}

async function api(endpoint, params = {}) {
  const url = new URL(`api/${endpoint}`, API_ROOT);
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') url.searchParams.set(k, String(v));
  let response;
  try {
    // A stalled request must not stop the refreshes: each gives up after 20 s.
    response = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store', signal: AbortSignal.timeout(20000) });
  } catch (e) {
    throw new ApiError(0, `cannot reach ${url.pathname}: ${e.message}`, url.pathname);
  }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const err = body && body.error;
    throw new ApiError(response.status, (err && err.message) || response.statusText || 'request failed',
      `${url.pathname}${err && err.path ? ` (${err.path})` : ''}`);
  }
  if (!body || typeof body !== 'object') throw new ApiError(response.status, 'the answer is not JSON', url.pathname);
  return body;
}

// ---- panels -----------------------------------------------------------------------------------------------------
function drawTraffic(v) {
  const serving = v.versions.filter((m) => isNum(m.traffic_percent) && m.traffic_percent > 0);
  if (!serving.length) return put('traffic', { body: '<p class="nodata">no version is serving traffic</p>' });
  const total = serving.reduce((a, m) => a + m.traffic_percent, 0) || 1;
  const bar = serving.map((m) => `<span style="width:${(100 * m.traffic_percent) / total}%;background:${v.color(m.version)}"`
    + ` title="${esc(`v${m.version} · ${m.status} · ${m.traffic_percent}%`)}"></span>`).join('');
  const items = serving.map((m) => `<li data-version="${esc(m.version)}" data-percent="${esc(m.traffic_percent)}">`
    + `<span class="sw" style="background:${v.color(m.version)}"></span><b>${esc(fmt(m.traffic_percent))}%</b> `
    + `v${esc(m.version)} <span class="chip st-${esc(m.status)}">${esc(m.status)}</span></li>`).join('');
  put('traffic', { body: `<div class="bar" role="img" aria-label="traffic split">${bar}</div><ul class="split">${items}</ul>` });
}

function drawPerformance(v) {
  const sec = section('performance');
  sec.dataset.metric = v.metric || '';
  const policy = v.policy;
  const limit = policy && isNum(policy.limit) ? policy.limit : null;
  const direction = policy ? (policy.higher_is_better ? 'higher is better' : 'lower is better') : '';
  const sub = v.metric
    ? [v.metric, direction, limit !== null ? `limit ${fmt(limit)}` : ''].filter(Boolean).join(' · ')
    : 'no policy metric';
  const series = v.metrics.map((s) => ({
    version: s.version,
    points: servedSpan(v, s.version, s.points.map((p) => ({ ...p, t: time(p.at) })).filter((p) => Number.isFinite(p.t))),
  }));
  const plotted = series.flatMap((s) => s.points.filter((p) => isNum(p.value)));
  if (!plotted.length) return put('performance', { sub, body: NO_DATA });

  const events = v.events.map((e) => ({ ...e, t: time(e.at) })).filter((e) => Number.isFinite(e.t));
  const times = plotted.map((p) => p.t).concat(events.map((e) => e.t));
  let t0 = minOf(times), t1 = maxOf(times);
  if (t0 === t1) { t0 -= 60e3; t1 += 60e3; }
  const values = plotted.map((p) => p.value).concat(limit !== null ? [limit] : []);
  const lo = minOf(values), hi = maxOf(values), pad = (hi - lo) * 0.05;
  const yt = niceTicks(lo - pad, hi + pad, 4);
  const W = widthOf('performance'), H = Math.round(Math.min(280, Math.max(200, W * 0.4))), m = { l: 48, r: 14, t: 22, b: 26 };
  const x = scale(t0, t1, m.l, W - m.r), y = scale(yt.lo, yt.hi, H - m.b, m.t);
  const plotH = H - m.b - m.t;

  let s = svgOpen(W, H, `${v.metric} over time`);
  for (const ser of series) {            // each version's span, shaded and labelled
    if (!ser.points.length) continue;
    const a = x(minOf(ser.points.map((p) => p.t))), b = x(maxOf(ser.points.map((p) => p.t)));
    const c = v.color(ser.version);
    s += `<rect class="span" x="${r1(a)}" y="${m.t}" width="${r1(Math.max(b - a, 2))}" height="${plotH}" style="fill:${c};opacity:.07"/>`
      + `<line x1="${r1(a)}" x2="${r1(a)}" y1="${m.t}" y2="${H - m.b}" style="stroke:${c};opacity:.5"/>`
      + `<text x="${r1(a + 4)}" y="${m.t + 12}" style="fill:${c};font-weight:600">v${esc(ser.version)}</text>`;
  }
  s += axes({ W, H, m, x, y, t0, t1, yTicks: yt.ticks });
  if (limit !== null) {
    const ly = r1(y(limit));
    const breach = policy.higher_is_better ? [ly, H - m.b] : [m.t, ly];
    s += `<rect x="${m.l}" y="${breach[0]}" width="${W - m.l - m.r}" height="${r1(Math.max(0, breach[1] - breach[0]))}" style="fill:var(--bad);opacity:.06"/>`
      + `<line class="limit" data-limit="${limit}" x1="${m.l}" x2="${W - m.r}" y1="${ly}" y2="${ly}"><title>limit ${esc(fmt(limit))}</title></line>`
      + `<text class="limit-label" x="${W - m.r}" y="${ly - 4}" text-anchor="end">limit ${esc(fmt(limit))}</text>`;
  }
  for (const e of events) {              // the loop's events: a tick above the plot and a faint guide through it
    const ex = r1(x(e.t)), c = TONE_COLOR[eventTone(e)];
    const title = `${e.kind}${e.version != null ? ` · v${e.version}` : ''} · ${fmtTime(e.at)}`;
    s += `<line class="guide" x1="${ex}" x2="${ex}" y1="${m.t}" y2="${H - m.b}" style="stroke:${c}"/>`
      + `<line class="event" data-kind="${esc(e.kind)}" data-at="${esc(e.at)}" x1="${ex}" x2="${ex}" y1="2" y2="${m.t - 4}" style="stroke:${c}"><title>${esc(title)}</title></line>`;
  }
  const r = plotted.length > 400 ? 1.5 : 2.5;
  for (const ser of series) {
    const c = v.color(ser.version);
    s += `<path d="${linePath(ser.points, x, y, 'value')}" style="fill:none;stroke:${c};stroke-width:1.6"/>`;
    for (const p of ser.points) {
      if (!isNum(p.value)) continue;
      const title = `v${ser.version} · ${v.metric} ${fmt(p.value)} · ${fmtTime(p.at)}${isNum(p.rows) ? ` · ${fmtInt(p.rows)} rows` : ''}`;
      s += `<circle class="point" data-version="${esc(ser.version)}" data-at="${esc(p.at)}" data-value="${String(p.value)}"`
        + ` cx="${r1(x(p.t))}" cy="${r1(y(p.value))}" r="${r}" style="fill:${c}"><title>${esc(title)}</title></circle>`;
    }
  }
  s += '</svg>';
  const keys = series.map((ser) => swatch(v.color(ser.version), `v${ser.version}`));
  if (limit !== null) keys.push(swatch('var(--bad)', `limit ${fmt(limit)}`, 'height:2px;vertical-align:.25em'));
  if (events.length) {
    keys.push(swatch(TONE_COLOR.bad, 'alert / failure'), swatch(TONE_COLOR.good, 'deployed / promoted'),
      swatch(TONE_COLOR.info, 'canary / image'), swatch(TONE_COLOR.quiet, 'retrain'));
  }
  put('performance', { sub, body: s + legend(keys) });
}

/** A version that no longer serves (retired, rejected) keeps its points up to its last prediction and the first
 * evaluation after it, which judged its last rows; later points re-judge old rows and would draw it on. */
function servedSpan(v, version, points) {
  const m = v.versions.find((x) => x.version === version);
  if (!m || ['live', 'canary', 'candidate'].includes(m.status)) return points;
  const last = time(m.last_prediction_at);
  if (!Number.isFinite(last)) return points;
  const after = points.findIndex((p) => p.t > last);
  return after < 0 ? points : points.slice(0, after + 1);
}

function drawVolume(v) {
  const sec = section('volume');
  const rows = [];
  let totalP = 0, totalL = 0;
  for (const ser of v.volume.series) {
    for (const p of ser.points) {
      totalP += isNum(p.predictions) ? p.predictions : 0;
      totalL += isNum(p.labelled) ? p.labelled : 0;
      const t = time(p.at);
      if (Number.isFinite(t)) rows.push({ ...p, version: ser.version, t });
    }
  }
  sec.dataset.predictions = String(totalP);
  sec.dataset.labelled = String(totalL);
  let bucket = isNum(v.volume.bucket_seconds) && v.volume.bucket_seconds > 0 ? v.volume.bucket_seconds * 1000 : 0;
  if (!bucket) {
    const ts = [...new Set(rows.map((p) => p.t))].sort((a, b) => a - b);
    bucket = minOf(ts.slice(1).map((t, i) => t - ts[i]));
    if (!Number.isFinite(bucket)) bucket = 60e3;
  }
  const share = totalP ? ` (${Math.round((100 * totalL) / totalP)}%)` : '';
  const sub = `${fmtInt(totalP)} predictions · ${fmtInt(totalL)} labelled${share} · ${fmt(bucket / 1000)} s buckets`;
  if (!rows.length) return put('volume', { sub, body: NO_DATA });

  const order = v.versions.map((m) => m.version);
  const rank = (ver) => { const i = order.indexOf(ver); return i < 0 ? order.length : i; };
  const byTime = new Map();
  for (const p of rows) byTime.set(p.t, (byTime.get(p.t) || []).concat(p));
  const height = (p) => Math.max(isNum(p.predictions) ? p.predictions : 0, isNum(p.labelled) ? p.labelled : 0);
  const top = maxOf([...byTime.values()].map((ps) => ps.reduce((a, p) => a + height(p), 0)));
  const t0 = minOf([...byTime.keys()]), t1 = maxOf([...byTime.keys()]) + bucket;
  const yt = niceTicks(0, Math.max(top, 1), 4);
  const W = widthOf('volume'), H = Math.round(Math.min(220, Math.max(170, W * 0.45))), m = { l: 44, r: 10, t: 8, b: 26 };
  const x = scale(t0, t1, m.l, W - m.r), y = scale(0, yt.hi, H - m.b, m.t);
  const bw = x(t0 + bucket) - x(t0);
  const w = r1(Math.max(0.5, bw > 3 ? bw - 1 : bw));

  let s = svgOpen(W, H, 'predictions and labelled rows per bucket') + axes({ W, H, m, x, y, t0, t1, yTicks: yt.ticks });
  for (const [t, ps] of byTime) {        // stacked per version; the solid part of each segment is the labelled rows
    let base = 0;
    for (const p of ps.sort((a, b) => rank(a.version) - rank(b.version))) {
      const pred = isNum(p.predictions) ? p.predictions : 0, lab = isNum(p.labelled) ? p.labelled : 0;
      const c = v.color(p.version), xx = r1(x(t));
      const title = `v${p.version} · ${fmtTime(p.at)} · ${fmtInt(pred)} predictions · ${fmtInt(lab)} labelled`;
      s += `<g class="bucket" data-version="${esc(p.version)}" data-at="${esc(p.at)}" data-predictions="${pred}" data-labelled="${lab}">`
        + `<title>${esc(title)}</title>`
        + `<rect x="${xx}" y="${r1(y(base + pred))}" width="${w}" height="${r1(y(base) - y(base + pred))}" style="fill:${c};opacity:.35"/>`
        + `<rect x="${xx}" y="${r1(y(base + lab))}" width="${w}" height="${r1(y(base) - y(base + lab))}" style="fill:${c};opacity:.9"/></g>`;
      base += height(p);
    }
  }
  s += '</svg>';
  const keys = v.volume.series.map((ser) => swatch(v.color(ser.version), `v${ser.version}`));
  keys.push('<li>pale: predictions · solid: labelled</li>');
  put('volume', { sub, body: s + legend(keys) });
}

function drawLatency(v) {
  const series = v.volume.series.map((ser) => ({
    version: ser.version,
    points: ser.points.map((p) => ({ ...p, t: time(p.at) }))
      .filter((p) => Number.isFinite(p.t) && (isNum(p.latency_ms_p50) || isNum(p.latency_ms_p95))),
  }));
  const all = series.flatMap((s) => s.points);
  const sub = 'milliseconds per request · solid p50 · dashed p95';
  if (!all.length) return put('latency', { sub, body: NO_DATA });
  const values = all.flatMap((p) => [p.latency_ms_p50, p.latency_ms_p95]).filter(isNum);
  let t0 = minOf(all.map((p) => p.t)), t1 = maxOf(all.map((p) => p.t));
  if (t0 === t1) { t0 -= 60e3; t1 += 60e3; }
  const yt = niceTicks(0, Math.max(maxOf(values), 1e-3), 4);
  const W = widthOf('latency'), H = Math.round(Math.min(220, Math.max(170, W * 0.45))), m = { l: 44, r: 10, t: 8, b: 26 };
  const x = scale(t0, t1, m.l, W - m.r), y = scale(0, yt.hi, H - m.b, m.t);
  let s = svgOpen(W, H, 'latency p50 and p95') + axes({ W, H, m, x, y, t0, t1, yTicks: yt.ticks });
  for (const ser of series) {
    const c = v.color(ser.version);
    s += `<path d="${linePath(ser.points, x, y, 'latency_ms_p95')}" style="fill:none;stroke:${c};stroke-width:1.3;stroke-dasharray:4 3"/>`
      + `<path d="${linePath(ser.points, x, y, 'latency_ms_p50')}" style="fill:none;stroke:${c};stroke-width:1.6"/>`;
    for (const p of ser.points) {
      const p50 = p.latency_ms_p50, p95 = p.latency_ms_p95;
      const title = `v${ser.version} · ${fmtTime(p.at)} · p50 ${fmt(p50)} ms · p95 ${fmt(p95)} ms`;
      s += `<circle class="point" data-version="${esc(ser.version)}" data-at="${esc(p.at)}" data-p50="${isNum(p50) ? String(p50) : ''}"`
        + ` data-p95="${isNum(p95) ? String(p95) : ''}" cx="${r1(x(p.t))}" cy="${r1(y(isNum(p50) ? p50 : p95))}" r="2"`
        + ` style="fill:${c}"><title>${esc(title)}</title></circle>`;
    }
  }
  s += '</svg>';
  put('latency', { sub, body: s + legend(series.map((ser) => swatch(v.color(ser.version), `v${ser.version}`))) });
}

/** Features first (by name), then the prediction, then the dataset verdict. */
function featureOrder(a, b) {
  const rank = (f) => (f === 'dataset' ? 2 : f === 'prediction' ? 1 : 0);
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** 0..1: how close a statistic is to its threshold (p-value tests on a log scale); null when it cannot say. */
function strength(p) {
  if (isNum(p.p_value) && isNum(p.threshold) && p.threshold > 0 && p.threshold < 1) {
    return Math.min(1, Math.max(0, Math.log10(Math.max(p.p_value, 1e-300)) / Math.log10(p.threshold)));
  }
  if (isNum(p.statistic) && isNum(p.threshold) && p.threshold > 0) return Math.min(1, Math.max(0, p.statistic / p.threshold));
  return null;
}

function driftTitle(feature, version, p) {
  const parts = [];
  if (isNum(p.p_value)) parts.push(`p ${fmt(p.p_value)}`);
  if (isNum(p.threshold)) parts.push(`threshold ${fmt(p.threshold)}`);
  const stat = `${p.test || 'test'} statistic ${isNum(p.statistic) ? fmt(p.statistic) : 'n/a'}`;
  return `${feature} · ${stat}${parts.length ? ` (${parts.join(', ')})` : ''} · ${p.drifted ? 'drifted' : 'no drift'}`
    + `\nv${version} · ${fmtTime(p.at)}${isNum(p.rows) ? ` · ${fmtInt(p.rows)} rows` : ''}`;
}

function drawDrift(v) {
  const cells = [];
  for (const ser of v.drift.series) {
    for (const p of ser.points) {
      const t = time(p.at);
      if (Number.isFinite(t)) cells.push({ ...p, feature: ser.feature, version: ser.version, t });
    }
  }
  const drifted = cells.filter((c) => c.drifted === true);
  const newest = maxOf(cells.map((c) => c.t));
  const nowDrifted = [...new Set(drifted.filter((c) => c.t === newest && c.feature !== 'dataset').map((c) => c.feature))];
  const sub = cells.length
    ? `${drifted.length} of ${cells.length} tests drifted · newest evaluation: ${nowDrifted.length ? nowDrifted.join(', ') : 'no feature'} drifted`
    : '';
  if (!cells.length) return put('drift', { sub, body: NO_DATA });

  const features = [...new Set(cells.map((c) => c.feature))].sort(featureOrder);
  const order = v.versions.map((m) => m.version);
  const rank = (ver) => { const i = order.indexOf(ver); return i < 0 ? order.length : i; };
  const columns = [...new Set(cells.map((c) => c.t))].sort((a, b) => a - b);
  const colIndex = new Map(columns.map((t, i) => [t, i]));
  const slots = columns.map(() => []);   // versions evaluated at each time: the column is split between them
  for (const c of cells) { const vs = slots[colIndex.get(c.t)]; if (!vs.includes(c.version)) vs.push(c.version); }
  for (const vs of slots) vs.sort((a, b) => rank(a) - rank(b));

  const W = widthOf('drift');
  const labelW = Math.min(130, 12 + 6.5 * maxOf(features.map((f) => f.length)));
  const rowH = 18, m = { l: labelW, r: 6, t: 9, b: 24 };
  const H = m.t + features.length * rowH + m.b;
  const colW = (W - m.l - m.r) / columns.length;
  let s = svgOpen(W, H, 'drift per feature and evaluation');
  features.forEach((f, i) => {
    s += `<text x="${labelW - 8}" y="${m.t + i * rowH + 13}" text-anchor="end"${f === 'dataset' || f === 'prediction' ? ' style="font-style:italic"' : ''}>${esc(f)}</text>`;
  });
  slots.forEach((vs, i) => {               // a thin strip naming the version(s) of each column
    vs.forEach((ver, k) => {
      s += `<rect x="${r1(m.l + i * colW + (k * colW) / vs.length)}" y="0" width="${r1(Math.max(colW / vs.length, 0.5))}" height="4" style="fill:${v.color(ver)}"><title>v${esc(ver)}</title></rect>`;
    });
  });
  for (const c of cells) {
    const i = colIndex.get(c.t), vs = slots[i], k = vs.indexOf(c.version);
    const row = features.indexOf(c.feature), st = strength(c);
    const fill = c.drifted === true ? 'fill:var(--bad)'
      : st === null ? 'fill:var(--line);opacity:.6' : `fill:var(--warn);opacity:${(0.1 + 0.6 * st).toFixed(2)}`;
    s += `<rect class="cell" data-feature="${esc(c.feature)}" data-at="${esc(c.at)}" data-version="${esc(c.version)}"`
      + ` data-test="${esc(c.test ?? '')}" data-statistic="${isNum(c.statistic) ? String(c.statistic) : ''}"`
      + ` data-drifted="${c.drifted === true ? 'true' : 'false'}" x="${r1(m.l + i * colW + (k * colW) / vs.length)}"`
      + ` y="${m.t + row * rowH}" width="${r1(Math.max(colW / vs.length, 0.5))}" height="${rowH}" style="${fill}">`
      + `<title>${esc(driftTitle(c.feature, c.version, c))}</title></rect>`;
  }
  // Columns are evaluations, not a linear time axis: label a few of them, first and last included, never overlapping.
  const span = columns[columns.length - 1] - columns[0];
  const tickW = 6.5 * shortTime(columns[0], span).length + 16;
  const wanted = Math.max(1, Math.min(columns.length, Math.floor((W - m.l - m.r) / tickW)));
  let right = -Infinity;
  for (let j = 0; j < wanted; j++) {
    const i = wanted === 1 ? 0 : Math.round((j * (columns.length - 1)) / (wanted - 1));
    const cx = m.l + (i + 0.5) * colW;
    const left = Math.min(Math.max(m.l, cx - tickW / 2), W - m.r - tickW);
    if (left < right) continue;
    right = left + tickW;
    s += `<text x="${r1(left + tickW / 2)}" y="${H - 8}" text-anchor="middle">${esc(shortTime(columns[i], span))}</text>`;
  }
  s += '</svg>';
  const keys = [swatch('var(--bad)', 'drifted'), swatch('var(--warn)', 'near the threshold', 'opacity:.7'),
    swatch('var(--warn)', 'far from it', 'opacity:.15'), swatch('var(--line)', 'no statistic'),
    ...[...new Set(cells.map((c) => c.version))].sort((a, b) => rank(a) - rank(b))
      .map((ver) => swatch(v.color(ver), `v${ver} (top strip)`, 'height:.3em;vertical-align:.2em'))];
  put('drift', { sub, body: s + legend(keys) });
}

const QUALITY = [['missing', 'missing', 'Missing'], ['invalid', 'invalid', 'Invalid'],
  ['out_of_range', 'out-of-range', 'Out of range'], ['unseen', 'unseen', 'Unseen']];

function drawQuality(v) {
  const rows = new Map();                // feature -> { newest time, newest counts, sums }
  for (const ser of v.drift.series) {
    for (const p of ser.points) {
      const t = time(p.at);
      if (!Number.isFinite(t)) continue;
      const r = rows.get(ser.feature) || { t: -Infinity, now: {}, sum: {} };
      if (t > r.t) { r.t = t; r.now = {}; }
      for (const [key] of QUALITY) {
        const n = isNum(p[key]) ? p[key] : 0;
        r.sum[key] = (r.sum[key] || 0) + n;
        if (t === r.t) r.now[key] = (r.now[key] || 0) + n;   // several versions may share the newest window
      }
      rows.set(ser.feature, r);
    }
  }
  const sub = 'newest window / sum over the range';
  if (!rows.size) return put('quality', { sub, body: NO_DATA });
  let body = '<div class="table-wrap"><table><thead><tr><th>Feature</th>'
    + QUALITY.map(([, , label]) => `<th class="num">${label}</th>`).join('') + '</tr></thead><tbody>';
  for (const f of [...rows.keys()].sort(featureOrder)) {
    const r = rows.get(f);
    body += `<tr data-feature="${esc(f)}"` + QUALITY.map(([key, attr]) => ` data-${attr}="${r.sum[key] || 0}"`).join('')
      + `><td>${esc(f)}</td>` + QUALITY.map(([key]) => {
        const now = r.now[key] || 0;
        return `<td class="num"><span${now > 0 ? ' class="hot"' : ''}>${fmtInt(now)}</span> <small>/ ${fmtInt(r.sum[key] || 0)}</small></td>`;
      }).join('') + '</tr>';
  }
  put('quality', { sub, body: body + '</tbody></table></div>' });
}

function drawEvents(v) {
  const list = v.events.slice().reverse()
    .sort((a, b) => (time(b.at) || 0) - (time(a.at) || 0));   // newest first; stable for equal times
  if (!list.length) return put('events', { body: NO_DATA });
  const items = list.map((e) => {
    const d = detailOf(e);
    const text = typeof d.reason === 'string' ? d.reason : typeof d.message === 'string' ? d.message : '';
    const extra = [d.outcome, d.alert].filter((x) => typeof x === 'string').join(' · ');
    const shown = time(e.at);
    return `<li class="event k-${eventTone(e)}" data-kind="${esc(e.kind)}" data-version="${esc(e.version ?? '')}" data-at="${esc(e.at)}"`
      + ` data-shown="${Number.isFinite(shown) ? new Date(shown).toISOString() : ''}">`
      + `<time datetime="${esc(e.at)}">&nbsp;${esc(fmtTime(e.at))}</time><span class="what"><b>${esc(e.kind)}</b>`
      + `${e.version != null ? ` v${esc(e.version)}` : ''}${extra ? ` · ${esc(extra)}` : ''}`
      + `${text ? `<span class="text">${esc(text)}</span>` : ''}</span></li>`;
  }).join('');
  put('events', { body: `<ol class="events">${items}</ol>` });
}

function drawRegistry(v) {
  if (!v.versions.length) return put('registry', { body: NO_DATA });
  const metricsOf = (m) => {
    const h = m.holdout_metrics && typeof m.holdout_metrics === 'object' ? m.holdout_metrics : {};
    const first = m.policy && m.policy.metric;
    const keys = Object.keys(h).sort((a, b) => (b === first) - (a === first));
    return keys.map((k) => (k === first ? `<b>${esc(k)} ${esc(fmt(h[k]))}</b>` : `${esc(k)} ${esc(fmt(h[k]))}`)).join(' · ') || '—';
  };
  const columns = [   // [header, cell class, cell html]
    ['Version', '', (m) => `<span class="sw" style="background:${v.color(m.version)}"></span>${esc(m.version)}`],
    ['Status', '', (m) => `<span class="chip st-${esc(m.status)}">${esc(m.status)}</span>`],
    ['Family', '', (m) => esc(m.family ?? '—')],
    ['Lineage', '', (m) => (m.parent_version != null ? `${esc(m.version)} ← ${esc(m.parent_version)}` : '—')],
    ['Training rows', 'num', (m) => fmtInt(m.training_rows)],
    ['Holdout metrics', '', metricsOf],
    ['Created (UTC)', '', (m) => esc(fmtTime(m.created_at))],
    ['Reason', 'reason', (m) => esc(m.reason ?? '—')],
  ];
  const rows = v.versions.slice().reverse().map((m) => `<tr data-version="${esc(m.version)}" data-status="${esc(m.status)}"`
    + ` data-parent="${esc(m.parent_version ?? '')}">`
    + columns.map(([label, cls, cell]) => `<td class="${cls}" data-label="${label}"><span>${cell(m)}</span></td>`).join('') + '</tr>').join('');
  put('registry', {
    body: '<div class="table-wrap"><table class="registry"><thead><tr>'
      + columns.map(([label, cls]) => `<th class="${cls}">${label}</th>`).join('') + `</tr></thead><tbody>${rows}</tbody></table></div>`,
  });
}

function drawAll(view) {
  const replay = view.clock.length > 0;
  clockMarks = replay && state.clock === 'stream' ? view.clock : null;
  document.getElementById('clock').hidden = !replay;
  drawTraffic(view);
  drawPerformance(view);
  drawVolume(view);
  drawLatency(view);
  drawDrift(view);
  drawQuality(view);
  drawEvents(view);
  drawRegistry(view);
}

// ---- page state -------------------------------------------------------------------------------------------------
function setNotice(id, text) {
  let el = document.getElementById(id);
  if (text == null) { if (el) el.remove(); return; }
  if (!el) {
    el = document.createElement('p');
    el.id = id;
    if (id === 'error') el.setAttribute('role', 'alert');
    main.prepend(el);
  }
  el.textContent = text;
}

function setState(s) {
  main.dataset.state = s;
  panels.hidden = s === 'empty' || (s === 'error' && !state.view);   // no empty shells around a message
  document.getElementById('model-label').hidden = s === 'empty';
  if (s !== 'error') setNotice('error', null);
  setNotice('empty', s === 'empty' ? EMPTY_TEXT : null);
}

function fillModels(names) {
  if ([...modelSelect.options].map((o) => o.value).join('\n') !== names.join('\n')) {
    modelSelect.innerHTML = names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join('');
  }
  modelSelect.value = state.model;
}

function syncControls() {
  for (const b of document.querySelectorAll('#range button')) b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
  for (const b of document.querySelectorAll('#clock button')) b.setAttribute('aria-pressed', String(b.dataset.clock === state.clock));
  const params = new URLSearchParams(location.search);
  if (state.model) params.set('model', state.model); else params.delete('model');
  params.set('range', state.range);
  if (state.clock === 'wall') params.set('clock', 'wall'); else params.delete('clock');
  history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
}

function stamp(text) {
  state.stamped = text;
  const every = REFRESH_SECONDS > 0 ? `refreshes every ${REFRESH_SECONDS} s` : 'automatic refresh off';
  const times = clockMarks ? 'a replay, in its stream time (UTC)' : 'times in UTC';
  statusLine.textContent = `${text} · ${times} · ${every}`;
}

// ---- refresh ----------------------------------------------------------------------------------------------------
async function load(seq) {
  const { models = [] } = await api('models');
  if (seq !== state.seq) return null;
  if (!Array.isArray(models) || !models.length) return { empty: true };
  const names = [...new Set(models.map((m) => m.name))];
  if (!names.includes(state.model)) {
    state.model = (models.find((m) => m.status === 'live') || models[0]).name;
  }
  const model = state.model;
  fillModels(names);                     // the choice shows even if a later request fails
  main.dataset.model = model;
  const versions = models.filter((m) => m.name === model);
  const live = versions.filter((m) => m.status === 'live').sort((a, b) => (a.updated_at < b.updated_at ? -1 : 1)).pop();
  const owner = live && live.policy ? live : versions.slice().reverse().find((m) => m.policy) || null;
  const policy = owner ? owner.policy : null;
  const since = RANGES[state.range];
  const [metrics, drift, volume, events, marks] = await Promise.all([
    api('metrics', { model, metric: policy && policy.metric, since, limit: LIMIT }),
    api('drift', { model, since, limit: LIMIT }),
    api('volume', { model, since, limit: LIMIT }),   // the server picks the bucket
    api('events', { model, since, limit: LIMIT }),
    api('events', { model, since, limit: LIMIT, kind: 'replay_clock' }),
  ]);
  // Each mark's wall time to the millisecond (the API's `at` has whole seconds); of marks with one wall time,
  // the last.
  const clock = (Array.isArray(marks.events) ? marks.events : [])
    .map((e) => [Date.parse((e.detail && e.detail.wall_at) || e.at), Date.parse(e.detail && e.detail.stream_at)])
    .filter(([w, t]) => Number.isFinite(w) && Number.isFinite(t))
    .sort((a, b) => a[0] - b[0])
    .filter((m, i, all) => i === all.length - 1 || all[i + 1][0] !== m[0]);
  const mine = (list) => (Array.isArray(list) ? list : []).filter((s) => !s.model || s.model === model);
  let metricSeries = mine(metrics.series);
  const metric = (policy && policy.metric) || (metricSeries[0] && metricSeries[0].metric) || null;
  metricSeries = metricSeries.filter((s) => !s.metric || s.metric === metric);
  return {
    names, model, versions, policy, metric, color: palette(versions),
    metrics: metricSeries,
    drift: { series: mine(drift.series) },
    volume: { bucket_seconds: volume.bucket_seconds, series: mine(volume.series) },
    events: (Array.isArray(events.events) ? events.events : []).filter((e) => !e.model || e.model === model),
    clock,
  };
}

async function refresh() {
  clearTimeout(state.timer);
  const seq = ++state.seq;
  try {
    const view = await load(seq);
    if (seq !== state.seq) return;       // a newer refresh (another model or range) took over
    if (view.empty) {
      state.view = null;
      clockMarks = null;
      document.getElementById('clock').hidden = true;
      fillModels([]);
      main.dataset.model = '';
      setState('empty');
    } else {
      syncControls();
      setState('ready');                 // panels visible first, so charts measure their real width
      drawAll(view);
      state.view = view;
    }
    stamp(`Updated ${new Date().toISOString().slice(11, 19)}`);
  } catch (e) {
    if (seq !== state.seq) return;
    console.warn('dashboard refresh failed', e);
    const status = e instanceof ApiError ? (e.status ? `HTTP ${e.status}` : 'network error') : 'error';
    setNotice('error', `Could not load the dashboard: ${status}: ${e.message}${e.path ? ` [${e.path}]` : ''}`);
    setState('error');
    stamp(`Failed ${new Date().toISOString().slice(11, 19)}`);
  }
  state.renders += 1;
  document.documentElement.dataset.rendered = String(state.renders);
  if (REFRESH_SECONDS > 0) state.timer = setTimeout(tick, REFRESH_SECONDS * 1000);
}

function tick() {
  if (document.hidden) { state.stale = true; return; }
  refresh();
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.stale) { state.stale = false; refresh(); }
});

modelSelect.addEventListener('change', () => { state.model = modelSelect.value; syncControls(); refresh(); });

document.getElementById('range').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-range]');
  if (!button || button.dataset.range === state.range) return;
  state.range = button.dataset.range;
  syncControls();
  refresh();
});

document.getElementById('clock').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-clock]');
  if (!button || button.dataset.clock === state.clock) return;
  state.clock = button.dataset.clock;
  syncControls();
  if (state.view) {
    drawAll(state.view);
    stamp(state.stamped);
  }
});

// Charts are drawn at their pixel width (so text stays legible on a phone); redraw them when the layout width changes.
let resizeTimer = 0, lastWidth = 0;
new ResizeObserver(([entry]) => {
  const width = Math.round(entry.contentRect.width);
  if (!width || width === lastWidth) return;
  const first = lastWidth === 0;
  lastWidth = width;
  if (first) return;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.view && main.dataset.state === 'ready') drawAll(state.view); }, 150);
}).observe(panels);

for (const b of document.querySelectorAll('#range button')) b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
refresh();
})();
</script>
</body>
</html>
"""#
}
