//! The v0 endpoints existing clients and tools read: `/version`, `/state`
//! (`/master/state`), `/state-summary`, `/tasks`, `/slaves`, `/frameworks`,
//! `/roles`, `/redirect`, `/metrics/snapshot` and Prometheus `/metrics`;
//! and the one v0 write operators still script, `POST /teardown`.
//! Field names follow Mesos's JSON (`slaves`, `pid`, `used_resources`).

#![allow(deprecated)] // FrameworkInfo.role is what v0 clients read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use tepui_proto::model::{executor_json, resource_map, task_json};
use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::Task;
use tepui_proto::v1::value::Type;

use crate::auth::Caller;
use crate::state::agents::agent_pid;
use crate::state::tasks::is_terminal;
use crate::state::{Master, Shared, VERSION};
use tepui_proto::auth::Action;

pub fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for prefix in ["", "/master"] {
        r = r
            .route(&format!("{prefix}/state"), get(state))
            .route(&format!("{prefix}/state.json"), get(state))
            .route(&format!("{prefix}/state-summary"), get(state_summary))
            .route(&format!("{prefix}/tasks"), get(tasks))
            .route(&format!("{prefix}/tasks.json"), get(tasks))
            .route(&format!("{prefix}/slaves"), get(slaves))
            .route(&format!("{prefix}/frameworks"), get(frameworks))
            .route(&format!("{prefix}/roles"), get(roles))
            .route(&format!("{prefix}/roles.json"), get(roles))
            .route(&format!("{prefix}/redirect"), get(redirect))
            .route(&format!("{prefix}/flags"), get(flags))
            .route(&format!("{prefix}/health"), get(|| async { "" }))
            .route(&format!("{prefix}/teardown"), axum::routing::post(teardown));
    }
    r.merge(crate::v0_maintenance::routes())
        .route("/version", get(version))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics", get(prometheus))
}

fn agent_json(m: &Master, id: &str) -> Value {
    let Some(a) = m.agents.get(id) else {
        return Value::Null;
    };
    let mut used = Resources::new();
    for t in a.tasks.values().filter(|t| !is_terminal(t.state)) {
        used += Resources::from(t.resources.clone());
    }
    for e in a.executors.values() {
        used += Resources::from(e.resources.clone());
    }
    let mut offered = Resources::new();
    for o in m.offers.values().filter(|o| o.offer.agent_id.value == id) {
        offered += o.resources();
    }
    let mut unreserved = a.total.unreserved();
    unreserved.unallocate();
    let reserved: serde_json::Map<String, Value> = a
        .total
        .reservations()
        .into_iter()
        .map(|(role, r)| (role, resource_map(&r)))
        .collect();
    json!({
        "id": a.id,
        "pid": agent_pid(&a.info, a.address.as_deref()),
        "hostname": a.info.hostname,
        "port": a.info.port.unwrap_or(5051),
        "registered_time": a.registered_time,
        "resources": resource_map(&a.total),
        "used_resources": resource_map(&used),
        "offered_resources": resource_map(&offered),
        "reserved_resources": reserved,
        "unreserved_resources": resource_map(&unreserved),
        "attributes": a.info.attributes.iter().map(|x| (x.name.clone(), attribute_value(x))).collect::<serde_json::Map<_, _>>(),
        "active": a.active(),
        "deactivated": a.deactivated,
        "version": a.version.clone().unwrap_or_default(),
        "capabilities": a.capabilities.iter().map(|c| tepui_proto::json::to_value(c)["type"].clone()).collect::<Vec<_>>(),
    })
}

fn attribute_value(a: &tepui_proto::v1::Attribute) -> Value {
    if let Some(s) = &a.scalar {
        json!(s.value)
    } else if let Some(t) = &a.text {
        json!(t.value)
    } else {
        tepui_proto::json::to_value(a)
    }
}

/// The executors a framework runs, as Mesos's `FullFrameworkWriter`
/// lists them (src/master/readonly_handler.cpp): the model `ExecutorInfo`
/// plus the `slave_id` it runs on. Sorted for stable output.
fn framework_executors(m: &Master, framework_id: &str) -> (Vec<Value>, Resources) {
    let mut out = Vec::new();
    let mut used = Resources::new();
    let mut agents: Vec<&crate::state::Agent> = m.agents.values().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    for a in agents {
        let mut mine: Vec<_> = a
            .executors
            .iter()
            .filter(|((f, _), _)| f == framework_id)
            .collect();
        mine.sort_by(|x, y| x.0.cmp(y.0));
        for (_, e) in mine {
            used += Resources::from(e.resources.clone());
            let mut v = executor_json(e);
            if let Some(o) = v.as_object_mut() {
                o.insert("slave_id".into(), json!(a.id));
            }
            out.push(v);
        }
    }
    (out, used)
}

