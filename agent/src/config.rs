//! The agent's configuration, as the binary's flag parser hands it over,
//! and the host facts Mesos derives defaults from (resource auto-detection).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tepui_containerizer::cgroups::CgroupMode;
use tepui_containerizer::supervisor::logs::LogPolicy;
use tepui_proto::resources::{Resources, parse_resources_flag};

/// `--recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    /// Reconnect to running executors (Mesos's default).
    Reconnect,
    /// Kill every executor found and start clean.
    Cleanup,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `--master`: `host:port` or `http://host:port`; `None` runs standalone.
    pub master: Option<String>,
    pub work_dir: PathBuf,
    pub runtime_dir: PathBuf,
    /// `--resources` (already expanded from `file://`), `None` = detect.
    pub resources: Option<String>,
    pub attributes: Option<String>,
    pub ip: IpAddr,
    pub port: u16,
    pub hostname: Option<String>,
    pub isolation: String,
    pub cgroups_root: String,
    pub cgroup_mode: Option<CgroupMode>,
    /// `--cgroups_systemd`: one delegated systemd scope per pod on v2 hosts
    /// with systemd (`tepui_containerizer::cgroups::layout`).
    pub cgroups_systemd: bool,
    /// `--cgroups_limit_swap` (default on here, unlike Mesos).
    pub limit_swap: bool,
    /// `--container_pids_limit` (`None`: unlimited).
    pub container_pids_limit: Option<u64>,
    pub executor_registration_timeout: Duration,
    pub executor_reregistration_timeout: Duration,
    pub executor_shutdown_grace_period: Duration,
    pub recover: RecoverMode,
    pub strict: bool,
    pub default_role: String,
    pub image_providers: Option<String>,
    pub docker_registry: Option<String>,
    pub docker_config: Option<String>,
    /// Registries (`host:port`) reached over plain http (tepui's
    /// `--docker_insecure_registries`; Mesos has no equivalent).
    pub docker_insecure_registries: Vec<String>,
    pub fetcher_cache_dir: Option<PathBuf>,
    pub fetcher_cache_size_bytes: u64,
    /// `--image_gc_max_size`: the image store's size limit (unpacked
    /// layers), enforced after each pull; `None`: no limit.
    pub image_gc_max_bytes: Option<u64>,
    pub fetcher_stall_timeout: Duration,
    /// `--network_cni_*`: container networks; `None` = none.
    pub cni: Option<tepui_containerizer::cni::CniConfig>,
    pub frameworks_home: Option<PathBuf>,
    pub log: LogPolicy,
    /// The binary built-in executors and supervisors run from.
    pub tepui_binary: PathBuf,
    /// How often executors' and masters' streams get a heartbeat.
    pub heartbeat_interval: Duration,
    /// Flags as given, for GET_FLAGS and `/flags`.
    pub flags: Vec<(String, String)>,
    /// `--gc_delay`: how long a finished run's sandbox is kept.
    pub gc_delay: Duration,
    /// `--switch_user` (Mesos's default true): tasks run as their user
    /// (`command.user`, else `FrameworkInfo.user`); false: as the agent's.
    pub switch_user: bool,
    /// `--trust_remote_operators` (default false): an unauthenticated
    /// caller from another host is an operator, as in Mesos without
    /// `--authenticate_http_*`. Off, it may read (state, metrics, files)
    /// but not control containers or speak for executors: it could be
    /// another host's task.
    pub trust_remote_operators: bool,
    /// `--enforce_container_disk_quota` (Mesos's default false): a pod
    /// whose sandbox outgrows its `disk` is killed.
    pub enforce_container_disk_quota: bool,
    /// `--xfs_project_range` (Mesos's default `[5000-10000]`), for
    /// `--isolation=...,disk/xfs`.
    pub xfs_project_range: String,
    /// `--container_disk_watch_interval` (Mesos's default 15secs).
    pub container_disk_watch_interval: Duration,
    /// Authentication and authorization (all off by default).
    pub auth: AgentAuth,
    /// `--ssl_*` / `LIBPROCESS_SSL_*`: HTTPS for the agent's server, its
    /// link to the master and its executors.
    pub tls: tepui_proto::tls::TlsSettings,
    /// Limits on HTTP clients: connections, request heads, bodies.
    pub http_limits: tepui_proto::server::Limits,
    /// Destroy every pod when the agent stops instead of leaving them for
    /// the next agent to recover (`tepui dev`: nothing recovers its work dir).
    pub destroy_pods_on_shutdown: bool,
    /// `--docker_registry_ca_file`: extra CA certificates (PEM) trusted for
    /// https registries, on top of the system's.
    pub docker_registry_ca_file: Option<PathBuf>,
    /// More host dirs tasks without an image must not see, besides the
    /// work dir, runtime dir, image store and fetcher cache (`tepui dev`:
    /// its whole temporary dir, the master's registry too).
    pub hidden_host_dirs: Vec<PathBuf>,
    /// Secret files named by flags (`--credentials`, `--jwt_secret_key`,
    /// `--executor_secret_key`, `--credential`): hidden from tasks without
    /// an image too.
    pub hidden_host_files: Vec<PathBuf>,
}

/// `--authenticate_http_*`, `--credentials`, `--jwt_secret_key`, `--acls`,
/// `--executor_secret_key` and `--credential`.
#[derive(Debug, Clone, Default)]
pub struct AgentAuth {
    pub authenticate_http_readonly: bool,
    pub authenticate_http_readwrite: bool,
    pub authenticate_http_executors: bool,
    /// Operators' credentials and the JWT keys (`--jwt_secret_key`).
    pub authenticator: tepui_proto::auth::Authenticator,
    pub acls: tepui_proto::auth::Acls,
    /// The key executor tokens are signed with; `None`: generated (and
    /// kept in the work dir) when authentication is on.
    pub executor_secret_key: Option<Vec<u8>>,
    /// What the agent authenticates to the master with.
    pub credential: Option<tepui_proto::auth::Credential>,
}

