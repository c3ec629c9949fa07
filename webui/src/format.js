// Numbers and resources as people read them.

export function scalar(resources, name) {
  let sum = 0;
  for (const r of resources || []) if (r.name === name && r.scalar) sum += r.scalar.value;
  return sum;
}

export function fmtRes(name, v) {
  if (name === 'mem' || name === 'disk') return fmtMB(v);
  return (Math.round(v * 100) / 100).toString();
}

export function fmtMB(mb) {
  if (mb >= 1024 * 1024) return (mb / 1024 / 1024).toFixed(1) + ' TB';
  if (mb >= 1024) return (mb / 1024).toFixed(1) + ' GB';
  return Math.round(mb) + ' MB';
}

export function fmtBytes(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(1) + ' GiB';
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + ' MiB';
  if (b >= 1 << 10) return (b / (1 << 10)).toFixed(1) + ' KiB';
  return b + ' B';
}

export function fmtTime(secs) {
  if (!secs) return '';
  return new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function short(id) {
  return id && id.length > 14 ? id.slice(0, 8) + '…' + id.slice(-4) : id;
}

export const RESOURCES = ['cpus', 'mem', 'disk', 'gpus'];

export function roleOf(resources) {
  for (const r of resources || []) {
    if (r.allocation_info && r.allocation_info.role) return r.allocation_info.role;
  }
  return '*';
}
