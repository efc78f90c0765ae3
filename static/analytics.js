// The Insights page: the analytics of a repository's default view for a period, drawn as SVG,
// refreshed when the history changes. An author or a hotspot opens the graph with only the
// commits it names.

import { api, ApiError, el, fill, keepTheme, repoId } from './api.js';
import { Live } from './live.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const graphUrl = `/r/${encodeURIComponent(repoId)}`;

keepTheme($('theme'));

/** An SVG element. */
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** A bar `fraction` of its cell wide (set through the style object: the page's CSP allows no
 * style attributes). */
function bar(fraction) {
  const b = el('span', { class: 'hbar' });
  b.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return b;
}

const fmt = (n, digits = 0) => Number(n).toLocaleString('en-US', { maximumFractionDigits: digits });
const day = (ts) => new Date(ts * 1000).toISOString().slice(0, 10);
/** The graph with only the commits a query matches. */
const only = (q) => `${graphUrl}?q=${encodeURIComponent(q)}&match=${encodeURIComponent(q)}`;
const quoted = (s) => (/[\s"]/.test(s) ? `"${s.replace(/"/g, '')}"` : s);

let period = new URLSearchParams(location.search).get('period') || 'all';

function cards(a) {
  const delta = (name) => a.deltas.find((d) => d.name === name);
  const card = (label, value, name, lowerIsBetter = false) => {
    const d = name && delta(name);
    const change = d && d.changePercent != null ? d.changePercent : null;
    const good = change == null ? null : (change >= 0) !== lowerIsBetter;
    return el('div', { class: 'stat-card' }, el('div', { class: 'stat-value' }, value), el('div', { class: 'stat-label' }, label),
      change != null ? el('div', { class: `stat-delta ${good ? 'up' : 'down'}`, title: `previous period: ${fmt(d.previous, 2)}` }, `${change >= 0 ? '+' : ''}${fmt(change, 1)}%`) : null);
  };
  fill($('cards'),
    card('commits', fmt(a.velocity.totalCommits), 'totalCommits'),
    card('per week', fmt(a.velocity.avgPerWeek, 1), 'avgPerWeek'),
    card('authors', fmt(a.authors.activeAuthors), 'activeAuthors'),
    card('merges', `${fmt(a.merges.mergePercent, 1)}%`, 'mergePercent'),
    card('median change', `${fmt(a.changeSize.median, 1)} ${a.changeSize.median === 1 ? 'line' : 'lines'}`, 'medianChangeSize', true),
    card('rework', `${fmt(a.rework.avgRate * 100, 1)}%`, 'reworkRate', true));
  fill($('signals'), a.summarySignals.map((s) => el('li', {}, s)));
}

function velocity(a) {
  const weeks = a.velocity.weeks;
  const w = 900, h = 180, pad = 24;
  const max = Math.max(1, ...weeks.map((x) => x.count));
  const bw = (w - pad) / Math.max(1, weeks.length);
  const y = (v) => h - pad - (v / max) * (h - 2 * pad);
  const bars = weeks.map((x, i) => svg('rect', { class: 'bar', x: pad + i * bw + Math.max(0, bw - 41) / 2, y: y(x.count), width: Math.min(40, Math.max(1, bw - 1)), height: h - pad - y(x.count) },
    svg('title', {}, `week of ${day(x.ts)}: ${x.count} commits (4-week mean ${x.avg})`)));
  const line = weeks.map((x, i) => `${i ? 'L' : 'M'}${pad + i * bw + bw / 2},${y(x.avg)}`).join('');
  fill($('velocity'), svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': `${a.velocity.totalCommits} commits over ${weeks.length} weeks` },
    bars, weeks.length ? svg('path', { class: 'avg', d: line }) : null,
    svg('text', { x: 2, y: pad - 6, class: 'axis' }, `${max}`),
    weeks.length ? [svg('text', { x: pad, y: h - 6, class: 'axis' }, day(weeks[0].ts)), svg('text', { x: w - 2, y: h - 6, class: 'axis', 'text-anchor': 'end' }, day(weeks[weeks.length - 1].ts))] : null));
}

function authors(a) {
  const list = a.authors.authors.slice(0, 15);
  const max = Math.max(1, ...list.map((x) => x.count));
  fill($('authors'), el('ul', { class: 'hbars' }, list.map((x) => el('li', {},
    el('a', { href: only(`author:${quoted(x.email)}`), title: `${x.name} <${x.email}>: the graph with only these commits` }, x.name),
    bar(x.count / max),
    el('span', { class: 'muted' }, fmt(x.count))))));
}

function heatmap(a) {
  const cell = 16, left = 34, top = 14;
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const max = Math.max(1, a.heatmap.max);
  const rects = [];
  a.heatmap.grid.forEach((row, d) => row.forEach((n, hr) => rects.push(svg('rect', {
    x: left + hr * cell, y: top + d * cell, width: cell - 2, height: cell - 2, rx: 2,
    class: 'heat', 'fill-opacity': n ? 0.15 + 0.85 * (n / max) : 0.05,
  }, svg('title', {}, `${days[d]} ${String(hr).padStart(2, '0')}:00 UTC: ${n} commits`)))));
  fill($('heatmap'), svg('svg', { viewBox: `0 0 ${left + 24 * cell} ${top + 7 * cell + 4}`, class: 'chart', role: 'img', 'aria-label': 'Commits by weekday and hour' },
    days.map((d, i) => svg('text', { x: 0, y: top + i * cell + 11, class: 'axis' }, d)),
    [0, 6, 12, 18].map((hr) => svg('text', { x: left + hr * cell, y: 10, class: 'axis' }, `${hr}h`)),
    rects));
}

function sizes(a) {
  const max = Math.max(1, ...a.changeSize.buckets.map((b) => b.count));
  fill($('sizes'), el('ul', { class: 'hbars' }, a.changeSize.buckets.map((b) => el('li', {},
    el('span', {}, b.label), bar(b.count / max), el('span', { class: 'muted' }, fmt(b.count))))),
  el('p', { class: 'muted' }, `median ${fmt(a.changeSize.median, 1)} lines, mean ${fmt(a.changeSize.avgSize, 1)}`));
}

function rework(a) {
  const weeks = a.rework.weeks;
  const w = 440, h = 120, pad = 18;
  const x = (i) => pad + (i / Math.max(1, weeks.length - 1)) * (w - 2 * pad);
  const y = (r) => h - pad - r * (h - 2 * pad);
  const line = weeks.map((p, i) => `${i ? 'L' : 'M'}${x(i)},${y(p.rate)}`).join('');
  fill($('rework'), svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': `Rework ${fmt(a.rework.avgRate * 100, 1)}%` },
    svg('line', { x1: pad, x2: w - pad, y1: y(a.rework.avgRate), y2: y(a.rework.avgRate), class: 'mean' }),
    weeks.length ? svg('path', { class: 'avg', d: line }) : null,
    svg('text', { x: 2, y: pad - 4, class: 'axis' }, '100%'), svg('text', { x: 2, y: h - 4, class: 'axis' }, '0%')),
  el('p', { class: 'muted' }, `${fmt(a.rework.avgRate * 100, 1)}% of the lines changed were changed again within 21 days`));
}

function hotspots(a) {
  const pct = (x) => `${fmt(x * 100, 0)}%`;
  fill($('hotspots'), a.hotspots.length ? el('table', { class: 'hotspots' },
    el('thead', {}, el('tr', {}, ['Area', 'Risk', 'Commits', 'Rework', 'Large changes', 'Top author', ''].map((t) => el('th', {}, t)))),
    el('tbody', {}, a.hotspots.map((s) => el('tr', { class: `hot-${s.status}` },
      el('td', {}, el('a', { href: only(`path:${quoted(s.path)}`), title: 'The graph with only the commits touching it' }, s.path)),
      el('td', {}, el('span', { class: `risk ${s.status}` }, `${s.riskScore} ${s.status}`)),
      el('td', {}, fmt(s.churnCount)), el('td', {}, pct(s.reworkRate)), el('td', {}, pct(s.largeChangeShare)),
      el('td', {}, `${s.topAuthor} (${pct(s.topAuthorShare)})`),
      el('td', { class: 'muted small' }, s.recommendation))))) : el('p', { class: 'muted' }, 'No changes in this period.'));
}

let loading = null;
async function load() {
  for (const b of document.querySelectorAll('#periods button')) b.setAttribute('aria-pressed', String(b.dataset.period === period));
  const state = $('insights-state');
  try {
    const a = await api(`/analytics?period=${period}`);
    if (a.state === 'computing') {
      state.textContent = `Reading the history's changes… ${fmt(a.done)} of ${fmt(a.total)} commits`;
      state.hidden = false;
      clearTimeout(loading);
      loading = setTimeout(load, 700);
      return;
    }
    state.hidden = a.velocity.totalCommits > 0;
    state.textContent = 'No commits in this period.';
    cards(a); velocity(a); authors(a); heatmap(a); sizes(a); rework(a); hotspots(a);
    document.body.dataset.version = String(a.version);
  } catch (e) {
    state.hidden = false;
    state.textContent = e instanceof ApiError ? e.message : String(e);
  }
  document.body.dataset.ready = 'true';
}

for (const b of document.querySelectorAll('#periods button')) {
  b.addEventListener('click', () => {
    period = b.dataset.period;
    history.replaceState(null, '', `?period=${period}`);
    load();
  });
}

(async () => {
  try {
    const s = await api('/repository');
    $('back').textContent = s.name;
    document.title = `Insights · ${s.name} · GitVista`;
  } catch { /* the figures say what is wrong */ }
  $('back').href = graphUrl;
  await load();
})();

// A push: the figures are extended with the new commits, not read again.
let refresh = null;
const conn = $('conn');
new Live({
  onState(s) { conn.className = `conn ${s}`; conn.textContent = s; },
  onMessage(msg) {
    if (msg.type === 'delta' || msg.type === 'resync') {
      clearTimeout(refresh);
      refresh = setTimeout(load, 300);
    }
  },
});
