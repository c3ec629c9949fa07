//! Agent membership: SUBSCRIBE over the link (new, re-registering after an
//! agent or master restart), disconnection and the unreachable timeout,
//! DRAIN / DEACTIVATE / REACTIVATE and MARK_AGENT_GONE.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use tepui_proto::link::{MasterEvent, agent_call, master_event};
use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::task_status::Reason;
use tepui_proto::v1::{AgentId, TaskState, master as operator};

use super::frameworks::framework_roles;
use super::tasks::{is_terminal, master_status, update_event};
use super::{Agent, AgentConn, Framework, Master, now_secs};
use crate::error::ApiError;
use crate::registry::StoredAgent;

pub const LINK_PROTOCOL_VERSION: u32 = 1;

impl Master {
    /// SUBSCRIBE on the link. Returns the agent id, the stream id and the
    /// event stream.
    pub fn agent_subscribe(
        &mut self,
        requested_id: Option<String>,
        mut sub: agent_call::Subscribe,
    ) -> Result<(String, String, crate::queue::EventRx<Box<MasterEvent>>), ApiError> {
        let total = agent_total(&sub)?;
        check_subscribe_ids(requested_id.as_deref(), &sub)?;
        let id = match requested_id.or_else(|| sub.agent_info.id.as_ref().map(|i| i.value.clone()))
        {
            Some(id) if self.registry.state.gone.contains_key(&id) => {
                return Err(ApiError::forbidden(format!(
                    "agent {id} has been marked gone and may not come back"
                )));
            }
            Some(id) => id,
            None => self.new_agent_id(),
        };
        // `Master::registerSlave` / `reregisterSlave`: no agent may
        // (re-)register while the machine it runs on is DOWN.
        let machine =
            crate::maintenance::agent_machine_id(&sub.agent_info.hostname, sub.address.as_deref());
        if self
            .maintenance
            .mode(&crate::maintenance::MachineKey::of(&machine))
            == tepui_proto::v1::machine_info::Mode::Down
        {
            return Err(ApiError::forbidden(format!(
                "the machine '{}' this agent runs on is `DOWN`",
                tepui_proto::json::to_string(&machine)
            )));
        }
        let mut info = sub.agent_info.clone();
        info.id = Some(AgentId { value: id.clone() });
        let stream_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = crate::queue::channel(None);
        let known = self.agents.contains_key(&id);
        let (deactivated, draining) = self
            .registry
            .state
            .admitted
            .get(&id)
            .map_or((false, false), |a| (a.deactivated, a.draining));

        // Frameworks we learn of from the agent (after a master failover).
        for fw_info in &sub.frameworks {
            let Some(fid) = fw_info.id.as_ref().map(|i| i.value.clone()) else {
                continue;
            };
            if self.frameworks.contains_key(&fid) || self.removed_frameworks.contains(&fid) {
                continue;
            }
            let roles = framework_roles(fw_info);
            self.frameworks.insert(
                fid.clone(),
                Framework {
                    id: fid.clone(),
                    info: fw_info.clone(),
                    roles: roles.clone(),
                    conn: None,
                    disconnected_at: Some(Instant::now()),
                    offers: HashSet::new(),
                    tasks: HashMap::new(),
                    completed_tasks: VecDeque::new(),
                    registered_time: now_secs(),
                    reregistered_time: None,
                    unregistered_time: None,
                    recovered: true,
                },
            );
            self.allocator.add_framework(&fid, &roles, &[]);
            self.allocator.set_framework_active(&fid, false);
        }

        if known {
            // Reconnecting agent: its offers are stale, its tasks are what
            // it says now.
            self.rescind_agent_offers(&id);
            self.allocator.remove_agent(&id);
        }
        let mut tasks = HashMap::with_capacity(sub.tasks.len() + sub.completed_tasks.len());
        let mut used: HashMap<String, Resources> = HashMap::new();
        let reported = std::mem::take(&mut sub.tasks)
            .into_iter()
            .chain(std::mem::take(&mut sub.completed_tasks));
        // Executors the agent reports may leave `framework_id` unset (its
        // command executors): their tasks say whose they are.
        let mut executor_framework: HashMap<String, String> = HashMap::new();
        for mut task in reported {
            // Moved, not cloned: a re-registration storm is 400k tasks.
            let fid = std::mem::take(&mut task.framework_id.value);
            if let Some(e) = &task.executor_id
                && !executor_framework.contains_key(&e.value)
            {
                executor_framework.insert(e.value.clone(), fid.clone());
            }
            // Tasks of a framework torn down while the agent was away are
            // not taken back (the agent is told to shut it down below), as
            // in Mesos's `Master::_reregisterSlave`: they hold nothing.
            if self.removed_frameworks.contains(&fid) {
                continue;
            }
            if !is_terminal(task.state) {
                let entry = used.entry(fid.clone()).or_default();
                for r in &task.resources {
                    *entry += r;
                }
            }
            if let Some(fw) = self.frameworks.get_mut(&fid) {
                fw.tasks.insert(task.task_id.value.clone(), id.clone());
            }
            task.framework_id.value.clone_from(&fid);
            task.agent_id.value.clone_from(&id);
            tasks.insert((fid, task.task_id.value.clone()), task);
        }
        let mut executors = HashMap::new();
        for mut e in std::mem::take(&mut sub.executors) {
            let fid = match e.framework_id.as_ref() {
                Some(f) => f.value.clone(),
                None => match executor_framework.get(&e.executor_id.value) {
                    Some(f) => {
                        e.framework_id = Some(tepui_proto::v1::FrameworkId { value: f.clone() });
                        f.clone()
                    }
                    None => continue,
                },
            };
            if self.removed_frameworks.contains(&fid) {
                continue;
            }
            let entry = used.entry(fid.clone()).or_default();
            for r in &e.resources {
                *entry += r;
            }
            executors.insert((fid, e.executor_id.value.clone()), e);
        }
        if known {
            self.forget_missing_tasks(&id, &tasks);
        }
        let registered_time = self
            .agents
            .get(&id)
            .map_or_else(now_secs, |a| a.registered_time);
        let agent = Agent {
            id: id.clone(),
            info: info.clone(),
            total: total.clone(),
            version: sub.version.clone(),
            address: sub.address.clone(),
            capabilities: sub.capabilities.clone(),
            conn: Some(AgentConn {
                stream_id: stream_id.clone(),
                tx,
            }),
            disconnected_at: None,
            tasks,
            executors,
            deactivated,
            draining,
            gone_when_drained: false,
            registered_time,
        };
        let active = agent.active();
        self.agents.insert(id.clone(), agent);
        let used: Vec<(String, Resources)> = used.into_iter().collect();
        self.allocator.add_agent(&id, total, &used);
        self.allocator.set_agent_active(&id, active);
        self.recovering_agents.remove(&id);
        let was_unreachable = self.registry.state.unreachable.remove(&id).is_some();
        // Known agents keep their registry entry: re-encoding every
        // AgentInfo to compare would cost more than the rest of the
        // re-registration.
        if was_unreachable || !self.registry.state.admitted.contains_key(&id) {
            let admitted = StoredAgent {
                info: tepui_proto::json::to_value(&info),
                deactivated,
                draining,
            };
            self.registry.state.admitted.insert(id.clone(), admitted);
            self.registry.save();
        }
        self.send_agent(
            &id,
            MasterEvent {
                r#type: Some(master_event::Type::Subscribed as i32),
                subscribed: Some(master_event::Subscribed {
                    agent_id: AgentId { value: id.clone() },
                    heartbeat_interval_seconds: Some(self.config.agent_ping_timeout.as_secs_f64()),
                    master_info: Some(self.info.clone()),
                }),
                ..Default::default()
            },
        );
        // A framework torn down while this agent was away still runs here:
        // shut it down now, as Mesos's `Master::__reregisterSlave` does for
        // frameworks it has completed.
        for fw_info in &sub.frameworks {
            if let Some(fid) = fw_info.id.as_ref()
                && self.removed_frameworks.contains(&fid.value)
            {
                tracing::info!(agent = %id, framework = %fid.value, "shutting down a removed framework on a re-registered agent");
                self.send_agent(
                    &id,
                    MasterEvent {
                        r#type: Some(master_event::Type::ShutdownFramework as i32),
                        shutdown_framework: Some(master_event::ShutdownFramework {
                            framework_id: fid.clone(),
                        }),
                        ..Default::default()
                    },
                );
            }
        }
        if !self.operator_subscribers.is_empty() {
            let snapshot = self.agent_snapshot(&id);
            self.publish(operator::Event {
                r#type: Some(operator::event::Type::AgentAdded as i32),
                agent_added: Some(operator::event::AgentAdded { agent: snapshot }),
                ..Default::default()
            });
        }
        tracing::info!(agent = %id, reregistered = known, "agent subscribed");
        Ok((id, stream_id, rx))
    }

