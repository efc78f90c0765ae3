// The graph page: wires the row cache, the canvas view, the live connection, the details panel,
// search, permalinks, the keyboard and the theme.

import { api, ApiError, repoId, el, keepTheme, refName, rememberRepo, onContentsWait, view as viewParams } from './api.js';
import { RowStore } from './rows.js';
import { GraphView } from './graph.js';
import { Live } from './live.js';
import { accountMenu, currentUser, resumeExpiredSession } from './account.js';
import { Panel } from './panel.js';
import { Sheets } from './sheets.js';
import { showCompare } from './compare.js';
import { waitForClone, pushedStatus } from './clone_wait.js';

const $ = (id) => document.getElementById(id);

// ---- theme: follows the system unless the user picked one ----
keepTheme($('theme'), () => { if (window.view) window.view.readColors(); });

const state = $('state');
function showState(title, detail) {
  state.replaceChildren(el('div', {}, el('strong', {}, title), detail || ''));
  state.hidden = false;
}

const store = new RowStore(() => { view.dirty = true; view.fixSelection(); });
const view = new GraphView($('graph'), $('minimap'), store, $('rows-a11y'));
window.view = view; // for tests and the console

// ---- selection, panel, URL ----
const panel = new Panel({ jumpTo, showEverything, forge: () => summary && summary.forge, marks: () => view.marks.text });
const sheets = new Sheets((hash) => jumpTo(hash));
view.onCompare = (a, b) => {
  showCompare(panel, a, b);
  const p = new URLSearchParams(location.search);
  p.set('compare', `${a}...${b}`);
  history.pushState(null, '', `${location.pathname}?${p}`);
};
$('insights-link').href = `/r/${encodeURIComponent(repoId)}/analytics`;
$('repo-name').addEventListener('click', (e) => sheets.openOverview(e.currentTarget));
// The work-tree chip (local mode) opens the lifecycle; hosted mode's fetch state opens nothing.
$('wt-status').addEventListener('click', (e) => { if (!e.currentTarget.dataset.hosted) sheets.openLifecycle(e.currentTarget); });
const params = new URLSearchParams(location.search);

view.fixSelection = () => {
  // After rows load, the selected row's hash becomes known.
  if (view.selected != null && !view.selectedHash) {
    const r = store.row(view.selected);
    if (r) { view.selectedHash = r.hash; syncUrl(); }
  }
};
view.onSelect = (r, row) => {
  if (row) syncUrl();
  if (panel.isOpen && row) panel.open(row.hash);
};
view.onOpen = (r, row) => { if (row) panel.open(row.hash); };
panel.onClose = () => $('graph').focus();
// Opening a file or its blame is a history entry: Back returns to the commit or the file.
panel.onNavigate = ({ push }) => syncUrl({ push });

/** The panel's place (tab, file, blame) the URL `p` names. */
function placeIn(p) {
  return { tab: p.get('tab') === 'files' ? 'files' : 'commit', file: p.get('file') || null, blame: p.get('blame') === '1', line: Number(p.get('line')) || null };
}

