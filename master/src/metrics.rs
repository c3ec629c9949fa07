//! Metrics, named as Mesos names them (`master/...`, `allocator/...`), for
//! `/metrics/snapshot`, GET_METRICS and Prometheus `/metrics`.

use crate::state::Master;
use crate::state::tasks::is_terminal;

pub fn snapshot(m: &Master) -> Vec<(String, f64)> {
    let connected = m.frameworks.values().filter(|f| f.conn.is_some()).count();
    let active_agents = m.agents.values().filter(|a| a.active()).count();
    // Live tasks by state: Mesos's `master/tasks_<state>` gauges
    // (docs/monitoring.md); the terminal ones are counters (below).
    let mut live: std::collections::BTreeMap<i32, usize> = Default::default();
    for a in m.agents.values() {
        for t in a.tasks.values().filter(|t| !is_terminal(t.state)) {
            *live.entry(t.state).or_default() += 1;
        }
    }
    let live_in =
        |s: tepui_proto::v1::TaskState| live.get(&(s as i32)).copied().unwrap_or(0) as f64;
    use tepui_proto::v1::TaskState as S;
    let total = m.allocator.total();
    let mut used = crate::allocator::Quantities::new();
    for a in m.agents.values() {
        for t in a.tasks.values().filter(|t| !is_terminal(t.state)) {
            used.add(&crate::allocator::Quantities::of(
                &tepui_proto::resources::Resources::from(t.resources.clone()),
            ));
        }
    }
    let x = &m.metrics;
    let mut out = vec![
        (
            "master/uptime_secs",
            crate::state::now_secs() - m.start_time,
        ),
        ("master/elected", if m.elected { 1.0 } else { 0.0 }),
        ("master/frameworks_connected", connected as f64),
        (
            "master/frameworks_disconnected",
            (m.frameworks.len() - connected) as f64,
        ),
        ("master/frameworks_active", connected as f64),
        (
            "master/slaves_connected",
            m.agents.values().filter(|a| a.conn.is_some()).count() as f64,
        ),
        ("master/slaves_active", active_agents as f64),
        (
            "master/slaves_unreachable",
            m.registry.state.unreachable.len() as f64,
        ),
        ("master/outstanding_offers", m.offers.len() as f64),
        ("master/tasks_running", live_in(S::TaskRunning)),
        ("master/tasks_staging", live_in(S::TaskStaging)),
        ("master/tasks_starting", live_in(S::TaskStarting)),
        ("master/tasks_killing", live_in(S::TaskKilling)),
        ("master/tasks_unreachable", live_in(S::TaskUnreachable)),
        ("master/tasks_finished", x.tasks_finished as f64),
        ("master/tasks_failed", x.tasks_failed as f64),
        ("master/tasks_killed", x.tasks_killed as f64),
        ("master/tasks_lost", x.tasks_lost as f64),
        ("master/tasks_error", x.tasks_error as f64),
        ("master/tasks_dropped", x.tasks_dropped as f64),
        ("master/messages_launch_tasks", x.tasks_launched as f64),
        ("master/messages_decline_offers", x.offers_declined as f64),
        ("master/offers_sent", x.offers_sent as f64),
        ("master/offers_rescinded", x.offers_rescinded as f64),
        (
            "master/invalid_scheduler_calls",
            x.invalid_scheduler_calls as f64,
        ),
        ("master/scheduler_calls", x.scheduler_calls as f64),
        ("allocator/allocation_runs", x.allocation_runs as f64),
        ("allocator/allocation_run_ms", x.allocation_last_secs * 1e3),
        // The same under Mesos's allocator's own names.
        ("allocator/mesos/allocation_runs", x.allocation_runs as f64),
        (
            "allocator/mesos/allocation_run_ms",
            x.allocation_last_secs * 1e3,
        ),
        (
            "master/slaves_disconnected",
            m.agents.values().filter(|a| a.conn.is_none()).count() as f64,
        ),
        (
            "master/slaves_inactive",
            (m.agents.len() - active_agents) as f64,
        ),
        (
            "master/frameworks_inactive",
            (m.frameworks.len() - connected) as f64,
        ),
        (
            "allocator/offer_filters/active",
            m.allocator.filter_count() as f64,
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect::<Vec<_>>();
    out.extend(tepui_proto::system_metrics::system_metrics());
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = total.to_f64(name);
        let u = used.to_f64(name);
        out.push((format!("master/{name}_total"), t));
        out.push((format!("master/{name}_used"), u));
        out.push((
            format!("master/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        ));
    }
    out
}

/// Prometheus text exposition of the same numbers
/// (`tepui_proto::prometheus`: `mesos_` names, counters typed as such).
pub fn prometheus(m: &Master) -> String {
    tepui_proto::prometheus::render(&tepui_proto::prometheus::families(snapshot(m)))
}
