// The details panel: a commit (message, people, parents and children, refs, changed files with
// their diffs) and a file browser (the commit's tree, a file's content and its blame).

import { api, byteSize, changedWords, el, fill, fullDate, highlighted, rawUrl, refName, relativeTime, ApiError } from './api.js';

const short = (h) => h.slice(0, 8);

/** The message after its subject paragraph (git's subject is every line up to the first blank
 * one), trimmed; empty when there is none. */
function messageBody(message) {
  const text = message.replace(/\r\n/g, '\n').trim();
  const blank = text.search(/\n[ \t]*\n/);
  return blank < 0 ? '' : text.slice(blank).trim();
}

/** Where a `#123` (or `owner/repo#123`, GitLab's `!123`) points on `forge` ({kind, url} from
 * the server, built from checked segments), or null. */
function forgeLink(forge, ns, n, mergeRequest) {
  if (!forge) return null;
  const host = new URL(forge.url).origin;
  const base = ns ? `${host}/${ns}` : forge.url;
  switch (forge.kind) {
    case 'github': return `${base}/issues/${n}`;
    case 'gitlab': return `${base}/-/${mergeRequest ? 'merge_requests' : 'issues'}/${n}`;
    case 'bitbucket': return mergeRequest ? null : `${base}/issues/${n}`;
    default: return null;
  }
}

/** Text with http(s) URLs as links that open elsewhere (never `javascript:` or the like), and
 * issue and pull request references as links to the repository's forge when it has one. */
function linkified(text, forge, marks = []) {
  const out = [];
  const plain = (s) => marked(s, marks);
  let at = 0;
  const re = /\bhttps?:\/\/[^\s<>"')\]]+|(?<![\w/#])((?:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)?)#(\d+)\b|(?<![\w!])!(\d+)\b/g;
  for (const m of text.matchAll(re)) {
    let shown = m[0];
    let href;
    if (m[0].startsWith('http')) {
      shown = m[0].replace(/[.,;:!?]+$/, '');
      href = shown;
    } else if (m[3]) {
      href = forge && forge.kind === 'gitlab' ? forgeLink(forge, null, m[3], true) : null;
    } else {
      href = forgeLink(forge, m[1] || null, m[2], false);
    }
    if (!href) continue;
    if (m.index > at) out.push(plain(text.slice(at, m.index)));
    out.push(el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, shown));
    at = m.index + shown.length;
  }
  if (at < text.length) out.push(plain(text.slice(at)));
  return out;
}

