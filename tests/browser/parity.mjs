// Browser checks of what the original GitVista had and a daily Git Graph user expects: the
// repository overview, the lifecycle of local work, people through the mailmap, and blame in
// git's three modes. Run from run.mjs, with its helpers.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/** A PNG `w` x `h` pixels of one colour (RGBA), built by hand: signature, IHDR, IDAT, IEND. */
function png(w, h, [r, g, b, a]) {
  const table = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const x of buf) c = table[(c ^ x) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4); sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 6;
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => [r, g, b, a]).flat())]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A commit's author date as the page writes it (local time, minutes). */
function execDate(git, repo, hash) {
  return git(repo, 'log', '-1', '--date=format-local:%Y-%m-%d %H:%M', '--format=%ad', hash);
}

/** Whose commits a blame's groups name, top to bottom, from git's porcelain blame. */
function groups(porcelain) {
  const lines = porcelain.split('\n').filter((l) => /^[0-9a-f]{40} \d+ \d+/.test(l)).map((l) => l.slice(0, 40));
  return lines.filter((h, i) => i === 0 || lines[i - 1] !== h);
}

export async function parityChecks({ check, serve, fixture, git, screenshot, openPage, context }) {
  const life = fixture('lifecycle');
  const lifeUrl = `${await serve(life)}/r/local`;

  await check('overview: the repository name opens its description, counts, recent tags and remotes as git has them; the tab names the branch', async () => {
    const page = await openPage(context, lifeUrl);
    await page.waitForFunction(() => document.title.startsWith('main'));
    assert.equal(await page.title(), 'main \u00b7 repo \u00b7 GitVista');
    await page.click('#repo-name');
    await page.waitForSelector('#sheet:not([hidden]) .sheet-counts');
    const text = await page.textContent('#sheet-body');
    assert.match(text, /A tool that shows history\./);
    const commits = Number(git(life, 'rev-list', '--all', '--count'));
    const branches = git(life, 'for-each-ref', 'refs/heads').split('\n').length;
    const tags = git(life, 'for-each-ref', 'refs/tags').split('\n').length;
    assert.equal(await page.textContent('.sheet-counts'), `${commits} commits · ${branches} branches · ${tags} tags · 2 remote branches`.replace('2 remote', `${git(life, 'for-each-ref', 'refs/remotes').split('\n').length} remote`));
    const shown = await page.$$eval('#sheet-body .sheet-list code', (c) => c.map((x) => x.textContent));
    const recent = git(life, 'for-each-ref', '--sort=-creatordate', '--count=5', '--format=%(refname:short)', 'refs/tags').split('\n');
    assert.deepEqual(shown.slice(0, 5), recent);
    assert.match(text, /https:\/\/example\.com\/team\/tool\.git/);
    assert.doesNotMatch(await page.content(), /s3cret/);
    assert.match(text, /origin\/main: 2 ahead, 3 behind/);
    await screenshot(page, 'overview');
    // The checked-out branch's badge is filled; another branch's at its commit is not.
    const fills = await page.evaluate(() => {
      const v = window.view;
      const c = document.getElementById('graph');
      const ratio = c.width / c.clientWidth;
      const at = (row) => {
        const y = Math.round((row * v.rowH - v.top + v.rowH / 2) * ratio);
        const x = Math.round((v.graphW + 5) * ratio);
        const d = c.getContext('2d').getImageData(x, y, 1, 1).data;
        return Math.max(d[0], d[1], d[2]) - Math.min(d[0], d[1], d[2]);
      };
      const rowOf = (hash) => [...document.querySelectorAll('#rows-a11y li')].find((li) => li.dataset.hash === hash)?.dataset.row;
      return { head: at(Number(rowOf(v.head))) };
    });
    assert.ok(fills.head > 80, `the checked-out branch's badge is filled (saturation ${fills.head})`);
    // A tag opens its commit; Esc closes the sheet.
    await page.click(`#sheet-body button:has(code:text-is("${recent[0]}"))`);
    await page.waitForFunction((h) => window.view.selectedHash === h, git(life, 'rev-parse', `${recent[0]}^{commit}`));
    await page.click('#repo-name');
    await page.waitForSelector('#sheet:not([hidden])');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#sheet', { state: 'hidden' });
    await page.close();
  });

  await check('lifecycle: the work-tree chip opens working, staged, not pushed and upstream zones as git has them; a file opens its diff', async () => {
    for (const [name, viewport, scheme] of [['lifecycle', { width: 1280, height: 800 }, 'light'], ['lifecycle-dark', { width: 1280, height: 800 }, 'dark'], ['lifecycle-phone', { width: 390, height: 844 }, 'light']]) {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(lifeUrl);
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('#wt-status:not([hidden])');
      assert.match(await page.textContent('#wt-status'), /1 staged · 1 modified · 1 untracked/);
      await page.click('#wt-status');
      await page.waitForSelector('#sheet:not([hidden]) .zones');
      const zones = await page.$$eval('.zone h4', (h) => h.map((x) => x.textContent));
      assert.deepEqual(zones, ['Working tree (2)', 'Staged (1)', 'Not pushed (2)', 'On origin/main, not here (3)']);
      const pushed = await page.$$eval('.zone:nth-child(3) .sheet-commit code', (c) => c.map((x) => x.textContent));
      assert.deepEqual(pushed, git(life, 'rev-list', '@{u}..HEAD').split('\n').map((h) => h.slice(0, 8)));
      const merged = await page.$$eval('.zone:nth-child(4) .sheet-commit code', (c) => c.map((x) => x.textContent));
      assert.deepEqual(merged, git(life, 'rev-list', 'HEAD..@{u}').split('\n').map((h) => h.slice(0, 8)));
      await page.click('.zone:nth-child(1) .sheet-file:has-text("a.txt")');
      await page.waitForSelector('.sheet-diff table.diff');
      const added = await page.$$eval('.sheet-diff tr.added td.code', (t) => t.map((x) => x.textContent.replace(/^\+/, '')));
      assert.deepEqual(added, git(life, 'diff', '--', 'a.txt').split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++')).map((l) => l.slice(1)));
      await screenshot(page, name);
      await page.close();
    }
  });

  const mm = fixture('mailmap');
  const mmUrl = `${await serve(mm)}/r/local`;
  await check('mailmap: rows and details show people as git log --format=%aN names them', async () => {
    const applied = git(mm, 'log', '-1', '--format=%H', '--grep=applied by rene');
    const page = await openPage(context, `${mmUrl}?commit=${applied}`);
    await page.waitForSelector('#panel:not([hidden]) h2');
    const rows = await page.$$eval('#rows-a11y li', (lis) => lis.map((li) => li.textContent).join('\n'));
    for (const name of git(mm, 'log', '--all', '--format=%aN').split('\n')) assert.ok(rows.includes(name), name);
    assert.ok(!rows.includes('Rene Scharfe'));
    const panel = await page.textContent('#panel-commit');
    assert.match(panel, /René Scharfe/);
    await screenshot(page, 'mailmap');
    await page.close();
  });

  const bl = fixture('blame');
  const blUrl = `${await serve(bl)}/r/local`;
  await check('blame: plain git blame, looking through .git-blame-ignore-revs; the First parent and Ignore revisions toggles follow git', async () => {
    const head = git(bl, 'rev-parse', 'HEAD');
    const page = await openPage(context, `${blUrl}?commit=${head}&tab=files&file=src/core.rs&blame=1`);
    const who = async () => {
      await page.waitForSelector('#panel-files table.blob td.who');
      return page.$$eval('#panel-files table.blob td.who button', (b) => b.map((x) => x.title));
    };
    // Waits (bounded) for the groups to become `expected`; the assertion after it shows any
    // difference.
    const settle = (expected) => page.waitForFunction((exp) => JSON.stringify([...document.querySelectorAll('#panel-files table.blob td.who button')].map((b) => b.title)) === JSON.stringify(exp), expected, { timeout: 10000 }).catch(() => {});
    let expected = groups(git(bl, 'blame', '--porcelain', '--ignore-revs-file', '.git-blame-ignore-revs', head, '--', 'src/core.rs'));
    await settle(expected);
    assert.deepEqual(await who(), expected);
    assert.ok(await page.locator('#panel-files .blame-mark').count() > 0, 'looked-through lines are marked');
    await screenshot(page, 'blame-ignore-revs');
    await page.click('#panel-files .blame-toggle:has-text("Ignore revisions") input');
    expected = groups(git(bl, 'blame', '--porcelain', head, '--', 'src/core.rs'));
    await settle(expected);
    assert.deepEqual(await who(), expected);
    await page.click('#panel-files .blame-toggle:has-text("First parent") input');
    expected = groups(git(bl, 'blame', '--porcelain', '--first-parent', head, '--', 'src/core.rs'));
    await settle(expected);
    assert.deepEqual(await who(), expected);
    await screenshot(page, 'blame-first-parent');
    // Remembered, and set back for the other checks.
    await page.click('#panel-files .blame-toggle:has-text("First parent") input');
    await page.click('#panel-files .blame-toggle:has-text("Ignore revisions") input');
    await page.close();
  });
}

/** The Insights page: figures as git counts them, every chart drawn, and an author or a hotspot
 * opening the graph with only its commits. */
export async function insightsChecks({ check, serve, fixture, git, screenshot, context }) {
  const repo = fixture('mailmap', 'mailmap-insights');
  const base = await serve(repo);
  await check('insights: the Insights page counts what git counts, draws every chart, and an author or a hotspot filters the graph', async () => {
    for (const [name, viewport, scheme] of [['insights', { width: 1280, height: 900 }, 'light'], ['insights-dark', { width: 1280, height: 900 }, 'dark'], ['insights-phone', { width: 390, height: 844 }, 'light']]) {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${base}/r/local`);
      await page.waitForSelector('body[data-ready="true"]');
      if (viewport.width > 500) {
        await page.click('#insights-link');
      } else {
        await page.goto(`${base}/r/local/analytics`);
      }
      await page.waitForSelector('body[data-ready="true"] .stat-card');
      const cards = await page.$$eval('.stat-card', (c) => c.map((x) => x.querySelector('.stat-value').textContent));
      assert.equal(cards[0], git(repo, 'rev-list', '--all', '--no-merges', '--count'));
      const shortlog = git(repo, 'shortlog', '-sn', '--no-merges', '--all').split('\n').map((l) => l.trim().split('\t').slice(1).join('\t'));
      const shown = await page.$$eval('#authors li a', (a) => a.map((x) => x.textContent));
      assert.deepEqual([...shown].sort(), [...shortlog].sort());
      assert.ok(await page.locator('#velocity svg rect.bar').count() > 0);
      assert.equal(await page.locator('#heatmap svg rect.heat').count(), 7 * 24);
      assert.ok(await page.locator('#hotspots tbody tr').count() > 0);
      await screenshot(page, name);
      await page.close();
    }
    // An author opens the graph with only their commits, as `git log --author` finds them.
    const page = await context.newPage();
    await page.goto(`${base}/r/local/analytics`);
    await page.waitForSelector('body[data-ready="true"] #authors li a');
    await page.click('#authors li a:text-is("René Scharfe")');
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction(() => /\d+ of \d+|\d+ hits?|\d+ match/.test(document.getElementById('search-count').textContent));
    const theirs = git(repo, 'log', '--all', '-i', '--author=rene@example.org', '--format=%H').split('\n');
    // The rows' list is rebuilt when the view stops, after the filter's first draw (a CI run
    // read it before): wait for it, bounded, then check.
    await page.waitForFunction((hs) => {
      const shown = new Set([...document.querySelectorAll('#rows-a11y li')].map((li) => li.dataset.hash));
      return hs.every((h) => shown.has(h));
    }, theirs, { timeout: 10000 }).catch(() => {});
    const rows = await page.$$eval('#rows-a11y li', (lis) => lis.map((li) => li.dataset.hash));
    for (const h of theirs) assert.ok(rows.includes(h), h);
    await screenshot(page, 'insights-author-filter');
    await page.close();
  });
}

/** The review's defects, each checked against git: renames named as `git diff --stat` names
 * them, side by side within the panel, lines between hunks opened per gap, an empty search that
 * says so, the row menu on an unlabeled row, branches containing a commit, the time window, and
 * the phone's View menu. */
export async function reviewChecks({ check, serve, fixture, git, screenshot, openPage, context }) {
  const repo = fixture('renames', 'renames-review');
  const base = await serve(repo);
  const url = `${base}/r/local`;

  await check('review: renames read as git diff --stat writes them; side by side fits the panel; hidden lines open 20 at a time per gap', async () => {
    const move = git(repo, 'rev-list', '-1', '--grep=Move src/doc/', 'HEAD');
    const page = await openPage(context, `${url}?commit=${move}`);
    // Unified first, whatever an earlier check left.
    await page.evaluate(() => localStorage.removeItem('gitvista.diffLayout'));
    await page.waitForSelector('#panel-commit .files');
    const shown = await page.$$eval('#panel-commit .file .path', (p) => p.map((x) => x.textContent));
    const stat = git(repo, 'show', '--stat=1000,1000', '-M', '--format=', move).split('\n')
      .filter((l) => l.includes('|')).map((l) => l.split('|')[0].trim());
    for (const name of stat.filter((n) => n.includes(' => '))) assert.ok(shown.includes(name), `${name} in ${shown}`);
    // A change in the middle of a 40-line file: the lines above and below it open on request.
    await page.locator('#panel-commit .file', { hasText: 'setup.md' }).click();
    await page.waitForSelector('#panel-commit table.diff tr.gap');
    const before = await page.locator('#panel-commit table.diff tr:not(.gap):not(.hunk)').count();
    const gap = page.locator('#panel-commit table.diff tr.gap button').nth(1);
    assert.match(await gap.textContent(), /Show \d+ of \d+ hidden lines?/);
    await gap.click();
    await page.waitForFunction((n) => document.querySelectorAll('#panel-commit table.diff tr:not(.gap):not(.hunk)').length > n
      || document.querySelector('#panel-commit table.diff td.error'), before);
    assert.equal(await page.locator('#panel-commit table.diff td.error').count(), 0, 'opening the gap failed');
    const after = await page.locator('#panel-commit table.diff tr:not(.gap):not(.hunk)').count();
    assert.ok(after - before > 0 && after - before <= 20, `${after - before} lines opened`);
    const file = git(repo, 'show', `${move}:doc/setup.md`).split('\n');
    const texts = await page.$$eval('#panel-commit table.diff tr.context td.code', (t) => t.map((x) => x.textContent.slice(1)));
    for (const t of texts) assert.ok(file.includes(t), t);
    await screenshot(page, 'diff-gap-opened');
    // Side by side in the normal panel: both halves inside it.
    await page.click('#panel-commit .diff-layout');
    await page.waitForSelector('#panel-commit table.diff.split');
    const panel = await page.locator('#panel').boundingBox();
    const cells = await page.$$eval('#panel-commit table.diff.split tr.pair td.code', (c) => c.map((x) => { const b = x.getBoundingClientRect(); return [b.left, b.right]; }));
    for (const [left, right] of cells) assert.ok(left >= panel.x - 1 && right <= panel.x + panel.width + 1, `a cell at ${left}-${right} outside ${panel.x}-${panel.x + panel.width}`);
    await screenshot(page, 'diff-side-by-side-fits');
    await page.evaluate(() => localStorage.removeItem('gitvista.diffLayout'));
    await page.close();
  });

  await check('review: with the details open the subject keeps its room: author and date narrow, then go', async () => {
    const head = git(repo, 'rev-parse', 'HEAD');
    const page = await openPage(context, `${url}?commit=${head}`);
    await page.waitForSelector('#panel:not([hidden]) h2');
    const m = await page.evaluate(() => {
      const v = window.view;
      const { hashW, dateW, authorW } = v.textColumns();
      const textEnd = v.viewW - 8 - hashW - dateW - authorW - 8;
      return { W: v.viewW, subject: textEnd - v.maxGraphW(), dateW, authorW };
    });
    assert.ok(m.subject >= Math.max(200, m.W * 0.3) - 1, `the subject keeps ${m.subject} px of ${m.W} (author ${m.authorW}, date ${m.dateW})`);
    await screenshot(page, 'subject-room-with-details');
    await page.close();
  });

  await check('review: Back from a followed blame line returns to that line, scrolled into view', async () => {
    const head = git(repo, 'rev-parse', 'HEAD');
    const page = await openPage(context, `${url}?commit=${head}&tab=files&file=doc/faq.md&blame=1`);
    await page.waitForSelector('#panel-files table.blob td.who button');
    // The last group's link: far down the file.
    const links = page.locator('#panel-files table.blob td.who button');
    const last = links.nth((await links.count()) - 1);
    const target = await last.getAttribute('title');
    const line = Number(await last.evaluate((b) => b.closest('tr').querySelector('td.ln').textContent.replace(/\D/g, '')));
    await last.scrollIntoViewIfNeeded();
    await last.click();
    await page.waitForFunction((h) => window.view.selectedHash === h, target);
    await page.goBack();
    await page.waitForSelector('#panel-files table.blob tr.blame-target');
    const shown = await page.$eval('#panel-files table.blob tr.blame-target td.ln', (td) => Number(td.textContent.replace(/\D/g, '')));
    assert.equal(shown, line);
    const box = await page.locator('#panel-files table.blob tr.blame-target').boundingBox();
    const panel = await page.locator('#panel').boundingBox();
    assert.ok(box.y >= panel.y && box.y + box.height <= panel.y + panel.height, 'the line is in view');
    await screenshot(page, 'blame-back-to-line');
    await page.close();
  });

  await check('compare: ctrl-click a second row lists the files git diff A B lists and the commits of A..B and B..A; the permalink reopens it', async () => {
    const a = git(repo, 'rev-parse', 'HEAD~3');
    const b = git(repo, 'rev-parse', 'HEAD');
    const page = await openPage(context, `${url}?commit=${a}`);
    await page.waitForFunction((h) => window.view.selectedHash === h, a);
    const row = await page.evaluate((h) => [...document.querySelectorAll('#rows-a11y li')].find((li) => li.dataset.hash === h)?.dataset.row, b);
    assert.ok(row != null, 'B is on screen');
    const y = await page.evaluate((r) => Number(r) * window.view.rowH - window.view.top + window.view.rowH / 2, row);
    const box = await page.locator('#graph').boundingBox();
    await page.keyboard.down('Control');
    await page.mouse.click(box.x + box.width / 2, box.y + y);
    await page.keyboard.up('Control');
    await page.waitForFunction(() => new URLSearchParams(location.search).has('compare'));
    assert.equal(await page.evaluate(() => new URLSearchParams(location.search).get('compare')), `${a}...${b}`);
    await page.waitForSelector('#panel-commit h2:has-text("Comparing") ~ .files .file');
    const check = async () => {
      const files = await page.$$eval('#panel-commit .files .file .path', (p) => p.map((x) => x.textContent));
      const theirs = git(repo, 'diff', '--stat=1000,1000', '-M', a, b).split('\n').filter((l) => l.includes('|')).map((l) => l.split('|')[0].trim());
      assert.deepEqual([...files].sort(), [...theirs].sort());
      const links = await page.$$eval('#panel-commit .compare-commits button.link', (l) => l.map((x) => x.title));
      const expected = [...git(repo, 'rev-list', `${a}..${b}`).split('\n'), ...git(repo, 'rev-list', `${b}..${a}`).split('\n')].filter(Boolean);
      assert.deepEqual(links, expected);
    };
    await check();
    await screenshot(page, 'compare');
    await page.reload();
    await page.waitForSelector('#panel-commit h2:has-text("Comparing") ~ .files .file');
    await check();
    await page.close();
  });

  await check('review: an empty search with only matches says so; the row menu has no stray text and shows the branches containing a commit', async () => {
    const page = await context.newPage();
    await page.goto(`${url}?q=nosuchwordanywhere&match=nosuchwordanywhere`);
    await page.waitForSelector('#state:not([hidden])');
    const state = await page.textContent('#state');
    assert.match(state, /No commit matches/);
    assert.match(state, /nosuchwordanywhere/);
    assert.doesNotMatch(state, /no commits/i);
    await screenshot(page, 'empty-only-matches');
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    // The rows' list follows the first draw: read it once it is there (reading it at once
    // found it empty in a CI run).
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
    // A row with no badge: its menu.
    const rows = await page.$$eval('#rows-a11y li', (lis) => lis.map((li) => ({ row: Number(li.dataset.row), hash: li.dataset.hash })));
    const bare = rows.find((r) => !git(repo, 'for-each-ref', '--points-at', r.hash, '--format=%(refname)'));
    assert.ok(bare, `a row without a ref among ${rows.length} rows`);
    const y = await page.evaluate((r) => r * window.view.rowH - window.view.top + window.view.rowH / 2, bare.row);
    const box = await page.locator('#graph').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + y, { button: 'right' });
    await page.waitForSelector('#row-menu:not([hidden])');
    const menu = await page.textContent('#row-menu');
    assert.doesNotMatch(menu, /null/);
    await page.click('#row-menu button:has-text("branches containing")');
    await page.waitForFunction(() => new URLSearchParams(location.search).has('contains'));
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
    const contains = git(repo, 'branch', '-a', '--contains', bare.hash, '--format=%(refname)').split('\n').filter(Boolean);
    const summary = await page.evaluate(async (h) => (await fetch(`/api/repos/local/repository?contains=${h}`)).json(), bare.hash);
    const shownRefs = summary.refs.filter((r) => r.kind === 'branch' || r.kind === 'remote').map((r) => r.name).sort();
    assert.deepEqual(shownRefs, contains.sort());
    assert.match(await page.textContent('#only-name'), /branches containing/);
    await screenshot(page, 'branches-containing');
    await page.close();
  });

  // A history longer than a screen.
  const tall = fixture('linear', 'linear-tall');
  for (let i = 0; i < 150; i++) git(tall, 'commit', '-q', '--allow-empty', '-m', `step ${i}`);
  const tallUrl = `${await serve(tall)}/r/local`;
  await check('review: zooming after Home keeps the top of the graph; ctrl+wheel keeps the row under the pointer; a hovered row is lit and its date says when exactly', async () => {
    const page = await openPage(context, tallUrl);
    // Select a row, then go to the top: the selection is off screen.
    await page.evaluate(() => { window.view.select(Math.min(window.view.store.total - 1, 60), { scroll: true }); });
    await page.keyboard.press('Home');
    await page.waitForFunction(() => window.view.top === 0);
    assert.ok(await page.evaluate(() => window.view.selected * window.view.rowH > window.view.viewH), 'the selection is off screen');
    await page.keyboard.press('-');
    assert.equal(await page.evaluate(() => window.view.top), 0, 'zoom out stays at the top');
    await page.keyboard.press('+');
    assert.equal(await page.evaluate(() => window.view.top), 0, 'zoom in stays at the top');
    // Hovering a row lights it; over its date, the exact date (`git log --date=format-local`).
    const box0 = await page.locator('#graph').boundingBox();
    const dateX = await page.evaluate(() => { const v = window.view; const c = v.textColumns(); return v.viewW - 8 - c.hashW - c.dateW + 4; });
    const rowY = await page.evaluate(() => window.view.rowH * 2.5 - window.view.top);
    await page.mouse.move(box0.x + dateX, box0.y + rowY);
    await page.waitForFunction(() => window.view.hovered === 2);
    const hash2 = await page.evaluate(() => window.view.store.row(2).hash);
    const exact = execDate(git, tall, hash2);
    assert.equal(await page.getAttribute('#graph', 'title'), exact);
    // Ctrl+wheel over a row in the middle of the screen: that row stays under the pointer.
    await page.evaluate(() => { window.view.selected = null; window.view.center(70); });
    const box = await page.locator('#graph').boundingBox();
    const y = Math.round(box.height / 3);
    const before = await page.evaluate((py) => Math.floor((window.view.top + py) / window.view.rowH), y);
    await page.mouse.move(box.x + box.width / 2, box.y + y);
    await page.keyboard.down('Control');
    await page.mouse.wheel(0, -100);
    await page.keyboard.up('Control');
    const after = await page.evaluate((py) => Math.floor((window.view.top + py) / window.view.rowH), y);
    assert.ok(Math.abs(after - before) <= 1, `row ${before} became ${after} under the pointer`);
    await page.close();
  });

  const fresh = fixture('linear', 'linear-since');
  // A commit made now: the only one in the last 7 days.
  git(fresh, 'commit', '-q', '--allow-empty', '-m', 'made today');
  const freshUrl = `${await serve(fresh)}/r/local`;
  await check('review: the time window keeps the commits git log --since keeps; the phone View menu stays on screen', async () => {
    const page = await openPage(context, freshUrl);
    await page.selectOption('#since', '7d');
    await page.waitForFunction(() => new URLSearchParams(location.search).get('since') === '7d');
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length === 1);
    const hashes = await page.$$eval('#rows-a11y li', (lis) => lis.map((li) => li.dataset.hash));
    assert.deepEqual(hashes, git(fresh, 'log', '--all', '--since=7.days', '--format=%H').split('\n'));
    await screenshot(page, 'since-7-days');
    await page.close();
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(freshUrl);
    await phone.waitForSelector('body[data-ready="true"]');
    assert.equal(await phone.getAttribute('#search', 'placeholder'), 'Search');
    await phone.click('#view-menu summary');
    const menu = await phone.locator('#view-menu fieldset').boundingBox();
    assert.ok(menu.x >= 0 && menu.x + menu.width <= 390, `the menu at ${menu.x}..${menu.x + menu.width}`);
    await screenshot(phone, 'phone-view-menu');
    await phone.close();
  });

  // A project merged by a bot: many pull requests open at once, every merge left out of a
  // search for their commits.
  const bots = fixture('bots', 'bots-review');
  const botsUrl = `${await serve(bots)}/r/local`;
  await check('review: only matches of a broad search draws each hit to its nearest hits, none reachable through another; the folded band never touches text', async () => {
    const q = 'pull request';
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${botsUrl}?q=${encodeURIComponent(q)}&match=${encodeURIComponent(q)}`);
    await phone.waitForSelector('body[data-ready="true"]');
    await phone.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
    // git's topology and the hits, from git.
    const parents = new Map(git(bots, 'rev-list', '--all', '--parents').split('\n').map((l) => { const [c, ...p] = l.split(' '); return [c, p]; }));
    const hits = new Set(git(bots, 'rev-list', '--all', `--grep=${q}`).split('\n'));
    const below = (c) => { const seen = new Set(); const stack = [...parents.get(c)]; while (stack.length) { const p = stack.pop(); if (!seen.has(p)) { seen.add(p); stack.push(...parents.get(p)); } } return seen; };
    const nearest = (c) => {
      const out = [];
      const seen = new Set();
      const stack = [...parents.get(c)].reverse();
      while (stack.length) {
        const p = stack.pop();
        if (seen.has(p)) continue;
        seen.add(p);
        if (hits.has(p)) { if (!out.includes(p)) out.push(p); } else stack.push(...[...parents.get(p)].reverse());
      }
      const reach = out.map(below);
      return out.filter((x) => !reach.some((r, i) => out[i] !== x && r.has(x)));
    };
    // Every row, a page (at most 100 rows) at a time.
    const answer = await phone.evaluate(async (m) => {
      const rows = new Map();
      for (let total = Infinity; rows.size < total;) {
        const page = await (await fetch(`/api/repos/local/graph?match=${encodeURIComponent(m)}&offset=${rows.size}&limit=100`)).json();
        total = page.total;
        const before = rows.size;
        for (const r of page.rows) rows.set(r.row, r);
        if (rows.size === before) break;
      }
      return { total: rows.size, rows: [...rows.values()] };
    }, q);
    assert.equal(answer.total, hits.size, 'one row per hit');
    const byRow = new Map(answer.rows.map((r) => [r.row, r.hash]));
    for (const r of answer.rows) {
      const drawn = r.edges.map((e) => byRow.get(e.parentRow));
      assert.deepEqual(drawn, nearest(r.hash), `edges of ${r.hash.slice(0, 8)}`);
    }
    await screenshot(phone, 'only-matches-phone');
    // Lanes folded for want of width, the column mid-slide as when lanes come into view while
    // scrolling: between the graph's ink and the text, a gutter of background in every row.
    for (const theme of ['light', 'dark']) {
      await phone.emulateMedia({ colorScheme: theme });
      await phone.evaluate(() => localStorage.removeItem('gitvista-theme'));
      await phone.goto(botsUrl);
      await phone.waitForSelector('body[data-ready="true"]');
      await phone.waitForFunction(() => window.view.folded > 0, null, { timeout: 5000 });
      assert.equal(await phone.evaluate(() => document.documentElement.dataset.theme), theme);
      const gutter = await phone.evaluate(() => {
        const v = window.view;
        v.graphW = 24; // as the column is while it widens
        v.draw();
        const c = document.getElementById('graph');
        const ctx = c.getContext('2d');
        const ratio = c.width / c.clientWidth;
        const bad = [];
        for (let r = Math.ceil(v.top / v.rowH); (r + 1) * v.rowH - v.top <= v.viewH; r++) {
          const y = Math.round((r * v.rowH - v.top + 2) * ratio);
          const h = Math.round((v.rowH - 4) * ratio);
          const bg = ctx.getImageData(1, y, 1, 1).data;
          const x0 = Math.ceil((v.graphW - 2) * ratio);
          const w = Math.max(1, Math.floor(v.graphW * ratio) - x0);
          const d = ctx.getImageData(x0, y, w, h).data;
          for (let i = 0; i < d.length; i += 4) {
            if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 30) { bad.push(r); break; }
          }
        }
        return { graphW: v.graphW, folded: v.folded, bad };
      });
      assert.deepEqual(gutter.bad, [], `${theme}: graph ink in the gutter before the text (column ${gutter.graphW}, ${gutter.folded} folded)`);
      await phone.waitForTimeout(400);
      await screenshot(phone, `folded-lanes-phone-${theme}`);
    }
    await phone.close();
  });

  // An image added, then changed.
  const pics = fixture('linear', 'linear-images');
  writeFileSync(path.join(pics, 'logo.png'), png(30, 20, [200, 40, 40, 255]));
  git(pics, 'add', 'logo.png');
  git(pics, 'commit', '-q', '-m', 'Add a logo');
  writeFileSync(path.join(pics, 'logo.png'), png(48, 32, [40, 120, 200, 255]));
  git(pics, 'commit', '-q', '-am', 'A larger logo');
  const picsUrl = `${await serve(pics)}/r/local`;
  await check('review: an added or changed image shows each side as a picture with its pixel and byte sizes', async () => {
    const head = git(pics, 'rev-parse', 'HEAD');
    for (const theme of ['light', 'dark']) {
      const page = await openPage(context, `${picsUrl}?commit=${head}`);
      await page.emulateMedia({ colorScheme: theme });
      await page.evaluate(() => localStorage.removeItem('gitvista-theme'));
      await page.reload();
      await page.waitForSelector('#panel-commit .files');
      await page.locator('#panel-commit .file', { hasText: 'logo.png' }).click();
      await page.waitForSelector('#panel-commit .image-side img');
      await page.waitForFunction(() => [...document.querySelectorAll('#panel-commit .image-side img')].every((i) => i.complete && i.naturalWidth > 0));
      const sides = await page.$$eval('#panel-commit .image-side', (f) => f.map((x) => ({ w: x.querySelector('img').naturalWidth, h: x.querySelector('img').naturalHeight, caption: x.textContent })));
      const sizes = ['HEAD~1:logo.png', 'HEAD:logo.png'].map((s) => Number(git(pics, 'cat-file', '-s', s)));
      assert.deepEqual(sides.map((x) => [x.w, x.h]), [[30, 20], [48, 32]]);
      assert.match(sides[0].caption, new RegExp(`before · ${sizes[0]} bytes · 30 × 20 px`));
      assert.match(sides[1].caption, new RegExp(`after · ${sizes[1]} bytes · 48 × 32 px`));
      assert.match(await page.textContent('#panel-commit .binary-change'), new RegExp(`Binary file changed: ${sizes[0]} bytes → ${sizes[1]} bytes`));
      await screenshot(page, `image-changed-${theme}`);
      await page.close();
    }
  });

  await check('review: while a large history is read, the page names the repository and shows a progress bar, then the graph', async () => {
    const page = await context.newPage();
    // A slow first read, as a 1.3M-commit history takes: the summary waits 2 s.
    await page.route('**/api/repos/local/repository*', async (route) => {
      await new Promise((r) => setTimeout(r, 2000));
      await route.continue();
    });
    await page.goto(picsUrl);
    await page.waitForSelector('#state:not([hidden]) .progress.sweeping', { timeout: 1800 });
    assert.equal(await page.textContent('#repo-name'), path.basename(pics)); // the work tree's directory
    assert.equal(await page.title(), `${path.basename(pics)} · GitVista`);
    assert.match(await page.textContent('#state'), /Reading history/);
    await screenshot(page, 'first-load-progress');
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isHidden('#state'), true);
    await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0);
    await page.close();
  });
}

