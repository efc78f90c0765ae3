// Accounts in the pages (hosted mode with sign-in on): who is signed in, the header's account
// menu (avatar, plan and usage, sign out), and sending a user whose session ended through
// sign-in and back to the page they were on.

import { el, fill } from './api.js';

const SIGNED_IN = 'gitvista.signedIn';

/** { enabled, user }: sign-in is off (the server answers 404), or on with the user or null. */
export async function currentUser() {
  let resp;
  try {
    resp = await fetch('/api/user', { headers: { Accept: 'application/json' } });
  } catch {
    return { enabled: false, user: null };
  }
  if (resp.status === 404) return { enabled: false, user: null };
  if (!resp.ok) {
    return { enabled: true, user: null, expired: localStorage.getItem(SIGNED_IN) === '1' };
  }
  localStorage.setItem(SIGNED_IN, '1');
  return { enabled: true, user: await resp.json() };
}

/** The forges one may sign in with: [{ kind, name }] (empty when sign-in is off). */
export async function forgeList() {
  try {
    const resp = await fetch('/auth/forges', { headers: { Accept: 'application/json' } });
    if (!resp.ok) return [];
    return (await resp.json()).forges || [];
  } catch {
    return [];
  }
}

/** Where the sign-in with `forge` starts, coming back to `back` (this page by default);
 * `action` 'connect' links the forge to the signed-in account instead. */
export function signInUrl(back = location.pathname + location.search, includePrivate = false, forge = 'github', action = 'login') {
  const q = new URLSearchParams({ back });
  if (includePrivate) q.set('private', '1');
  return `/auth/${encodeURIComponent(forge)}/${action}?${q}`;
}

/** One sign-in button per forge. */
export function signInButtons(forges, back, includePrivate = false) {
  return forges.map((f) => el('a', { class: 'button sign-in', 'data-forge': f.kind, href: signInUrl(back, includePrivate, f.kind) }, `Sign in with ${f.name}`));
}

/** Sends a user whose session ended (they were signed in here, and now are not) through
 * sign-in and back to this page; answers whether it did. */
export async function resumeExpiredSession() {
  const who = await currentUser();
  if (who.enabled && !who.user && who.expired) {
    localStorage.removeItem(SIGNED_IN);
    const forges = await forgeList();
    // One forge: straight through it; several: the landing page asks which.
    location.href = forges.length === 1
      ? signInUrl(undefined, false, forges[0].kind)
      : `/?signin=required&${new URLSearchParams({ back: location.pathname + location.search })}`;
    return true;
  }
  return false;
}

async function signOut(everywhere) {
  await fetch(`/auth/logout${everywhere ? '?everywhere=1' : ''}`, { method: 'POST' });
  localStorage.removeItem(SIGNED_IN);
  location.href = '/';
}

/** The forges linked to the account (each with Disconnect while another remains) and the
 * configured ones not linked yet (Connect). */
function connections(u) {
  const names = { github: 'GitHub', gitlab: 'GitLab', bitbucket: 'Bitbucket' };
  const linked = u.connections || [];
  const rows = linked.map((c) => el('li', { 'data-forge': c.forge },
    `${c.name || names[c.forge] || c.forge}: @${c.login} `,
    linked.length > 1
      ? el('button', {
        type: 'button', class: 'link disconnect', onclick: async () => {
          const resp = await fetch(`/api/user/connections/${encodeURIComponent(c.forge)}`, { method: 'DELETE' });
          if (resp.ok) location.reload();
        },
      }, 'Disconnect')
      : null));
  const missing = (u.forges || []).filter((f) => !linked.some((c) => c.forge === f));
  const connect = missing.map((f) => el('li', {},
    el('a', { class: 'connect', 'data-forge': f, href: signInUrl('/dashboard', false, f, 'connect') }, `Connect ${names[f] || f}`)));
  return el('ul', { class: 'connections', id: 'connections' }, ...rows, ...connect);
}

function initial(user) {
  return el('span', { class: 'avatar initial', 'aria-hidden': 'true' }, (user.login || '?').slice(0, 1).toUpperCase());
}

/** The account corner of `header`: a sign-in link, or the user's menu. */
export function accountMenu(header, who) {
  if (!who.enabled) return;
  const slot = el('div', { class: 'account', id: 'account' });
  header.append(slot);
  if (!who.user) {
    forgeList().then((forges) => fill(slot, ...signInButtons(forges, location.pathname + location.search)));
    return;
  }
  const u = who.user;
  let avatar = initial(u);
  if (u.avatarUrl && /^https:\/\/avatars\.githubusercontent\.com\//.test(u.avatarUrl)) {
    avatar = el('img', { class: 'avatar', src: u.avatarUrl, alt: '', width: '24', height: '24' });
    avatar.addEventListener('error', () => avatar.replaceWith(initial(u)), { once: true });
  }
  const usage = `${u.usage.repos} of ${u.usage.limit} repositories`;
  const menu = el('div', { class: 'account-menu', id: 'account-menu', hidden: '' },
    el('p', {}, el('strong', {}, u.name || u.login), el('br'), el('span', { class: 'muted' }, `@${u.login}`)),
    el('p', { class: 'muted', id: 'plan' }, `${u.plan === 'paid' ? 'Paid' : 'Free'} plan · ${usage}`),
    el('a', { href: '/dashboard' }, 'Your repositories'),
    connections(u),
    el('button', { type: 'button', id: 'sign-out', onclick: () => signOut(false) }, 'Sign out'),
    el('button', { type: 'button', id: 'sign-out-everywhere', onclick: () => signOut(true) }, 'Sign out everywhere'));
  const toggle = el('button', {
    type: 'button', class: 'account-button', id: 'account-button', 'aria-haspopup': 'true',
    'aria-expanded': 'false', title: `${u.login}: ${usage}`,
  }, avatar, el('span', { class: 'login' }, u.login), el('span', { class: 'usage muted' }, `${u.usage.repos}/${u.usage.limit}`));
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    toggle.setAttribute('aria-expanded', String(!menu.hidden));
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !menu.hidden) { menu.hidden = true; toggle.focus(); }
  });
  document.addEventListener('click', (e) => {
    if (!slot.contains(e.target)) menu.hidden = true;
  });
  fill(slot, toggle, menu);
}
