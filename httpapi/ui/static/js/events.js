// The last events, newest first, as the stream delivers them.

import { $, el, fmtTime } from './dom.js';

export class EventsView {
  constructor(keep) {
    this.keep = keep;
    this.head = 0;
  }

  add(ev) {
    const body = $('ev-list');
    const r = ev.reservation || {};
    const tr = el('tr', { 'data-offset': ev.offset, 'data-type': ev.type },
      el('td', { class: 'num' }, ev.offset),
      el('td', { class: 'mono' }, fmtTime(ev.at)),
      el('td', {}, ev.type + (ev.from ? ' (from ' + ev.from + ')' : '')),
      el('td', { class: 'mono' }, ev.resource_id || ev.limit_id || ''),
      el('td', { class: 'mono' }, r.id || ''),
      el('td', {}, r.user || ''),
      el('td', { class: 'num' }, r.quantity || ''));
    body.prepend(tr);
    while (body.children.length > this.keep) body.lastElementChild.remove();
    this.head = Math.max(this.head, ev.offset);
    $('ev-head').textContent = 'up to offset ' + this.head;
  }

  unavailable(why) {
    $('ev-list').replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, why)));
  }
}