/// A framework as Mesos's `FullFrameworkWriter` writes it
/// (src/master/readonly_handler.cpp, with `Summary<Framework>`): usage
/// counts its executors, `resources` is used plus offered, `role` for a
/// framework without MULTI_ROLE and `roles` for one with it, `principal`
/// and `labels` only when set, `unregistered_time` always (0 until the
/// master removed it).
fn framework_json(m: &Master, f: &crate::state::Framework, completed: bool) -> Value {
    let mut tasks = Vec::new();
    let mut used = Resources::new();
    for (tid, aid) in &f.tasks {
        if let Some(t) = m
            .agents
            .get(aid)
            .and_then(|a| a.tasks.get(&(f.id.clone(), tid.clone())))
        {
            if !is_terminal(t.state) {
                used += Resources::from(t.resources.clone());
            }
            tasks.push(task_json(t));
        }
    }
    let (executors, executor_resources) = if completed {
        (Vec::new(), Resources::new())
    } else {
        framework_executors(m, &f.id)
    };
    used += executor_resources;
    let mut offered = Resources::new();
    let offers: Vec<Value> = f
        .offers
        .iter()
        .filter_map(|o| m.offers.get(o))
        .map(|o| {
            offered += o.resources();
            json!({
                "id": o.offer.id.value,
                "framework_id": f.id,
                "slave_id": o.offer.agent_id.value,
                "resources": resource_map(&o.resources()),
                "allocation_info": o.offer.allocation_info.as_ref().map(tepui_proto::json::to_value),
            })
        })
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.retain(|_, x| !x.is_null());
            }
            v
        })
        .collect();
    let multi_role = f.info.capabilities.iter().any(|c| {
        c.r#type == Some(tepui_proto::v1::framework_info::capability::Type::MultiRole as i32)
    });
    // src/master/readonly_handler.cpp writes `unregisteredTime`, which
    // only `Master::removeFramework` sets: 0 until the framework is removed.
    let unregistered_time = f.unregistered_time.unwrap_or(0.0);
    let mut total = used.clone();
    total += offered.clone();
    let mut v = json!({
        "id": f.id,
        "name": f.info.name,
        "pid": Value::Null,
        "user": f.info.user,
        "principal": f.info.principal,
        "hostname": f.info.hostname.clone().unwrap_or_default(),
        "webui_url": f.info.webui_url.clone().unwrap_or_default(),
        "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
        "checkpoint": f.info.checkpoint.unwrap_or(false),
        "active": !completed && f.conn.is_some(),
        "connected": !completed && f.conn.is_some(),
        "recovered": f.recovered,
        "registered_time": f.registered_time,
        "unregistered_time": unregistered_time,
        "reregistered_time": f.reregistered_time.filter(|t| *t != f.registered_time),
        "capabilities": f.info.capabilities.iter().map(|c| tepui_proto::json::to_value(c)["type"].clone()).collect::<Vec<_>>(),
        "used_resources": resource_map(&used),
        "offered_resources": resource_map(&offered),
        "resources": resource_map(&total),
        "tasks": tasks,
        "unreachable_tasks": [],
        "completed_tasks": f.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "offers": offers,
        "executors": executors,
        "labels": f.info.labels.as_ref().map(|l| tepui_proto::json::to_value(l)["labels"].clone()),
    });
    let o = v.as_object_mut().expect("an object");
    if multi_role {
        o.insert("roles".into(), json!(f.roles));
    } else {
        o.insert(
            "role".into(),
            json!(
                f.info.role.clone().unwrap_or_else(|| f
                    .roles
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "*".into()))
            ),
        );
    }
    o.retain(|_, x| !x.is_null());
    v
}

/// The capabilities tepui's master has of those Mesos 1.11 announces in
/// `MasterInfo` (include/mesos/v1/mesos.proto): draining (DRAIN_AGENT)
/// and quota configs (UPDATE_QUOTA).
fn master_capabilities(m: &Master) -> Vec<Value> {
    if !m.info.capabilities.is_empty() {
        return m
            .info
            .capabilities
            .iter()
            .map(tepui_proto::json::to_value)
            .collect();
    }
    ["AGENT_DRAINING", "QUOTA_V2"]
        .iter()
        .map(|t| json!({ "type": t }))
        .collect()
}

