// Building DOM nodes. Text always goes through textContent (never
// innerHTML), so task names, labels and log output cannot inject markup.

/** h('div', {class: 'x', onclick: f}, child, 'text', [children]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** A link to a hash route; `route` parts are URI-encoded. */
export function link(text, ...route) {
  return h('a', { href: '#/' + route.map(encodeURIComponent).join('/') }, text);
}

export function table(headers, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function section(title, ...body) {
  return h('section', {}, h('h2', {}, title), ...body);
}

// Escape sequences (colours, cursor moves) and other control characters
// a terminal would interpret: shown as nothing, never as markup.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]|[\u0000-\u0008\u000b-\u001f\u007f]/g;
export function plain(text) {
  return text.replace(ANSI, '');
}