// ---- a row's menu (right click) ----
const rowMenu = el('div', { id: 'row-menu', class: 'row-menu', role: 'menu', hidden: true });
document.body.append(rowMenu);
function closeRowMenu() { rowMenu.hidden = true; }
/** Where a commit is shown on the repository's forge, if it has one. */
function forgeCommitUrl(hash) {
  const f = summary && summary.forge;
  if (!f) return null;
  return { github: `${f.url}/commit/${hash}`, gitlab: `${f.url}/-/commit/${hash}`, bitbucket: `${f.url}/commits/${hash}` }[f.kind] || null;
}
async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    flash(`Copied the ${what}`);
  } catch {
    flash(`Could not copy the ${what}: ${text}`, null, { error: true });
  }
}
view.onContextMenu = (r, row, x, y) => {
  const permalink = () => {
    const p = new URLSearchParams(viewParams.params);
    p.set('commit', row.hash);
    return `${location.origin}${location.pathname}?${p}`;
  };
  const item = (label, action) => el('button', { type: 'button', role: 'menuitem', onclick: () => { closeRowMenu(); action(); } }, label);
  const forgeUrl = forgeCommitUrl(row.hash);
  const ref = row.refs.find((x) => x.kind === 'branch') || row.refs.find((x) => x.kind === 'remote' || x.kind === 'tag');
  rowMenu.replaceChildren(...[
    item('Show details', () => { view.select(r, { open: true, scroll: false }); }),
    item('Copy hash', () => copy(row.hash, 'hash')),
    item('Copy permalink', () => copy(permalink(), 'permalink')),
    ref ? item(`Show only ${refName(ref.name)}`, () => { onlyRef = ref.name; containsHash = ''; queueView(); }) : null,
    item('Show only branches containing this commit', () => { containsHash = row.hash; onlyRef = ''; queueView(); }),
    forgeUrl ? el('a', { role: 'menuitem', href: forgeUrl, target: '_blank', rel: 'noopener noreferrer', onclick: closeRowMenu }, `Open on ${summary.forge.kind === 'github' ? 'GitHub' : summary.forge.kind === 'gitlab' ? 'GitLab' : 'Bitbucket'}`) : null,
  // (replaceChildren writes a null as the text "null")
  ].filter(Boolean));
  rowMenu.hidden = false;
  const w = rowMenu.offsetWidth;
  const h = rowMenu.offsetHeight;
  rowMenu.style.left = `${Math.min(x, innerWidth - w - 4)}px`;
  rowMenu.style.top = `${Math.min(y, innerHeight - h - 4)}px`;
  rowMenu.querySelector('[role="menuitem"]').focus();
};
document.addEventListener('pointerdown', (e) => { if (!rowMenu.hidden && !rowMenu.contains(e.target)) closeRowMenu(); });

// ---- view filters, kept in the URL ----
const VIEW_KEYS = ['hide', 'show', 'hideGlob', 'firstParent', 'noMerges', 'only', 'match', 'contains', 'since'];
/** `only=`: one ref and its history (set from a row's menu, cleared in the View menu). */
let onlyRef = '';
/** `contains=`: only the branches containing a commit (set from a row's menu, cleared in the
 * View menu). */
let containsHash = '';
/** `match=`: only the commits this search matches, each drawn to its nearest matching
 * ancestors (the "only matches" switch beside the search box; it follows the search). */
let matchQuery = '';
// A switch marked data-default="on" is on in the default view (pull requests, notes and remote
// HEADs are hidden): the URL names only what differs, `hide=` for switches turned on and `show=`
// for default ones turned off.
const hideSwitches = () => [...document.querySelectorAll('#view-menu [data-hide]')];
function readViewControls() {
  const p = new URLSearchParams();
  const hide = hideSwitches().filter((c) => c.checked && !c.dataset.default).map((c) => c.dataset.hide);
  const show = hideSwitches().filter((c) => !c.checked && c.dataset.default).map((c) => c.dataset.hide);
  if (hide.length) p.set('hide', hide.join(','));
  if (show.length) p.set('show', show.join(','));
  const glob = $('opt-glob').value.trim();
  if (glob) p.set('hideGlob', glob);
  if ($('opt-first-parent').checked) p.set('firstParent', '1');
  if ($('opt-no-merges').checked) p.set('noMerges', '1');
  if (onlyRef) p.set('only', onlyRef);
  if (containsHash) p.set('contains', containsHash);
  if ($('since').value) p.set('since', $('since').value);
  if (matchQuery) p.set('match', matchQuery);
  return p;
}
function writeViewControls(p) {
  const hide = (p.get('hide') || '').split(',');
  const show = (p.get('show') || '').split(',');
  for (const c of hideSwitches()) {
    c.checked = c.dataset.default ? !show.includes(c.dataset.hide) : hide.includes(c.dataset.hide);
  }
  $('opt-glob').value = p.get('hideGlob') || '';
  $('opt-first-parent').checked = p.get('firstParent') === '1';
  $('opt-no-merges').checked = p.get('noMerges') === '1';
  onlyRef = p.get('only') || '';
  containsHash = p.get('contains') || '';
  $('since').value = p.get('since') || '';
  $('only-row').hidden = !onlyRef && !containsHash;
  $('only-name').textContent = onlyRef ? refName(onlyRef) : `branches containing ${containsHash.slice(0, 8)}`;
  matchQuery = p.get('match') || '';
  $('only-matches').setAttribute('aria-pressed', String(!!matchQuery));
  $('view-menu').dataset.active = String([...p.keys()].length > 0);
}
{
  const p = new URLSearchParams();
  for (const k of VIEW_KEYS) if (params.get(k)) p.set(k, params.get(k));
  viewParams.params = p;
  writeViewControls(p);
}
async function changeView() {
  viewParams.params = readViewControls();
  writeViewControls(viewParams.params);
  syncUrl({ push: true });
  await applyChange(null);
}
for (const input of document.querySelectorAll('#view-menu input[type="checkbox"]')) input.addEventListener('change', () => queueView());
$('opt-glob').addEventListener('change', () => queueView());
$('since').addEventListener('change', () => queueView());
// A phone's search box is narrow: a placeholder that fits.
if (matchMedia('(max-width: 500px)').matches) $('search').placeholder = 'Search';
$('only-clear').addEventListener('click', () => { onlyRef = ''; containsHash = ''; queueView(); });
$('only-matches').addEventListener('click', () => {
  const q = $('search').value.trim();
  matchQuery = matchQuery || !q ? '' : q;
  queueView();
});
function queueView() { changeChain = changeChain.then(changeView).catch((e) => console.warn(e)); }

