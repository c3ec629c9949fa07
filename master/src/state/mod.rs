//! The master's in-memory state (frameworks, agents, offers, tasks) and every
//! transition on it. HTTP handlers lock it, call one method and answer; the
//! methods push events to the schedulers' and agents' streams through
//! unbounded channels, so nothing here blocks or awaits.

pub mod agents;
pub mod frameworks;
pub mod offers;
pub mod tasks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use tepui_proto::link::MasterEvent;
use tepui_proto::resources::Resources;
use tepui_proto::v1::master::Event as OperatorEvent;
use tepui_proto::v1::scheduler::Event;
use tepui_proto::v1::{self as v1, AgentInfo, FrameworkInfo, MasterInfo, Task};

use crate::allocator::{Allocator, AllocatorConfig};
use crate::config::MasterConfig;
use crate::registry::Registry;

pub use offers::OfferState;

/// The version answered by `/version` and GET_VERSION: numeric, because
/// clients parse it as a Mesos version.
pub const VERSION: &str = "1.11.0";

/// Shared between the HTTP handlers and the background loop.
pub struct Shared {
    state: Mutex<Master>,
    /// Wakes the allocation loop for event-triggered allocation.
    pub allocate_now: Notify,
    pub config: MasterConfig,
    /// Set with `--zk`: leadership and the current leader.
    pub ha: Option<crate::ha::Ha>,
    /// Frameworks registered over libprocess (libmesos drivers). Locked
    /// after the state when both are.
    pub libprocess: crate::libprocess::Sessions,
}

impl Shared {
    pub fn new(master: Master) -> Arc<Self> {
        let config = master.config.clone();
        Arc::new(Shared {
            state: Mutex::new(master),
            allocate_now: Notify::new(),
            config,
            ha: None,
            libprocess: Default::default(),
        })
    }

    /// A master that serves only once elected (`--zk`).
    pub fn new_ha(master: Master, ha: crate::ha::Ha) -> Arc<Self> {
        let config = master.config.clone();
        Arc::new(Shared {
            state: Mutex::new(master),
            allocate_now: Notify::new(),
            config,
            ha: Some(ha),
            libprocess: Default::default(),
        })
    }

    /// Locks the state. A handler that panicked mid-update leaves it as it
    /// was at the panic; serving on is better than wedging the master.
    pub fn lock(&self) -> MutexGuard<'_, Master> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A subscribed scheduler's stream.
#[derive(Debug)]
pub struct SchedulerConn {
    pub stream_id: String,
    pub tx: crate::queue::EventTx<Event>,
}

/// A subscribed agent's stream. Events are boxed: a `MasterEvent` is
/// over 13 KB inline and tokio allocates channel blocks of 32 slots, which
/// for 40k agents would be gigabytes.
#[derive(Debug)]
pub struct AgentConn {
    pub stream_id: String,
    pub tx: crate::queue::EventTx<Box<MasterEvent>>,
}

#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub roles: Vec<String>,
    pub conn: Option<SchedulerConn>,
    /// When the stream went away; the failover timeout runs from here.
    pub disconnected_at: Option<Instant>,
    pub offers: HashSet<String>,
    /// Task id -> agent id.
    pub tasks: HashMap<String, String>,
    /// Terminal tasks whose last update was acknowledged, newest last.
    pub completed_tasks: VecDeque<Task>,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    /// When the master removed it (TEARDOWN, failover timeout):
    /// `Master::removeFramework` sets `unregisteredTime` then, and only then.
    pub unregistered_time: Option<f64>,
    /// Known only from agents' reports after a master failover.
    pub recovered: bool,
}

#[derive(Debug)]
pub struct Agent {
    pub id: String,
    pub info: AgentInfo,
    pub total: Resources,
    pub version: Option<String>,
    /// `ip:port` the agent said it serves on (its pid's address).
    pub address: Option<String>,
    pub capabilities: Vec<v1::agent_info::Capability>,
    pub conn: Option<AgentConn>,
    pub disconnected_at: Option<Instant>,
    /// (framework id, task id) -> task.
    pub tasks: HashMap<(String, String), Task>,
    /// (framework id, executor id) -> executor.
    pub executors: HashMap<(String, String), v1::ExecutorInfo>,
    pub deactivated: bool,
    pub draining: bool,
    /// DRAIN_AGENT with `mark_gone`: once drained, the agent is gone.
    pub gone_when_drained: bool,
    pub registered_time: f64,
}

impl Agent {
    pub fn active(&self) -> bool {
        self.conn.is_some() && !self.deactivated && !self.draining
    }
}

/// An operator SUBSCRIBE stream.
#[derive(Debug)]
pub struct OperatorSubscriber {
    pub tx: crate::queue::EventTx<OperatorEvent>,
    /// Who subscribed: events about frameworks, tasks and executors the
    /// `view_*` ACLs hide from this principal are not sent.
    pub principal: Option<String>,
}

