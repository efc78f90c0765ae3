// Scroll benchmark: flings through the graph of generated repositories of 1,000,000 and 200,000
// commits and of this project, side by side in one run, in headless Chromium against the release
// server. Prints frame times (time to draw a frame, and the interval between frames) as p50 / p95
// / max, and how many drawn rows were still placeholders.
//
//   cargo build --release && node tests/browser/scroll-bench.mjs
//
// The repositories come from scripts/gen-bench-repo (bench-data/huge.git, bench-data/big.git),
// generated when missing. GITVISTA_SCROLL_SECS sets the fling time per direction (default 4).

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.GITVISTA_BIN || path.join(root, 'target/release/gitvista');
const secs = Number(process.env.GITVISTA_SCROLL_SECS || 4);

function ensure(name, args) {
  const dest = path.join(root, 'bench-data', name);
  if (!existsSync(dest)) execFileSync(path.join(root, 'scripts/gen-bench-repo'), [dest, ...args], { stdio: 'inherit' });
  return dest;
}

function serve(repo) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['open', '--no-browser', '--port', '0', repo], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('the server did not start')), 120000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) { clearTimeout(timer); resolve({ child, base: m[0] }); }
    });
  });
}

const pct = (v, p) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.round((s.length - 1) * p))] : 0;
};

const repos = [
  ['1,000,000 commits (huge.git)', ensure('huge.git', ['1000000', '150', '--commits-only'])],
  ['200,000 commits (big.git)', ensure('big.git', ['200000'])],
  ['this repository', root],
];

const profile = mkdtempSync(path.join(tmpdir(), 'gitvista-scroll-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-quic'],
});
console.log(`| fling ${secs} s down then ${secs} s up, 1280x800 | rows | draw p50 | draw p95 | draw max | frame interval p50 | p95 | max | rows drawn before loaded |`);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
try {
  for (const [label, repo] of repos) {
    const { child, base } = await serve(repo);
    try {
      const page = await context.newPage();
      await page.goto(`${base}/r/local`, { timeout: 120000 });
      await page.waitForSelector('body[data-ready="true"]', { timeout: 120000 });
      await page.waitForFunction(() => document.querySelectorAll('#rows-a11y li').length > 0, null, { timeout: 120000 });
      for (const speed of [30, 120]) {
      const r = await page.evaluate(async ([seconds, speed]) => {
        const v = window.view;
        const canvas = document.getElementById('graph');
        v.frameTimes.length = 0;
        const intervals = [];
        let placeholders = 0;
        let drawn = 0;
        const count = () => {
          const first = Math.floor(v.top / v.rowH);
          const last = Math.min(v.store.total - 1, Math.floor((v.top + v.viewH) / v.rowH));
          for (let i = first; i <= last; i++) { drawn++; if (!v.store.row(i)) placeholders++; }
        };
        for (const dir of [1, -1]) {
          const end = performance.now() + seconds * 1000;
          let last = performance.now();
          await new Promise((done) => {
            const frame = (t) => {
              intervals.push(t - last);
              last = t;
              // A fling of `speed` rows per frame (30: a brisk trackpad scroll; 120: a hard flick).
              canvas.dispatchEvent(new WheelEvent('wheel', { deltaY: dir * speed * v.rowH, bubbles: true, cancelable: true }));
              count();
              if (t < end) requestAnimationFrame(frame); else done();
            };
            requestAnimationFrame(frame);
          });
        }
        return { draws: [...v.frameTimes], intervals: intervals.slice(2), placeholders, drawn, total: v.store.total };
      }, [secs, speed]);
      const f = (x) => `${x.toFixed(1)} ms`;
      console.log(`| ${label}, ${speed} rows/frame | ${r.total.toLocaleString('en')} | ${f(pct(r.draws, 0.5))} | ${f(pct(r.draws, 0.95))} | ${f(pct(r.draws, 1))} | ${f(pct(r.intervals, 0.5))} | ${f(pct(r.intervals, 0.95))} | ${f(pct(r.intervals, 1))} | ${(100 * r.placeholders / Math.max(1, r.drawn)).toFixed(0)}% |`);
      }
      mkdirSync(path.join(root, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: path.join(root, 'test-artifacts', `scroll-${path.basename(repo)}.png`) });
      await page.close();
    } finally {
      child.kill();
    }
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