/** Searches running (their selection moves replace the history entry they pushed). */
let searching = 0;
/** Back or Forward is being applied: the URL already says what is being restored. */
let restoring = false;

/** Writes the view, the selected commit and the search into the URL. Opening another commit's
 * details, submitting a search or changing the view adds a history entry (Back returns to the
 * previous one); moving the selection with the details closed, or typing, replaces it. */
function syncUrl({ push = false } = {}) {
  if (restoring) return;
  const p = new URLSearchParams(location.search);
  const before = new URLSearchParams(location.search);
  for (const k of VIEW_KEYS) {
    if (viewParams.params.get(k)) p.set(k, viewParams.params.get(k)); else p.delete(k);
  }
  if (view.selectedHash) p.set('commit', view.selectedHash); else p.delete('commit');
  if (!panel.compare || !panel.isOpen) p.delete('compare');
  // The panel's tab, file and blame, while it shows the selected commit.
  const place = panel.isOpen && panel.hash === view.selectedHash ? panel.place : placeIn(new URLSearchParams());
  if (place.tab === 'files') p.set('tab', 'files'); else p.delete('tab');
  if (place.file) p.set('file', place.file); else p.delete('file');
  if (place.blame) p.set('blame', '1'); else p.delete('blame');
  if (place.blame && place.line) p.set('line', String(place.line)); else p.delete('line');
  const q = $('search').value.trim();
  if (q) p.set('q', q); else p.delete('q');
  const url = `${location.pathname}${p.toString() ? '?' + p : ''}`;
  if (url === location.pathname + location.search) return;
  const otherCommit = panel.isOpen && p.get('commit') !== before.get('commit') && before.get('commit') != null;
  if (push || (otherCommit && !searching)) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// Back and Forward: the URL says what to show.
window.addEventListener('popstate', () => {
  changeChain = changeChain.then(async () => {
    restoring = true;
    try {
      await restoreFromUrl();
    } finally {
      restoring = false;
    }
  }).catch((e) => console.warn(e));
});

async function restoreFromUrl() {
  const p = new URLSearchParams(location.search);
  const vp = new URLSearchParams();
  for (const k of VIEW_KEYS) if (p.get(k)) vp.set(k, p.get(k));
  if (vp.toString() !== viewParams.params.toString()) {
    writeViewControls(vp);
    viewParams.params = vp;
    await applyChange(null);
  }
  const q = p.get('q') || '';
  // What was being typed belongs to the entry left.
  clearTimeout(typingTimer);
  if (q !== lastQuery) {
    $('search').value = q;
    await runSearch(q, { keep: true });
  }
  const c = p.get('commit');
  if (c && c !== panel.hash) await jumpTo(c);
  else if (!c && panel.isOpen) panel.close();
  if (c && panel.isOpen) await panel.restore(placeIn(p));
}

/** Centres and selects a commit by hash (fetching its row from the server). */
async function jumpTo(hash, { open = true } = {}) {
  try {
    const c = await api(`/commit/${hash}`);
    if (c.row == null) {
      // Not in this view (only hidden refs reach it, or nothing does): its details still open,
      // and say why it has no row.
      panel.open(c.hash);
      return;
    }
    view.center(c.row);
    view.selectedHash = c.hash;
    view.select(c.row, { scroll: false });
    if (open) panel.open(c.hash);
  } catch (e) {
    flash(e instanceof ApiError && e.status === 404 ? `No commit ${hash.slice(0, 12)} in this repository.` : e.message, null, { error: true });
  }
}

/** Turns every view filter off (all refs, merges, every parent), then shows `hash`. */
function showEverything(hash) {
  onlyRef = '';
  for (const c of hideSwitches()) c.checked = false;
  $('opt-no-merges').checked = false;
  $('opt-first-parent').checked = false;
  $('opt-glob').value = '';
  queueView();
  // The details are read again: "not on any branch shown" no longer holds.
  changeChain = changeChain.then(() => { panel.hash = null; return jumpTo(hash); }).catch((e) => console.warn(e));
}

/** `view.moves` when openAtHead placed the view (null until HEAD's row was known: a streamed
 * history may not hold it yet). While the reader has not moved it since (a
 * clamp on resize or on new rows is no move), a growth of the history places it at HEAD again,
 * wherever the growth moved HEAD's row, rather than at a pixel offset. */
let headMoves = null;
/** HEAD's row less the view's top row when openAtHead last placed it (after any clamp): where
 * the reader saw it, kept while following. */
let headOffset = null;
const followingHead = () => headMoves != null && view.moves === headMoves;
/** The first screen shows HEAD: when newer commits on other refs (a forge mirror's pull
 * requests, busy topic branches) push it below the first screen, the page opens scrolled to it,
 * a few rows from the top, with the newer rows above. */
async function openAtHead() {
  const head = summary && summary.head;
  if (!head || !head.commit) return;
  const ref = head.branch && summary.refs.find((r) => r.name === head.branch);
  let row = ref ? ref.row : null;
  // A branch without a row in a history still coming (streaming from its remote, or a first
  // screen of the newest commits) has not come yet: the next growth tries again (asking for
  // its commit would wait for the whole history; the summary lists only refs whose commit
  // came). Otherwise (a detached HEAD, a hidden branch) the commit says; an answer from a later
  // growth than the rows held here may name a row they do not have yet.
  if (row == null && !(head.branch && summary.streaming)) {
    try { row = (await api(`/commit/${head.commit}`)).row; } catch { return; }
    if (row != null && row >= store.total) row = null;
  }
  // Not in yet (a history still streaming from its remote): the next growth tries again.
  if (row == null) return;
  const following = followingHead();
  const onScreen = Math.floor(view.viewH / view.rowH);
  // Following: HEAD where the reader saw it, though the first placement was clamped (a first
  // batch that ends a few rows below HEAD) and the growth has room for the intended one now.
  if (following && headOffset != null) view.top = Math.max(0, (row - headOffset) * view.rowH);
  else if (row >= onScreen - 2) view.top = Math.max(0, (row - 3) * view.rowH);
  else if (following) view.top = 0;
  view.clampTop();
  headMoves = view.moves;
  headOffset = row - view.top / view.rowH;
  view.dirty = true;
}

// ---- summary and refs ----
let summary = null;
/** Reads the summary; with `keepRows` the rows on screen (and their count) stay as they are
 * until the caller resets them. */
async function loadSummary({ keepRows = false } = {}) {
  summary = await api('/repository');
  if (summary.name) {
    $('repo-name').textContent = summary.name;
    // "branch · repository · GitVista", as a tab among others says where it is.
    const h = summary.head;
    const where = h && h.branch ? refName(h.branch) : h && h.commit ? h.commit.slice(0, 8) : null;
    document.title = `${where ? `${where} \u00b7 ` : ''}${summary.name} \u00b7 GitVista`;
  }
  const history = $('history');
  history.hidden = !summary.historyIncomplete;
  // Shown from the remote while it is cloned: older commits are still arriving.
  history.textContent = summary.streaming ? 'reading history\u2026' : 'history incomplete';
  contentsState.contents = summary.contents || 'complete';
  showContents();
  showCommitGraphHint(summary.commitGraphHint);
  if (!keepRows) {
    store.total = summary.rows;
    view.clampTop();
  }
  view.refs = summary.refs.filter((r) => r.row != null).map((r) => ({ row: r.row, kind: r.kind }));
  view.head = summary.head && summary.head.commit;
  view.headBranch = summary.head && summary.head.branch;
  view.dirty = true;
  if (summary.rows === 0 && summary.commits > 0) {
    // The history has commits; this view shows none of them.
    showState(matchQuery ? 'No commit matches' : 'No commits in this view',
      matchQuery ? `Nothing in this view matches \u201c${matchQuery}\u201d. Change the search, or turn \u201conly matches\u201d off.`
        : 'The view\u2019s filters hide every commit. Open the View menu to show more.');
  } else if (summary.rows === 0) showState('No commits yet', 'This repository has no commits. Make one and it appears here.');
  else state.hidden = true;
  return summary;
}

/** Local mode, no commit-graph file: a chip in the status line says what writing one would
 * save (measured on this load); a click shows the whole sentence and copies the command. */
function showCommitGraphHint(hint) {
  const chip = $('cg-hint');
  chip.hidden = !hint;
  if (!hint) return;
  chip.textContent = `no commit-graph (${hint.speedup}\u00d7 faster with one)`;
  chip.title = `${hint.message}. Click to copy the command.`;
  chip.onclick = () => {
    if (navigator.clipboard) navigator.clipboard.writeText(hint.command).catch(() => {});
    flash(`Run in the repository: ${hint.command} (first view ${hint.firstViewMs} ms now, about ${hint.expectedMs} ms with it)`);
  };
}

// ---- notices ----
const notice = $('notice');
let noticeTimer = 0;
function flash(text, onclick, { error = false } = {}) {
  notice.textContent = text;
  notice.classList.toggle('error', error);
  notice.hidden = false;
  notice.onclick = onclick || null;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 5000);
}

