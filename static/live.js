// The live connection: a WebSocket that reconnects with exponential backoff (1 s doubling to
// 30 s) and reports its state; after a reconnect the page resyncs.

import { socketUrl } from './api.js';

export class Live {
  constructor({ onMessage, onState }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.delay = 1000;
    this.connectedOnce = false;
    this.connect();
    window.addEventListener('online', () => this.retryNow());
    window.addEventListener('offline', () => this.onState('offline'));
  }

  /** `quietly`: the server asked for it (the chip goes on saying connected). */
  connect({ quietly = false } = {}) {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (!quietly) this.onState(this.connectedOnce ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.delay = 1000;
      const again = this.connectedOnce;
      this.connectedOnce = true;
      this.onState('connected');
      if (again) this.onMessage({ type: 'resync', reason: 'reconnected' });
    });
    ws.addEventListener('message', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      // The clone's progress socket ends as the graph is served: connect again at once, as a
      // viewer (the reconnect resyncs).
      if (msg.type === 'resync' && (msg.reason === 'ready' || msg.reason === 'served')) {
        this.reopen = true;
        return;
      }
      this.onMessage(msg);
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws || this.stopped) return;
      if (this.reopen) {
        this.reopen = false;
        this.delay = 1000;
        this.connect({ quietly: true });
        return;
      }
      this.onState(navigator.onLine === false ? 'offline' : 'reconnecting');
      this.schedule();
    });
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const jitter = Math.random() * 0.3 * this.delay;
    this.timer = setTimeout(() => this.connect(), this.delay + jitter);
    this.delay = Math.min(this.delay * 2, 30000);
  }

  /** Closes the connection for good (the repository does not exist). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  retryNow() {
    if (this.stopped) return;
    this.delay = 1000;
    if (!this.ws || this.ws.readyState === WebSocket.CLOSED) this.connect();
  }
}
