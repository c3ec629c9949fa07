//! `/api/v1`: the master operator API (v1), JSON or protobuf.

#![allow(deprecated)] // the response messages still carry fields Mesos deprecated.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use tepui_proto::content::{self, RequestFormat};
use tepui_proto::resources::Resources;
use tepui_proto::v1::master::call::Type as CallType;
use tepui_proto::v1::master::response::{self, Type as RespType};
use tepui_proto::v1::master::{Call, Event, Response as OpResponse, event};
use tepui_proto::v1::offer::Operation;
use tepui_proto::v1::offer::operation::Type as OpType;
use tepui_proto::v1::{self as v1, quota};

use crate::allocator::Quantities;
use crate::auth::Caller;
use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::http::{CloseGuard, body_response, header_str, header_value, status, stream_response};
use crate::registry::StoredQuota;
use crate::state::{Master, Shared, VERSION, tasks::is_terminal};
use tepui_proto::auth::Action;

/// The glog verbosity GET_LOGGING_LEVEL answers and SET_LOGGING_LEVEL
/// records.
static LOGGING_LEVEL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&shared, &caller, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn serve(
    shared: &Arc<Shared>,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let format = RequestFormat::from_headers(header_str(headers, content::CONTENT_TYPE), None)?;
    let call: Call = content::decode_message(format.message_format(), body)?;
    let kind = call
        .r#type
        .and_then(|t| CallType::try_from(t).ok())
        .filter(|t| *t != CallType::Unknown)
        .ok_or_else(|| ApiError::bad_request("expecting 'type' to be present"))?;
    let streaming = kind == CallType::Subscribe;
    let auth = &shared.config.auth;
    let readonly = streaming || kind.as_str_name().starts_with("GET_");
    let principal = caller.authenticated(if readonly {
        auth.authenticate_http_readonly
    } else {
        auth.authenticate_http_readwrite
    })?;
    let out = content::negotiate(
        header_str(headers, content::ACCEPT),
        header_str(headers, content::MESSAGE_ACCEPT),
        streaming,
    )?;
    if streaming {
        return Ok(subscribe(shared, out, principal.map(str::to_string)));
    }
    let missing = |what: &str| ApiError::bad_request(format!("expecting '{what}' to be present"));
    let mut master = shared.lock();
    let reply = |t: RespType, f: &dyn Fn(&mut OpResponse)| {
        let mut r = OpResponse {
            r#type: Some(t as i32),
            ..Default::default()
        };
        f(&mut r);
        Some(r)
    };
    let answer: Option<OpResponse> = match kind {
        CallType::GetHealth => reply(RespType::GetHealth, &|r| {
            r.get_health = Some(response::GetHealth { healthy: true });
        }),
        CallType::GetVersion => reply(RespType::GetVersion, &|r| {
            r.get_version = Some(response::GetVersion {
                version_info: v1::VersionInfo {
                    version: VERSION.to_string(),
                    ..Default::default()
                },
            });
        }),
        CallType::GetFlags => {
            let flags: Vec<v1::Flag> = master
                .config
                .flags
                .iter()
                .map(|(n, v)| v1::Flag {
                    name: n.clone(),
                    value: Some(v.clone()),
                })
                .collect();
            reply(RespType::GetFlags, &|r| {
                r.get_flags = Some(response::GetFlags {
                    flags: flags.clone(),
                });
            })
        }
        CallType::GetMetrics => {
            let metrics: Vec<v1::Metric> = crate::metrics::snapshot(&master)
                .into_iter()
                .map(|(name, value)| v1::Metric {
                    name,
                    value: Some(value),
                })
                .collect();
            reply(RespType::GetMetrics, &|r| {
                r.get_metrics = Some(response::GetMetrics {
                    metrics: metrics.clone(),
                });
            })
        }
        CallType::GetState => {
            let mut state = get_state(&master);
            let viewer = Viewer::new(auth, principal, &master);
            if let Some(f) = &mut state.get_frameworks {
                viewer.frameworks(f);
            }
            if let Some(t) = &mut state.get_tasks {
                viewer.tasks(t);
            }
            if let Some(e) = &mut state.get_executors {
                viewer.executors(e);
            }
            reply(RespType::GetState, &|r| r.get_state = Some(state.clone()))
        }
        CallType::GetAgents => {
            let a = get_agents(&master);
            reply(RespType::GetAgents, &|r| r.get_agents = Some(a.clone()))
        }
        CallType::GetFrameworks => {
            let mut f = get_frameworks(&master);
            Viewer::new(auth, principal, &master).frameworks(&mut f);
            reply(RespType::GetFrameworks, &|r| {
                r.get_frameworks = Some(f.clone())
            })
        }
        CallType::GetExecutors => {
            let mut e = get_executors(&master);
            Viewer::new(auth, principal, &master).executors(&mut e);
            reply(RespType::GetExecutors, &|r| {
                r.get_executors = Some(e.clone())
            })
        }
        CallType::GetTasks => {
            let mut t = get_tasks(&master);
            Viewer::new(auth, principal, &master).tasks(&mut t);
            reply(RespType::GetTasks, &|r| r.get_tasks = Some(t.clone()))
        }
        CallType::GetRoles => {
            let mut roles = get_roles(&master);
            roles.retain(|r| auth.allowed(Action::ViewRoles, principal, Some(&r.name)));
            reply(RespType::GetRoles, &|r| {
                r.get_roles = Some(response::GetRoles {
                    roles: roles.clone(),
                });
            })
        }
        CallType::GetWeights => {
            let weight_infos: Vec<v1::WeightInfo> = master
                .allocator
                .weights()
                .iter()
                .map(|(role, w)| v1::WeightInfo {
                    weight: *w,
                    role: Some(role.clone()),
                })
                .collect();
            reply(RespType::GetWeights, &|r| {
                r.get_weights = Some(response::GetWeights {
                    weight_infos: weight_infos.clone(),
                });
            })
        }
        CallType::GetMaster => {
            let info = master.info.clone();
            let start = master.start_time;
            reply(RespType::GetMaster, &|r| {
                r.get_master = Some(response::GetMaster {
                    master_info: Some(info.clone()),
                    start_time: Some(start),
                    elected_time: Some(start),
                });
            })
        }
        CallType::GetQuota => {
            let configs: Vec<quota::QuotaConfig> = master
                .registry
                .state
                .quotas
                .iter()
                .map(|(role, q)| quota::QuotaConfig {
                    role: role.clone(),
                    guarantees: q
                        .guarantees
                        .iter()
                        .map(|(n, v)| (n.clone(), v1::value::Scalar { value: *v }))
                        .collect(),
                    limits: q
                        .limits
                        .iter()
                        .map(|(n, v)| (n.clone(), v1::value::Scalar { value: *v }))
                        .collect(),
                })
                .collect();
            reply(RespType::GetQuota, &|r| {
                r.get_quota = Some(response::GetQuota {
                    status: quota::QuotaStatus {
                        configs: configs.clone(),
                        ..Default::default()
                    },
                });
            })
        }
        CallType::UpdateWeights => {
            let u = call
                .update_weights
                .ok_or_else(|| missing("update_weights"))?;
            for w in &u.weight_infos {
                let role = w.role.clone().unwrap_or_default();
                auth.authorize(Action::UpdateWeights, principal, Some(&role))?;
                tepui_proto::resources::role::validate(&role)
                    .map_err(|e| ApiError::bad_request(format!("invalid role '{role}': {e}")))?;
                if !(w.weight.is_finite() && w.weight > 0.0) {
                    return Err(ApiError::bad_request(format!(
                        "weight of '{role}' must be positive"
                    )));
                }
            }
            for w in u.weight_infos {
                let role = w.role.unwrap_or_default();
                master.allocator.set_weight(&role, w.weight);
                master.registry.state.weights.insert(role, w.weight);
            }
            master.registry.save();
            master.registry.flush();
            None
        }
        CallType::UpdateQuota => {
            let u = call.update_quota.ok_or_else(|| missing("update_quota"))?;
            for c in &u.quota_configs {
                auth.authorize(Action::UpdateQuotas, principal, Some(&c.role))?;
            }
            update_quota(&mut master, u)?;
            None
        }
        CallType::ReserveResources | CallType::UnreserveResources => {
            let (agent_id, op) = if kind == CallType::ReserveResources {
                let r = call
                    .reserve_resources
                    .ok_or_else(|| missing("reserve_resources"))?;
                (
                    r.agent_id.value,
                    Operation {
                        r#type: Some(OpType::Reserve as i32),
                        reserve: Some(v1::offer::operation::Reserve {
                            source: r.source,
                            resources: r.resources,
                        }),
                        ..Default::default()
                    },
                )
            } else {
                let r = call
                    .unreserve_resources
                    .ok_or_else(|| missing("unreserve_resources"))?;
                (
                    r.agent_id.value,
                    Operation {
                        r#type: Some(OpType::Unreserve as i32),
                        unreserve: Some(v1::offer::operation::Unreserve {
                            resources: r.resources,
                        }),
                        ..Default::default()
                    },
                )
            };
            let (action, resources) = match (&op.reserve, &op.unreserve) {
                (Some(r), _) => (Action::ReserveResources, &r.resources),
                (_, Some(u)) => (Action::UnreserveResources, &u.resources),
                _ => return Err(ApiError::bad_request("no resources")),
            };
            for role in crate::scheduler_api::reservation_roles(resources) {
                auth.authorize(action, principal, Some(&role))?;
            }
            master.operator_operation(&agent_id, op)?;
            None
        }
        CallType::CreateVolumes
        | CallType::DestroyVolumes
        | CallType::GrowVolume
        | CallType::ShrinkVolume => {
            let (agent_id, op, action) = volume_operation(call)?;
            // Mesos's `Master::authorizeCreateVolume` & co.: the object is
            // each volume's role.
            let resources = volume_resources(&op);
            for role in crate::scheduler_api::reservation_roles(&resources) {
                auth.authorize(action, principal, Some(&role))?;
            }
            master.operator_operation(&agent_id, op)?;
            None
        }
        CallType::DrainAgent => {
            let d = call.drain_agent.ok_or_else(|| missing("drain_agent"))?;
            master.set_agent_mode(&d.agent_id.value, None, Some(true))?;
            if d.mark_gone == Some(true)
                && let Some(agent) = master.agents.get_mut(&d.agent_id.value)
            {
                agent.gone_when_drained = true;
            }
            master.check_drained(&d.agent_id.value);
            None
        }
        CallType::DeactivateAgent => {
            let d = call
                .deactivate_agent
                .ok_or_else(|| missing("deactivate_agent"))?;
            master.set_agent_mode(&d.agent_id.value, Some(true), None)?;
            None
        }
        CallType::ReactivateAgent => {
            let d = call
                .reactivate_agent
                .ok_or_else(|| missing("reactivate_agent"))?;
            master.set_agent_mode(&d.agent_id.value, Some(false), Some(false))?;
            None
        }
        CallType::MarkAgentGone => {
            let d = call
                .mark_agent_gone
                .ok_or_else(|| missing("mark_agent_gone"))?;
            master.mark_gone(&d.agent_id.value)?;
            None
        }
        CallType::Teardown => {
            let t = call.teardown.ok_or_else(|| missing("teardown"))?;
            let Some(fw) = master.frameworks.get(&t.framework_id.value) else {
                return Err(ApiError::bad_request(format!(
                    "unknown framework {}",
                    t.framework_id.value
                )));
            };
            auth.authorize(
                Action::TeardownFrameworks,
                principal,
                fw.info.principal.as_deref(),
            )?;
            master.remove_framework(&t.framework_id.value);
            None
        }
        // tepui's master tracks no operation by id (RESERVE, CREATE, ...
        // are applied on ACCEPT without feedback), so the list Mesos's
        // `Master::Http::getOperations` would give is empty.
        CallType::GetOperations => reply(RespType::GetOperations, &|r| {
            r.get_operations = Some(response::GetOperations::default());
        }),
        // src/master/http.cpp, `Master::Http::getMaintenanceSchedule` /
        // `getMaintenanceStatus`: what the principal may see of each
        // (the `get_maintenance_schedules` / `get_maintenance_statuses`
        // ACLs, whose objects are given implicitly).
        CallType::GetMaintenanceSchedule => {
            let visible = auth.allowed(Action::GetMaintenanceSchedules, principal, None);
            let schedule = master.maintenance_schedule(|_| visible);
            reply(RespType::GetMaintenanceSchedule, &|r| {
                r.get_maintenance_schedule = Some(response::GetMaintenanceSchedule {
                    schedule: schedule.clone(),
                });
            })
        }
        CallType::GetMaintenanceStatus => {
            let visible = auth.allowed(Action::GetMaintenanceStatuses, principal, None);
            let status = master.maintenance_status(|_| visible);
            reply(RespType::GetMaintenanceStatus, &|r| {
                r.get_maintenance_status = Some(response::GetMaintenanceStatus {
                    status: status.clone(),
                });
            })
        }
        // `Master::Http::updateMaintenanceSchedule`, `startMaintenance`,
        // `stopMaintenance`: validated first (400), then authorized for
        // every machine (403), then applied and written to the registry.
        CallType::UpdateMaintenanceSchedule => {
            let u = call
                .update_maintenance_schedule
                .ok_or_else(|| missing("update_maintenance_schedule"))?;
            master.update_maintenance_schedule(u.schedule, |_| {
                auth.authorize(Action::UpdateMaintenanceSchedules, principal, None)
            })?;
            None
        }
        CallType::StartMaintenance => {
            let s = call
                .start_maintenance
                .ok_or_else(|| missing("start_maintenance"))?;
            master.start_maintenance(&s.machines, |_| {
                auth.authorize(Action::StartMaintenances, principal, None)
            })?;
            None
        }
        CallType::StopMaintenance => {
            let s = call
                .stop_maintenance
                .ok_or_else(|| missing("stop_maintenance"))?;
            master.stop_maintenance(&s.machines, |_| {
                auth.authorize(Action::StopMaintenances, principal, None)
            })?;
            None
        }
        CallType::GetLoggingLevel => reply(RespType::GetLoggingLevel, &|r| {
            r.get_logging_level = Some(response::GetLoggingLevel {
                level: LOGGING_LEVEL.load(std::sync::atomic::Ordering::Relaxed),
            });
        }),
        CallType::SetLoggingLevel => {
            let c = call
                .set_logging_level
                .as_ref()
                .ok_or_else(|| missing("set_logging_level"))?;
            LOGGING_LEVEL.store(c.level, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                level = c.level,
                "SET_LOGGING_LEVEL recorded; tepui's log filter is fixed at startup, so logging does not change"
            );
            None
        }
        // The master's own files: Mesos attaches only `/master/log`, and
        // only with --log_dir (src/master/master.cpp, `Master::initialize`);
        // tepui's master logs to stderr, so no path is attached
        // (src/files/files.cpp, `FilesProcess::browse`/`read`: 404).
        CallType::ListFiles | CallType::ReadFile => {
            let path = call
                .list_files
                .as_ref()
                .map(|c| c.path.clone())
                .or_else(|| call.read_file.as_ref().map(|c| c.path.clone()))
                .ok_or_else(|| missing("path"))?;
            return Err(ApiError::new(404, format!("Path '{path}' not found")));
        }
        other => {
            return Err(ApiError::new(
                501,
                format!("{} is not implemented", other.as_str_name()),
            ));
        }
    };
    drop(master);
    shared.allocate_now.notify_one();
    Ok(match answer {
        Some(r) => body_response(
            200,
            out.content_type,
            content::encode_message(out.message_format, &r),
        ),
        None => status(200),
    })
}

