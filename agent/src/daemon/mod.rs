//! The agent daemon: one [`Agent`] shared by the HTTP handlers, the link to
//! the master, the status update forwarder and the executor watchers.
//!
//! Locking: `state` (a tokio mutex) is held only for bookkeeping and
//! checkpoint writes, never across a container launch, a wait or an HTTP
//! call.

mod disk;
mod executors;
mod fetch;
mod gc;
mod history;
mod link_loop;
mod pod_size;
mod recovery;
pub(crate) mod sandbox;
pub mod sessions;
pub mod state;
mod tasks;
mod teardown;
mod views;
pub(crate) mod volumes;
pub mod xfs;

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tepui_containerizer::{Containerizer, ContainerizerConfig};
use tepui_proto::resources::{Resources, parse_attributes};
use tepui_proto::v1::{AgentId, AgentInfo};
use tokio::sync::{Mutex, Notify};

use crate::checkpoint;
use crate::config::AgentConfig;
use crate::link::{HttpLink, MasterLink};
use crate::paths::WorkDir;
use state::State;

pub use executors::ExecutorApiError;
pub use views::{ExecutorDetails, Gauges};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Containerizer(#[from] tepui_containerizer::ContainerizerError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    #[error("cannot serve HTTP on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// `meta/agent.json`: who this agent is and what it registered with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentRecord {
    pub agent_id: Option<String>,
    pub resources: String,
    pub attributes: String,
}

pub struct Agent {
    pub config: AgentConfig,
    pub work: WorkDir,
    pub containerizer: Containerizer,
    pub(crate) info: std::sync::Mutex<AgentInfo>,
    pub(crate) state: Mutex<State>,
    pub(crate) link: Option<Arc<dyn MasterLink>>,
    /// Wakes the status update forwarder.
    pub(crate) updates_ready: Notify,
    pub(crate) started: Instant,
    pub(crate) started_unix: f64,
    pub(crate) metrics: Metrics,
    pub(crate) fetcher: tepui_fetcher::Fetcher,
    /// Cancelled on SIGTERM: long-lived streams (executor subscriptions)
    /// end so the HTTP server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Live LAUNCH_NESTED_CONTAINER_SESSION containers and their I/O.
    pub sessions: Arc<sessions::Sessions>,
    /// Checks `Authorization` headers (operators' credentials, JWTs,
    /// executor tokens).
    pub(crate) authenticator: tepui_proto::auth::Authenticator,
    /// Signs executor tokens; `None` when executors get none.
    pub(crate) executor_key: Option<Vec<u8>>,
    /// `disk/xfs`: sandboxes' project quotas.
    pub(crate) xfs: Option<xfs::XfsDisk>,
    /// Executors registered over libprocess (libmesos executor drivers).
    pub(crate) v0_executors: crate::http::libprocess::Executors,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub tasks_launched: std::sync::atomic::AtomicU64,
    pub executors_launched: std::sync::atomic::AtomicU64,
    pub updates_forwarded: std::sync::atomic::AtomicU64,
    pub registered: std::sync::atomic::AtomicBool,
    /// Tasks that reached each terminal state (by `TaskState` value):
    /// Mesos's `slave/tasks_finished`, `_failed`, `_killed`, `_lost`
    /// counters (src/slave/slave.cpp, `Slave::updateTaskState`... via
    /// `Executor::updateTaskState`).
    pub task_ends: std::sync::Mutex<std::collections::BTreeMap<i32, u64>>,
    pub executors_terminated: std::sync::atomic::AtomicU64,
    pub valid_status_updates: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Counts a task's move from `before` to `after` when it ends there.
    pub fn task_moved(
        &self,
        before: tepui_proto::v1::TaskState,
        after: tepui_proto::v1::TaskState,
    ) {
        use crate::status_updates::is_terminal;
        if is_terminal(after) && !is_terminal(before) {
            let mut ends = self.task_ends.lock().unwrap_or_else(|e| e.into_inner());
            *ends.entry(after as i32).or_default() += 1;
        }
    }

