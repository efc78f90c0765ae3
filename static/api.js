// Talking to the server: the repository id comes from the page URL (/r/:id).

export const repoId = decodeURIComponent(location.pathname.split('/')[2] || 'local');
const base = `/api/repos/${encodeURIComponent(repoId)}`;

/** An API error with the server's code ("unknown_repo", "repo_unavailable", ...). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The view (filters) every row-answering request carries, as URL parameters. */
export const view = { params: new URLSearchParams() };

/** GET a JSON answer from the repository's API; throws ApiError on a non-2xx answer. Routes that
 * answer rows get the current view's parameters. */
export async function api(path, { signal } = {}) {
  let resp;
  let url = base + path;
  if (/^\/(graph|search|commit\/[0-9a-f]|repository)/.test(path) && !path.startsWith('/commit/diff')) {
    const extra = view.params.toString();
    if (extra) url += (url.includes('?') ? '&' : '?') + extra;
  }
  // 202 "hydrating": the file contents this needs are still being fetched by the server; ask
  // again after the time it names (for at most ten minutes), saying so meanwhile.
  for (let waited = 0; ; ) {
    try {
      resp = await fetch(url, { signal, headers: { Accept: 'application/json' } });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    // 429: this browser spent its work budget (a cold highlighter on a slow machine can): wait
    // as long as the server says, a few times, as a well-behaved client does.
    if (resp.status === 429 && waited < 15000) {
      const secs = Math.min(Math.max(Number(resp.headers.get('retry-after')) || 1, 1), 5);
      waited += secs * 1000;
      await sleep(secs * 1000, signal);
      continue;
    }
    if (resp.status !== 202) break;
    let body = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    if (body.state !== 'hydrating') return body;
    const ms = Math.min(Math.max(body.retryAfterMs || 2000, 250), 10000);
    if (waited + ms > 600000) throw new ApiError(202, 'hydrating', body.error || 'File contents are still being fetched.');
    waited += ms;
    hydrating(+1);
    try { await sleep(ms, signal); } finally { hydrating(-1); }
  }
  if (!resp.ok) {
    let body = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, body.code || 'http_' + resp.status, body.error || resp.statusText);
  }
  return resp.json();
}

/** Requests waiting for file contents, and who is told when their number changes. */
let waitingForContents = 0;
const contentListeners = new Set();
function hydrating(d) {
  waitingForContents += d;
  for (const f of contentListeners) f(waitingForContents);
}
/** Calls `f(n)` whenever the number of requests waiting for file contents changes. */
export function onContentsWait(f) { contentListeners.add(f); }

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
  });
}

/** The WebSocket URL of the repository. */
/** Where an image blob's bytes are (PNG, JPEG, GIF, WebP or ICO; the server refuses others). */
export const rawUrl = (blob) => `${base}/blob/${blob}/raw`;

/** A size in bytes as people read it. */
export function byteSize(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`;
  return n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function socketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${base}/ws`;
}

/** "3 minutes ago", "2 years ago". */
export function relativeTime(seconds, now = Date.now() / 1000) {
  const d = Math.max(0, now - seconds);
  const units = [[31536000, 'year'], [2592000, 'month'], [604800, 'week'], [86400, 'day'],
    [3600, 'hour'], [60, 'minute']];
  for (const [s, name] of units) {
    if (d >= s) {
      const n = Math.floor(d / s);
      return `${n} ${name}${n > 1 ? 's' : ''} ago`;
    }
  }
  return 'just now';
}