/// CREATE_VOLUMES, DESTROY_VOLUMES, GROW_VOLUME and SHRINK_VOLUME as the
/// offer operation they apply (Mesos's `Master::Http::createVolumes` & co.
/// build the same `Offer::Operation`), with the ACL action that governs it.
fn volume_operation(call: v1::master::Call) -> Result<(String, Operation, Action), ApiError> {
    let missing = |f: &str| ApiError::bad_request(format!("Expecting '{f}' to be present"));
    let agent = |id: Option<v1::AgentId>| {
        id.map(|a| a.value)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("agent_id"))
    };
    let kind = call.r#type();
    let op = |t: OpType| Operation {
        r#type: Some(t as i32),
        ..Default::default()
    };
    Ok(match kind {
        CallType::CreateVolumes => {
            let c = call
                .create_volumes
                .ok_or_else(|| missing("create_volumes"))?;
            let mut o = op(OpType::Create);
            o.create = Some(v1::offer::operation::Create { volumes: c.volumes });
            (agent(Some(c.agent_id))?, o, Action::CreateVolumes)
        }
        CallType::DestroyVolumes => {
            let d = call
                .destroy_volumes
                .ok_or_else(|| missing("destroy_volumes"))?;
            let mut o = op(OpType::Destroy);
            o.destroy = Some(v1::offer::operation::Destroy { volumes: d.volumes });
            (agent(Some(d.agent_id))?, o, Action::DestroyVolumes)
        }
        CallType::GrowVolume => {
            let g = call.grow_volume.ok_or_else(|| missing("grow_volume"))?;
            let mut o = op(OpType::GrowVolume);
            o.grow_volume = Some(v1::offer::operation::GrowVolume {
                volume: g.volume,
                addition: g.addition,
            });
            (agent(g.agent_id)?, o, Action::ResizeVolume)
        }
        _ => {
            let s = call.shrink_volume.ok_or_else(|| missing("shrink_volume"))?;
            let mut o = op(OpType::ShrinkVolume);
            o.shrink_volume = Some(v1::offer::operation::ShrinkVolume {
                volume: s.volume,
                subtract: s.subtract,
            });
            (agent(s.agent_id)?, o, Action::ResizeVolume)
        }
    })
}

