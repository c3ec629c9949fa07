//! Framework lifecycle: SUBSCRIBE (new and failover), disconnection, the
//! failover timeout, UPDATE_FRAMEWORK and TEARDOWN.

#![allow(deprecated)] // FrameworkInfo.role: non-MULTI_ROLE frameworks still use it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use tepui_proto::link::{MasterEvent, master_event};
use tepui_proto::resources::Resources;
use tepui_proto::v1::framework_info::capability::Type as Capability;
use tepui_proto::v1::scheduler::{Event, event};
use tepui_proto::v1::{FrameworkId, FrameworkInfo, master as operator};

use super::{Framework, Master, SchedulerConn, now_secs};
use crate::error::ApiError;

/// The most completed frameworks kept for the state endpoints.
const MAX_COMPLETED_FRAMEWORKS: usize = 50;

pub fn has_capability(info: &FrameworkInfo, capability: Capability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(capability as i32))
}

/// The roles a framework subscribes with: `roles` for MULTI_ROLE
/// frameworks, otherwise the legacy `role` (default `*`).
pub fn framework_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, Capability::MultiRole) {
        info.roles.clone()
    } else {
        vec![info.role.clone().unwrap_or_else(|| "*".to_string())]
    }
}

/// Longest failover timeout: what a Duration of int64 nanoseconds holds,
/// the bound Mesos's `Duration::create` checks.
const MAX_FAILOVER_TIMEOUT_SECS: f64 = i64::MAX as f64 / 1e9;

/// Mesos's `validateFailoverTimeout`: a value no Duration can hold (NaN,
/// infinite, beyond int64 nanoseconds) is refused. A negative one is a
/// valid Duration in Mesos and means "fail over at once", as here.
fn check_failover_timeout(timeout: Option<f64>) -> Result<(), ApiError> {
    match timeout {
        Some(t) if !t.is_finite() || t.abs() > MAX_FAILOVER_TIMEOUT_SECS => {
            Err(ApiError::bad_request(format!(
                "'framework_info.failover_timeout' ({t}) is invalid: it must be a finite \
                 number of seconds no larger than {MAX_FAILOVER_TIMEOUT_SECS:.0}"
            )))
        }
        _ => Ok(()),
    }
}

impl Master {
    /// What is wrong with a FrameworkInfo in a way Mesos refuses on the
    /// subscription stream (`Master::validateFramework`, src/master/master.cpp):
    /// roles and the `--roles` whitelist.
    fn framework_roles_refusal(&self, info: &FrameworkInfo) -> Result<Vec<String>, String> {
        let multi = has_capability(info, Capability::MultiRole);
        if multi && info.role.is_some() {
            return Err(
                "'FrameworkInfo.role' must not be set by a MULTI_ROLE framework; use 'roles'"
                    .into(),
            );
        }
        if !multi && !info.roles.is_empty() {
            return Err("'FrameworkInfo.roles' needs the MULTI_ROLE capability".into());
        }
        let roles = framework_roles(info);
        let mut seen = HashSet::new();
        for role in &roles {
            tepui_proto::resources::role::validate(role)
                .map_err(|e| format!("invalid role '{role}': {e}"))?;
            if !seen.insert(role) {
                return Err(format!("duplicate role '{role}'"));
            }
            if !self.config.roles.is_empty() && !self.config.roles.contains(role) {
                return Err(format!(
                    "Roles {{ {role} }} are not present in the master's --roles"
                ));
            }
        }
        Ok(roles)
    }

