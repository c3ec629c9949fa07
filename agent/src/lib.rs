//! tepui-agent owns the agent daemon: its HTTP APIs (executor, operator,
//! v0), the built-in executors, reliable status updates, checkpoints and
//! recovery, and the link to a master.
//!
//! It must not depend on the master crate: it talks to a master over the
//! wire (the link protocol in tepui-proto) behind the `MasterLink` trait, and
//! runs standalone without one. Containers go through tepui-containerizer;
//! this crate never calls libcontainer or touches cgroups itself.

pub mod checkpoint;
pub mod cli;
pub mod cli_cluster;
pub mod cli_images;
pub mod cli_locate;
pub mod cli_ps;
pub mod cli_resolve;
pub mod cli_run;
pub mod cli_session;
pub mod config;
pub mod daemon;
pub mod executors;
pub mod http;
pub mod link;
mod log_tail;
pub mod operator_credential;
pub mod paths;
pub mod peer;
mod record_stream;
pub mod status_updates;
mod task_info;
pub mod tls;

use std::sync::Arc;

use tepui_proto::sd_notify;

pub use config::{AgentConfig, RecoverMode};
pub use daemon::{Agent, AgentError};

/// How long in-flight requests get after SIGTERM.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the agent until `shutdown` resolves: recovers, serves HTTP, keeps
/// the link to the master. Containers and supervisors keep running after
/// it returns (a restarted agent recovers them), unless
/// `destroy_pods_on_shutdown` asks for them to be destroyed first.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Heartbeats start before recovery, which may take a while on a host
    // with many pods; systemd's start timeout bounds that, not the watchdog.
    let watchdog = sd_notify::spawn_watchdog();
    let address = std::net::SocketAddr::new(config.ip, config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::Listen {
            address: address.to_string(),
            source,
        })?;
    let tls = config
        .tls
        .server_config()
        .map_err(|e| AgentError::Config(format!("TLS: {e}")))?;
    let scheme = config.tls.scheme();
    let agent = Agent::new(config)?;
    agent.start().await?;
    tracing::info!(%address, scheme, "agent serving");
    // `Type=notify` units: READY=1 once recovered and listening.
    sd_notify::ready();
    // On shutdown, end the executors' streams (they re-subscribe to the
    // next agent) so the server can drain.
    let token = agent.shutdown.clone();
    let stop = async move {
        shutdown.await;
        sd_notify::stopping();
        token.cancel();
    };
    // Long polls (executors' WAIT_CONTAINER) would hold the drain forever:
    // they get a moment, then the connections are dropped and the
    // executors retry against the next agent.
    let token = agent.shutdown.clone();
    let drained = async move {
        token.cancelled().await;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    let served = tokio::select! {
        served = http::serve(Arc::clone(&agent), listener, tls, stop) => {
            served.map_err(|source| AgentError::Listen {
                address: address.to_string(),
                source,
            })
        }
        () = drained => Ok(()),
    };
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if agent.config.destroy_pods_on_shutdown {
        let left = agent.destroy_all_pods().await;
        if !left.is_empty() {
            tracing::warn!(pods = ?left, "pods left running: they could not be destroyed");
        }
    }
    served
}