pub struct Master {
    pub config: MasterConfig,
    pub id: String,
    pub info: MasterInfo,
    pub start_time: f64,
    pub frameworks: HashMap<String, Framework>,
    pub agents: HashMap<String, Agent>,
    pub offers: HashMap<String, OfferState>,
    pub allocator: Allocator,
    pub registry: Registry,
    /// The maintenance schedule and machine modes (kept in the registry).
    pub maintenance: crate::maintenance::Maintenance,
    pub operator_subscribers: Vec<OperatorSubscriber>,
    /// Frameworks torn down or failed over for good: they may not return.
    pub removed_frameworks: HashSet<String>,
    pub completed_frameworks: VecDeque<Framework>,
    pub metrics: Metrics,
    /// Agents of the registry that have not re-registered since the master
    /// started, with the deadline to do so.
    pub recovering_agents: HashMap<String, Instant>,
    /// Whether this master leads (always without `--zk`); `master/elected`.
    pub elected: bool,
    /// Agents to check for the end of a drain once an update is forwarded.
    pending_drain_checks: Vec<String>,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub offers_sent: u64,
    pub offers_declined: u64,
    pub offers_rescinded: u64,
    pub tasks_launched: u64,
    pub tasks_error: u64,
    pub tasks_dropped: u64,
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub scheduler_calls: u64,
    pub invalid_scheduler_calls: u64,
    pub allocation_runs: u64,
    pub allocation_last_secs: f64,
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Master {
    pub fn new(config: MasterConfig, registry: Registry) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let allocator = Allocator::new(AllocatorConfig {
            min_allocatable: config.min_allocatable_resources.clone(),
            max_offers_per_framework: config.max_offers_per_framework,
            ..AllocatorConfig::default()
        });
        let hostname = crate::advertise::hostname(config.hostname.as_deref(), config.listen);
        let advertised =
            std::net::SocketAddr::new(crate::advertise::ip(config.listen), config.listen.port());
        let ip = match advertised.ip() {
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        let info = MasterInfo {
            id: id.clone(),
            ip,
            port: u32::from(config.listen.port()),
            pid: Some(format!("master@{advertised}")),
            hostname: Some(hostname.clone()),
            version: Some(VERSION.to_string()),
            address: Some(v1::Address {
                hostname: Some(hostname),
                ip: Some(advertised.ip().to_string()),
                port: i32::from(config.listen.port()),
            }),
            domain: None,
            capabilities: Vec::new(),
        };
        let mut master = Master {
            config,
            id,
            info,
            start_time: now_secs(),
            frameworks: HashMap::new(),
            agents: HashMap::new(),
            offers: HashMap::new(),
            allocator,
            registry,
            maintenance: Default::default(),
            operator_subscribers: Vec::new(),
            removed_frameworks: HashSet::new(),
            completed_frameworks: VecDeque::new(),
            metrics: Metrics::default(),
            recovering_agents: HashMap::new(),
            elected: true,
            pending_drain_checks: Vec::new(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
        };
        master.recover_registry();
        master
    }

    /// Applies what the registry remembers across restarts.
    pub(crate) fn recover_registry(&mut self) {
        for (role, weight) in self.config.weights.clone() {
            self.allocator.set_weight(&role, weight);
        }
        for (role, weight) in self.registry.state.weights.clone() {
            self.allocator.set_weight(&role, weight);
        }
        for (role, quota) in self.registry.state.quotas.clone() {
            self.allocator.set_quota(&role, Some(quota.to_quota()));
        }
        self.maintenance =
            crate::maintenance::Maintenance::recover(&self.registry.state.maintenance);
        let deadline = Instant::now() + self.config.agent_reregister_timeout;
        for agent in self.registry.state.admitted.keys() {
            self.recovering_agents.insert(agent.clone(), deadline);
        }
    }

    pub fn new_framework_id(&mut self) -> String {
        self.next_framework += 1;
        format!("{}-{:04}", self.id, self.next_framework - 1)
    }

    pub fn new_agent_id(&mut self) -> String {
        self.next_agent += 1;
        format!("{}-S{}", self.id, self.next_agent - 1)
    }

    pub fn new_offer_id(&mut self) -> String {
        self.next_offer += 1;
        format!("{}-O{}", self.id, self.next_offer - 1)
    }

    /// Sends an event to a framework's stream, if it has one.
    pub fn send_framework(&self, framework_id: &str, event: Event) -> bool {
        let Some(conn) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.conn.as_ref())
        else {
            return false;
        };
        // A reconciliation answer still waiting for this task is older
        // than this update: it must not arrive after it.
        if let Some(update) = &event.update {
            conn.tx.supersede(&update.status.task_id.value);
        }
        conn.tx.send(event).is_ok()
    }

    /// Sends an event to an agent's stream, if it has one.
    pub fn send_agent(&self, agent_id: &str, event: MasterEvent) -> bool {
        self.agents
            .get(agent_id)
            .and_then(|a| a.conn.as_ref())
            .is_some_and(|c| c.tx.send(Box::new(event)).is_ok())
    }

    pub fn publish(&mut self, event: OperatorEvent) {
        let mut subscribers = std::mem::take(&mut self.operator_subscribers);
        subscribers.retain(|s| {
            !crate::operator_api::visible_to(self, s.principal.as_deref(), &event)
                || s.tx.send(event.clone()).is_ok()
        });
        self.operator_subscribers = subscribers;
    }
}
