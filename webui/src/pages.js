// The pages: each renders from the store into a fresh element.

import { h, link, table, section } from './dom.js';
import { store, liveTasks, findTasks, TERMINAL, taskKey } from './store.js';
import { scalar, fmtRes, fmtTime, short, RESOURCES, roleOf } from './format.js';
import { call } from './api.js';
import { sandbox } from './sandbox.js';
import { usageChart } from './charts.js';
import { terminal } from './terminal.js';
import { roleChart } from './roles_chart.js';
import { known as knownMasters } from './masters.js';

const STATES = ['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_FINISHED',
  'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_UNREACHABLE', 'TASK_DROPPED',
  'TASK_GONE', 'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN'];

const stateBadge = (s) => h('span', { class: 'state ' + String(s || '').toLowerCase() }, String(s || '').replace('TASK_', ''));

function sum(list, f) {
  let s = 0;
  for (const x of list) s += f(x);
  return s;
}

function clusterTotals() {
  const agents = [...store.agents.values()];
  const live = liveTasks();
  const rows = {};
  for (const name of RESOURCES) {
    const total = sum(agents, (a) => scalar(a.total_resources, name));
    const used = sum(live, (t) => scalar(t.resources, name));
    const offered = sum(agents, (a) => scalar(a.offered_resources, name));
    rows[name] = { total, used, offered, idle: Math.max(0, total - used - offered) };
  }
  return rows;
}

function perRole() {
  const roles = new Map();
  for (const t of liveTasks()) {
    const role = roleOf(t.resources);
    const r = roles.get(role) || { tasks: 0 };
    r.tasks++;
    for (const name of RESOURCES) r[name] = (r[name] || 0) + scalar(t.resources, name);
    roles.set(role, r);
  }
  return roles;
}

export function overview() {
  const totals = clusterTotals();
  const byState = {};
  for (const t of store.tasks.values()) byState[t.state] = (byState[t.state] || 0) + 1;
  const agents = [...store.agents.values()];
  const agentStates = {
    active: agents.filter((a) => a.active && !a.deactivated && !a.drain_info).length,
    deactivated: agents.filter((a) => a.deactivated).length,
    draining: agents.filter((a) => a.drain_info).length,
    disconnected: agents.filter((a) => !a.active && !a.deactivated).length,
  };
  const mi = store.master && store.master.master_info;
  const used = [...RESOURCES].filter((n) => totals[n].total > 0);
  const roles = perRole();
  return h('div', { id: 'overview' },
    h('h1', {}, 'Cluster'),
    h('p', { class: 'leader' }, 'Leader: ',
      h('span', { id: 'leader' }, mi ? `${mi.hostname}:${mi.port}` : 'unknown'),
      mi ? ` (id ${mi.id}, version ${mi.version})` : '',
      store.master && store.master.elected_time ? ` elected ${fmtTime(store.master.elected_time)}` : ''),
    section('Masters',
      table(['Master', 'Role', ''], knownMasters().map((m) => [
        m.address, m.leader ? 'leader' : 'standby', m.self ? 'this page\'s master' : '',
      ]), { id: 'masters' })),
    h('div', { class: 'cards' },
      card('Agents', agents.length, 'agents-count'),
      card('Frameworks', store.frameworks.size, 'frameworks-count'),
      card('Running tasks', byState.TASK_RUNNING || 0, 'running-count'),
      card('Tasks', store.tasks.size, 'tasks-count')),
    section('Resources',
      table(['', 'Total', 'Used', 'Offered', 'Idle', 'Used %'], used.map((n) => [
        n, fmtRes(n, totals[n].total), fmtRes(n, totals[n].used), fmtRes(n, totals[n].offered),
        fmtRes(n, totals[n].idle), bar(totals[n].total ? totals[n].used / totals[n].total : 0),
      ]), { id: 'resources' })),
    section('Allocation by role',
      table(['Role', 'Tasks', ...used], [...roles.entries()].map(([role, r]) =>
        [link(role, 'roles'), r.tasks, ...used.map((n) => fmtRes(n, r[n] || 0))]), { id: 'role-alloc' })),
    section('CPUs allocated by role, since this page opened', roleChart()),
    section('Tasks by state',
      table(['State', 'Tasks'], STATES.filter((s) => byState[s]).map((s) =>
        [stateBadge(s), h('span', { 'data-state': s }, byState[s])]), { id: 'task-states' })),
    section('Agents by state',
      table(['State', 'Agents'], Object.entries(agentStates).map(([s, n]) =>
        [s, h('span', { 'data-agent-state': s }, n)]), { id: 'agent-states' })),
  );
}

function card(title, n, id) {
  return h('div', { class: 'card' }, h('div', { class: 'n', id }, n), h('div', {}, title));
}

