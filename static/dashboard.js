// The dashboard (hosted mode). A signed-in user sees what they track, with "Stop tracking"; an
// admin (signed in at /admin) sees every repository with a Delete button; anyone else sees the
// repositories this browser viewed.

import { el, fill, relativeTime, fetchRecent } from './api.js';
import { accountMenu, currentUser } from './account.js';

const rows = document.getElementById('rows');
const message = document.getElementById('message');
const note = document.getElementById('who');

/** Every repository when this browser holds the admin cookie, else null. */
async function adminList() {
  const resp = await fetch('/api/admin/repos');
  if (!resp.ok) return null;
  return (await resp.json()).repos;
}

/** What the signed-in user tracks. */
async function trackedList() {
  const resp = await fetch('/api/user/tracked');
  if (!resp.ok) throw new Error(`The server answered ${resp.status}.`);
  return (await resp.json()).repos;
}

/** "12.3 MB". */
function size(bytes) {
  const units = ['B', 'kB', 'MB', 'GB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

let who = { enabled: false, user: null };

/** "every 30 s", "every 15 min". */
const every = (secs) => (secs >= 60 && secs % 60 === 0 ? `every ${secs / 60} min` : `every ${secs} s`);

/** How a tracked repository stays fresh, and how to set up its generic hook. */
function updates(u) {
  if (!u) return '—';
  const how = u.mode === 'webhook'
    ? el('span', { class: 'live-badge', title: `the last delivery came ${u.hookSecsAgo} s ago; polled ${every(u.everySecs)} as a safety net` }, 'live by webhook')
    : el('span', { class: 'muted nowrap' }, `polled ${every(u.everySecs)}${u.registered ? ' (hook registered, nothing delivered yet)' : ''}`);
  if (!u.generic) return how;
  return el('div', {}, how, el('details', { class: 'hook-setup' },
    el('summary', {}, 'Set up push updates'),
    el('p', {}, 'On your Git host, add a push webhook (JSON) with this URL and secret; GitHub-style and Gitea or Forgejo signatures work.'),
    el('label', {}, 'URL ', el('input', { type: 'text', readonly: '', value: u.generic.url, class: 'hook-url', onfocus: (e) => e.target.select() })),
    el('label', {}, 'Secret ', el('input', { type: 'text', readonly: '', value: u.generic.secret, class: 'hook-secret', onfocus: (e) => e.target.select() }))));
}

/** When a Unix time is, for people: "27 November 2026". */
const day = (secs) => new Date(secs * 1000).toLocaleDateString(undefined, { day: 'numeric', month: 'long', year: 'numeric' });

/** Sends the browser to the URL a billing route answers (Stripe's Checkout or portal). */
async function toStripe(path, button) {
  button.disabled = true;
  const resp = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  const body = await resp.json().catch(() => ({}));
  if (resp.ok && body.url) {
    location.href = body.url;
    return;
  }
  button.disabled = false;
  message.textContent = body.error || `The server answered ${resp.status}.`;
  message.hidden = false;
}

/** The plan, Upgrade or Manage billing, and a failed payment's banner. */
function billing(user) {
  const box = document.getElementById('billing');
  if (!user || !user.billingEnabled) return;
  const b = user.billing || {};
  const noteEl = document.getElementById('billing-note');
  const frozen = user.usage.frozen || 0;
  const limit = user.usage.limit;
  const parts = [`You are on the ${user.plan} plan (${limit} ${limit === 1 ? 'repository' : 'repositories'}).`];
  if (b.graceUntil) {
    parts.push(`Your last payment failed: the paid plan stays until ${day(b.graceUntil)}. Update your payment method in Manage billing.`);
    box.classList.add('warning');
  }
  if (frozen) parts.push(`${frozen} ${frozen === 1 ? 'repository is' : 'repositories are'} over your plan and no longer refreshed: choose which to keep below, or upgrade.`);
  noteEl.textContent = parts.join(' ');
  const params = new URLSearchParams(location.search);
  if (params.get('billing') === 'success') noteEl.prepend('Thank you: your payment went through. ');
  if (params.get('billing') === 'cancelled') noteEl.prepend('Checkout was cancelled; nothing was charged. ');
  const upgrade = document.getElementById('upgrade');
  const manage = document.getElementById('manage-billing');
  upgrade.hidden = b.subscribed === true;
  manage.hidden = !b.subscribed && b.status == null;
  upgrade.onclick = () => toStripe('/api/billing/checkout', upgrade);
  manage.onclick = () => toStripe('/api/billing/portal', manage);
  box.hidden = false;
}

async function keep(r) {
  const resp = await fetch(`/api/user/tracked/${r.id}/keep`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  if (!resp.ok) {
    message.textContent = `Could not keep it: the server answered ${resp.status}.`;
    message.hidden = false;
  }
  who = await currentUser();
  await load();
}

/** The team shown, from `?team=` (none: Personal). */
let teamId = new URLSearchParams(location.search).get('team');

/** "Personal" and each team of the user. */
async function scopes() {
  const nav = document.getElementById('scopes');
  const resp = await fetch('/api/teams');
  if (!resp.ok) return;
  const { teams, invites } = await resp.json();
  const pick = (id) => {
    teamId = id;
    const url = new URL(location.href);
    if (id) url.searchParams.set('team', id); else url.searchParams.delete('team');
    history.replaceState(null, '', url);
    for (const b of nav.children) b.setAttribute('aria-pressed', String((b.dataset.team || null) === id));
    load();
  };
  fill(nav,
    el('button', { type: 'button', class: 'tab', 'aria-pressed': String(!teamId), onclick: () => pick(null) }, 'Personal'),
    ...teams.map((t) => el('button', { type: 'button', class: 'tab', 'data-team': t.team.id, 'aria-pressed': String(teamId === t.team.id), onclick: () => pick(t.team.id) }, t.team.name)));
  nav.hidden = teams.length === 0;
  const form = document.getElementById('new-team');
  form.hidden = false;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const name = document.getElementById('new-team-name').value;
    const r = await fetch('/api/teams', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
    const b = await r.json().catch(() => ({}));
    if (!r.ok) {
      message.textContent = b.error || `The server answered ${r.status}.`;
      message.hidden = false;
      return;
    }
    location.href = `/dashboard?team=${encodeURIComponent(b.team.id)}`;
  };
  // Invitations to one of the user's forge accounts.
  for (const inv of invites) {
    const join = document.getElementById('join');
    document.getElementById('join-note').textContent = `You are invited to join the team ${inv.team}.`;
    document.getElementById('join-button').onclick = () => joinTeam(`/api/teams/invites/${encodeURIComponent(inv.id)}/accept`, inv.teamId);
    join.hidden = false;
  }
}

async function joinTeam(path, id) {
  const resp = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    message.textContent = body.error || `The server answered ${resp.status}.`;
    message.hidden = false;
    return;
  }
  document.getElementById('join').hidden = true;
  location.href = `/dashboard?team=${encodeURIComponent(body.teamId || id)}`;
}

/** An invitation link in the address (`?join=TOKEN`): what it offers, and Join. */
async function offerJoin() {
  const token = new URLSearchParams(location.search).get('join');
  if (!token || !who.user) return;
  const resp = await fetch(`/api/teams/join/${encodeURIComponent(token)}`);
  const body = await resp.json().catch(() => ({}));
  const join = document.getElementById('join');
  if (!resp.ok) {
    message.textContent = body.error || `This invitation cannot be used (${resp.status}).`;
    message.hidden = false;
    return;
  }
  document.getElementById('join-note').textContent = `You are invited to join the team ${body.team}${body.for ? ` (for ${body.for})` : ''}.`;
  document.getElementById('join-button').onclick = () => joinTeam(`/api/teams/join/${encodeURIComponent(token)}`, body.teamId);
  join.hidden = false;
}

/** A team's members, invitation link (its owner) and shared repositories. */
async function loadTeam() {
  const resp = await fetch(`/api/teams/${encodeURIComponent(teamId)}`);
  if (!resp.ok) throw new Error(`The server answered ${resp.status}.`);
  const t = await resp.json();
  document.getElementById('team').hidden = false;
  document.getElementById('billing').hidden = true;
  document.getElementById('team-name').textContent = t.team.name;
  fill(document.getElementById('members'), ...t.members.map((m) => el('li', { 'data-login': m.login }, `@${m.login}`, m.role === 'owner' ? el('span', { class: 'private-badge' }, 'owner') : null)));
  const box = document.getElementById('invite-box');
  box.hidden = t.role !== 'owner';
  document.getElementById('invite').onclick = async () => {
    const r = await fetch(`/api/teams/${encodeURIComponent(teamId)}/invites`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    const b = await r.json().catch(() => ({}));
    const input = document.getElementById('invite-url');
    input.value = r.ok ? b.url : (b.error || `The server answered ${r.status}.`);
    input.hidden = false;
    input.select();
  };
  // Who did what, for the owner.
  const auditBox = document.getElementById('audit-box');
  auditBox.hidden = t.role !== 'owner';
  if (t.role === 'owner') {
    const r = await fetch(`/api/teams/${encodeURIComponent(teamId)}/audit?limit=50`);
    const events = r.ok ? (await r.json()).events : [];
    const login = (actor) => {
      const m = t.members.find((x) => `user:${x.id}` === actor);
      return m ? `@${m.login}` : actor;
    };
    fill(document.getElementById('audit'), ...events.map((e) => el('li', { 'data-action': e.action },
      el('span', { class: 'muted' }, relativeTime(e.at)), ` ${login(e.actor)} ${e.action.replace('.', ' ')}`,
      e.target ? ` ${login(e.target)}` : '', e.detail ? el('span', { class: 'muted' }, ` (${e.detail})`) : null)));
  }
  const hidden = t.hiddenRepos ? ` ${t.hiddenRepos} more on its list ${t.hiddenRepos === 1 ? 'is' : 'are'} private and not readable with your own forge accounts.` : '';
  const over = t.overSeats ? ` The team has more members than its ${t.plan.seats} seats: nobody new can join until ${t.role === 'owner' ? 'you buy more seats' : 'its owner buys more seats'} or members leave.` : '';
  note.textContent = `The team's shared list: ${t.usage.repos} of ${t.plan.repoLimit} repositories on its ${t.plan.plan} plan, ${t.members.length} of ${t.plan.seats} seats.${over}${hidden}`;
  note.classList.toggle('over-seats', Boolean(t.overSeats));
  document.querySelector('th.actions').hidden = true;
  const keepOnTeam = async (r) => {
    const resp = await fetch(`/api/teams/${encodeURIComponent(teamId)}/repos/${r.id}/keep`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    if (!resp.ok) {
      message.textContent = `Could not keep it: the server answered ${resp.status}.`;
      message.hidden = false;
    }
    await load();
  };
  fill(rows, t.repos.length ? t.repos.map((r) => el('tr', { 'data-id': r.id },
    el('td', {}, el('a', { href: `/r/${r.id}` }, r.displayUrl || r.url), r.private ? el('span', { class: 'private-badge' }, 'private') : null,
      r.frozen ? el('span', { class: 'frozen-badge', title: "over the team's plan: not refreshed on its account until kept or upgraded" }, 'frozen') : null,
      r.frozen && t.role === 'owner' ? el('button', { type: 'button', class: 'keep', onclick: () => keepOnTeam(r) }, 'Keep') : null),
    el('td', {}, el('span', { class: `state-badge ${r.state}` }, r.state)),
    el('td', {}, String(r.commits)),
    el('td', {}, r.diskBytes ? size(r.diskBytes) : '—'),
    el('td', {}, r.lastFetchAt ? relativeTime(r.lastFetchAt) : '—'),
    el('td', {}, '—'),
    el('td', {}, r.lastAccessAt ? relativeTime(r.lastAccessAt) : '—'))) : el('tr', {}, el('td', { colspan: '8', class: 'muted' }, 'No repositories you can read on this team\'s list.')));
  document.body.dataset.ready = 'true';
}

async function load() {
  if (teamId && who.user) return loadTeam();
  document.getElementById('team').hidden = true;
  const all = await adminList();
  const admin = all !== null;
  const mine = !admin && who.user !== null;
  const repos = admin ? all : mine ? await trackedList() : await fetchRecent();
  if (admin) note.textContent = 'Every repository on this server (you are signed in as admin).';
  else if (mine) {
    note.textContent = `The repositories you track: ${who.user.usage.repos} of the ${who.user.usage.limit} your ${who.user.plan} plan allows. Add more from the home page.`;
  } else if (who.enabled) note.textContent = 'Repositories viewed in this browser. Sign in to track repositories, private ones too.';
  else note.textContent = 'Repositories viewed in this browser. Deleting repositories needs an admin sign-in.';
  document.querySelector('th.actions').hidden = !(admin || mine);
  const action = (r) => {
    if (admin) return el('td', {}, el('button', { type: 'button', class: 'danger', onclick: () => remove(r, true) }, 'Delete'));
    if (mine) {
      return el('td', {},
        r.frozen ? el('button', { type: 'button', class: 'keep', onclick: () => keep(r) }, 'Keep') : null,
        el('button', { type: 'button', class: 'untrack', onclick: () => remove(r, false) }, 'Stop tracking'));
    }
    return null;
  };
  fill(rows, repos.length ? repos.map((r) => el('tr', { 'data-id': r.id },
    el('td', {}, el('a', { href: `/r/${r.id}` }, r.displayUrl || r.url),
      r.private ? el('span', { class: 'private-badge' }, 'private') : null),
    el('td', {}, el('span', { class: `state-badge ${r.state}`, title: r.error || '' }, r.state),
      r.frozen ? el('span', { class: 'frozen-badge', title: 'over your plan: not refreshed until you keep it or upgrade' }, 'frozen') : null),
    el('td', {}, String(r.commits)),
    el('td', {}, r.diskBytes ? size(r.diskBytes) : '—'),
    el('td', {}, r.lastFetchAt ? relativeTime(r.lastFetchAt) : '—'),
    el('td', {}, r.frozen ? el('span', { class: 'muted nowrap' }, 'not refreshed: over your plan') : updates(r.updates)),
    el('td', {}, r.lastAccessAt ? relativeTime(r.lastAccessAt) : '—'),
    action(r),
  )) : el('tr', {}, el('td', { colspan: '8', class: 'muted' }, 'No repositories yet.')));
  if (mine) billing(who.user);
  document.body.dataset.ready = 'true';
  document.body.dataset.admin = String(admin);
}

async function remove(r, admin) {
  const name = r.displayUrl || r.url;
  const question = admin
    ? `Delete ${name}? Its clone is removed; pasting the URL again clones it anew.`
    : `Stop tracking ${name}? It no longer counts towards your plan.`;
  if (!confirm(question)) return;
  const resp = await fetch(`/api/repos/${r.id}`, { method: 'DELETE' });
  if (!resp.ok) {
    message.textContent = `Could not ${admin ? 'delete' : 'stop tracking'}: the server answered ${resp.status}.`;
    message.hidden = false;
  }
  if (!admin) who = await currentUser();
  await load();
}

(async () => {
  who = await currentUser();
  accountMenu(document.getElementById('top'), who);
  if (who.user) {
    await scopes().catch(() => {});
    await offerJoin();
  }
  await load();
})().catch((e) => { message.textContent = e.message; message.hidden = false; });
