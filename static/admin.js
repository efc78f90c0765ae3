// The admin page: sessions and rates, refreshed every 2 s from /api/admin/sessions and /metrics.

import { el, fill } from './api.js';

const $ = (id) => document.getElementById(id);
const history = { viewers: [], events: [], http: [], rss: [] };
let last = null;

function sum(text, name) {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [metric, value] = line.split(/\s+/);
    if (metric === name || (metric && metric.startsWith(name + '{'))) {
      total += Number(value);
      found = true;
    }
  }
  return found ? total : null;
}

const bytes = (n) => (n > 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

function spark(id, values) {
  const c = $(id);
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  if (values.length < 2) return;
  const max = Math.max(...values, 1);
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--accent');
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (c.width - 2) + 1;
    const y = c.height - 2 - (v / max) * (c.height - 4);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

async function action(id, what) {
  await fetch(`/api/admin/repos/${encodeURIComponent(id)}/${what}`, { method: 'POST' });
  refresh();
}

async function refresh() {
  const resp = await fetch('/api/admin/sessions');
  if (resp.status === 404) {
    $('message').textContent = 'The admin page is off: start the server with GITVISTA_ADMIN_TOKEN set.';
    $('message').hidden = false;
    return false;
  }
  if (resp.status === 401) {
    $('login').hidden = false;
    $('overview').hidden = true;
    return false;
  }
  const { sessions } = await resp.json();
  const metrics = await (await fetch('/metrics')).text();
  const now = performance.now() / 1000;
  const sample = {
    t: now,
    viewers: sum(metrics, 'gitvista_viewers') ?? 0,
    events: sum(metrics, 'gitvista_events_sent_total') ?? 0,
    http: sum(metrics, 'gitvista_http_requests_total') ?? 0,
    rss: sum(metrics, 'gitvista_process_resident_bytes') ?? 0,
  };
  const rate = (k) => (last && sample.t > last.t ? Math.max(0, (sample[k] - last[k]) / (sample.t - last.t)) : 0);
  const events = rate('events');
  const http = rate('http');
  const push = (k, v) => { history[k].push(v); if (history[k].length > 60) history[k].shift(); };
  push('viewers', sample.viewers);
  push('events', events);
  push('http', http);
  push('rss', sample.rss);
  last = sample;
  $('m-viewers').textContent = String(sample.viewers);
  $('m-events').textContent = events.toFixed(1);
  $('m-http').textContent = http.toFixed(1);
  $('m-rss').textContent = bytes(sample.rss);
  $('m-queue').textContent = `${sum(metrics, 'gitvista_clone_jobs_running') ?? 0} running, ${sum(metrics, 'gitvista_clone_queue_depth') ?? 0} queued`;
  for (const k of ['viewers', 'events', 'http', 'rss']) spark(`c-${k}`, history[k]);
  fill($('sessions'), sessions.length ? sessions.map((s) => el('tr', { 'data-id': s.id },
    el('td', {}, el('a', { href: `/r/${s.id}` }, s.id), s.error ? el('div', { class: 'error' }, s.error) : null),
    el('td', {}, String(s.commits)),
    el('td', {}, String(s.viewers)),
    el('td', {}, `${s.idleSecs} s`),
    el('td', {}, s.fetching ? 'fetching' : s.fetchFailures ? `${s.fetchFailures} failed` : '—'),
    el('td', {}, bytes(s.cacheBytes)),
    el('td', {}, bytes(s.heapBytes)),
    el('td', {},
      el('button', { type: 'button', onclick: () => action(s.id, 'fetch') }, 'Fetch'),
      ' ',
      el('button', { type: 'button', class: 'danger', onclick: () => action(s.id, 'evict') }, 'Evict')),
  )) : el('tr', {}, el('td', { colspan: '8', class: 'muted' }, 'No sessions running.')));
  $('overview').hidden = false;
  $('login').hidden = true;
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.ready = 'true';
  return true;
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const resp = await fetch('/api/admin/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: $('token').value }),
  });
  if (!resp.ok) {
    $('message').textContent = 'That token is not right.';
    $('message').hidden = false;
    return;
  }
  $('message').hidden = true;
  $('token').value = '';
  refresh();
});

(async function loop() {
  try { await refresh(); } catch (e) { $('message').textContent = e.message; $('message').hidden = false; }
  if (!$('login').hidden) document.body.dataset.ready = 'true';
  setTimeout(loop, 2000);
})();