/** Text with each occurrence of `marks` (lowercased search terms) in a <mark>. */
function marked(text, marks) {
  const lower = text.toLowerCase();
  const spans = [];
  for (const term of marks) {
    if (!term) continue;
    for (let i = lower.indexOf(term); i >= 0; i = lower.indexOf(term, i + term.length)) spans.push([i, i + term.length]);
  }
  if (!spans.length) return [text];
  spans.sort((a, b) => a[0] - b[0]);
  const out = [];
  let at = 0;
  for (const [a, b] of spans) {
    if (a < at) continue;
    if (a > at) out.push(text.slice(at, a));
    out.push(el('mark', {}, text.slice(a, b)));
    at = b;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

export class Panel {
  constructor({ jumpTo, showEverything, forge, marks }) {
    this.jumpTo = jumpTo;
    this.showEverything = showEverything;
    this.forge = forge || (() => null);
    this.marks = marks || (() => []);
    this.root = document.getElementById('panel');
    this.commitBox = document.getElementById('panel-commit');
    this.filesBox = document.getElementById('panel-files');
    this.tabCommit = document.getElementById('tab-commit');
    this.tabFiles = document.getElementById('tab-files');
    this.tabCommit.addEventListener('click', () => this.tab('commit'));
    this.tabFiles.addEventListener('click', () => this.tab('files'));
    document.getElementById('panel-close').addEventListener('click', () => this.close());
    this.wideBtn = document.getElementById('panel-wide');
    this.wideBtn.addEventListener('click', () => this.setWide(!this.wide));
    this.bindResize(document.getElementById('panel-resize'));
    this.hash = null;
    this.loaded = { files: null };
    /** Where the panel is, as the URL keeps it: its tab, the file open in the Files tab and
     * whether it shows its blame. */
    this.place = { tab: 'commit', file: null, blame: false };
    this.onClose = () => {};
    /** Called when the user opens a file or its blame ({ push: true }) or switches tabs. */
    this.onNavigate = () => {};
  }

  get isOpen() { return !this.root.hidden; }

  get wide() { return this.root.classList.contains('wide'); }

  /** Full width over the graph, for long diffs; Esc returns. */
  setWide(on) {
    this.root.classList.toggle('wide', on);
    this.wideBtn.setAttribute('aria-pressed', String(on));
  }

  /** The panel's left edge drags (or arrow keys move) its width, remembered in this browser. */
  bindResize(handle) {
    const KEY = 'gitvista.panelWidth';
    const set = (w) => {
      const max = Math.max(320, window.innerWidth - 240);
      const width = Math.round(Math.min(max, Math.max(320, w)));
      document.documentElement.style.setProperty('--panel-w', `${width}px`);
      try { localStorage.setItem(KEY, String(width)); } catch { /* private mode */ }
    };
    let saved = 0;
    try { saved = Number(localStorage.getItem(KEY)); } catch { /* private mode */ }
    if (saved) set(saved);
    handle.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      handle.setPointerCapture(e.pointerId);
      const move = (ev) => set(window.innerWidth - ev.clientX);
      const up = () => { handle.removeEventListener('pointermove', move); handle.removeEventListener('pointerup', up); };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
    });
    handle.addEventListener('keydown', (e) => {
      const w = this.root.getBoundingClientRect().width;
      if (e.key === 'ArrowLeft') set(w + 40);
      else if (e.key === 'ArrowRight') set(w - 40);
      else return;
      e.preventDefault();
    });
  }

  close() {
    this.setWide(false);
    this.root.hidden = true;
    this.hash = null;
    this.onClose();
  }

  /** Shows the Commit or Files tab (loading the tree the first time); resolves once shown. */
  tab(which, { user = true } = {}) {
    const files = which === 'files';
    this.tabCommit.setAttribute('aria-selected', String(!files));
    this.tabFiles.setAttribute('aria-selected', String(files));
    this.commitBox.hidden = files;
    this.filesBox.hidden = !files;
    const changed = this.place.tab !== which;
    this.place = { tab: which, file: files ? this.place.file : null, blame: files && this.place.blame };
    if (user && changed) this.onNavigate({ push: false });
    if (files && this.loaded.files !== this.hash) return this.showTree();
    return Promise.resolve();
  }

  /** Puts the panel where `place` says (Back and Forward, a permalink): its tab, the file shown
   * in the Files tab and its blame. */
  async restore(place) {
    if (place.tab !== this.place.tab || this.loaded.files !== this.hash) await this.tab(place.tab, { user: false });
    if (place.tab !== 'files') return;
    if (place.file !== this.place.file || place.blame !== this.place.blame || (place.line || null) !== (this.place.line || null)) {
      if (place.file) await this.openPath(place.file, { blame: place.blame, line: place.line });
      else if (this.fileView) { fill(this.fileView); this.place = { ...this.place, file: null, blame: false }; }
    }
  }

  /** Opens the file at `path` of the panel's commit in the Files tab (its blame with `blame`). */
  async openPath(path, { blame = false, line = null } = {}) {
    const hash = this.hash;
    try {
      let tree = await api(`/tree/${hash}`);
      const parts = path.split('/');
      for (const [i, name] of parts.entries()) {
        const e = tree.entries.find((x) => x.name === name);
        if (!e) throw new Error(`${path} is not in this commit`);
        if (i === parts.length - 1) {
          if (e.type === 'tree') throw new Error(`${path} is a folder`);
          if (this.hash !== hash) return;
          await this.showFile(path, e.hash, this.fileView, { blame, user: false, line });
          return;
        }
        tree = await api(`/tree/${e.hash}`);
      }
    } catch (e) {
      if (this.hash === hash && this.fileView) fill(this.fileView, el('p', { class: 'error' }, e.message));
    }
  }

  async open(hash) {
    this.root.hidden = false;
    if (hash === this.hash) return;
    this.hash = hash;
    this.compare = null;
    this.loaded.files = null;
    this.tab('commit', { user: false });
    fill(this.commitBox, el('p', { class: 'muted' }, 'Loading…'));
    try {
      const [c, d] = await Promise.all([api(`/commit/${hash}`), api(`/commit/diff/${hash}`)]);
      if (this.hash !== hash) return;
      this.renderCommit(c, d);
    } catch (e) {
      if (this.hash === hash) fill(this.commitBox, el('p', { class: 'error' }, e.message));
    }
  }

  commitLink(h) {
    return el('button', { type: 'button', class: 'link', title: h, onclick: () => this.jumpTo(h) }, short(h));
  }

  renderCommit(c, d) {
    // The mailmap's name, with what the commit records on hover when the two differ.
    const person = (p) => [el('span', { title: p.recorded ? `recorded as ${p.recorded.name} <${p.recorded.email}>` : null }, `${p.name} <${p.email}> `),
      el('span', { class: 'muted date' }, `${fullDate(p.time)} (${relativeTime(p.time)})`)];
    const copy = el('button', { type: 'button', class: 'copy-hash', title: 'Copy the full hash' }, 'copy');
    copy.addEventListener('click', () => {
      const done = () => { copy.textContent = 'copied'; setTimeout(() => { copy.textContent = 'copy'; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(c.hash).then(done, () => { copy.textContent = 'select it'; });
    });
    const meta = el('dl', { class: 'meta' },
      el('dt', {}, 'commit'), el('dd', { class: 'hash' }, c.hash, copy),
      el('dt', {}, 'author'), el('dd', {}, person(c.author)),
      c.committer.name !== c.author.name || c.committer.time !== c.author.time
        ? [el('dt', {}, 'committer'), el('dd', {}, person(c.committer))] : null,
      el('dt', {}, c.parents.length > 1 ? 'parents' : 'parent'),
      el('dd', {}, c.parents.length ? c.parents.map((p) => [this.commitLink(p), ' ']) : el('span', { class: 'muted' }, 'none (root commit)')),
      el('dt', {}, 'children'),
      el('dd', {}, c.children.length ? c.children.map((p) => [this.commitLink(p), ' ']) : el('span', { class: 'muted' }, 'none')),
      c.refs.length ? [el('dt', {}, 'refs'), el('dd', {}, c.refs.map((r) => el('span', { class: `badge ${r.kind}` }, refName(r.name))))] : null,
    );
    const files = el('ul', { class: 'files', 'aria-label': 'Changed files' });
    for (const f of d.files) {
      const holder = el('div');
      const btn = el('button', {
        type: 'button', class: 'file', 'aria-expanded': 'false',
        onclick: () => this.toggleDiff(btn, holder, c.hash, f),
      },
      el('span', { class: `st ${f.status}`, title: f.status === 'R' ? `renamed, ${f.similarity}% similar` : { A: 'added', M: 'modified', D: 'deleted', T: 'type changed' }[f.status] || f.status }, f.status),
      f.status === 'R' && f.similarity < 100 ? el('span', { class: 'muted similarity', title: 'similarity, as git diff -M scores it' }, `${f.similarity}%`) : null,
      el('span', { class: 'path', title: f.status === 'R' ? `${f.oldPath} → ${f.newPath}` : f.path }, f.status === 'R' ? renamePath(f.oldPath, f.newPath) : f.path),
      f.binary ? el('span', { class: 'muted' }, 'binary') : null,
      f.additions != null && !f.binary ? [el('span', { class: 'num-add' }, `+${f.additions}`), el('span', { class: 'num-del' }, `−${f.deletions}`)] : null);
      files.append(el('li', {}, btn, holder));
    }
    // Why a commit has no row: only hidden refs reach it, or nothing does.
    const outside = c.row == null
      ? el('p', { class: 'outside' },
        c.reachable ? 'Not on any branch shown in this view. ' : 'Not reachable from any ref, HEAD or stash: it has no row in the graph.',
        c.reachable ? el('button', { type: 'button', class: 'link', onclick: () => this.showEverything(c.hash) }, 'Show every ref') : null)
      : null;
    const body = messageBody(c.message);
    fill(this.commitBox,
      el('h2', {}, linkified(c.summary || '(no message)', this.forge(), this.marks())),
      outside,
      body ? el('pre', { class: 'message' }, linkified(body, this.forge(), this.marks())) : null,
      meta,
      el('h3', {}, `${d.files.length} changed file${d.files.length === 1 ? '' : 's'}`, d.parent ? el('span', { class: 'muted' }, ` against ${short(d.parent)}`) : ''),
      d.files.length ? files : el('p', { class: 'muted' }, 'No changes against the first parent.'),
      d.truncated ? el('p', { class: 'muted' }, 'The list was cut at its limit.') : null,
    );
  }

  async toggleDiff(btn, holder, hash, f, context = 3) {
    if (btn.getAttribute('aria-expanded') === 'true' && context === 3 && holder.childElementCount) {
      btn.setAttribute('aria-expanded', 'false');
      fill(holder);
      return;
    }
    btn.setAttribute('aria-expanded', 'true');
    fill(holder, el('p', { class: 'muted' }, 'Loading diff…'));
    try {
      const d = await api(`/commit/diff/${hash}/file?path=${encodeURIComponent(f.path)}&context=${context}`);
      // The lines between hunks (and above and below them) open 20 at a time, per gap, read
      // from the new version of the file.
      const gaps = new Gaps(d, f.newHash ? () => api(`/blob/${f.newHash}?path=${encodeURIComponent(f.path)}`) : null);
      const redraw = () => fill(holder, renderDiff(gaps.view(), null, redraw, gaps.controls(redraw)));
      redraw();
    } catch (e) {
      fill(holder, el('p', { class: 'error' }, e.message));
    }
  }

  async showTree() {
    const hash = this.hash;
    this.loaded.files = hash;
    fill(this.filesBox, el('p', { class: 'muted' }, 'Loading files…'));
    try {
      const t = await api(`/tree/${hash}`);
      if (this.hash !== hash) return;
      const view = el('div', { class: 'file-view' });
      this.fileView = view;
      const tree = this.treeList(t, '', view);
      tree.addEventListener('keydown', (e) => treeKeys(tree, e));
      fill(this.filesBox, tree, view);
      tree.querySelector('button')?.focus();
    } catch (e) {
      fill(this.filesBox, el('p', { class: 'error' }, e.message));
    }
  }

  treeList(tree, prefix, view) {
    const ul = el('ul', { class: 'tree', role: 'tree' });
    // Folders first, each group in the tree's order.
    const entries = [...tree.entries.filter((e) => e.type === 'tree'), ...tree.entries.filter((e) => e.type !== 'tree')];
    for (const e of entries) {
      const path = prefix + e.name;
      const li = el('li', { role: 'treeitem' });
      if (e.type === 'tree') {
        let open = false;
        const btn = el('button', { type: 'button', 'aria-expanded': 'false' }, '▸ ', e.name + '/');
        btn.addEventListener('click', async () => {
          open = !open;
          btn.setAttribute('aria-expanded', String(open));
          btn.firstChild.textContent = open ? '▾ ' : '▸ ';
          if (!open) { li.querySelector('ul')?.remove(); return; }
          try {
            const sub = await api(`/tree/${e.hash}`);
            li.append(this.treeList(sub, path + '/', view));
          } catch (err) { li.append(el('p', { class: 'error' }, err.message)); }
        });
        li.append(btn);
      } else if (e.type === 'blob' || e.type === 'symlink' || e.type === 'executable') {
        li.append(el('button', { type: 'button', onclick: () => this.showFile(path, e.hash, view) }, '  ', e.name));
      } else {
        li.append(el('span', { class: 'muted' }, `  ${e.name} (${e.type})`));
      }
      ul.append(li);
    }
    return ul;
  }

  /** Shows file `path` (blob `blobHash`) of the panel's commit in `view`, with its blame when
   * `blame`; `user`: opened by the user (a browser history entry). */
  async showFile(path, blobHash, view, { blame = false, user = true, line = null } = {}) {
    const commit = this.hash;
    fill(view, el('p', { class: 'muted' }, `Loading ${path}…`));
    try {
      const b = await api(`/blob/${blobHash}?path=${encodeURIComponent(path)}`);
      if (this.hash !== commit) return;
      const blameBtn = el('button', { type: 'button' }, 'Blame');
      const head = el('div', { class: 'diff-actions' }, el('strong', {}, path), blameBtn);
      this.place = { tab: 'files', file: path, blame: false };
      if (user) this.onNavigate({ push: true });
      if (b.binary) {
        fill(view, head, el('p', { class: 'muted' }, `Binary file, ${byteSize(b.size)}.`),
          IMAGE.test(path) ? imagePreview(blobHash, byteSize(b.size)) : null);
        return;
      }
      const lines = b.content.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      const table = el('table', { class: 'blob' }, lines.map((l, i) => el('tr', {}, el('td', { class: 'ln' }, i + 1), el('td', {}, highlighted(l, b.spans && b.spans[i])))));
      fill(view, head, b.truncated ? el('p', { class: 'muted' }, 'Showing the first part of a large file.') : null, el('div', { class: 'diff-wrap' }, table));
      // The file shows where the user is looking, not below an expanded tree.
      view.scrollIntoView({ block: 'start' });
      blameBtn.addEventListener('click', () => this.showBlame(commit, path, b, head, view, blameBtn, true));
      if (blame) await this.showBlame(commit, path, b, head, view, blameBtn, false, line);
    } catch (e) {
      fill(view, el('p', { class: 'error' }, e.message));
    }
  }

  /** The blame of `path` at `commit` in `view`: consecutive lines of one commit are one group,
   * with its hash, author, date and subject on the group's first line. */
  async showBlame(commit, path, b, head, view, blameBtn, user, line = null) {
    blameBtn.disabled = true;
    // Plain `git blame` by default, looking through the revisions the repository lists to
    // ignore (as GitHub does); both are toggles, remembered in this browser.
    const mode = blameMode();
    const q = `path=${encodeURIComponent(path)}&firstParent=${mode.firstParent ? 1 : 0}&ignoreRevs=${mode.ignoreRevs ? 1 : 0}`;
    try {
      const bl = await api(`/tree/blame/${commit}?${q}`);
      if (this.hash !== commit) return;
      const toggle = (key, label, title) => {
        const box = el('input', { type: 'checkbox' });
        box.checked = mode[key];
        box.addEventListener('change', () => {
          setBlameMode({ ...blameMode(), [key]: box.checked });
          this.showBlame(commit, path, b, head, view, blameBtn, false);
        });
        return el('label', { class: 'blame-toggle', title }, box, ' ', label);
      };
      head.querySelectorAll('.blame-toggle').forEach((t) => t.remove());
      head.append(toggle('firstParent', 'First parent', 'Follow first parents only (git blame --first-parent): merges take the lines their branches wrote'));
      if (bl.ignoreRevs) {
        head.append(toggle('ignoreRevs', `Ignore revisions (${bl.ignoreRevs.count})`,
          `Look through the ${bl.ignoreRevs.count} revision${bl.ignoreRevs.count === 1 ? '' : 's'} listed in ${bl.ignoreRevs.source} (git blame --ignore-revs-file)`));
      }
      const rows = bl.lines.map((l, i) => {
        const first = i === 0 || bl.lines[i - 1].commit !== l.commit;
        const about = bl.commits && bl.commits[l.commit];
        // Following a line's commit remembers the line: Back returns to it, scrolled as it was.
        const follow = el('button', {
          type: 'button', class: 'link', title: l.commit,
          onclick: () => { this.place = { ...this.place, line: l.line }; this.onNavigate({ push: false }); this.jumpTo(l.commit); },
        }, short(l.commit));
        const who = first
          ? el('td', { class: 'who' }, follow,
            about ? [' ', el('span', { class: 'who-author' }, about.author), ' ', el('span', { class: 'muted' }, relativeTime(about.time)),
              el('div', { class: 'who-summary', title: about.summary }, about.summary)] : null)
          : el('td', { class: 'who' });
        const mark = l.unblamable ? el('span', { class: 'blame-mark', title: 'Changed by an ignored revision and matched nothing before it' }, '*')
          : l.ignored ? el('span', { class: 'blame-mark', title: 'Passed through an ignored revision' }, '?') : null;
        return el('tr', { class: [first ? 'group-start' : '', line === l.line ? 'blame-target' : ''].join(' ').trim() || null },
          who,
          el('td', { class: 'ln' }, mark, l.line),
          el('td', {}, highlighted(l.text, b.spans && b.spans[l.line - 1])));
      });
      fill(view, head, bl.partial ? el('p', { class: 'muted' }, 'Blame stopped at its limit; older lines stay with the oldest commits reached.') : null, el('div', { class: 'diff-wrap' }, el('table', { class: 'blob' }, rows)));
      this.place = { tab: 'files', file: path, blame: true, line };
      if (user) this.onNavigate({ push: true });
      if (line) view.querySelector('tr.blame-target')?.scrollIntoView({ block: 'center' });
    } catch (e) {
      view.append(el('p', { class: 'error' }, e instanceof ApiError ? e.message : String(e)));
    }
  }
}

/** How many lines each reveal of a gap shows. */
const GAP_STEP = 20;

/** The unchanged lines a diff leaves out between its hunks, opened on request: gap 0 is above
 * the first hunk (opened upward, from the hunk), gap i between hunks i-1 and i and the last gap
 * below the last hunk (opened downward). */
class Gaps {
  constructor(d, loadNew) {
    this.d = d;
    this.loadNew = loadNew;
    this.shown = new Map();
    this.file = null;
  }

  /** The first and next new-side line of hunk `h` (a hunk adding nothing sits after its start). */
  static span(h, side) {
    const start = side === 'new' ? h.newStart : h.oldStart;
    const len = side === 'new' ? h.newLen : h.oldLen;
    return len ? [start, start + len] : [start + 1, start + 1];
  }

  /** Lines in gap `i`: [first new line, next new line, old minus new line numbers]. */
  range(i) {
    const hs = this.d.hunks;
    if (!hs.length) return [1, 1, 0];
    if (i === 0) {
      const [first] = Gaps.span(hs[0], 'new');
      return [1, first, Gaps.span(hs[0], 'old')[0] - first];
    }
    const [, next] = Gaps.span(hs[i - 1], 'new');
    const offset = Gaps.span(hs[i - 1], 'old')[1] - next;
    const end = i < hs.length ? Gaps.span(hs[i], 'new')[0] : (this.total ?? next);
    return [next, end, offset];
  }

  hidden(i) {
    if (!this.loadNew || (i === this.d.hunks.length && this.total == null)) {
      // Below the last hunk: unknown until the file is read; offered while it may have lines.
      return i === this.d.hunks.length && this.loadNew && this.total == null ? Infinity : 0;
    }
    const [a, b] = this.range(i);
    return Math.max(0, b - a - (this.shown.get(i) || 0));
  }

  async reveal(i) {
    if (!this.file) {
      this.file = await this.loadNew();
      const lines = this.file.content.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      this.lines = lines;
      this.total = lines.length + 1;
    }
    this.shown.set(i, Math.min((this.shown.get(i) || 0) + GAP_STEP, Math.max(0, this.range(i)[1] - this.range(i)[0])));
  }

  /** The diff with the opened lines added to the hunks as context. */
  view() {
    if (!this.lines) return this.d;
    const hunks = this.d.hunks.map((h) => ({ ...h, lines: [...h.lines] }));
    const line = (n, offset) => ({ kind: 'context', oldLine: n + offset, newLine: n, text: this.lines[n - 1] ?? '', spans: this.file.spans && this.file.spans[n - 1] });
    for (let i = 0; i <= hunks.length; i++) {
      const k = this.shown.get(i) || 0;
      if (!k) continue;
      const [a, b, offset] = this.range(i);
      if (i === 0) {
        const extra = [];
        for (let n = b - k; n < b; n++) extra.push(line(n, offset));
        hunks[0].lines.unshift(...extra);
      } else {
        for (let n = a; n < a + k; n++) hunks[i - 1].lines.push(line(n, offset));
      }
    }
    return { ...this.d, hunks };
  }

  /** renderDiff's gap rows: how many lines gap `i` hides, a button that opens 20, and why the
   * last opening failed. */
  controls(redraw) {
    const gaps = this;
    return {
      get error() { return gaps.error; },
      hidden: (i) => this.hidden(i),
      open: async (i) => {
        try {
          await this.reveal(i);
        } catch (e) {
          this.error = e.message || String(e);
        }
        redraw();
      },
    };
  }
}

/** A rename as `git diff --stat` writes it: the common directories outside braces,
 * `src/{old => new}/x.rs` (git's pprint_rename). */
export function renamePath(a, b) {
  let pfx = 0;
  for (let i = 0; i < a.length && i < b.length && a[i] === b[i]; i++) if (a[i] === '/') pfx = i + 1;
  // A common suffix starts with a slash; with a common prefix (which ends in one) the scan may
  // reach back to that slash.
  let sfx = 0;
  const adjust = pfx ? 1 : 0;
  for (let i = a.length - 1, j = b.length - 1; i >= pfx - adjust && j >= pfx - adjust && a[i] === b[j]; i--, j--) {
    if (a[i] === '/') sfx = a.length - i;
  }
  const aMid = a.slice(pfx, Math.max(pfx, a.length - sfx));
  const bMid = b.slice(pfx, Math.max(pfx, b.length - sfx));
  if (!pfx && !sfx) return `${aMid} => ${bMid}`;
  return `${a.slice(0, pfx)}{${aMid} => ${bMid}}${a.slice(a.length - sfx)}`;
}

/** The blame's toggles, remembered in this browser. */
function blameMode() {
  try {
    const m = JSON.parse(localStorage.getItem('gitvista.blame') || '{}');
    return { firstParent: m.firstParent === true, ignoreRevs: m.ignoreRevs !== false };
  } catch {
    return { firstParent: false, ignoreRevs: true };
  }
}

function setBlameMode(m) {
  try { localStorage.setItem('gitvista.blame', JSON.stringify(m)); } catch { /* private mode */ }
}

/** Arrow keys in the file tree: up/down move, right opens a folder, left closes it or goes to
 * the parent folder. */
function treeKeys(tree, e) {
  const buttons = [...tree.querySelectorAll('button')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  const current = buttons[i];
  const open = current.getAttribute('aria-expanded');
  switch (e.key) {
    case 'ArrowDown': buttons[Math.min(buttons.length - 1, i + 1)].focus(); break;
    case 'ArrowUp': buttons[Math.max(0, i - 1)].focus(); break;
    case 'Home': buttons[0].focus(); break;
    case 'End': buttons[buttons.length - 1].focus(); break;
    case 'ArrowRight': if (open === 'false') current.click(); break;
    case 'ArrowLeft':
      if (open === 'true') current.click();
      else current.closest('ul')?.closest('li')?.querySelector(':scope > button')?.focus();
      break;
    default: return;
  }
  e.preventDefault();
  e.stopPropagation();
}

/** A unified diff as a table with old and new line numbers. */
/** How diffs are shown: 'unified' or 'split' (side by side), remembered in this browser. */
function diffLayout() {
  try { return localStorage.getItem('gitvista.diffLayout') === 'split' ? 'split' : 'unified'; } catch { return 'unified'; }
}

/** Each line of a hunk with the changed words of a removed line and the added line replacing
 * it (the n-th removed line of a run pairs with the n-th added line after it). */
function pairedLines(h) {
  const lines = h.lines.map((l) => ({ ...l }));
  for (let i = 0; i < lines.length;) {
    if (lines[i].kind !== 'removed') { i++; continue; }
    let r = i;
    while (r < lines.length && lines[r].kind === 'removed') r++;
    let a = r;
    while (a < lines.length && lines[a].kind === 'added') a++;
    for (let k = 0; k < Math.min(r - i, a - r); k++) {
      const [old, neu] = [lines[i + k], lines[r + k]];
      const w = changedWords(old.text, neu.text);
      // A line rewritten whole is not worth marking word by word.
      if (w.before[1] - w.before[0] < old.text.length || w.after[1] - w.after[0] < neu.text.length) {
        old.change = w.before;
        neu.change = w.after;
      }
      old.pair = neu;
      neu.pair = old;
    }
    i = a;
  }
  return lines;
}

/** File names whose blobs the page shows as pictures (the server checks the bytes). */
const IMAGE = /\.(png|jpe?g|gif|webp|ico)$/i;

/** A picture of an image blob, captioned with `label` and, once loaded, its size in pixels. */
export function imagePreview(blob, label) {
  const caption = el('figcaption', { class: 'muted' }, label);
  const img = el('img', { src: rawUrl(blob), alt: label });
  img.addEventListener('load', () => { caption.textContent = `${label} \u00b7 ${img.naturalWidth} \u00d7 ${img.naturalHeight} px`; });
  img.addEventListener('error', () => { img.remove(); caption.textContent = `${label} \u00b7 no preview`; });
  return el('figure', { class: 'image-side' }, img, caption);
}

/** A binary file's change: its sizes and, for an image, each side's picture. */
function binaryChange(d) {
  const words = d.oldBlob && d.newBlob ? `Binary file changed: ${byteSize(d.oldSize)} \u2192 ${byteSize(d.newSize)}.`
    : d.newBlob ? `Binary file added: ${byteSize(d.newSize)}.`
      : d.oldBlob ? `Binary file deleted: ${byteSize(d.oldSize)}.` : 'Binary file changed.';
  const sides = [['before', d.oldBlob, d.oldSize], ['after', d.newBlob, d.newSize]].filter(([, blob]) => blob);
  return el('div', { class: 'binary-change' },
    el('p', { class: 'muted' }, words),
    IMAGE.test(d.path || '') && sides.length
      ? el('div', { class: 'image-sides' }, sides.map(([label, blob, n]) => imagePreview(blob, `${label} \u00b7 ${byteSize(n)}`)))
      : null);
}

export function renderDiff(d, more, onLayout, gaps = null) {
  if (d.binary) return binaryChange(d);
  if (d.tooLarge) return el('p', { class: 'muted' }, 'This file is too large to diff here.');
  if (!d.hunks.length) return el('p', { class: 'muted' }, 'No line changes (mode or rename only).');
  const layout = diffLayout();
  const code = (l, sign) => el('td', { class: 'code' }, sign, highlighted(l.text, l.spans, l.change));
  const rows = [];
  const span = layout === 'unified' ? 3 : 4;
  const gapRow = (i) => {
    const n = gaps ? gaps.hidden(i) : 0;
    if (gaps && gaps.error && i === 0) rows.push(el('tr', { class: 'gap' }, el('td', { colspan: span, class: 'error' }, gaps.error)));
    if (!n) return;
    const label = n === Infinity ? `Show ${GAP_STEP} more lines` : `Show ${Math.min(GAP_STEP, n)} of ${n} hidden line${n === 1 ? '' : 's'}`;
    rows.push(el('tr', { class: 'gap' }, el('td', { colspan: span },
      el('button', { type: 'button', class: 'link gap-open', onclick: () => gaps.open(i) }, i === 0 ? `\u2191 ${label}` : `\u2193 ${label}`))));
  };
  for (const [hi, h] of d.hunks.entries()) {
    gapRow(hi);
    const lines = pairedLines(h);
    if (layout === 'unified') {
      rows.push(el('tr', { class: 'hunk' }, el('td', { class: 'ln' }), el('td', { class: 'ln' }), el('td', { class: 'code' }, h.header)));
      for (const l of lines) {
        const sign = l.kind === 'added' ? '+' : l.kind === 'removed' ? '-' : ' ';
        rows.push(el('tr', { class: l.kind },
          el('td', { class: 'ln' }, l.oldLine ?? ''),
          el('td', { class: 'ln' }, l.newLine ?? ''),
          code(l, sign)));
      }
      continue;
    }
    // Side by side: context on both sides, removed lines left, added lines right, paired.
    rows.push(el('tr', { class: 'hunk' }, el('td', { class: 'ln' }), el('td', { class: 'code', colspan: 3 }, h.header)));
    const cell = (l, side) => (l
      ? [el('td', { class: 'ln' }, side === 'old' ? l.oldLine : l.newLine), el('td', { class: `code ${l.kind}` }, highlighted(l.text, l.spans, l.change))]
      : [el('td', { class: 'ln' }), el('td', { class: 'code empty' })]);
    for (let i = 0; i < lines.length;) {
      const l = lines[i];
      if (l.kind === 'context') {
        rows.push(el('tr', {}, cell(l, 'old'), cell(l, 'new')));
        i++;
        continue;
      }
      let r = i;
      while (r < lines.length && lines[r].kind === 'removed') r++;
      let a = r;
      while (a < lines.length && lines[a].kind === 'added') a++;
      for (let k = 0; k < Math.max(r - i, a - r); k++) {
        rows.push(el('tr', { class: 'pair' }, cell(i + k < r ? lines[i + k] : null, 'old'), cell(r + k < a ? lines[r + k] : null, 'new')));
      }
      i = Math.max(a, i + 1);
    }
  }
  gapRow(d.hunks.length);
  const toggle = onLayout ? el('button', {
    type: 'button',
    class: 'diff-layout',
    onclick: () => {
      try { localStorage.setItem('gitvista.diffLayout', layout === 'split' ? 'unified' : 'split'); } catch { /* private mode */ }
      onLayout();
    },
  }, layout === 'split' ? 'Unified' : 'Side by side') : null;
  // Side by side: two fixed line-number columns and two halves sharing the rest, code wrapped,
  // so both sides fit any panel.
  const cols = layout === 'split'
    ? el('colgroup', {}, el('col', { class: 'ln' }), el('col'), el('col', { class: 'ln' }), el('col'))
    : null;
  return el('div', { class: 'diff-wrap' },
    el('table', { class: `diff ${layout}`, 'aria-label': `Diff of ${d.path}` }, cols, rows),
    el('div', { class: 'diff-actions' }, toggle, more ? el('button', { type: 'button', onclick: more }, 'Show more context') : null));
}
