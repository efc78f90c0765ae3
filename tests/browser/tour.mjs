// Every view of the graph page in light, dark and on a phone: the graph, a commit's diff, the
// overview, your work, blame, a comparison, Insights and an image's preview. Each keeps a
// screenshot; on every one nothing overflows the window sideways and no script fails. Run from
// run.mjs, with its helpers.

import assert from 'node:assert/strict';

const MODES = [
  { name: 'light', viewport: { width: 1280, height: 800 }, scheme: 'light' },
  { name: 'dark', viewport: { width: 1280, height: 800 }, scheme: 'dark' },
  { name: 'phone', viewport: { width: 390, height: 844 }, scheme: 'light' },
  { name: 'phone-dark', viewport: { width: 390, height: 844 }, scheme: 'dark' },
];

export async function tourChecks({ check, serve, fixture, git, screenshot, context }) {
  // The lifecycle fixture: an upstream, staged and unstaged work, tags and remotes.
  const repo = fixture('lifecycle', 'lifecycle-tour');
  const url = `${await serve(repo)}/r/local`;
  const head = git(repo, 'rev-parse', 'HEAD');
  const file = git(repo, 'diff-tree', '--no-commit-id', '--name-only', '-r', 'HEAD').split('\n')[0];
  const views = [
    { name: 'graph', path: '', ready: '#rows-a11y li' },
    { name: 'commit-diff', path: `?commit=${head}`, ready: '#panel-commit .files', then: async (p) => { await p.locator('#panel-commit .file').first().click(); await p.waitForSelector('#panel-commit .diff-wrap, #panel-commit table.diff, #panel-commit .binary-change'); } },
    { name: 'overview', path: '', ready: '#rows-a11y li', then: async (p) => { await p.click('#repo-name'); await p.waitForSelector('#sheet:not([hidden]) .sheet-counts'); } },
    { name: 'your-work', path: '', ready: '#wt-status:not([hidden])', then: async (p) => { await p.click('#wt-status'); await p.waitForSelector('#sheet:not([hidden]) .zones'); } },
    { name: 'blame', path: `?commit=${head}&tab=files&file=${encodeURIComponent(file)}&blame=1`, ready: '#panel .blame-toggle' },
    { name: 'compare', path: `?commit=${head}&compare=${git(repo, 'rev-parse', 'HEAD~2')}...${head}`, ready: '#panel .compare-commits, #panel-commit .files' },
    { name: 'insights', page: '/analytics', ready: 'main svg, svg rect' },
  ];
  await check('tour: every view in light, dark and on a phone, none wider than the window, no script errors', async () => {
    for (const mode of MODES) {
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.setViewportSize(mode.viewport);
      await page.emulateMedia({ colorScheme: mode.scheme });
      await page.goto(url);
      await page.evaluate(() => localStorage.removeItem('gitvista-theme'));
      for (const v of views) {
        await page.goto(`${url}${v.page || ''}${v.path || ''}`);
        await page.waitForSelector(v.ready, { state: 'attached', timeout: 15000 });
        if (v.then) await v.then(page);
        await page.waitForTimeout(300);
        const theme = await page.evaluate(() => document.documentElement.dataset.theme);
        assert.equal(theme, mode.scheme, `${mode.name} ${v.name}: the theme`);
        const wide = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
        assert.ok(wide.scroll <= wide.inner + 1, `${mode.name} ${v.name}: the page is ${wide.scroll} px wide in a ${wide.inner} px window`);
        await screenshot(page, `tour-${mode.name}-${v.name}`);
      }
      assert.deepEqual(errors, [], `${mode.name}: script errors`);
      await page.close();
    }
  });
}
