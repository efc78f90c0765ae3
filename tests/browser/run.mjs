// Browser tests of the web UI: the real `gitvista open` on fixture repositories built with git,
// driven in headless Debian Chromium by playwright-core. Each check keeps a screenshot under
// test-artifacts/browser/. Run by scripts/test; alone: `node tests/browser/run.mjs` after
// `cargo build`.

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { parityChecks, insightsChecks, reviewChecks } from './parity.mjs';
import { streamingChecks } from './streaming.mjs';
import { tourChecks } from './tour.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.GITVISTA_BIN || path.join(root, 'target/debug/gitvista');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = path.join(root, 'test-artifacts/browser');
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });
const work = mkdtempSync(path.join(tmpdir(), 'gitvista-browser-'));

const gitEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Browser Test',
  GIT_AUTHOR_EMAIL: 'browser@example.com',
  GIT_COMMITTER_NAME: 'Browser Test',
  GIT_COMMITTER_EMAIL: 'browser@example.com',
};
const git = (dir, ...args) => execFileSync('git', args, { cwd: dir, env: gitEnv, encoding: 'utf8' }).trimEnd();

/** Builds fixture NAME under DIR; `env` adds to git's environment (GIT_DEFAULT_HASH, ...). */
function fixture(name, dir = name, env = {}) {
  const dest = path.join(work, dir);
  execFileSync('bash', [path.join(root, 'gitcore/tests/fixtures', `${name}.sh`), dest], { env: { ...gitEnv, ...env } });
  return path.join(dest, 'repo');
}

const servers = [];
/** Starts `gitvista open REPO` (or `gitvista serve` with `args`) on a free loopback port;
 * resolves to its base URL. */
function serve(repo, args = ['open', '--no-browser', '--port', '0', repo], env = {}) {
  return new Promise((resolve, reject) => {
    // Warnings and errors only, unless RUST_LOG says otherwise: a log line per request drowns the report.
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { RUST_LOG: 'warn', ...process.env, ...env } });
    servers.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error('the server did not start')), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

const results = [];
// Script errors on any page fail the check that caused them.
let pageErrors = [];
/** `node run.mjs [WORDS]` runs only the checks whose names contain WORDS (for working on one). */
const only = process.argv.slice(2).join(' ');
async function check(name, fn) {
  if (only && !name.includes(only)) return;
  const started = Date.now();
  pageErrors = [];
  try {
    await fn();
    assert.deepEqual(pageErrors, [], 'no script errors');
    results.push({ name, ok: true, ms: Date.now() - started });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: e.stack || String(e) });
    console.log(`FAIL ${name}\n${e.stack || e}`);
  }
}