fn volume_resources(op: &Operation) -> Vec<v1::Resource> {
    if let Some(c) = &op.create {
        return c.volumes.clone();
    }
    if let Some(d) = &op.destroy {
        return d.volumes.clone();
    }
    if let Some(g) = &op.grow_volume {
        return vec![g.volume.clone()];
    }
    op.shrink_volume
        .as_ref()
        .map(|s| vec![s.volume.clone()])
        .unwrap_or_default()
}

/// Mesos's `quota::validate`: a quota value is a finite, non-negative
/// number (`validateInputScalarValue`) no larger than 1 exabyte (in MB) for
/// `mem` and `disk` and 1 trillion for anything else.
fn check_quota_value(role: &str, field: &str, name: &str, value: f64) -> Result<(), ApiError> {
    const EXABYTE_IN_MB: f64 = (1u64 << 40) as f64;
    const OTHER_LIMIT: f64 = 1e12;
    let max = if name == "mem" || name == "disk" {
        EXABYTE_IN_MB
    } else {
        OTHER_LIMIT
    };
    if !value.is_finite() || value < 0.0 || value > max {
        return Err(ApiError::bad_request(format!(
            "Invalid 'QuotaConfig.{field}' of role '{role}': {{'{name}': {value}}} must be \
             a finite number between 0 and {max}"
        )));
    }
    Ok(())
}