// ---- live updates ----
// New commits while scrolled into history: a header chip (it covers no row) says what arrived
// until it is clicked or the view reaches the top.
const arrivals = $('arrivals');
let arrived = 0;
arrivals.addEventListener('click', () => { view.center(0); view.top = 0; view.dirty = true; });
view.onDraw = () => {
  if (!arrivals.hidden && view.top <= 0) { arrivals.hidden = true; arrived = 0; }
};

async function applyChange(delta) {
  // A view at the top follows the top, as a chat follows its newest message; one scrolled into
  // history stays anchored on the commit at its top, not on a pixel offset.
  const atTop = view.top <= 0;
  const anchor = atTop ? null : view.anchor();
  const selected = view.selectedHash;
  const followHead = followingHead() && !selected;
  await loadSummary({ keepRows: true });
  // Where the anchor and the selection are now, before the rows change: the screen goes from
  // the old rows to the new ones in one frame, never the new rows at the old offset.
  const [anchorRow, selectedRow] = await Promise.all([
    anchor ? api(`/commit/${anchor.hash}`).then((c) => c.row).catch(() => null) : null,
    selected ? api(`/commit/${selected}`).then((c) => c.row).catch(() => null) : null,
  ]);
  store.reset(summary.rows);
  view.clampTop();
  // Another view: the graph column fits its lanes at once, not after the next scroll.
  view.resetLanes();
  if (anchorRow != null) {
    view.top = anchorRow * view.rowH + anchor.offset;
    view.clampTop();
  } else if (atTop) {
    view.top = 0;
  }
  if (selectedRow != null) {
    view.selected = selectedRow;
    view.selectedHash = selected;
  } else if (selected) {
    view.selected = null;
    view.selectedHash = null;
  }
  // HEAD's commit came with this growth of a streamed history, or the view is still where
  // it opened at HEAD: HEAD's row, wherever the growth moved it.
  if ((followHead || (headMoves == null && atTop && !selected)) && !params.get('commit')) await openAtHead();
  view.dirty = true;
  if (lastQuery) runSearch(lastQuery, { keep: true });
  if (delta) {
    // Older history arriving below (a stream from the remote, a deepened clone) is not news.
    const n = delta.rewritten ? 0 : delta.added.length;
    const moved = delta.refs.find((r) => r.name.startsWith('refs/heads/') && r.change !== 'deleted');
    let text = null;
    if (n > 0 && !atTop) {
      arrived += n;
      arrivals.textContent = `\u2191 ${arrived} new commit${arrived > 1 ? 's' : ''}${moved ? ' on ' + moved.name.slice(11) : ''}`;
      arrivals.hidden = false;
    } else if (n === 0 && delta.refs.length) {
      const r = delta.refs[0];
      text = `${refName(r.name)} ${r.change}${delta.refs.length > 1 ? ` (+${delta.refs.length - 1} more)` : ''}`;
    }
    if (text) flash(text, () => { view.center(0); notice.hidden = true; });
  }
  window.changesApplied = (window.changesApplied || 0) + 1;
}

