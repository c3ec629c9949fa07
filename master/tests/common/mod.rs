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
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A master in its own runtime on its own thread: `kill` drops the runtime,
/// closing every socket at once, as SIGKILL of a master process would.
pub struct MasterProcess {
    pub addr: std::net::SocketAddr,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MasterProcess {
    pub fn start(config: MasterConfig) -> MasterProcess {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            // The previous incarnation's socket may linger a moment.
            let running = rt.block_on(async {
                for _ in 0..100 {
                    match tepui_master::start(config.clone()).await {
                        Ok(r) => return r,
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                tepui_master::start(config).await.unwrap()
            });
            addr_tx.send(running.addr).unwrap();
            let _ = stop_rx.recv();
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        let addr = addr_rx.recv().unwrap();
        MasterProcess {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn kill(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        self.stop.take();
    }
}
