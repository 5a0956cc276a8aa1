// The console's entry point: sign-in, then the views wired to one API
// client. Users get what the API shows a user (no event stream: counts
// are polled); consumers also read the stream; admins also get the
// admin actions.

import { $, show, setText } from './dom.js';
import { API } from './api.js';
import { savedToken, saveToken, forgetToken, claims } from './session.js';
import { EventStream } from './sse.js';
import { ClusterView } from './cluster.js';
import { ResourcesView } from './resources.js';
import { EventsView } from './events.js';
import { RatesView } from './rates.js';
import { AdminView } from './admin.js';

const KEEP_EVENTS = 50;
const POLL_MS = 2000;

function notice(text) { $('notice').textContent = text || ''; }

// signedOut forgets the token and starts the page afresh (so that no view
// of the old session keeps running), showing why.
function signedOut(why) {
  forgetToken();
  sessionStorage.setItem('allot.signout', why || '');
  location.reload();
}

class Session {
  constructor(token, who) {
    this.who = who;
    this.isAdmin = who.role === 'admin';
    this.api = new API(token, (err) => signedOut('The token was refused: ' + err.message));
    this.cluster = new ClusterView(this.api, notice);
    this.events = new EventsView(KEEP_EVENTS);
    this.rates = new RatesView();
    this.admin = new AdminView(this.api, (id) => this.resources.select(id));
    this.resources = new ResourcesView(this.api, {
      isAdmin: this.isAdmin,
      onError: notice,
      onEdit: (r) => this.admin.edit(r),
      onCancel: (v) => this.admin.cancel(v),
    });
    this.stream = null;
  }

  async start() {
    for (const e of document.querySelectorAll('.admin-only')) e.hidden = !this.isAdmin;
    setText('whoami', this.who.sub + ' (' + this.who.role + ')');
    this.cluster.start(POLL_MS);
    this.clusterWatch = setInterval(() => {
      const i = this.cluster.info;
      if (i) this.rates.setLeads(!!i.leader && i.leader.id === i.id);
    }, 1000);
    // The stream needs an admin or consumer token; the API says so with
    // 403, and then the console polls. The cursor is taken before the
    // resources are read, so that every event the first read may have
    // missed is streamed and re-read.
    let after = 0;
    try {
      const first = await this.api.get('/v1/events?limit=1&after=0');
      after = Math.max(first.earliest - 1, first.head - KEEP_EVENTS);
      const page = await this.api.get('/v1/events?limit=' + KEEP_EVENTS + '&after=' + after);
      for (const ev of page.events) this.events.add(ev);
      after = page.next;
    } catch (err) {
      await this.resources.reload();
      if (err.status !== 401) this.pollInstead(err);
      return;
    }
    await this.resources.reload();
    this.rates.start(true);
    this.resources.live();
    this.stream = new EventStream({
      api: this.api,
      after,
      onEvent: (ev) => { this.events.add(ev); this.rates.onEvent(ev); this.resources.onEvent(ev); },
      onState: notice,
      onGone: () => { notice('events were pruned while away; counts re-read'); this.resources.reload(true); },
      onDenied: (err) => this.pollInstead(err),
    });
    this.stream.start();
  }

  pollInstead(err) {
    if (this.stream) this.stream.stop();
    this.events.unavailable(err.status === 403
      ? 'The event stream needs an admin or consumer token; counts are polled every ' + POLL_MS / 1000 + ' s.'
      : 'Events unavailable: ' + err.message);
    this.rates.start(false);
    this.resources.poll(POLL_MS);
  }
}

function signIn(token) {
  let who;
  try {
    who = claims(token);
  } catch (err) {
    signedOut('That is not a JWT: ' + err.message);
    return;
  }
  saveToken(token);
  show('signin', false);
  show('console', true);
  show('sign-out', true);
  new Session(token, who).start();
}

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim().replace(/^Bearer\s+/i, '');
  $('token').value = '';
  if (t) signIn(t);
});
$('sign-out').addEventListener('click', () => signedOut(''));

$('signin-error').textContent = sessionStorage.getItem('allot.signout') || '';
sessionStorage.removeItem('allot.signout');
const t = savedToken();
if (t) signIn(t);

