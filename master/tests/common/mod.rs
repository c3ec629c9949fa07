//! Test harness: a master in-process on 127.0.0.1:0 (real HTTP), a test
//! agent speaking the link protocol over HTTP, and scheduler clients in JSON
//! and protobuf written directly against the v1 HTTP API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod http;
pub mod scheduler;

use std::time::Duration;

use tepui_master::{MasterConfig, RunningMaster};

pub fn config() -> MasterConfig {
    MasterConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allocation_interval: Duration::from_millis(50),
        scheduler_heartbeat: Duration::from_secs(1),
        agent_ping_timeout: Duration::from_secs(1),
        ..MasterConfig::default()
    }
}

pub async fn master() -> RunningMaster {
    tepui_master::start(config()).await.unwrap()
}

pub async fn master_with(config: MasterConfig) -> RunningMaster {
    tepui_master::start(config).await.unwrap()
}

/// Polls `f` until it returns `Some`, for up to `secs`.
pub async fn eventually<T>(secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met in {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