function bar(frac) {
  const pct = Math.round(frac * 100);
  return h('span', { class: 'bar', title: pct + '%' }, h('meter', { min: 0, max: 100, value: pct }), ` ${pct}%`);
}

/// Outstanding offers of a framework: count and offered cpus/mem.
function offered(offers) {
  const resources = offers.flatMap((o) => o.resources || []);
  return [offers.length, fmtRes('cpus', scalar(resources, 'cpus')), fmtRes('mem', scalar(resources, 'mem'))];
}

export function frameworks(roles, offers) {
  const roleInfo = new Map((roles || []).map((r) => [r.name, r]));
  const rows = [];
  for (const [active, map] of [[true, store.frameworks], [false, store.completedFrameworks]]) {
    for (const f of map.values()) {
      const id = f.framework_info.id.value;
      const tasks = [...store.tasks.values()].filter((t) => t.framework_id.value === id);
      const live = tasks.filter((t) => !TERMINAL.has(t.state));
      const fRoles = f.framework_info.roles || [f.framework_info.role || '*'];
      rows.push([
        link(short(id), 'frameworks', id), f.framework_info.name, fRoles.join(', '),
        fRoles.map((r) => (roleInfo.get(r) || {}).weight || 1).join(', '),
        active ? (f.connected ? 'connected' : 'disconnected') : 'completed',
        live.length, tasks.length - live.length,
        fmtRes('cpus', sum(live, (t) => scalar(t.resources, 'cpus'))),
        fmtRes('mem', sum(live, (t) => scalar(t.resources, 'mem'))),
        ...offered((offers && offers.get(id)) || []),
      ]);
    }
  }
  return h('div', {}, h('h1', {}, 'Frameworks'),
    table(['ID', 'Name', 'Roles', 'Weights', 'State', 'Live tasks', 'Ended tasks', 'CPUs', 'Mem',
      'Offers', 'Offered CPUs', 'Offered mem'], rows, { id: 'frameworks' }));
}

export function framework(id, offers) {
  const f = store.frameworks.get(id) || store.completedFrameworks.get(id);
  if (!f) return notFound('framework', id);
  const info = f.framework_info;
  const tasks = [...store.tasks.values()].filter((t) => t.framework_id.value === id);
  return h('div', {}, h('h1', {}, 'Framework ', info.name),
    kv([['ID', id], ['User', info.user], ['Roles', (info.roles || []).join(', ')],
      ['Principal', info.principal], ['Hostname', info.hostname],
      ['Registered', f.registered_time ? fmtTime(f.registered_time.nanoseconds / 1e9) : ''],
      ['Capabilities', (info.capabilities || []).map((c) => c.type).join(', ')]]),
    section('Tasks', taskTable(tasks)),
    section('Outstanding offers', table(['Offer', 'Agent', 'CPUs', 'Mem', 'Disk'],
      ((offers && offers.get(id)) || []).map((o) => [o.id.value, o.hostname || o.agent_id.value,
        ...['cpus', 'mem', 'disk'].map((n) => fmtRes(n, scalar(o.resources || [], n)))]),
      { id: 'framework-offers' })));
}

export function agents() {
  const rows = [...store.agents.values()].map((a) => {
    const id = a.agent_info.id.value;
    const live = liveTasks().filter((t) => t.agent_id.value === id);
    return [link(short(id), 'agents', id), a.agent_info.hostname,
      a.deactivated ? 'deactivated' : a.active ? 'active' : 'disconnected',
      ...['cpus', 'mem', 'disk'].map((n) =>
        `${fmtRes(n, scalar(a.allocated_resources, n))} / ${fmtRes(n, scalar(a.total_resources, n))}`),
      live.length, attrs(a.agent_info.attributes)];
  });
  return h('div', {}, h('h1', {}, 'Agents'),
    table(['ID', 'Host', 'State', 'CPUs used/total', 'Mem used/total', 'Disk used/total', 'Tasks', 'Attributes'], rows, { id: 'agents' }));
}

function attrs(list) {
  return (list || []).map((x) => `${x.name}:${x.text ? x.text.value : x.scalar ? x.scalar.value : JSON.stringify(x.ranges || x.set)}`).join('; ');
}