    pub fn task_ends(&self, state: tepui_proto::v1::TaskState) -> u64 {
        let ends = self.task_ends.lock().unwrap_or_else(|e| e.into_inner());
        ends.get(&(state as i32)).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("work_dir", &self.config.work_dir)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Opens the containerizer, works out the agent's resources and checks
    /// them against what it registered with before (additive changes only).
    pub fn new(config: AgentConfig) -> Result<Arc<Self>, AgentError> {
        let work = WorkDir::new(&config.work_dir);
        std::fs::create_dir_all(work.meta()).map_err(|e| {
            AgentError::Config(format!(
                "cannot create the work dir {}: {e}",
                config.work_dir.display()
            ))
        })?;
        // The work dir is the agent's: checkpoints (`meta/`) are root's
        // alone; others may only pass through to the sandboxes, each its
        // user's with mode 0750 (a task running as `nobody` must reach its
        // own sandbox by its absolute path, `MESOS_SANDBOX`).
        for (dir, mode) in [(config.work_dir.as_path(), 0o711), (&work.meta(), 0o700)] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                AgentError::Config(format!("cannot restrict {}: {e}", dir.display()))
            })?;
        }
        let resources = config.total_resources().map_err(AgentError::Config)?;
        let attributes_text = config.attributes.clone().unwrap_or_default();
        let attributes = parse_attributes(&attributes_text)
            .map_err(|e| AgentError::Config(format!("--attributes: {e}")))?;
        let resources_text = resources.to_string();

        let previous: Option<AgentRecord> = checkpoint::read_json(&work.agent_file())?;
        let agent_id = match &previous {
            Some(record) => {
                check_reconfiguration(record, &resources, &attributes_text, &config.default_role)?;
                record.agent_id.clone()
            }
            None => None,
        };
        checkpoint::write_json(
            &work.agent_file(),
            &AgentRecord {
                agent_id: agent_id.clone(),
                resources: resources_text,
                attributes: attributes_text,
            },
        )?;

        // Before anything is set up on the host: a work dir disk/xfs cannot
        // use stops the agent here (`XfsDiskIsolatorProcess::create`).
        let xfs = if disk::isolation_has(&config.isolation, "disk/xfs") {
            Some(
                xfs::XfsDisk::new(
                    Box::new(xfs::Kernel),
                    work.root(),
                    &config.xfs_project_range,
                    config.enforce_container_disk_quota,
                )
                .map_err(|e| AgentError::Config(format!("--isolation=disk/xfs: {e}")))?,
            )
        } else {
            None
        };
        let mut cz = ContainerizerConfig::new(&config.runtime_dir);
        cz.cgroups_root = config.cgroups_root.clone();
        cz.cgroup_mode = config.cgroup_mode;
        cz.systemd_scopes = config.cgroups_systemd;
        cz.limit_swap = config.limit_swap;
        cz.container_pids_limit = config.container_pids_limit;
        cz.supervisor_binary = config.tepui_binary.clone();
        cz.log = config.log;
        cz.images = images_config(&config, &work)?;
        // A task without an image sees the host's filesystem (as in Mesos),
        // but not the agent's: other tenants' sandboxes, `meta/`, the
        // operator credential and cached downloads are hidden in its mount
        // namespace (the containerizer adds its runtime dir and image store).
        cz.hidden_host_dirs = std::iter::once(work.root().to_path_buf())
            .chain(config.fetcher_cache_dir.iter().cloned())
            .chain(config.hidden_host_dirs.iter().cloned())
            .collect();
        cz.hidden_host_files = config.hidden_host_files.clone();
        cz.cni = config.cni.clone();
        let containerizer = Containerizer::new(cz)?;
        // What the host made of the cgroup flags, beside them in /flags.
        let mut config = config;
        config.flags.push((
            "cgroups_layout".to_string(),
            containerizer.cgroup_layout().describe(),
        ));
        for (flag, wanted, enforced, why) in [
            (
                "cgroups_limit_swap",
                config.limit_swap,
                containerizer.limits_swap(),
                "no swap accounting in this kernel",
            ),
            (
                "container_pids_limit",
                config.container_pids_limit.is_some(),
                containerizer.limits_pids(),
                "no pids cgroup controller",
            ),
        ] {
            if wanted && !enforced {
                config
                    .flags
                    .push((format!("{flag}_degraded"), format!("not enforced: {why}")));
            }
        }

        let hostname = config
            .hostname
            .clone()
            .or_else(|| {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
            })
            .unwrap_or_else(|| config.ip.to_string());
        let info = AgentInfo {
            hostname,
            port: Some(i32::from(config.port)),
            resources: resources.iter().cloned().collect(),
            attributes: attributes.iter().cloned().collect(),
            id: agent_id.map(|value| AgentId { value }),
            ..Default::default()
        };
        let link: Option<Arc<dyn MasterLink>> = match &config.master {
            Some(master) => Some(Arc::new(
                HttpLink::with_tls(master, &config.tls)?
                    .with_credential(config.auth.credential.as_ref()),
            )),
            None => None,
        };
        let fetcher = tepui_fetcher::Fetcher::new(tepui_fetcher::FetcherConfig {
            cache_dir: config.fetcher_cache_dir.clone(),
            cache_size_bytes: config.fetcher_cache_size_bytes,
            stall_timeout: config.fetcher_stall_timeout,
            frameworks_home: config.frameworks_home.clone(),
            ..Default::default()
        })
        .map_err(|e| AgentError::Config(format!("fetcher: {e}")))?;
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let executor_key = executor_key(&config)?;
        let mut authenticator = config.auth.authenticator.clone();
        authenticator.jwt_keys.extend(executor_key.iter().cloned());
        Ok(Arc::new(Self {
            authenticator,
            executor_key,
            xfs,
            v0_executors: Default::default(),
            config,
            work,
            containerizer,
            info: std::sync::Mutex::new(info),
            state: Mutex::new(State::default()),
            link,
            updates_ready: Notify::new(),
            started: Instant::now(),
            started_unix,
            metrics: Metrics::default(),
            fetcher,
            shutdown: tokio_util::sync::CancellationToken::new(),
            sessions: Arc::new(sessions::Sessions::default()),
        }))
    }

    pub fn agent_info(&self) -> AgentInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The agent id: the master's, or in standalone mode one of our own.
    pub fn agent_id(&self) -> String {
        let mut info = self.info.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = &info.id {
            return id.value.clone();
        }
        let id = format!("{}-S0", uuid::Uuid::new_v4());
        info.id = Some(AgentId { value: id.clone() });
        id
    }

    fn set_agent_id(&self, id: &AgentId) -> Result<(), AgentError> {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).id = Some(id.clone());
        let mut record: AgentRecord =
            checkpoint::read_json(&self.work.agent_file())?.unwrap_or(AgentRecord {
                agent_id: None,
                resources: String::new(),
                attributes: String::new(),
            });
        record.agent_id = Some(id.value.clone());
        checkpoint::write_json(&self.work.agent_file(), &record)?;
        Ok(())
    }

    /// `ip:port` executors reach the agent at (they share the host's
    /// network; a wildcard listen address is reached on loopback).
    pub fn endpoint(&self) -> String {
        let ip = if self.config.ip.is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            self.config.ip
        };
        std::net::SocketAddr::new(ip, self.config.port).to_string()
    }

    /// Recovers, then runs the background loops. Returns at once.
    pub async fn start(self: &Arc<Self>) -> Result<(), AgentError> {
        if self.link.is_none() {
            // Standalone: our own id, so sandboxes and /state have one.
            let id = self.agent_id();
            if let Some(id) = self.agent_info().id {
                self.set_agent_id(&id)?;
            }
            tracing::info!(agent_id = %id, "running standalone (no --master)");
        }
        self.recover().await?;
        self.recover_disk_projects().await;
        let agent = self.clone();
        tokio::spawn(async move { agent.forward_updates().await });
        self.start_disk_watch();
        if let Some(link) = self.link.clone() {
            let agent = self.clone();
            tokio::spawn(async move { agent.link_loop(link).await });
        }
        Ok(())
    }
}

