// The rates strip: accepted, sold out, limited and expired per second,
// over the last minute.
//
// Rejections (sold out, limited) never reach the log, so no event tells
// of them: they come from allot_reservations_total in the node's
// /metrics, which moves on the leader only (decisions are made there).
// With the event stream readable, accepted (new reservations) and expired
// come from the events, which every node has; without it, from /metrics too.

import { $ } from './dom.js';

const WINDOW = 60;
const NAMES = ['accepted', 'sold_out', 'limited', 'expired'];

export class RatesView {
  constructor() {
    this.fromEvents = false;
    this.series = Object.fromEntries(NAMES.map((n) => [n, []])); // per second, oldest first
    this.pending = Object.fromEntries(NAMES.map((n) => [n, 0]));
    this.totals = Object.fromEntries(NAMES.map((n) => [n, 0]));
    this.lastMetrics = null;
    this.timer = null;
    this.nodeLeads = true;
  }

  start(fromEvents) {
    this.fromEvents = fromEvents;
    this.describe();
    this.timer = setInterval(() => this.tick(), 1000);
    this.scrape();
  }

  stop() { clearInterval(this.timer); }

  setLeads(leads) {
    if (leads !== this.nodeLeads) { this.nodeLeads = leads; this.describe(); }
  }

  describe() {
    let s = 'sold out and limited: this node\'s /metrics (decisions are counted on the leader)';
    s += this.fromEvents ? '; accepted and expired: the event stream' : '; accepted and expired: /metrics too (no event access)';
    if (!this.nodeLeads) s += '. This node does not lead: its decision counters stay flat; open the leader\'s console for them.';
    $('rates-source').textContent = s;
  }

  // onEvent counts committed new reservations and expiries.
  onEvent(ev) {
    if (!this.fromEvents) return;
    if ((ev.type === 'reservation.held' || ev.type === 'reservation.confirmed') && !ev.from) this.bump('accepted', 1);
    else if (ev.type === 'reservation.expired') this.bump('expired', 1);
  }

  bump(name, n) {
    this.pending[name] += n;
    this.totals[name] += n;
  }

  async scrape() {
    let text;
    try {
      const resp = await fetch('/metrics', { cache: 'no-store' });
      if (!resp.ok) return;
      text = await resp.text();
    } catch {
      return;
    }
    const m = decisions(text);
    if (this.lastMetrics) {
      const d = (k) => Math.max(0, (m[k] || 0) - (this.lastMetrics[k] || 0));
      this.bump('sold_out', d('sold_out'));
      this.bump('limited', d('limit_exceeded'));
      if (!this.fromEvents) {
        this.bump('accepted', d('held') + d('confirmed'));
        this.bump('expired', d('expired'));
      }
    }
    this.lastMetrics = m;
  }

  async tick() {
    await this.scrape();
    for (const n of NAMES) {
      const s = this.series[n];
      s.push(this.pending[n]);
      if (s.length > WINDOW) s.shift();
      this.pending[n] = 0;
      const box = document.querySelector(`.rate[data-rate="${n}"]`);
      box.querySelector('.now').textContent = String(s[s.length - 1]);
      box.querySelector('.total').textContent = String(this.totals[n]);
      draw(box.querySelector('canvas'), s);
    }
  }
}

// decisions sums allot_reservations_total over kinds, by outcome.
export function decisions(text) {
  const out = {};
  const re = /^allot_reservations_total\{([^}]*)\}\s+(\S+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const o = /outcome="([^"]*)"/.exec(m[1]);
    if (!o) continue;
    out[o[1]] = (out[o[1]] || 0) + Number(m[2]);
  }
  return out;
}

function draw(canvas, s) {
  const g = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...s);
  const bw = w / WINDOW;
  g.fillStyle = '#2f6fde';
  s.forEach((v, i) => {
    const bh = Math.round((v / max) * (h - 2));
    g.fillRect(w - (s.length - i) * bw, h - bh, Math.max(1, bw - 1), bh);
  });
}
