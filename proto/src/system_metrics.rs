//! Mesos's `system/*` metrics (docs/monitoring.md, src/slave/metrics.cpp
//! and src/master/metrics.cpp read them through stout's `os::cpus`,
//! `os::loadavg` and `os::memory`): the host's CPUs, load averages and
//! memory, read from /proc on each snapshot.

pub fn system_metrics() -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    out.push(("system/cpus_total".to_string(), cpus as f64));
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let mut fields = load.split_whitespace();
        for name in ["load_1min", "load_5min", "load_15min"] {
            if let Some(v) = fields.next().and_then(|f| f.parse::<f64>().ok()) {
                out.push((format!("system/{name}"), v));
            }
        }
    }
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let kb = |key: &str| {
            meminfo
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v * 1024)
        };
        if let Some(total) = kb("MemTotal:") {
            out.push(("system/mem_total_bytes".to_string(), total as f64));
        }
        if let Some(free) = kb("MemAvailable:").or_else(|| kb("MemFree:")) {
            out.push(("system/mem_free_bytes".to_string(), free as f64));
        }
    }
    out
}
