// The graph view: one canvas, virtualized. Only the rows on screen (and the edges through them)
// are drawn, from the row cache; scrolling is the view's own (wheel, drag with inertia, keys),
// so a million rows need no million-pixel element. A minimap strip shows the whole history with
// the viewport, search hits and refs.

import { fullDate, refName, relativeTime } from './api.js';
import { CHUNK } from './rows.js';

const ZOOMS = [
  { rowH: 14, lane: 9, font: 10 },  // overview: still a readable line per row
  { rowH: 22, lane: 13, font: 12 },
  { rowH: 28, lane: 16, font: 13 },
];
const MAX_DRAWN_LANES = 48;
/** The server's overflow lane (`null` on the wire) as a key of the column map. */
const OVER = -1;
/** Narrowest subject column a dragged graph column leaves (px). */
const MIN_SUBJECT = 160;
/** How close to the graph column's edge the pointer grabs it (px). */
const GRAB = 5;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class GraphView {
  constructor(canvas, minimap, store, a11y) {
    this.canvas = canvas;
    this.minimap = minimap;
    this.store = store;
    this.a11y = a11y;
    this.ctx = canvas.getContext('2d');
    this.mctx = minimap.getContext('2d');
    this.zoom = 1;
    this.top = 0; // pixels from the top of row 0 to the top of the view
    /** Counts the reader's moves (scrolls, jumps, zooms, reveals); a resize's clamp is none. */
    this.moves = 0;
    this.selected = null; // row number
    this.selectedHash = null;
    this.hits = [];
    this.hitSet = new Set();
    /** What the search matched, lowercased, marked in hit rows: { text: [...], author: [...] }. */
    this.marks = { text: [], author: [] };
    this.refs = []; // {row, kind} for the minimap
    this.head = null; // HEAD's commit hash
    this.dirty = true;
    this.onSelect = () => {};
    this.onOpen = () => {};
    this.onCompare = () => {};
    this.onDraw = () => {};
    this.onContextMenu = () => {};
    /** Rows on screen whose subject was cut short, with the whole subject. */
    this.truncated = new Map();
    this.frameTimes = [];
    /** Text cut to a width, and text widths, by font (measuring is a frame's main cost). */
    this.fits = new Map();
    this.widths = new Map();
    /** Lane -> column: the lanes on screen, side by side without the empty ones between. */
    this.cols = new Map();
    /** Lane -> x drawn now (moving towards its column's x when columns change). */
    this.colX = new Map();
    /** Columns in use (the graph column is 16 + lanesShown * laneW wide, drawn as graphW). */
    this.lanesShown = 0;
    this.graphW = 0;
    /** Lanes folded into the overflow column (the last one) for want of width. */
    this.folded = 0;
    /** The widest the graph column may grow, as dragged by its edge (px; 0: the default share). */
    this.userGraphW = Number(localStorage.getItem('gitvista.graphWidth')) || 0;
    this.readColors();
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.bindInput();
    const loop = () => {
      if (this.dirty) {
        this.dirty = false;
        const t0 = performance.now();
        this.draw();
        this.onDraw();
        this.frameTimes.push(performance.now() - t0);
        if (this.frameTimes.length > 2000) this.frameTimes.splice(0, 1000);
      }
      this.step();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  get rowH() { return ZOOMS[this.zoom].rowH; }
  get laneW() { return ZOOMS[this.zoom].lane; }

  readColors() {
    this.colors = [];
    for (let i = 0; i < 12; i++) this.colors.push(css(`--c${i}`));
    this.theme = {
      bg: css('--bg'), bgAlt: css('--bg-alt'), fg: css('--fg'), muted: css('--muted'),
      border: css('--border'), select: css('--select'), hit: css('--hit'), accent: css('--accent'), hover: css('--bg-alt'),
      mark: css('--mark') || 'rgba(255, 200, 0, 0.45)',
      branch: css('--badge-branch'), remote: css('--badge-remote'), tag: css('--badge-tag'),
      stash: css('--badge-stash'), headc: css('--badge-head'), font: css('--font'), mono: css('--mono'),
    };
    this.dirty = true;
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.minimap]) {
      const r = c.getBoundingClientRect();
      c.width = Math.max(1, Math.round(r.width * dpr));
      c.height = Math.max(1, Math.round(r.height * dpr));
    }
    this.dpr = dpr;
    this.clampTop();
    this.dirty = true;
  }

  get viewH() { return this.canvas.height / this.dpr; }
  get viewW() { return this.canvas.width / this.dpr; }

  maxTop() { return Math.max(0, this.store.total * this.rowH - this.viewH); }

  clampTop() { this.top = Math.min(Math.max(0, this.top), this.maxTop()); }

  scrollBy(dy) {
    this.moves += 1;
    this.lastScroll = performance.now();
    this.top += dy;
    this.clampTop();
    this.dirty = true;
  }

  /** Puts row `r` in the middle of the view. */
  center(r) {
    this.moves += 1;
    this.velocity = 0;
    this.top = r * this.rowH - this.viewH / 2 + this.rowH / 2;
    this.clampTop();
    this.dirty = true;
  }

  /** Scrolls just enough for row `r` to be visible. */
  reveal(r) {
    this.moves += 1;
    const y = r * this.rowH;
    if (y < this.top) this.top = y;
    else if (y + this.rowH > this.top + this.viewH) this.top = y + this.rowH - this.viewH;
    this.clampTop();
    this.dirty = true;
  }

  /** The first visible row and how far the view is scrolled into it (for anchoring). */
  anchor() {
    const row = Math.floor(this.top / this.rowH);
    const r = this.store.row(row);
    return r ? { hash: r.hash, row, offset: this.top - row * this.rowH } : null;
  }

  /** Zooms to level `z`. The selected row keeps its place on screen when it is on screen;
   * else the row under the pointer (`y`, for a ctrl+wheel), the top one at the top, or the
   * middle one does: a selection scrolled away is not brought back. */
  setZoom(z, { y = null } = {}) {
    z = Math.max(0, Math.min(ZOOMS.length - 1, z));
    if (z === this.zoom) return;
    this.moves += 1;
    const sel = this.selected;
    const selY = sel == null ? null : sel * this.rowH - this.top;
    const onScreen = selY != null && selY >= 0 && selY + this.rowH <= this.viewH;
    // A view at the top stays at the top.
    const at = y ?? (this.top <= 0 ? 0 : this.viewH / 2);
    const fixed = (this.top + at) / this.rowH;
    this.zoom = z;
    this.top = onScreen ? sel * this.rowH - selY : fixed * this.rowH - at;
    this.clampTop();
    if (onScreen) this.reveal(sel);
    this.dirty = true;
  }

  select(r, { open = false, scroll = true } = {}) {
    if (r == null || r < 0 || r >= this.store.total) return;
    this.selected = r;
    const row = this.store.row(r);
    this.selectedHash = row ? row.hash : null;
    if (scroll) this.reveal(r);
    this.dirty = true;
    this.onSelect(r, row);
    if (open) this.onOpen(r, row);
  }

  setHits(rows) {
    this.hits = rows;
    this.hitSet = new Set(rows);
    this.dirty = true;
  }

  // ---- input ----

  bindInput() {
    const c = this.canvas;
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.velocity = 0;
      const unit = e.deltaMode === 1 ? this.rowH : e.deltaMode === 2 ? this.viewH : 1;
      if (e.ctrlKey) this.setZoom(this.zoom + (e.deltaY < 0 ? 1 : -1), { y: e.clientY - c.getBoundingClientRect().top });
      else this.scrollBy(e.deltaY * unit);
    }, { passive: false });
    let drag = null;
    // The graph column's right edge is a handle: dragging it sets how wide the column may grow
    // (remembered); a double click returns to the default share.
    let sizing = null;
    const onEdge = (e) => this.graphW > 0 && Math.abs(e.offsetX - this.graphW) <= GRAB;
    c.addEventListener('pointerdown', (e) => {
      c.focus();
      if (e.button === 0 && onEdge(e)) {
        sizing = { id: e.pointerId, x: e.clientX, w: this.graphW };
        c.setPointerCapture(e.pointerId);
        return;
      }
      drag = { y: e.clientY, start: e.clientY, t: performance.now(), v: 0, id: e.pointerId };
      this.velocity = 0;
    });
    c.addEventListener('dblclick', (e) => {
      if (!onEdge(e)) return;
      this.setGraphWidth(0);
    });
    c.addEventListener('pointermove', (e) => {
      if (sizing) {
        this.userGraphW = Math.max(16 + 2 * this.laneW, sizing.w + e.clientX - sizing.x);
        this.dirty = true;
        return;
      }
      // A subject cut short shows whole as a tooltip; the edge offers itself for dragging.
      if (!drag) {
        const r = Math.floor((e.offsetY + this.top) / this.rowH);
        const edge = onEdge(e);
        c.style.cursor = edge ? 'col-resize' : '';
        const overflowX = 8 + (this.lanesShown - 1) * this.laneW;
        if (edge) c.title = 'Drag to resize the graph column (double-click: default width)';
        else if (this.folded && e.offsetX >= overflowX && e.offsetX < overflowX + this.laneW) {
          c.title = `${this.folded} lanes folded into this edge: drag the column wider to see them`;
        } else {
          // The date column says when exactly; the author column says who in full.
          const { hashW, dateW, authorW } = this.textColumns();
          const dateX = this.viewW - 8 - hashW - dateW;
          const row = this.store.row(r);
          if (row && dateW && e.offsetX >= dateX && e.offsetX < dateX + dateW) c.title = fullDate(row.time);
          else if (row && authorW && e.offsetX >= dateX - authorW && e.offsetX < dateX) c.title = row.authorEmail ? `${row.author} <${row.authorEmail}>` : row.author;
          else c.title = this.truncated.get(r) || '';
        }
        // The row under the pointer is lit.
        if (r !== this.hovered) { this.hovered = r; this.dirty = true; }
      }
      if (!drag || e.pointerId !== drag.id) return;
      const dy = drag.y - e.clientY;
      const now = performance.now();
      const dt = Math.max(1, now - drag.t);
      drag.v = 0.8 * (dy / dt) + 0.2 * drag.v;
      drag.y = e.clientY;
      drag.t = now;
      if (Math.abs(e.clientY - drag.start) > 4) {
        if (!drag.moved) c.setPointerCapture(e.pointerId);
        drag.moved = true;
        this.scrollBy(dy);
      }
    });
    c.addEventListener('pointerup', (e) => {
      if (sizing) {
        sizing = null;
        this.setGraphWidth(this.userGraphW);
        return;
      }
      if (!drag) return;
      // The secondary button opens the row's menu (contextmenu), not its details.
      if (e.button === 2) { drag = null; return; }
      if (drag.moved) {
        this.velocity = drag.v * 16; // px per frame
      } else {
        const rect = c.getBoundingClientRect();
        const r = Math.floor((e.clientY - rect.top + this.top) / this.rowH);
        // Ctrl/cmd-click with a commit selected: compare the two.
        const other = r < this.store.total ? this.store.row(r) : null;
        if ((e.ctrlKey || e.metaKey) && this.selectedHash && other && other.hash !== this.selectedHash) {
          this.onCompare(this.selectedHash, other.hash);
        } else if (r < this.store.total) this.select(r, { open: true, scroll: false });
      }
      drag = null;
    });
    c.addEventListener('pointercancel', () => { drag = null; sizing = null; });
    c.addEventListener('pointerleave', () => { if (this.hovered != null) { this.hovered = null; this.dirty = true; } });
    c.addEventListener('contextmenu', (e) => {
      const rect = c.getBoundingClientRect();
      const r = Math.floor((e.clientY - rect.top + this.top) / this.rowH);
      const row = this.store.row(r);
      if (r >= this.store.total || !row) return;
      e.preventDefault();
      this.select(r, { scroll: false });
      this.onContextMenu(r, row, e.clientX, e.clientY);
    });
    const jump = (e) => {
      const rect = this.minimap.getBoundingClientRect();
      const f = Math.min(1, Math.max(0, (e.clientY - rect.top) / rect.height));
      this.center(Math.floor(f * this.store.total));
    };
    let mdrag = false;
    this.minimap.addEventListener('pointerdown', (e) => {
      mdrag = true;
      this.minimap.setPointerCapture(e.pointerId);
      jump(e);
    });
    this.minimap.addEventListener('pointermove', (e) => { if (mdrag) jump(e); });
    this.minimap.addEventListener('pointerup', () => { mdrag = false; });
  }

  /** Inertia after a fling. */
  step() {
    if (!this.velocity) return;
    this.scrollBy(this.velocity);
    this.velocity *= 0.95;
    if (Math.abs(this.velocity) < 0.3 || this.top <= 0 || this.top >= this.maxTop()) this.velocity = 0;
  }

  // ---- drawing ----

  /** Remembers how wide the graph column may grow (px; 0 returns to the default share). */
  setGraphWidth(w) {
    this.userGraphW = w;
    if (w) localStorage.setItem('gitvista.graphWidth', String(Math.round(w)));
    else localStorage.removeItem('gitvista.graphWidth');
    this.dirty = true;
  }

  /** Widths of the text columns right of the subject: hash, date, author. */
  /** The secondary columns' widths. The subject comes first: with the graph at its widest (40%
   * of the width), it keeps 30% of the width (at least 200 px) before the author and the date take
   * theirs; when they do not fit, they narrow, then the author goes, then the date. */
  textColumns() {
    const W = this.viewW;
    const room = W * 0.6 - 70 - 16;
    const want = Math.max(200, W * 0.3);
    for (const [authorW, dateW] of [[140, 110], [100, 84], [0, 84]]) {
      if (room - authorW - dateW >= want) return { hashW: 70, dateW, authorW };
    }
    return { hashW: 70, dateW: 0, authorW: 0 };
  }

  /** The widest the graph column may be: 40% of the width (30% on a phone), or what its edge
   * was dragged to, always leaving the subject a readable width. */
  maxGraphW() {
    const W = this.viewW;
    const { hashW, dateW, authorW } = this.textColumns();
    const roomy = W - hashW - dateW - authorW - 24 - MIN_SUBJECT;
    const want = this.userGraphW || W * (W < 500 ? 0.3 : 0.4);
    return Math.max(16 + 2 * this.laneW, Math.min(want, Math.max(roomy, W * 0.3)));
  }

  /** The most columns drawn side by side; lanes past them share the last one, the overflow. */
  laneCap() {
    return Math.max(2, Math.min(MAX_DRAWN_LANES, Math.floor((this.maxGraphW() - 16) / this.laneW)));
  }

  /** Forgets the columns (another view: they are fitted afresh, at once). */
  resetLanes() {
    this.cols.clear();
    this.colX.clear();
    this.lanesShown = 0;
    this.graphW = 0;
  }

  laneX(lane) {
    const x = this.colX.get(lane ?? OVER);
    return x ?? this.colTarget(lane ?? OVER);
  }

  /** Where lane `l`'s column is (the overflow column for a lane folded for want of width). */
  colTarget(l) {
    const c = this.cols.get(l) ?? this.cols.size;
    return 8 + Math.min(c, this.lanesShown - 1) * this.laneW + this.laneW / 2;
  }

  /** Fits the columns to the lanes used by the rows and edges on screen: the empty lanes between
   * them take no room, the main lane stays first. While scrolling, a lane coming into view takes
   * a new column on the right (nothing on screen moves); once scrolling has settled the columns
   * are sorted and compacted again. Lanes and the column's width then slide to their places
   * over a few frames rather than jump. */
  fitLanes(visible, into) {
    const used = new Set();
    const see = (l) => used.add(l ?? OVER);
    for (const row of visible) {
      see(row.lane);
      for (const e of row.edges) { see(e.track); see(e.parentLane); }
    }
    if (into) for (const t of into) { see(t.edge.track); if (t.edge.parentRow <= this.lastRow) see(t.edge.parentLane); }
    const settled = performance.now() - (this.lastScroll || 0) > 400;
    const missing = [...used].some((l) => !this.cols.has(l));
    const stale = this.cols.size !== used.size || missing;
    if (stale && (settled || !this.cols.size)) {
      // Sorted by lane (the server's order keeps crossings few), the overflow lane last.
      const order = [...used].sort((a, b) => (a === OVER) - (b === OVER) || a - b);
      this.cols = new Map(order.map((l, i) => [l, i]));
    } else if (stale) {
      for (const l of used) if (!this.cols.has(l)) this.cols.set(l, this.cols.size);
      // Compacted once scrolling has settled.
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => { this.dirty = true; }, 450);
    }
    const cap = this.laneCap();
    this.lanesShown = Math.max(1, Math.min(cap, this.cols.size));
    this.folded = this.cols.size > cap ? this.cols.size - cap + 1 : 0;
    // Slide towards the targets: a third of the way each frame, snapping when close.
    let moving = false;
    const step = (now, target) => {
      if (now == null || Math.abs(target - now) < 0.5) return target;
      moving = true;
      return now + (target - now) / 3;
    };
    if (this.colX.laneW !== this.laneW) { this.colX.clear(); this.colX.laneW = this.laneW; this.graphW = 0; }
    const next = new Map();
    next.laneW = this.laneW;
    for (const l of used) next.set(l, step(this.colX.get(l), this.colTarget(l)));
    this.colX = next;
    this.graphW = step(this.graphW || null, 16 + this.lanesShown * this.laneW);
    if (moving) this.animating = true;
  }

  draw() {
    const ctx = this.ctx;
    const { rowH } = this;
    const W = this.viewW;
    const H = this.viewH;
    const t = this.theme;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = t.bg;
    ctx.fillRect(0, 0, W, H);
    const total = this.store.total;
    const first = Math.max(0, Math.floor(this.top / rowH));
    const last = Math.min(total - 1, Math.floor((this.top + H) / rowH));
    this.store.ensure(first - CHUNK / 2, last + CHUNK / 2);
    this.lastRow = last;
    const into = first > 0 ? this.store.edgesInto(first) : [];
    const visible = [];
    for (let r = first; r <= last; r++) {
      const row = this.store.row(r);
      if (row) visible.push(row);
    }
    this.animating = false;
    this.fitLanes(visible, into);
    const graphW = this.graphW;
    const y = (r) => r * rowH - this.top + rowH / 2;
    // Row backgrounds: selection and search hits.
    for (let r = first; r <= last; r++) {
      let fill = null;
      if (r === this.selected) fill = t.select;
      else if (this.hitSet.has(r)) fill = t.hit;
      else if (r === this.hovered) fill = t.hover;
      if (fill) {
        ctx.fillStyle = fill;
        ctx.fillRect(0, r * rowH - this.top, W, rowH);
      }
    }

    // Lanes, edges and nodes stay inside the graph's column as it is this frame (it slides
    // while lanes come and go): nothing drawn there may touch the text that starts at graphW.
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, Math.max(0, graphW - 2), H);
    ctx.clip();
    // The overflow column, when lanes are folded into it, is marked by a band and a dashed edge,
    // at the column's right end as it is this frame.
    if (this.folded) {
      const ox = graphW - 8 - this.laneW;
      ctx.fillStyle = t.bgAlt;
      ctx.fillRect(ox, 0, this.laneW, H);
      ctx.strokeStyle = t.border;
      ctx.lineWidth = 1;
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(ox + this.laneW - 0.5, 0);
      ctx.lineTo(ox + this.laneW - 0.5, H);
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // Edges: from rows above the view into it, then from the visible rows.
    ctx.lineWidth = Math.max(1.5, rowH / 12);
    ctx.lineCap = 'round';
    const drawEdge = (childLane, childRow, e) => {
      const x1 = this.laneX(childLane);
      const y1 = y(childRow);
      const xt = this.laneX(e.track);
      const x2 = this.laneX(e.parentLane);
      const y2 = y(e.parentRow);
      const half = rowH / 2;
      ctx.strokeStyle = this.colors[e.color % this.colors.length];
      if (e.track == null || e.parentLane == null) ctx.setLineDash([3, 3]);
      ctx.beginPath();
      if (e.parentRow === childRow + 1) {
        ctx.moveTo(x1, y1);
        if (x1 === x2) ctx.lineTo(x2, y2);
        else ctx.bezierCurveTo(x1, y1 + half, x2, y2 - half, x2, y2);
      } else {
        // Into the track within the child's row, straight down the track (clipped to the view:
        // an edge may span a million rows), into the parent within the parent's row.
        const top = -2 * rowH;
        const bottom = H + 2 * rowH;
        let ya = y1;
        if (xt !== x1) {
          ctx.moveTo(x1, y1);
          ctx.bezierCurveTo(x1, y1 + half, xt, y1 + half, xt, y1 + rowH);
          ya = y1 + rowH;
        }
        const curveIn = x2 !== xt;
        const yb = curveIn ? y2 - rowH : y2;
        const sa = Math.max(ya, top);
        const sb = Math.min(yb, bottom);
        if (sb > sa) {
          ctx.moveTo(xt, sa);
          ctx.lineTo(xt, sb);
        }
        if (curveIn && yb < bottom) {
          ctx.moveTo(xt, yb);
          ctx.bezierCurveTo(xt, yb + half, x2, yb + half, x2, y2);
        }
      }
      ctx.stroke();
      ctx.setLineDash([]);
    };
    if (into) for (const t2 of into) drawEdge(t2.childLane, t2.childRow, t2.edge);
    for (const row of visible) for (const e of row.edges) drawEdge(row.lane, row.row, e);
    // History this view leaves out below a commit: a short dashed stub within its own row.
    ctx.setLineDash([2, 3]);
    for (const row of visible) {
      if (row.edges.length || row.root !== false) continue;
      const x = this.laneX(row.lane);
      ctx.strokeStyle = this.colors[row.color % this.colors.length];
      ctx.beginPath();
      ctx.moveTo(x, y(row.row));
      ctx.lineTo(x, y(row.row) + rowH * 0.45);
      ctx.stroke();
    }
    ctx.setLineDash([]);

    // Nodes.
    const radius = Math.max(3, rowH * 0.22);
    for (const row of visible) {
      const x = this.laneX(row.lane);
      const yy = y(row.row);
      const color = this.colors[row.color % this.colors.length];
      const merge = row.edges.length > 1;
      // A commit whose parents the view leaves out (only matches, hidden merges) is no root.
      const root = row.root ?? row.edges.length === 0;
      ctx.beginPath();
      if (root) {
        ctx.rect(x - radius, yy - radius, radius * 2, radius * 2);
      } else {
        ctx.arc(x, yy, merge ? radius * 0.75 : radius, 0, Math.PI * 2);
      }
      ctx.fillStyle = merge ? t.bg : color;
      ctx.fill();
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.stroke();
      if (row.hash === this.head) {
        ctx.beginPath();
        ctx.arc(x, yy, radius + 3, 0, Math.PI * 2);
        ctx.strokeStyle = t.headc;
        ctx.lineWidth = 2;
        ctx.stroke();
      }
    }

    ctx.restore();

    // Text columns.
    this.truncated.clear();
    const fontSize = ZOOMS[this.zoom].font;
    if (fontSize) {
      const { hashW, dateW, authorW } = this.textColumns();
      const right = W - 8;
      const textEnd = right - hashW - dateW - authorW - 8;
      ctx.textBaseline = 'middle';
      // Two passes, one per font: setting ctx.font row by row re-parsed it three times a row
      // (measured: a quarter of a frame).
      const mono = `${fontSize - 1}px ${t.mono}`;
      const sans = `${fontSize}px ${t.font}`;
      ctx.font = mono;
      const starts = [];
      for (const row of visible) {
        const yy = y(row.row);
        let x = graphW;
        for (const ref of row.refs) x = this.badge(ref, x, yy, textEnd, fontSize);
        if (row.hash === this.head && !row.refs.some((r) => r.kind === 'branch')) {
          x = this.badge({ name: 'HEAD', kind: 'head' }, x, yy, textEnd, fontSize);
        }
        if (row.moreParents) {
          // An octopus merge of more branches than are drawn says how many it leaves out.
          x = this.badge({ name: `+${row.moreParents.toLocaleString('en-US')} more parents`, kind: 'other' }, x, yy, textEnd, fontSize);
        }
        starts.push(x);
        ctx.fillStyle = t.muted;
        this.text(row.hash.slice(0, 8), right - hashW + 6, yy, hashW - 6);
      }
      ctx.font = sans;
      visible.forEach((row, i) => {
        const yy = y(row.row);
        const x = starts[i];
        const hit = this.hitSet.has(row.row);
        if (hit) this.mark(row.summary, x, yy, textEnd - x, this.marks.text, fontSize);
        ctx.fillStyle = t.fg;
        if (this.text(row.summary, x, yy, textEnd - x)) this.truncated.set(row.row, row.summary);
        if (hit && authorW) this.mark(row.author, textEnd + 8, yy, authorW - 8, [...this.marks.text, ...this.marks.author], fontSize);
        ctx.fillStyle = t.muted;
        if (authorW) this.text(row.author, textEnd + 8, yy, authorW - 8);
        if (dateW) this.text(relativeTime(row.time), textEnd + 8 + authorW, yy, dateW - 8);
      });
    }
    // Rows not loaded yet: a quiet placeholder.
    if (visible.length < last - first + 1) {
      ctx.fillStyle = t.border;
      for (let r = first; r <= last; r++) {
        if (!this.store.row(r)) ctx.fillRect(graphW, r * rowH - this.top + rowH / 2 - 1, Math.min(200, W - graphW), 2);
      }
    }
    this.drawMinimap(first, last);
    this.describe(visible);
    if (this.animating) this.dirty = true;
  }

  /** Paints a highlight behind each occurrence of `terms` (lowercased) in the part of `s` that
   * fits in `maxW` (the text is drawn over it). */
  mark(s, x, y, maxW, terms, fontSize) {
    if (!s || !terms.length || maxW <= 8) return;
    const ctx = this.ctx;
    const lower = s.toLowerCase();
    ctx.fillStyle = this.theme.mark;
    for (const term of terms) {
      if (!term) continue;
      for (let i = lower.indexOf(term); i >= 0; i = lower.indexOf(term, i + term.length)) {
        const x0 = ctx.measureText(s.slice(0, i)).width;
        if (x0 >= maxW) break;
        const w = Math.min(ctx.measureText(s.slice(i, i + term.length)).width, maxW - x0);
        ctx.fillRect(x + x0, y - fontSize / 2 - 1, w, fontSize + 2);
      }
    }
  }

  /** Draws `s` cut to `maxW` with an ellipsis; true when it was cut. Measuring is most of a
   * frame's cost in a fling, so what fits is remembered per font and width. */
  text(s, x, y, maxW) {
    if (!s) return false;
    if (maxW <= 8) return true;
    const ctx = this.ctx;
    const key = `${ctx.font}|${Math.floor(maxW)}|${s}`;
    let fit = this.fits.get(key);
    if (fit === undefined) {
      if (ctx.measureText(s).width <= maxW) fit = s;
      else {
        // Where the cut falls by the widths of its characters (remembered per font), then
        // checked against the real width (kerning): two or three measurements, not a search.
        const room = maxW - this.measure('…');
        let n = 0;
        for (let w = 0; n < s.length; n++) {
          w += this.measure(s[n]);
          if (w > room) break;
        }
        while (n > 0 && ctx.measureText(s.slice(0, n) + '…').width > maxW) n--;
        while (n < s.length && ctx.measureText(s.slice(0, n + 1) + '…').width <= maxW) n++;
        fit = s.slice(0, n) + '…';
      }
      if (this.fits.size > 20000) this.fits.clear();
      this.fits.set(key, fit);
    }
    ctx.fillText(fit, x, y);
    return fit !== s;
  }

  /** The width of `s` in the current font, remembered. */
  measure(s) {
    const key = `${this.ctx.font}|${s}`;
    let w = this.widths.get(key);
    if (w === undefined) {
      w = this.ctx.measureText(s).width;
      if (this.widths.size > 20000) this.widths.clear();
      this.widths.set(key, w);
    }
    return w;
  }

  badge(ref, x, y, limit, fontSize) {
    const ctx = this.ctx;
    const t = this.theme;
    const short = refName(ref.name);
    const color = { branch: t.branch, remote: t.remote, tag: t.tag, head: t.headc }[ref.kind] || t.stash;
    const w = Math.min(this.measure(short) + 10, 180);
    if (x + w > limit) return x;
    const h = fontSize + 3;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.roundRect(x + 0.5, y - h / 2 + 0.5, w, h, h / 2);
    // The checked-out branch is filled: it differs from the other branches at its commit.
    const checkedOut = ref.kind === 'branch' && ref.name === this.headBranch;
    if (checkedOut) {
      ctx.fillStyle = color;
      ctx.fill();
    }
    ctx.stroke();
    ctx.fillStyle = checkedOut ? t.bg : color;
    this.text(short, x + 5, y, w - 8);
    return x + w + 4;
  }

  /** The minimap: refs and hits (drawn once into a backdrop while they, the size, the theme
   * and the row count stay the same: a mirror has thousands), then the viewport and selection. */
  drawMinimap(first, last) {
    const ctx = this.mctx;
    const dpr = this.dpr;
    const W = this.minimap.width / dpr;
    const H = this.minimap.height / dpr;
    const t = this.theme;
    const total = Math.max(1, this.store.total);
    const yOf = (r) => (r / total) * H;
    const key = [this.minimap.width, this.minimap.height, total, t, this.refs, this.hits];
    if (!this.backdrop || this.backdrop.key.some((k, i) => k !== key[i])) {
      const canvas = this.backdrop?.canvas || document.createElement('canvas');
      canvas.width = this.minimap.width;
      canvas.height = this.minimap.height;
      const b = canvas.getContext('2d');
      b.setTransform(dpr, 0, 0, dpr, 0, 0);
      b.fillStyle = t.bgAlt;
      b.fillRect(0, 0, W, H);
      for (const ref of this.refs) {
        b.fillStyle = { branch: t.branch, remote: t.remote, tag: t.tag }[ref.kind] || t.stash;
        b.fillRect(W - 5, yOf(ref.row), 4, 1.5);
      }
      b.fillStyle = t.tag;
      for (const r of this.hits) b.fillRect(1, yOf(r), W - 7, 1.5);
      this.backdrop = { canvas, key };
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.backdrop.canvas, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = t.accent;
    ctx.globalAlpha = 0.25;
    const vy = yOf(first);
    ctx.fillRect(0, vy, W, Math.max(3, yOf(last + 1) - vy));
    ctx.globalAlpha = 1;
    if (this.selected != null) {
      ctx.fillStyle = t.accent;
      ctx.fillRect(0, yOf(this.selected) - 1, W, 2);
    }
  }

  /** The visible rows as text for assistive technology (and tests): rebuilt when the view
   * stops, not on every frame of a fling (a list of DOM nodes per frame was a third of a
   * frame's cost). */
  describe(visible) {
    const key = visible.map((r) => r.hash).join() + '|' + this.selected;
    if (key === this.described) return;
    clearTimeout(this.describeTimer);
    if (performance.now() - (this.lastScroll || 0) < 150 || this.velocity) {
      this.describeTimer = setTimeout(() => { this.described = null; this.dirty = true; }, 160);
      return;
    }
    this.described = key;
    const items = visible.map((r) => {
      const li = document.createElement('li');
      li.dataset.row = r.row;
      li.dataset.hash = r.hash;
      if (r.row === this.selected) li.setAttribute('aria-current', 'true');
      const refs = r.refs.map((x) => refName(x.name)).join(', ');
      const more = r.moreParents ? ` [+${r.moreParents} more parents]` : '';
      li.textContent = `${r.summary}${more} — ${r.author}, ${relativeTime(r.time)}, ${r.hash.slice(0, 8)}${refs ? ` (${refs})` : ''}`;
      return li;
    });
    this.a11y.replaceChildren(...items);
  }
}
