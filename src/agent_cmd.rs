//! `tepui agent` and the built-in executors: flags into `AgentConfig`, then
//! run until SIGTERM/SIGINT. Containers and supervisors outlive the agent.

use anyhow::{Context, bail};
use tepui_agent::{AgentConfig, RecoverMode};
use tepui_containerizer::cgroups::CgroupMode;
use tepui_proto::duration::parse_duration;

use crate::cli::{AgentArgs, CgroupsFlag, ExitStatus, ImageArgs, NetworkCniArgs, RecoverFlag};

/// Mesos reads any flag value `file:///path` from that file.
pub(crate) fn from_file(flag: &str, value: Option<String>) -> anyhow::Result<Option<String>> {
    match value {
        Some(v) if v.starts_with("file://") && flag != "resources" => {
            let path = &v["file://".len()..];
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--{flag}: cannot read {path}"))?;
            Ok(Some(text.trim().to_string()))
        }
        other => Ok(other),
    }
}

pub(crate) fn duration(flag: &str, value: &str) -> anyhow::Result<std::time::Duration> {
    parse_duration(value).with_context(|| format!("--{flag}"))
}

/// `1024`, `512MB`, `2GB` (Mesos's Bytes syntax: B, KB, MB, GB, TB).
pub(crate) fn bytes(flag: &str, value: &str) -> anyhow::Result<u64> {
    let text = value.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .trim()
        .parse()
        .with_context(|| format!("--{flag}: '{value}' is not a size like 512MB"))?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => bail!("--{flag}: unknown unit '{unit}' in '{value}' (B, KB, MB, GB, TB)"),
    };
    Ok(number.saturating_mul(scale))
}

/// The CNI flags `tepui agent` and `tepui dev` share. Both dirs or none,
/// as Mesos's `NetworkCniIsolatorProcess::create` requires.
pub(crate) fn apply_cni_flags(
    config: &mut AgentConfig,
    args: NetworkCniArgs,
) -> anyhow::Result<()> {
    let timeout = duration(
        "network_cni_plugin_timeout",
        &args.network_cni_plugin_timeout,
    )?;
    let (config_dir, plugins_dir) = match (
        args.network_cni_config_dir,
        args.network_cni_plugins_dir,
    ) {
        (None, None) => return Ok(()),
        (Some(c), Some(p)) => (c, p),
        _ => bail!(
            "--network_cni_config_dir and --network_cni_plugins_dir go together (one without the other configures no network)"
        ),
    };
    std::fs::read_dir(&config_dir).with_context(|| {
        format!(
            "--network_cni_config_dir: cannot read {}",
            config_dir.display()
        )
    })?;
    let root_dir = if args.network_cni_root_dir_persist {
        config.work_dir.join("cni")
    } else {
        config.runtime_dir.join("cni")
    };
    config.cni = Some(tepui_containerizer::cni::CniConfig {
        config_dir,
        plugins_dir,
        root_dir,
        plugin_timeout: timeout,
    });
    Ok(())
}

/// The image flags `tepui agent` and `tepui dev` share.
pub(crate) fn apply_image_flags(config: &mut AgentConfig, args: ImageArgs) -> anyhow::Result<()> {
    config.image_providers = args.image_providers;
    config.docker_registry = args.docker_registry;
    config.docker_config = from_file("docker_config", args.docker_config)?;
    config.docker_insecure_registries = args.docker_insecure_registries;
    if let Some(path) = &args.docker_registry_ca_file {
        // Checked now: a bad file would otherwise only show in the first pull.
        std::fs::metadata(path)
            .with_context(|| format!("--docker_registry_ca_file: {}", path.display()))?;
    }
    config.docker_registry_ca_file = args.docker_registry_ca_file;
    Ok(())
}

