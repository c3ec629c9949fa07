//! tepui-master owns the master daemon: the scheduler and operator HTTP APIs,
//! offers from the weighted DRF allocator with roles, quotas and reservations,
//! agent membership and the registry.
//!
//! It must not depend on the agent or containerizer crates: agents are remote
//! peers that speak the link protocol defined in tepui-proto.

mod advertise;
pub mod allocator;
mod auth;
pub mod config;
pub mod error;
pub mod ha;
mod http;
mod libprocess;
mod link;
mod maintenance;
pub mod metrics;
mod operations;
mod operator_api;
mod queue;
pub mod registry;
mod scheduler_api;
pub mod state;
mod v0;
mod v0_maintenance;
mod validation;
mod webui;
mod webui_dir;
mod webui_exec;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use config::{AuthConfig, MasterConfig};
pub use error::MasterError;

use registry::Registry;
use state::{Master, Shared};
use tepui_proto::sd_notify;

/// A master serving in the current runtime.
pub struct RunningMaster {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
    /// With `--zk`: the election (its ZooKeeper session ends with it).
    election: Option<tokio::task::JoinHandle<()>>,
}

impl RunningMaster {
    /// Stops serving after writing the registry (a graceful stop).
    pub fn stop(self) {
        self.shared.lock().registry.flush();
        self.abort();
    }

    /// Stops serving, as abruptly as a killed process: connections drop,
    /// nothing is flushed beyond what the registry already wrote.
    pub fn abort(self) {
        self.server.abort();
        self.ticker.abort();
        if let Some(election) = self.election {
            election.abort();
        }
    }

    /// Resolves with the reason once this master is deposed (`--zk`); never
    /// without `--zk`.
    pub async fn deposed(&self) -> String {
        let Some(ha) = &self.shared.ha else {
            return std::future::pending().await;
        };
        let mut rx = ha.deposed();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Whether this master serves as the leader (always without `--zk`).
    pub fn leading(&self) -> bool {
        self.shared.ha.as_ref().is_none_or(ha::Ha::leading)
    }
}

/// Starts the master: binds, recovers the registry and serves in the
/// background of the current tokio runtime.
pub async fn start(mut config: MasterConfig) -> Result<RunningMaster, MasterError> {
    // Highly available masters keep the registry in ZooKeeper and load it
    // once elected.
    if config.zk.is_some() && config.work_dir.is_some() {
        tracing::warn!("--work_dir is not used for the registry with --zk: it lives in ZooKeeper");
    }
    let tls = config.tls.server_config()?;
    let registry = match (&config.zk, &config.work_dir) {
        (Some(_), _) | (None, None) => Registry::in_memory(),
        (None, Some(dir)) => Registry::open(dir)?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| MasterError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(MasterError::Serve)?;
    config.listen = addr;
    let zk = config.zk.clone();
    let config_scheme = config.tls.scheme();
    let config_agent_timeout = config.agent_timeout();
    let master = Master::new(config, registry);
    let (shared, election) = match zk {
        Some(zk) => {
            let (shared, election) = ha::start(&zk, master).await?;
            (shared, Some(election))
        }
        None => (Shared::new(master), None),
    };
    // An agent cut off the network leaves its link stream open: the
    // heartbeats the master sends on it (every agent_ping_timeout) are never
    // acknowledged, and without a bound TCP would retransmit them for
    // ~15 minutes before the master sees the agent go. TCP_USER_TIMEOUT
    // aborts such a connection after the agent timeout, so the agent is
    // disconnected, then unreachable, as with Mesos's pings.
    // (At least a second: it also ends connections whose peer stopped
    // reading, when its window stays full that long.)
    let user_timeout = u32::try_from(config_agent_timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1000);
    // Set on the listening socket: Linux copies it into every accepted
    // connection (plain or TLS alike).
    set_tcp_user_timeout(&listener, user_timeout);
    let server = tokio::spawn(http::serve(listener, shared.clone(), tls));
    let ticker = tokio::spawn(background(shared.clone()));
    tracing::info!(%addr, scheme = config_scheme, "master listening");
    Ok(RunningMaster {
        addr,
        shared,
        server,
        ticker,
        election,
    })
}

/// How long an event-triggered allocation waits for more events.
const TRIGGER_BATCH: std::time::Duration = std::time::Duration::from_millis(10);

/// The allocation loop (every `--allocation_interval`, or sooner when an
/// event asks for it) and the timers: offer timeout, framework failover
/// timeout, agent health.
async fn background(shared: Arc<Shared>) {
    let interval = shared.config.allocation_interval;
    let mut next_tick = tokio::time::Instant::now() + interval;
    loop {
        // Event-triggered cycles only allocate; the timers, which walk every
        // agent and framework, run once per interval.
        let triggered = tokio::select! {
            _ = tokio::time::sleep_until(next_tick) => false,
            _ = shared.allocate_now.notified() => true,
        };
        if triggered {
            // Batch a burst of events (an agent re-registration storm, many
            // declines) into one cycle instead of one cycle per event.
            tokio::time::sleep(TRIGGER_BATCH.min(interval)).await;
        }
        let now = Instant::now();
        let mut master = shared.lock();
        if !triggered {
            next_tick = tokio::time::Instant::now() + interval;
            master.expire_offers(now);
            master.expire_frameworks(now);
            master.check_agents(now);
            master.registry.flush();
        }
        master.run_allocation(now);
    }
}

/// Runs the master until SIGINT or SIGTERM.
pub fn run(config: MasterConfig) -> Result<(), MasterError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(MasterError::Runtime)?;
    runtime.block_on(async move {
        let watchdog = sd_notify::spawn_watchdog();
        let running = start(config).await?;
        // `Type=notify` units: READY=1 once the registry is recovered and
        // the API listens (a standby under --zk is ready too: it answers).
        sd_notify::ready();
        tokio::select! {
            _ = wait_for_signal() => {}
            reason = running.deposed() => {
                running.abort();
                return Err(MasterError::Deposed(reason));
            }
        }
        sd_notify::stopping();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        running.shared.lock().registry.flush();
        running.abort();
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Sets TCP_USER_TIMEOUT (milliseconds) on an accepted connection: sent data
/// unacknowledged for that long aborts it.
fn set_tcp_user_timeout(tcp: &impl std::os::fd::AsRawFd, millis: u32) {
    // SAFETY: a valid socket fd and a pointer to a u32 of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&raw const millis).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot set TCP_USER_TIMEOUT");
    }
}
