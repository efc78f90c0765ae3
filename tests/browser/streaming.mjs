// Browser checks of a history shown before all of it is read, shaped like git/git's: a default
// branch (`master`) with newer integration branches above it (`next`, `seen`, hundreds of merges
// of topics) and an orphan branch newer still (`todo`). Hosted: streamed from the remote slowly
// enough that the first rows come before the rest. Local: a long one, whose first screen of
// newest commits comes before the whole load. Run from run.mjs, with its helpers.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/** A fast-import stream of the git/git-shaped history with `masterCommits` on master; answers
 * it with the number of commits. */
function gitLikeHistory(masterCommits = 3000) {
  const parts = [];
  let mark = 0;
  let time = 1500000000;
  const body = 'Explain the change in a paragraph, as the project asks of every commit. '.repeat(4);
  const commit = (ref, subject, { from, merge } = {}) => {
    mark++;
    time += 60;
    const msg = `${subject}\n\n${body}\n`;
    parts.push(`commit ${ref}\nmark :${mark}\ncommitter A U Thor <a@example.com> ${time} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`);
    if (from) parts.push(`from ${from}\n`);
    if (merge) parts.push(`merge ${merge}\n`);
    const file = `version ${mark}\n`;
    parts.push(`M 100644 inline f${mark % 50}.txt\ndata ${file.length}\n${file}\n`);
    return `:${mark}`;
  };
  let master = null;
  for (let k = 1; k <= masterCommits; k++) master = commit('refs/heads/master', `master change ${k}`);
  // Topics forked from master, merged into next (the first 40) and seen (all of them).
  const topics = [];
  for (let i = 0; i < 300; i++) {
    parts.push(`reset refs/heads/tmp\nfrom ${master}\n\n`);
    commit('refs/heads/tmp', `topic ${i}: first step`);
    topics.push(commit('refs/heads/tmp', `topic ${i}: second step`));
  }
  parts.push(`reset refs/heads/next\nfrom ${master}\n\n`);
  let next = master;
  for (let i = 0; i < 40; i++) next = commit('refs/heads/next', `Merge branch 'topic-${i}' into next`, { from: next, merge: topics[i] });
  parts.push(`reset refs/heads/seen\nfrom ${next}\n\n`);
  let seen = next;
  for (let i = 0; i < 300; i++) seen = commit('refs/heads/seen', `Merge branch 'topic-${i}' into seen`, { from: seen, merge: topics[i] });
  // todo: an orphan branch of its own, the newest of all.
  for (let k = 1; k <= 400; k++) commit('refs/heads/todo', `todo ${k}`);
  return { stream: parts.join(''), commits: mark };
}