fn update_quota(master: &mut Master, u: v1::master::call::UpdateQuota) -> Result<(), ApiError> {
    for c in &u.quota_configs {
        tepui_proto::resources::role::validate(&c.role)
            .map_err(|e| ApiError::bad_request(format!("invalid role '{}': {e}", c.role)))?;
        if c.role == "*" {
            return Err(ApiError::bad_request(
                "Invalid 'QuotaConfig.role': setting quota for the default '*' role is not supported",
            ));
        }
        for (field, values) in [("guarantees", &c.guarantees), ("limits", &c.limits)] {
            for (name, v) in values {
                check_quota_value(&c.role, field, name, v.value)?;
            }
        }
        for (name, g) in &c.guarantees {
            if let Some(l) = c.limits.get(name)
                && l.value < g.value
            {
                return Err(ApiError::bad_request(format!(
                    "role '{}': the '{name}' guarantee exceeds its limit",
                    c.role
                )));
            }
        }
    }
    for c in u.quota_configs {
        let stored = StoredQuota {
            guarantees: c
                .guarantees
                .iter()
                .map(|(n, s)| (n.clone(), s.value))
                .collect(),
            limits: c.limits.iter().map(|(n, s)| (n.clone(), s.value)).collect(),
        };
        if stored.guarantees.is_empty() && stored.limits.is_empty() {
            master.allocator.set_quota(&c.role, None);
            master.registry.state.quotas.remove(&c.role);
        } else {
            master.allocator.set_quota(&c.role, Some(stored.to_quota()));
            master.registry.state.quotas.insert(c.role.clone(), stored);
        }
        master.enforce_quota(&c.role);
    }
    master.registry.save();
    master.registry.flush();
    Ok(())
}

