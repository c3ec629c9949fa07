//! `tepui dev`: master and agent in one process on loopback, for trying
//! tepui (README's first command) and for local framework development.

use anyhow::Context;
use tepui_agent::AgentConfig;
use tepui_master::MasterConfig;

use crate::agent_cmd::shutdown_signal;
use crate::cli::{DevArgs, ExitStatus};

pub fn run_dev(args: DevArgs) -> anyhow::Result<ExitStatus> {
    let work = match args.work_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("tepui-dev-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)
        .with_context(|| format!("cannot create the work dir {}", work.display()))?;
    let tls = args.tls.settings()?;
    let scheme = tls.scheme();
    let master = MasterConfig {
        listen: std::net::SocketAddr::new(args.ip, args.master_port),
        work_dir: Some(work.join("master")),
        tls: tls.clone(),
        ..MasterConfig::default()
    };
    let mut agent = AgentConfig::new(work.join("agent"), work.join("run"));
    agent.master = Some(std::net::SocketAddr::new(args.ip, args.master_port).to_string());
    agent.ip = args.ip;
    agent.port = args.agent_port;
    agent.resources = args.resources;
    agent.cgroups_root = args.cgroups_root;
    agent.tls = tls;
    agent.tepui_binary =
        std::env::current_exe().context("cannot find the tepui binary for executors")?;
    agent.flags = vec![("work_dir".into(), work.display().to_string())];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let running = tepui_master::start(master).await?;
        eprintln!(
            "tepui dev: master {scheme}://{} (schedulers: /api/v1/scheduler), agent {scheme}://{}:{}, work dir {}",
            running.addr,
            args.ip,
            args.agent_port,
            work.display()
        );
        let served = tepui_agent::run(agent, shutdown_signal()).await;
        running.stop();
        served?;
        Ok(ExitStatus::Success)
    })
}