let shot = 0;
async function screenshot(page, name) {
  shot++;
  await page.screenshot({ path: path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`) });
}

/** Visible rows as the page describes them: [{row, hash, text}]. */
const visibleRows = (page) => page.$$eval('#rows-a11y li', (lis) => lis.map((li) => ({
  row: Number(li.dataset.row), hash: li.dataset.hash, text: li.textContent, current: li.getAttribute('aria-current') === 'true',
})));

/** The graph column and the text beside it, measured on the canvas: its width, the subject's
 * room, lanes folded, and in rows without badges (not selected) the coloured ink right of the
 * column (`crossing`: lane lines are coloured, text is grey) and the ink inside it away from
 * every lane's line and node (`overText`: text drawn over the lanes; straight lanes assumed). */
const measureColumns = async (page) => {
  // Measured on a quiet view only: with nothing to draw (no rows arrived, no scroll, no lane
  // sliding to its column) for ten frames, the canvas shows the state read here. A CI run
  // measured a frame behind the state once (a window of rows arrived after the settle) and saw
  // text of one frame against the lanes of the next.
  for (let tries = 0; ; tries++) {
    await page.waitForFunction(() => {
      const v = window.view;
      v.quietFrames = v.dirty || v.animating ? 0 : (v.quietFrames || 0) + 1;
      return v.quietFrames >= 10;
    }, null, { polling: 'raf', timeout: 10000 });
    const m = await measureQuietColumns(page);
    if (m) return m;
    assert.ok(tries < 20, 'the view kept drawing: no quiet frame to measure');
  }
};
const measureQuietColumns = (page) => page.evaluate(() => {
  const v = window.view;
  if (v.dirty || v.animating) return null;
  const c = document.getElementById('graph');
  const ctx = c.getContext('2d');
  const ratio = c.width / c.clientWidth;
  const { hashW, dateW, authorW } = v.textColumns();
  const textEnd = v.viewW - 8 - hashW - dateW - authorW - 8;
  const centres = [...v.cols.keys()].map((l) => v.laneX(l === -1 ? null : l) * ratio);
  const reach = (Math.max(3, v.rowH * 0.22) + 1.5) * ratio;
  const sat = (d, i) => Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]);
  let crossing = 0;
  let overText = 0;
  let lanes = 0;
  let rows = 0;
  const first = Math.ceil(v.top / v.rowH);
  for (let r = first; (r + 1) * v.rowH - v.top <= v.viewH; r++) {
    const row = v.store.row(r);
    if (!row || row.refs.length || r === v.selected || v.hitSet.has(r)) continue;
    rows++;
    const y = Math.round((r * v.rowH - v.top) * ratio);
    const h = Math.round(v.rowH * ratio);
    // The row's background: the gap between the subject and the author.
    const bg = ctx.getImageData(Math.round((textEnd + 4) * ratio), y + 1, 1, 1).data;
    const x0 = Math.ceil((v.graphW + 1) * ratio);
    const text = ctx.getImageData(x0, y, Math.max(1, Math.round(textEnd * ratio) - x0), h).data;
    for (let i = 0; i < text.length; i += 4) if (sat(text, i) > 100) crossing++;
    const gw = Math.floor(v.graphW * ratio);
    const graph = ctx.getImageData(0, y, gw, h).data;
    for (let i = 0; i < graph.length; i += 4) {
      if (sat(graph, i) > 100) lanes++;
      const ink = Math.abs(graph[i] - bg[0]) + Math.abs(graph[i + 1] - bg[1]) + Math.abs(graph[i + 2] - bg[2]);
      const x = (i / 4) % gw;
      if (ink > 150 && centres.every((cx) => Math.abs(x + 0.5 - cx) > reach)) overText++;
    }
  }
  return { graphW: v.graphW, viewW: v.viewW, crossing, overText, lanes, rows, folded: v.folded, subject: textEnd - v.graphW };
});

/** Selects the row at the top of the view and, with `open`, opens its details; then measures
 * the columns once they have settled and checks what every width must keep: the graph within
 * `share` of the width, 150 px or more for the subject, no lane ink in the text, no text over
 * the lanes. Answers the measurements. */
async function checkColumns(page, { open, share, where }) {
  await page.focus('#graph');
  await page.keyboard.press('j');
  if (open) {
    await page.keyboard.press('Enter');
    await page.waitForSelector('#panel:not([hidden]) h2');
  }
  await page.waitForTimeout(800);
  const m = await measureColumns(page);
  try {
    assert.ok(m.graphW <= m.viewW * share + 1, `graph column ${m.graphW} of ${m.viewW} at ${where}`);
    assert.ok(m.subject >= 150, `the subject keeps ${m.subject} px at ${where}`);
    assert.equal(m.crossing, 0, `no lane ink in the text at ${where}`);
    assert.equal(m.overText, 0, `no text over the lanes at ${where}`);
  } catch (e) {
    // What was on screen, and where: a failure seen once in CI is read from these.
    const at = await page.evaluate(() => ({ top: window.view.top, selected: window.view.selected, total: window.view.store.total }));
    await screenshot(page, `failed-columns-${where.replace(/\W+/g, '-')}`);
    e.message += ` (measured ${JSON.stringify(m)} at ${JSON.stringify(at)})`;
    throw e;
  }
  return m;
}

async function openPage(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0, null, { timeout: 15000 });
  return page;
}

/** The y (CSS px, relative to the canvas) of row r's centre. */
const rowY = (page, r) => page.evaluate((row) => row * window.view.rowH - window.view.top + window.view.rowH / 2, r);

/** A Chromium with a fresh profile of its own (its own cookies and storage). */
const profiles = [];
function launchBrowser(viewport = { width: 1280, height: 800 }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'gitvista-chromium-'));
  profiles.push(dir);
  return chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}
const context = await launchBrowser();

context.on('page', (page) => {
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

try {
  const merges = fixture('merges');
  const base = await serve(merges);
  const url = `${base}/r/local`;
  // The default view: what `git log --all` shows, less what only pull requests and notes reach.
  const defaultView = ['--exclude=refs/pull/*', '--exclude=refs/notes/*', '--all'];
  const order = git(merges, '--no-replace-objects', 'log', ...defaultView, '--date-order', '--format=%H%x09%s').split('\n').map((l) => {
    const [hash, ...rest] = l.split('\t');
    return { hash, summary: rest.join('\t') };
  });

  await check('the graph draws every visible row, in git log order', async () => {
    const page = await openPage(context, url);
    await page.waitForFunction((n) => document.querySelectorAll('#rows-a11y li').length >= n, Math.min(order.length, 20));
    const rows = await visibleRows(page);
    assert.ok(rows.length >= Math.min(order.length, 20), `${rows.length} rows visible`);
    rows.forEach((r, i) => {
      assert.equal(r.hash, order[i].hash, `row ${i}`);
      assert.ok(r.text.startsWith(order[i].summary), `row ${i}: ${r.text}`);
    });
    // Every visible row has drawn pixels in the graph column (its node at least).
    const inked = await page.evaluate((n) => {
      const v = window.view;
      const c = document.getElementById('graph');
      const ctx = c.getContext('2d');
      const dpr = v.dpr;
      const bg = ctx.getImageData(c.width - 2, c.height - 2, 1, 1).data;
      const out = [];
      for (let r = 0; r < n; r++) {
        const y0 = Math.round((r * v.rowH - v.top) * dpr);
        const h = Math.round(v.rowH * dpr);
        const w = Math.round((16 + (v.store.width + 1) * v.laneW) * dpr);
        const d = ctx.getImageData(0, y0, w, h).data;
        let k = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 60) k++;
        out.push(k);
      }
      return out;
    }, rows.length);
    inked.forEach((k, r) => assert.ok(k > 20, `row ${r} has ${k} drawn pixels`));
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'graph');
    await page.close();
  });

  await check('clicking a commit shows its message and changed files; a file shows its diff', async () => {
    const page = await openPage(context, url);
    const target = order.findIndex((c) => c.summary === 'main 3');
    assert.ok(target >= 0);
    const y = await rowY(page, target);
    await page.click('#graph', { position: { x: 300, y } });
    await page.waitForSelector('#panel:not([hidden]) .files');
    const title = await page.textContent('#panel-commit h2');
    assert.equal(title, 'main 3');
    const files = await page.$$eval('#panel-commit .files .path', (e) => e.map((x) => x.textContent));
    const expected = git(merges, 'diff-tree', '--no-commit-id', '--name-only', '-r', order[target].hash).split('\n');
    assert.deepEqual(files, expected);
    await page.click('#panel-commit .files .file');
    await page.waitForSelector('#panel-commit table.diff');
    const added = await page.$$eval('#panel-commit table.diff tr.added td.code', (e) => e.map((x) => x.textContent));
    const removed = await page.$$eval('#panel-commit table.diff tr.removed td.code', (e) => e.map((x) => x.textContent));
    const patch = git(merges, 'diff', '--histogram', `${order[target].hash}^`, order[target].hash, '--', expected[0]).split('\n');
    assert.deepEqual(added, patch.filter((l) => l.startsWith('+') && !l.startsWith('+++')));
    assert.deepEqual(removed, patch.filter((l) => l.startsWith('-') && !l.startsWith('---')));
    assert.match(page.url(), new RegExp(`commit=${order[target].hash}`));
    await screenshot(page, 'commit-and-diff');
    await page.close();
  });

  await check('the file browser works from the keyboard; blame lines link to their commits and Back returns to the blame', async () => {
    const head = order.find((c) => c.summary === 'merge unrelated root');
    const page = await openPage(context, `${url}?commit=${head.hash}`);
    await page.waitForSelector('#panel:not([hidden]) h2');
    await page.click('#tab-files');
    await page.waitForSelector('#panel-files .tree button');
    const names = await page.$$eval('#panel-files .tree > li > button', (b) => b.map((x) => x.textContent.trim()));
    // Folders first, then files, each in git's order.
    const entries = git(merges, 'ls-tree', head.hash).split('\n').map((l) => ({ tree: l.split(' ')[1] === 'tree', name: l.split('\t')[1] }));
    assert.deepEqual(names, [...entries.filter((e) => e.tree), ...entries.filter((e) => !e.tree)].map((e) => (e.tree ? `▸ ${e.name}/` : e.name)));
    // Down to a.txt with the keyboard, open it.
    const target = names.indexOf('a.txt');
    for (let i = 0; i < target; i++) await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'a.txt');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#panel-files table.blob');
    const content = await page.$$eval('#panel-files table.blob tr td:last-child', (t) => t.map((x) => x.textContent));
    assert.deepEqual(content, git(merges, 'show', `${head.hash}:a.txt`).split('\n'));
    await page.click('#panel-files .diff-actions button');
    await page.waitForSelector('#panel-files table.blob td.who');
    // One link per group of consecutive lines from one commit, with its subject.
    const who = await page.$$eval('#panel-files table.blob td.who button', (b) => b.map((x) => x.title));
    const blame = git(merges, 'blame', '--porcelain', head.hash, '--', 'a.txt').split('\n')
      .filter((l) => /^[0-9a-f]{40} \d+ \d+/.test(l)).map((l) => l.slice(0, 40));
    assert.deepEqual(who, blame.filter((h, i) => i === 0 || blame[i - 1] !== h));
    const subjects = await page.$$eval('#panel-files table.blob .who-summary', (d) => d.map((x) => x.textContent));
    assert.deepEqual(subjects, who.map((h) => git(merges, 'log', '-1', '--format=%s', h)));
    await screenshot(page, 'browse-and-blame');
    await page.click('#panel-files table.blob td.who button');
    await page.waitForFunction((h) => window.view.selectedHash === h, blame[0]);
    // Back returns to the blame the link was followed from, Back again to the file, again to the
    // tree; Forward walks them again.
    const atBlame = () => page.waitForFunction((h) => window.view.selectedHash === h && document.querySelector('#panel-files:not([hidden]) table.blob td.who'), head.hash);
    const atFile = () => page.waitForFunction(() => document.querySelector('#panel-files:not([hidden]) table.blob') && !document.querySelector('#panel-files table.blob td.who'));
    await page.goBack();
    await atBlame();
    assert.equal(new URL(page.url()).searchParams.get('file'), 'a.txt');
    await page.goBack();
    await atFile();
    await page.goBack();
    await page.waitForFunction(() => !new URL(location.href).searchParams.get('file') && !document.querySelector('#panel-files table.blob'));
    await page.goForward();
    await atFile();
    await page.goForward();
    await atBlame();
    // The URL is a permalink to the blame.
    const blameUrl = page.url();
    const again = await openPage(context, blameUrl);
    await again.waitForSelector('#panel-files:not([hidden]) table.blob td.who');
    assert.deepEqual(await again.$$eval('#panel-files table.blob td.who button', (b) => b.map((x) => x.title)), who);
    await again.close();
    await page.close();
  });

  await check('a phone-width screen shows the graph, and the panel covers it', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 10);
    const y = await rowY(page, 2);
    await page.click('#graph', { position: { x: 200, y } });
    await page.waitForSelector('#panel:not([hidden]) h2');
    const box = await page.$eval('#panel', (p) => p.getBoundingClientRect().width);
    assert.ok(box >= 380, `panel width ${box}`);
    await screenshot(page, 'phone');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#panel', { state: 'hidden' });
    await page.close();
  });

  await check('an unknown repository says so', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/r/no-such-repo`);
    await page.waitForSelector('#state:not([hidden])');
    assert.match(await page.textContent('#state'), /Repository not found/);
    await screenshot(page, 'not-found');
    await page.close();
  });

  await check('the first screen shows HEAD when newer commits on other branches push it down', async () => {
    const busy = fixture('linear');
    git(busy, 'checkout', '-q', '-b', 'busy');
    for (let i = 0; i < 120; i++) {
      execFileSync('git', ['commit', '-q', '--allow-empty', '-m', `busy ${i}`], { cwd: busy, env: { ...gitEnv, GIT_COMMITTER_DATE: `@${1900000000 + i} +0000`, GIT_AUTHOR_DATE: `@${1900000000 + i} +0000` } });
    }
    git(busy, 'checkout', '-q', 'main');
    const head = git(busy, 'rev-parse', 'HEAD');
    const busyBase = await serve(busy);
    const page = await context.newPage();
    await page.goto(`${busyBase}/r/local`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction((h) => [...document.querySelectorAll('#rows-a11y li')].some((li) => li.dataset.hash === h), head, { timeout: 10000 });
    const rows = await visibleRows(page);
    assert.ok(rows[0].row > 0, `scrolled past the newer rows (first visible row ${rows[0].row})`);
    const at = rows.findIndex((r) => r.hash === head);
    assert.ok(at >= 0 && at <= 6, `HEAD is near the top of the screen (visible index ${at}, rows ${JSON.stringify(rows.slice(0, 6).map((r) => r.row))})`);
    await screenshot(page, 'opens-at-head');
    await page.close();
  });

  await check('a forge mirror opens on its default branch with pull requests and notes hidden', async () => {
    // 200 commits on main, then 2,000 pull requests (each a commit on a main commit, newer than
    // main's tip), test merges for the newest 300 (newer still), and notes on main's tip.
    const mirror = path.join(work, 'mirror.git');
    git(work, 'init', '-q', '--bare', '-b', 'main', mirror);
    const lines = [];
    const blob = (text) => `data ${Buffer.byteLength(text)}\n${text}\n`;
    let t = 1700000000;
    for (let i = 1; i <= 200; i++) {
      lines.push(`commit refs/heads/main\nmark :${i}\ncommitter Dev <dev@example.com> ${t += 60} +0000\n${blob(`main ${i}`)}${i > 1 ? `from :${i - 1}\n` : ''}`);
    }
    for (let n = 1; n <= 2000; n++) {
      lines.push(`commit refs/pull/${n}/head\nmark :${1000 + n}\ncommitter Contributor <c@example.com> ${t += 5} +0000\n${blob(`pull request ${n}`)}from :${1 + (n * 7) % 200}\n`);
    }
    for (let n = 1701; n <= 2000; n++) {
      lines.push(`commit refs/pull/${n}/merge\ncommitter GitHub <noreply@example.com> ${t += 5} +0000\n${blob(`Merge pull request ${n} into main`)}from :200\nmerge :${1000 + n}\n`);
    }
    execFileSync('git', ['fast-import', '--quiet'], { cwd: mirror, env: gitEnv, input: lines.join('\n') });
    execFileSync('git', ['notes', 'add', '-m', 'a note', 'main'], { cwd: mirror, env: { ...gitEnv, GIT_COMMITTER_DATE: `@${t + 100} +0000` } });
    git(mirror, 'pack-refs', '--all');
    const head = git(mirror, 'rev-parse', 'main');
    const shown = Number(git(mirror, 'rev-list', '--count', '--exclude=refs/pull/*', '--exclude=refs/notes/*', '--all'));
    const withPulls = Number(git(mirror, 'rev-list', '--count', '--exclude=refs/notes/*', '--all'));
    assert.equal(shown, 200);
    const mirrorBase = await serve(mirror);
    const page = await openPage(context, `${mirrorBase}/r/local`);
    await page.waitForFunction((h) => [...document.querySelectorAll('#rows-a11y li')].some((li) => li.dataset.hash === h), head, { timeout: 10000 });
    let rows = await visibleRows(page);
    assert.equal(rows[0].hash, head, 'main\'s tip is the first row');
    assert.ok(rows.every((r) => !/pull request|Merge pull|Notes added/.test(r.text)), `no pull request or notes rows: ${rows.slice(0, 5).map((r) => r.text)}`);
    const total = (q) => page.evaluate(async (query) => (await (await fetch(`/api/repos/local/graph?limit=1${query}`)).json()).total, q);
    assert.equal(await total(''), shown, 'the default view holds main\'s history only');
    assert.equal(new URL(page.url()).search, '', 'the default view adds nothing to the URL');
    await screenshot(page, 'mirror-default');
    // Turning pull requests on: the URL names only that difference, and the history grows.
    await page.click('#view-menu summary');
    await page.uncheck('#view-menu [data-hide="pull"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('show') === 'pull');
    await page.waitForFunction((n) => window.view.store.total === n, withPulls, { timeout: 10000 });
    assert.equal(await total('&show=pull'), withPulls);
    await page.focus('#graph');
    await page.keyboard.press('Home');
    await page.waitForFunction(() => /pull request/.test(document.querySelector('#rows-a11y li')?.textContent || ''), null, { timeout: 10000 });
    assert.equal(new URL(page.url()).searchParams.get('hide'), null);
    await screenshot(page, 'mirror-with-pulls');
    // The switch state comes back from the URL.
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isChecked('#view-menu [data-hide="pull"]'), false);
    assert.equal(await page.isChecked('#view-menu [data-hide="notes"]'), true);
    await page.waitForFunction((n) => window.view?.store?.total === n, withPulls, { timeout: 10000 });
    await page.close();
  });

  await check('without a commit-graph the status line says what one would save; with one the rows are the same', async () => {
    const repo = fixture('merges', 'merges-commit-graph');
    const hinted = await serve(repo, undefined, { GITVISTA_COMMIT_GRAPH_HINT_MS: '0' });
    let page = await openPage(context, `${hinted}/r/local`);
    const chip = page.locator('#cg-hint');
    await chip.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await chip.textContent(), /^no commit-graph \(\d+(\.\d)?\u00d7 faster with one\)$/);
    assert.match(await chip.getAttribute('title'), /git commit-graph write --reachable --changed-paths/);
    await chip.click();
    await page.waitForFunction(() => /git commit-graph write --reachable --changed-paths/.test(document.querySelector('#notice').textContent) && !document.querySelector('#notice').hidden);
    const before = await visibleRows(page);
    await screenshot(page, 'commit-graph-hint');
    await page.close();
    // With the file: the session serves the topology first, and each row reads its own author and
    // subject until the rest is read: the page is the same, without the chip.
    git(repo, 'commit-graph', 'write', '--reachable', '--changed-paths');
    const withFile = await serve(repo, undefined, { GITVISTA_COMMIT_GRAPH_HINT_MS: '0' });
    page = await openPage(context, `${withFile}/r/local`);
    const after = await visibleRows(page);
    assert.deepEqual(after.map((r) => [r.hash, r.text]), before.map((r) => [r.hash, r.text]));
    assert.ok(after.every((r) => r.text.trim().length > 0));
    assert.equal(await page.locator('#cg-hint').count(), 1);
    assert.equal(await page.locator('#cg-hint').isHidden(), true);
    await page.close();
  });

  await check('an octopus merge of 300 branches draws 64 edges and says how many more', async () => {
    const dest = path.join(work, 'many_parents');
    execFileSync('bash', [path.join(root, 'gitcore/tests/fixtures/many_parents.sh'), dest], { env: { ...gitEnv, MANY_PARENTS: '300' } });
    const mpBase = await serve(path.join(dest, 'repo'));
    const page = await openPage(context, `${mpBase}/r/local`);
    const rows = await visibleRows(page);
    const merge = rows.find((r) => r.text.startsWith('Merge 300 branches'));
    assert.ok(merge, 'the merge row is drawn');
    assert.match(merge.text, /\[\+237 more parents\]/);
    await screenshot(page, 'octopus');
    await page.close();
  });

  await check('a permalink opens with that commit selected and shown', async () => {
    const old = order[order.length - 3];
    const page = await openPage(context, `${url}?commit=${old.hash}`);
    await page.waitForSelector('#panel:not([hidden]) h2');
    assert.equal(await page.textContent('#panel-commit h2'), old.summary);
    await page.waitForFunction((h) => [...document.querySelectorAll('#rows-a11y li')].some((li) => li.dataset.hash === h && li.getAttribute('aria-current') === 'true'), old.hash);
    await screenshot(page, 'permalink');
    await page.close();
  });

  await check('a repository made under git 3.0\'s defaults (SHA-256 ids, reftable refs) shows, links and finds its 64-digit ids', async () => {
    const repo = fixture('merges', 'merges-sha256', { GIT_DEFAULT_HASH: 'sha256', GIT_DEFAULT_REF_FORMAT: 'reftable' });
    assert.equal(git(repo, 'rev-parse', '--show-object-format'), 'sha256');
    const base = await serve(repo);
    const [hash, summary] = git(repo, 'log', '-1', '--no-merges', '--skip=1', '--format=%H%x09%s').split('\t');
    assert.equal(hash.length, 64);
    // A permalink by a 12-digit abbreviation opens the commit and names it whole in the URL.
    const page = await openPage(context, `${base}/r/local?commit=${hash.slice(0, 12)}`);
    await page.waitForFunction((h) => new URL(location.href).searchParams.get('commit') === h, hash);
    assert.equal(await page.textContent('#panel-commit h2'), summary);
    const rows = await visibleRows(page);
    assert.ok(rows.length > 3 && rows.every((r) => /^[0-9a-f]{64}$/.test(r.hash)), 'every row carries its 64-digit id');
    assert.ok(rows.some((r) => r.hash === hash && r.current), 'the commit is selected');
    // Its files as git lists them, and one file's diff as git prints it.
    await page.waitForSelector('#panel:not([hidden]) .files');
    const files = await page.$$eval('#panel-commit .files .path', (e) => e.map((x) => x.textContent));
    const expected = git(repo, 'diff-tree', '--no-commit-id', '--name-only', '-r', hash).split('\n');
    assert.deepEqual(files, expected);
    await page.click('#panel-commit .files .file');
    await page.waitForSelector('#panel-commit table.diff');
    const added = await page.$$eval('#panel-commit table.diff tr.added td.code', (e) => e.map((x) => x.textContent));
    const patch = git(repo, 'diff', '--histogram', `${hash}^`, hash, '--', expected[0]).split('\n');
    assert.deepEqual(added, patch.filter((l) => l.startsWith('+') && !l.startsWith('+++')));
    // A search by a 20-digit prefix finds it alone.
    await page.fill('#search', hash.slice(0, 20));
    await page.waitForFunction(() => /of \d+/.test(document.getElementById('search-count').textContent), null, { timeout: 5000 });
    assert.match(await page.textContent('#search-count'), /^1 of 1/);
    await screenshot(page, 'sha256');
    await page.close();
  });

  await check('permalinks take abbreviations, explain commits outside the view, and the page names its repository', async () => {
    const repo = fixture('linear', 'linear-outside');
    const tree = git(repo, 'rev-parse', 'HEAD^{tree}');
    const pullOnly = git(repo, 'commit-tree', tree, '-p', 'HEAD', '-m', 'only on a pull request');
    git(repo, 'update-ref', 'refs/pull/7/head', pullOnly);
    const dangling = git(repo, 'commit-tree', tree, '-p', 'HEAD', '-m', 'reachable from nothing');
    git(repo, 'commit', '-q', '--allow-empty', '-m', 'Body test\n\nSee https://example.com/issue/9. for details\nFixes #12, not other/lib#3 or a#b');
    git(repo, 'remote', 'add', 'origin', 'git@github.com:owner/repo.git');
    const base = await serve(repo);
    const older = git(repo, 'rev-parse', 'HEAD~2');
    let page = await openPage(context, `${base}/r/local?commit=${older.slice(0, 7)}`);
    // The tab names the branch checked out, then the repository.
    assert.equal(await page.title(), 'main \u00b7 repo \u00b7 GitVista');
    assert.equal(await page.textContent('#repo-name'), 'repo');
    await page.waitForFunction((h) => new URL(location.href).searchParams.get('commit') === h, older);
    assert.equal(await page.textContent('#panel-commit h2'), git(repo, 'log', '-1', '--format=%s', older));
    // The newest commit: its body without the subject again, and its URL a link.
    await page.evaluate(() => window.view.center(0));
    await page.waitForTimeout(100);
    await page.click('#graph', { position: { x: 300, y: await rowY(page, 0) } });
    await page.waitForFunction(() => document.querySelector('#panel-commit h2')?.textContent === 'Body test');
    assert.equal((await page.textContent('#panel-commit pre.message')).trim(), 'See https://example.com/issue/9. for details\nFixes #12, not other/lib#3 or a#b');
    const links = await page.$$eval('#panel-commit pre.message a', (as) => as.map((a) => [a.textContent, a.href]));
    assert.deepEqual(links, [
      ['https://example.com/issue/9', 'https://example.com/issue/9'],
      ['#12', 'https://github.com/owner/repo/issues/12'],
      ['other/lib#3', 'https://github.com/other/lib/issues/3'],
    ]);
    assert.equal(await page.locator('#panel-commit .copy-hash').count(), 1);
    // A row's menu: details, copy hash and permalink, open on the forge; Esc closes it.
    const second = git(repo, 'rev-parse', 'HEAD~1');
    await page.click('#graph', { button: 'right', position: { x: 300, y: await rowY(page, 1) } });
    await page.waitForSelector('#row-menu:not([hidden])');
    assert.deepEqual(await page.$$eval('#row-menu [role="menuitem"]', (m) => m.map((x) => x.textContent)), ['Show details', 'Copy hash', 'Copy permalink', 'Show only branches containing this commit', 'Open on GitHub']);
    assert.equal(await page.getAttribute('#row-menu a', 'href'), `https://github.com/owner/repo/commit/${second}`);
    await screenshot(page, 'row-menu');
    await page.click('#row-menu [role="menuitem"]:nth-child(2)');
    await page.waitForFunction(() => /hash/.test(document.getElementById('notice').textContent) && !document.getElementById('notice').hidden);
    assert.equal(await page.isHidden('#row-menu'), true);
    await page.click('#graph', { button: 'right', position: { x: 300, y: await rowY(page, 2) } });
    await page.waitForSelector('#row-menu:not([hidden])');
    await page.keyboard.press('Escape');
    assert.equal(await page.isHidden('#row-menu'), true);
    await page.close();
    // Only a hidden pull request reaches it: the details say so and offer to show every ref.
    page = await openPage(context, `${base}/r/local?commit=${pullOnly}`);
    await page.waitForSelector('#panel-commit .outside');
    assert.match(await page.textContent('#panel-commit .outside'), /Not on any branch shown/);
    await screenshot(page, 'commit-outside-view');
    await page.click('#panel-commit .outside button');
    await page.waitForFunction((h) => [...document.querySelectorAll('#rows-a11y li')].some((li) => li.dataset.hash === h && li.getAttribute('aria-current') === 'true'), pullOnly, { timeout: 10000 });
    assert.equal(new URL(page.url()).searchParams.get('show')?.split(',').includes('pull'), true);
    // The details are read again: the commit is on a branch shown now.
    await page.waitForFunction(() => document.querySelector('#panel-commit h2') && !document.querySelector('#panel-commit .outside'), null, { timeout: 10000 });
    await page.close();
    page = await openPage(context, `${base}/r/local?commit=${dangling}`);
    await page.waitForSelector('#panel-commit .outside');
    assert.match(await page.textContent('#panel-commit .outside'), /Not reachable/);
    // A commit that does not exist is an error, shown as one.
    await page.goto(`${base}/r/local?commit=fffffff`);
    await page.waitForSelector('#notice.error:not([hidden])');
    assert.match(await page.textContent('#notice'), /No commit fffffff/);
    await page.close();
  });

  await check('search runs as you type, from the newest hit; the View menu closes on Esc and outside clicks', async () => {
    const page = await openPage(context, url);
    // Select an old row first: a new search still starts at the newest hit.
    await page.focus('#graph');
    await page.keyboard.press('End');
    await page.fill('#search', 'merge');
    await page.waitForFunction(() => /of \d+/.test(document.getElementById('search-count').textContent), null, { timeout: 5000 });
    const first = await page.evaluate(() => ({ selected: window.view.selected, hits: window.view.hits }));
    assert.equal(first.selected, first.hits[0], 'the newest hit is selected');
    assert.match(await page.textContent('#search-count'), /^1 of /);
    // The matched text is marked in the hit's row and in its details.
    await page.waitForTimeout(100);
    const marked = await page.evaluate(() => {
      const v = window.view;
      const c = document.getElementById('graph');
      const ratio = c.width / c.clientWidth;
      const x0 = Math.round((16 + v.lanesShown * v.laneW) * ratio);
      const y0 = Math.round((v.selected * v.rowH - v.top) * ratio);
      const data = c.getContext('2d').getImageData(x0, y0, Math.round(400 * ratio), Math.round(v.rowH * ratio)).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > 200 && data[i + 1] > 150 && data[i + 2] < 150) n++;
      return n;
    });
    assert.ok(marked > 30, `the match is marked in the row (${marked} marked pixels)`);
    await page.focus('#graph');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#panel-commit h2 mark');
    assert.equal((await page.textContent('#panel-commit h2 mark')).toLowerCase(), 'merge');
    await screenshot(page, 'search-marks');
    // Terms that read objects wait for Enter.
    await page.fill('#search', 'path:a.txt');
    await page.waitForTimeout(600);
    assert.match(await page.textContent('#search-count'), /^1 of /, 'path: waits for Enter');
    await page.click('#view-menu summary');
    assert.equal(await page.evaluate(() => document.getElementById('view-menu').open), true);
    await page.keyboard.press('Escape');
    assert.equal(await page.evaluate(() => document.getElementById('view-menu').open), false);
    await page.click('#view-menu summary');
    await page.mouse.click(400, 400);
    assert.equal(await page.evaluate(() => document.getElementById('view-menu').open), false);
    await page.close();
  });

  await check('only matches: the graph keeps the hits joined by their history, and follows the search', async () => {
    const page = await openPage(context, url);
    await page.fill('#search', 'cross');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /of \d+/.test(document.getElementById('search-count').textContent));
    await page.click('#only-matches');
    const cross = git(merges, '--no-replace-objects', 'rev-list', ...defaultView, '-i', '--grep=cross').split('\n');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('match') === 'cross');
    await page.waitForFunction((n) => window.view.store.total === n, cross.length);
    // The count comes with the summary; the rows with the window after it, then a draw.
    await page.waitForFunction((n) => document.querySelectorAll('#rows-a11y li').length === n, cross.length);
    assert.equal(await page.getAttribute('#only-matches', 'aria-pressed'), 'true');
    const rows = await visibleRows(page);
    assert.deepEqual(rows.map((r) => r.hash).sort(), [...cross].sort(), 'the rows are git\'s hits');
    // Joined: a hit has edges exactly when git finds another hit among its ancestors.
    const edges = await page.evaluate(() => {
      const out = {};
      for (let r = 0; r < window.view.store.total; r++) out[window.view.store.row(r).hash] = window.view.store.row(r).edges.length;
      return out;
    });
    for (const h of cross) {
      const older = git(merges, '--no-replace-objects', 'rev-list', '-i', '--grep=cross', `${h}^@`, '--');
      assert.equal(edges[h] > 0, older !== '', `${h.slice(0, 8)}: ${edges[h]} edges, older hits: ${older.split('\n').length}`);
    }
    // A hit whose history is left out is no root (a dashed stub, not the root's square).
    const stubs = await page.evaluate(() => {
      const out = [];
      for (let r = 0; r < window.view.store.total; r++) {
        const row = window.view.store.row(r);
        if (!row.edges.length) out.push(row.root);
      }
      return out;
    });
    assert.ok(stubs.length > 0 && stubs.every((root) => root === false), `rows without edges: ${stubs}`);
    await screenshot(page, 'only-matches');
    // Another search is another set of matches.
    await page.fill('#search', 'leg');
    await page.press('#search', 'Enter');
    const legs = git(merges, '--no-replace-objects', 'rev-list', ...defaultView, '-i', '--grep=leg').split('\n');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('match') === 'leg');
    await page.waitForFunction((n) => window.view.store.total === n, legs.length);
    // Off again: the whole view.
    await page.click('#only-matches');
    await page.waitForFunction(() => !new URL(location.href).searchParams.get('match'));
    await page.waitForFunction((n) => window.view.store.total === n, order.length);
    assert.equal(await page.getAttribute('#only-matches', 'aria-pressed'), 'false');
    await page.close();
  });

  await check('an unknown repository stops reconnecting', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/r/nope-nothing-here`);
    await page.waitForFunction(() => document.getElementById('conn').textContent === 'not found', null, { timeout: 10000 });
    await page.waitForTimeout(2500);
    assert.equal(await page.textContent('#conn'), 'not found');
    await page.close();
  });

  await check('Back and Forward walk through opened commits, searches and views', async () => {
    const page = await openPage(context, url);
    const start = page.url();
    const open = async (row) => {
      await page.click('#graph', { position: { x: 300, y: await rowY(page, row) } });
      await page.waitForFunction((r) => window.view.selected === r && !document.getElementById('panel').hidden, row);
    };
    await open(3);
    const a = await page.evaluate(() => window.view.selectedHash);
    await open(6);
    const b = await page.evaluate(() => window.view.selectedHash);
    assert.notEqual(a, b);
    await page.fill('#search', 'octopus');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('q') === 'octopus');
    await page.goBack();
    await page.waitForFunction(() => !new URL(location.href).searchParams.get('q'));
    await page.waitForFunction((h) => new URL(location.href).searchParams.get('commit') === h && document.getElementById('search').value === '', b);
    await page.goBack();
    await page.waitForFunction((h) => new URL(location.href).searchParams.get('commit') === h, a);
    await page.waitForFunction((h) => window.view.selectedHash === h && document.querySelector('#panel-commit h2') && !document.getElementById('panel').hidden, a);
    await page.goForward();
    await page.waitForFunction((h) => window.view.selectedHash === h, b);
    assert.ok(page.url().startsWith(start.split('?')[0]), 'still on the page');
    await page.close();
  });

  await check('zooming keeps the selection in view, the overview zoom keeps text, cut subjects have tooltips', async () => {
    const repo = fixture('linear', 'linear-zoom');
    git(repo, 'commit', '-q', '--allow-empty', '-m', `A very long subject ${'that goes on and on '.repeat(20)}until the end`);
    const base = await serve(repo);
    const page = await openPage(context, `${base}/r/local`);
    await page.setViewportSize({ width: 900, height: 300 });
    await page.waitForFunction(() => window.view.maxTop() > 0);
    await page.focus('#graph');
    for (let i = 0; i < 20; i++) await page.keyboard.press('j');
    const inView = () => page.evaluate(() => {
      const v = window.view;
      const y = v.selected * v.rowH - v.top;
      return y >= 0 && y + v.rowH <= v.viewH;
    });
    for (const key of ['+', '-', '-', '-', '+']) {
      await page.keyboard.press(key);
      assert.ok(await inView(), `the selected row stays in view after ${key}`);
    }
    await page.keyboard.press('-');
    await page.keyboard.press('-');
    assert.equal(await page.evaluate(() => window.view.zoom), 0);
    // The overview still writes each row's subject: ink in the text column of row 0.
    await page.evaluate(() => { window.view.scrollBy(0 - window.view.top); });
    await page.waitForTimeout(100);
    const ink = await page.evaluate(() => {
      const v = window.view;
      const c = document.getElementById('graph');
      const ratio = c.width / c.clientWidth;
      const x0 = Math.round((16 + v.lanesShown * v.laneW + 4) * ratio);
      const data = c.getContext('2d').getImageData(x0, 0, Math.round(200 * ratio), Math.round(v.rowH * ratio)).data;
      const bg = [data[0], data[1], data[2]];
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) > 120) n++;
      return n;
    });
    assert.ok(ink > 20, `text drawn at the overview zoom (${ink} dark pixels)`);
    await screenshot(page, 'overview-zoom');
    // The long subject is cut; hovering it shows it whole.
    const box = await page.locator('#graph').boundingBox();
    await page.mouse.move(box.x + 400, box.y + 7);
    const title = await page.getAttribute('#graph', 'title');
    assert.match(title || '', /^A very long subject .*until the end$/);
    await page.close();
  });

  await check('the details panel resizes (remembered) and opens full width, Esc returning', async () => {
    let page = await openPage(context, url);
    await page.click('#graph', { position: { x: 200, y: await rowY(page, 2) } });
    await page.waitForSelector('#panel:not([hidden]) h2');
    const width = () => page.evaluate(() => document.getElementById('panel').getBoundingClientRect().width);
    const before = await width();
    const h = await page.locator('#panel-resize').boundingBox();
    await page.mouse.move(h.x + h.width / 2, h.y + 100);
    await page.mouse.down();
    await page.mouse.move(h.x - 200, h.y + 120, { steps: 5 });
    await page.mouse.up();
    const after = await width();
    assert.ok(Math.abs(after - before - 200) < 8, `dragged from ${before} to ${after}`);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#graph', { position: { x: 200, y: await rowY(page, 2) } });
    await page.waitForSelector('#panel:not([hidden]) h2');
    assert.ok(Math.abs(await width() - after) < 2, 'the width is remembered');
    await page.click('#panel-wide');
    const main = await page.evaluate(() => document.getElementById('main').getBoundingClientRect().width);
    assert.ok(Math.abs(await width() - main) < 2, 'full width');
    await screenshot(page, 'panel-wide');
    await page.keyboard.press('Escape');
    assert.ok(Math.abs(await width() - after) < 2, 'Esc returns to the remembered width');
    assert.equal(await page.isVisible('#panel'), true);
    await page.evaluate(() => localStorage.removeItem('gitvista.panelWidth'));
    await page.close();
  });

  await check('a renamed and edited file diffs against its old path, changed words marked, unified or side by side', async () => {
    const repo = fixture('renames', 'renames-ui');
    const base = await serve(repo);
    const move = git(repo, 'rev-list', '-1', '--grep=Move src/doc/', 'HEAD');
    const page = await openPage(context, `${base}/r/local?commit=${move}`);
    await page.waitForSelector('#panel-commit .files');
    const setup = page.locator('#panel-commit .file', { hasText: 'setup.md' });
    // Named as `git diff --stat` names a rename.
    assert.match(await setup.textContent(), /\{src\/doc => doc\}\/setup\.md/);
    assert.match(await setup.textContent(), /94%/);
    await setup.click();
    await page.waitForSelector('#panel-commit table.diff');
    const changed = await page.$$eval('#panel-commit table.diff .chg', (s) => s.map((x) => x.textContent));
    assert.deepEqual(changed, ['005', 'five', '017', 'seventeen']);
    await screenshot(page, 'diff-unified-words');
    await page.click('#panel-commit .diff-layout');
    await page.waitForSelector('#panel-commit table.diff.split');
    const pairs = await page.$$eval('#panel-commit table.diff.split tr.pair', (rows) => rows.map((r) => [...r.querySelectorAll('td.code')].map((c) => c.textContent)));
    assert.equal(pairs.length, 2);
    assert.match(pairs[0][0], /line 005/);
    assert.match(pairs[0][1], /line five/);
    await screenshot(page, 'diff-side-by-side');
    // Remembered: the next diff opens side by side too.
    await page.reload();
    await page.waitForSelector('#panel-commit .files');
    await page.locator('#panel-commit .file', { hasText: 'setup.md' }).click();
    await page.waitForSelector('#panel-commit table.diff.split');
    await page.evaluate(() => localStorage.removeItem('gitvista.diffLayout'));
    await page.close();
  });

  await check('eighty lanes at once: the graph column keeps its share, no text crosses a lane, its edge drags (remembered)', async () => {
    const wide = path.join(work, 'wide.git');
    git(work, 'init', '-q', '--bare', '-b', 'main', wide);
    const blob = (text) => `data ${Buffer.byteLength(text)}\n${text}\n`;
    // Eighty branches open at once, three commits each, interleaved in time: the tips carry
    // badges, the rows below them only text.
    const lines = [`commit refs/heads/main\nmark :1\ncommitter Dev <dev@example.com> 1700000000 +0000\n${blob('root')}`];
    let t = 1700000000;
    for (let k = 1; k <= 3; k++) {
      for (let n = 1; n <= 80; n++) {
        t += 60;
        const from = k === 1 ? 'from :1\n' : '';
        lines.push(`commit refs/heads/topic-${n}\ncommitter Dev <dev@example.com> ${t} +0000\n${blob(`topic ${n} step ${k} with a subject long enough to need its room`)}${from}`);
      }
    }
    execFileSync('git', ['fast-import', '--quiet'], { cwd: wide, env: gitEnv, input: lines.join('\n') });
    const base = await serve(wide);
    for (const [w, h, share] of [[1400, 900, 0.4], [1920, 1080, 0.4], [390, 844, 0.3]]) {
      for (const open of w > 800 ? [false, true] : [false]) {
        const page = await openPage(context, `${base}/r/local`);
        await page.setViewportSize({ width: w, height: h });
        // Into the rows without badges, all eighty lanes open.
        await page.evaluate(() => { window.view.scrollBy(100 * window.view.rowH - window.view.top); });
        const where = `${w}x${h}${open ? ' with the details' : ''}`;
        const m = await checkColumns(page, { open, share, where });
        assert.ok(m.folded > 0, `lanes fold into the overflow edge at ${where}`);
        assert.ok(m.lanes > 200, `lanes drawn at ${where} (${m.lanes} px)`);
        await screenshot(page, `eighty-lanes-${w}${open ? '-details' : ''}`);
        await page.close();
      }
    }
    // Dragging the column's edge: narrower, remembered, and a double click returns the default.
    const page = await openPage(context, `${base}/r/local`);
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.evaluate(() => { window.view.scrollBy(100 * window.view.rowH - window.view.top); });
    await page.waitForTimeout(800);
    const before = await measureColumns(page);
    const box = await page.locator('#graph').boundingBox();
    const y = box.y + 300;
    await page.mouse.move(box.x + before.graphW, y);
    assert.equal(await page.evaluate(() => document.getElementById('graph').style.cursor), 'col-resize');
    await page.mouse.down();
    await page.mouse.move(box.x + before.graphW - 250, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(800);
    const dragged = await measureColumns(page);
    assert.ok(Math.abs(dragged.graphW - (before.graphW - 250)) <= 16, `dragged from ${before.graphW} to ${dragged.graphW}`);
    assert.equal(dragged.crossing + dragged.overText, 0, 'no lane ink in the text, no text over lanes after the drag');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.evaluate(() => { window.view.scrollBy(100 * window.view.rowH - window.view.top); });
    await page.waitForTimeout(800);
    assert.ok(Math.abs((await measureColumns(page)).graphW - dragged.graphW) < 1, 'the width is remembered');
    await screenshot(page, 'eighty-lanes-dragged');
    await page.mouse.dblclick(box.x + dragged.graphW, y);
    await page.waitForTimeout(800);
    assert.ok(Math.abs((await measureColumns(page)).graphW - before.graphW) < 1, 'a double click returns to the default width');
    assert.equal(await page.evaluate(() => localStorage.getItem('gitvista.graphWidth')), null);
    await page.close();
  });

  await check('empty lanes take no room: a far lane sits next to the main one', async () => {
    const far = path.join(work, 'far-lane.git');
    git(work, 'init', '-q', '--bare', '-b', 'main', far);
    const blob = (text) => `data ${Buffer.byteLength(text)}\n${text}\n`;
    let t = 1700000000;
    const c = (ref, msg, extra = '') => { t += 60; return `commit ${ref}\ncommitter Dev <dev@example.com> ${t} +0000\n${blob(msg)}${extra}`; };
    const lines = [c('refs/heads/main', 'root', '') + 'mark :1\n'.replace(/^/, '')];
    lines[0] = `commit refs/heads/main\nmark :1\ncommitter Dev <dev@example.com> ${t} +0000\n${blob('root')}`;
    // Ten short topics open at once, then a long-lived branch forks (a far lane), then the
    // topics merge and only main and the long branch go on.
    for (let n = 1; n <= 10; n++) lines.push(c(`refs/heads/topic-${n}`, `topic ${n}`, 'from :1\n'));
    lines.push(c('refs/heads/long', 'long starts', 'from :1\n'));
    for (let n = 1; n <= 10; n++) lines.push(c('refs/heads/main', `merge topic ${n}`, `merge refs/heads/topic-${n}\n`));
    for (let n = 1; n <= 40; n++) lines.push(c(n % 2 ? 'refs/heads/main' : 'refs/heads/long', `step ${n} on ${n % 2 ? 'main' : 'long'}`));
    execFileSync('git', ['fast-import', '--quiet'], { cwd: far, env: gitEnv, input: lines.join('\n') });
    const base = await serve(far);
    const page = await openPage(context, `${base}/r/local`);
    await page.setViewportSize({ width: 1400, height: 500 });
    await page.waitForTimeout(500);
    const m = await page.evaluate(() => {
      const v = window.view;
      const lanes = new Set();
      for (let r = 0; r * v.rowH < v.viewH && r < v.store.total; r++) lanes.add(v.store.row(r).lane);
      return { lanes: [...lanes], shown: v.lanesShown, graphW: v.graphW, laneW: v.laneW, far: v.laneX(Math.max(...lanes)) };
    });
    assert.ok(Math.max(...m.lanes) >= 5, `the long branch is far out (lanes ${m.lanes})`);
    assert.equal(m.shown, m.lanes.length, 'one column per lane on screen');
    assert.ok(m.graphW <= 16 + m.lanes.length * m.laneW + 0.5, `column ${m.graphW} px`);
    assert.ok(Math.abs(m.far - (8 + 1.5 * m.laneW)) < 0.5, 'the far lane is drawn second');
    await screenshot(page, 'far-lane-compacted');
    await page.close();
  });

  await check('a row menu shows only one branch and its history; the View menu shows all again', async () => {
    const page = await openPage(context, url);
    const row = await page.evaluate(async () => (await (await fetch('/api/repos/local/repository')).json()).refs.find((r) => r.name === 'refs/heads/feature').row);
    await page.evaluate((r) => window.view.center(r), row);
    await page.waitForTimeout(100);
    await page.click('#graph', { button: 'right', position: { x: 300, y: await rowY(page, row) } });
    await page.click('#row-menu >> text=Show only feature');
    const history = git(merges, '--no-replace-objects', 'rev-list', 'refs/heads/feature').split('\n');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('only') === 'refs/heads/feature');
    await page.waitForFunction((n) => window.view.store.total === n, history.length);
    await page.waitForFunction((h) => document.querySelector('#rows-a11y li')?.dataset.hash === h, history[0]);
    await page.click('#view-menu summary');
    assert.equal(await page.textContent('#only-name'), 'feature');
    await screenshot(page, 'only-feature');
    await page.click('#only-clear');
    await page.waitForFunction(() => !new URL(location.href).searchParams.get('only'));
    await page.waitForFunction((n) => window.view.store.total === n, order.length);
    await page.close();
  });

  await check('a stash is one row: its index and untracked-files commits are not rows of their own', async () => {
    const repo = fixture('stash');
    const base = await serve(repo);
    const stashes = git(repo, 'reflog', 'show', '--format=%H', 'refs/stash').split('\n');
    for (const q of ['', '?noMerges=1']) {
      const page = await openPage(context, `${base}/r/local${q}`);
      const rows = await visibleRows(page);
      assert.ok(rows.every((r) => !/^(index on|untracked files on)/.test(r.text.replace(/^\S+\s/, '')) && !/(index on|untracked files on) main/.test(r.text)), rows.map((r) => r.text).join(' | '));
      for (const w of stashes) assert.ok(rows.some((r) => r.hash === w), `stash ${w.slice(0, 8)} has its row (${q})`);
      if (!q) await screenshot(page, 'stash-one-row');
      await page.close();
    }
  });

  await check('dark theme renders', async () => {
    const page = await context.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
    const px = await page.evaluate(() => {
      const c = document.getElementById('graph');
      return [...c.getContext('2d').getImageData(c.width - 2, c.height - 2, 1, 1).data];
    });
    assert.ok(px[0] + px[1] + px[2] < 120, `background ${px}`);
    await screenshot(page, 'dark');
    await page.close();
  });

  await check('a view at the top shows a new commit there within 3 s, keeping the selection', async () => {
    const page = await openPage(context, url);
    const target = 5;
    const y = await rowY(page, target);
    await page.click('#graph', { position: { x: 300, y } });
    await page.waitForSelector('#panel:not([hidden]) h2');
    const before = await page.evaluate(() => ({ hash: window.view.selectedHash, y: window.view.selected * window.view.rowH - window.view.top, total: window.view.store.total }));
    writeFileSync(path.join(merges, 'live.txt'), 'live\n');
    git(merges, 'add', 'live.txt');
    git(merges, 'commit', '-q', '-m', 'live from the browser test');
    const head = git(merges, 'rev-parse', 'HEAD');
    const t0 = Date.now();
    await page.waitForFunction((n) => window.view.store.total === n, before.total + 1, { timeout: 3000 });
    // No scrolling: the view follows the top, and says nothing it does not show.
    await page.waitForFunction((h) => document.querySelector('#rows-a11y li')?.dataset.hash === h, head, { timeout: 3000 - (Date.now() - t0) });
    const after = await page.evaluate(() => ({ hash: window.view.selectedHash, top: window.view.top }));
    assert.equal(after.hash, before.hash, 'selection kept');
    assert.equal(after.top, 0);
    assert.equal(await page.isVisible('#arrivals'), false);
    await screenshot(page, 'live-commit');
    await page.close();
  });

  await check('a change whose reads fail (a busy server) is read again until the page has it', async () => {
    const page = await openPage(context, url);
    const before = await page.evaluate(() => window.view.store.total);
    // The server answers the summary 503 twice after the commit, then as usual: the delta is
    // the only news, so a page that gave up on it would hold the old history.
    let refused = 0;
    await page.route('**/api/repos/local/repository*', (route) => {
      if (refused < 2) {
        refused += 1;
        return route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"busy","code":"busy"}' });
      }
      return route.continue();
    });
    writeFileSync(path.join(merges, 'retried.txt'), 'retried\n');
    git(merges, 'add', 'retried.txt');
    git(merges, 'commit', '-q', '-m', 'read again after a busy answer');
    const head = git(merges, 'rev-parse', 'HEAD');
    await page.waitForFunction((n) => window.view.store.total === n, before + 1, { timeout: 15000 });
    await page.waitForFunction((h) => document.querySelector('#rows-a11y li')?.dataset.hash === h, head, { timeout: 5000 });
    assert.equal(refused, 2, 'the summary was refused twice before the page had the commit');
    await page.close();
  });

  await check('the selected row does not move on screen when commits arrive', async () => {
    const page = await openPage(context, url);
    // A view shorter than the history, so there is room to keep the rows in place.
    await page.setViewportSize({ width: 1280, height: 360 });
    await page.waitForFunction(() => window.view.maxTop() > 0);
    // Scrolled into history: the rows stay where they are and a header chip says what arrived.
    await page.evaluate(() => { window.view.scrollBy(2 * window.view.rowH - window.view.top); });
    const y = await rowY(page, 8);
    await page.click('#graph', { position: { x: 300, y } });
    const before = await page.evaluate(() => ({ hash: window.view.selectedHash, y: window.view.selected * window.view.rowH - window.view.top, total: window.view.store.total, applied: window.changesApplied || 0 }));
    writeFileSync(path.join(merges, 'live2.txt'), 'live\n');
    git(merges, 'add', 'live2.txt');
    git(merges, 'commit', '-q', '-m', 'second live commit');
    await page.waitForFunction((n) => (window.changesApplied || 0) >= n, before.applied + 1, { timeout: 3000 });
    assert.equal(await page.evaluate(() => window.view.store.total), before.total + 1);
    const after = await page.evaluate(() => ({ hash: window.view.selectedHash, y: window.view.selected * window.view.rowH - window.view.top }));
    assert.equal(after.hash, before.hash);
    assert.ok(Math.abs(after.y - before.y) < 1, `moved from ${before.y} to ${after.y}`);
    assert.ok(await page.isVisible('#arrivals'), 'the header says what arrived');
    assert.match(await page.textContent('#arrivals'), /1 new commit on main/);
    await screenshot(page, 'anchored');
    await page.click('#arrivals');
    await page.waitForFunction(() => window.view.top === 0 && document.getElementById('arrivals').hidden);
    await page.close();
  });

  await check('filters hide merges and remote branches, and live in the URL', async () => {
    const page = await openPage(context, url);
    await page.click('#view-menu summary');
    await page.check('#opt-no-merges');
    await page.waitForFunction(() => /noMerges=1/.test(location.search));
    const noMerges = git(merges, '--no-replace-objects', 'log', ...defaultView, '--no-merges', '--date-order', '--format=%H').split('\n');
    await page.waitForFunction((n) => window.view.store.total === n, noMerges.length);
    await page.waitForFunction((h) => document.querySelector('#rows-a11y li')?.dataset.hash === h, noMerges[0]);
    await page.waitForFunction((hs) => {
      const got = [...document.querySelectorAll('#rows-a11y li')].map((li) => li.dataset.hash);
      return got.length > 3 && got.every((h, i) => h === hs[i]);
    }, noMerges);
    await screenshot(page, 'filter-no-merges');
    // Remote branches: their badges go (and commits only they reach would).
    await page.waitForFunction(() => [...document.querySelectorAll('#rows-a11y li')].some((li) => /origin\//.test(li.textContent)));
    await page.check('#view-menu [data-hide="remote"]');
    await page.waitForFunction(() => /hide=remote/.test(location.search));
    await page.waitForFunction(() => ![...document.querySelectorAll('#rows-a11y li')].some((li) => /origin\//.test(li.textContent)));
    // The same URL opens the same view.
    const again = await openPage(context, page.url());
    assert.equal(await again.isChecked('#opt-no-merges'), true);
    assert.equal(await again.isChecked('#view-menu [data-hide="remote"]'), true);
    await again.waitForFunction((n) => window.view.store.total === n, noMerges.length);
    await again.close();
    await page.close();
  });

  // A longer history: search hits far outside the first window.
  const big = path.join(work, 'long.git');
  execFileSync(path.join(root, 'scripts/gen-bench-repo'), [big, '3000', '6'], { env: gitEnv, stdio: 'ignore' });
  const longBase = await serve(big);
  await check('search for an author finds the commits git finds and n jumps past the loaded window', async () => {
    const page = await openPage(context, `${longBase}/r/local`);
    const expected = Number(git(big, 'rev-list', '--all', '--count', '--author=Dev 007 <'));
    assert.ok(expected > 0);
    await page.fill('#search', 'author:"Dev 007"');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /hit/.test(document.getElementById('search-count').textContent) || /of/.test(document.getElementById('search-count').textContent));
    const hits = await page.evaluate(() => window.view.hits);
    assert.equal(hits.length, expected);
    assert.ok(hits[hits.length - 1] > 400, `the last hit is at row ${hits[hits.length - 1]}`);
    // Step with n until a hit beyond the first 400 rows is selected and drawn.
    for (let i = 0; i < hits.length && (await page.evaluate(() => window.view.selected)) < 400; i++) {
      await page.keyboard.press('n');
    }
    const sel = await page.evaluate(() => window.view.selected);
    assert.ok(sel >= 400 && hits.includes(sel), `selected ${sel}`);
    await page.waitForFunction((r) => [...document.querySelectorAll('#rows-a11y li')].some((li) => Number(li.dataset.row) === r && li.getAttribute('aria-current') === 'true'), sel);
    const text = await page.$eval('#rows-a11y li[aria-current="true"]', (li) => li.textContent);
    assert.match(text, /Dev 007/);
    assert.match(page.url(), /q=author/);
    await screenshot(page, 'search');
    await page.close();
  });
  // A repository of the size of rust-lang/cargo: 24,000 commits on 80 long-lived branches.
  const cargoSized = path.join(work, 'cargo-sized.git');
  execFileSync(path.join(root, 'scripts/gen-bench-repo'), [cargoSized, '24000', '80'], { env: gitEnv, stdio: 'ignore' });
  const cargoBase = await serve(cargoSized);
  await check('a cargo-sized history at 1400x900, 1920x1080 and 390x844, light and dark: the subject keeps its room, no text crosses a lane', async () => {
    for (const theme of ['light', 'dark']) {
      for (const [w, h, share] of [[1400, 900, 0.4], [1920, 1080, 0.4], [390, 844, 0.3]]) {
        for (const open of w > 800 ? [false, true] : [false]) {
          const page = await context.newPage();
          await page.emulateMedia({ colorScheme: theme });
          await page.setViewportSize({ width: w, height: h });
          await page.goto(`${cargoBase}/r/local`);
          await page.waitForSelector('body[data-ready="true"]');
          await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
          // Light at the top, dark a long way back (as a year back in cargo's history).
          if (theme === 'dark') await page.evaluate(() => window.view.center(Math.floor(window.view.store.total * 0.3)));
          await page.waitForFunction(() => {
            const v = window.view;
            const first = Math.floor(v.top / v.rowH);
            return v.store.row(first) && v.store.row(first + 10);
          });
          const where = `${theme} ${w}x${h}${open ? ' with the details' : ''}`;
          const m = await checkColumns(page, { open, share, where });
          assert.equal(await page.getAttribute('html', 'data-theme'), theme);
          assert.ok(m.rows > 5 && m.lanes > 50, `rows and lanes drawn at ${where} (${m.rows} rows, ${m.lanes} px)`);
          await screenshot(page, `cargo-sized-${theme}-${w}${open ? '-details' : ''}`);
          await page.close();
        }
      }
    }
  });

  await check('admin: signs in with the token, shows sessions, evicts one', async () => {
    const adminBase = await serve(merges, undefined, { GITVISTA_ADMIN_TOKEN: 'browser-admin-token-0123456789abcdef' });
    await (await fetch(`${adminBase}/api/repos/local/repository`)).json();
    const page = await context.newPage();
    await page.goto(`${adminBase}/admin`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', 'wrong');
    await page.click('#login button');
    await page.waitForSelector('#message:not([hidden])');
    await page.fill('#token', 'browser-admin-token-0123456789abcdef');
    await page.click('#login button');
    await page.waitForSelector('#sessions tr[data-id="local"]');
    assert.match(await page.textContent('#sessions tr[data-id="local"]'), /local/);
    await page.waitForFunction(() => /MiB|KiB/.test(document.getElementById('m-rss').textContent));
    // Rates need two scrapes; they are numbers, never NaN.
    await page.waitForTimeout(2300);
    assert.match(await page.textContent('#m-http'), /^\d+\.\d$/);
    await screenshot(page, 'admin');
    await page.click('#sessions tr[data-id="local"] button.danger');
    await page.waitForFunction(() => !document.querySelector('#sessions tr[data-id="local"]'));
    // Signing out shows the sign-in form again, and the API no longer answers this browser.
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    assert.equal(await page.evaluate(async () => (await fetch('/api/admin/sessions')).status), 401);
    await page.close();
  });

  // Hosted mode: a git daemon on loopback as the remote.
  const remotes = path.join(work, 'remotes');
  mkdirSync(remotes, { recursive: true });
  git(work, 'clone', '-q', '--bare', merges, path.join(remotes, 'merges.git'));
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
  // Its own process group: `git daemon` runs `git-daemon` as a child that must go too.
  const daemon = spawn('git', ['daemon', '--export-all', '--reuseaddr', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${remotes}`, remotes], { stdio: 'ignore', detached: true });
  servers.push({ kill: () => { try { process.kill(-daemon.pid, 'SIGKILL'); } catch { /* gone */ } } });
  await new Promise((r) => setTimeout(r, 500));
  const hostedBase = await serve(null, ['serve', '--port', '0', '--data-dir', path.join(work, 'hosted-data'), '--allowed-hosts', '127.0.0.1'], { GITVISTA_ADMIN_TOKEN: 'browser-admin-token-0123456789abcdef' });

  await check('hosted: a pasted URL clones, shows progress, then the graph; refusals say why', async () => {
    const page = await context.newPage();
    await page.goto(hostedBase + '/');
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#url', 'file:///etc/passwd');
    await page.click('#paste button');
    await page.waitForSelector('#message:not([hidden])');
    assert.match(await page.textContent('#message'), /^Local paths/);
    await screenshot(page, 'hosted-refused');
    await page.fill('#url', `git://127.0.0.1:${port}/merges.git`);
    await page.click('#paste button');
    await page.waitForURL(/\/r\/[0-9a-f]{16}$/);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5);
    const rows = await visibleRows(page);
    const head = git(merges, 'rev-parse', 'main');
    assert.ok(rows.some((r) => r.hash === head), 'main is drawn');
    await screenshot(page, 'hosted-graph');
    await page.goto(hostedBase + '/');
    await page.waitForSelector('body[data-ready="true"]');
    assert.match(await page.textContent('#recent'), /merges/);
    await page.close();
  });

  await check('admin (hosted): the actor tree shows the session with its remote, the clone queue and eviction', async () => {
    // Cookies ignore ports: the local admin check's sign-in would carry over.
    await context.clearCookies();
    const page = await context.newPage();
    await page.goto(`${hostedBase}/admin`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', 'browser-admin-token-0123456789abcdef');
    await page.click('#login button');
    await page.waitForSelector('#sessions tr[data-id] .state-badge.ready');
    assert.match(await page.textContent('#sessions tr[data-id]'), new RegExp(`git://127.0.0.1:${port}/merges`));
    assert.match(await page.textContent('#supervisor'), /1 session, \d+ viewers? \(hosted mode\)/);
    assert.match(await page.textContent('#queue-summary'), /of 2 running, \d+ waiting; [1-9]\d* git process(es)? started/);
    assert.match(await page.textContent('#eviction-summary'), /every 1 min/);
    assert.match(await page.textContent('#eviction-last'), /No sweep yet|Last sweep/);
    await page.click('#sessions tr[data-id] button:not(.danger)');
    await page.waitForFunction(() => /s ago, ok/.test(document.querySelector('#sessions tr[data-id]').textContent), null, { timeout: 10000 });
    await screenshot(page, 'admin-hosted');
    await page.close();
  });

  await check('hosted: a commits-only clone shows the graph, diffs fetched on demand, and "fetching file contents…" while blame waits', async () => {
    // A remote that filters, as GitHub does; a server that never hydrates, so blame keeps waiting.
    const partialRemote = path.join(remotes, 'partial.git');
    git(work, 'clone', '-q', '--bare', merges, partialRemote);
    git(partialRemote, 'config', 'uploadpack.allowFilter', 'true');
    git(partialRemote, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
    // Without its tags that name a tree or a blob (with them, the clone holds trees too).
    git(partialRemote, 'tag', '-d', 'tree-tag', 'tree-annotated', 'blob-tag');
    const base = await serve(null, ['serve', '--port', '0', '--data-dir', path.join(work, 'partial-data'), '--allowed-hosts', '127.0.0.1', '--hydrate', 'false']);
    const page = await context.newPage();
    await page.goto(base + '/');
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#url', `git://127.0.0.1:${port}/partial.git`);
    await page.click('#paste button');
    await page.waitForURL(/\/r\/[0-9a-f]{16}$/);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5);
    await page.waitForSelector('#contents:not([hidden])');
    assert.equal(await page.textContent('#contents'), 'file contents on demand');
    const repoUrl = page.url();
    // A commit's changed files and a file's diff: their objects are fetched for them.
    const target = git(merges, 'log', '--all', '--format=%H %s').split('\n').map((l) => l.split(' ')).find((p) => p.slice(1).join(' ') === 'main 3')[0];
    await page.goto(`${repoUrl}?commit=${target}`);
    await page.waitForSelector('#panel:not([hidden]) .files');
    const files = await page.$$eval('#panel-commit .files .path', (e) => e.map((x) => x.textContent));
    assert.deepEqual(files, git(merges, 'diff-tree', '--no-commit-id', '--name-only', '-r', target).split('\n'));
    await page.click('#panel-commit .files .file');
    await page.waitForSelector('#panel-commit table.diff');
    // Blame reads the whole history of the file: the page says it waits, and keeps asking.
    const head = git(merges, 'log', '--all', '--format=%H %s').split('\n').map((l) => l.split(' ')).find((p) => p.slice(1).join(' ') === 'merge unrelated root')[0];
    await page.goto(`${repoUrl}?commit=${head}`);
    await page.waitForSelector('#panel:not([hidden]) h2');
    await page.click('#tab-files');
    await page.waitForSelector('#panel-files .tree button');
    await page.click('#panel-files .tree > li > button:text-is("a.txt")');
    await page.waitForSelector('#panel-files table.blob');
    const content = await page.$$eval('#panel-files table.blob tr td:last-child', (t) => t.map((x) => x.textContent));
    assert.deepEqual(content, git(merges, 'show', `${head}:a.txt`).split('\n'));
    await page.click('#panel-files .diff-actions button');
    await page.waitForFunction(() => document.querySelector('#contents')?.textContent === 'fetching file contents\u2026');
    await screenshot(page, 'partial-fetching-contents');
    await page.close();
  });

  await check('hosted: the first rows come from the remote before the clone, timed from "Show history"', async () => {
    // A history as long as git/git's (85,000 commits, each with a paragraph of message), as a
    // forge serves it: partial clones allowed, a commit-graph written.
    const longRemote = path.join(remotes, 'long.git');
    git(remotes, 'init', '-q', '--bare', '-b', 'main', 'long.git');
    const n = 85000;
    const body = 'Explain the change in a paragraph, as commit messages in long-lived projects do. '.repeat(3);
    const parts = [];
    for (let k = 1; k <= n; k++) {
      const msg = `change ${k}\n\n${body}\n`;
      parts.push(`commit refs/heads/main\nmark :${k}\ncommitter A <a@example.com> ${1600000000 + k * 60} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`);
      if (k > 1) parts.push(`from :${k - 1}\n`);
      const file = `version ${k}\n`;
      parts.push(`M 100644 inline f${k % 100}.txt\ndata ${file.length}\n${file}\n`);
    }
    execFileSync('git', ['fast-import', '--quiet'], { cwd: longRemote, env: gitEnv, input: parts.join(''), maxBuffer: 1 << 30 });
    git(longRemote, 'config', 'uploadpack.allowFilter', 'true');
    git(longRemote, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
    git(longRemote, 'commit-graph', 'write', '--reachable');
    // A remote quick to answer the stream (the first connection) and slow to serve the clone
    // (every later one waits 4 s): the rows on screen can only have come from the stream.
    let connections = 0;
    const proxy = net.createServer((client) => {
      const wait = connections++ === 0 ? 0 : 4000;
      setTimeout(() => {
        const upstream = net.connect(port, '127.0.0.1');
        client.pipe(upstream).pipe(client);
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      }, wait);
    });
    const proxyPort = await new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy.address().port)));
    servers.push({ kill: () => proxy.close() });
    const base = await serve(null, ['serve', '--port', '0', '--data-dir', path.join(work, 'stream-data'), '--allowed-hosts', '127.0.0.1']);
    const page = await context.newPage();
    await page.goto(base + '/');
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#url', `git://127.0.0.1:${proxyPort}/long.git`);
    const pressed = Date.now();
    await page.click('#paste button');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5, null, { timeout: 30000 });
    const firstRows = Date.now() - pressed;
    // Shown from memory while the clone waits: the page says the history is still arriving.
    const summary = await page.evaluate(async () => (await fetch(`/api/repos/${location.pathname.split('/').pop()}/repository`)).json());
    assert.equal(summary.streaming, true, JSON.stringify(summary));
    const rows = await visibleRows(page);
    assert.equal(rows[0].hash, git(longRemote, 'rev-parse', 'HEAD'));
    assert.match(rows[0].text, /change 85000/);
    console.log(`     first rows on screen ${firstRows} ms after "Show history" (${n} commits over git daemon, loopback)`);
    await screenshot(page, 'streamed-first-rows');
    // The whole history, then the clone; the page needs no reload.
    const repoApi = `${page.url().replace('/r/', '/api/repos/')}/repository`;
    for (let i = 0; ; i++) {
      const s = await (await fetch(repoApi)).json();
      if (s.rows === n && s.streaming === false) break;
      assert.ok(i < 600, `the clone took over 60 s: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.waitForFunction(() => document.getElementById('history').hidden, null, { timeout: 30000 });
    await page.close();
  });

  await check('webhooks: a push announced by a signed delivery shows "1 new commit" within 3 s with no poll; /admin lists it', async () => {
    const secret = 'browser-webhook-secret-0123456789';
    // Polls every hour: only the delivery can bring the commit in during the check.
    const hookBase = await serve(null, ['serve', '--port', '0', '--data-dir', path.join(work, 'hook-data'), '--allowed-hosts', '127.0.0.1'], {
      GITVISTA_ADMIN_TOKEN: 'browser-admin-token-0123456789abcdef',
      GITVISTA_GITHUB_WEBHOOK_SECRET: secret,
      GITVISTA_FETCH_INTERVAL: '3600',
    });
    const remoteUrl = `git://127.0.0.1:${port}/merges.git`;
    const page = await context.newPage();
    // The live socket's summary says the session counts this page among its viewers (the
    // clone's progress socket comes first and hands over to it).
    let summaries = 0;
    page.on('websocket', (ws) => ws.on('framereceived', (f) => { if (String(f.payload).includes('"type":"summary"')) summaries += 1; }));
    await page.setViewportSize({ width: 1280, height: 360 });
    await page.goto(hookBase + '/');
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#url', remoteUrl);
    await page.click('#paste button');
    await page.waitForURL(/\/r\/[0-9a-f]{16}$/);
    const id = page.url().split('/').pop();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    // Opened afresh on the cloned repository: one socket, the live one, from the start.
    summaries = 0;
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await page.waitForFunction(() => window.view.maxTop() > 0);
    for (let i = 0; summaries === 0; i += 1) {
      assert.ok(i < 200, 'the live socket connected');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The reconnection's resync settles first (it would take the view back to the top).
    for (let last = -1, i = 0; ; i += 1) {
      const applied = await page.evaluate(() => window.changesApplied || 0);
      if (applied === last) break;
      assert.ok(i < 40, 'the page settled');
      last = applied;
      await new Promise((r) => setTimeout(r, 300));
    }
    // Scrolled into history: what arrives is announced in the header.
    await page.evaluate(() => { window.view.scrollBy(2 * window.view.rowH - window.view.top); });
    const before = await page.evaluate(() => window.view.store.total);
    // A real push to the remote the server cloned.
    const pusher = path.join(work, 'pusher');
    git(work, 'clone', '-q', path.join(remotes, 'merges.git'), pusher);
    writeFileSync(path.join(pusher, 'hooked.txt'), 'pushed\n');
    git(pusher, 'add', 'hooked.txt');
    git(pusher, 'commit', '-q', '-m', 'pushed and announced by webhook');
    git(pusher, 'push', '-q', 'origin', 'HEAD:main');
    const head = git(pusher, 'rev-parse', 'HEAD');
    // GitHub's delivery: the raw body signed with HMAC-SHA-256.
    const body = JSON.stringify({ ref: 'refs/heads/main', after: head, repository: { full_name: 'local/merges', clone_url: remoteUrl } });
    const signature = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const t0 = Date.now();
    const resp = await fetch(`${hookBase}/webhooks/github`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'browser-1', 'X-Hub-Signature-256': signature },
      body,
    });
    assert.equal(resp.status, 202);
    assert.equal((await resp.json()).outcome, 'fetch');
    await page.waitForSelector('#arrivals:not([hidden])', { timeout: 3000 });
    assert.match(await page.textContent('#arrivals'), /1 new commit on main/);
    assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
    assert.equal(await page.evaluate(() => window.view.store.total), before + 1);
    await screenshot(page, 'webhook-new-commit');
    await page.click('#arrivals');
    await page.waitForFunction((h) => document.querySelector('#rows-a11y li')?.dataset.hash === h, head);
    // The admin page lists the delivery under its repository, with what it did.
    await context.clearCookies();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${hookBase}/admin`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', 'browser-admin-token-0123456789abcdef');
    await page.click('#login button');
    await page.waitForSelector('#webhooks-section:not([hidden]) #deliveries tr');
    const rows = await page.textContent('#deliveries');
    assert.match(rows, new RegExp(id));
    assert.match(rows, /github\s*push\s*fetch/);
    assert.match(await page.textContent('#webhooks-receivers'), /github on \(last delivery \d+ s ago\), gitlab off, bitbucket off, generic off/);
    assert.match(await page.textContent('#cluster-summary'), /1 live node/);
    assert.match(await page.textContent('#nodes'), /node-\d+-[0-9a-f]{8} \(this node\)\s*all/);
    await page.evaluate(() => document.getElementById('webhooks-section').scrollIntoView());
    await screenshot(page, 'admin-webhooks');
    await page.close();
  });

  await check('hosted: a visitor sees what this browser viewed and no Delete; an admin deletes', async () => {
    // A visitor in a browser of their own: no admin cookie, no history yet.
    const visitor = await launchBrowser({ width: 1400, height: 900 });
    const vpage = await visitor.newPage();
    vpage.on('pageerror', (e) => pageErrors.push(e.message));
    await vpage.goto(hostedBase + '/dashboard');
    await vpage.waitForSelector('body[data-ready="true"]');
    assert.equal(await vpage.locator('#rows tr[data-id]').count(), 0, 'a new browser lists nothing');
    const deleted = await vpage.evaluate(async () => (await fetch('/api/repos')).json());
    assert.deepEqual(deleted.repos, [], 'the full list is not for visitors');
    // Once it viewed the graph, its dashboard lists that repository, without a Delete button.
    await vpage.goto(hostedBase + '/');
    await vpage.fill('#url', `git://127.0.0.1:${port}/merges.git`);
    await vpage.click('#paste button');
    await vpage.waitForURL(/\/r\/[0-9a-f]{16}$/);
    await vpage.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    await vpage.goto(hostedBase + '/dashboard');
    await vpage.waitForSelector('#rows tr[data-id] .state-badge.ready');
    assert.equal(await vpage.locator('button.danger').count(), 0, 'no Delete for visitors');
    assert.equal(await vpage.getAttribute('body', 'data-admin'), 'false');
    assert.match(await vpage.textContent('#who'), /admin sign-in/);
    await screenshot(vpage, 'hosted-dashboard-visitor');
    const id = await vpage.getAttribute('#rows tr[data-id]', 'data-id');
    const status = await vpage.evaluate(async (rid) => (await fetch(`/api/repos/${rid}`, { method: 'DELETE' })).status, id);
    assert.equal(status, 401, 'a visitor cannot delete, even by hand');
    await visitor.close();

    // The admin sees every repository and deletes one. An admin session is this server's own
    // (the webhook check's sign-in, on another port of the same host, replaced the cookie and
    // opens nothing here): sign in again.
    const page = await context.newPage();
    page.on('dialog', (d) => d.accept());
    await context.clearCookies();
    await page.goto(`${hostedBase}/admin`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', 'browser-admin-token-0123456789abcdef');
    await page.click('#login button');
    await page.waitForSelector('#sessions');
    await page.goto(hostedBase + '/dashboard');
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#rows tr[data-id] .state-badge.ready');
    assert.equal(await page.getAttribute('body', 'data-admin'), 'true');
    await screenshot(page, 'hosted-dashboard');
    await page.click('#rows tr[data-id] button.danger');
    await page.waitForFunction(() => document.querySelectorAll('#rows tr[data-id]').length === 0);
    await page.close();
  });

  await check('billing: Upgrade through Stripe Checkout raises the quota at once; cancelling in the portal freezes the extra repository', async () => {
    const ghRoot = path.join(work, 'billing-github');
    mkdirSync(path.join(ghRoot, 'alice'), { recursive: true });
    renameSync(fixture('linear', 'bill-one'), path.join(ghRoot, 'alice', 'one'));
    renameSync(fixture('merges', 'bill-two'), path.join(ghRoot, 'alice', 'two'));
    const billingPort = await new Promise((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const started = async (bin, args) => {
      const fake = spawn(path.join(root, `target/debug/${bin}`), args, { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(fake);
      return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${bin} did not start`)), 10000);
        fake.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
          if (m) { clearTimeout(timer); resolve(m[0]); }
        });
      });
    };
    const ghUrl = await started('fake-github', ['Iv1.billing', 'billing-client-secret', ghRoot, 'alice',
      'user:1:alice:Alice Liddell', 'repo:alice/one:public:alice', 'repo:alice/two:public:alice']);
    const stripeUrl = await started('fake-stripe', ['sk_test_browser', 'whsec_browser', `http://127.0.0.1:${billingPort}/webhooks/stripe`]);
    const base = await serve(null, ['serve', '--port', String(billingPort), '--data-dir', path.join(work, 'billing-data'), '--allowed-hosts', '127.0.0.1'], {
      GITHUB_CLIENT_ID: 'Iv1.billing',
      GITHUB_CLIENT_SECRET: 'billing-client-secret',
      GITVISTA_GITHUB_URL: ghUrl,
      GITVISTA_GITHUB_API_URL: ghUrl,
      GITVISTA_PUBLIC_URL: `http://127.0.0.1:${billingPort}`,
      GITVISTA_JWT_SECRET: 'browser-jwt-secret-0123456789abcdef0123',
      GITVISTA_ENCRYPTION_KEY: '0707070707070707070707070707070707070707070707070707070707070707',
      GITVISTA_FREE_REPOS: '1',
      GITVISTA_STRIPE_SECRET_KEY: 'sk_test_browser',
      GITVISTA_STRIPE_PRICE: 'price_browser_paid',
      GITVISTA_STRIPE_WEBHOOK_SECRET: 'whsec_browser',
      GITVISTA_STRIPE_API_URL: stripeUrl,
    });
    const browser = await launchBrowser({ width: 1280, height: 800 });
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      page.on('dialog', (d) => d.accept());
      await page.goto(base + '/');
      await page.waitForSelector('#signin a.sign-in[data-forge="github"]');
      await page.click('#signin a.sign-in[data-forge="github"]');
      await page.waitForURL(base + '/');
      await page.waitForSelector('#yours[data-ready="true"]');
      // Free: one repository; the second is refused.
      const track = (url) => page.evaluate(async (u) => {
        const r = await fetch('/api/repos', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: u }) });
        return { status: r.status, body: await r.json() };
      }, url);
      assert.equal((await track(`${ghUrl}/alice/one`)).status, 201);
      const refused = await track(`${ghUrl}/alice/two`);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'quota_exceeded');
      await page.goto(base + '/dashboard');
      await page.waitForSelector('#billing:not([hidden])');
      assert.match(await page.textContent('#billing-note'), /free plan \(1 repository\)/);
      assert.equal(await page.isVisible('#manage-billing'), false, 'nothing to manage before paying');
      await screenshot(page, 'billing-dashboard-free');
      // Upgrade: to the fake Stripe's Checkout page and back.
      await page.click('#upgrade');
      await page.waitForURL(new RegExp(`^${stripeUrl}/c/pay/`));
      assert.match(await page.textContent('#price'), /price_browser_paid/);
      await screenshot(page, 'billing-checkout');
      await page.click('#pay');
      await page.waitForURL(`${base}/dashboard?billing=success`);
      await page.waitForSelector('#billing:not([hidden])');
      assert.match(await page.textContent('#billing-note'), /Thank you/);
      assert.match(await page.textContent('#billing-note'), /paid plan \(50 repositories\)/);
      assert.equal(await page.isVisible('#upgrade'), false);
      await screenshot(page, 'billing-dashboard-paid');
      // The quota is raised at once.
      assert.equal((await track(`${ghUrl}/alice/two`)).status, 201);
      for (let i = 0; ; i += 1) {
        await page.reload();
        await page.waitForSelector('body[data-ready="true"]');
        if (await page.locator('#rows tr[data-id] .state-badge.ready').count() === 2) break;
        assert.ok(i < 60, 'both cloned');
        await new Promise((r) => setTimeout(r, 500));
      }
      // Manage billing: cancel in the portal. Back on the free plan, one repository is frozen,
      // nothing deleted, and Keep offered.
      await page.click('#manage-billing');
      await page.waitForURL(new RegExp(`^${stripeUrl}/p/`));
      await page.click('#cancel-plan');
      await page.waitForURL(`${base}/dashboard`);
      await page.waitForSelector('#rows .frozen-badge');
      assert.equal(await page.locator('#rows tr[data-id]').count(), 2, 'nothing deleted');
      assert.equal(await page.locator('#rows .frozen-badge').count(), 1);
      assert.match(await page.textContent('#billing-note'), /1 repository is over your plan/);
      assert.equal(await page.isVisible('#upgrade'), true);
      await screenshot(page, 'billing-downgraded-frozen');
      // Keeping the frozen one freezes the other.
      const frozenId = await page.getAttribute('#rows tr[data-id]:has(.frozen-badge)', 'data-id');
      await page.click('#rows button.keep');
      await page.waitForFunction((id) => !document.querySelector(`#rows tr[data-id="${id}"] .frozen-badge`) && document.querySelectorAll('#rows .frozen-badge').length === 1, frozenId);
    } finally {
      await browser.close();
    }
  });

  await check('teams: create a team, share a repository, invite by link, and accept the invitation in another browser', async () => {
    const ghRoot = path.join(work, 'teams-github');
    mkdirSync(path.join(ghRoot, 'alice'), { recursive: true });
    renameSync(fixture('merges', 'team-open'), path.join(ghRoot, 'alice', 'open'));
    const glRoot = path.join(work, 'teams-gitlab');
    mkdirSync(glRoot, { recursive: true });
    const teamsPort = await new Promise((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const started = async (bin, args) => {
      const fake = spawn(path.join(root, `target/debug/${bin}`), args, { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(fake);
      return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${bin} did not start`)), 10000);
        fake.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
          if (m) { clearTimeout(timer); resolve(m[0]); }
        });
      });
    };
    const ghUrl = await started('fake-github', ['Iv1.teams', 'teams-client-secret', ghRoot, 'alice', 'user:1:alice:Alice Liddell', 'repo:alice/open:public:alice']);
    const glUrl = await started('fake-forge', ['gitlab', 'gl-teams', 'gl-teams-secret', glRoot, 'bob', 'user:7:bob:Bob Builder']);
    const base = await serve(null, ['serve', '--port', String(teamsPort), '--data-dir', path.join(work, 'teams-data'), '--allowed-hosts', '127.0.0.1'], {
      GITHUB_CLIENT_ID: 'Iv1.teams',
      GITHUB_CLIENT_SECRET: 'teams-client-secret',
      GITVISTA_GITHUB_URL: ghUrl,
      GITVISTA_GITHUB_API_URL: ghUrl,
      GITLAB_CLIENT_ID: 'gl-teams',
      GITLAB_CLIENT_SECRET: 'gl-teams-secret',
      GITVISTA_GITLAB_URL: glUrl,
      GITVISTA_PUBLIC_URL: `http://127.0.0.1:${teamsPort}`,
      GITVISTA_JWT_SECRET: 'browser-jwt-secret-0123456789abcdef0123',
      GITVISTA_ENCRYPTION_KEY: '0707070707070707070707070707070707070707070707070707070707070707',
    });
    const owner = await launchBrowser({ width: 1280, height: 800 });
    const guest = await launchBrowser({ width: 1280, height: 800 });
    try {
      const page = await owner.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(base + '/');
      await page.waitForSelector('#signin a.sign-in[data-forge="github"]');
      await page.click('#signin a.sign-in[data-forge="github"]');
      await page.waitForURL(base + '/');
      const posted = await page.evaluate(async (url) => {
        const r = await fetch('/api/repos', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url }) });
        return (await r.json()).id;
      }, `${ghUrl}/alice/open`);
      // A new team from the dashboard.
      await page.goto(base + '/dashboard');
      await page.waitForSelector('#new-team:not([hidden])');
      await page.fill('#new-team-name', 'Graph people');
      await page.click('#new-team button[type="submit"]');
      await page.waitForURL(/\/dashboard\?team=/);
      await page.waitForSelector('#team:not([hidden])');
      assert.equal(await page.textContent('#team-name'), 'Graph people');
      const teamId = new URL(page.url()).searchParams.get('team');
      const shared = await page.evaluate(async ([t, id]) => (await fetch(`/api/teams/${t}/repos`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id }) })).status, [teamId, posted]);
      assert.equal(shared, 201);
      // The owner makes an invitation link.
      await page.click('#invite');
      await page.waitForSelector('#invite-url:not([hidden])');
      const link = await page.inputValue('#invite-url');
      assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${teamsPort}/dashboard\\?join=`));
      await screenshot(page, 'teams-owner-invite');
      // Bob (GitLab) signs in in another browser and opens the link.
      const bpage = await guest.newPage();
      bpage.on('pageerror', (e) => pageErrors.push(e.message));
      await bpage.goto(base + '/');
      await bpage.waitForSelector('#signin a.sign-in[data-forge="gitlab"]');
      await bpage.click('#signin a.sign-in[data-forge="gitlab"]');
      await bpage.waitForURL(base + '/');
      await bpage.goto(link);
      await bpage.waitForSelector('#join:not([hidden])');
      assert.match(await bpage.textContent('#join-note'), /Graph people/);
      await screenshot(bpage, 'teams-invitation');
      await bpage.click('#join-button');
      await bpage.waitForURL(new RegExp(`/dashboard\\?team=${teamId}$`));
      await bpage.waitForSelector('#team:not([hidden])');
      await bpage.waitForSelector(`#rows tr[data-id="${posted}"]`);
      const members = await bpage.$$eval('#members li', (lis) => lis.map((li) => li.dataset.login));
      assert.deepEqual(members, ['alice', 'bob']);
      assert.equal(await bpage.isVisible('#invite-box'), false, 'members cannot invite');
      await screenshot(bpage, 'teams-joined');
      // The owner sees who joined in the team's activity.
      await page.reload();
      await page.waitForSelector('#audit-box:not([hidden])');
      await page.click('#audit-box summary');
      await page.waitForSelector('#audit li[data-action="member.joined"]');
      assert.match(await page.textContent('#audit li[data-action="member.joined"]'), /@bob/);
      await screenshot(page, 'teams-activity');
      // The link worked once.
      const again = await bpage.evaluate(async (l) => (await fetch(`/api/teams/join/${new URL(l).searchParams.get('join')}`, { method: 'POST' })).status, link);
      assert.equal(again, 410);
    } finally {
      await owner.close();
      await guest.close();
    }
  });

  await check('accounts: sign in with GitLab, connect Bitbucket, pick and open a private repository from each forge', async () => {
    // Fake GitLab (carol reads team/app, private) and Bitbucket (carol-bb reads ws/tool, private).
    const forgeRoot = (name) => path.join(work, `forge-${name}`);
    mkdirSync(path.join(forgeRoot('gl'), 'team'), { recursive: true });
    mkdirSync(path.join(forgeRoot('bb'), 'ws'), { recursive: true });
    renameSync(fixture('linear', 'gl-app'), path.join(forgeRoot('gl'), 'team', 'app'));
    renameSync(fixture('merges', 'bb-tool'), path.join(forgeRoot('bb'), 'ws', 'tool'));
    const forgesPort = await new Promise((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const startFake = async (args) => {
      const fake = spawn(path.join(root, 'target/debug/fake-forge'), args, { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(fake);
      return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('the fake forge did not start')), 10000);
        fake.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
          if (m) { clearTimeout(timer); resolve(m[0]); }
        });
      });
    };
    const glUrl = await startFake(['gitlab', 'gl-browser', 'gl-browser-secret', forgeRoot('gl'), 'carol',
      'user:31:carol:Carol Ann', 'repo:team/app:private:carol:carol']);
    const bbUrl = await startFake(['bitbucket', 'bb-browser', 'bb-browser-secret', forgeRoot('bb'), 'carol-bb',
      'user:{0c0c0c0c-0000-4000-8000-0000000carol}:carol-bb:Carol on Bitbucket', 'repo:ws/tool:private:carol-bb:carol-bb',
      `consumer:http://127.0.0.1:${forgesPort}/auth/bitbucket/callback:account repository`]);
    const base = await serve(null, ['serve', '--port', String(forgesPort), '--data-dir', path.join(work, 'forges-data'), '--allowed-hosts', '127.0.0.1'], {
      GITLAB_CLIENT_ID: 'gl-browser',
      GITLAB_CLIENT_SECRET: 'gl-browser-secret',
      GITVISTA_GITLAB_URL: glUrl,
      BITBUCKET_CLIENT_ID: 'bb-browser',
      BITBUCKET_CLIENT_SECRET: 'bb-browser-secret',
      GITVISTA_BITBUCKET_URL: bbUrl,
      GITVISTA_BITBUCKET_API_URL: bbUrl,
      GITVISTA_PUBLIC_URL: `http://127.0.0.1:${forgesPort}`,
      GITVISTA_JWT_SECRET: 'browser-jwt-secret-0123456789abcdef0123',
      GITVISTA_ENCRYPTION_KEY: '0707070707070707070707070707070707070707070707070707070707070707',
    });
    const browser = await launchBrowser({ width: 1280, height: 800 });
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      // Signed out: one sign-in button per configured forge, and no GitHub.
      await page.goto(base + '/');
      await page.waitForSelector('#signin-box:not([hidden])');
      await page.waitForSelector('#signin a.sign-in');
      const offered = await page.$$eval('#signin a.sign-in', (as) => as.map((a) => a.textContent));
      assert.deepEqual(offered, ['Sign in with GitLab', 'Sign in with Bitbucket']);
      await screenshot(page, 'forges-landing-signed-out');
      // Through GitLab's authorize page and back: her GitLab projects.
      await page.click('#signin a.sign-in[data-forge="gitlab"]');
      await page.waitForURL(base + '/');
      await page.waitForSelector('#yours[data-ready="true"]');
      assert.equal(await page.textContent('#yours-title'), 'Your repositories on GitLab');
      assert.deepEqual(await page.$$eval('#picker li', (lis) => lis.map((li) => li.dataset.name)), ['team/app']);
      // Connecting Bitbucket from the account menu keeps her signed in.
      await page.click('#account-button');
      await page.waitForSelector('#account-menu:not([hidden])');
      assert.match(await page.textContent('#connections'), /GitLab: @carol/);
      await page.click('#connections a.connect[data-forge="bitbucket"]');
      await page.waitForURL(base + '/dashboard');
      await page.goto(base + '/');
      await page.waitForSelector('#picker-forges:not([hidden])');
      await page.click('#picker-forges button[data-forge="bitbucket"]');
      await page.waitForFunction(() => document.querySelector('#picker li')?.dataset.name === 'ws/tool');
      assert.equal(await page.textContent('#yours-title'), 'Your repositories on Bitbucket');
      await page.click('#account-button');
      await page.waitForSelector('#account-menu:not([hidden])');
      assert.match(await page.textContent('#connections'), /Bitbucket: @carol-bb/);
      await screenshot(page, 'forges-two-linked');
      await page.keyboard.press('Escape');
      // One click tracks the private Bitbucket repository (cloned with her Bitbucket token) and
      // opens its graph.
      await page.click('#picker li[data-name="ws/tool"] button.track');
      await page.waitForURL(/\/r\/[0-9a-f]{16}$/);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
      await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5);
      const rows = await visibleRows(page);
      const tool = path.join(forgeRoot('bb'), 'ws', 'tool');
      assert.ok(rows.some((r) => r.hash === git(tool, 'rev-parse', 'HEAD')), 'its HEAD is drawn');
      await screenshot(page, 'forges-bitbucket-graph');
    } finally {
      await browser.close();
    }
  });

  await check('accounts: sign in with GitHub, pick a private repository, its graph, the dashboard, sign out', async () => {
    // The fake GitHub (testkit) with alice, who may read alice/secret (private) and alice/open.
    const ghRoot = path.join(work, 'github');
    mkdirSync(path.join(ghRoot, 'alice'), { recursive: true });
    renameSync(fixture('linear', 'gh-secret'), path.join(ghRoot, 'alice', 'secret'));
    renameSync(fixture('merges', 'gh-open'), path.join(ghRoot, 'alice', 'open'));
    const fake = spawn(path.join(root, 'target/debug/fake-github'), ['Iv1.browser', 'browser-client-secret', ghRoot, 'alice',
      'user:1:alice:Alice Liddell', 'repo:alice/secret:private:alice', 'repo:alice/open:public:alice'], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(fake);
    const ghUrl = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('the fake GitHub did not start')), 10000);
      fake.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
        if (m) { clearTimeout(timer); resolve(m[0]); }
      });
    });
    const accountsPort = await new Promise((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const hookSecret = 'browser-webhook-secret-for-accounts';
    const base = await serve(null, ['serve', '--port', String(accountsPort), '--data-dir', path.join(work, 'accounts-data'), '--allowed-hosts', '127.0.0.1'], {
      GITHUB_CLIENT_ID: 'Iv1.browser',
      GITHUB_CLIENT_SECRET: 'browser-client-secret',
      GITVISTA_PUBLIC_URL: `http://127.0.0.1:${accountsPort}`,
      GITVISTA_GITHUB_WEBHOOK_SECRET: hookSecret,
      GITVISTA_JWT_SECRET: 'browser-jwt-secret-0123456789abcdef0123',
      GITVISTA_ENCRYPTION_KEY: '0707070707070707070707070707070707070707070707070707070707070707',
      GITVISTA_GITHUB_URL: ghUrl,
      GITVISTA_GITHUB_API_URL: ghUrl,
      GITVISTA_FREE_REPOS: '5',
    });
    const browser = await launchBrowser({ width: 1280, height: 800 });
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      // Signed out: the landing page offers sign-in beside the URL box.
      await page.goto(base + '/');
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('#signin-box:not([hidden])');
      await page.waitForSelector('#top a.sign-in');
      assert.equal(await page.locator('#top a.sign-in').count(), 1, 'the header offers sign-in with the one forge configured');
      assert.equal(await page.isHidden('#yours'), true, 'no picker signed out');
      await screenshot(page, 'accounts-landing-signed-out');
      // Through GitHub's authorize page and back.
      await page.click('#signin a.sign-in[data-forge="github"]');
      await page.waitForURL(base + '/');
      await page.waitForSelector('#yours[data-ready="true"]');
      assert.match(await page.textContent('#account-button'), /alice/);
      assert.match(await page.textContent('#account-button'), /0\/5/);
      const names = await page.$$eval('#picker li', (lis) => lis.map((li) => li.dataset.name));
      assert.deepEqual(names.sort(), ['alice/open', 'alice/secret']);
      assert.match(await page.textContent('#picker li[data-name="alice/secret"]'), /private/);
      await screenshot(page, 'accounts-landing-signed-in');
      // The picker filters by name.
      await page.fill('#picker-q', 'sec');
      await page.waitForFunction(() => document.querySelectorAll('#picker li').length === 1);
      await screenshot(page, 'accounts-picker');
      // One click tracks the private repository and opens its graph.
      await page.click('#picker li[data-name="alice/secret"] button.track');
      await page.waitForURL(/\/r\/[0-9a-f]{16}$/);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
      await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5);
      const rows = await visibleRows(page);
      const secret = path.join(ghRoot, 'alice', 'secret');
      assert.ok(rows.some((r) => r.hash === git(secret, 'rev-parse', 'HEAD')), 'its HEAD is drawn');
      await page.waitForSelector('#account-button');
      await screenshot(page, 'accounts-private-graph');
      // The dashboard: what she tracks, marked private, with Stop tracking.
      await page.goto(base + '/dashboard');
      await page.waitForSelector('#rows tr[data-id] .state-badge.ready');
      assert.match(await page.textContent('#rows tr[data-id]'), /private/);
      assert.equal(await page.locator('#rows button.untrack').count(), 1);
      assert.match(await page.textContent('#who'), /1 of the 5/);
      await page.click('#account-button');
      await page.waitForSelector('#account-menu:not([hidden])');
      assert.match(await page.textContent('#plan'), /Free plan · 1 of 5 repositories/);
      assert.match(await page.textContent('#rows tr[data-id]'), /polled every 30 s/);
      await screenshot(page, 'accounts-dashboard');
      await page.keyboard.press('Escape');
      // The GitHub App's hook answers a ping for it: live by webhook from then on.
      const ping = JSON.stringify({ zen: 'Speak like a human.', repository: { full_name: 'alice/secret', clone_url: `${ghUrl}/alice/secret.git` } });
      const pinged = await fetch(`${base}/webhooks/github`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': 'browser-ping', 'X-Hub-Signature-256': 'sha256=' + createHmac('sha256', hookSecret).update(ping).digest('hex') },
        body: ping,
      });
      assert.equal(pinged.status, 200);
      // And a repository on a host no forge integration knows: its generic hook to set up.
      const added = await page.evaluate(async (url) => (await fetch('/api/repos', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url }) })).status, `git://127.0.0.1:${port}/merges.git`);
      assert.equal(added, 201);
      // The dashboard shows states as they were when it loaded: look again until both are ready.
      for (let i = 0; ; i += 1) {
        await page.reload();
        await page.waitForSelector('body[data-ready="true"]');
        if (await page.locator('#rows tr[data-id] .state-badge.ready').count() === 2) break;
        assert.ok(i < 60, 'the second repository was cloned');
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.match(await page.textContent('#rows'), /live by webhook/);
      await page.click('#rows .hook-setup summary');
      const hookUrl = await page.inputValue('#rows .hook-url');
      assert.match(hookUrl, new RegExp(`^http://127\\.0\\.0\\.1:${accountsPort}/webhooks/generic/[0-9a-f]{16}$`));
      assert.match(await page.inputValue('#rows .hook-secret'), /^[0-9a-f]{64}$/);
      await screenshot(page, 'accounts-dashboard-webhooks');
      // Another browser, not signed in, finds nothing at the same address.
      const other = await launchBrowser({ width: 1280, height: 800 });
      const opage = await other.newPage();
      const id = await page.getAttribute('#rows tr[data-id]:has(.private-badge)', 'data-id');
      await opage.goto(`${base}/r/${id}`);
      await opage.waitForSelector('#state:not([hidden])');
      assert.match(await opage.textContent('#state'), /Repository not found/);
      await screenshot(opage, 'accounts-private-graph-signed-out');
      await other.close();
      // Signing out: back on the landing page, signed out; the graph is gone for this browser.
      await page.click('#account-button');
      await page.waitForSelector('#account-menu:not([hidden])');
      await page.click('#sign-out');
      await page.waitForURL(base + '/');
      await page.waitForSelector('#signin-box:not([hidden])');
      assert.equal(await page.evaluate(async (rid) => (await fetch(`/api/repos/${rid}/status`)).status, id), 404);
    } finally {
      await browser.close();
    }
  });
  await parityChecks({ check, serve, fixture, git, screenshot, openPage, context });
  await insightsChecks({ check, serve, fixture, git, screenshot, context });
  await reviewChecks({ check, serve, fixture, git, screenshot, openPage, context });
  await tourChecks({ check, serve, fixture, git, screenshot, context });
  await streamingChecks({ check, serve, git, gitEnv, screenshot, context, remotes, port, visibleRows, work, servers });
} finally {
  await context.close();
  for (const s of servers) s.kill();
  rmSync(work, { recursive: true, force: true });
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
}

const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${path.relative(root, artifacts)}/`);
process.exit(failed.length ? 1 : 0);
