// A task's cpu and memory over the last minutes, sampled from its agent's
// `/monitor/statistics` (through the master's proxy), drawn by uPlot.

import uPlot from 'uplot';
import { h } from './dom.js';
import { getJSON } from './api.js';
import { taskKey } from './store.js';

const WINDOW = 10 * 60; // seconds kept
const EVERY = 2000; // ms between samples

export function usageChart(t, executorId) {
  const url = `/webui/agents/${encodeURIComponent(t.agent_id.value)}/monitor/statistics`;
  const fw = t.framework_id.value;
  const data = [[], [], []]; // time, cpus, MiB
  let prev = null;
  let ooms = [];
  let timer = null;
  let stopped = false;
  let ended = false;
  const status = h('p', { class: 'chart-status' }, 'Waiting for samples…');
  const box = h('div', { class: 'chart', id: 'usage-chart', 'data-points': '0' });
  const el = h('div', {}, box, status);
  const oomMarks = {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = '#c0392b';
        ctx.fillStyle = '#c0392b';
        ctx.lineWidth = 2;
        for (const ts of ooms) {
          const x = Math.round(u.valToPos(ts, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillText('OOM', x + 3, u.bbox.top + 12);
        }
        ctx.restore();
      }],
    },
  };
  const plot = new uPlot({
    width: 640,
    height: 220,
    plugins: [oomMarks],
    scales: { x: { time: true }, cpu: { auto: true }, mem: { auto: true } },
    series: [{}, { label: 'cpus', scale: 'cpu', stroke: '#2c7be5', width: 2 },
      { label: 'memory (MiB)', scale: 'mem', stroke: '#00a86b', width: 2 }],
    axes: [{}, { scale: 'cpu', label: 'cpus' }, { scale: 'mem', side: 1, label: 'MiB', grid: { show: false } }],
  }, data, box);

  async function sample() {
    if (stopped) return;
    try {
      const stats = await getJSON(url);
      const mine = stats.find((s) => s.framework_id === fw && s.executor_id === executorId);
      if (mine) {
        const s = mine.statistics;
        const cpu = s.cpus_user_time_secs + s.cpus_system_time_secs;
        if (prev && s.timestamp > prev.ts) {
          data[0].push(s.timestamp);
          data[1].push(Math.max(0, (cpu - prev.cpu) / (s.timestamp - prev.ts)));
          data[2].push((s.mem_rss_bytes || s.mem_total_bytes || 0) / (1 << 20));
          while (data[0].length && data[0][0] < s.timestamp - WINDOW) data.forEach((d) => d.shift());
          plot.setData(data);
          box.setAttribute('data-points', String(data[0].length));
          status.textContent = `${data[0].length} samples, every ${EVERY / 1000} s`;
        }
        prev = { ts: s.timestamp, cpu };
      } else {
        status.textContent = ended ? 'The task has ended: no live usage.' : 'No statistics for this task yet.';
      }
    } catch (e) {
      status.textContent = `Cannot read statistics: ${e.message}`;
    }
    timer = setTimeout(sample, EVERY);
  }
  sample();
  return {
    key: taskKey(t),
    el,
    setEnded(isEnded, statuses) {
      ended = isEnded;
      const found = statuses.filter((s) => s.reason === 'REASON_CONTAINER_LIMITATION_MEMORY').map((s) => s.timestamp);
      if (found.length !== ooms.length) {
        ooms = found;
        box.setAttribute('data-ooms', String(ooms.length));
        plot.redraw();
      }
    },
    stop() { stopped = true; clearTimeout(timer); plot.destroy(); },
  };
}