impl Master {
    /// Operator RESERVE/UNRESERVE on an agent's free resources.
    pub fn operator_operation(&mut self, agent_id: &str, op: Operation) -> Result<(), ApiError> {
        if !self.agents.contains_key(agent_id) {
            return Err(ApiError::bad_request(format!("unknown agent {agent_id}")));
        }
        let kind = op
            .r#type
            .and_then(|t| OpType::try_from(t).ok())
            .ok_or_else(|| ApiError::bad_request("operation type missing"))?;
        let (from, to) =
            crate::operations::convert(&op, kind, &[], None).map_err(ApiError::bad_request)?;
        let total = self
            .agents
            .get(agent_id)
            .map(|a| a.total.clone())
            .unwrap_or_default();
        // What tasks and executors hold is not free: Mesos's `_operation`
        // checks the agent's available resources, so a volume in use
        // cannot be destroyed (`validateDestroy`'s in-use check).
        let mut free = total.clone();
        if let Some(a) = self.agents.get(agent_id) {
            let mut used: Resources = a
                .tasks
                .values()
                .filter(|t| !is_terminal(t.state))
                .flat_map(|t| t.resources.iter().cloned())
                .collect();
            used += a
                .executors
                .values()
                .flat_map(|e| e.resources.iter().cloned())
                .collect::<Resources>();
            used.unallocate();
            free -= &used;
        }
        if !free.contains(&from) {
            return Err(ApiError::new(
                409,
                format!(
                    "agent {agent_id} does not have {}",
                    crate::validation::display(&from)
                ),
            ));
        }
        // Offers on the agent may hold what we convert: take them back.
        self.rescind_agent_offers(agent_id);
        let mut new_total = total;
        new_total -= &from;
        new_total += to;
        self.allocator
            .update_agent_total(agent_id, new_total.clone());
        if let Some(a) = self.agents.get_mut(agent_id) {
            a.total = new_total;
        }
        self.send_agent(
            agent_id,
            tepui_proto::link::MasterEvent {
                r#type: Some(tepui_proto::link::master_event::Type::ApplyOperation as i32),
                apply_operation: Some(tepui_proto::link::master_event::ApplyOperation {
                    framework_id: v1::FrameworkId::default(),
                    operation: op,
                    operation_id: None,
                }),
                ..Default::default()
            },
        );
        Ok(())
    }

