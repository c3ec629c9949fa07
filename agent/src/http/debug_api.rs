//! The operator API's read-mostly debugging calls (GET_FRAMEWORKS,
//! GET_EXECUTORS, GET_METRICS, the logging level, LIST_FILES, READ_FILE)
//! and the v0 `/monitor/statistics` and `/containers` endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};
use tepui_proto::v1::Metric;
use tepui_proto::v1::agent::{Response as AgentResponse, call, response};

use super::files;
use crate::daemon::Agent;

/// The glog-style verbosity operators set with SET_LOGGING_LEVEL. The
/// tracing filter is fixed when the process starts (`--log_level`,
/// `TEPUI_LOG`), so the level is recorded and reported but does not change
/// what is logged.
static LOGGING_LEVEL: AtomicU32 = AtomicU32::new(0);

pub async fn get_frameworks(agent: &Arc<Agent>) -> AgentResponse {
    let state = agent.get_state().await;
    AgentResponse {
        r#type: Some(response::Type::GetFrameworks as i32),
        get_frameworks: state.get_state.and_then(|s| s.get_frameworks),
        ..Default::default()
    }
}

pub async fn get_executors(agent: &Arc<Agent>) -> AgentResponse {
    let state = agent.get_state().await;
    AgentResponse {
        r#type: Some(response::Type::GetExecutors as i32),
        get_executors: state.get_state.and_then(|s| s.get_executors),
        ..Default::default()
    }
}

pub async fn get_metrics(agent: &Arc<Agent>) -> AgentResponse {
    let metrics = super::v0::metric_values(agent)
        .await
        .into_iter()
        .map(|(name, value)| Metric {
            name: name.to_string(),
            value: Some(value),
        })
        .collect();
    AgentResponse {
        r#type: Some(response::Type::GetMetrics as i32),
        get_metrics: Some(response::GetMetrics { metrics }),
        ..Default::default()
    }
}

pub fn get_logging_level() -> AgentResponse {
    AgentResponse {
        r#type: Some(response::Type::GetLoggingLevel as i32),
        get_logging_level: Some(response::GetLoggingLevel {
            level: LOGGING_LEVEL.load(Ordering::Relaxed),
        }),
        ..Default::default()
    }
}

pub fn set_logging_level(call: &call::SetLoggingLevel) {
    LOGGING_LEVEL.store(call.level, Ordering::Relaxed);
    tracing::warn!(
        level = call.level,
        "SET_LOGGING_LEVEL recorded; tepui's log filter is fixed at startup (--log_level / TEPUI_LOG), so logging does not change"
    );
}

pub async fn list_files(agent: &Arc<Agent>, path: String) -> Result<AgentResponse, Response> {
    let file_infos = files::blocking(agent, move |a| files::list(a, &path))
        .await
        .map_err(files::FileError::into_response)?;
    Ok(AgentResponse {
        r#type: Some(response::Type::ListFiles as i32),
        list_files: Some(response::ListFiles { file_infos }),
        ..Default::default()
    })
}

pub async fn read_file(agent: &Arc<Agent>, c: call::ReadFile) -> Result<AgentResponse, Response> {
    let (size, data) = files::blocking(agent, move |a| files::read(a, &c.path, c.offset, c.length))
        .await
        .map_err(files::FileError::into_response)?;
    Ok(AgentResponse {
        r#type: Some(response::Type::ReadFile as i32),
        read_file: Some(response::ReadFile {
            size,
            data: data.into(),
        }),
        ..Default::default()
    })
}

/// One entry per running container an executor owns, in Mesos's
/// `/monitor/statistics` shape.
/// The key of a container's OOM kill count in its `/monitor/statistics`
/// entry's `statistics`.
pub(super) const OOM_KILLS: &str = "mem_oom_kills";

async fn container_entries(agent: &Arc<Agent>, with_status: bool) -> Vec<Value> {
    let owners = agent.container_owners().await;
    let mut out = Vec::new();
    for state in agent.containerizer.list().await {
        let id = &state.container;
        if state.termination.is_some() || id.is_nested() {
            continue;
        }
        let Some((fw, ex, name)) = owners.get(id.pod()) else {
            continue;
        };
        let mut statistics = match agent.containerizer.stats(id).await {
            Ok(mut s) => {
                agent.add_disk_statistics(id, &mut s).await;
                tepui_proto::json::to_value(&s)
            }
            Err(_) => json!({}),
        };
        // Not a ResourceStatistics field (Mesos counts none): the pod's OOM
        // kills (v1 `memory.oom_control`, v2 `memory.events` `oom_kill`),
        // an extra key Mesos's clients ignore, for the Prometheus series.
        if let (Some(n), Some(obj)) = (
            agent.containerizer.oom_kills(id).await,
            statistics.as_object_mut(),
        ) {
            obj.insert(OOM_KILLS.into(), json!(n));
        }
        let mut entry = json!({
            "executor_id": ex,
            "executor_name": name.clone().unwrap_or_default(),
            "framework_id": fw,
            "source": ex,
            "statistics": statistics,
        });
        if with_status && let Some(obj) = entry.as_object_mut() {
            obj.insert("container_id".into(), json!(id.leaf()));
            obj.insert(
                "status".into(),
                json!({
                    "container_id": tepui_proto::json::to_value(&id.to_container_id()),
                    "executor_pid": state.pid,
                }),
            );
        }
        out.push(entry);
    }
    out
}

/// The `/monitor/statistics` entries (also Prometheus's per-container
/// series).
pub(super) async fn monitor_entries(agent: &Arc<Agent>) -> Vec<Value> {
    container_entries(agent, false).await
}

pub async fn monitor_statistics(State(agent): State<Arc<Agent>>) -> Json<Value> {
    Json(Value::Array(container_entries(&agent, false).await))
}

pub async fn containers(State(agent): State<Arc<Agent>>) -> Json<Value> {
    Json(Value::Array(container_entries(&agent, true).await))
}