    /// Tasks the master knew on a re-registering agent that the agent no
    /// longer reports are gone (TASK_GONE for partition-aware frameworks,
    /// TASK_LOST otherwise).
    fn forget_missing_tasks(
        &mut self,
        agent_id: &str,
        reported: &HashMap<(String, String), tepui_proto::v1::Task>,
    ) {
        let missing: Vec<(String, String)> = self
            .agents
            .get(agent_id)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|(k, t)| !reported.contains_key(*k) && !is_terminal(t.state))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (fid, tid) in missing {
            let state = if self.is_partition_aware(&fid) {
                TaskState::TaskGone
            } else {
                TaskState::TaskLost
            };
            if let Some(fw) = self.frameworks.get_mut(&fid) {
                fw.tasks.remove(&tid);
            }
            self.send_framework(
                &fid,
                update_event(master_status(
                    &tid,
                    Some(agent_id),
                    state,
                    Reason::AgentReregistered,
                    "the agent re-registered without this task",
                )),
            );
        }
    }

    /// A draining agent whose tasks have all ended is drained; with
    /// `mark_gone` it is then marked gone.
    pub fn check_drained(&mut self, agent_id: &str) {
        let done = self.agents.get(agent_id).is_some_and(|a| {
            a.draining && a.gone_when_drained && a.tasks.values().all(|t| is_terminal(t.state))
        });
        if done {
            let _ = self.mark_gone(agent_id);
        }
    }

    /// The agent's stream closed: no offers until it is back; unreachable
    /// after the timeout.
    pub fn agent_disconnected(&mut self, agent_id: &str, stream_id: &str) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if agent.conn.as_ref().is_none_or(|c| c.stream_id != stream_id) {
            return;
        }
        agent.conn = None;
        agent.disconnected_at = Some(Instant::now());
        self.allocator.set_agent_active(agent_id, false);
        self.rescind_agent_offers(agent_id);
        tracing::info!(agent = %agent_id, "agent disconnected");
    }

    /// Agents away too long become unreachable; registry agents that never
    /// came back after a master restart too.
    pub fn check_agents(&mut self, now: Instant) {
        let timeout = self.config.agent_timeout();
        let expired: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.disconnected_at.is_some_and(|at| now >= at + timeout))
            .map(|a| a.id.clone())
            .collect();
        for id in expired {
            self.mark_unreachable(&id);
        }
        let late: Vec<String> = self
            .recovering_agents
            .iter()
            .filter(|(_, deadline)| now >= **deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.recovering_agents.remove(&id);
            self.registry.state.admitted.remove(&id);
            self.registry.state.unreachable.insert(id, now_secs());
            self.registry.save();
        }
    }

    /// Removes an agent: its tasks become TASK_UNREACHABLE (partition-aware
    /// frameworks) or TASK_LOST, or TASK_GONE_BY_OPERATOR when `gone`.
    fn remove_agent(&mut self, agent_id: &str, gone: bool) {
        self.rescind_agent_offers(agent_id);
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.allocator.remove_agent(agent_id);
        for ((fid, tid), task) in agent.tasks {
            if let Some(fw) = self.frameworks.get_mut(&fid) {
                fw.tasks.remove(&tid);
            }
            if is_terminal(task.state) {
                continue;
            }
            let aware = self.is_partition_aware(&fid);
            let (state, reason) = match (gone, aware) {
                (true, true) => (
                    TaskState::TaskGoneByOperator,
                    Reason::AgentRemovedByOperator,
                ),
                (true, false) => (TaskState::TaskLost, Reason::AgentRemovedByOperator),
                (false, true) => (TaskState::TaskUnreachable, Reason::AgentRemoved),
                (false, false) => (TaskState::TaskLost, Reason::AgentRemoved),
            };
            let mut status = master_status(&tid, Some(agent_id), state, reason, "agent removed");
            if !gone {
                status.unreachable_time = Some(super::frameworks::time_info(now_secs()));
            }
            self.send_framework(&fid, update_event(status));
        }
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::AgentRemoved as i32),
            agent_removed: Some(operator::event::AgentRemoved {
                agent_id: AgentId {
                    value: agent_id.to_string(),
                },
            }),
            ..Default::default()
        });
    }

    /// `Master::removeSlave` (src/master/master.cpp, `_removeSlave`): the
    /// master removes an agent it refuses (its machine went DOWN). Its
    /// tasks are TASK_LOST with REASON_SLAVE_REMOVED whatever the
    /// framework's capabilities, the frameworks hear the agent is lost
    /// (`sendSlaveLost`: a FAILURE event), and the registry forgets it.
    pub fn remove_agent_by_master(&mut self, agent_id: &str, cause: &str) {
        self.rescind_agent_offers(agent_id);
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.allocator.remove_agent(agent_id);
        let message = format!("Agent {} removed: {cause}", agent.info.hostname);
        for ((fid, tid), mut task) in agent.tasks {
            let Some(fw) = self.frameworks.get_mut(&fid) else {
                continue;
            };
            fw.tasks.remove(&tid);
            if is_terminal(task.state) {
                continue;
            }
            let status = master_status(
                &tid,
                Some(agent_id),
                TaskState::TaskLost,
                Reason::AgentRemoved,
                message.clone(),
            );
            task.state = TaskState::TaskLost as i32;
            task.statuses.push(status.clone());
            fw.completed_tasks.push_back(task);
            while fw.completed_tasks.len() > super::tasks::MAX_COMPLETED_TASKS {
                fw.completed_tasks.pop_front();
            }
            self.metrics.tasks_lost += 1;
            self.send_framework(&fid, update_event(status));
        }
        let connected: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.conn.is_some())
            .map(|f| f.id.clone())
            .collect();
        for fid in connected {
            self.send_framework(
                &fid,
                tepui_proto::v1::scheduler::Event {
                    r#type: Some(tepui_proto::v1::scheduler::event::Type::Failure as i32),
                    failure: Some(tepui_proto::v1::scheduler::event::Failure {
                        agent_id: Some(AgentId {
                            value: agent_id.to_string(),
                        }),
                        executor_id: None,
                        status: None,
                    }),
                    ..Default::default()
                },
            );
        }
        self.recovering_agents.remove(agent_id);
        self.registry.state.admitted.remove(agent_id);
        self.registry.save();
        self.registry.flush();
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::AgentRemoved as i32),
            agent_removed: Some(operator::event::AgentRemoved {
                agent_id: AgentId {
                    value: agent_id.to_string(),
                },
            }),
            ..Default::default()
        });
    }

    pub fn mark_unreachable(&mut self, agent_id: &str) {
        tracing::info!(agent = %agent_id, "agent unreachable");
        self.remove_agent(agent_id, false);
        self.registry.state.admitted.remove(agent_id);
        self.registry
            .state
            .unreachable
            .insert(agent_id.to_string(), now_secs());
        self.registry.save();
    }

    /// MARK_AGENT_GONE: the agent may never come back.
    pub fn mark_gone(&mut self, agent_id: &str) -> Result<(), ApiError> {
        let known = self.agents.contains_key(agent_id)
            || self.registry.state.admitted.contains_key(agent_id)
            || self.registry.state.unreachable.contains_key(agent_id);
        if !known {
            return Err(ApiError::not_found(format!("unknown agent {agent_id}")));
        }
        if self.agents.contains_key(agent_id) {
            self.send_agent(
                agent_id,
                MasterEvent {
                    r#type: Some(master_event::Type::Error as i32),
                    error: Some(master_event::Error {
                        message: "agent marked gone by the operator".into(),
                    }),
                    ..Default::default()
                },
            );
        }
        self.remove_agent(agent_id, true);
        self.recovering_agents.remove(agent_id);
        self.registry.state.admitted.remove(agent_id);
        self.registry.state.unreachable.remove(agent_id);
        self.registry
            .state
            .gone
            .insert(agent_id.to_string(), now_secs());
        self.registry.save();
        Ok(())
    }

    /// DEACTIVATE_AGENT / REACTIVATE_AGENT / DRAIN_AGENT.
    pub fn set_agent_mode(
        &mut self,
        agent_id: &str,
        deactivated: Option<bool>,
        draining: Option<bool>,
    ) -> Result<(), ApiError> {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return Err(ApiError::not_found(format!("unknown agent {agent_id}")));
        };
        if let Some(d) = deactivated {
            agent.deactivated = d;
        }
        if let Some(d) = draining {
            agent.draining = d;
        }
        let (active, deact, drain) = (agent.active(), agent.deactivated, agent.draining);
        self.allocator.set_agent_active(agent_id, active);
        if !active {
            self.rescind_agent_offers(agent_id);
        }
        if draining == Some(true) {
            // Draining kills every task on the agent.
            let tasks: Vec<(String, String)> = self
                .agents
                .get(agent_id)
                .map(|a| {
                    a.tasks
                        .iter()
                        .filter(|(_, t)| !is_terminal(t.state))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            for (fid, tid) in tasks {
                self.send_agent(
                    agent_id,
                    MasterEvent {
                        r#type: Some(master_event::Type::KillTask as i32),
                        kill_task: Some(master_event::KillTask {
                            framework_id: tepui_proto::v1::FrameworkId { value: fid },
                            task_id: tepui_proto::v1::TaskId { value: tid },
                            kill_policy: None,
                        }),
                        ..Default::default()
                    },
                );
            }
        }
        if let Some(stored) = self.registry.state.admitted.get_mut(agent_id) {
            stored.deactivated = deact;
            stored.draining = drain;
            self.registry.save();
        }
        Ok(())
    }

    pub fn agent_snapshot(&self, agent_id: &str) -> operator::response::get_agents::Agent {
        let Some(agent) = self.agents.get(agent_id) else {
            return Default::default();
        };
        let mut allocated = Resources::new();
        for t in agent.tasks.values().filter(|t| !is_terminal(t.state)) {
            allocated += Resources::from(t.resources.clone());
        }
        for e in agent.executors.values() {
            allocated += Resources::from(e.resources.clone());
        }
        let mut offered = Resources::new();
        for o in self
            .offers
            .values()
            .filter(|o| o.offer.agent_id.value == agent_id)
        {
            offered += o.resources();
        }
        operator::response::get_agents::Agent {
            agent_info: agent.info.clone(),
            active: agent.active(),
            deactivated: Some(agent.deactivated),
            version: agent.version.clone().unwrap_or_default(),
            pid: Some(agent_pid(&agent.info, agent.address.as_deref())),
            registered_time: Some(super::frameworks::time_info(agent.registered_time)),
            total_resources: agent.total.clone().into_vec(),
            allocated_resources: allocated.into_vec(),
            offered_resources: offered.into_vec(),
            capabilities: agent.capabilities.clone(),
            ..Default::default()
        }
    }
}