export function agent(id) {
  const a = store.agents.get(id);
  if (!a) return notFound('agent', id);
  const tasks = [...store.tasks.values()].filter((t) => t.agent_id.value === id);
  const reserved = (a.total_resources || []).filter((r) => r.reservations && r.reservations.length);
  return h('div', {}, h('h1', {}, 'Agent ', a.agent_info.hostname),
    kv([['ID', id], ['Address', a.pid], ['Version', a.version],
      ['Registered', a.registered_time ? fmtTime(a.registered_time.nanoseconds / 1e9) : ''],
      ['Attributes', attrs(a.agent_info.attributes)]]),
    section('Resources', table(['', 'Allocated', 'Total'], RESOURCES.map((n) =>
      [n, fmtRes(n, scalar(a.allocated_resources, n)), fmtRes(n, scalar(a.total_resources, n))]))),
    section('Reservations', reserved.length
      ? table(['Resource', 'Amount', 'Role', 'Type'], reserved.map((r) => {
        const last = r.reservations[r.reservations.length - 1];
        return [r.name, r.scalar ? fmtRes(r.name, r.scalar.value) : JSON.stringify(r.ranges), last.role, last.type];
      }))
      : h('p', {}, 'None.')),
    section('Tasks', taskTable(tasks)));
}

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function taskTable(tasks, id) {
  const sorted = tasks.slice().sort((a, b) => lastTime(b) - lastTime(a));
  return table(['ID', 'Name', 'State', 'Framework', 'Agent', 'CPUs', 'Mem', 'Updated'], sorted.slice(0, 2000).map((t) => [
    link(t.task_id.value, 'tasks', t.task_id.value, t.framework_id.value), t.name, stateBadge(t.state),
    link(short(t.framework_id.value), 'frameworks', t.framework_id.value),
    link(short(t.agent_id.value), 'agents', t.agent_id.value),
    fmtRes('cpus', scalar(t.resources, 'cpus')), fmtRes('mem', scalar(t.resources, 'mem')),
    fmtTime(lastTime(t)),
  ]), { id: id || 'tasks', class: 'tasks' });
}

function lastTime(t) {
  const s = t.statuses || [];
  return s.length ? s[s.length - 1].timestamp : 0;
}

export function tasks() {
  const all = [...store.tasks.values()];
  const live = all.filter((t) => !TERMINAL.has(t.state));
  const ended = all.filter((t) => TERMINAL.has(t.state));
  return h('div', {}, h('h1', {}, 'Tasks'),
    section(`Live (${live.length})`, taskTable(live, 'live-tasks')),
    section(`Ended (${ended.length})`, taskTable(ended, 'ended-tasks')));
}

export function notFound(what, id) {
  return h('div', { class: 'notfound', id: 'notfound' }, h('h1', {}, `No such ${what}`),
    h('p', {}, `This master knows no ${what} with the id `, h('code', {}, id), '.'),
    h('p', {}, link('Back to the overview', '')));
}

/** The task page; `live` holds what must survive re-renders (chart, tail). */
export function task(id, frameworkId, live) {
  let matches = findTasks(id);
  if (frameworkId) matches = matches.filter((t) => t.framework_id.value === frameworkId);
  if (!matches.length) return notFound('task', id);
  const t = matches[0];
  const statuses = t.statuses || [];
  const last = statuses[statuses.length - 1] || {};
  const containerId = statuses.map((s) => s.container_status && s.container_status.container_id).filter(Boolean).pop();
  const executorId = (t.executor_id && t.executor_id.value) || t.task_id.value;
  const siblings = [...store.tasks.values()].filter((x) => x !== t && x.framework_id.value === t.framework_id.value &&
    x.executor_id && t.executor_id && x.executor_id.value === t.executor_id.value && x.agent_id.value === t.agent_id.value);
  const a = store.agents.get(t.agent_id.value);
  const limits = Object.entries(t.limits || {}).map(([k, v]) => `${k}: ${v.value === undefined ? 'unlimited' : v.value}`);
  const page = h('div', { id: 'task' },
    h('h1', {}, 'Task ', h('span', { id: 'task-name' }, t.name), ' ', h('span', { id: 'task-state' }, stateBadge(t.state))),
    kv([['ID', t.task_id.value], ['Framework', link(t.framework_id.value, 'frameworks', t.framework_id.value)],
      ['Agent', a ? link(`${a.agent_info.hostname} (${short(t.agent_id.value)})`, 'agents', t.agent_id.value) : t.agent_id.value],
      ['Executor', executorId], ['Container', containerId ? containerPath(containerId) : ''],
      ['Resources', RESOURCES.filter((n) => scalar(t.resources, n)).map((n) => `${n}: ${fmtRes(n, scalar(t.resources, n))}`).join(', ')],
      ['Limits', limits.join(', ')], ['Role', roleOf(t.resources)],
      ['Reason', h('span', { id: 'task-reason' }, last.reason || '')],
      ['Message', h('span', { id: 'task-message' }, last.message || '')]]),
    section('State history', table(['State', 'Time', 'Reason', 'Message', 'Source', 'Healthy'],
      statuses.map((s) => [stateBadge(s.state), fmtTime(s.timestamp), s.reason || '', s.message || '', (s.source || '').replace('SOURCE_', ''),
        s.healthy === undefined ? '' : String(s.healthy)]), { id: 'history' })),
    siblings.length ? section('Task group', taskTable(siblings, 'siblings')) : null,
  );
  if (!live.usage || live.usage.key !== taskKey(t)) {
    live.usage && live.usage.stop();
    live.usage = usageChart(t, executorId);
  }
  live.usage.setEnded(TERMINAL.has(t.state), statuses);
  page.appendChild(section('Usage (cpu, memory)', live.usage.el));
  if (!live.sandbox || live.sandbox.key !== taskKey(t)) {
    live.sandbox && live.sandbox.stop();
    live.sandbox = sandbox(t, executorId, siblings.length > 0 || Boolean(t.executor_id && t.executor_id.value !== t.task_id.value));
  }
  page.appendChild(section('Sandbox', live.sandbox.el));
  if (t.state === 'TASK_RUNNING' && containerId) {
    if (!live.terminal || live.terminal.key !== taskKey(t)) {
      live.terminal && live.terminal.stop();
      live.terminal = terminal(t, containerId);
    }
    page.appendChild(section('Shell', live.terminal.el));
  } else if (live.terminal) {
    live.terminal.stop();
    delete live.terminal;
  }
  return page;
}

