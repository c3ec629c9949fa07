//! `tepui dev`: master and agent in one process on loopback, for trying
//! tepui (README's first command) and for local framework development.
//!
//! Unlike `tepui agent`, whose pods outlive it for the next agent to
//! recover, `tepui dev` owns everything it starts: on SIGTERM or Ctrl-C it
//! destroys its pods (containers, supervisors, cgroups, image mounts), then
//! removes the temporary work dir it made.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tepui_agent::AgentConfig;
use tepui_master::MasterConfig;

use crate::agent_cmd::{apply_image_flags, duration, from_file, shutdown_signal};
use crate::cli::{DevArgs, ExitStatus};

/// The work dir, and whether it is ours to make (and so to remove at the end).
fn work_dir(given: Option<PathBuf>) -> (PathBuf, bool) {
    match given {
        Some(dir) => (std::path::absolute(&dir).unwrap_or(dir), false),
        None => (
            std::env::temp_dir().join(format!("tepui-dev-{}", std::process::id())),
            true,
        ),
    }
}

fn make_work_dir(dir: &Path, ours: bool) -> anyhow::Result<()> {
    let made = if ours {
        // A dir of that name left by an earlier process with our pid is not ours.
        std::fs::create_dir(dir)
    } else {
        std::fs::create_dir_all(dir)
    };
    made.with_context(|| format!("cannot create the work dir {}", dir.display()))
}

fn agent_config(args: &mut DevArgs, work: &Path) -> anyhow::Result<AgentConfig> {
    let mut agent = AgentConfig::new(work.join("agent"), work.join("run"));
    agent.master = Some(std::net::SocketAddr::new(args.ip, args.master_port).to_string());
    agent.ip = args.ip;
    agent.port = args.agent_port;
    agent.resources = args.resources.take();
    agent.attributes = from_file("attributes", args.attributes.take())?;
    agent.isolation = args.isolation.clone();
    agent.cgroups_root = args.cgroups_root.clone();
    agent.executor_shutdown_grace_period = duration(
        "executor_shutdown_grace_period",
        &args.executor_shutdown_grace_period,
    )?;
    let images = std::mem::take(&mut args.images);
    apply_image_flags(&mut agent, images)?;
    crate::agent_cmd::apply_cni_flags(&mut agent, std::mem::take(&mut args.network_cni))?;
    agent.tepui_binary =
        std::env::current_exe().context("cannot find the tepui binary for executors")?;
    agent.destroy_pods_on_shutdown = true;
    agent.hidden_host_dirs.push(work.to_path_buf());
    let mut flags = vec![
        // The agent's own work dir (sandboxes are found below it, as on a
        // real agent), not dev's top dir.
        (
            "work_dir".to_string(),
            work.join("agent").display().to_string(),
        ),
        ("cgroups_root".to_string(), args.cgroups_root.clone()),
        ("isolation".to_string(), args.isolation.clone()),
    ];
    for (name, value) in [
        ("resources", &agent.resources),
        ("attributes", &agent.attributes),
        ("image_providers", &agent.image_providers),
    ] {
        if let Some(v) = value {
            flags.push((name.to_string(), v.clone()));
        }
    }
    if !agent.docker_insecure_registries.is_empty() {
        flags.push((
            "docker_insecure_registries".to_string(),
            agent.docker_insecure_registries.join(","),
        ));
    }
    agent.flags = flags;
    Ok(agent)
}

pub fn run_dev(mut args: DevArgs) -> anyhow::Result<ExitStatus> {
    let (work, created) = work_dir(args.work_dir.take());
    let tls = args.tls.settings()?;
    let scheme = tls.scheme();
    let master = MasterConfig {
        listen: std::net::SocketAddr::new(args.ip, args.master_port),
        work_dir: Some(work.join("master")),
        tls: tls.clone(),
        allocation_interval: duration("allocation_interval", &args.allocation_interval)?,
        ..MasterConfig::default()
    };
    let mut agent = agent_config(&mut args, &work)?;
    agent.tls = tls;
    let cgroups_root = agent.cgroups_root.clone();
    // Only once the flags are known good: a refused start leaves nothing.
    make_work_dir(&work, created)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shown = work.clone();
    let result = runtime.block_on(async move {
        let running = tepui_master::start(master).await?;
        eprintln!(
            "tepui dev: master {scheme}://{} (schedulers: /api/v1/scheduler), agent {scheme}://{}:{}, work dir {}",
            running.addr,
            args.ip,
            args.agent_port,
            shown.display()
        );
        // The agent destroys its pods before it returns
        // (`destroy_pods_on_shutdown`), while the master still hears about it.
        let served = tepui_agent::run(agent, shutdown_signal()).await;
        running.stop();
        served?;
        anyhow::Ok(())
    });
    // Background tasks (executor watchers, links) end with the runtime.
    drop(runtime);
    remove_cgroups_root(&cgroups_root);
    if created {
        // Never remove_dir_all: a mount left below would take the host with it.
        let removed = tepui_containerizer::safe_remove::remove_tree(&work)
            .with_context(|| format!("cannot remove the work dir {}", work.display()));
        result?;
        removed?;
    } else {
        result?;
    }
    Ok(ExitStatus::Success)
}

/// The (now empty) `--cgroups_root` cgroup the pods lived under. Left alone
/// while anything runs in it: it may be shared with a real agent.
fn remove_cgroups_root(root: &str) {
    let Ok(cgroups) = tepui_containerizer::cgroups::open(None) else {
        return;
    };
    if !cgroups.exists(root) || cgroups.processes(root).map_or(true, |p| !p.is_empty()) {
        return;
    }
    if let Err(e) = cgroups.destroy(root) {
        tracing::warn!(cgroup = root, "cgroups root left: {e}");
    }
}
