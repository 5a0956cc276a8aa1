// Appointment booking (bench scenario "hospital"): patients pick a doctor
// (low numbers are the popular ones), a day and a half-hour slot, and try
// other slots of that day when one is full. The hospital allows one
// booking per patient a day whichever doctor: one limit group per day
// (per_user 1) that every slot of the day names. Most confirm, some
// cancel, some let the hold expire; some try a second doctor the same day
// (refused while the first booking stands), some cancel and rebook.
//
//   allot token --prefix p --count 5000 > tokens.txt
//   ADMIN_TOKEN=$(allot token --sub ops --role admin) TOKENS_FILE=tokens.txt \
//     k6 run deploy/k6/hospital.js
import { check, sleep } from 'k6';
import { PREFIX, tokens, user, key, send, code, body, put, runID, day } from './lib.js';

const DOCTORS = Number(__ENV.DOCTORS || 4);
const DAYS = Number(__ENV.DAYS || 7);
const SLOTS = 16; // 08:00 to 16:00, every half hour
const CAPACITY = Number(__ENV.SLOT_CAPACITY || 2);
const HOLD_SECONDS = 5;
const TRIES = 3; // slots of the day a patient tries
const THINK = 0.3;

export const options = {
  scenarios: {
    hospital: { executor: 'shared-iterations', vus: Number(__ENV.VUS || 50), iterations: tokens.length, maxDuration: '10m' },
  },
  thresholds: { checks: ['rate==1.0'] },
};

function dayLimit(d) {
  return PREFIX + '-hos-day-' + day(1 + d).split('-').join('');
}

function slot(doctor, d, s) {
  const minutes = 8 * 60 + 30 * s;
  const hhmm = String(Math.floor(minutes / 60)).padStart(2, '0') + String(minutes % 60).padStart(2, '0');
  return PREFIX + '-hos-d' + String(doctor).padStart(3, '0') + '-' + day(1 + d).split('-').join('') + '-' + hhmm;
}

export function setup() {
  for (let d = 0; d < DAYS; d++) {
    put('/v1/limits/' + dayLimit(d), { per_user: 1, capacity: 0, attributes: { hospital: 'k6', date: day(1 + d) } });
  }
  for (let doctor = 0; doctor < DOCTORS; doctor++) {
    for (let d = 0; d < DAYS; d++) {
      for (let s = 0; s < SLOTS; s++) {
        put('/v1/resources/' + slot(doctor, d, s), {
          kind: 'slot', capacity: CAPACITY, per_user_limit: 1, hold_seconds: HOLD_SECONDS,
          attributes: { doctor: 'Dr. ' + String(doctor).padStart(3, '0') }, limits: [dayLimit(d)],
        });
      }
    }
  }
  return { run: runID() };
}

// book tries up to TRIES slots of doctor's day d, from slot s on; it
// returns the reservation id, or null if every slot tried was full.
function book(token, run, step, doctor, d, s) {
  for (let t = 0; t < TRIES; t++) {
    const res = send('POST', '/v1/resources/' + slot(doctor, d, (s + t) % SLOTS) + '/reservations', { quantity: 1 },
      token, key(run, step + t), 'reserve');
    if (res.status === 201) {
      return body(res).id;
    }
    check(res, { 'reserve: 201 or sold_out': (r) => r.status === 409 && code(r) === 'sold_out' });
  }
  return null;
}

// another tries a slot of another doctor the same day.
function another(token, run, step, doctor, d) {
  const other = DOCTORS > 1 ? (doctor + 1 + Math.floor(Math.random() * (DOCTORS - 1))) % DOCTORS : doctor;
  return send('POST', '/v1/resources/' + slot(other, d, Math.floor(Math.random() * SLOTS)) + '/reservations',
    { quantity: 1 }, token, key(run, step), 'reserve another doctor');
}

function transition(token, run, step, rid, what) {
  sleep(THINK);
  const res = send('POST', '/v1/reservations/' + rid + '/' + what, null, token, key(run, step), what);
  // A hold may run out during the think time under heavy load: `expired`.
  check(res, { [what + ': 200']: (r) => r.status === 200 || (r.status === 409 && code(r) === 'expired') });
  return res;
}

function refusedByDayLimit(r) {
  return r.status === 409 && (code(r) === 'limit_exceeded' || code(r) === 'sold_out');
}

export default function (data) {
  const token = user();
  if (token === null) {
    return;
  }
  const u = Math.random();
  const doctor = Math.floor(u * u * DOCTORS);
  const d = Math.floor(Math.random() * DAYS);
  const rid = book(token, data.run, 'a', doctor, d, Math.floor(Math.random() * SLOTS));
  if (rid === null) {
    return;
  }
  const roll = Math.random() * 100;
  if (roll < 66) {
    transition(token, data.run, 'c', rid, 'confirm');
  } else if (roll < 74) {
    transition(token, data.run, 'c', rid, 'confirm');
    sleep(THINK);
    check(another(token, data.run, 'b', doctor, d), { 'second doctor the same day: refused': refusedByDayLimit });
  } else if (roll < 76) {
    sleep(THINK);
    check(another(token, data.run, 'b', doctor, d), { 'second doctor while holding: refused': refusedByDayLimit });
    transition(token, data.run, 'c', rid, 'confirm');
  } else if (roll < 80) {
    transition(token, data.run, 'c', rid, 'confirm');
    transition(token, data.run, 'x', rid, 'cancel');
  } else if (roll < 86) {
    const cancelled = transition(token, data.run, 'x', rid, 'cancel');
    sleep(THINK);
    const again = another(token, data.run, 'b', doctor, d);
    // Once cancelled, the day is free again (unless that slot is full).
    check(again, { 'rebook after cancel: 201 or sold_out': (r) => r.status === 201 || (r.status === 409 && code(r) === 'sold_out') ||
      (cancelled.status === 409 && refusedByDayLimit(r)) });
    if (again.status === 201) {
      transition(token, data.run, 'c2', body(again).id, 'confirm');
    }
  } else if (roll < 92) {
    transition(token, data.run, 'x', rid, 'cancel');
  }
  // else: the hold expires.
}