let changeChain = Promise.resolve();
/** A change whose reads failed for a while (a server busy or restarting, the network gone) is
 * read again after 1 s, doubling to 30 s: the next change may be minutes away, and the page
 * would hold a stale history until then. */
let retryDelay = 1000;
let retryTimer = 0;
function queueChange(delta) {
  changeChain = changeChain.then(() => applyChange(delta)).then(() => {
    retryDelay = 1000;
  }, (e) => {
    console.warn(e);
    if (e instanceof ApiError && e.status < 500) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => queueChange(null), retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  });
}

/** What the clone holds (`commits`, `trees`, `complete`), the hydration's percent, and how
 * many requests wait for file contents: the `contents` chip says the part that matters. */
const contentsState = { contents: 'complete', hydrating: null, waiting: 0 };
function showContents() {
  const box = $('contents');
  const { contents, hydrating, waiting } = contentsState;
  let text = null;
  if (waiting > 0) text = 'fetching file contents\u2026';
  else if (hydrating != null) text = `file contents: ${hydrating}%`;
  else if (contents === 'commits' || contents === 'trees') text = 'file contents on demand';
  box.textContent = text || '';
  box.hidden = !text;
}
onContentsWait((n) => { contentsState.waiting = n; showContents(); });

function showStatus(s) {
  const box = $('wt-status');
  if (s.state) {
    if (s.contents) {
      contentsState.contents = s.contents;
      contentsState.hydrating = s.hydrating ?? null;
      showContents();
    }
    // Hosted mode: the remote's fetch state.
    box.dataset.hosted = '1';
    box.textContent = s.error ? `fetch failed: ${s.error}`
      : s.state === 'fetching' ? 'fetching…'
      : s.state === 'moving' ? 'moving to another server…'
      : s.state === 'cloning' ? 'cloning…'
      : s.state === 'pending' ? 'waiting to clone…'
      : 'up to date';
    box.classList.toggle('error', !!s.error);
    box.hidden = false;
    return;
  }
  const parts = [];
  if (s.conflicted) parts.push(`${s.conflicted} conflicted`);
  if (s.staged) parts.push(`${s.staged} staged`);
  if (s.unstaged) parts.push(`${s.unstaged} modified`);
  if (s.untracked) parts.push(`${s.untracked} untracked`);
  box.textContent = parts.length ? parts.join(' · ') : 'working tree clean';
  box.hidden = false;
}