    /// A new guarantee may need resources held in outstanding offers to
    /// other roles: rescind those so the next cycle can honour it.
    pub fn enforce_quota(&mut self, role: &str) {
        let Some(q) = self.allocator.quotas().get(role).cloned() else {
            return;
        };
        let owed = q
            .guarantee
            .saturating_minus(&self.allocator.role_allocated(role));
        if owed.is_empty() {
            return;
        }
        let mut freed = Quantities::new();
        let ids: Vec<(String, String)> = self
            .offers
            .iter()
            .map(|(id, o)| {
                (
                    id.clone(),
                    o.offer
                        .allocation_info
                        .as_ref()
                        .and_then(|a| a.role.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        for (id, offer_role) in ids {
            if tepui_proto::resources::role::is_in_subtree(&offer_role, role) {
                continue;
            }
            if owed.le(&freed) {
                break;
            }
            if let Some(o) = self.offers.get(&id) {
                freed.add(&Quantities::of(&o.resources()));
            }
            self.rescind_offer(&id);
        }
    }
}

fn subscribe(
    shared: &Arc<Shared>,
    out: content::ResponseFormat,
    principal: Option<String>,
) -> Response {
    let (tx, rx) = crate::queue::channel(Some(shared.config.subscriber_queue));
    let mut master = shared.lock();
    let mut state = get_state(&master);
    {
        let viewer = Viewer::new(&shared.config.auth, principal.as_deref(), &master);
        if let Some(f) = &mut state.get_frameworks {
            viewer.frameworks(f);
        }
        if let Some(t) = &mut state.get_tasks {
            viewer.tasks(t);
        }
        if let Some(e) = &mut state.get_executors {
            viewer.executors(e);
        }
    }
    let _ = tx.send(Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            get_state: Some(state),
            heartbeat_interval_seconds: Some(master.config.scheduler_heartbeat.as_secs_f64()),
        }),
        ..Default::default()
    });
    master
        .operator_subscribers
        .push(crate::state::OperatorSubscriber { tx, principal });
    drop(master);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", header_value(out.content_type));
    if let Some(m) = out.message_content_type {
        headers.insert(content::MESSAGE_CONTENT_TYPE, header_value(m));
    }
    let format = out.message_format;
    stream_response(
        rx,
        move |e: &Event, buf| content::encode_record(format, e, buf),
        Some((
            shared.config.scheduler_heartbeat,
            Event {
                r#type: Some(event::Type::Heartbeat as i32),
                ..Default::default()
            },
        )),
        CloseGuard::new(|| {}),
        headers,
    )
}

pub fn get_agents(m: &Master) -> response::GetAgents {
    let mut ids: Vec<&String> = m.agents.keys().collect();
    ids.sort();
    response::GetAgents {
        agents: ids.into_iter().map(|id| m.agent_snapshot(id)).collect(),
        recovered_agents: m
            .recovering_agents
            .keys()
            .filter_map(|id| m.registry.state.admitted.get(id))
            .filter_map(|a| tepui_proto::json::from_value(&a.info).ok())
            .collect(),
    }
}

pub fn get_frameworks(m: &Master) -> response::GetFrameworks {
    let mut ids: Vec<&String> = m.frameworks.keys().collect();
    ids.sort();
    response::GetFrameworks {
        frameworks: ids.into_iter().map(|id| m.framework_snapshot(id)).collect(),
        completed_frameworks: m
            .completed_frameworks
            .iter()
            // src/master/http.cpp, `model(const Framework&)`: completed
            // frameworks carry their times too.
            .map(|f| response::get_frameworks::Framework {
                framework_info: f.info.clone(),
                registered_time: Some(crate::state::frameworks::time_info(f.registered_time)),
                reregistered_time: f.reregistered_time.map(crate::state::frameworks::time_info),
                unregistered_time: f.unregistered_time.map(crate::state::frameworks::time_info),
                ..Default::default()
            })
            .collect(),
        recovered_frameworks: Vec::new(),
    }
}

pub fn get_tasks(m: &Master) -> response::GetTasks {
    let mut tasks = Vec::new();
    let mut completed = Vec::new();
    for agent in m.agents.values() {
        for t in agent.tasks.values() {
            if is_terminal(t.state) {
                completed.push(t.clone());
            } else {
                tasks.push(t.clone());
            }
        }
    }
    // Torn-down frameworks' tasks too, as Mesos's master lists them
    // (src/master/readonly_handler.cpp, jsonifyGetTasks).
    for f in m.frameworks.values().chain(m.completed_frameworks.iter()) {
        completed.extend(f.completed_tasks.iter().cloned());
    }
    response::GetTasks {
        tasks,
        completed_tasks: completed,
        ..Default::default()
    }
}

pub fn get_executors(m: &Master) -> response::GetExecutors {
    let mut executors = Vec::new();
    for agent in m.agents.values() {
        for e in agent.executors.values() {
            executors.push(response::get_executors::Executor {
                executor_info: e.clone(),
                agent_id: v1::AgentId {
                    value: agent.id.clone(),
                },
            });
        }
    }
    response::GetExecutors {
        executors,
        orphan_executors: Vec::new(),
    }
}

/// Whether an operator event may go to `principal`: events about a
/// framework or its tasks follow the same `view_frameworks` / `view_tasks`
/// rules as GET_STATE; agent events are not restricted.
pub fn visible_to(m: &Master, principal: Option<&str>, event: &Event) -> bool {
    let auth = &m.config.auth;
    let framework_user = |id: &str| {
        m.frameworks
            .get(id)
            .map(|f| f.info.user.clone())
            .or_else(|| {
                m.completed_frameworks
                    .iter()
                    .find(|f| f.id == id)
                    .map(|f| f.info.user.clone())
            })
            .unwrap_or_default()
    };
    let framework_ok =
        |id: &str| auth.allowed(Action::ViewFrameworks, principal, Some(&framework_user(id)));
    if let Some(added) = &event.task_added {
        let task = &added.task;
        let user = task
            .user
            .clone()
            .unwrap_or_else(|| framework_user(&task.framework_id.value));
        return framework_ok(&task.framework_id.value)
            && auth.allowed(Action::ViewTasks, principal, Some(&user));
    }
    if let Some(updated) = &event.task_updated {
        let fid = &updated.framework_id.value;
        let task_id = &updated.status.task_id.value;
        let user = m
            .frameworks
            .get(fid)
            .and_then(|f| f.tasks.get(task_id))
            .and_then(|agent| m.agents.get(agent))
            .and_then(|a| a.tasks.get(&(fid.clone(), task_id.clone())))
            .and_then(|t| t.user.clone())
            .unwrap_or_else(|| framework_user(fid));
        return framework_ok(fid) && auth.allowed(Action::ViewTasks, principal, Some(&user));
    }
    let info = event
        .framework_added
        .as_ref()
        .map(|f| &f.framework.framework_info)
        .or(event
            .framework_updated
            .as_ref()
            .map(|f| &f.framework.framework_info))
        .or(event.framework_removed.as_ref().map(|f| &f.framework_info));
    if let Some(info) = info {
        return auth.allowed(Action::ViewFrameworks, principal, Some(&info.user));
    }
    true
}

/// Drops what the `view_frameworks`, `view_tasks` and `view_executors`
/// ACLs hide from a principal (objects: the user things run as).
pub struct Viewer<'a> {
    auth: &'a AuthConfig,
    principal: Option<&'a str>,
    users: std::collections::HashMap<String, String>,
}