/// The image store under the work dir, unless `--image_providers` leaves
/// out docker.
fn images_config(
    config: &AgentConfig,
    work: &WorkDir,
) -> Result<Option<tepui_containerizer::ImagesConfig>, AgentError> {
    if let Some(providers) = &config.image_providers {
        let providers: Vec<String> = providers
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        if let Some(bad) = providers
            .iter()
            .find(|p| p.as_str() != "docker" && !p.is_empty())
        {
            return Err(AgentError::Config(format!(
                "--image_providers: '{bad}' is not supported (only 'docker')"
            )));
        }
        if !providers.iter().any(|p| p == "docker") {
            return Ok(None);
        }
    }
    let mut registry = tepui_fetcher::registry::RegistryConfig {
        http_hosts: config.docker_insecure_registries.clone(),
        ca_bundle: config.docker_registry_ca_file.clone(),
        ..Default::default()
    };
    if let Some(default) = &config.docker_registry {
        registry.default_registry = if default.contains("://") {
            default.clone()
        } else {
            format!("https://{default}")
        };
        if let Some(host) = default.strip_prefix("http://") {
            registry
                .http_hosts
                .push(host.trim_end_matches('/').to_string());
        }
    }
    if let Some(docker_config) = &config.docker_config {
        // Mesos takes the JSON itself (or file:// that the flag parser read).
        let path = work.meta().join("docker-config.json");
        checkpoint::write_bytes(&path, docker_config.as_bytes())?;
        registry.docker_config = Some(path);
    }
    Ok(Some(tepui_containerizer::ImagesConfig {
        store_dir: work.root().join("images"),
        registry,
        gc_max_bytes: config.image_gc_max_bytes,
    }))
}