const conn = $('conn');
/** The version the socket's opening summary named, when it came before the page's own. */
let heardVersion = null;
const live = new Live({
  onState(s) {
    conn.className = `conn ${s}`;
    conn.textContent = s;
  },
  onMessage(msg) {
    switch (msg.type) {
      case 'delta':
        if (msg.head) { view.head = msg.head.commit; view.dirty = true; }
        queueChange(msg);
        break;
      case 'resync': queueChange(null); break;
      case 'status':
        if (msg.state === 'access_lost') {
          // The server closes the socket after this: the viewer may no longer see it.
          live.stop();
          conn.className = 'conn offline';
          conn.textContent = 'no access';
          showState('You can no longer see this repository', msg.error || '');
          break;
        }
        // A clone's progress, for the overlay while the page waits for it.
        if (msg.url) pushedStatus(msg);
        showStatus(msg);
        break;
      case 'head': view.head = msg.commit; view.dirty = true; break;
      // The history at connect: a page still reading its first summary compares it then.
      case 'summary':
        if (!summary) heardVersion = msg.version;
        else if (msg.version !== summary.version) queueChange(null);
        break;
      default: break;
    }
  },
});

// ---- search ----
let lastQuery = '';
let hitIndex = -1;
async function runSearch(q, { keep = false, push = false } = {}) {
  // Showing only matches follows the search: another search is another view.
  if (matchQuery && q !== matchQuery && !restoring) {
    matchQuery = q;
    lastQuery = q;
    // The new view searches again once laid out (an emptied box clears the marks here).
    queueView();
    if (!q) changeChain = changeChain.then(() => searchNow('', keep));
    return;
  }
  // A submitted search is one history entry, whatever it selects on the way.
  if (push) history.pushState(null, '', location.href);
  searching += 1;
  try {
    await searchNow(q, keep);
  } finally {
    searching -= 1;
  }
  syncUrl();
}

