//! The agent's `/state` (`/slave(1)/state`) as Mesos's agent writes it
//! (src/slave/http.cpp, `Http::_state` with `FrameworkWriter` and
//! `ExecutorWriter`): build facts, resources split by reservation, the
//! flags, frameworks with their executors (id, name, source, container,
//! directory, allocated resources, type, tasks in the model format) and
//! completed executors, and completed frameworks. Mesos's web UI reads it
//! on its agent, framework, executor and sandbox pages.

#![allow(deprecated)] // FrameworkInfo.role: what v0 readers see.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tepui_proto::model::{resource_map, task_json};
use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::agent::response;
use tepui_proto::v1::{AgentInfo, ExecutorInfo, Task};

use crate::daemon::ExecutorDetails;
use crate::daemon::state::ExecutorKind;

/// What the state is built from: the v1 GET_STATE answer (already
/// filtered by the caller's view ACLs) and the per-executor details.
pub struct Inputs<'a> {
    pub info: &'a AgentInfo,
    pub state: response::GetState,
    pub details: &'a BTreeMap<(String, String), ExecutorDetails>,
    pub pid: String,
    pub start_time: f64,
    pub master_hostname: String,
    pub flags: &'a [(String, String)],
    pub version: &'a str,
}

/// The host part of a `--master` value (`host:port`, `http://host:port`);
/// Mesos writes the leading master's `hostname()`, without its port.
pub fn master_hostname(master: Option<&str>) -> String {
    let Some(m) = master else {
        return String::new();
    };
    if m.starts_with("zk://") || m.starts_with("file://") {
        return String::new();
    }
    let rest = m.split_once("://").map_or(m, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => host_port.to_string(),
    }
}

fn framework_of(t: &Task) -> &str {
    &t.framework_id.value
}

fn executor_of(t: &Task) -> &str {
    t.executor_id.as_ref().map_or("", |e| e.value.as_str())
}

fn key(info: &ExecutorInfo) -> (String, String) {
    (
        info.framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default(),
        info.executor_id.value.clone(),
    )
}

/// `ExecutorWriter`: `tasks` are the live ones, `queued_tasks` those not
/// yet handed to the executor, `completed_tasks` the finished ones.
fn executor_json(
    info: &ExecutorInfo,
    details: Option<&ExecutorDetails>,
    tasks: &[Task],
    queued: &[Task],
    completed: &[Task],
) -> Value {
    let (fw, ex) = key(info);
    let mine = |list: &[Task]| -> Vec<Value> {
        list.iter()
            .filter(|t| framework_of(t) == fw && executor_of(t) == ex)
            .map(task_json)
            .collect()
    };
    let allocated = details.map_or_else(|| info.resources.clone(), |d| d.allocated.clone());
    let kind = details.map(|d| d.kind);
    // The type Mesos writes: the ExecutorInfo's, else what tepui ran
    // (its command executor stands in for Mesos's, its default for
    // Mesos's default executor).
    let r#type = match (info.r#type, kind) {
        (Some(t), _) if t != 0 => tepui_proto::v1::executor_info::Type::try_from(t)
            .map(|t| t.as_str_name().to_string())
            .ok(),
        (_, Some(ExecutorKind::Default)) => Some("DEFAULT".into()),
        (_, Some(ExecutorKind::Custom)) => Some("CUSTOM".into()),
        (_, Some(ExecutorKind::Command)) | (_, None) => None,
    };
    let mut v = json!({
        "id": ex,
        "name": info.name.clone().unwrap_or_default(),
        "source": info.source.clone().unwrap_or_default(),
        "container": details.map(|d| d.container_id.clone()).unwrap_or_default(),
        "directory": details.map(|d| d.directory.display().to_string()).unwrap_or_default(),
        "resources": resource_map(&Resources::from(allocated)),
        "tasks": mine(tasks),
        "queued_tasks": mine(queued),
        "completed_tasks": mine(completed),
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(role) = info.resources.iter().find_map(|r| r.allocation_role()) {
        o.insert("role".into(), json!(role));
    }
    if let Some(l) = &info.labels {
        o.insert(
            "labels".into(),
            tepui_proto::json::to_value(l)["labels"].clone(),
        );
    }
    if let Some(t) = r#type {
        o.insert("type".into(), json!(t));
    }
    v
}

/// `FrameworkWriter`.
fn framework_json(
    f: &tepui_proto::v1::FrameworkInfo,
    executors: Vec<Value>,
    completed_executors: Vec<Value>,
) -> Value {
    let multi_role = f.capabilities.iter().any(|c| {
        c.r#type == Some(tepui_proto::v1::framework_info::capability::Type::MultiRole as i32)
    });
    let mut v = json!({
        "id": f.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "name": f.name,
        "user": f.user,
        "failover_timeout": f.failover_timeout.unwrap_or(0.0),
        "checkpoint": f.checkpoint.unwrap_or(false),
        "hostname": f.hostname.clone().unwrap_or_default(),
        "capabilities": f.capabilities.iter().map(|c| tepui_proto::json::to_value(c)["type"].clone()).collect::<Vec<_>>(),
        "executors": executors,
        "completed_executors": completed_executors,
    });
    let o = v.as_object_mut().expect("an object");
    if multi_role {
        o.insert("roles".into(), json!(f.roles));
    } else {
        o.insert(
            "role".into(),
            json!(f.role.clone().unwrap_or_else(|| "*".into())),
        );
    }
    if let Some(p) = &f.principal {
        o.insert("principal".into(), json!(p));
    }
    v
}

