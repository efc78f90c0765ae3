// The landing page (hosted mode): paste a URL, go to its graph; recently viewed repositories.

import { el, fill, relativeTime, fetchRecent, rememberRepo } from './api.js';

const form = document.getElementById('paste');
const input = document.getElementById('url');
const message = document.getElementById('message');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  message.hidden = true;
  const url = input.value.trim();
  if (!url) return;
  form.querySelector('button').disabled = true;
  try {
    const resp = await fetch('/api/repos', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ url }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || `The server answered ${resp.status}.`);
    rememberRepo(body.id);
    location.href = `/r/${encodeURIComponent(body.id)}`;
  } catch (err) {
    message.textContent = err.message;
    message.hidden = false;
    input.focus();
  } finally {
    form.querySelector('button').disabled = false;
  }
});

(async () => {
  try {
    const repos = await fetchRecent();
    const items = repos.map((r) => el('li', {},
      el('a', { href: `/r/${r.id}` }, r.displayUrl || r.url),
      el('span', { class: `state-badge ${r.state}` }, r.state),
      r.lastAccessAt ? el('span', { class: 'muted' }, relativeTime(r.lastAccessAt)) : null));
    fill(document.getElementById('recent'), items.length ? items : el('li', { class: 'muted' }, 'Nothing yet.'));
  } catch {
    fill(document.getElementById('recent'), el('li', { class: 'muted' }, 'The list is not available.'));
  }
  document.body.dataset.ready = 'true';
})();