    /// SUBSCRIBE: registers a new framework or fails over an existing one.
    /// Returns the stream id and the receiving end of the event stream.
    pub fn subscribe(
        &mut self,
        mut info: FrameworkInfo,
        suppressed: Vec<String>,
    ) -> Result<Subscription, ApiError> {
        // The id becomes a directory on every agent (Mesos:
        // `validateFrameworkId`, an empty id meaning "assign me one"): a
        // plain 400, before anything else.
        if let Some(id) = info.id.as_ref().filter(|id| !id.value.is_empty()) {
            tepui_proto::ids::check("framework_info.id", &id.value)
                .map_err(ApiError::bad_request)?;
        }
        check_failover_timeout(info.failover_timeout)?;
        let roles = match self.framework_roles_refusal(&info) {
            Ok(roles) => roles,
            Err(reason) => return Ok(Subscription::Refused(reason)),
        };
        for role in &suppressed {
            if !roles.contains(role) {
                return Ok(Subscription::Refused(format!(
                    "suppressed role '{role}' is not one of the framework's roles"
                )));
            }
        }
        let id = match info.id.as_ref().map(|id| id.value.clone()) {
            Some(id) if self.removed_frameworks.contains(&id) => {
                // Torn down, unregistered or past its failover timeout.
                return Ok(Subscription::Refused("Framework has been removed".into()));
            }
            Some(id) => id,
            None => self.new_framework_id(),
        };
        info.id = Some(FrameworkId { value: id.clone() });
        let stream_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = crate::queue::channel(Some(self.config.subscriber_queue));
        let now = now_secs();
        let failover = self.frameworks.contains_key(&id);
        if let Some(fw) = self.frameworks.get_mut(&id) {
            // Failover: the old stream gets an ERROR and is closed.
            if let Some(old) = fw.conn.take() {
                let _ = old.tx.send(error_event("Framework failed over"));
            }
            fw.info = info.clone();
            fw.roles = roles.clone();
            fw.conn = Some(SchedulerConn {
                stream_id: stream_id.clone(),
                tx,
            });
            fw.disconnected_at = None;
            fw.reregistered_time = Some(now);
            fw.recovered = false;
        } else {
            self.frameworks.insert(
                id.clone(),
                Framework {
                    id: id.clone(),
                    info: info.clone(),
                    roles: roles.clone(),
                    conn: Some(SchedulerConn {
                        stream_id: stream_id.clone(),
                        tx,
                    }),
                    disconnected_at: None,
                    offers: HashSet::new(),
                    tasks: HashMap::new(),
                    completed_tasks: VecDeque::new(),
                    registered_time: now,
                    reregistered_time: None,
                    unregistered_time: None,
                    recovered: false,
                },
            );
        }
        // Offers made to a previous incarnation are void.
        if failover {
            self.rescind_framework_offers(&id);
        }
        self.allocator.add_framework(&id, &roles, &suppressed);
        self.send_framework(
            &id,
            Event {
                r#type: Some(event::Type::Subscribed as i32),
                subscribed: Some(event::Subscribed {
                    framework_id: FrameworkId { value: id.clone() },
                    heartbeat_interval_seconds: Some(self.config.scheduler_heartbeat.as_secs_f64()),
                    master_info: Some(self.info.clone()),
                }),
                ..Default::default()
            },
        );
        let event_type = if failover {
            operator::event::Type::FrameworkUpdated
        } else {
            operator::event::Type::FrameworkAdded
        };
        if !self.operator_subscribers.is_empty() {
            let snapshot = self.framework_snapshot(&id);
            self.publish(framework_event(event_type, snapshot));
        }
        tracing::info!(framework = %id, failover, "framework subscribed");
        Ok(Subscription::Accepted {
            framework_id: id,
            stream_id,
            events: rx,
        })
    }

