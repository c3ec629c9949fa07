//! The unversioned endpoints existing tools read: `/health`, `/version`,
//! `/state` (Mesos's field names), `/flags`, `/metrics/snapshot`, and
//! Prometheus `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::operator_api::MESOS_VERSION;
use crate::daemon::Agent;
use tepui_proto::resources::Resources;

pub async fn health() -> StatusCode {
    StatusCode::OK
}

pub async fn version() -> Json<Value> {
    Json(json!({
        "version": MESOS_VERSION,
        "tepui_version": env!("CARGO_PKG_VERSION"),
        "build_user": "tepui",
    }))
}

pub async fn flags(State(agent): State<Arc<Agent>>) -> Json<Value> {
    let flags: serde_json::Map<String, Value> = agent
        .config
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Json(json!({ "flags": flags }))
}

/// Mesos's `/state` (src/slave/http.cpp, `Http::state`): built from the
/// GET_STATE answer the caller's view ACLs allow (super::state_model).
pub async fn state(
    State(agent): State<Arc<Agent>>,
    axum::extract::Extension(caller): axum::extract::Extension<super::auth::Caller>,
) -> Response {
    let info = agent.agent_info();
    let mut response = agent.get_state().await;
    // What the view_* ACLs hide from the caller is left out.
    agent.viewer(&caller).await.filter(&mut response);
    let details = agent.executor_details().await;
    let body = super::state_model::state_json(super::state_model::Inputs {
        info: &info,
        state: response.get_state.unwrap_or_default(),
        details: &details,
        pid: format!("slave(1)@{}", agent.endpoint()),
        start_time: agent.started_unix,
        master_hostname: super::state_model::master_hostname(agent.config.master.as_deref()),
        flags: &agent.config.flags,
        version: MESOS_VERSION,
    });
    Json(body).into_response()
}