/** What a query's terms match in a row's text, lowercased, for highlighting: free text in the
 * subject and author, `author:` in the author (negated terms and other qualifiers mark nothing). */
function searchMarks(q) {
  const marks = { text: [], author: [] };
  for (const m of q.matchAll(/(-?)(?:(\w+):)?(?:"([^"]*)"|(\S+))/g)) {
    const [, neg, qual, quoted, word] = m;
    const value = (quoted ?? word ?? '').toLowerCase();
    if (neg || !value) continue;
    if (!qual) marks.text.push(value);
    else if (qual === 'author') marks.author.push(value);
  }
  return marks;
}

async function searchNow(q, keep) {
  lastQuery = q;
  view.marks = searchMarks(q);
  const count = $('search-count');
  if (!q) {
    view.setHits([]);
    count.textContent = '';
    return;
  }
  count.textContent = '…';
  try {
    const r = await api(`/search?q=${encodeURIComponent(q)}`);
    if (q !== lastQuery) return;
    view.setHits(r.rows);
    count.textContent = `${r.total} hit${r.total === 1 ? '' : 's'}`;
    if (!keep) {
      hitIndex = -1;
      // A new search starts at its newest hit, wherever the selection was.
      if (r.rows.length) stepHit(1, { fromTop: true });
    }
  } catch (e) {
    count.textContent = '';
    flash(e.message, null, { error: true });
  }
}

function stepHit(dir, { fromTop = false } = {}) {
  const hits = view.hits;
  if (!hits.length) return;
  const cur = fromTop ? -1 : view.selected ?? -1;
  let i;
  if (dir > 0) {
    i = hits.findIndex((r) => r > cur);
    if (i < 0) i = 0;
  } else {
    i = -1;
    for (let k = hits.length - 1; k >= 0; k--) if (hits[k] < cur) { i = k; break; }
    if (i < 0) i = hits.length - 1;
  }
  hitIndex = i;
  $('search-count').textContent = `${i + 1} of ${hits.length}`;
  view.center(hits[i]);
  view.selectedHash = null;
  view.select(hits[i], { scroll: false });
}

$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  // The search typed is the one submitted: a pending as-you-type run would only repeat it (or,
  // after Back, run a search the history no longer holds).
  clearTimeout(typingTimer);
  runSearch($('search').value.trim(), { push: true });
  $('graph').focus();
});
// Terms answered from memory search as you type; message:, path: and fullpath: read objects and
// wait for Enter.
let typingTimer = 0;
$('search').addEventListener('input', () => {
  clearTimeout(typingTimer);
  const q = $('search').value.trim();
  if (/(^|\s)-?(message|path|fullpath):/.test(q) || (q.length === 1)) return;
  typingTimer = setTimeout(() => { if (q !== lastQuery) runSearch(q); }, 250);
});
$('next-hit').addEventListener('click', () => stepHit(1));
$('prev-hit').addEventListener('click', () => stepHit(-1));

document.addEventListener('click', (e) => {
  const menu = $('view-menu');
  if (menu.open && !menu.contains(e.target)) menu.open = false;
});

