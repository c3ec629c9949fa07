// Talking to the master: credentials, operator calls, the SUBSCRIBE stream.

const KEY = 'tepui.auth';

export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}${body ? ': ' + body : ''}`);
    this.status = status;
    this.body = body;
  }
}

/** Basic credentials the user typed, kept for this tab only. */
export function setCredentials(user, password) {
  if (user === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, 'Basic ' + btoa(unescape(encodeURIComponent(user + ':' + password))));
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const auth = sessionStorage.getItem(KEY);
  if (auth) h.Authorization = auth;
  return h;
}

async function check(r) {
  if (!r.ok) throw new HttpError(r.status, (await r.text()).slice(0, 500));
  return r;
}

export async function getJSON(url, signal) {
  const r = await fetch(url, { headers: headers({ Accept: 'application/json' }), signal });
  return (await check(r)).json();
}

export async function getText(url, signal) {
  const r = await fetch(url, { headers: headers(), signal });
  return (await check(r)).text();
}

/** One operator call (`POST /api/v1`), its JSON answer. */
export async function call(type, body) {
  const r = await fetch('/api/v1', {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'application/json' }),
    body: JSON.stringify(Object.assign({ type }, body || {})),
  });
  await check(r);
  const text = await r.text();
  return text ? JSON.parse(text) : {};
}

/**
 * Follows the operator API's SUBSCRIBE stream: RecordIO (`<length>\n<json>`)
 * read from a streaming fetch. Calls `onEvent` for every event and returns
 * when the stream ends; throws when it breaks.
 */
export async function subscribe(onEvent, signal) {
  const r = await fetch('/api/v1', {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'application/json' }),
    body: JSON.stringify({ type: 'SUBSCRIBE' }),
    signal,
  });
  await check(r);
  const reader = r.body.getReader();
  // Lengths count bytes, so records are cut from bytes before decoding.
  let buf = new Uint8Array(0);
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf);
    joined.set(value, buf.length);
    buf = joined;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      const len = parseInt(decoder.decode(buf.subarray(start, nl)), 10);
      if (!(len >= 0)) throw new Error('malformed RecordIO stream');
      if (buf.length < nl + 1 + len) break;
      onEvent(JSON.parse(decoder.decode(buf.subarray(nl + 1, nl + 1 + len))));
      start = nl + 1 + len;
    }
    buf = buf.slice(start);
  }
}
