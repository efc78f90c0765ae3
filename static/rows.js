// The row cache: rows arrive from the `graph` window API in chunks of CHUNK rows; a bounded
// number of chunks is kept (least recently used ones are dropped), so memory does not grow with
// the history's size however far the user scrolls.

import { api } from './api.js';

export const CHUNK = 200;
const MAX_CHUNKS = 300; // 60,000 rows
const MAX_IN_FLIGHT = 6;

export class RowStore {
  constructor(onLoad) {
    this.onLoad = onLoad;
    this.total = 0;
    this.width = 0;
    this.version = 0;
    this.chunks = new Map(); // index -> {rows, through, used}
    this.pending = new Map(); // index -> AbortController
    this.wanted = [];
    this.tick = 0;
    this.generation = 0;
  }

  /** Forget every row (after a change that moved them). */
  reset(total) {
    for (const c of this.pending.values()) c.abort();
    this.pending.clear();
    this.chunks.clear();
    this.total = total;
    this.generation++;
  }

  /** The row, if loaded. */
  row(r) {
    const c = this.chunks.get(Math.floor(r / CHUNK));
    if (!c) return null;
    c.used = ++this.tick;
    return c.rows[r - c.offset] || null;
  }

  /** Edges from rows above `first` that reach row `first` or below, if that chunk is loaded. */
  edgesInto(first) {
    const idx = Math.floor(first / CHUNK);
    const c = this.chunks.get(idx);
    if (!c) return null;
    const out = [];
    for (const t of c.through) {
      if (t.edge.parentRow >= first) out.push({ childRow: t.childRow, childLane: t.childLane, edge: t.edge });
    }
    for (let r = c.offset; r < first; r++) {
      const row = c.rows[r - c.offset];
      if (!row) continue;
      for (const e of row.edges) {
        if (e.parentRow >= first) out.push({ childRow: row.row, childLane: row.lane, edge: e });
      }
    }
    return out;
  }

  /** Asks for the chunks covering rows a..b (nearest first), dropping requests no longer needed. */
  ensure(a, b) {
    if (this.total === 0) return;
    a = Math.max(0, a);
    b = Math.min(this.total - 1, b);
    const first = Math.floor(a / CHUNK);
    const last = Math.floor(b / CHUNK);
    const need = [];
    for (let i = first; i <= last; i++) {
      const c = this.chunks.get(i);
      if (c) c.used = ++this.tick;
      else need.push(i);
    }
    for (const [i, ctl] of this.pending) {
      if (i < first - 2 || i > last + 2) {
        ctl.abort();
        this.pending.delete(i);
      }
    }
    const mid = (first + last) / 2;
    need.sort((x, y) => Math.abs(x - mid) - Math.abs(y - mid));
    for (const i of need) {
      if (this.pending.size >= MAX_IN_FLIGHT) break;
      if (!this.pending.has(i)) this.fetch(i);
    }
  }

  async fetch(i) {
    const ctl = new AbortController();
    this.pending.set(i, ctl);
    const generation = this.generation;
    try {
      const w = await api(`/graph?offset=${i * CHUNK}&limit=${CHUNK}`, { signal: ctl.signal });
      if (generation !== this.generation) return;
      this.width = w.width;
      this.version = w.version;
      this.total = w.total;
      this.chunks.set(i, { offset: i * CHUNK, rows: w.rows, through: w.through, used: ++this.tick });
      this.evict();
      this.onLoad();
    } catch (e) {
      if (e.name !== 'AbortError') console.warn('graph window', i, e);
    } finally {
      if (this.pending.get(i) === ctl) this.pending.delete(i);
    }
  }

  evict() {
    if (this.chunks.size <= MAX_CHUNKS) return;
    const byAge = [...this.chunks.entries()].sort((x, y) => x[1].used - y[1].used);
    for (const [i] of byAge.slice(0, this.chunks.size - MAX_CHUNKS)) this.chunks.delete(i);
  }
}