/// Refuses `--resources`/`--attributes` that shrank since the agent last
/// registered: tasks may use what is gone. Growth is fine (Mesos's
/// `--reconfiguration_policy=additive`).
fn check_reconfiguration(
    previous: &AgentRecord,
    resources: &Resources,
    attributes: &str,
    default_role: &str,
) -> Result<(), AgentError> {
    if previous.resources.is_empty() {
        return Ok(());
    }
    let before = tepui_proto::resources::parse_resources(&previous.resources, default_role)
        .map_err(|e| {
            AgentError::Config(format!("the checkpointed resources are unreadable: {e}"))
        })?;
    if !resources.contains(&before) {
        let lost = before.clone() - resources.clone();
        return Err(AgentError::Config(format!(
            "--resources changed incompatibly since this agent registered: it had '{}', now '{}'; no longer available: '{}'. Only additions are accepted; restore them, or remove {} to start as a new agent",
            previous.resources,
            resources,
            lost,
            Path::new("meta").join("agent.json").display()
        )));
    }
    let old: std::collections::BTreeSet<&str> = previous
        .attributes
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let new: std::collections::BTreeSet<&str> = attributes
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let removed: Vec<&str> = old.difference(&new).copied().collect();
    if !removed.is_empty() {
        return Err(AgentError::Config(format!(
            "--attributes changed incompatibly since this agent registered: '{}' removed or changed (had '{}', now '{}'); only additions are accepted",
            removed.join(";"),
            previous.attributes,
            attributes
        )));
    }
    Ok(())
}

/// The executor token key: `--executor_secret_key`, or (with
/// authentication on) one generated once and kept in the work dir so the
/// tokens of executors recovered after a restart stay valid.
fn executor_key(config: &AgentConfig) -> Result<Option<Vec<u8>>, AgentError> {
    let auth = &config.auth;
    if let Some(key) = &auth.executor_secret_key {
        return Ok(Some(key.clone()));
    }
    if !(auth.authenticate_http_executors
        || auth.authenticate_http_readwrite
        || auth.authenticate_http_readonly)
    {
        return Ok(None);
    }
    let path = config.work_dir.join("executor_secret_key");
    if let Ok(key) = std::fs::read(&path)
        && !key.is_empty()
    {
        return Ok(Some(key));
    }
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
    .into_bytes();
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&config.work_dir)?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(resources: &str, attributes: &str) -> AgentRecord {
        AgentRecord {
            agent_id: Some("a".into()),
            resources: resources.into(),
            attributes: attributes.into(),
        }
    }

    fn res(text: &str) -> Resources {
        tepui_proto::resources::parse_resources(text, "*").unwrap()
    }

    #[test]
    fn additive_changes_are_accepted() {
        check_reconfiguration(
            &record("cpus:2;mem:1024", "rack:a"),
            &res("cpus:4;mem:1024;gpus:1"),
            "rack:a;zone:z",
            "*",
        )
        .unwrap();
    }

    #[test]
    fn shrinking_names_exactly_what_went() {
        let err = check_reconfiguration(
            &record("cpus:4;mem:1024", ""),
            &res("cpus:2;mem:1024"),
            "",
            "*",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no longer available: 'cpus:2'"), "{err}");
        let err = check_reconfiguration(
            &record("cpus:4", "rack:a;zone:z"),
            &res("cpus:4"),
            "rack:b;zone:z",
            "*",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("'rack:a' removed or changed"), "{err}");
    }
}