    /// The framework's stream closed. It keeps its tasks for its failover
    /// timeout.
    pub fn framework_disconnected(&mut self, framework_id: &str, stream_id: &str) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if fw.conn.as_ref().is_none_or(|c| c.stream_id != stream_id) {
            return;
        }
        fw.conn = None;
        fw.disconnected_at = Some(Instant::now());
        self.allocator.set_framework_active(framework_id, false);
        self.rescind_framework_offers(framework_id);
        tracing::info!(framework = %framework_id, "framework disconnected");
    }

    pub fn failover_timeout(&self, fw: &Framework) -> Duration {
        let secs = fw.info.failover_timeout.unwrap_or(0.0);
        let d = if secs.is_finite() && secs > 0.0 {
            Duration::from_secs_f64(secs.min(1e9))
        } else {
            Duration::ZERO
        };
        match self.config.max_framework_failover_timeout {
            Some(cap) => d.min(cap),
            None => d,
        }
    }

    /// Removes frameworks that stayed away past their failover timeout.
    pub fn expire_frameworks(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|fw| {
                fw.disconnected_at
                    .is_some_and(|at| now >= at + self.failover_timeout(fw))
            })
            .map(|fw| fw.id.clone())
            .collect();
        for id in expired {
            tracing::info!(framework = %id, "framework failover timeout expired");
            self.remove_framework(&id);
        }
    }

    /// TEARDOWN, or failover timeout: kill its tasks, drop its offers, forget it.
    pub fn remove_framework(&mut self, framework_id: &str) {
        self.rescind_framework_offers(framework_id);
        let Some(mut fw) = self.frameworks.remove(framework_id) else {
            return;
        };
        let mut agents: HashSet<String> = fw.tasks.values().cloned().collect();
        for agent in self.agents.values() {
            if agent.executors.keys().any(|(f, _)| f == framework_id) {
                agents.insert(agent.id.clone());
            }
        }
        for agent_id in agents {
            self.send_agent(
                &agent_id,
                MasterEvent {
                    r#type: Some(master_event::Type::ShutdownFramework as i32),
                    shutdown_framework: Some(master_event::ShutdownFramework {
                        framework_id: FrameworkId {
                            value: framework_id.to_string(),
                        },
                    }),
                    ..Default::default()
                },
            );
            // What the framework still holds on the agent goes back to the
            // allocator before the framework leaves it, as Mesos's
            // `Master::removeFramework` does through `removeTask` (live tasks)
            // and `removeExecutor` (every executor), each calling
            // `allocator->recoverResources`. The agent's later TASK_KILLED
            // and EXECUTOR_EXITED then find nothing and recover nothing twice.
            let mut held = Resources::default();
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                let keys: Vec<_> = agent
                    .tasks
                    .keys()
                    .filter(|(f, _)| f == framework_id)
                    .cloned()
                    .collect();
                for key in keys {
                    if let Some(mut task) = agent.tasks.remove(&key) {
                        if !super::tasks::is_terminal(task.state) {
                            // Terminal tasks returned theirs with the update.
                            held += Resources::from(task.resources.clone());
                            task.state = tepui_proto::v1::TaskState::TaskKilled as i32;
                            task.statuses.push(framework_removed(&task, framework_id));
                        }
                        fw.completed_tasks.push_back(task);
                    }
                }
                agent.executors.retain(|(f, _), executor| {
                    if f == framework_id {
                        held += Resources::from(executor.resources.clone());
                    }
                    f != framework_id
                });
            }
            if !held.is_empty() {
                tracing::info!(framework = %framework_id, agent = %agent_id, resources = %crate::validation::display(&held), "recovering the resources of a removed framework");
                self.allocator
                    .recover(framework_id, &agent_id, &held, None, Instant::now());
            }
        }
        if let Some(conn) = fw.conn.take() {
            let _ = conn.tx.send(error_event("Framework removed"));
        }
        // src/master/master.cpp, `Master::removeFramework`: the framework
        // is unregistered now, whether or not it was connected.
        fw.unregistered_time = Some(now_secs());
        fw.tasks.clear();
        self.allocator.remove_framework(framework_id);
        self.removed_frameworks.insert(framework_id.to_string());
        let info = fw.info.clone();
        self.completed_frameworks.push_back(fw);
        while self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::FrameworkRemoved as i32),
            framework_removed: Some(operator::event::FrameworkRemoved {
                framework_info: info,
            }),
            ..Default::default()
        });
        tracing::info!(framework = %framework_id, "framework removed");
    }

    /// UPDATE_FRAMEWORK: new roles, capabilities, name, ... without a new
    /// stream.
    pub fn update_framework(
        &mut self,
        framework_id: &str,
        mut info: FrameworkInfo,
        suppressed: Vec<String>,
    ) -> Result<(), ApiError> {
        if info.id.as_ref().map(|i| i.value.as_str()) != Some(framework_id) {
            return Err(ApiError::bad_request(
                "'framework_info.id' must be the framework's id",
            ));
        }
        check_failover_timeout(info.failover_timeout)?;
        // A plain 400 here: the call, not a subscription, is refused
        // (Mesos's `Master::updateFramework`).
        let roles = self
            .framework_roles_refusal(&info)
            .map_err(ApiError::bad_request)?;
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return Err(ApiError::forbidden("framework is not subscribed"));
        };
        if fw.info.principal != info.principal {
            return Err(ApiError::bad_request("'principal' cannot be changed"));
        }
        if fw.info.user != info.user || fw.info.checkpoint != info.checkpoint {
            // Mesos keeps the immutable fields as subscribed.
            info.user = fw.info.user.clone();
            info.checkpoint = fw.info.checkpoint;
        }
        let removed: Vec<String> = fw
            .roles
            .iter()
            .filter(|r| !roles.contains(r))
            .cloned()
            .collect();
        fw.info = info.clone();
        fw.roles = roles.clone();
        let agents: HashSet<String> = fw.tasks.values().cloned().collect();
        self.allocator
            .update_framework(framework_id, &roles, &suppressed);
        if !removed.is_empty() {
            self.rescind_framework_offers(framework_id);
        }
        for agent_id in agents {
            self.send_agent(
                &agent_id,
                MasterEvent {
                    r#type: Some(master_event::Type::UpdateFramework as i32),
                    update_framework: Some(master_event::UpdateFramework {
                        framework_info: info.clone(),
                    }),
                    ..Default::default()
                },
            );
        }
        let snapshot = self.framework_snapshot(framework_id);
        self.publish(framework_event(
            operator::event::Type::FrameworkUpdated,
            snapshot,
        ));
        Ok(())
    }

    pub fn is_partition_aware(&self, framework_id: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| has_capability(&f.info, Capability::PartitionAware))
    }

    /// A framework as GET_FRAMEWORKS and operator events describe it.
    pub fn framework_snapshot(
        &self,
        framework_id: &str,
    ) -> operator::response::get_frameworks::Framework {
        let fw = self.frameworks.get(framework_id);
        let info = fw.map(|f| f.info.clone()).unwrap_or_default();
        operator::response::get_frameworks::Framework {
            framework_info: info,
            active: fw.is_some_and(|f| f.conn.is_some()),
            connected: fw.is_some_and(|f| f.conn.is_some()),
            recovered: fw.is_some_and(|f| f.recovered),
            registered_time: fw.map(|f| time_info(f.registered_time)),
            reregistered_time: fw.and_then(|f| f.reregistered_time.map(time_info)),
            unregistered_time: fw.and_then(|f| f.unregistered_time.map(time_info)),
            offers: fw
                .map(|f| {
                    f.offers
                        .iter()
                        .filter_map(|o| self.offers.get(o).map(|s| s.offer.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }
}

pub fn time_info(secs: f64) -> tepui_proto::v1::TimeInfo {
    tepui_proto::v1::TimeInfo {
        nanoseconds: (secs * 1e9) as i64,
    }
}

/// The outcome of a SUBSCRIBE that was well-formed.
pub enum Subscription {
    Accepted {
        framework_id: String,
        stream_id: String,
        events: crate::queue::EventRx<Event>,
    },
    /// Refused as Mesos's `Master::subscribe` does (`refuseSubscription`):
    /// the stream opens (200), carries one ERROR event and closes.
    Refused(String),
}

pub fn error_event(message: &str) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..Default::default()
    }
}

fn framework_event(
    kind: operator::event::Type,
    framework: operator::response::get_frameworks::Framework,
) -> operator::Event {
    let mut e = operator::Event {
        r#type: Some(kind as i32),
        ..Default::default()
    };
    match kind {
        operator::event::Type::FrameworkAdded => {
            e.framework_added = Some(operator::event::FrameworkAdded { framework });
        }
        _ => e.framework_updated = Some(operator::event::FrameworkUpdated { framework }),
    }
    e
}

/// The status Mesos's master records for a live task of a removed framework
/// (src/master/master.cpp, `Master::removeFramework` -> `updateTask`):
/// TASK_KILLED from the master, REASON_FRAMEWORK_REMOVED. Its `statuses`
/// end with it, which is the state the Mesos CLI's `task list -a` shows.
fn framework_removed(
    task: &tepui_proto::v1::Task,
    framework_id: &str,
) -> tepui_proto::v1::TaskStatus {
    use tepui_proto::v1::task_status::{Reason, Source};
    tepui_proto::v1::TaskStatus {
        task_id: task.task_id.clone(),
        state: tepui_proto::v1::TaskState::TaskKilled as i32,
        message: Some(format!("Framework {framework_id} removed")),
        source: Some(Source::Master as i32),
        reason: Some(Reason::FrameworkRemoved as i32),
        agent_id: Some(task.agent_id.clone()),
        executor_id: task.executor_id.clone(),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}
