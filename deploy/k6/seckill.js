// Flash sale (bench scenario "seckill"): every user tries once to grab a
// unit of one of VOUCHERS vouchers of STOCK units each, per-user limit 1.
// Most winners pay at once (confirm), some leave the hold, and a few click
// again with a new key, which the per-user limit must refuse.
//
//   allot token --prefix u --count 10000 > tokens.txt
//   ADMIN_TOKEN=$(allot token --sub ops --role admin) TOKENS_FILE=tokens.txt \
//     k6 run deploy/k6/seckill.js
import { check } from 'k6';
import { PREFIX, tokens, user, pick, key, send, code, body, put, runID } from './lib.js';

const VOUCHERS = Number(__ENV.VOUCHERS || 4);
const STOCK = Number(__ENV.STOCK || 100);

export const options = {
  scenarios: {
    seckill: { executor: 'shared-iterations', vus: Number(__ENV.VUS || 50), iterations: tokens.length, maxDuration: '10m' },
  },
  thresholds: { checks: ['rate==1.0'] },
};

function voucher(i) {
  return PREFIX + '-sk-v' + String(i).padStart(3, '0');
}

export function setup() {
  for (let i = 0; i < VOUCHERS; i++) {
    put('/v1/resources/' + voucher(i), {
      kind: 'voucher', capacity: STOCK, per_user_limit: 1, hold_seconds: 900, attributes: { sale: 'flash' },
    });
  }
  return { run: runID() };
}

export default function (data) {
  const token = user();
  if (token === null) {
    return;
  }
  const ids = [];
  for (let i = 0; i < VOUCHERS; i++) {
    ids.push(voucher(i));
  }
  const target = pick(ids);
  const path = '/v1/resources/' + target + '/reservations';
  const res = send('POST', path, { quantity: 1 }, token, key(data.run, 'a'), 'reserve');
  const won = res.status === 201;
  check(res, { 'reserve: 201 or sold_out': (r) => won || (r.status === 409 && code(r) === 'sold_out') });
  if (!won) {
    return;
  }
  const rid = body(res).id;
  const roll = Math.random() * 100;
  if (roll >= 95) {
    const again = send('POST', path, { quantity: 1 }, token, key(data.run, 'b'), 'reserve again');
    check(again, { 'second click: refused by the per-user limit': (r) => r.status === 409 && code(r) === 'limit_exceeded' });
  }
  if (roll < 85 || roll >= 95) {
    const paid = send('POST', '/v1/reservations/' + rid + '/confirm', null, token, key(data.run, 'c'), 'confirm');
    check(paid, { 'confirm: 200 confirmed': (r) => r.status === 200 && body(r).status === 'confirmed' });
  }
}