// ---- keyboard ----
let pendingG = false;
const help = $('help');
$('help-btn').addEventListener('click', () => { help.hidden = false; $('help-close').focus(); });
$('help-close').addEventListener('click', () => { help.hidden = true; });
document.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  if (e.key === 'Escape') {
    if (!rowMenu.hidden) { closeRowMenu(); $('graph').focus(); }
    else if ($('view-menu').open) { $('view-menu').open = false; $('view-menu').querySelector('summary').focus(); }
    else if (!help.hidden) help.hidden = true;
    else if (sheets.isOpen) sheets.close();
    else if (typing) e.target.blur();
    else if (panel.wide) panel.setWide(false);
    else if (panel.isOpen) panel.close();
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  // Enter and space belong to the focused control (a file, a tree entry, a link).
  const control = e.target instanceof Element && e.target.closest('button, a, summary, [role="tree"]');
  if (control && (e.key === 'Enter' || e.key === ' ' || e.key.startsWith('Arrow'))) return;
  const page = Math.max(1, Math.floor(view.viewH / view.rowH) - 1);
  const sel = view.selected ?? Math.floor(view.top / view.rowH);
  if (pendingG) {
    pendingG = false;
    if (e.key === 'h' && view.head) { jumpTo(view.head, { open: false }); e.preventDefault(); return; }
  }
  switch (e.key) {
    case 'j': case 'ArrowDown': view.select(Math.min(store.total - 1, sel + (view.selected == null ? 0 : 1))); break;
    case 'k': case 'ArrowUp': view.select(Math.max(0, sel - (view.selected == null ? 0 : 1))); break;
    case 'Enter': if (view.selected != null) view.select(view.selected, { open: true }); break;
    case '/': $('search').focus(); $('search').select(); break;
    case 'n': stepHit(1); break;
    case 'N': stepHit(-1); break;
    case 'g': pendingG = true; break;
    case 'PageDown': case ' ': view.scrollBy(page * view.rowH); break;
    case 'PageUp': view.scrollBy(-page * view.rowH); break;
    case 'Home': view.center(0); break;
    case 'End': view.center(store.total - 1); break;
    case '+': case '=': view.setZoom(view.zoom + 1); break;
    case '-': view.setZoom(view.zoom - 1); break;
    case '?': help.hidden = !help.hidden; break;
    default: return;
  }
  e.preventDefault();
});

// ---- start ----
if (repoId !== 'local') {
  currentUser().then((who) => accountMenu($('top'), who)).catch(() => {});
}
/** The repository's name in the header and the tab before its history is read (the summary
 * names it once the history is in). */
function showName(name) {
  if (!name || summary) return;
  $('repo-name').textContent = name;
  document.title = `${name} · GitVista`;
}
$('repo-name').textContent = '';
api('/status').then((s) => showName(s.name)).catch(() => {});
/** A large history takes a moment to read: past a blink, the page says so with a sweeping bar
 * rather than stay blank. */
const loading = setTimeout(() => {
  if (summary || !state.hidden) return;
  state.replaceChildren(el('div', { class: 'loading' },
    el('strong', {}, 'Reading history…'),
    el('div', { class: 'progress sweeping', role: 'progressbar', 'aria-label': 'Reading history' }, el('div')),
    el('p', { class: 'muted' }, 'Every commit is read once; the graph appears when they are in.')));
  state.hidden = false;
}, 300);
// The first screen is made in the queue of changes: a growth or a push that arrives meanwhile
// is applied after it, never halfway through it.
changeChain = changeChain.then(async () => {
  for (;;) {
    try {
      await loadSummary();
      clearTimeout(loading);
      if (repoId !== 'local') rememberRepo(repoId);
      break;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unknown_repo') {
        // A signed-in user whose session ended meanwhile goes through sign-in and back.
        if (repoId !== 'local' && await resumeExpiredSession()) return;
        live.stop();
        conn.className = 'conn offline';
        conn.textContent = 'not found';
        showState('Repository not found', `There is no repository "${repoId}" on this server. If it is private, sign in with an account that can read it.`);
        return;
      }
      if (e instanceof ApiError && e.status === 503) {
        const outcome = await waitForClone(state, showName);
        if (outcome === 'ready') {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (outcome === 'none') showState('The repository cannot be shown right now', e.message);
        return;
      }
      showState('Something went wrong', e.message);
      return;
    }
  }
  // The socket's summary came before this one and names another version: a change between
  // the two may have reached the socket before it was subscribed.
  if (heardVersion != null && heardVersion !== summary.version) queueChange(null);
  const c = params.get('commit');
  if (!c) await openAtHead();
  const cmp = (params.get('compare') || '').split('...');
  const comparing = cmp.length === 2 && cmp[0] && cmp[1];
  const q = params.get('q');
  if (q) {
    $('search').value = q;
    await runSearch(q, { keep: !!c });
  }
  // A comparison takes the panel; the selected commit stays selected.
  if (c) await jumpTo(c, { open: !comparing });
  if (comparing) await showCompare(panel, cmp[0], cmp[1]);
  else if (c && panel.isOpen) await panel.restore(placeIn(params));
  document.body.dataset.ready = 'true';
  $('graph').focus();
}).catch((e) => console.warn(e));