function containerPath(id) {
  const parts = [];
  for (let c = id; c; c = c.parent) parts.unshift(c.value);
  return parts.join('.');
}

export async function roles() {
  const r = await call('GET_ROLES');
  const list = (r.get_roles && r.get_roles.roles) || [];
  const totals = clusterTotals();
  const rows = list.map((role) => {
    const alloc = role.allocated || role.resources || [];
    // DRF: a role's share is its largest fraction of any resource (Mesos's
    // DRFSorter::calculateShare), divided by its weight.
    let share = 0;
    let dominant = '';
    for (const n of RESOURCES) {
      if (!totals[n].total) continue;
      const s = scalar(alloc, n) / totals[n].total;
      if (s > share) { share = s; dominant = n; }
    }
    const weight = role.weight || 1;
    const q = role.quota || {};
    return [role.name, weight, (role.frameworks || []).length,
      ...['cpus', 'mem'].map((n) => fmtRes(n, scalar(alloc, n))),
      `${(share * 100).toFixed(1)}%${dominant ? ' (' + dominant + ')' : ''}`, `${((share / weight) * 100).toFixed(1)}%`,
      quota(q.guarantees), quota(q.limits), quota(q.consumed)];
  });
  return h('div', {}, h('h1', {}, 'Roles'),
    table(['Role', 'Weight', 'Frameworks', 'CPUs', 'Mem', 'DRF share', 'Weighted share', 'Quota guarantee', 'Quota limit', 'Consumed'], rows, { id: 'roles' }));
}

function quota(m) {
  if (!m) return '';
  if (Array.isArray(m)) return m.map((r) => `${r.name}:${r.scalar ? fmtRes(r.name, r.scalar.value) : ''}`).join(' ');
  return Object.entries(m).map(([k, v]) => `${k}:${fmtRes(k, v.value)}`).join(' ');
}

export async function maintenance() {
  const [status, schedule] = await Promise.all([call('GET_MAINTENANCE_STATUS'), call('GET_MAINTENANCE_SCHEDULE')]);
  const st = (status.get_maintenance_status && status.get_maintenance_status.status) || {};
  const windows = ((schedule.get_maintenance_schedule && schedule.get_maintenance_schedule.schedule) || {}).windows || [];
  const machine = (m) => `${m.hostname || ''}${m.ip ? ' (' + m.ip + ')' : ''}`;
  const draining = (st.draining_machines || []).map((d) => [machine(d.id), 'draining',
    (d.statuses || []).map((s) => `${s.framework_id.value}: ${s.status}`).join(', ')]);
  const down = (st.down_machines || []).map((m) => [machine(m), 'down', '']);
  return h('div', { id: 'maintenance' }, h('h1', {}, 'Maintenance'),
    section('Machines', draining.length + down.length
      ? table(['Machine', 'Mode', 'Inverse offer responses'], [...draining, ...down])
      : h('p', {}, 'No machine is draining or down.')),
    section('Schedule', windows.length
      ? table(['Machines', 'Start', 'Duration'], windows.map((w) => [
        (w.machine_ids || []).map(machine).join(', '),
        fmtTime(w.unavailability.start.nanoseconds / 1e9),
        w.unavailability.duration ? `${w.unavailability.duration.nanoseconds / 1e9} s` : 'indefinite']))
      : h('p', {}, 'No maintenance scheduled.')));
}
