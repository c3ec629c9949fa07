// A shell inside a running task, in xterm.js, over the master's websocket
// bridge to the agent's LAUNCH_NESTED_CONTAINER_SESSION and
// ATTACH_CONTAINER_INPUT (master/src/webui_exec.rs).

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { h } from './dom.js';
import { taskKey } from './store.js';

export function terminal(t, containerId) {
  const box = h('div', { class: 'terminal', id: 'terminal' });
  const status = h('span', { class: 'term-status', id: 'term-status' });
  let session = null;
  const button = h('button', { id: 'open-terminal', onclick: () => (session ? close() : open()) }, 'Open a shell');
  const el = h('div', {}, h('p', {}, button, ' ', status), box);

  function open() {
    const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, rows: 20 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    box.replaceChildren();
    term.open(box);
    fit.fit();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/webui/agents/${encodeURIComponent(t.agent_id.value)}/exec`);
    ws.binaryType = 'arraybuffer';
    const enc = new TextEncoder();
    ws.onopen = () => {
      // A websocket cannot carry an Authorization header: the first message does.
      ws.send(JSON.stringify({ authorization: sessionStorage.getItem('tepui.auth'), container_id: containerId,
        rows: term.rows, columns: term.cols }));
      status.textContent = 'connected';
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const end = JSON.parse(m.data);
        status.textContent = end.error ? `error: ${end.error}` : `exited with status ${end.exit}`;
        return;
      }
      term.write(new Uint8Array(m.data));
    };
    ws.onclose = () => {
      if (!/exited|error/.test(status.textContent)) status.textContent = 'closed';
      button.textContent = 'Open a shell';
      session = null;
    };
    term.onData((d) => ws.readyState === 1 && ws.send(enc.encode(d)));
    term.onResize(({ rows, cols }) => ws.readyState === 1 && ws.send(JSON.stringify({ rows, columns: cols })));
    const onWindow = () => fit.fit();
    window.addEventListener('resize', onWindow);
    session = { ws, term, onWindow };
    button.textContent = 'Close the shell';
  }

  function close() {
    if (!session) return;
    session.ws.close();
    session.term.dispose();
    window.removeEventListener('resize', session.onWindow);
    session = null;
    button.textContent = 'Open a shell';
  }

  return { key: taskKey(t), el, stop: close };
}
