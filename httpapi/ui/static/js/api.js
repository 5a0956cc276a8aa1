// API calls with the signed-in token. Every path is relative to the
// node that served the console, so it works behind the API's TLS and any
// proxy in front of it.

export class APIError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || '';
    this.problem = problem;
  }
}

export class API {
  constructor(token, onUnauthenticated) {
    this.token = token;
    this.onUnauthenticated = onUnauthenticated;
    this.node = '';
  }

  headers(extra) {
    return Object.assign({ Authorization: 'Bearer ' + this.token }, extra || {});
  }

  // call sends one request and returns the decoded JSON body (null for
  // 204); a problem answer throws APIError.
  async call(method, path, body, extra) {
    const init = { method, headers: this.headers(extra), cache: 'no-store' };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    const resp = await fetch(path, init);
    this.node = resp.headers.get('X-Allot-Node') || this.node;
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
    if (!resp.ok) {
      const err = new APIError(resp.status, data || {});
      if (resp.status === 401 && this.onUnauthenticated) this.onUnauthenticated(err);
      throw err;
    }
    return data;
  }

  get(path) { return this.call('GET', path); }
}

export function enc(id) {
  return encodeURIComponent(id);
}
