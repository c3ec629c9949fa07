//! The master's configuration, built by `tepui master` from Mesos-named flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::allocator::Quantities;

#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Where to listen; port 0 picks a free one (tests).
    pub listen: SocketAddr,
    pub hostname: Option<String>,
    /// Registry location; `None` keeps the registry in memory only.
    pub work_dir: Option<PathBuf>,
    pub allocation_interval: Duration,
    /// Offers older than this are rescinded; `None` never.
    pub offer_timeout: Option<Duration>,
    pub min_allocatable_resources: Vec<Quantities>,
    pub max_offers_per_framework: usize,
    /// Heartbeats to schedulers on their SUBSCRIBE stream.
    pub scheduler_heartbeat: Duration,
    /// Heartbeats to agents; an agent gone for `agent_ping_timeout *
    /// max_agent_ping_timeouts` is unreachable.
    pub agent_ping_timeout: Duration,
    pub max_agent_ping_timeouts: u32,
    /// After a master restart, agents in the registry that do not come back
    /// within this are unreachable.
    pub agent_reregister_timeout: Duration,
    /// Cap on frameworks' `failover_timeout`.
    pub max_framework_failover_timeout: Option<Duration>,
    /// Static weights (`--weights=a=2,b=3`).
    pub weights: Vec<(String, f64)>,
    /// Allowed roles (`--roles`); empty allows any.
    pub roles: Vec<String>,
    /// Every flag with its effective value (given or default), for
    /// GET_FLAGS and /flags.
    pub flags: Vec<(String, String)>,
    /// `--zk=zk://host:port/path`: highly available masters; the leader is
    /// elected in ZooKeeper and the registry lives there.
    pub zk: Option<String>,
    /// `--zk_session_timeout`: a leader that cannot keep its session this
    /// long steps down.
    pub zk_session_timeout: Duration,
    /// `--quorum`: accepted for Mesos compatibility (the registry is one
    /// ZooKeeper znode, so ZooKeeper's own quorum applies).
    pub quorum: Option<u32>,
    /// Authentication and authorization (all off by default).
    pub auth: AuthConfig,
    /// `--ssl_*` / `LIBPROCESS_SSL_*`: with a certificate the master serves HTTPS only.
    pub tls: tepui_proto::tls::TlsSettings,
    /// Limits on HTTP clients: connections, request heads, bodies.
    pub http_limits: tepui_proto::server::Limits,
    /// Events queued for one scheduler or operator SUBSCRIBE stream at
    /// most; a subscriber further behind is dropped.
    pub subscriber_queue: usize,
    /// `--webui_dir`: a folder whose `index.html`, `app/` and `assets/`
    /// the master serves at `/`, `/app` and `/assets`, as Mesos serves its
    /// web UI (point it at apache/mesos `src/webui`).
    pub webui_dir: Option<PathBuf>,
}

/// `--authenticate_*`, `--credentials`, `--jwt_secret_key`, `--acls`.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub authenticate_frameworks: bool,
    pub authenticate_agents: bool,
    pub authenticate_http_readonly: bool,
    pub authenticate_http_readwrite: bool,
    pub authenticator: tepui_proto::auth::Authenticator,
    pub acls: tepui_proto::auth::Acls,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5050)),
            hostname: None,
            work_dir: None,
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            min_allocatable_resources: crate::allocator::AllocatorConfig::default().min_allocatable,
            max_offers_per_framework: 10_000,
            scheduler_heartbeat: Duration::from_secs(15),
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            max_framework_failover_timeout: None,
            weights: Vec::new(),
            roles: Vec::new(),
            flags: Vec::new(),
            zk: None,
            zk_session_timeout: Duration::from_secs(10),
            quorum: None,
            auth: AuthConfig::default(),
            tls: tepui_proto::tls::TlsSettings::default(),
            http_limits: tepui_proto::server::Limits::default(),
            subscriber_queue: crate::queue::SUBSCRIBER_QUEUE,
            webui_dir: None,
        }
    }
}

impl MasterConfig {
    pub fn agent_timeout(&self) -> Duration {
        self.agent_ping_timeout * self.max_agent_ping_timeouts.max(1)
    }
}

/// Parses Mesos durations: `1secs`, `500ms`, `2mins`, `1hrs`, `3days`, or
/// bare seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" | "secs" | "sec" => value,
        "ns" => value / 1e9,
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "mins" | "min" | "m" => value * 60.0,
        "hrs" | "hr" | "h" => value * 3600.0,
        "days" | "day" | "d" => value * 86400.0,
        "weeks" | "week" | "w" => value * 604_800.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Parses `--min_allocatable_resources`: `cpus:0.01|mem:32`.
pub fn parse_min_allocatable(text: &str) -> Option<Vec<Quantities>> {
    text.split('|').map(Quantities::parse).collect()
}

/// Parses `--weights`: `role1=2,role2=3.5`.
pub fn parse_weights(text: &str) -> Option<Vec<(String, f64)>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (role, weight) = p.split_once('=')?;
            let weight: f64 = weight.trim().parse().ok()?;
            (weight > 0.0).then(|| (role.trim().to_string(), weight))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_lists() {
        assert_eq!(parse_duration("1secs"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2mins"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(
            parse_min_allocatable("cpus:0.01|mem:32").map(|v| v.len()),
            Some(2)
        );
        assert_eq!(
            parse_weights("a=2,b/c=0.5"),
            Some(vec![("a".into(), 2.0), ("b/c".into(), 0.5)])
        );
        assert_eq!(parse_weights("a=0"), None);
    }
}
