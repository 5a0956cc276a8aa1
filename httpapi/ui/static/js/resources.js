// The resources view: a list searched by id prefix and kind, and the
// selected resource in detail. Counts come from the API's committed
// state: when the event stream is readable, each event marks its
// resource for a re-read (from the node that streamed it, which has
// applied the event by then); without it, the list is polled.

import { $, el, show, fmtInt } from './dom.js';
import { enc } from './api.js';

const PAGE = 200;
const FLUSH_MS = 250;
// More dirty resources than this in one flush re-read the page instead.
const MAX_SINGLE_READS = 20;

export class ResourcesView {
  constructor(api, opts) {
    this.api = api;
    this.o = opts; // {isAdmin, onError, onEdit(resource), onCancel(reservation)}
    this.rows = new Map(); // id -> {tr, res}
    this.next = '';
    this.selected = '';
    this.dirty = new Set();
    this.consistency = 'leader';
    this.flushTimer = null;
    this.pollTimer = null;
    this.searchTimer = null;
    $('res-search').addEventListener('input', () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.reload(), 200);
    });
    $('res-kind').addEventListener('change', () => this.reload());
    $('res-more').addEventListener('click', () => this.loadPage(this.next));
    $('rd-edit').addEventListener('click', () => {
      const r = this.rows.get(this.selected);
      if (r) this.o.onEdit(r.res);
    });
  }

  // live switches to re-reads driven by events; poll to a timer.
  live() {
    this.consistency = 'stale';
    clearInterval(this.pollTimer);
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS);
  }

  poll(everyMs) {
    this.consistency = 'leader';
    clearInterval(this.flushTimer);
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(() => this.reload(true), everyMs);
  }

  stop() {
    clearInterval(this.flushTimer);
    clearInterval(this.pollTimer);
  }

  query(after) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const prefix = $('res-search').value.trim();
    const kind = $('res-kind').value;
    if (prefix) q.set('prefix', prefix);
    if (kind) q.set('kind', kind);
    if (after) q.set('after', after);
    if (this.consistency === 'stale') q.set('consistency', 'stale');
    return '/v1/resources?' + q;
  }

  async reload(keepRows) {
    if (!keepRows) {
      this.rows.clear();
      $('res-list').replaceChildren();
    }
    await this.loadPage('', keepRows);
  }

  async loadPage(after, keepRows) {
    let page;
    try {
      page = await this.api.get(this.query(after));
    } catch (err) {
      this.o.onError('resources: ' + err.message);
      return;
    }
    const seen = new Set();
    for (const r of page.items) {
      seen.add(r.id);
      this.upsert(r);
      if (r.kind === 'room' && !this.rows.get(r.id).res.nights) this.dirty.add(r.id);
    }
    if (keepRows && !after) {
      // A poll of the first page: drop rows of resources that are gone.
      for (const id of [...this.rows.keys()]) {
        if (!seen.has(id) && (!page.next || id < page.next)) this.remove(id);
      }
    }
    this.next = page.next || '';
    show('res-more', !!this.next);
    if (this.consistency === 'leader') this.flush();
    if (this.selected) this.showDetail(this.selected);
  }

  matches(id, kind) {
    const prefix = $('res-search').value.trim();
    const k = $('res-kind').value;
    return id.startsWith(prefix) && (!k || k === kind);
  }

  // onEvent takes one event of the stream.
  onEvent(ev) {
    const id = ev.resource_id;
    if (!id) return;
    if (ev.type === 'resource.deleted') { this.remove(id); return; }
    if (this.rows.has(id) || (ev.type === 'resource.created' && this.matches(id, ev.kind))) this.dirty.add(id);
  }

  async flush() {
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    if (ids.length > MAX_SINGLE_READS) {
      await this.reload(true);
      return;
    }
    await Promise.all(ids.map((id) => this.readOne(id)));
  }

  async readOne(id) {
    const q = this.consistency === 'stale' ? '?consistency=stale' : '';
    try {
      const r = await this.api.get('/v1/resources/' + enc(id) + q);
      if (this.rows.has(id) || this.matches(id, r.kind)) this.upsert(r);
      if (id === this.selected) this.showDetail(id);
    } catch (err) {
      if (err.code === 'not_found') this.remove(id);
      else this.o.onError('resource ' + id + ': ' + err.message);
    }
  }

  remove(id) {
    const row = this.rows.get(id);
    if (!row) return;
    row.tr.remove();
    this.rows.delete(id);
    if (this.selected === id) { this.selected = ''; show('res-detail', false); }
  }

  upsert(r) {
    const prev = this.rows.get(r.id);
    // A list item of a room has no nights; keep the last ones read.
    if (r.kind === 'room' && !r.nights && prev && prev.res.nights) r.nights = prev.res.nights;
    const c = counts(r);
    const cells = [
      el('td', { class: 'mono' }, r.id),
      el('td', {}, r.kind),
      el('td', { class: 'num available' }, c.available),
      el('td', { class: 'num held' }, c.held),
      el('td', { class: 'num confirmed' }, c.confirmed),
      el('td', {}, meter(c)),
    ];
    let tr;
    if (prev) {
      tr = prev.tr;
      const changed = prev.key !== c.key;
      tr.replaceChildren(...cells);
      if (changed) { tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash'); }
    } else {
      tr = el('tr', { 'data-id': r.id, onclick: () => this.select(r.id) }, ...cells);
      this.insertSorted(tr, r.id);
    }
    tr.classList.toggle('selected', r.id === this.selected);
    this.rows.set(r.id, { tr, res: r, key: c.key });
  }

  insertSorted(tr, id) {
    const body = $('res-list');
    for (const other of body.children) {
      if (other.dataset.id > id) { body.insertBefore(tr, other); return; }
    }
    body.append(tr);
  }

  select(id) {
    this.selected = id;
    for (const [rid, row] of this.rows) row.tr.classList.toggle('selected', rid === id);
    this.dirty.add(id);
    if (this.consistency === 'leader') this.flush();
    this.showDetail(id);
  }

  async showDetail(id) {
    const row = this.rows.get(id);
    if (!row) return;
    const r = row.res;
    show('res-detail', true);
    $('rd-title').textContent = r.id;
    const facts = [['kind', r.kind]];
    if (r.kind !== 'room') facts.push(['capacity', fmtInt(r.capacity)]);
    facts.push(['per-user limit', r.per_user_limit || 'none'], ['hold seconds', r.hold_seconds]);
    for (const k of ['opens_at', 'closes_at', 'cancel_deadline']) if (r[k]) facts.push([k.replace('_', ' '), r[k]]);
    if (r.limits && r.limits.length) facts.push(['limits', r.limits.join(', ')]);
    for (const [k, v] of Object.entries(r.attributes || {})) facts.push([k, v]);
    $('rd-spec').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    const nights = $('rd-nights');
    show(nights, r.kind === 'room');
    if (r.kind === 'room') {
      const rowsN = Object.entries(r.nights || {}).sort(([a], [b]) => (a < b ? -1 : 1));
      nights.tBodies[0].replaceChildren(...rowsN.map(([d, n]) => el('tr', { 'data-night': d },
        el('td', {}, d), el('td', { class: 'num' }, n.rooms), el('td', { class: 'num available' }, n.available),
        el('td', { class: 'num held' }, n.held), el('td', { class: 'num confirmed' }, n.confirmed))));
    }
    if (this.o.isAdmin) await this.showReservations(id);
  }

  async showReservations(id) {
    let page;
    try {
      page = await this.api.get('/v1/reservations?limit=50&resource=' + enc(id));
    } catch (err) {
      $('rd-reservations').replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'error' }, err.message)));
      return;
    }
    if (id !== this.selected) return;
    $('rd-reservations').replaceChildren(...page.items.map((v) => el('tr', { 'data-rid': v.id },
      el('td', { class: 'mono' }, v.id), el('td', {}, v.user), el('td', { class: 'num' }, v.quantity),
      el('td', {}, v.status),
      el('td', {}, v.status === 'held' || v.status === 'confirmed'
        ? el('button', { type: 'button', class: 'cancel', onclick: () => this.o.onCancel(v) }, 'Cancel') : ''))));
  }
}

// counts of a resource: units for vouchers and slots, room-nights summed
// over the nights read for rooms.
export function counts(r) {
  let available = r.available, held = r.held, confirmed = r.confirmed;
  if (r.kind === 'room') {
    if (!r.nights) return { available: '…', held: '…', confirmed: '…', total: 0, key: '' };
    available = held = confirmed = 0;
    for (const n of Object.values(r.nights)) { available += n.available; held += n.held; confirmed += n.confirmed; }
  }
  const total = available + held + confirmed;
  return { available, held, confirmed, total, key: available + '/' + held + '/' + confirmed };
}

function meter(c) {
  const fill = el('span');
  fill.style.width = c.total > 0 ? Math.round((100 * c.available) / c.total) + '%' : '0%';
  return el('span', { class: 'meter', title: 'available share' }, fill);
}
