// Admin actions, each behind a confirm step that shows the request (and
// the body, or the reservation it acts on) before it is sent. Shown to admin tokens only; a 403 the API answers
// anyway is reported, not hidden.

import { $ } from './dom.js';
import { enc } from './api.js';

export class AdminView {
  constructor(api, onDone) {
    this.api = api;
    this.onDone = onDone;
    this.pendingAction = null;
    $('res-form').addEventListener('submit', (e) => { e.preventDefault(); this.reviewResource(); });
    $('cancel-form').addEventListener('submit', (e) => { e.preventDefault(); this.reviewCancel(); });
    $('confirm-ok').addEventListener('click', () => this.confirmed());
    $('confirm-back').addEventListener('click', () => { this.pendingAction = null; $('confirm').close(); });
  }

  // edit fills the form with a resource's spec: a PUT replaces the whole
  // spec, so every field it has must be sent again.
  edit(r) {
    const f = $('res-form').elements;
    f.id.value = r.id;
    f.kind.value = r.kind;
    f.capacity.value = r.capacity || 0;
    f.inventory.value = r.kind === 'room' ? JSON.stringify(r.inventory || []) : '';
    f.per_user_limit.value = r.per_user_limit;
    f.hold_seconds.value = r.hold_seconds;
    f.opens_at.value = r.opens_at || '';
    f.closes_at.value = r.closes_at || '';
    f.cancel_deadline.value = r.cancel_deadline || '';
    f.attributes.value = Object.keys(r.attributes || {}).length ? JSON.stringify(r.attributes) : '';
    f.limits.value = (r.limits || []).join(',');
    $('res-form').scrollIntoView();
  }

  resourceBody() {
    const f = $('res-form').elements;
    const body = { kind: f.kind.value };
    if (body.kind === 'room') {
      body.inventory = f.inventory.value.trim() ? JSON.parse(f.inventory.value) : [];
    } else {
      body.capacity = Number(f.capacity.value || 0);
    }
    if (f.per_user_limit.value !== '') body.per_user_limit = Number(f.per_user_limit.value);
    if (f.hold_seconds.value !== '') body.hold_seconds = Number(f.hold_seconds.value);
    for (const k of ['opens_at', 'closes_at', 'cancel_deadline']) if (f[k].value.trim()) body[k] = f[k].value.trim();
    if (f.attributes.value.trim()) body.attributes = JSON.parse(f.attributes.value);
    const limits = f.limits.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (limits.length) body.limits = limits;
    return body;
  }

  reviewResource() {
    const id = $('res-form').elements.id.value.trim();
    let body;
    try {
      body = this.resourceBody();
    } catch (err) {
      this.result('not sent: inventory and attributes must be JSON (' + err.message + ')', true);
      return;
    }
    this.ask('PUT /v1/resources/' + id, body, async () => {
      const r = await this.api.call('PUT', '/v1/resources/' + enc(id), body);
      this.result('saved ' + r.id + ' (' + r.kind + ')');
      this.onDone(r.id);
    });
  }

  async reviewCancel() {
    const rid = $('cancel-form').elements.rid.value.trim();
    let v;
    try {
      v = await this.api.get('/v1/reservations/' + enc(rid));
    } catch (err) {
      this.result('reservation ' + rid + ': ' + err.message, true);
      return;
    }
    this.cancel(v);
  }

  // cancel asks to cancel reservation v (as read from the API).
  cancel(v) {
    this.ask('POST /v1/reservations/' + v.id + '/cancel',
      { reservation: v.id, resource: v.resource_id, user: v.user, quantity: v.quantity, status: v.status }, async () => {
        const r = await this.api.call('POST', '/v1/reservations/' + enc(v.id) + '/cancel', {},
          { 'Idempotency-Key': 'console-cancel-' + v.id });
        this.result('reservation ' + r.id + ' is ' + r.status);
        this.onDone(r.resource_id);
      });
  }

  ask(title, body, action) {
    $('confirm-title').textContent = title;
    $('confirm-body').textContent = JSON.stringify(body, null, 2);
    this.pendingAction = action;
    $('confirm').showModal();
  }

  async confirmed() {
    const action = this.pendingAction;
    this.pendingAction = null;
    $('confirm').close();
    if (!action) return;
    try {
      await action();
    } catch (err) {
      const why = err.status === 403 ? 'not allowed for this token (403): ' : 'failed: ';
      this.result(why + err.message + (err.code ? ' [' + err.code + ']' : ''), true);
    }
  }

  result(text, failed) {
    const p = $('admin-result');
    p.textContent = text;
    p.classList.toggle('failed', !!failed);
  }
}
