// Small DOM helpers. Text goes in through textContent only, never as
// HTML, so values from the API (ids, attributes, user names) cannot
// inject markup.

export const $ = (id) => document.getElementById(id);

// el builds an element: el('td', {class: 'num'}, '12', child, ...).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function setText(id, v) {
  const e = $(id);
  if (e) e.textContent = v === undefined || v === null ? '-' : String(v);
}

export function show(elOrId, visible) {
  const e = typeof elOrId === 'string' ? $(elOrId) : elOrId;
  e.hidden = !visible;
}

export function fmtInt(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '-';
}

// fmtTime shows the time of day of an RFC 3339 time, with milliseconds.
export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  return d.toISOString().slice(11, 23);
}
