// Shared helpers of the allot k6 scripts: configuration from the
// environment, tokens from a file, and requests that carry an
// Idempotency-Key and retry 429/503 with the same key, honouring
// Retry-After, as an allot client must.
//
// Environment:
//   ALLOT_URLS    comma-separated node URLs (default http://localhost:8080);
//                 each VU talks to one, followers forward to the leader
//   TOKENS_FILE   user tokens, one per line: `allot token --prefix u --count N`
//   ADMIN_TOKEN   an admin token: `allot token --sub ops --role admin`
//   PREFIX        resource id prefix of this run (default k6)
import http from 'k6/http';
import { sleep } from 'k6';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';

export const PREFIX = __ENV.PREFIX || 'k6';
export const ADMIN = __ENV.ADMIN_TOKEN || '';
const URLS = (__ENV.ALLOT_URLS || 'http://localhost:8080').split(',').map((u) => u.trim()).filter((u) => u);
const MAX_ATTEMPTS = 10;

// tokens is the user tokens of TOKENS_FILE; line i is user u(i+1).
export const tokens = new SharedArray('tokens', function () {
  if (!__ENV.TOKENS_FILE) {
    throw new Error('TOKENS_FILE is not set: allot token --prefix u --count N > tokens.txt');
  }
  return open(__ENV.TOKENS_FILE).split('\n').map((l) => l.trim()).filter((l) => l);
});

// base is the node this VU talks to.
export function base() {
  return URLS[exec.vu.idInTest % URLS.length];
}

// user is the token of this iteration's user: every iteration of the test
// is a new user, until the tokens run out (then null).
export function user() {
  const i = exec.scenario.iterationInTest;
  return i < tokens.length ? tokens[i] : null;
}

// pick is a random element of list.
export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// key is an Idempotency-Key unique to this run, iteration and step.
export function key(run, step) {
  return run + '-' + exec.scenario.iterationInTest + '-' + step;
}

// send makes one API call and retries 429 and 503 (also outcome_unknown)
// with the same Idempotency-Key, waiting Retry-After. It returns the last
// answer.
export function send(method, path, body, token, idemKey, name) {
  const headers = { Authorization: 'Bearer ' + token };
  if (body !== null) {
    headers['Content-Type'] = 'application/json';
  }
  if (idemKey) {
    headers['Idempotency-Key'] = idemKey;
  }
  const payload = body === null ? null : JSON.stringify(body);
  let res;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    res = http.request(method, base() + path, payload, { headers: headers, tags: { name: name } });
    if (res.status !== 429 && res.status !== 503) {
      return res;
    }
    sleep(Number(res.headers['Retry-After'] || 1));
  }
  return res;
}

// code is the problem code of an error answer ('' for none).
export function code(res) {
  try {
    return JSON.parse(res.body).code || '';
  } catch (e) {
    return '';
  }
}

// body is the decoded JSON body of an answer (null if none).
export function body(res) {
  try {
    return JSON.parse(res.body);
  } catch (e) {
    return null;
  }
}

// put creates or replaces an object as admin (setup) and fails the run if
// it cannot.
export function put(path, spec) {
  const res = send('PUT', path, spec, ADMIN, '', 'setup');
  if (res.status !== 200 && res.status !== 201) {
    throw new Error('PUT ' + path + ': ' + res.status + ' ' + res.body);
  }
}

// runID names this run's Idempotency-Keys (setup returns it to every VU).
export function runID() {
  return PREFIX + '-' + Date.now().toString(36);
}

// day is the date n days from today, YYYY-MM-DD (UTC).
export function day(n) {
  const d = new Date(Date.now() + n * 86400000);
  return d.toISOString().slice(0, 10);
}
