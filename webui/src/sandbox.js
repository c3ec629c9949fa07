// A task's sandbox through the master's proxy to its agent's files API:
// the listing, a file followed live (polling `/files/read` from the last
// offset, as Mesos's pailer does), and downloads.

import { h } from './dom.js';
import { plain } from './dom.js';
import { getJSON } from './api.js';
import { fmtBytes, fmtTime } from './format.js';
import { taskKey } from './store.js';

const PAGE = 64 * 1024;
const KEEP = 256 * 1024; // characters of a followed file kept on the page

export function sandbox(t, executorId, grouped) {
  const agentId = t.agent_id.value;
  const base = `/webui/agents/${encodeURIComponent(agentId)}`;
  let root = `/frameworks/${t.framework_id.value}/executors/${executorId}/runs/latest`;
  // A task group's task has its own sandbox, linked from the executor's.
  if (grouped) root += `/tasks/${t.task_id.value}`;
  const listing = h('div', { class: 'listing', id: 'sandbox-listing' });
  const viewer = h('div', { class: 'viewer' });
  const el = h('div', { class: 'sandbox' }, listing, viewer);
  let follow = null;
  let stopped = false;

  async function browse(path) {
    listing.replaceChildren(h('p', {}, 'Loading ', path, '…'));
    try {
      const files = await getJSON(`${base}/files/browse?path=${encodeURIComponent(path)}`);
      files.sort((a, b) => a.path.localeCompare(b.path));
      const rows = files.map((f) => {
        const name = f.path.slice(f.path.lastIndexOf('/') + 1);
        const dir = f.mode.startsWith('d');
        return h('tr', {},
          h('td', {}, h('a', { href: 'javascript:void 0', class: dir ? 'dir' : 'file', 'data-name': name,
            onclick: (e) => { e.preventDefault(); dir ? browse(f.path) : open(f.path); } }, name + (dir ? '/' : ''))),
          h('td', {}, f.mode), h('td', {}, dir ? '' : fmtBytes(f.size)), h('td', {}, fmtTime(f.mtime)),
          h('td', {}, dir ? '' : h('a', { href: 'javascript:void 0', class: 'download',
            onclick: (e) => { e.preventDefault(); download(f.path, name); } }, 'download')));
      });
      const up = path !== root ? h('a', { href: 'javascript:void 0', onclick: (e) => { e.preventDefault(); browse(path.slice(0, path.lastIndexOf('/'))); } }, '↑ up') : null;
      listing.replaceChildren(h('p', { class: 'path' }, h('code', {}, path), ' ', up),
        h('table', { id: 'files' }, h('thead', {}, h('tr', {}, ['Name', 'Mode', 'Size', 'Modified', ''].map((x) => h('th', {}, x)))),
          h('tbody', {}, rows)));
      if (!follow) {
        const stdout = files.find((f) => f.path.endsWith('/stdout'));
        if (stdout) open(stdout.path);
      }
    } catch (e) {
      listing.replaceChildren(h('p', { class: 'error' }, `Cannot list the sandbox: ${e.message}`));
    }
  }

  function open(path) {
    if (follow) follow.stop();
    const pre = h('pre', { class: 'log', id: 'log' });
    const name = path.slice(path.lastIndexOf('/') + 1);
    const state = h('span', { class: 'following' }, 'following');
    viewer.replaceChildren(h('p', {}, h('strong', { id: 'log-name' }, name), ' ', state), pre);
    let offset = 0;
    let timer = null;
    let done = false;
    async function poll() {
      if (done || stopped) return;
      try {
        // The size first (offset=-1, as Mesos's pailer asks), then exactly
        // the bytes up to it: the offset advances by bytes read, never by
        // the length of the decoded text (invalid UTF-8 comes back as
        // U+FFFD, which is longer than the byte it replaces).
        const size = (await getJSON(`${base}/files/read?path=${encodeURIComponent(path)}&offset=-1`)).offset;
        if (size < offset) offset = 0; // truncated or rotated: start over
        while (offset < size) {
          const length = Math.min(PAGE, size - offset);
          const r = await getJSON(`${base}/files/read?path=${encodeURIComponent(path)}&offset=${offset}&length=${length}`);
          if (done) return;
          // Text only: control sequences dropped, never markup.
          pre.appendChild(document.createTextNode(plain(r.data)));
          offset += length;
          if (pre.textContent.length > KEEP) pre.textContent = pre.textContent.slice(-KEEP / 2);
          pre.scrollTop = pre.scrollHeight;
        }
        state.textContent = 'following';
      } catch (e) {
        state.textContent = `cannot read: ${e.message}`;
      }
      timer = setTimeout(poll, 1000);
    }
    poll();
    follow = { stop() { done = true; clearTimeout(timer); } };
  }

  async function download(path, name) {
    const auth = sessionStorage.getItem('tepui.auth');
    const r = await fetch(`${base}/files/download?path=${encodeURIComponent(path)}`, { headers: auth ? { Authorization: auth } : {} });
    if (!r.ok) return;
    const url = URL.createObjectURL(await r.blob());
    const a = h('a', { href: url, download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  browse(root);
  return {
    key: taskKey(t),
    el,
    stop() { stopped = true; if (follow) follow.stop(); },
  };
}
