// Room booking (bench scenario "hotel"): guests pick a room type and a
// stay of 1-7 nights of 1 or 2 rooms in 60 nights from 30 days ahead (one
// week has fewer rooms), try another room type when it is full, then
// mostly confirm, check in and complete (check-in and complete are the
// front desk's: the admin token); some cancel, some let the hold expire.
//
//   allot token --prefix g --count 5000 > tokens.txt
//   ADMIN_TOKEN=$(allot token --sub ops --role admin) TOKENS_FILE=tokens.txt \
//     k6 run deploy/k6/hotel.js
import { check, sleep } from 'k6';
import { PREFIX, ADMIN, tokens, user, key, send, code, body, put, runID, day } from './lib.js';

const TYPES = Number(__ENV.ROOM_TYPES || 3);
const ROOMS = Number(__ENV.ROOMS || 20);
const LEAD = 30;
const NIGHTS = 60;
const LEAN_FROM = 14;
const LEAN_TO = 21;
const MAX_STAY = 7;
const HOLD_SECONDS = 8;
const TRIES = 2; // room types a guest tries for the same stay
const THINK = 0.2;

export const options = {
  scenarios: {
    hotel: { executor: 'shared-iterations', vus: Number(__ENV.VUS || 50), iterations: tokens.length, maxDuration: '10m' },
  },
  thresholds: { checks: ['rate==1.0'] },
};

function roomType(i) {
  return PREFIX + '-htl-t' + String(i).padStart(3, '0');
}

export function setup() {
  for (let i = 0; i < TYPES; i++) {
    put('/v1/resources/' + roomType(i), {
      kind: 'room', per_user_limit: 0, hold_seconds: HOLD_SECONDS,
      inventory: [
        { from: day(LEAD), to: day(LEAD + NIGHTS), rooms: ROOMS },
        { from: day(LEAD + LEAN_FROM), to: day(LEAD + LEAN_TO), rooms: Math.max(1, Math.floor(ROOMS * 2 / 5)) },
      ],
    });
  }
  return { run: runID() };
}

function step(token, run, name, rid, what) {
  sleep(THINK);
  const res = send('POST', '/v1/reservations/' + rid + '/' + what, null, token, key(run, name), what);
  const ok = res.status === 200 || (what === 'confirm' && res.status === 409 && code(res) === 'expired');
  check(res, { [what + ': 200']: () => ok });
  return res.status === 200;
}

export default function (data) {
  const token = user();
  if (token === null) {
    return;
  }
  const nights = 1 + Math.floor(Math.random() * MAX_STAY);
  const checkIn = LEAD + Math.floor(Math.random() * (NIGHTS - nights + 1));
  const stay = { quantity: Math.random() < 0.1 ? 2 : 1, check_in: day(checkIn), check_out: day(checkIn + nights) };
  let type = Math.floor(Math.random() * TYPES);
  let rid = null;
  for (let t = 0; t < TRIES && rid === null; t++) {
    const res = send('POST', '/v1/resources/' + roomType(type) + '/reservations', stay, token, key(data.run, 'a' + t), 'reserve');
    if (res.status === 201) {
      rid = body(res).id;
    } else {
      check(res, { 'reserve: 201 or sold_out': (r) => r.status === 409 && code(r) === 'sold_out' });
      type = (type + 1) % TYPES;
    }
  }
  if (rid === null) {
    return;
  }
  const roll = Math.random() * 100;
  if (roll < 80) {
    if (!step(token, data.run, 'c', rid, 'confirm')) {
      return;
    }
    if (roll < 35) {
      step(ADMIN, data.run, 'i', rid, 'check-in') && step(ADMIN, data.run, 'd', rid, 'complete');
    } else if (roll < 45) {
      step(ADMIN, data.run, 'i', rid, 'check-in');
    } else if (roll < 55) {
      step(token, data.run, 'x', rid, 'cancel');
    }
  } else if (roll < 90) {
    step(token, data.run, 'x', rid, 'cancel');
  }
  // else: the hold expires.
}
