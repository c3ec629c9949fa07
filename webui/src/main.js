// tepui's web UI: hash routes, the live connection, credentials.

import { h } from './dom.js';
import { store, apply } from './store.js';
import { subscribe, call, getJSON, setCredentials, HttpError } from './api.js';
import * as pages from './pages.js';
import * as masters from './masters.js';

const main = document.getElementById('main');
const conn = document.getElementById('conn');
const live = {}; // what a page keeps across re-renders (charts, log tails)
let blocked = null; // 'login' | 'forbidden' while the APIs refuse us
let lastError = '';

function setConn(state, text) {
  conn.dataset.state = state;
  conn.textContent = text || state;
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || '', args: parts.slice(1) };
}

function stopLive(keep) {
  for (const k of Object.keys(live)) {
    if (k === keep) continue;
    live[k] && live[k].stop();
    delete live[k];
  }
}

let rendering = 0;
async function render() {
  const my = ++rendering;
  if (blocked === 'login') return showLogin();
  if (blocked === 'forbidden') return showForbidden();
  if (!store.ready) return;
  const { page, args } = route();
  document.querySelectorAll('nav a').forEach((a) =>
    a.classList.toggle('active', a.getAttribute('href') === '#/' + page));
  let el;
  try {
    switch (page) {
      case '': el = pages.overview(); break;
      case 'frameworks': el = args[0]
        ? pages.framework(args[0], await offerList())
        : pages.frameworks(await roleList(), await offerList()); break;
      case 'agents': el = args[0] ? pages.agent(args[0]) : pages.agents(); break;
      case 'tasks': el = args[0] ? pages.task(args[0], args[1], live) : pages.tasks(); break;
      case 'roles': el = await pages.roles(); break;
      case 'maintenance': el = await pages.maintenance(); break;
      default: el = pages.notFound('page', page);
    }
  } catch (e) {
    if (e instanceof HttpError && (e.status === 401 || e.status === 403)) return refused(e);
    el = h('p', { class: 'error' }, `Cannot show this page: ${e.message}`);
  }
  if (my !== rendering) return; // a newer render won
  if (page !== 'tasks' || !args[0]) stopLive();
  main.replaceChildren(el);
  // For scripts/webui-bench.py: when the first page with data was drawn.
  if (!performance.getEntriesByName('tepui:first-render').length) performance.mark('tepui:first-render');
}

// Outstanding offers by framework id: GET_FRAMEWORKS (the stream carries
// no offer events, so the frameworks pages read them and refresh).
async function offerList() {
  try {
    const r = await call('GET_FRAMEWORKS');
    const list = (r.get_frameworks && r.get_frameworks.frameworks) || [];
    return new Map(list.map((f) => [f.framework_info.id.value, f.offers || []]));
  } catch {
    return new Map();
  }
}

async function roleList() {
  try {
    const r = await call('GET_ROLES');
    return (r.get_roles && r.get_roles.roles) || [];
  } catch {
    return [];
  }
}

// Re-render at most every 200 ms however fast events arrive.
let pending = null;
function schedule() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; render(); }, 200);
}

function refused(e) {
  blocked = e.status === 401 ? 'login' : 'forbidden';
  lastError = e.body || e.message;
  setConn('refused', e.status === 401 ? 'sign in' : 'forbidden');
  render();
}

