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

/// Mesos's `/state` shape: the fields dashboards and CLIs read.
#[allow(deprecated)] // `role`: v0 readers still look at it.
pub async fn state(
    State(agent): State<Arc<Agent>>,
    axum::extract::Extension(caller): axum::extract::Extension<super::auth::Caller>,
) -> Response {
    let info = agent.agent_info();
    let mut response = agent.get_state().await;
    // What the view_* ACLs hide from the caller is left out.
    agent.viewer(&caller).await.filter(&mut response);
    let get_state = response.get_state.unwrap_or_default();
    let tasks = get_state.get_tasks.unwrap_or_default();
    let id = info
        .id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let task_json = |t: &tepui_proto::v1::Task| {
        let mut v = tepui_proto::json::to_value(t);
        // v0 uses string ids and state names directly.
        if let Some(obj) = v.as_object_mut() {
            obj.insert("id".into(), json!(t.task_id.value));
            obj.insert("framework_id".into(), json!(t.framework_id.value));
            obj.insert(
                "executor_id".into(),
                json!(
                    t.executor_id
                        .as_ref()
                        .map(|e| e.value.clone())
                        .unwrap_or_default()
                ),
            );
            obj.insert("slave_id".into(), json!(t.agent_id.value));
        }
        v
    };
    let frameworks: Vec<Value> = get_state
        .get_frameworks
        .unwrap_or_default()
        .frameworks
        .iter()
        .map(|f| {
            let fw = f
                .framework_info
                .id
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let mine = |list: &Vec<tepui_proto::v1::Task>| -> Vec<Value> {
                list.iter()
                    .filter(|t| t.framework_id.value == fw)
                    .map(task_json)
                    .collect()
            };
            json!({
                "id": fw,
                "name": f.framework_info.name,
                "user": f.framework_info.user,
                "role": f.framework_info.role,
                "checkpoint": f.framework_info.checkpoint.unwrap_or(false),
                "executors": [{
                    "tasks": mine(&tasks.launched_tasks),
                    "queued_tasks": mine(&tasks.queued_tasks),
                    "completed_tasks": mine(&tasks.terminated_tasks),
                }],
            })
        })
        .collect();
    let resources = tepui_proto::json::to_value(&tepui_proto::v1::AgentInfo {
        resources: info.resources.clone(),
        ..Default::default()
    });
    let body = json!({
        "version": MESOS_VERSION,
        "id": id,
        "pid": format!("slave(1)@{}", agent.endpoint()),
        "hostname": info.hostname,
        "port": agent.config.port,
        "start_time": agent.started_unix,
        "resources": resources.get("resources").cloned().unwrap_or(Value::Null),
        "attributes": tepui_proto::json::to_value(&info).get("attributes").cloned().unwrap_or(Value::Null),
        "master_hostname": agent.config.master.clone().unwrap_or_default(),
        "flags": agent.config.flags.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "frameworks": frameworks,
        "completed_frameworks": [],
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

pub(super) async fn metric_values(agent: &Arc<Agent>) -> Vec<(&'static str, f64)> {
    let (running, executors, frameworks) = agent.counts().await;
    let m = &agent.metrics;
    let f = agent.fetcher.metrics();
    let i = agent.containerizer.image_metrics().unwrap_or_default();
    vec![
        ("slave/uptime_secs", agent.started.elapsed().as_secs_f64()),
        (
            "slave/registered",
            f64::from(u8::from(m.registered.load(Ordering::Relaxed))),
        ),
        ("slave/tasks_running", running as f64),
        ("slave/executors_running", executors as f64),
        ("slave/frameworks_active", frameworks as f64),
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
    ]
}

pub async fn metrics_snapshot(State(agent): State<Arc<Agent>>) -> Json<Value> {
    let map: serde_json::Map<String, Value> = metric_values(&agent)
        .await
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Json(Value::Object(map))
}

pub async fn prometheus(State(agent): State<Arc<Agent>>) -> Response {
    let mut text = String::new();
    for (name, value) in metric_values(&agent).await {
        let name = format!("tepui_agent_{}", name.replace('/', "_"));
        text.push_str(&format!("# TYPE {name} gauge\n{name} {value}\n"));
    }
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
