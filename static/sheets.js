// Sheets over the graph: the repository overview (the repository name opens it) and, in local
// mode, the lifecycle of the work (the work-tree chip opens it): files changed, files staged,
// commits not pushed, and the upstream's commits not merged.

import { api, ApiError, el, fill, relativeTime, fullDate, refName } from './api.js';
import { renderDiff } from './panel.js';

const $ = (id) => document.getElementById(id);
const short = (h) => h.slice(0, 8);

/** The sheet element, its title and body; `onCommit(hash)` shows a commit in the graph. */
export class Sheets {
  constructor(onCommit) {
    this.onCommit = onCommit;
    this.box = $('sheet');
    this.title = $('sheet-title');
    this.body = $('sheet-body');
    $('sheet-close').addEventListener('click', () => this.close());
    this.opener = null;
  }

  get isOpen() { return !this.box.hidden; }

  close() {
    this.box.hidden = true;
    this.kind = null;
    if (this.opener) this.opener.focus();
  }

  show(kind, title, opener) {
    this.kind = kind;
    this.opener = opener || null;
    this.title.textContent = title;
    this.box.hidden = false;
    fill(this.body, el('p', { class: 'muted' }, 'Loading…'));
    $('sheet-close').focus();
  }

  /** A commit as a button that shows it in the graph. */
  commitButton(c) {
    return el('button', {
      type: 'button', class: 'sheet-commit', title: `${c.hash}\n${c.author}, ${fullDate(c.time)}`,
      onclick: () => { this.close(); this.onCommit(c.hash); },
    }, el('code', {}, short(c.hash)), ' ', c.summary, ' ', el('span', { class: 'muted' }, relativeTime(c.time)));
  }

  /** The repository: name, description, HEAD, upstream, counts, recent tags, remotes. */
  async openOverview(opener) {
    this.show('overview', 'Repository', opener);
    try {
      const o = await api('/overview');
      if (this.kind !== 'overview') return;
      const head = o.head && o.head.branch
        ? el('span', {}, 'on branch ', el('code', {}, refName(o.head.branch)))
        : o.head && o.head.commit ? el('span', {}, 'detached at ', el('code', {}, short(o.head.commit))) : 'no commits yet';
      const n = (x) => Number(x || 0).toLocaleString('en-US');
      fill(this.body,
        el('h3', { class: 'sheet-name' }, o.name),
        o.description ? el('p', {}, o.description) : null,
        el('p', {}, 'HEAD is ', head),
        o.upstream ? el('p', {}, 'Upstream ', upstreamLine(o.upstream)) : null,
        el('p', { class: 'sheet-counts' },
          `${n(o.counts.commits)} commits · ${n(o.counts.branches)} branches · ${n(o.counts.tags)} tags`,
          o.counts.remoteBranches ? ` · ${n(o.counts.remoteBranches)} remote branches` : null),
        o.recentTags.length ? [el('h4', {}, 'Recent tags'), el('ul', { class: 'sheet-list' }, o.recentTags.map((t) => el('li', {},
          el('button', { type: 'button', class: 'sheet-commit', title: fullDate(t.time), onclick: () => { this.close(); this.onCommit(t.commit); } },
            el('code', {}, t.name), ' ', el('span', { class: 'muted' }, relativeTime(t.time))))))] : null,
        o.remotes && o.remotes.length ? [el('h4', {}, 'Remotes'), el('ul', { class: 'sheet-list' }, o.remotes.map((r) => el('li', {},
          el('code', {}, r.name), ' ', el('span', { class: 'sheet-url' }, r.url))))] : null);
    } catch (e) {
      fill(this.body, el('p', { class: 'error' }, e instanceof ApiError ? e.message : String(e)));
    }
  }

  /** Local mode: the work in four zones, from the work tree to the upstream. */
  async openLifecycle(opener) {
    this.show('lifecycle', 'Your work', opener);
    try {
      const l = await api('/lifecycle');
      if (this.kind !== 'lifecycle') return;
      const entries = (l.status && l.status.entries) || [];
      const working = entries.filter((e) => e.worktree !== ' ');
      const staged = entries.filter((e) => e.index !== ' ' && e.index !== '?');
      const diffBox = el('div', { class: 'sheet-diff' });
      const file = (e, where) => el('li', {}, el('button', {
        type: 'button', class: 'sheet-file',
        onclick: () => this.showDiff(where, e.path, diffBox),
      }, statusBadge(where === 'index' ? e.index : e.worktree), ' ', e.path));
      const up = l.upstream;
      const zone = (title, items, empty) => el('section', { class: 'zone' },
        el('h4', {}, `${title} (${items.length})`),
        items.length ? el('ul', { class: 'sheet-list' }, items) : el('p', { class: 'muted' }, empty));
      const more = (n, shown) => (n > shown ? el('li', { class: 'muted' }, `and ${n - shown} more`) : null);
      fill(this.body,
        el('p', {}, l.branch ? el('code', {}, l.branch) : 'detached HEAD', ' · ', upstreamLine(up)),
        el('div', { class: 'zones' },
          zone('Working tree', working.map((e) => file(e, 'worktree')), 'No changes.'),
          zone('Staged', staged.map((e) => file(e, 'index')), 'Nothing staged.'),
          zone('Not pushed', [...l.ahead.map((c) => el('li', {}, this.commitButton(c))), more(up.aheadCount, l.ahead.length)].filter(Boolean),
            up.status === 'unavailable' ? 'No upstream to compare with.' : 'Everything is pushed.'),
          zone(up.branchName ? `On ${up.branchName}, not here` : 'Upstream', [...l.behind.map((c) => el('li', {}, this.commitButton(c))), more(up.behindCount, l.behind.length)].filter(Boolean),
            up.status === 'unavailable' ? (up.reason || 'No upstream.') : 'Nothing to merge.')),
        diffBox);
    } catch (e) {
      fill(this.body, el('p', { class: 'error' }, e instanceof ApiError ? e.message : String(e)));
    }
  }

  /** A file's diff: the work tree against the index, or the index against HEAD. */
  async showDiff(where, path, box) {
    const route = where === 'index' ? '/index/diff' : '/working-tree/diff';
    fill(box, el('p', { class: 'muted' }, `Loading ${path}…`));
    try {
      const d = await api(`${route}?path=${encodeURIComponent(path)}`);
      fill(box, el('h4', {}, where === 'index' ? `Staged: ${path}` : `Working tree: ${path}`),
        renderDiff({ ...d, path }, null, () => this.showDiff(where, path, box)));
      box.scrollIntoView({ block: 'nearest' });
    } catch (e) {
      fill(box, el('p', { class: 'error' }, e instanceof ApiError ? e.message : String(e)));
    }
  }
}

/** A porcelain status letter as the commit panel's badges show changes (untracked as added). */
function statusBadge(letter) {
  const kind = letter === '?' ? 'A' : letter;
  const title = { '?': 'untracked', A: 'added', M: 'modified', D: 'deleted', R: 'renamed', T: 'type changed', U: 'conflicted' }[letter] || letter;
  return el('span', { class: `st ${kind}`, title }, letter);
}

/** "origin/main: 2 ahead, 3 behind", or why there is nothing to compare with. */
export function upstreamLine(up) {
  if (!up) return '';
  if (up.status === 'unavailable') return up.reason || 'no upstream';
  const parts = [];
  if (up.aheadCount) parts.push(`${up.aheadCount} ahead`);
  if (up.behindCount) parts.push(`${up.behindCount} behind`);
  return `${up.branchName}: ${parts.length ? parts.join(', ') : 'up to date'}`;
}
