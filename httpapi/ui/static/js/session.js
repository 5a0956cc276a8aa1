// The token lives in sessionStorage: it is gone when the tab closes and
// is never written to a cookie or a URL.

const KEY = 'allot.token';

export function savedToken() {
  return sessionStorage.getItem(KEY) || '';
}

export function saveToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// claims reads a JWT's payload without checking it: the console uses it
// only to decide what to show; the server checks the token on every call.
export function claims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('a token has three dot-separated parts');
  let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
  while (b64.length % 4) b64 += '=';
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const c = JSON.parse(new TextDecoder().decode(bytes));
  return { sub: String(c.sub || ''), role: c.role || 'user', exp: c.exp };
}
