// The cluster view: GET /v1/cluster of the node this console talks to,
// polled.

import { $, el, setText, fmtInt } from './dom.js';

export class ClusterView {
  constructor(api, onError) {
    this.api = api;
    this.onError = onError;
    this.timer = null;
    this.info = null;
    this.failed = false;
  }

  start(everyMs) {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), everyMs);
  }

  stop() { clearInterval(this.timer); }

  async refresh() {
    let info;
    try {
      info = await this.api.get('/v1/cluster');
    } catch (err) {
      this.failed = true;
      this.onError('cluster: ' + err.message);
      return;
    }
    if (this.failed) { this.failed = false; this.onError(''); }
    this.info = info;
    const leader = info.leader ? info.leader.id : 'none known';
    setText('cl-leader', leader);
    setText('cl-term', info.term);
    setText('cl-commit', fmtInt(info.commit_index));
    setText('cl-applied', fmtInt(info.applied_index));
    setText('cl-lag', fmtInt(info.apply_lag));
    const ready = $('cl-ready');
    ready.textContent = info.ready ? 'ready' : 'not ready: ' + (info.reason || '');
    ready.className = info.ready ? 'ok' : 'bad';
    const lc = info.last_contact_seconds;
    setText('cl-contact', lc === null || lc === undefined ? 'never' : lc === 0 ? 'leads' : lc.toFixed(2) + ' s ago');
    setText('served-by', 'node ' + info.id + ' (' + info.state + ')');
    const body = $('cl-nodes');
    body.replaceChildren(...(info.nodes || []).map((n) => {
      const leads = info.leader && info.leader.id === n.id;
      return el('tr', { 'data-node': n.id },
        el('td', {}, n.id + (n.id === info.id ? ' (this)' : '')),
        el('td', { class: 'state-' + String(n.state).toLowerCase() }, leads ? 'leader' : n.state),
        el('td', {}, n.voter ? 'yes' : 'no'),
        el('td', { class: 'mono' }, n.http_addr || '-'));
    }));
  }
}