impl AgentConfig {
    /// Defaults as Mesos has them, for a work dir and runtime dir.
    pub fn new(work_dir: impl Into<PathBuf>, runtime_dir: impl Into<PathBuf>) -> Self {
        Self {
            master: None,
            work_dir: work_dir.into(),
            runtime_dir: runtime_dir.into(),
            resources: None,
            attributes: None,
            ip: IpAddr::from([127, 0, 0, 1]),
            port: 5051,
            hostname: None,
            isolation: "cgroups/cpu,cgroups/mem".to_string(),
            cgroups_root: "tepui".to_string(),
            cgroups_systemd: true,
            limit_swap: true,
            container_pids_limit: Some(
                tepui_containerizer::containerizer::DEFAULT_CONTAINER_PIDS_LIMIT,
            ),
            cgroup_mode: None,
            executor_registration_timeout: Duration::from_secs(60),
            executor_reregistration_timeout: Duration::from_secs(2),
            executor_shutdown_grace_period: Duration::from_secs(5),
            recover: RecoverMode::Reconnect,
            strict: true,
            default_role: "*".to_string(),
            image_providers: None,
            docker_registry: None,
            docker_config: None,
            docker_insecure_registries: Vec::new(),
            fetcher_cache_dir: None,
            fetcher_cache_size_bytes: 2 << 30,
            image_gc_max_bytes: None,
            fetcher_stall_timeout: Duration::from_secs(60),
            cni: None,
            frameworks_home: None,
            log: LogPolicy::default(),
            tepui_binary: PathBuf::from("/proc/self/exe"),
            heartbeat_interval: Duration::from_secs(15),
            flags: Vec::new(),
            gc_delay: Duration::from_secs(7 * 24 * 3600),
            switch_user: true,
            trust_remote_operators: false,
            enforce_container_disk_quota: false,
            xfs_project_range: "[5000-10000]".to_string(),
            container_disk_watch_interval: Duration::from_secs(15),
            auth: AgentAuth::default(),
            tls: Default::default(),
            http_limits: tepui_proto::server::Limits::default(),
            destroy_pods_on_shutdown: false,
            docker_registry_ca_file: None,
            hidden_host_dirs: Vec::new(),
            hidden_host_files: Vec::new(),
        }
    }

    /// The agent's total resources: `--resources` plus whatever it leaves
    /// out detected as Mesos does (cpus; mem = total - 1 GB; disk = total -
    /// 5 GB, each at least half the total; ports [31000-32000]).
    pub fn total_resources(&self) -> Result<Resources, String> {
        let given = match &self.resources {
            Some(flag) => parse_resources_flag(flag, &self.default_role)
                .map_err(|e| format!("--resources: {e}"))?,
            None => Resources::default(),
        };
        let has = |name: &str| given.iter().any(|r| r.name == name);
        let mut extra = Vec::new();
        if !has("cpus") {
            extra.push(format!("cpus:{}", detect_cpus()));
        }
        if !has("mem") {
            extra.push(format!("mem:{}", detect_mem_mb()));
        }
        if !has("disk") {
            extra.push(format!("disk:{}", detect_disk_mb(&self.work_dir)));
        }
        if !has("ports") {
            extra.push("ports:[31000-32000]".to_string());
        }
        if extra.is_empty() {
            return Ok(given);
        }
        let detected = parse_resources_flag(&extra.join(";"), &self.default_role)
            .map_err(|e| format!("detected resources: {e}"))?;
        Ok(given + detected)
    }
}

fn detect_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

const GB_MB: u64 = 1024;

/// Mesos: total memory minus 1 GB, or half of it on small hosts.
fn detect_mem_mb() -> u64 {
    let total_mb = tepui_containerizer::cgroups::host_total_memory_bytes(std::path::Path::new(
        "/proc/meminfo",
    ))
    .map(|b| b >> 20)
    .unwrap_or(0);
    if total_mb >= 2 * GB_MB {
        total_mb - GB_MB
    } else {
        total_mb / 2
    }
}

/// Mesos: the work dir's filesystem minus 5 GB, or half of it when small.
fn detect_disk_mb(work_dir: &std::path::Path) -> u64 {
    let probe = work_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    let total_mb = nix::sys::statvfs::statvfs(probe)
        .map(|s| (s.blocks() * s.fragment_size()) >> 20)
        .unwrap_or(0);
    if total_mb >= 10 * GB_MB {
        total_mb - 5 * GB_MB
    } else {
        total_mb / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_resources_are_detected_and_given_ones_kept() {
        let mut config = AgentConfig::new("/tmp", "/run/tepui");
        config.resources = Some("cpus:3;gpus:1".into());
        let total = config.total_resources().unwrap();
        assert_eq!(total.cpus(), Some(3.0));
        assert!(total.mem().unwrap_or(0.0) > 0.0);
        assert!(total.iter().any(|r| r.name == "ports"));
        assert!(total.iter().any(|r| r.name == "gpus"));
    }

    #[test]
    fn bad_resources_name_the_flag() {
        let mut config = AgentConfig::new("/tmp", "/run/tepui");
        config.resources = Some("cpus:lots".into());
        assert!(
            config
                .total_resources()
                .unwrap_err()
                .starts_with("--resources")
        );
    }
}
