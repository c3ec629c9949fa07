//! Mesos's model JSON (src/common/http.cpp, the `json(JSON::ObjectWriter*,
//! const T&)` overloads) that the v0 endpoints of both daemons write:
//! resources as name -> value maps, tasks with their statuses, executors.
//! An optional field is written only when set, never as `null`.

#![allow(deprecated)] // Task/FrameworkInfo `role`: what v0 readers see.

use serde_json::{Value, json};

use crate::resources::{ResourceExt, Resources};
use crate::v1::Task;
use crate::v1::value::Type;

/// Mesos's v0 resource maps: scalars as numbers, ranges and sets as text.
pub fn resource_map(resources: &Resources) -> Value {
    let mut map = serde_json::Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        map.insert(
            name.to_string(),
            json!(resources.scalar(name).unwrap_or(0.0)),
        );
    }
    for r in resources.iter() {
        if r.r#type == Type::Scalar as i32 {
            if !map.contains_key(&r.name) {
                map.insert(
                    r.name.clone(),
                    json!(resources.scalar(&r.name).unwrap_or(0.0)),
                );
            }
        } else if r.r#type == Type::Ranges as i32 {
            if let Some(ranges) = resources.ranges(&r.name) {
                let text: Vec<String> = ranges
                    .range
                    .iter()
                    .map(|x| format!("{}-{}", x.begin, x.end))
                    .collect();
                map.insert(r.name.clone(), json!(format!("[{}]", text.join(", "))));
            }
        } else if let Some(set) = resources.set(&r.name) {
            map.insert(
                r.name.clone(),
                json!(format!("{{{}}}", set.item.join(", "))),
            );
        }
    }
    Value::Object(map)
}

pub fn task_json(t: &Task) -> Value {
    let state = crate::v1::TaskState::try_from(t.state)
        .map(|s| s.as_str_name())
        .unwrap_or("TASK_STAGING");
    let resources = Resources::from(t.resources.clone());
    let role = t
        .resources
        .iter()
        .find_map(|r| r.allocation_role().map(str::to_string));
    let mut v = json!({
        "id": t.task_id.value,
        "name": t.name,
        "framework_id": t.framework_id.value,
        "executor_id": t.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": t.agent_id.value,
        "state": state,
        "role": role,
        "resources": resource_map(&resources),
        "statuses": t.statuses.iter().map(status_json).collect::<Vec<_>>(),
        "container": t.container.as_ref().map(crate::json::to_value),
        "labels": t.labels.as_ref().map(|l| crate::json::to_value(l)["labels"].clone()),
    });
    // Mesos writes an optional field only when it is set, never `null`.
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

/// A task status as Mesos's model JSON writes it (src/common/http.cpp,
/// `json(JSON::ObjectWriter*, const TaskStatus&)`): state, timestamp, and
/// `labels`, `container_status`, `healthy` only when set. The Mesos CLI
/// finds a task's container (`task exec`, `task attach`) in
/// `container_status.container_id`.
pub fn status_json(s: &crate::v1::TaskStatus) -> Value {
    let mut v = json!({
        "state": crate::v1::TaskState::try_from(s.state).map(|x| x.as_str_name()).unwrap_or(""),
        "timestamp": s.timestamp.unwrap_or(0.0),
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(labels) = &s.labels {
        o.insert(
            "labels".into(),
            crate::json::to_value(labels)["labels"].clone(),
        );
    }
    if let Some(c) = &s.container_status {
        o.insert("container_status".into(), crate::json::to_value(c));
    }
    if let Some(h) = s.healthy {
        o.insert("healthy".into(), json!(h));
    }
    v
}

/// An `ExecutorInfo` as Mesos's model JSON writes it (src/common/http.cpp,
/// `json(JSON::ObjectWriter*, const ExecutorInfo&)`): id, name,
/// framework_id, command, resources as a map; optional fields only when set.
pub fn executor_json(e: &crate::v1::ExecutorInfo) -> Value {
    let mut v = json!({
        "executor_id": e.executor_id.value,
        "name": e.name.clone().unwrap_or_default(),
        "framework_id": e.framework_id.as_ref().map(|f| f.value.clone()).unwrap_or_default(),
        "resources": resource_map(&Resources::from(e.resources.clone())),
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(c) = &e.command {
        o.insert("command".into(), crate::json::to_value(c));
    }
    if let Some(t) = crate::v1::executor_info::Type::try_from(e.r#type.unwrap_or(0))
        .ok()
        .filter(|t| *t != crate::v1::executor_info::Type::Unknown)
    {
        o.insert("type".into(), json!(t.as_str_name()));
    }
    if let Some(c) = &e.container {
        o.insert("container".into(), crate::json::to_value(c));
    }
    if let Some(l) = &e.labels {
        o.insert("labels".into(), crate::json::to_value(l)["labels"].clone());
    }
    v
}