/// What Mesos names an agent's libprocess pid; tools parse host and port
/// out of it.
/// Mesos's `slave(1)@ip:port`: the address the agent gave, else its
/// hostname.
pub fn agent_pid(info: &tepui_proto::v1::AgentInfo, address: Option<&str>) -> String {
    match address {
        Some(address) => format!("slave(1)@{address}"),
        None => format!("slave(1)@{}:{}", info.hostname, info.port.unwrap_or(5051)),
    }
}

/// The agent's resources with its checkpointed dynamic reservations and
/// volumes applied.
fn agent_total(sub: &agent_call::Subscribe) -> Result<Resources, ApiError> {
    let mut total = Resources::try_from_resources(sub.agent_info.resources.iter().cloned())
        .map_err(|e| ApiError::bad_request(format!("invalid agent resources: {e}")))?;
    let checkpointed = Resources::try_from_resources(sub.checkpointed_resources.iter().cloned())
        .map_err(|e| ApiError::bad_request(format!("invalid checkpointed resources: {e}")))?;
    for r in checkpointed.iter() {
        let mut base = r.clone();
        while base.is_dynamically_reserved() {
            base.reservations.pop();
        }
        if let Some(d) = base.disk.as_mut() {
            d.persistence = None;
            d.volume = None;
            if d.source.is_none() {
                base.disk = None;
            }
        }
        total -= base;
        total += r.clone();
    }
    Ok(total)
}

/// Mesos's `validateSlaveReregister`: every id the agent reports must pass
/// `validateID`, since the master hands them on (to schedulers, to other
/// agents' paths via the frameworks it learns of).
fn check_subscribe_ids(
    requested: Option<&str>,
    sub: &agent_call::Subscribe,
) -> Result<(), ApiError> {
    let check =
        |field: &str, id: &str| tepui_proto::ids::check(field, id).map_err(ApiError::bad_request);
    if let Some(id) = requested {
        check("agent_id", id)?;
    }
    if let Some(id) = &sub.agent_info.id {
        check("subscribe.agent_info.id", &id.value)?;
    }
    for fw in &sub.frameworks {
        if let Some(id) = &fw.id {
            check("subscribe.frameworks.id", &id.value)?;
        }
    }
    for ex in &sub.executors {
        check("subscribe.executors.executor_id", &ex.executor_id.value)?;
    }
    for task in sub.tasks.iter().chain(&sub.completed_tasks) {
        check("subscribe.tasks.task_id", &task.task_id.value)?;
        check("subscribe.tasks.framework_id", &task.framework_id.value)?;
    }
    Ok(())
}