impl<'a> Viewer<'a> {
    pub fn new(auth: &'a AuthConfig, principal: Option<&'a str>, m: &Master) -> Self {
        let users = m
            .frameworks
            .values()
            .map(|f| (f.id.clone(), f.info.user.clone()))
            .chain(
                m.completed_frameworks
                    .iter()
                    .map(|f| (f.id.clone(), f.info.user.clone())),
            )
            .collect();
        Viewer {
            auth,
            principal,
            users,
        }
    }

    fn allowed(&self, action: Action, user: &str) -> bool {
        self.auth.allowed(action, self.principal, Some(user))
    }

    fn framework_user(&self, id: &str) -> &str {
        self.users.get(id).map_or("", String::as_str)
    }

    pub fn frameworks(&self, f: &mut response::GetFrameworks) {
        let keep = |x: &response::get_frameworks::Framework| {
            self.allowed(Action::ViewFrameworks, &x.framework_info.user)
        };
        f.frameworks.retain(keep);
        f.completed_frameworks.retain(keep);
        f.recovered_frameworks
            .retain(|i| self.allowed(Action::ViewFrameworks, &i.user));
    }

    pub fn tasks(&self, t: &mut response::GetTasks) {
        let keep = |task: &v1::Task| {
            let user = task
                .user
                .as_deref()
                .unwrap_or_else(|| self.framework_user(&task.framework_id.value));
            self.allowed(
                Action::ViewFrameworks,
                self.framework_user(&task.framework_id.value),
            ) && self.allowed(Action::ViewTasks, user)
        };
        t.tasks.retain(keep);
        t.completed_tasks.retain(keep);
        t.unreachable_tasks.retain(keep);
        t.orphan_tasks.retain(keep);
        t.pending_tasks.retain(keep);
    }

