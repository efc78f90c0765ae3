// Browser checks of what the original GitVista had and a daily Git Graph user expects: the
// repository overview, the lifecycle of local work, people through the mailmap, and blame in
// git's three modes. Run from run.mjs, with its helpers.

import assert from 'node:assert/strict';

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
    const rows = await page.$$eval('#rows-a11y li', (lis) => lis.map((li) => li.dataset.hash));
    const theirs = git(repo, 'log', '--all', '-i', '--author=rene@example.org', '--format=%H').split('\n');
    for (const h of theirs) assert.ok(rows.includes(h), h);
    await screenshot(page, 'insights-author-filter');
    await page.close();
  });
}