/// The flags object of `/master/state` and `/master/flags`.
fn all_flags(m: &Master) -> Value {
    Value::Object(
        m.config
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect(),
    )
}

fn flag<'a>(m: &'a Master, name: &str) -> Option<&'a str> {
    m.config
        .flags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `/master/state` as `ReadOnlyHandler::state` writes it
/// (src/master/readonly_handler.cpp): build facts, capabilities, the
/// flags (`cluster`, `log_dir`, `external_log_file` also at the top when
/// set), agents, frameworks, completed frameworks.
fn state_json(m: &Master) -> Value {
    let mut agent_ids: Vec<&String> = m.agents.keys().collect();
    agent_ids.sort();
    let mut frameworks: Vec<&crate::state::Framework> = m.frameworks.values().collect();
    frameworks.sort_by(|a, b| a.id.cmp(&b.id));
    let build = tepui_proto::build_info::build_info();
    let mut v = json!({
        "version": VERSION,
        "build_date": build.date,
        "build_time": build.time,
        "build_user": build.user,
        "id": m.id,
        "pid": m.info.pid,
        "hostname": m.info.hostname,
        "capabilities": master_capabilities(m),
        "leader": m.info.pid,
        "leader_info": tepui_proto::json::to_value(&m.info),
        "start_time": m.start_time,
        "elected_time": m.start_time,
        "activated_slaves": m.agents.values().filter(|a| a.active()).count(),
        "deactivated_slaves": m.agents.values().filter(|a| !a.active()).count(),
        "unreachable_slaves": m.registry.state.unreachable.len(),
        "flags": all_flags(m),
        "slaves": agent_ids.iter().map(|id| agent_json(m, id)).collect::<Vec<_>>(),
        "recovered_slaves": [],
        "frameworks": frameworks.iter().map(|f| framework_json(m, f, false)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks.iter().map(|f| framework_json(m, f, true)).collect::<Vec<_>>(),
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    let o = v.as_object_mut().expect("an object");
    for name in ["cluster", "log_dir", "external_log_file"] {
        if let Some(value) = flag(m, name) {
            o.insert(name.into(), json!(value));
        }
    }
    v
}

fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// `/master/flags`: `{"flags": {name: value}}` (src/master/http.cpp,
/// `Master::Http::flags`), the flags as given.
async fn flags(State(s): State<Arc<Shared>>) -> Response {
    let flags: serde_json::Map<String, Value> = s
        .config
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json_response(json!({ "flags": flags }))
}

async fn version() -> Response {
    let build = tepui_proto::build_info::build_info();
    json_response(json!({
        "version": VERSION,
        "build_date": build.date,
        "build_time": build.time,
        "build_user": build.user,
    }))
}

/// Drops the frameworks and tasks the `view_frameworks` / `view_tasks`
/// ACLs hide from the caller (objects: the users they run as).
fn filter_view(s: &Shared, caller: &Caller, mut v: Value) -> Value {
    let principal = caller.principal.as_ref().and_then(|p| p.value.as_deref());
    let auth = &s.config.auth;
    for key in ["frameworks", "completed_frameworks"] {
        if let Some(list) = v.get_mut(key).and_then(Value::as_array_mut) {
            list.retain(|f| auth.allowed(Action::ViewFrameworks, principal, f["user"].as_str()));
            for f in list.iter_mut() {
                let user = f["user"].as_str().unwrap_or_default().to_string();
                for tasks in ["tasks", "completed_tasks"] {
                    if let Some(tasks) = f.get_mut(tasks).and_then(Value::as_array_mut) {
                        tasks.retain(|t| {
                            let task_user = t["user"].as_str().unwrap_or(&user);
                            auth.allowed(Action::ViewTasks, principal, Some(task_user))
                        });
                    }
                }
            }
        }
    }
    v
}

async fn state(State(s): State<Arc<Shared>>, Extension(caller): Extension<Caller>) -> Response {
    let v = state_json(&s.lock());
    json_response(filter_view(&s, &caller, v))
}

/// The per-state task counters `/master/state-summary` adds to each agent
/// and framework (src/master/readonly_handler.cpp, `TaskStateSummary`).
const SUMMARY_STATES: [&str; 10] = [
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_KILLED",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_UNREACHABLE",
];

/// `/master/state-summary` as `ReadOnlyHandler::stateSummary` writes it:
/// agents and registered frameworks without their task lists, each with
/// its task counters by state (live and completed tasks of registered
/// frameworks) and the ids of the frameworks (agents) it shares tasks or
/// executors with.
async fn state_summary(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let m = s.lock();
    let v = filter_view(&s, &caller, state_json(&m));
    let empty = Vec::new();
    let frameworks = v["frameworks"].as_array().unwrap_or(&empty);
    // (framework, agent, state) of every task the caller may see.
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut links: std::collections::BTreeSet<(String, String)> = Default::default();
    for f in frameworks {
        let fw = f["id"].as_str().unwrap_or_default().to_string();
        for list in ["tasks", "unreachable_tasks", "completed_tasks"] {
            for t in f[list].as_array().unwrap_or(&empty) {
                let agent = t["slave_id"].as_str().unwrap_or_default().to_string();
                let state = t["state"].as_str().unwrap_or_default().to_string();
                if list != "completed_tasks" {
                    links.insert((fw.clone(), agent.clone()));
                }
                seen.push((fw.clone(), agent, state));
            }
        }
        for e in f["executors"].as_array().unwrap_or(&empty) {
            let agent = e["slave_id"].as_str().unwrap_or_default().to_string();
            links.insert((fw.clone(), agent));
        }
    }
    let counters = |o: &mut serde_json::Map<String, Value>,
                    mine: &dyn Fn(&(String, String, String)) -> bool| {
        for state in SUMMARY_STATES {
            let n = seen.iter().filter(|t| mine(t) && t.2 == state).count();
            o.insert(state.into(), json!(n));
        }
    };
    let slaves: Vec<Value> = v["slaves"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|a| {
            let mut a = a.clone();
            let id = a["id"].as_str().unwrap_or_default().to_string();
            if let Some(o) = a.as_object_mut() {
                counters(o, &|t| t.1 == id);
                let ids: Vec<&String> = links.iter().filter(|l| l.1 == id).map(|l| &l.0).collect();
                o.insert("framework_ids".into(), json!(ids));
            }
            a
        })
        .collect();
    let summaries: Vec<Value> = frameworks
        .iter()
        .map(|f| {
            let id = f["id"].as_str().unwrap_or_default().to_string();
            let mut out = serde_json::Map::new();
            // `Summary<Framework>`: the framework without its lists.
            for key in [
                "id",
                "name",
                "pid",
                "used_resources",
                "offered_resources",
                "capabilities",
                "hostname",
                "webui_url",
                "active",
                "connected",
                "recovered",
            ] {
                if let Some(x) = f.get(key) {
                    out.insert(key.into(), x.clone());
                }
            }
            counters(&mut out, &|t| t.0 == id);
            let ids: Vec<&String> = links.iter().filter(|l| l.0 == id).map(|l| &l.1).collect();
            out.insert("slave_ids".into(), json!(ids));
            Value::Object(out)
        })
        .collect();
    let mut body = json!({
        "hostname": v["hostname"],
        "slaves": slaves,
        "frameworks": summaries,
    });
    if let (Some(cluster), Some(o)) = (v.get("cluster"), body.as_object_mut()) {
        o.insert("cluster".into(), cluster.clone());
    }
    json_response(body)
}

async fn tasks(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let m = s.lock();
    let principal = caller.principal.as_ref().and_then(|p| p.value.as_deref());
    let auth = &s.config.auth;
    let framework_user = |id: &str| {
        m.frameworks
            .get(id)
            .or_else(|| m.completed_frameworks.iter().find(|f| f.id == id))
            .map(|f| f.info.user.clone())
            .unwrap_or_default()
    };
    let visible = |t: &Task| {
        let fw_user = framework_user(&t.framework_id.value);
        let user = t.user.clone().unwrap_or_else(|| fw_user.clone());
        auth.allowed(Action::ViewFrameworks, principal, Some(&fw_user))
            && auth.allowed(Action::ViewTasks, principal, Some(&user))
    };
    let (limit, offset) = page_options(&q);
    // Running, unreachable and completed tasks of registered and completed
    // frameworks, as Mesos's `/tasks` lists them
    // (src/master/readonly_handler.cpp, `ReadOnlyHandler::tasks`).
    let mut all: Vec<&Task> = m.agents.values().flat_map(|a| a.tasks.values()).collect();
    for f in m.frameworks.values().chain(m.completed_frameworks.iter()) {
        all.extend(f.completed_tasks.iter());
    }
    let keep = |t: &&Task| {
        q.get("framework_id")
            .is_none_or(|v| *v == t.framework_id.value)
            && q.get("task_id").is_none_or(|v| *v == t.task_id.value)
            && q.get("agent_id").is_none_or(|v| *v == t.agent_id.value)
            && visible(t)
    };
    // A task listed both by its agent and in its framework's history
    // (torn down while its agent was still reporting it) counts once.
    let mut seen = std::collections::HashSet::new();
    let mut list: Vec<&Task> = all
        .into_iter()
        .filter(keep)
        .filter(|t| seen.insert((&t.framework_id.value, &t.task_id.value)))
        .collect();
    sort_tasks(&mut list, q.get("order").is_some_and(|o| o == "asc"));
    let page: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(task_json)
        .collect();
    json_response(json!({ "tasks": page }))
}

/// Mesos's default page size of `/tasks` (src/master/constants.hpp).
const TASK_LIMIT: usize = 100;

/// `limit` and `offset` of `/tasks` as Mesos reads them
/// (src/master/readonly_handler.cpp, `ReadOnlyHandler::tasks`): each is
/// `numify<int>`-ed and a value that does not parse falls back to its
/// default (100, 0) rather than failing the request; a negative number,
/// cast to `size_t`, is no limit (`limit=-1`, which the Mesos CLI sends) or
/// an offset past every task.
fn page_options(q: &HashMap<String, String>) -> (usize, usize) {
    let number = |key: &str| q.get(key).and_then(|v| v.trim().parse::<i32>().ok());
    let limit = match number("limit") {
        Some(n) if n < 0 => usize::MAX,
        Some(n) => n as usize,
        None => TASK_LIMIT,
    };
    let offset = match number("offset") {
        Some(n) if n < 0 => usize::MAX,
        Some(n) => n as usize,
        None => 0,
    };
    (limit, offset)
}

/// Mesos's `TaskComparator` (src/master/readonly_handler.cpp): by the
/// timestamp of each task's first recorded status, descending unless
/// `order=asc`; a task without statuses sorts first ascending, last
/// descending. Ties keep the task id order, so pages are stable.
fn sort_tasks(list: &mut [&Task], ascending: bool) {
    list.sort_by(|a, b| a.task_id.value.cmp(&b.task_id.value));
    let time = |t: &Task| t.statuses.first().map(|s| s.timestamp.unwrap_or(0.0));
    list.sort_by(|a, b| {
        let order = match (time(a), time(b)) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.total_cmp(&y),
        };
        if ascending { order } else { order.reverse() }
    });
}

async fn slaves(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let m = s.lock();
    let mut ids: Vec<&String> = m.agents.keys().collect();
    ids.sort();
    let list: Vec<Value> = ids
        .into_iter()
        .filter(|id| q.get("slave_id").is_none_or(|v| v == *id))
        .map(|id| agent_json(&m, id))
        .collect();
    json_response(json!({ "slaves": list, "recovered_slaves": [] }))
}

async fn frameworks(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let m = s.lock();
    let list: Vec<Value> = m
        .frameworks
        .values()
        .filter(|f| q.get("framework_id").is_none_or(|v| *v == f.id))
        .map(|f| framework_json(&m, f, false))
        .collect();
    let completed: Vec<Value> = m
        .completed_frameworks
        .iter()
        .map(|f| framework_json(&m, f, true))
        .collect();
    let v = json!({
        "frameworks": list,
        "completed_frameworks": completed,
        "unregistered_frameworks": [],
    });
    json_response(filter_view(&s, &caller, v))
}

/// `/master/roles` as `ReadOnlyHandler::roles` writes it
/// (src/master/readonly_handler.cpp): per known role its weight, quota
/// (`guarantee`, `limit`, `consumed`), `allocated`, `offered`, `reserved`
/// (scalar quantities by name) and the ids of its frameworks.
async fn roles(State(s): State<Arc<Shared>>, Extension(caller): Extension<Caller>) -> Response {
    let m = s.lock();
    let principal = caller.principal.as_ref().and_then(|p| p.value.as_deref());
    let roles: Vec<Value> = crate::operator_api::get_roles(&m)
        .into_iter()
        .filter(|r| {
            s.config
                .auth
                .allowed(Action::ViewRoles, principal, Some(&r.name))
        })
        .map(|r| role_json(&m, r))
        .collect();
    json_response(json!({ "roles": roles }))
}

/// Scalar quantities by name, as Mesos's `ResourceQuantities` JSON.
fn quantities(r: &Resources) -> Value {
    let mut map = serde_json::Map::new();
    for x in r.iter().filter(|x| x.r#type == Type::Scalar as i32) {
        map.entry(x.name.clone())
            .or_insert_with(|| json!(r.scalar(&x.name).unwrap_or(0.0)));
    }
    Value::Object(map)
}

fn role_json(m: &Master, r: tepui_proto::v1::Role) -> Value {
    let name = r.name.clone();
    let of_role = |res: &[tepui_proto::v1::Resource]| -> Resources {
        Resources::from(
            res.iter()
                .filter(|x| x.allocation_role() == Some(name.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    // RoleResourceBreakdown (src/master/master.cpp): what tasks and
    // executors hold, what is offered, what is reserved to the role.
    let (mut allocated, mut offered, mut reserved) =
        (Resources::new(), Resources::new(), Resources::new());
    for a in m.agents.values() {
        for t in a.tasks.values().filter(|t| !is_terminal(t.state)) {
            allocated += of_role(&t.resources);
        }
        for e in a.executors.values() {
            allocated += of_role(&e.resources);
        }
        if let Some(mine) = a.total.reservations().remove(&name) {
            reserved += mine;
        }
    }
    for o in m.offers.values() {
        offered += of_role(&o.resources().into_vec());
    }
    // Consumed quota: reservations plus unreserved allocation
    // (`RoleResourceBreakdown::consumedQuota`).
    let mut consumed = reserved.clone();
    consumed += allocated.unreserved();
    let quota = m.allocator.quotas().get(&name);
    let named = |q: Option<&crate::allocator::quantities::Quantities>| -> Value {
        Value::Object(
            q.map(|q| q.to_map())
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect(),
        )
    };
    let mut total = allocated.clone();
    total += offered.clone();
    json!({
        "name": name,
        "weight": r.weight,
        "quota": {
            "role": name,
            "guarantee": named(quota.map(|q| &q.guarantee)),
            "limit": named(quota.and_then(|q| q.limit.as_ref())),
            "consumed": quantities(&consumed),
        },
        "resources": quantities(&total),
        "allocated": quantities(&allocated),
        "offered": quantities(&offered),
        "reserved": quantities(&reserved),
        "frameworks": r.frameworks.iter().map(|f| f.value.clone()).collect::<Vec<_>>(),
        "share": m.allocator.role_share(&r.name),
    })
}

async fn redirect(State(s): State<Arc<Shared>>) -> Response {
    let location = format!(
        "//{}:{}",
        s.lock().info.hostname.clone().unwrap_or_default(),
        s.config.listen.port()
    );
    (
        axum::http::StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

async fn metrics_snapshot(State(s): State<Arc<Shared>>) -> Response {
    let m = s.lock();
    let map: serde_json::Map<String, Value> = crate::metrics::snapshot(&m)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    json_response(Value::Object(map))
}

async fn prometheus(State(s): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::prometheus(&s.lock()),
    )
        .into_response()
}

/// `POST /master/teardown` with the form body `frameworkId=<id>`: Mesos's
/// v0 TEARDOWN (`Master::Http::teardown`), the same removal as the v1 call.
async fn teardown(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let answer = (|| {
        let auth = &s.config.auth;
        let principal = caller.authenticated(auth.authenticate_http_readwrite)?;
        let body = String::from_utf8_lossy(&body);
        let id = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("frameworkId="))
            .map(form_decode)
            .ok_or_else(|| {
                crate::error::ApiError::bad_request("Missing 'frameworkId' query parameter")
            })?;
        let mut master = s.lock();
        let Some(fw) = master.frameworks.get(&id) else {
            return Err(crate::error::ApiError::bad_request(format!(
                "No framework found with specified ID: {id}"
            )));
        };
        auth.authorize(
            Action::TeardownFrameworks,
            principal,
            fw.info.principal.as_deref(),
        )?;
        master.remove_framework(&id);
        Ok(())
    })();
    match answer {
        Ok(()) => {
            s.allocate_now.notify_one();
            axum::http::StatusCode::OK.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `application/x-www-form-urlencoded` value: `+` and `%XX`.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_values_are_decoded() {
        assert_eq!(super::form_decode("a-b_0001"), "a-b_0001");
        assert_eq!(super::form_decode("a%2Db+c"), "a-b c");
        assert_eq!(super::form_decode("50%"), "50%");
        assert_eq!(super::form_decode("%zz"), "%zz");
    }
}
