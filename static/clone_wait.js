// Hosted mode, a repository not shown yet: the clone-progress overlay, fed by the page's live
// socket (a progress socket until the graph is served) and, between its messages, by polling.

import { api, repoId, el, rememberRepo } from './api.js';

let waiter = null;

/** A `status` message of the clone's progress, pushed over the live socket. */
export function pushedStatus(msg) {
  if (waiter) waiter(msg);
}

/** The next pushed status, or null after `ms`. */
function nextPushedStatus(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { waiter = null; resolve(null); }, ms);
    waiter = (msg) => { clearTimeout(timer); waiter = null; resolve(msg); };
  });
}

/** Shows clone progress in `state` until the repository is ready, or its history is shown
 * from the remote while the clone runs ('ready'), or failed ('error', shown); 'none' outside
 * hosted mode. `showName` puts the repository's name in the header. */
export async function waitForClone(state, showName) {
  let status;
  try {
    status = await api('/status');
  } catch {
    return 'none';
  }
  if (status.mode === 'local') return 'none'; // not hosted mode
  rememberRepo(repoId);
  showName(status.name);
  const bar = el('div');
  const text = el('p', { class: 'muted' });
  state.replaceChildren(el('div', {},
    el('strong', {}, 'Cloning ', el('code', {}, status.displayUrl || status.url)),
    el('div', { class: 'progress', role: 'progressbar', 'aria-label': 'Clone progress' }, bar),
    text));
  state.hidden = false;
  for (;;) {
    if (status.state === 'ready' || status.rows > 0) return 'ready';
    if (status.state === 'error') {
      const retry = el('button', { type: 'button' }, 'Try again');
      retry.addEventListener('click', async () => {
        await fetch('/api/repos', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: status.url }) });
        location.reload();
      });
      state.replaceChildren(el('div', {}, el('strong', {}, 'The clone failed'), el('p', {}, status.error || ''), retry));
      return 'error';
    }
    const pct = status.percent ?? 0;
    bar.style.width = `${pct}%`;
    text.textContent = status.progress || (status.state === 'pending' ? 'Waiting for a free slot\u2026' : `${status.state}\u2026`);
    // Progress arrives over the socket; without it, ask every half second.
    const pushed = await nextPushedStatus(500);
    if (pushed) status = pushed;
    else {
      try { status = await api('/status'); } catch { return 'none'; }
    }
  }
}