/** A date for people: "2024-05-01 12:30". */
export function fullDate(seconds) {
  const dt = new Date(seconds * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${dt.getFullYear()}-${p(dt.getMonth() + 1)}-${p(dt.getDate())} ${p(dt.getHours())}:${p(dt.getMinutes())}`;
}

/** Builds an element: el('div', {class: 'x', onclick: f}, child, 'text'). */
/** A ref's short name: `refs/heads/main` is `main`, `refs/remotes/origin/x` is `origin/x`. */
export const refName = (n) => n.replace(/^refs\/(heads|tags|remotes)\//, '');

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces `box`'s children, skipping null and false (conditional parts). */
export function fill(box, ...children) {
  box.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
}

/** Text with server-side highlight spans ([start, end, class] in UTF-16 units) as nodes. */
export function highlighted(text, spans, change) {
  if (change) return highlightedChange(text, spans || [], change);
  if (!spans || !spans.length) return [text];
  const out = [];
  let at = 0;
  for (const [a, b, cls] of spans) {
    if (a > at) out.push(text.slice(at, a));
    const s = document.createElement('span');
    s.className = `hl-${cls}`;
    s.textContent = text.slice(a, b);
    out.push(s);
    at = b;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/** Like `highlighted`, with the changed part `[a, b)` of a changed line also in a `chg` span. */
function highlightedChange(text, spans, [a, b]) {
  const cuts = new Set([0, text.length, a, b]);
  for (const [s, e] of spans) { cuts.add(s); cuts.add(e); }
  const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((x, y) => x - y);
  const out = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const [x, y] = [points[i], points[i + 1]];
    if (x === y) continue;
    const syntax = spans.find(([s, e]) => s <= x && y <= e);
    const classes = [syntax ? `hl-${syntax[2]}` : null, x >= a && y <= b ? 'chg' : null].filter(Boolean);
    if (!classes.length) { out.push(text.slice(x, y)); continue; }
    const s = document.createElement('span');
    s.className = classes.join(' ');
    s.textContent = text.slice(x, y);
    out.push(s);
  }
  return out;
}

/** The changed parts of a removed line and the added line replacing it, by words: what is left
 * between their common leading and trailing words, as [start, end) in each (UTF-16 units). */
export function changedWords(before, after) {
  const words = (s) => s.match(/\w+|\s+|[^\w\s]/g) || [];
  const a = words(before);
  const b = words(after);
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let q = 0;
  while (q < a.length - p && q < b.length - p && a[a.length - 1 - q] === b[b.length - 1 - q]) q++;
  const len = (ws) => ws.reduce((n, w) => n + w.length, 0);
  const at = len(a.slice(0, p));
  return {
    before: [at, before.length - len(a.slice(a.length - q))],
    after: [at, after.length - len(b.slice(b.length - q))],
  };
}

// ---- recently viewed repositories (hosted mode), kept in this browser only ----
const RECENT_KEY = 'gitvista.recent';
const RECENT_MAX = 12;

/** Ids of the repositories this browser viewed, most recent first. */
export function recentRepos() {
  try {
    const ids = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(ids) ? ids.filter((i) => typeof i === 'string' && /^[a-z0-9-]{1,64}$/.test(i)).slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

/** Puts `id` first in this browser's recently viewed list. */
export function rememberRepo(id) {
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify([id, ...recentRepos().filter((i) => i !== id)].slice(0, RECENT_MAX)));
  } catch { /* private mode: nothing is remembered */ }
}

/** The repositories this browser viewed, as the server describes them (unknown ones left out). */
export async function fetchRecent() {
  const ids = recentRepos();
  if (!ids.length) return [];
  const resp = await fetch(`/api/repos?ids=${ids.map(encodeURIComponent).join(',')}`);
  if (!resp.ok) throw new Error(`The server answered ${resp.status}.`);
  return (await resp.json()).repos;
}

/** The page's theme: follows the system unless the user picked one with the button `toggle`.
 * `onChange` runs after every change (the graph re-reads its colours). */
export function keepTheme(toggle, onChange = () => {}) {
  const system = matchMedia('(prefers-color-scheme: dark)');
  const apply = () => {
    const chosen = localStorage.getItem('gitvista-theme');
    const dark = chosen ? chosen === 'dark' : system.matches;
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    onChange();
  };
  apply();
  system.addEventListener('change', apply);
  toggle.addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme === 'dark';
    localStorage.setItem('gitvista-theme', dark ? 'light' : 'dark');
    apply();
  });
}
