// The admin page: the actor tree and rates, refreshed every 2 s from /api/admin/actors and
// /metrics.

import { el, fill } from './api.js';

const $ = (id) => document.getElementById(id);
const history = { viewers: [], events: [], http: [], rss: [], jobs: [], slow: [] };
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

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : /(s|ch|sh|x)$/.test(word) ? 'es' : 's'}`;
const dur = (secs) => (secs >= 3600 && secs % 3600 === 0 ? `${secs / 3600} h` : secs >= 60 && secs % 60 === 0 ? `${secs / 60} min` : `${secs} s`);
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
  const resp = await fetch('/api/admin/actors');
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
  const tree = await resp.json();
  const { sessions } = tree;
  const metrics = await (await fetch('/metrics')).text();
  const now = performance.now() / 1000;
  const sample = {
    t: now,
    viewers: sum(metrics, 'gitvista_viewers') ?? 0,
    events: sum(metrics, 'gitvista_events_sent_total') ?? 0,
    http: sum(metrics, 'gitvista_http_requests_total') ?? 0,
    rss: sum(metrics, 'gitvista_process_resident_bytes') ?? 0,
    jobs: sum(metrics, 'gitvista_git_job_seconds_count') ?? 0,
    slow: (sum(metrics, 'gitvista_ws_resyncs_total') ?? 0) + (sum(metrics, 'gitvista_ws_viewers_dropped_total') ?? 0),
  };
  const rate = (k) => (last && sample.t > last.t ? Math.max(0, (sample[k] - last[k]) / (sample.t - last.t)) : 0);
  const events = rate('events');
  const http = rate('http');
  const push = (k, v) => { history[k].push(v); if (history[k].length > 60) history[k].shift(); };
  push('viewers', sample.viewers);
  push('events', events);
  push('http', http);
  push('rss', sample.rss);
  push('jobs', rate('jobs'));
  push('slow', rate('slow'));
  last = sample;
  $('m-viewers').textContent = String(sample.viewers);
  $('m-events').textContent = events.toFixed(1);
  $('m-http').textContent = http.toFixed(1);
  $('m-rss').textContent = bytes(sample.rss);
  $('m-jobs').textContent = history.jobs[history.jobs.length - 1].toFixed(1);
  $('m-slow').textContent = history.slow[history.slow.length - 1].toFixed(1);
  for (const k of Object.keys(history)) spark(`c-${k}`, history[k]);
  $('supervisor').textContent = `${plural(tree.supervisor.sessions, 'session')}, ${plural(tree.supervisor.viewers, 'viewer')} (${tree.mode} mode)`;
  fill($('sessions'), sessions.length ? sessions.map((s) => el('tr', { 'data-id': s.id },
    el('td', {},
      el('a', { href: `/r/${s.id}` }, s.url || s.id),
      s.state ? el('span', { class: `state-badge ${s.state}` }, s.state) : null,
      s.error ? el('div', { class: 'error' }, s.error) : null),
    el('td', {}, String(s.commits),
      s.hydrating != null ? el('div', { class: 'muted' }, `file contents: ${s.hydrating}%`)
        : s.contents === 'commits' ? el('div', { class: 'muted' }, 'commits only')
          : s.contents === 'trees' ? el('div', { class: 'muted' }, 'no file contents') : null),
    el('td', {}, String(s.viewers)),
    el('td', {}, `${s.idleSecs} s`),
    el('td', {}, s.fetching ? 'fetching now'
      : s.lastFetchSecsAgo == null ? '—'
        : `${s.lastFetchSecsAgo} s ago, ${s.lastFetchError ? `failed (${s.fetchFailures}×): ${s.lastFetchError}` : 'ok'}`),
    el('td', {}, s.nextFetchInSecs == null ? '—' : `in ${s.nextFetchInSecs} s`,
      s.hookSecsAgo == null ? null : el('div', { class: 'muted' }, `hook ${s.hookSecsAgo} s ago`)),
    el('td', {}, bytes(s.cacheBytes)),
    el('td', {}, bytes(s.heapBytes)),
    el('td', {},
      el('button', { type: 'button', onclick: () => action(s.id, 'fetch') }, 'Fetch'),
      ' ',
      el('button', { type: 'button', class: 'danger', onclick: () => action(s.id, 'evict') }, 'Evict')),
  )) : el('tr', {}, el('td', { colspan: '9', class: 'muted' }, 'No sessions running.')));
  const queue = tree.cloneQueue;
  $('queue-section').hidden = !queue;
  if (queue) {
    const running = queue.jobs.filter((j) => j.running).length;
    $('queue-summary').textContent = `${running} of ${queue.concurrency} running, ${queue.jobs.length - running} waiting; ${queue.started} git ${queue.started === 1 ? 'process' : 'processes'} started, ${queue.joined} joined a running one`;
    fill($('jobs'), queue.jobs.length ? queue.jobs.map((j) => el('tr', {},
      el('td', {}, el('a', { href: `/r/${j.id}` }, j.id)),
      el('td', {}, j.kind),
      el('td', {}, j.priority),
      el('td', {}, j.running ? 'running' : 'queued'),
      el('td', {}, `${j.secs.toFixed(1)} s`),
      el('td', {}, j.phase ? `${j.phase}${j.percent != null ? ` ${j.percent}%` : ''}` : '—'),
    )) : el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No git jobs.')));
  }
  const hooks = tree.webhooks;
  $('webhooks-section').hidden = !hooks;
  if (hooks) {
    const on = ['github', 'gitlab', 'bitbucket', 'generic'].map((name) => {
      const ago = hooks.lastDeliverySecsAgo[name];
      return `${name} ${hooks.receivers[name] ? 'on' : 'off'}${ago == null ? '' : ` (last delivery ${ago} s ago)`}`;
    });
    $('webhooks-receivers').textContent = `Receivers: ${on.join(', ')}. Repositories whose hook delivered within a day are fetched every ${dur(hooks.hookedFetchSecs)} as a safety net. ${plural(hooks.registrations, 'hook')} registered on forges.`;
    $('webhooks-summary').textContent = `${plural(hooks.fetches.toSessions, 'fetch')} through sessions, ${hooks.fetches.background} in the background, ${hooks.fetches.coalesced} coalesced`;
    // The latest deliveries, grouped by repository (the repository with the newest first).
    const byRepo = new Map();
    for (const d of hooks.deliveries) {
      const key = d.repo || '';
      if (!byRepo.has(key)) byRepo.set(key, []);
      byRepo.get(key).push(d);
    }
    const rows = [];
    for (const [repo, list] of byRepo) {
      list.forEach((d, i) => rows.push(el('tr', {},
        el('td', {}, i ? '' : repo ? el('a', { href: `/r/${repo}` }, repo) : el('span', { class: 'muted' }, 'no repository')),
        el('td', {}, `${d.secsAgo} s ago`),
        el('td', {}, d.provider),
        el('td', {}, d.event),
        el('td', {}, el('span', { class: `outcome ${d.outcome}` }, d.outcome)))));
    }
    fill($('deliveries'), rows.length ? rows : el('tr', {}, el('td', { colspan: '5', class: 'muted' }, 'No deliveries yet.')));
  }
  const cluster = tree.cluster;
  $('cluster-section').hidden = !cluster;
  if (cluster) {
    const jobs = Object.entries(cluster.jobs).map(([state, n]) => `${n} ${state}`).join(', ') || 'none';
    $('cluster-summary').textContent = `${plural(cluster.nodes.length, 'live node')} (dead after ${cluster.leaseMs / 1000} s without a heartbeat); jobs in the shared queue: ${jobs}`;
    const placed = new Map(cluster.placement.map((p) => [p.owner, p.repos]));
    const unplaced = placed.get(null) || 0;
    fill($('nodes'), cluster.nodes.map((n) => el('tr', {},
      el('td', {}, n.id, n.self ? el('span', { class: 'muted' }, ' (this node)') : null),
      el('td', {}, n.role),
      el('td', {}, n.internalAddr || '—'),
      el('td', {}, `${(n.heartbeatAgeMs / 1000).toFixed(1)} s ago`),
      el('td', {}, String(n.sessions)),
      el('td', {}, String(n.viewers)),
      el('td', {}, n.role === 'web' ? '—' : bytes(n.freeBytes)),
      el('td', {}, n.role === 'web' ? '—' : String(placed.get(n.id) || 0)))));
    const jobRow = (j, last) => el('tr', {},
      el('td', {}, j.repo),
      el('td', {}, j.kind),
      el('td', {}, j.node || '—'),
      el('td', {}, `${j.attempts} of ${j.maxAttempts}`),
      el('td', { class: j.error && !j.leaseLeftMs ? 'error' : '' }, last(j)));
    const jobRows = [
      ...cluster.running.map((j) => jobRow(j, (r) => `running, lease ends in ${(r.leaseLeftMs / 1000).toFixed(0)} s`)),
      ...cluster.failed.map((j) => jobRow(j, (f) => `failed: ${f.error || 'unknown'}`)),
    ];
    fill($('cluster-jobs'), jobRows.length ? jobRows : el('tr', {}, el('td', { colspan: '5', class: 'muted' },
      unplaced ? `Nothing running; ${unplaced} ${unplaced === 1 ? 'repository' : 'repositories'} not placed on a worker.` : 'Nothing running or failed.')));
  }
  const ev = tree.eviction;
  $('eviction-section').hidden = !ev;
  if (ev) {
    $('eviction-summary').textContent = `every ${dur(ev.intervalSecs)}: sessions without viewers idle for ${dur(ev.sessionIdleSecs)} stop, clones unused for ${dur(ev.cloneUnusedSecs)} are deleted`;
    const deleted = ev.clonesDeleted.length ? ` Clones deleted lately: ${ev.clonesDeleted.map((c) => `${c.id} (${c.secsAgo} s ago)`).join(', ')}.` : '';
    $('eviction-last').textContent = ev.lastSweepSecsAgo == null
      ? `No sweep yet.${deleted}`
      : `Last sweep ${ev.lastSweepSecsAgo} s ago stopped ${ev.lastStopped.length ? ev.lastStopped.join(', ') : 'nothing'} and left ${ev.lastActive} running; ${ev.stoppedTotal} stopped in ${ev.sweeps} sweeps.${deleted}`;
  }
  $('overview').hidden = false;
  $('login').hidden = true;
  $('logout').hidden = false;
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
    const body = await resp.json().catch(() => ({}));
    // 429: too many attempts from this address; the server says when to try again.
    $('message').textContent = resp.status === 429 ? body.error : 'That token is not right.';
    $('message').hidden = false;
    return;
  }
  $('message').hidden = true;
  $('token').value = '';
  refresh();
});

$('logout').addEventListener('click', async () => {
  await fetch('/api/admin/logout', { method: 'POST' });
  $('logout').hidden = true;
  refresh();
});

(async function loop() {
  try { await refresh(); } catch (e) { $('message').textContent = e.message; $('message').hidden = false; }
  if (!$('login').hidden) document.body.dataset.ready = 'true';
  setTimeout(loop, 2000);
})();
