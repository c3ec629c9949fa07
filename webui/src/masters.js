// The masters contending for leadership (GET /webui/masters), remembered
// for this tab, so that when the page's own master dies it can move to
// another one. The CSP lets the page fetch from its own origin only; moving
// is a navigation (to the other master's /webui/, which a standby serves
// itself), and sessionStorage is per origin, so what the page learnt on the
// way (the masters it found dead) travels in the URL's `failed` parameters.

import { getJSON } from './api.js';

const KEY = 'tepui.masters';

export const originOf = (m) => `${m.scheme}://${m.address}`;

/** The last list this tab read, leader first. */
export function known() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || [];
  } catch {
    return [];
  }
}

/** Reads the list again from this page's master and remembers it. */
export async function refresh() {
  const r = await getJSON('/webui/masters');
  const list = r.masters || [];
  sessionStorage.setItem(KEY, JSON.stringify(list));
  return list;
}

/** `host:port` of the masters the page left because they did not answer. */
export function failed() {
  return new URLSearchParams(location.search).getAll('failed');
}

/** Forgets them once live again: a restarted master may be tried again. */
export function clearFailed() {
  if (location.search) history.replaceState(null, '', location.pathname + location.hash);
}

/** Whether this page's own master answers at all (a status, any status). */
export async function selfAlive() {
  const c = new AbortController();
  const t = setTimeout(() => c.abort(), 2000);
  try {
    await fetch('/health', { cache: 'no-store', signal: c.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(t);
  }
}

/**
 * The master to try next: the known ones in order (leader first), skipping
 * this one and those already found dead, so the page never goes back and
 * forth between dead masters. Null when none is left.
 */
export function next() {
  const dead = new Set([...failed(), location.host]);
  return known().find((m) => !dead.has(m.address)) || null;
}

/** Moves the page to master `m`, keeping its route; this origin counts as dead when `leaving` is. */
export function go(m, leaving) {
  const q = new URLSearchParams();
  const dead = new Set(failed());
  if (leaving) dead.add(location.host);
  for (const f of dead) q.append('failed', f);
  const query = q.toString();
  location.replace(`${originOf(m)}/webui/${query ? '?' + query : ''}${location.hash}`);
}
