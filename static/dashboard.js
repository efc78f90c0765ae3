// The dashboard (hosted mode). An admin (signed in at /admin) sees every repository with a
// Delete button; everyone else sees the repositories this browser viewed, without one.

import { el, fill, relativeTime, fetchRecent } from './api.js';

const rows = document.getElementById('rows');
const message = document.getElementById('message');
const note = document.getElementById('who');

/** Every repository when this browser holds the admin cookie, else null. */
async function adminList() {
  const resp = await fetch('/api/admin/repos');
  if (!resp.ok) return null;
  return (await resp.json()).repos;
}

async function load() {
  const all = await adminList();
  const admin = all !== null;
  const repos = admin ? all : await fetchRecent();
  note.textContent = admin
    ? 'Every repository on this server (you are signed in as admin).'
    : 'Repositories viewed in this browser. Deleting repositories needs an admin sign-in.';
  document.querySelector('th.actions').hidden = !admin;
  fill(rows, repos.length ? repos.map((r) => el('tr', { 'data-id': r.id },
    el('td', {}, el('a', { href: `/r/${r.id}` }, r.displayUrl || r.url)),
    el('td', {}, el('span', { class: `state-badge ${r.state}`, title: r.error || '' }, r.state)),
    el('td', {}, String(r.commits)),
    el('td', {}, r.lastFetchAt ? relativeTime(r.lastFetchAt) : '—'),
    el('td', {}, r.lastAccessAt ? relativeTime(r.lastAccessAt) : '—'),
    admin ? el('td', {}, el('button', { type: 'button', class: 'danger', onclick: () => remove(r) }, 'Delete')) : null,
  )) : el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No repositories yet.')));
  document.body.dataset.ready = 'true';
  document.body.dataset.admin = String(admin);
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
