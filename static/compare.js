// Two commits compared in the details panel (select one row, ctrl/cmd-click another): the files
// changed from the first to the second (`git diff A B`) and the commits each has that the other
// lacks (`git log B..A`, `git log A..B`), each a link. Permalink: `?compare=A...B`.

import { api, el, fill, relativeTime } from './api.js';
import { renderDiff, renamePath } from './panel.js';

const short = (h) => h.slice(0, 8);

/** Shows the comparison of `a` and `b` in `panel`'s commit tab. */
export async function showCompare(panel, a, b) {
  panel.root.hidden = false;
  panel.hash = null;
  panel.compare = `${a}...${b}`;
  panel.tab('commit', { user: false });
  fill(panel.commitBox, el('p', { class: 'muted' }, 'Comparing…'));
  try {
    const c = await api(`/compare/${a}...${b}`);
    if (panel.compare !== `${a}...${b}`) return;
    const commits = (list, total, empty) => (list.length
      ? el('ul', { class: 'compare-commits' }, list.map((x) => el('li', {}, panel.commitLink(x.hash), ' ', x.summary, ' ',
        el('span', { class: 'muted' }, `${x.author}, ${relativeTime(x.time)}`))),
      total > list.length ? el('li', { class: 'muted' }, `and ${total - list.length} more`) : null)
      : el('p', { class: 'muted' }, empty));
    const files = el('ul', { class: 'files', 'aria-label': 'Changed files' });
    for (const f of c.files) {
      const holder = el('div');
      const btn = el('button', { type: 'button', class: 'file', 'aria-expanded': 'false' },
        el('span', { class: `st ${f.status}` }, f.status),
        el('span', { class: 'path' }, f.status === 'R' ? renamePath(f.oldPath, f.newPath) : f.path),
        f.additions != null && !f.binary ? [el('span', { class: 'num-add' }, `+${f.additions}`), el('span', { class: 'num-del' }, `\u2212${f.deletions}`)] : null);
      btn.addEventListener('click', async () => {
        if (btn.getAttribute('aria-expanded') === 'true') {
          btn.setAttribute('aria-expanded', 'false');
          fill(holder);
          return;
        }
        btn.setAttribute('aria-expanded', 'true');
        try {
          const d = await api(`/compare/${a}...${b}/file?path=${encodeURIComponent(f.path)}`);
          const redraw = () => fill(holder, renderDiff({ ...d, path: f.path }, null, redraw));
          redraw();
        } catch (e) {
          fill(holder, el('p', { class: 'error' }, e.message));
        }
      });
      files.append(el('li', {}, btn, holder));
    }
    fill(panel.commitBox,
      el('h2', {}, 'Comparing ', el('code', {}, short(a)), ' and ', el('code', {}, short(b))),
      el('h3', {}, `Only in ${short(b)} (${c.onlyBCount})`, el('span', { class: 'muted' }, ` \u2014 git log ${short(a)}..${short(b)}`)),
      commits(c.onlyB, c.onlyBCount, `Nothing: ${short(b)} is in ${short(a)}'s history.`),
      el('h3', {}, `Only in ${short(a)} (${c.onlyACount})`, el('span', { class: 'muted' }, ` \u2014 git log ${short(b)}..${short(a)}`)),
      commits(c.onlyA, c.onlyACount, `Nothing: ${short(a)} is in ${short(b)}'s history.`),
      el('h3', {}, `${c.files.length} changed file${c.files.length === 1 ? '' : 's'}`, el('span', { class: 'muted' }, ` \u2014 git diff ${short(a)} ${short(b)}`)),
      c.files.length ? files : el('p', { class: 'muted' }, 'The two trees are the same.'));
  } catch (e) {
    fill(panel.commitBox, el('p', { class: 'error' }, e.message));
  }
}
