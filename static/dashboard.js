// The dashboard (hosted mode): every repository with its state, and a delete button.

import { el, fill, relativeTime } from './api.js';

const rows = document.getElementById('rows');
const message = document.getElementById('message');

async function load() {
  const resp = await fetch('/api/repos');
  const { repos } = await resp.json();
  fill(rows, repos.length ? repos.map((r) => el('tr', { 'data-id': r.id },
    el('td', {}, el('a', { href: `/r/${r.id}` }, r.displayUrl || r.url)),
    el('td', {}, el('span', { class: `state-badge ${r.state}`, title: r.error || '' }, r.state)),
    el('td', {}, String(r.commits)),
    el('td', {}, r.lastFetchAt ? relativeTime(r.lastFetchAt) : '—'),
    el('td', {}, r.lastAccessAt ? relativeTime(r.lastAccessAt) : '—'),
    el('td', {}, el('button', { type: 'button', class: 'danger', onclick: () => remove(r) }, 'Delete')),
  )) : el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No repositories yet.')));
  document.body.dataset.ready = 'true';
}

async function remove(r) {
  if (!confirm(`Delete ${r.displayUrl || r.url}? Its clone is removed; pasting the URL again clones it anew.`)) return;
  const resp = await fetch(`/api/repos/${r.id}`, { method: 'DELETE' });
  if (!resp.ok) {
    message.textContent = `Could not delete: the server answered ${resp.status}.`;
    message.hidden = false;
  }
  await load();
}

load().catch((e) => { message.textContent = e.message; message.hidden = false; });