    pub fn executors(&self, e: &mut response::GetExecutors) {
        let keep = |x: &response::get_executors::Executor| {
            let fid = x
                .executor_info
                .framework_id
                .as_ref()
                .map_or("", |f| f.value.as_str());
            let user = x
                .executor_info
                .command
                .as_ref()
                .and_then(|c| c.user.as_deref())
                .unwrap_or_else(|| self.framework_user(fid));
            self.allowed(Action::ViewFrameworks, self.framework_user(fid))
                && self.allowed(Action::ViewExecutors, user)
        };
        e.executors.retain(keep);
        e.orphan_executors.retain(keep);
    }
}

pub fn get_state(m: &Master) -> response::GetState {
    response::GetState {
        get_tasks: Some(get_tasks(m)),
        get_executors: Some(get_executors(m)),
        get_frameworks: Some(get_frameworks(m)),
        get_agents: Some(get_agents(m)),
    }
}

pub fn get_roles(m: &Master) -> Vec<v1::Role> {
    let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for f in m.frameworks.values() {
        names.extend(f.roles.iter().cloned());
    }
    names.extend(m.allocator.weights().keys().cloned());
    names.extend(m.allocator.quotas().keys().cloned());
    names
        .into_iter()
        .map(|name| {
            let frameworks = m
                .frameworks
                .values()
                .filter(|f| f.roles.contains(&name))
                .map(|f| v1::FrameworkId {
                    value: f.id.clone(),
                })
                .collect();
            let mut resources = Resources::new();
            for agent in m.agents.values() {
                for t in agent.tasks.values().filter(|t| !is_terminal(t.state)) {
                    for r in &t.resources {
                        if r.allocation_info.as_ref().and_then(|a| a.role.as_deref()) == Some(&name)
                        {
                            resources += r.clone();
                        }
                    }
                }
            }
            v1::Role {
                weight: m.allocator.weights().get(&name).copied().unwrap_or(1.0),
                name,
                frameworks,
                resources: resources.into_vec(),
            }
        })
        .collect()
}