function showLogin() {
  stopLive();
  const user = h('input', { id: 'user', name: 'user', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const form = h('form', { id: 'login', onsubmit: (ev) => {
    ev.preventDefault();
    setCredentials(user.value, pass.value);
    blocked = null;
    main.replaceChildren(h('p', {}, 'Signing in…'));
    reconnect();
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'This master requires authentication (', h('code', {}, '--authenticate_http_readonly'), ').'),
  lastError ? h('p', { class: 'error' }, lastError) : null,
  h('label', {}, 'Principal ', user), h('label', {}, 'Secret ', pass),
  h('button', { type: 'submit' }, 'Sign in'));
  main.replaceChildren(form);
  user.focus();
}

function showForbidden() {
  stopLive();
  main.replaceChildren(h('div', { id: 'forbidden', class: 'forbidden' },
    h('h1', {}, '403: not allowed'),
    h('p', {}, 'The master refused to show this to you: your principal lacks the view rights (',
      h('code', {}, 'view_frameworks'), ', ', h('code', {}, 'view_tasks'), ', … in ', h('code', {}, '--acls'), ').'),
    h('p', { class: 'error' }, lastError),
    h('button', { onclick: () => { setCredentials(null); blocked = 'login'; lastError = ''; render(); } }, 'Sign in as someone else')));
}

// --- the live connection -----------------------------------------------------

let controller = null;
let attempt = 0;

async function connect() {
  controller = new AbortController();
  const mine = controller;
  try {
    setConn('connecting', attempt ? 'reconnecting' : 'connecting');
    // 401 (sign in) or 403 (no view rights) before anything else.
    await getJSON('/webui/access', mine.signal);
    try {
      store.master = (await call('GET_MASTER')).get_master || null;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403)) throw e;
    }
    await subscribe((ev) => {
      if (ev.type === 'SUBSCRIBED') {
        attempt = 0;
        setConn('live', 'live');
        masters.clearFailed();
        refreshMasters();
      }
      if (apply(ev)) {
        // The first state is drawn at once; later bursts are batched.
        if (ev.type === 'SUBSCRIBED') render();
        else schedule();
      }
    }, mine.signal);
    throw new Error('the master closed the stream');
  } catch (e) {
    if (mine.signal.aborted) return;
    if (e instanceof HttpError && (e.status === 401 || e.status === 403)) return refused(e);
    attempt++;
    setConn('reconnecting', 'reconnecting…');
    if (await followLeader()) return;
    // After a few retries, a master that does not answer at all is dead:
    // move on to the next known one, waiting longer the more were dead.
    if (attempt >= 3 && !(await masters.selfAlive())) {
      const m = masters.next();
      if (m) {
        setConn('reconnecting', `reconnecting… trying ${m.address}`);
        setTimeout(() => masters.go(m, true), Math.min(10000, 1000 * (1 + masters.failed().length)));
        return;
      }
    }
    setTimeout(connect, Math.min(5000, 500 * attempt));
  }
}

async function refreshMasters() {
  try {
    await masters.refresh();
    schedule();
  } catch {
    // Kept from the last read.
  }
}

/**
 * When this master no longer leads but still runs, go to the leader,
 * keeping the page's route. A standby lists the contenders itself: the
 * leader it names may be one this page saw die (its ZooKeeper session has
 * not expired yet): then wait here. Without the list (signed-in masters
 * refusing it), a standby's redirect decides.
 */
async function followLeader() {
  let list = null;
  try {
    list = await masters.refresh();
  } catch {
    // Not reachable, or not allowed: the redirect below decides.
  }
  if (list && list.length) {
    const leader = list.find((m) => m.leader);
    if (leader && !leader.self && !masters.failed().includes(leader.address)) {
      setConn('reconnecting', `reconnecting… trying ${leader.address}`);
      masters.go(leader, false);
      return true;
    }
    return false;
  }
  try {
    const r = await fetch('/master/redirect', { redirect: 'manual', cache: 'no-store' });
    if (r.type !== 'opaqueredirect') return false;
    const probe = await fetch('/master/state', { redirect: 'manual', cache: 'no-store' });
    if (probe.type === 'opaqueredirect') {
      location.replace('/master/redirect' + location.hash);
      return true;
    }
  } catch {
    // Not reachable right now: keep retrying here.
  }
  return false;
}

function reconnect() {
  if (controller) controller.abort();
  attempt = 0;
  connect();
}

window.addEventListener('hashchange', render);
// Pages that are not fed by the stream (roles, maintenance, the offers on
// the frameworks pages) refresh themselves.
setInterval(() => {
  const { page } = route();
  if (page === 'roles' || page === 'maintenance' || page === 'frameworks') render();
}, 5000);
// The standbys change as masters come and go: read them again now and then.
setInterval(() => {
  if (conn.dataset.state === 'live') refreshMasters();
}, 10000);
connect();