fn process_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub(super) async fn metric_values(agent: &Arc<Agent>) -> Vec<(String, f64)> {
    let g = agent.gauges().await;
    let m = &agent.metrics;
    let f = agent.fetcher.metrics();
    let i = agent.containerizer.image_metrics().unwrap_or_default();
    use crate::daemon::state::Phase;
    use tepui_proto::v1::TaskState as S;
    let ended = |s: S| m.task_ends(s) as f64;
    let named = vec![
        ("slave/uptime_secs", agent.started.elapsed().as_secs_f64()),
        (
            "slave/registered",
            f64::from(u8::from(m.registered.load(Ordering::Relaxed))),
        ),
        // Mesos's agent task and executor metrics (docs/monitoring.md):
        // live tasks by state are gauges, ended ones counters.
        ("slave/tasks_staging", g.tasks_in(S::TaskStaging)),
        ("slave/tasks_starting", g.tasks_in(S::TaskStarting)),
        ("slave/tasks_running", g.tasks_in(S::TaskRunning)),
        ("slave/tasks_killing", g.tasks_in(S::TaskKilling)),
        ("slave/tasks_finished", ended(S::TaskFinished)),
        ("slave/tasks_failed", ended(S::TaskFailed)),
        ("slave/tasks_killed", ended(S::TaskKilled)),
        ("slave/tasks_lost", ended(S::TaskLost)),
        ("slave/tasks_gone", ended(S::TaskGone)),
        (
            "slave/executors_registering",
            g.executors_in(Phase::Registering),
        ),
        ("slave/executors_running", g.executors_in(Phase::Running)),
        (
            "slave/executors_terminating",
            g.executors_in(Phase::Terminating),
        ),
        (
            "slave/executors_terminated",
            m.executors_terminated.load(Ordering::Relaxed) as f64,
        ),
        ("slave/frameworks_active", g.frameworks as f64),
        (
            "slave/valid_status_updates",
            m.valid_status_updates.load(Ordering::Relaxed) as f64,
        ),
        (
            "slave/tasks_launched_total",
            m.tasks_launched.load(Ordering::Relaxed) as f64,
        ),
        (
            "slave/executors_launched_total",
            m.executors_launched.load(Ordering::Relaxed) as f64,
        ),
        (
            "slave/status_updates_forwarded_total",
            m.updates_forwarded.load(Ordering::Relaxed) as f64,
        ),
        ("system/mem_rss_bytes", process_rss_bytes() as f64),
        ("fetcher/fetches_total", f.fetches as f64),
        ("fetcher/failures_total", f.failures as f64),
        ("fetcher/cache_hits_total", f.cache_hits as f64),
        ("fetcher/cache_misses_total", f.cache_misses as f64),
        ("fetcher/bytes_fetched_total", f.bytes_fetched as f64),
        ("fetcher/cache_size_bytes", f.cache_size as f64),
        ("images/pulls_total", i.pulls as f64),
        ("images/pull_failures_total", i.pull_failures as f64),
        ("images/layers_fetched_total", i.layers_fetched as f64),
        ("images/layer_cache_hits_total", i.layer_cache_hits as f64),
        ("images/bytes_fetched_total", i.bytes_fetched as f64),
        ("images/layers_removed_total", i.layers_removed as f64),
        ("images/bytes_freed_total", i.bytes_freed as f64),
    ];
    let mut out: Vec<(String, f64)> = named.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // `slave/<resource>_total`, `_used` (what executors and tasks hold)
    // and `_percent` (src/slave/metrics.cpp, `Metrics::_resources_*`).
    let total = Resources::from(agent.agent_info().resources);
    let used = Resources::from(g.allocated.clone());
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = total.scalar(name).unwrap_or(0.0);
        let u = used.scalar(name).unwrap_or(0.0);
        out.push((format!("slave/{name}_total"), t));
        out.push((format!("slave/{name}_used"), u));
        out.push((
            format!("slave/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        ));
    }
    out.extend(tepui_proto::system_metrics::system_metrics());
    out
}

pub async fn metrics_snapshot(State(agent): State<Arc<Agent>>) -> Json<Value> {
    let map: serde_json::Map<String, Value> = metric_values(&agent)
        .await
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Json(Value::Object(map))
}

/// Prometheus `/metrics`: the snapshot's keys (`mesos_` names, Mesos's
/// counters typed as counters) and, per executor container, its usage as
/// `/monitor/statistics` reports it, labelled by framework, executor and
/// (for an executor running one task) task.
pub async fn prometheus(State(agent): State<Arc<Agent>>) -> Response {
    use tepui_proto::prometheus::{Family, Kind, families, render};
    let mut out = families(metric_values(&agent).await);
    let mut state = agent.get_state().await.get_state.unwrap_or_default();
    let tasks = state.get_tasks.take().unwrap_or_default();
    let entries = super::debug_api::monitor_entries(&agent).await;
    // ResourceStatistics fields and their kinds (include/mesos/v1/mesos.proto).
    const SERIES: [(&str, Kind, &str); 9] = [
        (
            "cpus_user_time_secs",
            Kind::Counter,
            "CPU time spent in user mode",
        ),
        (
            "cpus_system_time_secs",
            Kind::Counter,
            "CPU time spent in kernel mode",
        ),
        (
            "cpus_nr_throttled",
            Kind::Counter,
            "CFS periods the container was throttled",
        ),
        (
            "cpus_throttled_time_secs",
            Kind::Counter,
            "Time the container was throttled",
        ),
        ("cpus_limit", Kind::Gauge, "Hard CPU limit"),
        ("mem_rss_bytes", Kind::Gauge, "Resident memory"),
        ("mem_limit_bytes", Kind::Gauge, "Memory limit"),
        ("processes", Kind::Gauge, "Processes in the container"),
        (
            super::debug_api::OOM_KILLS,
            Kind::Counter,
            "Processes of the container (its nested containers included) the kernel OOM-killed",
        ),
    ];
    for (field, kind, help) in SERIES {
        let mut family = Family {
            key: format!("container/{field}"),
            kind,
            help: if field == super::debug_api::OOM_KILLS {
                format!("{help}, per executor container")
            } else {
                format!("{help} (ResourceStatistics.{field}), per executor container")
            },
            samples: Vec::new(),
        };
        for e in &entries {
            let Some(value) = e["statistics"][field].as_f64() else {
                continue;
            };
            let fw = e["framework_id"].as_str().unwrap_or_default();
            let ex = e["executor_id"].as_str().unwrap_or_default();
            let mine: Vec<&str> = tasks
                .launched_tasks
                .iter()
                .filter(|t| {
                    t.framework_id.value == fw
                        && t.executor_id.as_ref().is_some_and(|x| x.value == ex)
                })
                .map(|t| t.task_id.value.as_str())
                .collect();
            let mut labels = vec![
                ("framework_id".to_string(), fw.to_string()),
                ("executor_id".to_string(), ex.to_string()),
            ];
            // An OOM count stays with the pod after the task that OOMed
            // ended: it names a task only when the executor never ran
            // another (a live sibling must not take the blame).
            let ever: Vec<&str> = if field == super::debug_api::OOM_KILLS {
                tasks
                    .launched_tasks
                    .iter()
                    .chain(&tasks.terminated_tasks)
                    .chain(&tasks.completed_tasks)
                    .filter(|t| {
                        t.framework_id.value == fw
                            && t.executor_id.as_ref().is_some_and(|x| x.value == ex)
                    })
                    .map(|t| t.task_id.value.as_str())
                    .collect()
            } else {
                mine
            };
            if let [task] = ever.as_slice() {
                labels.push(("task_id".to_string(), task.to_string()));
            }
            family.samples.push((labels, value));
        }
        out.push(family);
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        render(&out),
    )
        .into_response()
}
