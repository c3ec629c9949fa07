// The cluster as the page knows it: the SUBSCRIBED event's state, then
// every later event applied to it.

export const store = {
  ready: false,
  agents: new Map(), // agent id -> v1 Agent (GET_AGENTS)
  frameworks: new Map(), // framework id -> v1 Framework
  completedFrameworks: new Map(),
  tasks: new Map(), // framework id + '/' + task id -> v1 Task
  executors: new Map(),
  master: null, // GET_MASTER
  version: 0, // bumped on every change, for re-rendering
};

export const taskKey = (t) => t.framework_id.value + '/' + t.task_id.value;
export const TERMINAL = new Set([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST',
  'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

function loadState(s) {
  store.agents.clear();
  store.frameworks.clear();
  store.completedFrameworks.clear();
  store.tasks.clear();
  store.executors.clear();
  for (const a of (s.get_agents && s.get_agents.agents) || []) store.agents.set(a.agent_info.id.value, a);
  const f = s.get_frameworks || {};
  for (const x of f.frameworks || []) store.frameworks.set(x.framework_info.id.value, x);
  for (const x of f.completed_frameworks || []) store.completedFrameworks.set(x.framework_info.id.value, x);
  const t = s.get_tasks || {};
  for (const list of ['tasks', 'unreachable_tasks', 'completed_tasks', 'orphan_tasks']) {
    for (const x of t[list] || []) store.tasks.set(taskKey(x), x);
  }
  const e = s.get_executors || {};
  for (const x of e.executors || []) {
    store.executors.set(x.executor_info.framework_id.value + '/' + x.executor_info.executor_id.value, x);
  }
}

/** Applies one operator event; true when the page should re-render. */
export function apply(ev) {
  switch (ev.type) {
    case 'SUBSCRIBED':
      loadState(ev.subscribed.get_state || {});
      store.ready = true;
      break;
    case 'TASK_ADDED': {
      const t = ev.task_added.task;
      store.tasks.set(taskKey(t), t);
      break;
    }
    case 'TASK_UPDATED': {
      const u = ev.task_updated;
      const key = u.framework_id.value + '/' + u.status.task_id.value;
      const t = store.tasks.get(key);
      if (!t) return false;
      t.state = u.state;
      t.statuses = (t.statuses || []).concat([u.status]);
      break;
    }
    case 'FRAMEWORK_ADDED':
    case 'FRAMEWORK_UPDATED': {
      const f = (ev.framework_added || ev.framework_updated).framework;
      store.frameworks.set(f.framework_info.id.value, f);
      break;
    }
    case 'FRAMEWORK_REMOVED': {
      const info = ev.framework_removed.framework_info;
      const f = store.frameworks.get(info.id.value) || { framework_info: info };
      store.frameworks.delete(info.id.value);
      f.active = false;
      f.connected = false;
      store.completedFrameworks.set(info.id.value, f);
      break;
    }
    case 'AGENT_ADDED': {
      const a = ev.agent_added.agent;
      store.agents.set(a.agent_info.id.value, a);
      break;
    }
    case 'AGENT_REMOVED':
      store.agents.delete(ev.agent_removed.agent_id.value);
      break;
    case 'HEARTBEAT':
      return false;
    default:
      return false;
  }
  store.version++;
  return true;
}

/** Tasks whose id is `id` (task ids are unique per framework only). */
export function findTasks(id) {
  const out = [];
  for (const t of store.tasks.values()) if (t.task_id.value === id) out.push(t);
  return out;
}

/** Allocated resources per agent and role, from the live tasks. */
export function liveTasks() {
  const out = [];
  for (const t of store.tasks.values()) if (!TERMINAL.has(t.state)) out.push(t);
  return out;
}
