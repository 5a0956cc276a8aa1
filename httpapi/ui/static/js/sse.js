// A Server-Sent Events reader on fetch(). EventSource cannot send an
// Authorization header and the API takes the token only there (a token
// in a URL ends up in logs and proxies), so the stream is read from the
// response body and parsed here. It reconnects with the last offset it
// saw, as EventSource would with Last-Event-ID.

import { APIError } from './api.js';

export class EventStream {
  // opts: {api, after, onEvent(ev), onState(text), onGone(problem), onDenied(err)}
  constructor(opts) {
    this.o = opts;
    this.last = opts.after || 0;
    this.abort = null;
    this.stopped = false;
    this.backoff = 500;
  }

  start() { this.loop(); }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  async loop() {
    while (!this.stopped) {
      try {
        await this.once();
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof APIError && err.status === 403) { this.o.onDenied(err); return; }
        if (err instanceof APIError && err.status === 401) return;
        if (err instanceof APIError && err.code === 'offset_compacted') {
          this.last = Math.max(0, (err.problem.earliest || 1) - 1);
          this.o.onGone(err.problem);
          continue;
        }
        this.o.onState('stream interrupted (' + err.message + '); reconnecting');
      }
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, this.backoff));
      this.backoff = Math.min(this.backoff * 2, 10000);
    }
  }

  async once() {
    this.abort = new AbortController();
    const headers = this.o.api.headers({ Accept: 'text/event-stream' });
    if (this.last > 0) headers['Last-Event-ID'] = String(this.last);
    const resp = await fetch('/v1/events/stream?after=' + this.last, { headers, signal: this.abort.signal, cache: 'no-store' });
    if (!resp.ok) {
      let p = {};
      try { p = await resp.json(); } catch { /* not a problem body */ }
      throw new APIError(resp.status, p);
    }
    this.o.onState('');
    this.backoff = 500;
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let frame = { id: null, event: '', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          this.dispatch(frame);
          frame = { id: null, event: '', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue; // keepalive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'id') frame.id = val;
        else if (field === 'event') frame.event = val;
        else if (field === 'data') frame.data.push(val);
      }
    }
  }

  dispatch(frame) {
    // An id-only frame moves the cursor past events the filters skipped.
    if (frame.id !== null && /^\d+$/.test(frame.id)) this.last = Number(frame.id);
    if (frame.data.length === 0) return;
    let ev;
    try { ev = JSON.parse(frame.data.join('\n')); } catch { return; }
    this.o.onEvent(ev);
  }
}