pub fn state_json(inputs: Inputs<'_>) -> Value {
    let state = inputs.state;
    let tasks = state.get_tasks.unwrap_or_default();
    let executors = state.get_executors.unwrap_or_default();
    let frameworks = state.get_frameworks.unwrap_or_default();
    let details = inputs.details;
    let id_of = |f: &tepui_proto::v1::FrameworkInfo| {
        f.id.as_ref().map(|i| i.value.clone()).unwrap_or_default()
    };
    let live_of = |fw: &str| -> Vec<Value> {
        executors
            .executors
            .iter()
            .filter(|e| key(&e.executor_info).0 == fw)
            .map(|e| {
                let info = &e.executor_info;
                executor_json(
                    info,
                    details.get(&key(info)),
                    &tasks.launched_tasks,
                    &tasks.queued_tasks,
                    &tasks.terminated_tasks,
                )
            })
            .collect()
    };
    let completed_of = |fw: &str| -> Vec<Value> {
        executors
            .completed_executors
            .iter()
            .filter(|e| key(&e.executor_info).0 == fw)
            .map(|e| {
                let info = &e.executor_info;
                executor_json(
                    info,
                    details.get(&key(info)),
                    &[],
                    &[],
                    &tasks.completed_tasks,
                )
            })
            .collect()
    };
    let framework_list = |list: &[response::get_frameworks::Framework]| -> Vec<Value> {
        list.iter()
            .map(|f| {
                let id = id_of(&f.framework_info);
                framework_json(&f.framework_info, live_of(&id), completed_of(&id))
            })
            .collect()
    };
    // Resources: total, reserved by role, unreserved, and what executors
    // and their tasks hold of each (`reserved_resources_allocated`, ...).
    let total = Resources::from(inputs.info.resources.clone());
    // Completed executors hold nothing.
    let live: std::collections::BTreeSet<(String, String)> = executors
        .executors
        .iter()
        .map(|e| key(&e.executor_info))
        .collect();
    let mut held = Resources::new();
    for (k, d) in details {
        if live.contains(k) {
            held += Resources::from(d.allocated.clone());
        }
    }
    let by_role = |r: &Resources| -> Map<String, Value> {
        r.reservations()
            .into_iter()
            .map(|(role, r)| (role, resource_map(&r)))
            .collect()
    };
    let mut unreserved_held = held.unreserved();
    unreserved_held.unallocate();
    let mut unreserved = total.unreserved();
    unreserved.unallocate();
    let flags: Map<String, Value> = inputs
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let build = tepui_proto::build_info::build_info();
    let mut v = json!({
        "version": inputs.version,
        "build_date": build.date,
        "build_time": build.time,
        "build_user": build.user,
        "start_time": inputs.start_time,
        "id": inputs.info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "pid": inputs.pid,
        "hostname": inputs.info.hostname,
        "port": inputs.info.port.unwrap_or(5051),
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        "resources": resource_map(&total),
        "reserved_resources": by_role(&total),
        "unreserved_resources": resource_map(&unreserved),
        "reserved_resources_allocated": by_role(&held),
        "unreserved_resources_allocated": resource_map(&unreserved_held),
        "reserved_resources_full": by_role_full(&total),
        "unreserved_resources_full": tepui_proto::json::to_value(&AgentInfo { resources: unreserved.into_vec(), ..Default::default() })["resources"].clone(),
        "attributes": attributes(inputs.info),
        "master_hostname": inputs.master_hostname,
        "flags": flags,
        "frameworks": framework_list(&frameworks.frameworks),
        "completed_frameworks": framework_list(&frameworks.completed_frameworks),
    });
    let o = v.as_object_mut().expect("an object");
    for name in ["log_dir", "external_log_file"] {
        if let Some((_, value)) = inputs.flags.iter().find(|(k, _)| k == name) {
            o.insert(name.into(), json!(value));
        }
    }
    v
}

fn by_role_full(r: &Resources) -> Map<String, Value> {
    r.reservations()
        .into_iter()
        .map(|(role, r)| {
            let list = tepui_proto::json::to_value(&AgentInfo {
                resources: r.into_vec(),
                ..Default::default()
            })["resources"]
                .clone();
            (role, list)
        })
        .collect()
}

/// `attributes` as a name -> value object (`{}` when there are none).
fn attributes(info: &AgentInfo) -> Value {
    let map: Map<String, Value> = info
        .attributes
        .iter()
        .map(|a| {
            let value = if let Some(s) = &a.scalar {
                json!(s.value)
            } else if let Some(t) = &a.text {
                json!(t.value)
            } else {
                tepui_proto::json::to_value(a)
            };
            (a.name.clone(), value)
        })
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    #[test]
    fn master_hostname_has_no_port() {
        use super::master_hostname as h;
        assert_eq!(h(Some("127.0.0.1:5050")), "127.0.0.1");
        assert_eq!(h(Some("http://m.example:5050/")), "m.example");
        assert_eq!(h(Some("[::1]:5050")), "::1");
        assert_eq!(h(Some("master")), "master");
        assert_eq!(h(Some("zk://z:2181/mesos")), "");
        assert_eq!(h(None), "");
    }
}
