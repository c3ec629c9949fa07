// Allocation per role over time (cpus held by live tasks), sampled from the
// live state every few seconds since the page opened, drawn by uPlot.

import uPlot from 'uplot';
import { h } from './dom.js';
import { store, liveTasks } from './store.js';
import { scalar, roleOf } from './format.js';

const EVERY = 2000;
const KEEP = 300; // samples (10 minutes)
const COLORS = ['#2c7be5', '#00a86b', '#e67e22', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d35400'];

const times = [];
const series = new Map(); // role -> values aligned with times
let chart = null;

function sample() {
  if (!store.ready) return;
  const now = Date.now() / 1000;
  const by = new Map();
  for (const t of liveTasks()) {
    const role = roleOf(t.resources);
    by.set(role, (by.get(role) || 0) + scalar(t.resources, 'cpus'));
  }
  for (const role of by.keys()) {
    if (!series.has(role) && series.size < COLORS.length) series.set(role, times.map(() => 0));
  }
  times.push(now);
  for (const [role, values] of series) values.push(by.get(role) || 0);
  if (times.length > KEEP) {
    times.shift();
    for (const values of series.values()) values.shift();
  }
  if (chart) chart.update();
}
setInterval(sample, EVERY);

/** The chart's element, made once and kept across re-renders. */
export function roleChart() {
  if (!chart) {
    const box = h('div', { class: 'chart', id: 'role-chart', 'data-points': '0' });
    chart = { el: box, plot: null, roles: [], update };
    update();
  }
  return chart.el;
}

function update() {
  const roles = [...series.keys()];
  const data = [times, ...roles.map((r) => series.get(r))];
  if (!chart.plot || roles.length !== chart.roles.length) {
    // A new role is a new series: draw the chart again in the same place.
    if (chart.plot) chart.plot.destroy();
    chart.roles = roles;
    chart.plot = new uPlot({
      width: 640,
      height: 200,
      scales: { x: { time: true } },
      series: [{}, ...roles.map((r, i) => ({ label: r, stroke: COLORS[i], width: 2 }))],
      axes: [{}, { label: 'cpus' }],
    }, data, chart.el);
  } else {
    chart.plot.setData(data);
  }
  chart.el.setAttribute('data-points', String(times.length));
}