export async function streamingChecks({ check, serve, git, gitEnv, screenshot, context, remotes, port, visibleRows, work, servers }) {
  await check('hosted: a first visit of a git/git-shaped history opens at the default branch with the repository name, draws no false roots, and stays put as the rest arrives', async () => {
    const remote = path.join(remotes, 'gitlike.git');
    git(remotes, 'init', '-q', '--bare', '-b', 'master', 'gitlike.git');
    const { stream } = gitLikeHistory();
    execFileSync('git', ['fast-import', '--quiet'], { cwd: remote, env: gitEnv, input: stream, maxBuffer: 1 << 30 });
    git(remote, 'update-ref', '-d', 'refs/heads/tmp');
    git(remote, 'config', 'uploadpack.allowFilter', 'true');
    git(remote, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
    const total = Number(git(remote, 'rev-list', '--all', '--count'));
    const masterTip = git(remote, 'rev-parse', 'master');
    // The stream (the first connection) comes slowly, so the first rows
    // are shown before the rest; the clone (every later connection) waits 4 s.
    let connections = 0;
    const proxy = net.createServer((client) => {
      const first = connections++ === 0;
      setTimeout(() => {
        const upstream = net.connect(port, '127.0.0.1');
        client.pipe(upstream);
        if (first) {
          // 4 KiB every 25 ms: about 160 KiB/s.
          upstream.on('data', async (chunk) => {
            upstream.pause();
            for (let at = 0; at < chunk.length; at += 4096) {
              client.write(chunk.subarray(at, at + 4096));
              await new Promise((r) => setTimeout(r, 25));
            }
            upstream.resume();
          });
          upstream.on('end', () => client.end());
        } else {
          upstream.pipe(client);
        }
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      }, first ? 0 : 4000);
    });
    const proxyPort = await new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy.address().port)));
    servers.push({ kill: () => proxy.close() });
    const base = await serve(null, ['serve', '--port', '0', '--data-dir', path.join(work, 'gitlike-data'), '--allowed-hosts', '127.0.0.1']);
    const page = await context.newPage();
    await page.goto(base + '/');
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#url', `git://127.0.0.1:${proxyPort}/gitlike.git`);
    await page.click('#paste button');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5, null, { timeout: 30000 });
    await page.waitForSelector('body[data-ready="true"]');
    const id = new URL(page.url()).pathname.split('/').pop();
    const summary = await page.evaluate(async (rid) => (await fetch(`/api/repos/${rid}/repository`)).json(), id);
    assert.equal(summary.streaming, true, `the first rows came from the stream: ${JSON.stringify({ rows: summary.rows, streaming: summary.streaming })}`);
    assert.ok(summary.rows < total, `${summary.rows} of ${total} commits in the first batch`);
    // The repository's name, not its id, in the header and the tab; not "up to date" while
    // the clone runs.
    assert.equal(await page.textContent('#repo-name'), 'gitlike');
    assert.match(await page.title(), /gitlike/);
    const status = await page.evaluate(async (rid) => (await fetch(`/api/repos/${rid}/status`)).json(), id);
    if (status.state === 'cloning') assert.doesNotMatch(await page.textContent('#wt-status'), /up to date/);
    // The default branch's tip is on the first screen, though 1,340 newer commits of next,
    // seen and todo come before it.
    // The screen as it settles: the page holds every row the server has (a growth announced
    // and not yet applied would move it), and the rows on screen stay the same.
    const caughtUp = () => page.evaluate(async (rid) => {
      const s = await (await fetch(`/api/repos/${rid}/repository`)).json();
      return window.view.store.total === s.rows;
    }, id);
    const settled = async () => {
      let rows = await visibleRows(page);
      for (let i = 0; i < 40; i++) {
        await page.waitForTimeout(150);
        const again = await visibleRows(page);
        if (again.map((r) => r.hash).join() === rows.map((r) => r.hash).join() && await caughtUp()) break;
        rows = again;
      }
      return rows;
    };
    // The stream brings the 1,340 newer commits first, in batches as they come: wait until the
    // server has master's tip (a moment between two batches may look settled before it).
    for (let i = 0; ; i++) {
      const has = await page.evaluate(async (rid) => {
        const s = await (await fetch(`/api/repos/${rid}/repository`)).json();
        const m = s.refs.find((r) => r.name === 'refs/heads/master');
        return { row: m ? m.row : null, rows: s.rows };
      }, id);
      if (has.row != null) break;
      assert.ok(i < 600, `master's tip came within 60 s: ${JSON.stringify(has)}`);
      await page.waitForTimeout(100);
    }
    const first = await settled();
    const where = await page.evaluate(async (rid) => {
      const s = await (await fetch(`/api/repos/${rid}/repository`)).json();
      const m = s.refs.find((r) => r.name === 'refs/heads/master');
      return { topRow: window.view.top / window.view.rowH, held: window.view.store.total, rows: s.rows, streaming: s.streaming, masterRow: m && m.row, head: s.head };
    }, id);
    assert.ok(first.some((r) => r.hash === masterTip), `${JSON.stringify(where)} master's tip ${masterTip.slice(0, 8)} on the first screen: ${first.map((r) => r.text.slice(0, 30)).join(' | ')}`);
    // Only real roots are drawn as roots: a commit whose parents are still on their way (the
    // last rows of what has come) is not.
    const roots = await page.evaluate(async (rid) => {
      const s = await (await fetch(`/api/repos/${rid}/repository`)).json();
      const w = await (await fetch(`/api/repos/${rid}/graph?offset=${Math.max(0, s.rows - 100)}&limit=100`)).json();
      return {
        streaming: s.streaming,
        roots: w.rows.filter((r) => r.root).map((r) => r.hash),
        cut: w.rows.filter((r) => !r.root && !r.edges.length).map((r) => r.hash),
      };
    }, id);
    // Still streaming: the last rows include commits whose parents have not come.
    if (roots.streaming) assert.ok(roots.cut.length > 0, 'a commit waiting for its parents among the last rows');
    for (const h of roots.cut) assert.ok(git(remote, 'rev-list', '--parents', '-1', h).split(' ').length > 1, `${h.slice(0, 8)} has parents`);
    for (const h of roots.roots) assert.equal(git(remote, 'rev-list', '--parents', '-1', h).split(' ').length, 1, `${h.slice(0, 8)} drawn as a root`);
    await screenshot(page, 'gitlike-first-screen');
    // The rest arrives, then the clone: the default branch's tip stays where it was on screen.
    const top = first[0].hash;
    // The page grows with the stream, before the clone: a page that came before the first rows
    // watched the clone's progress, and must now hear each growth as a viewer.
    let grewWhileStreaming = false;
    for (let i = 0; ; i++) {
      const s = await page.evaluate(async (rid) => {
        const r = await (await fetch(`/api/repos/${rid}/repository`)).json();
        return { rows: r.rows, streaming: r.streaming, held: window.view.store.total };
      }, id);
      if (s.streaming && s.held > where.held) grewWhileStreaming = true;
      if (s.rows === total && s.streaming === false) break;
      assert.ok(i < 600, `the clone took over 60 s: ${JSON.stringify({ rows: s.rows, streaming: s.streaming })}`);
      await page.waitForTimeout(100);
    }
    assert.ok(grewWhileStreaming, `the page held more than its first ${where.held} rows before the clone was in`);
    await page.waitForFunction(() => document.getElementById('history').hidden, null, { timeout: 30000 });
    await page.waitForTimeout(500);
    const after = await settled();
    const at = (rows) => rows.findIndex((r) => r.hash === masterTip);
    const now = await page.evaluate(() => ({ top: window.view.top / window.view.rowH, viewH: window.view.viewH, rowH: window.view.rowH }));
    assert.equal(at(after), at(first), `master's tip keeps its place on screen (the top row was ${top.slice(0, 8)}, is ${after[0].hash.slice(0, 8)}; at ${at(first)} then ${at(after)}; ${JSON.stringify(now)} ${JSON.stringify(where)})`);
    assert.equal(await page.textContent('#repo-name'), 'gitlike');
    await screenshot(page, 'gitlike-complete');
    await page.close();
  });

  await check('local: a long history opens on its newest commits at HEAD, answers a search from the whole, and the rest arrives without moving the screen', async () => {
    // 62,000 commits: the default threshold (50,000 objects) gives it a first screen, and the
    // whole load (seconds in the debug build) comes well after the page's first rows.
    const repo = path.join(work, 'long-gitlike.git');
    git(work, 'init', '-q', '--bare', '-b', 'master', 'long-gitlike.git');
    const { stream } = gitLikeHistory(60000);
    execFileSync('git', ['fast-import', '--quiet'], { cwd: repo, env: gitEnv, input: stream, maxBuffer: 1 << 30 });
    git(repo, 'update-ref', '-d', 'refs/heads/tmp');
    const total = Number(git(repo, 'rev-list', '--all', '--count'));
    const masterTip = git(repo, 'rev-parse', 'master');
    const root = git(repo, 'rev-list', '--max-parents=0', 'master');
    const base = await serve(repo);
    const page = await context.newPage();
    await page.goto(`${base}/r/local`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 5);
    const summary = await page.evaluate(async () => (await fetch('/api/repos/local/repository')).json());
    assert.equal(summary.streaming, true, `the first screen came before the whole load: ${JSON.stringify({ rows: summary.rows, streaming: summary.streaming })}`);
    assert.ok(summary.rows < total, `${summary.rows} of ${total} commits on the first screen`);
    assert.equal(await page.isVisible('#history'), true, 'the header says the history is still being read');
    assert.match(await page.textContent('#history'), /reading history/);
    const first = await visibleRows(page);
    const at = (rows) => rows.findIndex((r) => r.hash === masterTip);
    assert.ok(at(first) >= 0, `HEAD (master, below 1,340 newer commits) is on the first screen: ${first.map((r) => r.text.slice(0, 30)).join(' | ')}`);
    await screenshot(page, 'local-first-screen');
    // A search needs the whole history: asked now, its answer waits for it and finds the root.
    const found = await page.evaluate(async (h) => (await fetch(`/api/repos/local/search?q=hash:${h}`)).json(), root.slice(0, 12));
    assert.equal(found.total, 1, `the root commit found: ${JSON.stringify(found)}`);
    // The rest arrives as one growth: the page holds every row, the header note goes, and HEAD
    // stays where the reader saw it.
    await page.waitForFunction((n) => window.view.store.total === n, total, { timeout: 60000 });
    await page.waitForFunction(() => document.getElementById('history').hidden, null, { timeout: 30000 });
    let after = await visibleRows(page);
    for (let i = 0; i < 40 && at(after) !== at(first); i++) {
      await page.waitForTimeout(150);
      after = await visibleRows(page);
    }
    assert.equal(at(after), at(first), `master's tip keeps its place on screen (at ${at(first)}, then ${at(after)})`);
    await screenshot(page, 'local-whole-history');
    const whole = await page.evaluate(async () => (await fetch('/api/repos/local/repository')).json());
    assert.equal(whole.streaming, false);
    assert.equal(whole.rows, total);
    assert.equal(whole.historyIncomplete, false);
    await page.close();
  });
}
