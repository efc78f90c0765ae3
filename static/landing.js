// The landing page (hosted mode): paste a URL, go to its graph; recently viewed repositories.

import { el, fill, relativeTime, fetchRecent, rememberRepo } from './api.js';
import { accountMenu, currentUser, forgeList, signInButtons } from './account.js';

const form = document.getElementById('paste');
const input = document.getElementById('url');
const message = document.getElementById('message');

/** Adds (or, signed in, tracks) `url` and opens its graph; a refusal is shown. */
async function open(url, button) {
  message.hidden = true;
  if (button) button.disabled = true;
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
    return false;
  } finally {
    if (button) button.disabled = false;
  }
  return true;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const url = input.value.trim();
  if (!url) return;
  if (!await open(url, form.querySelector('button'))) input.focus();
});

/** "Your repositories": the user's repositories on one of their forges (a tab per linked
 * forge), a page at a time, filtered by name, each one click from its graph. */
function picker(user) {
  const linked = (user.connections || []).map((c) => c.forge);
  let forge = linked[0] || '';
  const names = { github: 'GitHub', gitlab: 'GitLab', bitbucket: 'Bitbucket' };
  const title = document.getElementById('yours-title');
  const tabs = document.getElementById('picker-forges');
  const show = () => { title.textContent = `Your repositories on ${names[forge] || forge}`; };
  if (linked.length > 1) {
    fill(tabs, ...linked.map((f) => el('button', {
      type: 'button', class: 'tab', 'data-forge': f, 'aria-pressed': String(f === forge),
      onclick: (e) => {
        forge = f;
        for (const b of tabs.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
        show();
        load(true);
      },
    }, names[f] || f)));
    tabs.hidden = false;
  }
  show();
  const list = document.getElementById('picker');
  const more = document.getElementById('picker-more');
  const q = document.getElementById('picker-q');
  let page = 1;
  let timer = 0;
  const load = async (reset) => {
    if (reset) page = 1;
    const params = new URLSearchParams({ page: String(page) });
    if (forge) params.set('forge', forge);
    if (q.value.trim()) params.set('q', q.value.trim());
    const resp = await fetch(`/api/user/repos?${params}`);
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      fill(list, el('li', { class: 'error' }, body.error || `The server answered ${resp.status}.`));
      more.hidden = true;
      return;
    }
    const items = body.repos.map((r) => el('li', { 'data-name': r.fullName },
      el('span', { class: 'repo-name' }, r.fullName),
      r.private ? el('span', { class: 'private-badge' }, 'private') : null,
      r.tracked
        ? el('a', { class: 'button', href: `/r/${r.id}` }, 'Open')
        : el('button', { type: 'button', class: 'track', onclick: (e) => open(r.url, e.currentTarget) }, 'Track')));
    if (reset) fill(list, items.length ? items : el('li', { class: 'muted' }, 'No repositories match.'));
    else list.append(...items);
    more.hidden = !body.more;
    document.getElementById('yours').dataset.ready = 'true';
  };
  more.addEventListener('click', () => { page += 1; load(false); });
  q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => load(true), 250); });
  return load(true);
}

async function account() {
  const who = await currentUser();
  accountMenu(document.getElementById('top'), who);
  if (!who.enabled) return;
  const params = new URLSearchParams(location.search);
  const forges = await forgeList();
  const nameOf = (kind) => (forges.find((f) => f.kind === kind) || { name: 'the forge' }).name;
  if (params.get('signin') === 'cancelled') {
    message.textContent = `Sign-in was cancelled on ${nameOf(params.get('forge') || 'github')}.`;
    message.hidden = false;
  } else if (params.get('signin') === 'required' && !who.user) {
    message.textContent = 'Sign in to see that page.';
    message.hidden = false;
  }
  if (!who.user) {
    const box = document.getElementById('signin-box');
    const slot = document.getElementById('signin');
    const priv = document.getElementById('include-private');
    const back = params.get('signin') === 'required' && params.get('back') ? params.get('back') : '/';
    // Only a GitHub OAuth App asks for private repositories separately (its `repo` scope).
    priv.closest('label').hidden = !forges.some((f) => f.kind === 'github');
    const update = () => fill(slot, ...signInButtons(forges, back, priv.checked));
    priv.addEventListener('change', update);
    update();
    box.hidden = false;
    return;
  }
  document.getElementById('intro').textContent = 'Paste the URL of a Git repository, or pick one of yours below: private ones are shown to you, and to nobody whose own account on their forge cannot read them.';
  document.getElementById('yours').hidden = false;
  await picker(who.user);
}

(async () => {
  await account().catch(() => {});
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