pub fn config(args: AgentArgs) -> anyhow::Result<AgentConfig> {
    let mut config = AgentConfig::new(&args.work_dir, &args.runtime_dir);
    let mut flags = vec![
        ("work_dir".to_string(), args.work_dir.display().to_string()),
        (
            "runtime_dir".to_string(),
            args.runtime_dir.display().to_string(),
        ),
        ("port".to_string(), args.port.to_string()),
        ("ip".to_string(), args.ip.to_string()),
        ("cgroups_root".to_string(), args.cgroups_root.clone()),
        ("isolation".to_string(), args.isolation.clone()),
        (
            "cgroups_systemd".to_string(),
            args.cgroups_systemd.to_string(),
        ),
        (
            "cgroups_limit_swap".to_string(),
            args.cgroups_limit_swap.to_string(),
        ),
        (
            "container_pids_limit".to_string(),
            args.container_pids_limit.to_string(),
        ),
    ];
    config.master = from_file("master", args.master)?;
    config.resources = args.resources;
    config.attributes = from_file("attributes", args.attributes)?;
    for (name, value) in [
        ("master", &config.master),
        ("resources", &config.resources),
        ("attributes", &config.attributes),
    ] {
        if let Some(v) = value {
            flags.push((name.to_string(), v.clone()));
        }
    }
    config.ip = args.ip;
    config.port = args.port;
    config.hostname = args.hostname;
    config.isolation = args.isolation;
    config.cgroups_root = args.cgroups_root;
    config.cgroups_systemd = args.cgroups_systemd;
    config.limit_swap = args.cgroups_limit_swap;
    config.container_pids_limit = Some(args.container_pids_limit).filter(|p| *p > 0);
    config.cgroup_mode = args.cgroups_mode.map(|m| match m {
        CgroupsFlag::V1 => CgroupMode::V1,
        CgroupsFlag::V2 => CgroupMode::V2,
    });
    config.executor_registration_timeout = duration(
        "executor_registration_timeout",
        &args.executor_registration_timeout,
    )?;
    config.executor_reregistration_timeout = duration(
        "executor_reregistration_timeout",
        &args.executor_reregistration_timeout,
    )?;
    config.executor_shutdown_grace_period = duration(
        "executor_shutdown_grace_period",
        &args.executor_shutdown_grace_period,
    )?;
    config.recover = match args.recover {
        RecoverFlag::Reconnect => RecoverMode::Reconnect,
        RecoverFlag::Cleanup => RecoverMode::Cleanup,
    };
    config.strict = args.strict;
    config.default_role = args.default_role;
    apply_image_flags(&mut config, args.images)?;
    apply_cni_flags(&mut config, args.network_cni)?;
    config.fetcher_cache_dir = args.fetcher_cache_dir;
    config.fetcher_cache_size_bytes = bytes("fetcher_cache_size", &args.fetcher_cache_size)?;
    config.image_gc_max_bytes = args
        .image_gc_max_size
        .as_deref()
        .map(|s| bytes("image_gc_max_size", s))
        .transpose()?;
    config.fetcher_stall_timeout = duration("fetcher_stall_timeout", &args.fetcher_stall_timeout)?;
    config.frameworks_home = args.frameworks_home;
    config.log.max_bytes = bytes("container_logs_max_size", &args.container_logs_max_size)?;
    config.log.keep = args.container_logs_max_files;
    config.gc_delay = duration("gc_delay", &args.gc_delay)?;
    config.switch_user = args.switch_user && !args.no_switch_user;
    config.trust_remote_operators = args.trust_remote_operators;
    config.enforce_container_disk_quota = args.enforce_container_disk_quota;
    config.xfs_project_range = args.xfs_project_range.clone();
    config.container_disk_watch_interval = duration(
        "container_disk_watch_interval",
        &args.container_disk_watch_interval,
    )?;
    config.auth = tepui_agent::config::AgentAuth {
        authenticate_http_readonly: args.auth.authenticate_http_readonly,
        authenticate_http_readwrite: args.auth.authenticate_http_readwrite,
        authenticate_http_executors: args.authenticate_http_executors,
        authenticator: args.auth.authenticator()?,
        acls: args.auth.acls()?,
        executor_secret_key: args
            .executor_secret_key
            .as_deref()
            .map(|p| crate::auth_flags::read_key("executor_secret_key", p))
            .transpose()?,
        credential: args
            .credential
            .as_deref()
            .map(|p| crate::auth_flags::read_credential("credential", p))
            .transpose()?,
    };
    // The agent's secrets, wherever the operator keeps them: a task on the
    // host's filesystem running as root must not read them (with the
    // executor key it could mint any executor's token).
    config.hidden_host_files = [
        &args.auth.credentials,
        &args.auth.jwt_secret_key,
        &args.executor_secret_key,
        &args.credential,
    ]
    .into_iter()
    .flatten()
    .map(|p| std::path::PathBuf::from(p.strip_prefix("file://").unwrap_or(p)))
    .filter_map(|p| std::path::absolute(&p).ok()?.canonicalize().ok())
    .collect();
    if config.auth.authenticate_http_readonly
        || config.auth.authenticate_http_readwrite
        || config.auth.authenticate_http_executors
    {
        // The host operator's own credential (the CLI reads it): no set-up.
        let own = tepui_agent::operator_credential::ensure(&args.work_dir)
            .context("the operator credential")?;
        config.auth.authenticator.credentials.push(own);
    }
    config.tls = args.tls.settings()?;
    config.http_limits = args.http.limits()?;
    config.tepui_binary =
        std::env::current_exe().context("cannot find the tepui binary for executors")?;
    config.flags = crate::daemon_flags::complete(flags);
    Ok(config)
}

pub fn run_agent(args: AgentArgs) -> anyhow::Result<ExitStatus> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        tepui_agent::run(config, shutdown_signal()).await?;
        tracing::info!("agent stopped; containers keep running");
        Ok(ExitStatus::Success)
    })
}

/// SIGTERM or SIGINT: stop serving, leave containers running.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("asked to stop");
}

pub fn run_executor(default: bool) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        if default {
            tepui_agent::executors::default_executor().await?;
        } else {
            tepui_agent::executors::command_executor().await?;
        }
        Ok(ExitStatus::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_mesos_units() {
        assert_eq!(bytes("x", "2GB").unwrap(), 2 << 30);
        assert_eq!(bytes("x", "512MB").unwrap(), 512 << 20);
        assert_eq!(bytes("x", "100").unwrap(), 100);
        let err = bytes("fetcher_cache_size", "2PB").unwrap_err().to_string();
        assert!(err.contains("--fetcher_cache_size"), "{err}");
    }
}
