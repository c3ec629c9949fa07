//! The `tepui` command tree (DESIGN.md section 1). Daemon flags keep Mesos's
//! names (`--work_dir`), so existing agent and master configurations work.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes of every `tepui` command, documented in README.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// The command ran and failed (the message says why).
    Failure = 1,
    /// A usage error (clap's own exit code for bad arguments).
    Usage = 2,
}

/// A usage error found after parsing (an option that cannot apply): exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tepui",
    version,
    about = "A Mesos-compatible cluster agent and compact master"
)]
pub struct Cli {
    /// Log filter (tracing syntax, e.g. `info` or `tepui_agent=debug`); `TEPUI_LOG` overrides it.
    #[arg(long = "log_level", global = true)]
    pub log_level: Option<String>,

    /// Log line format on stderr.
    #[arg(long = "log_format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the master daemon: scheduler and operator APIs, allocator, registry.
    Master(Box<MasterArgs>),
    /// Run the agent daemon: executor and operator APIs, containerizer.
    Agent(Box<AgentArgs>),
    /// Run a master and an agent in one process on loopback, with a temporary work dir;
    /// on SIGTERM or Ctrl-C its pods are destroyed and the temporary work dir removed.
    Dev(Box<DevArgs>),
    /// List tasks and containers with state, cpu, memory and limits.
    Ps(PsArgs),
    /// Run a command in a debug container inside a task's namespaces; its exit code is ours.
    Exec(ExecArgs),
    /// Attach to a running container's output (and with -i, a session's input).
    Attach(AttachArgs),
    /// Print (and follow) a task's stdout or stderr.
    Logs(LogsArgs),
    /// Send a signal to a task or container.
    Kill(KillArgs),
    /// Show everything known about a task or container.
    Inspect(InspectArgs),
    /// Show live statistics of running containers.
    Top(TopArgs),
    /// Show the cluster through its master: leader, agents, frameworks, tasks by state, resources.
    Status(MasterOnlyArgs),
    /// List the agents a master knows, with their resources used/total.
    Agents(MasterOnlyArgs),
    /// List the frameworks a master knows.
    Frameworks(MasterOnlyArgs),
    /// Launch a command task or a task group (Mesos JSON) through the master, like mesos-execute.
    Run(RunArgs),
    /// List, pull and prune container images on an agent.
    Images(ImagesArgs),
    /// Pull a container image into an agent's image store (`images pull`).
    Pull(PullArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: the per-pod container supervisor started by the agent.
    #[command(hide = true)]
    Supervise(SuperviseArgs),
    /// Internal: the built-in executors started by the agent.
    #[command(hide = true, subcommand)]
    Executor(ExecutorKind),
}

/// Which agent the operator commands talk to.
#[derive(Debug, Args)]
pub struct AgentAddress {
    /// The agent, `host:port` or `http://host:port`; else `TEPUI_AGENT`, the
    /// config file's `agent`, then 127.0.0.1:5051 (unless a master is given).
    #[arg(long, env = "TEPUI_AGENT")]
    pub agent: Option<String>,
    /// A master (`host:port`, `zk://host:port/path`) that tells which agent
    /// runs the task; else `TEPUI_MASTER` or the config file's `master`.
    #[arg(long, env = "TEPUI_MASTER")]
    pub master: Option<String>,
    #[command(flatten)]
    pub auth: ClientAuth,
}

/// How the CLI proves who it is and whom it trusts (to agents and masters).
#[derive(Debug, Clone, Args)]
pub struct ClientAuth {
    /// Principal to authenticate as (HTTP Basic).
    #[arg(long, env = "TEPUI_PRINCIPAL")]
    pub principal: Option<String>,
    /// The principal's secret.
    #[arg(
        long,
        env = "TEPUI_SECRET",
        requires = "principal",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// CA certificates (PEM) to trust for an `https` agent or master, besides
    /// the built-in roots; with it, an address given as `host:port` is reached over https.
    #[arg(long = "ca_file", env = "TEPUI_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for daemons run with `--ssl_require_client_cert`.
    #[arg(long = "cert_file", env = "TEPUI_CERT_FILE", requires = "key_file")]
    pub cert_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long = "key_file", env = "TEPUI_KEY_FILE", requires = "cert_file")]
    pub key_file: Option<std::path::PathBuf>,
}

/// The host operator's credential the agent made (with authentication on)
/// in its work dir: `TEPUI_CREDENTIAL_FILE`, the config file's
/// `credential_file`, else the default work dir's. Only root can read it.
fn operator_credential(config: &crate::cli_config::CliConfig) -> Option<(String, String)> {
    let path = std::env::var_os("TEPUI_CREDENTIAL_FILE")
        .map(std::path::PathBuf::from)
        .or(config.get("credential_file").map(std::path::PathBuf::from))
        .unwrap_or_else(|| {
            tepui_agent::operator_credential::path(std::path::Path::new("/var/lib/tepui"))
        });
    let credential = tepui_agent::operator_credential::read(&path).ok()?;
    Some((credential.principal, credential.secret))
}

/// The default agent when nothing names one.
const DEFAULT_AGENT: &str = "127.0.0.1:5051";

impl AgentAddress {
    fn credentials(&self, config: &crate::cli_config::CliConfig) -> Option<(String, String)> {
        let Some(principal) = self
            .auth
            .principal
            .clone()
            .or(config.get("principal").map(str::to_string))
        else {
            return operator_credential(config);
        };
        let secret = self
            .auth
            .secret
            .clone()
            .or(config.get("secret").map(str::to_string))
            .unwrap_or_default();
        Some((principal, secret))
    }

    /// A client for `address` with TLS settings and credentials when given.
    fn connect(
        &self,
        address: &str,
        config: &crate::cli_config::CliConfig,
    ) -> anyhow::Result<tepui_agent::cli::Client> {
        let mut client = tepui_agent::cli::Client::new(address);
        let auth = &self.auth;
        let identity = auth.cert_file.as_deref().zip(auth.key_file.as_deref());
        if auth.ca_file.is_some() || identity.is_some() {
            client = client.with_tls(auth.ca_file.as_deref(), identity)?;
        }
        Ok(match self.credentials(config) {
            Some((p, s)) => client.with_credentials(&p, &s),
            None => client,
        })
    }

    /// The agent and the master named by flag, environment or config file.
    fn named(
        &self,
    ) -> anyhow::Result<(Option<String>, Option<String>, crate::cli_config::CliConfig)> {
        let config = crate::cli_config::CliConfig::load()?;
        let agent = self
            .agent
            .clone()
            .or(config.get("agent").map(str::to_string));
        let master = self
            .master
            .clone()
            .or(config.get("master").map(str::to_string));
        Ok((agent, master, config))
    }

    /// One agent, for commands that act on one (`images pull`, `prune`):
    /// a master alone cannot say which, so it is refused (exit 2).
    pub fn client(&self, command: &str) -> anyhow::Result<tepui_agent::cli::Client> {
        let (agent, master, config) = self.named()?;
        if agent.is_none() && master.is_some() {
            return Err(UsageError(format!(
                "`tepui {command}` acts on one agent: name it with --agent (a master names many)"
            ))
            .into());
        }
        self.connect(agent.as_deref().unwrap_or(DEFAULT_AGENT), &config)
    }

    /// Where to look: the named agent, the named master (and the agents it
    /// knows), both, or else the default agent.
    pub fn scope(&self) -> anyhow::Result<tepui_agent::cli_locate::Scope> {
        let (agent, master, config) = self.named()?;
        let template = self.connect(agent.as_deref().unwrap_or(DEFAULT_AGENT), &config)?;
        let master = match master {
            Some(m) => Some(tepui_agent::cli::block_on(
                tepui_agent::cli_locate::Master::connect(&m, &template),
            )?),
            None => None,
        };
        let agent = (agent.is_some() || master.is_none()).then(|| template.clone());
        Ok(tepui_agent::cli_locate::Scope {
            agent,
            master,
            template,
        })
    }
}

/// The master the cluster commands (`status`, `agents`, `frameworks`) ask.
#[derive(Debug, Args)]
pub struct MasterOnlyArgs {
    /// The master: `host:port`, `http(s)://...` or `zk://host:port/path`;
    /// else `TEPUI_MASTER`, the config file's `master`, then 127.0.0.1:5050.
    #[arg(long, env = "TEPUI_MASTER")]
    pub master: Option<String>,
    #[command(flatten)]
    pub auth: ClientAuth,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The default master when nothing names one.
const DEFAULT_MASTER: &str = "127.0.0.1:5050";

impl MasterOnlyArgs {
    pub fn master(&self) -> anyhow::Result<tepui_agent::cli_locate::Master> {
        let as_agent = AgentAddress {
            agent: None,
            master: self.master.clone(),
            auth: self.auth.clone(),
        };
        let (_, master, config) = as_agent.named()?;
        let master = master.unwrap_or_else(|| DEFAULT_MASTER.to_string());
        let template = as_agent.connect(&master, &config)?;
        Ok(tepui_agent::cli::block_on(
            tepui_agent::cli_locate::Master::connect(&master, &template),
        )?)
    }
}

/// Limits on HTTP clients of a daemon (tepui's own flags; Mesos has none).
#[derive(Debug, Args)]
pub struct HttpLimitArgs {
    /// Most HTTP connections open at once; more are closed when accepted.
    #[arg(long = "http_max_connections", default_value_t = 16_384)]
    pub http_max_connections: usize,
    /// Most HTTP connections open at once from one client IP.
    #[arg(long = "http_max_connections_per_ip", default_value_t = 4_096)]
    pub http_max_connections_per_ip: usize,
    /// A client must send a whole request head within this (slowloris); idle keep-alive connections close after it.
    #[arg(long = "http_header_timeout", default_value = "30secs")]
    pub http_header_timeout: String,
    /// A client that stops reading its response for this long is cut (streams that are read are never timed).
    #[arg(long = "http_write_timeout", default_value = "60secs")]
    pub http_write_timeout: String,
    /// Largest one-message request body (Mesos's byte syntax, e.g. 8MB); larger ones get 413.
    #[arg(long = "http_max_body_size", default_value = "8MB")]
    pub http_max_body_size: String,
}

impl HttpLimitArgs {
    pub fn limits(&self) -> anyhow::Result<tepui_proto::server::Limits> {
        let duration = |flag: &str, v: &str| {
            tepui_proto::duration::parse_duration(v)
                .map_err(|e| anyhow::anyhow!("--{flag}: invalid duration '{v}': {e}"))
        };
        if self.http_max_connections == 0 || self.http_max_connections_per_ip == 0 {
            anyhow::bail!(
                "--http_max_connections and --http_max_connections_per_ip must be at least 1"
            );
        }
        Ok(tepui_proto::server::Limits {
            max_connections: self.http_max_connections,
            max_connections_per_ip: self.http_max_connections_per_ip,
            header_read_timeout: duration("http_header_timeout", &self.http_header_timeout)?,
            write_timeout: duration("http_write_timeout", &self.http_write_timeout)?,
            max_body_bytes: usize::try_from(crate::agent_cmd::bytes(
                "http_max_body_size",
                &self.http_max_body_size,
            )?)
            .unwrap_or(usize::MAX),
        })
    }
}

/// Mesos's SSL settings of the daemons (`--ssl_*`, also read from
/// `LIBPROCESS_SSL_*` as libprocess does, and `MESOS_SSL_*`/`TEPUI_SSL_*`).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Serve HTTPS, and use https towards peers given without a scheme
    /// (implied by --ssl_cert_file).
    #[arg(long = "ssl_enabled", env = "LIBPROCESS_SSL_ENABLED", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub ssl_enabled: bool,
    /// The server certificate chain (PEM); with it the daemon serves HTTPS only.
    #[arg(long = "ssl_cert_file", env = "LIBPROCESS_SSL_CERT_FILE")]
    pub ssl_cert_file: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long = "ssl_key_file", env = "LIBPROCESS_SSL_KEY_FILE")]
    pub ssl_key_file: Option<std::path::PathBuf>,
    /// CA certificates (PEM) trusted for peers (besides the built-in roots)
    /// and for verifying client certificates.
    #[arg(long = "ssl_ca_file", env = "LIBPROCESS_SSL_CA_FILE")]
    pub ssl_ca_file: Option<std::path::PathBuf>,
    /// Refuse clients without a certificate signed by --ssl_ca_file.
    #[arg(long = "ssl_require_client_cert", env = "LIBPROCESS_SSL_REQUIRE_CERT", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub ssl_require_client_cert: bool,
}

impl TlsArgs {
    /// The settings, with absolute paths (executors run elsewhere).
    pub fn settings(&self) -> anyhow::Result<tepui_proto::tls::TlsSettings> {
        let absolute = |flag: &str, p: &Option<std::path::PathBuf>| {
            p.as_deref()
                .map(std::path::absolute)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
        };
        let settings = tepui_proto::tls::TlsSettings {
            enabled: self.ssl_enabled,
            cert_file: absolute("ssl_cert_file", &self.ssl_cert_file)?,
            key_file: absolute("ssl_key_file", &self.ssl_key_file)?,
            ca_file: absolute("ssl_ca_file", &self.ssl_ca_file)?,
            require_client_cert: self.ssl_require_client_cert,
        };
        // Fail at start, not at the first connection.
        settings
            .server_config()
            .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
        Ok(settings)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// Seconds between refreshes (more than 0).
    #[arg(long, default_value = "2", value_parser = positive_seconds)]
    pub interval: std::time::Duration,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    pub iterations: Option<u32>,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A number of seconds above 0.
fn positive_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("must be more than 0 seconds, not {text}"));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// A task's CPU(s), MEM and limits are its own container's (`-` where it
/// has none: a `share_cgroups` task's limits are its pod's).
#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// Also list tasks that have ended.
    #[arg(long, short)]
    pub all: bool,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// The task id.
    pub task: String,
    /// Print stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Keep printing new output (across rotations) until the task ends.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The master: `host:port`, `http(s)://...` or `zk://host:port/path`.
    #[arg(long, env = "TEPUI_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// Task name (and task id prefix).
    #[arg(long, default_value = "tepui-run")]
    pub name: String,
    /// Resources of a command task, Mesos syntax.
    #[arg(long, default_value = "cpus:0.1;mem:32")]
    pub resources: String,
    /// Run the command in this container image.
    #[arg(long = "docker_image")]
    pub docker_image: Option<String>,
    /// A TaskInfo JSON file (Mesos's JSON) instead of a command.
    #[arg(long, conflicts_with_all = ["task_group", "command"])]
    pub task: Option<std::path::PathBuf>,
    /// A TaskGroupInfo JSON file (or an ACCEPT operation with `launch_group`), run by the default executor.
    #[arg(long = "task_group", conflicts_with = "command")]
    pub task_group: Option<std::path::PathBuf>,
    /// The role to launch under.
    #[arg(long, default_value = "*")]
    pub role: String,
    #[arg(long = "framework_name", default_value = "tepui-run")]
    pub framework_name: String,
    /// Give up when no offer fits within this many seconds.
    #[arg(long = "offer_timeout", default_value_t = 60.0)]
    pub offer_timeout: f64,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The shell command, after `--`.
    #[arg(last = true, required_unless_present_any = ["task", "task_group"])]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub action: ImagesAction,
}

#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// List pulled images with their size and whether a container uses them.
    Ls {
        #[command(flatten)]
        agent: AgentAddress,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Pull an image, with a progress bar per layer.
    Pull(PullArgs),
    /// Remove every image no container uses (but the excluded ones).
    Prune {
        #[command(flatten)]
        agent: AgentAddress,
        /// Keep this image (repeatable).
        #[arg(long)]
        exclude: Vec<String>,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// The image, e.g. `busybox:1.36` or `127.0.0.1:5000/app@sha256:...`.
    pub reference: String,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// Send our stdin to the command.
    #[arg(long, short)]
    pub interactive: bool,
    /// Give the command a terminal (ours goes raw; window size follows).
    #[arg(long, short)]
    pub tty: bool,
    /// A task id or a container id.
    pub target: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// Also send our stdin (session containers only).
    #[arg(long, short)]
    pub interactive: bool,
    /// A task id or a container id.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// A task id or a container id.
    pub target: String,
    /// The signal, a number or a name (HUP, SIGTERM; default: KILL).
    #[arg(long, short, value_parser = tepui_agent::cli::parse_signal)]
    pub signal: Option<i32>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub agent: AgentAddress,
    /// A task id or a container id.
    pub target: String,
}

/// `tepui master` flags, with Mesos's names and defaults.
#[derive(Debug, Args)]
pub struct MasterArgs {
    /// IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub ip: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// Where the registry lives; without it the registry is in memory only.
    #[arg(long = "work_dir")]
    pub work_dir: Option<std::path::PathBuf>,
    /// The hostname advertised to frameworks and agents.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Time between allocation cycles (events also trigger one).
    #[arg(long = "allocation_interval", default_value = "1secs")]
    pub allocation_interval: String,
    /// Rescind offers not used within this long (default: never).
    #[arg(long = "offer_timeout")]
    pub offer_timeout: Option<String>,
    /// Offer an agent's resources only if they hold one of these, e.g. `cpus:0.01|mem:32`.
    #[arg(long = "min_allocatable_resources", default_value = "cpus:0.01|mem:32")]
    pub min_allocatable_resources: String,
    /// Heartbeat interval towards agents.
    #[arg(long = "agent_ping_timeout", default_value = "15secs")]
    pub agent_ping_timeout: String,
    /// Missed heartbeat intervals before an agent is unreachable.
    #[arg(long = "max_agent_ping_timeouts", default_value_t = 5)]
    pub max_agent_ping_timeouts: u32,
    /// How long agents of the registry have to re-register after a master restart.
    #[arg(long = "agent_reregister_timeout", default_value = "10mins")]
    pub agent_reregister_timeout: String,
    /// Upper bound on frameworks' failover_timeout.
    #[arg(long = "framework_failover_timeout")]
    pub framework_failover_timeout: Option<String>,
    /// Allowed roles, comma separated (default: any).
    #[arg(long)]
    pub roles: Option<String>,
    /// Role weights, e.g. `eng=2,ops=1`.
    #[arg(long)]
    pub weights: Option<String>,
    /// At most this many offers per framework role in one allocation cycle.
    #[arg(long = "max_offers_per_framework", default_value_t = 10_000)]
    pub max_offers_per_framework: usize,
    /// Highly available masters: `zk://[user:pass@]host:port[,host:port]/path`.
    /// The leader is elected in ZooKeeper and the registry is kept there.
    #[arg(long)]
    pub zk: Option<String>,
    /// ZooKeeper session timeout; a leader that loses its session steps down.
    #[arg(long = "zk_session_timeout", default_value = "10secs")]
    pub zk_session_timeout: String,
    /// Size of the masters' quorum (required with --zk, as in Mesos).
    #[arg(long)]
    pub quorum: Option<u32>,
    /// Require frameworks to authenticate (scheduler API, HTTP Basic or Bearer).
    #[arg(long = "authenticate_frameworks", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub authenticate_frameworks: bool,
    /// Require agents to authenticate on the agent link.
    #[arg(long = "authenticate_agents", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub authenticate_agents: bool,
    #[command(flatten)]
    pub auth: crate::auth_flags::HttpAuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub http: HttpLimitArgs,
    /// Events queued for one scheduler or operator SUBSCRIBE stream; a subscriber further behind is dropped.
    #[arg(long = "subscriber_queue_size", default_value_t = 8_192)]
    pub subscriber_queue_size: usize,
    /// A web UI folder served at `/`, `/app` and `/assets`, as Mesos's master serves its own
    /// (point it at an unchanged copy of apache/mesos `src/webui`).
    #[arg(long = "webui_dir")]
    pub webui_dir: Option<std::path::PathBuf>,
}

impl MasterArgs {
    pub fn into_config(self) -> anyhow::Result<tepui_master::MasterConfig> {
        use tepui_master::config::{parse_duration, parse_min_allocatable, parse_weights};
        let duration = |flag: &str, v: &str| {
            parse_duration(v).ok_or_else(|| anyhow::anyhow!("--{flag}: invalid duration '{v}'"))
        };
        if let Some(zk) = &self.zk {
            tepui_proto::zk::ZkUrl::parse(zk).map_err(|e| anyhow::anyhow!("--zk: {e}"))?;
            if self.quorum.is_none() {
                anyhow::bail!("--quorum is required with --zk");
            }
        }
        if let Some(dir) = &self.webui_dir
            && !dir.join("index.html").is_file()
        {
            anyhow::bail!("--webui_dir: {} has no index.html", dir.display());
        }
        let flags = vec![
            ("ip".to_string(), self.ip.to_string()),
            ("port".to_string(), self.port.to_string()),
            (
                "allocation_interval".to_string(),
                self.allocation_interval.clone(),
            ),
            (
                "min_allocatable_resources".to_string(),
                self.min_allocatable_resources.clone(),
            ),
        ];
        Ok(tepui_master::MasterConfig {
            listen: std::net::SocketAddr::new(self.ip, self.port),
            hostname: self.hostname,
            work_dir: self.work_dir,
            allocation_interval: duration("allocation_interval", &self.allocation_interval)?,
            offer_timeout: self
                .offer_timeout
                .map(|v| duration("offer_timeout", &v))
                .transpose()?,
            min_allocatable_resources: parse_min_allocatable(&self.min_allocatable_resources)
                .ok_or_else(|| anyhow::anyhow!("--min_allocatable_resources: invalid"))?,
            max_offers_per_framework: self.max_offers_per_framework,
            agent_ping_timeout: duration("agent_ping_timeout", &self.agent_ping_timeout)?,
            max_agent_ping_timeouts: self.max_agent_ping_timeouts,
            agent_reregister_timeout: duration(
                "agent_reregister_timeout",
                &self.agent_reregister_timeout,
            )?,
            max_framework_failover_timeout: self
                .framework_failover_timeout
                .map(|v| duration("framework_failover_timeout", &v))
                .transpose()?,
            weights: self
                .weights
                .map(|w| parse_weights(&w).ok_or_else(|| anyhow::anyhow!("--weights: invalid")))
                .transpose()?
                .unwrap_or_default(),
            roles: self
                .roles
                .map(|r| r.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default(),
            flags: crate::daemon_flags::complete(flags),
            zk_session_timeout: duration("zk_session_timeout", &self.zk_session_timeout)?,
            zk: self.zk,
            quorum: self.quorum,
            tls: self.tls.settings()?,
            http_limits: self.http.limits()?,
            subscriber_queue: self.subscriber_queue_size.max(1),
            webui_dir: self.webui_dir,
            auth: tepui_master::AuthConfig {
                authenticate_frameworks: self.authenticate_frameworks,
                authenticate_agents: self.authenticate_agents,
                authenticate_http_readonly: self.auth.authenticate_http_readonly,
                authenticate_http_readwrite: self.auth.authenticate_http_readwrite,
                authenticator: self.auth.authenticator()?,
                acls: self.auth.acls()?,
            },
            ..tepui_master::MasterConfig::default()
        })
    }
}

/// `tepui dev`: a single-node cluster in one process.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the master's registry and the agent's sandboxes go (default: a new temporary dir).
    #[arg(long = "work_dir")]
    pub work_dir: Option<std::path::PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: std::net::IpAddr,
    #[arg(long = "master_port", default_value_t = 5050)]
    pub master_port: u16,
    #[arg(long = "agent_port", default_value_t = 5051)]
    pub agent_port: u16,
    /// The agent's resources, e.g. `cpus:2;mem:2048` (default: detected).
    #[arg(long)]
    pub resources: Option<String>,
    /// The agent's attributes, e.g. `rack:a;zone:eu-1`.
    #[arg(long)]
    pub attributes: Option<String>,
    /// Accepted for compatibility, as by `tepui agent`; cgroups cpu/mem isolation is always on.
    #[arg(long, default_value = "cgroups/cpu,cgroups/mem")]
    pub isolation: String,
    #[arg(long = "cgroups_root", default_value = "tepui-dev")]
    pub cgroups_root: String,
    #[arg(long = "executor_shutdown_grace_period", default_value = "5secs")]
    pub executor_shutdown_grace_period: String,
    /// Time between allocation cycles of the master (events also trigger one).
    #[arg(long = "allocation_interval", default_value = "1secs")]
    pub allocation_interval: String,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub network_cni: NetworkCniArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The agent's runtime directory.
    #[arg(long = "runtime_dir")]
    pub runtime_dir: std::path::PathBuf,
    /// The pod (top-level container id) this supervisor serves.
    #[arg(long)]
    pub pod: String,
    /// A pipe to write "ready" to once the socket listens.
    #[arg(long = "ready_fd")]
    pub ready_fd: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum ExecutorKind {
    /// Mesos's command executor: runs one command task.
    Command,
    /// Mesos's default executor: runs a task group.
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecoverFlag {
    Reconnect,
    Cleanup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CgroupsFlag {
    V1,
    V2,
}

/// Where container images come from: the agent's flags, shared with
/// `tepui dev` so both pull the same way.
#[derive(Debug, Default, Args)]
pub struct ImageArgs {
    /// Image support: `docker` (container images in `ContainerInfo.mesos.image`); unset: none.
    #[arg(long = "image_providers")]
    pub image_providers: Option<String>,
    /// Where image references without a host go (`https://registry-1.docker.io`, `http://10.0.0.1:5000`).
    #[arg(long = "docker_registry")]
    pub docker_registry: Option<String>,
    /// Docker `config.json` credentials (the JSON, or `file:///path`).
    #[arg(long = "docker_config")]
    pub docker_config: Option<String>,
    /// Registries (`host:port`, comma-separated) spoken to over plain http.
    #[arg(long = "docker_insecure_registries", value_delimiter = ',')]
    pub docker_insecure_registries: Vec<String>,
    /// CA certificates (PEM file) trusted for https registries, besides the system's.
    #[arg(long = "docker_registry_ca_file")]
    pub docker_registry_ca_file: Option<std::path::PathBuf>,
}

/// Container networks through CNI (Mesos's `network/cni` isolator flags),
/// shared by `tepui agent` and `tepui dev`. No network exists unless the
/// operator gives both dirs.
#[derive(Debug, Default, Args)]
pub struct NetworkCniArgs {
    /// Dir of CNI network configs (`*.conf`, `*.conflist`, `*.json`); a task's `NetworkInfo.name` picks one by its `name`.
    #[arg(long = "network_cni_config_dir")]
    pub network_cni_config_dir: Option<std::path::PathBuf>,
    /// Dir(s) of CNI plugin executables, `:`-separated (Debian: /usr/lib/cni).
    #[arg(long = "network_cni_plugins_dir")]
    pub network_cni_plugins_dir: Option<String>,
    /// Keep pods' CNI state under the work dir instead of the runtime dir, so IPAM leases are released after a reboot too.
    #[arg(long = "network_cni_root_dir_persist", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub network_cni_root_dir_persist: bool,
    /// Bound on each CNI plugin run (tepui's; Mesos has none): a plugin still running then is killed and the launch fails.
    #[arg(long = "network_cni_plugin_timeout", default_value = "1mins")]
    pub network_cni_plugin_timeout: String,
}

/// `tepui agent`: Mesos's agent flags (also read from `MESOS_<FLAG>` /
/// `TEPUI_<FLAG>`; a value `file:///path` is read from that file).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The master, `host:port` or `http://host:port`; without it the agent runs standalone.
    #[arg(long)]
    pub master: Option<String>,
    /// Where sandboxes and checkpoints live (survives reboots).
    #[arg(long = "work_dir", default_value = "/var/lib/tepui")]
    pub work_dir: std::path::PathBuf,
    /// Where supervisors and container state live (tmpfs; does not survive reboots).
    #[arg(long = "runtime_dir", default_value = "/run/tepui")]
    pub runtime_dir: std::path::PathBuf,
    /// Total resources, e.g. `cpus:4;mem:8192;ports:[31000-32000]` or JSON; missing ones are detected.
    #[arg(long)]
    pub resources: Option<String>,
    /// Attributes, e.g. `rack:a;zone:eu-1`.
    #[arg(long)]
    pub attributes: Option<String>,
    /// Address to listen on (executors reach the agent on it; 0.0.0.0 means 127.0.0.1 for them).
    #[arg(long, default_value = "0.0.0.0")]
    pub ip: std::net::IpAddr,
    #[arg(long, default_value_t = 5051)]
    pub port: u16,
    /// Hostname to advertise (default: the system's).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Accepted for compatibility; cgroups cpu/mem isolation is always on.
    #[arg(long, default_value = "cgroups/cpu,cgroups/mem")]
    pub isolation: String,
    /// cgroup (relative to each hierarchy) under which pods are created.
    #[arg(long = "cgroups_root", default_value = "tepui")]
    pub cgroups_root: String,
    /// Force cgroup v1 or v2 instead of detecting it.
    #[arg(long = "cgroups_mode", value_enum)]
    pub cgroups_mode: Option<CgroupsFlag>,
    /// On cgroup v2 with systemd as PID 1: each pod is a delegated transient
    /// scope (tepui.slice/tepui-pod-<pod>.scope, via systemd-run) instead of
    /// a cgroup under --cgroups_root. Pods then live outside the agent's
    /// unit: restarting it leaves them alone, without systemd warnings.
    #[arg(long = "cgroups_systemd", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub cgroups_systemd: bool,
    /// Memory limits include swap: a container cannot swap beyond its memory
    /// limit (v2 memory.swap.max=0, v1 memory.memsw.limit_in_bytes). Mesos's
    /// flag, but on by default here; =false allows swap.
    #[arg(long = "cgroups_limit_swap", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub cgroups_limit_swap: bool,
    /// pids.max (processes + threads) of every container's own cgroup; 0 for
    /// no limit.
    #[arg(long = "container_pids_limit", default_value_t = 4096)]
    pub container_pids_limit: u64,
    #[arg(long = "executor_registration_timeout", default_value = "1mins")]
    pub executor_registration_timeout: String,
    /// How long executors found running at recovery have to subscribe again.
    #[arg(long = "executor_reregistration_timeout", default_value = "5secs")]
    pub executor_reregistration_timeout: String,
    #[arg(long = "executor_shutdown_grace_period", default_value = "5secs")]
    pub executor_shutdown_grace_period: String,
    #[arg(long, value_enum, default_value_t = RecoverFlag::Reconnect)]
    pub recover: RecoverFlag,
    /// Refuse to start when recovery finds unreadable state (instead of starting clean).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub strict: bool,
    #[arg(long = "default_role", default_value = "*")]
    pub default_role: String,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub network_cni: NetworkCniArgs,
    #[arg(long = "fetcher_cache_dir")]
    pub fetcher_cache_dir: Option<std::path::PathBuf>,
    /// Bytes, or with a unit: `2GB`, `512MB`.
    #[arg(long = "fetcher_cache_size", default_value = "2GB")]
    pub fetcher_cache_size: String,
    /// Image store size limit (`10GB`); least recently used images no
    /// container uses are removed after a pull until it fits.
    #[arg(long = "image_gc_max_size")]
    pub image_gc_max_size: Option<String>,
    #[arg(long = "fetcher_stall_timeout", default_value = "1mins")]
    pub fetcher_stall_timeout: String,
    #[arg(long = "frameworks_home")]
    pub frameworks_home: Option<std::path::PathBuf>,
    /// Rotate each container's stdout/stderr at this size (bytes or `10MB`; 0 = never).
    #[arg(long = "container_logs_max_size", default_value = "10MB")]
    pub container_logs_max_size: String,
    /// Rotated stdout/stderr files kept per container.
    #[arg(long = "container_logs_max_files", default_value_t = 2)]
    pub container_logs_max_files: u32,
    /// How long a finished executor run's sandbox and checkpoints are kept.
    #[arg(long = "gc_delay", default_value = "1weeks")]
    pub gc_delay: String,
    #[command(flatten)]
    pub auth: crate::auth_flags::HttpAuthArgs,
    /// Run tasks as their user (`command.user`, else the framework's user);
    /// false (or `--no-switch_user`): as the agent's own user.
    #[arg(long = "switch_user", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub switch_user: bool,
    /// Kill a pod whose sandbox outgrows its `disk` (Mesos's `disk/du`):
    /// its tasks end TASK_FAILED with REASON_CONTAINER_LIMITATION_DISK.
    #[arg(long = "enforce_container_disk_quota", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub enforce_container_disk_quota: bool,
    /// How often sandboxes are measured.
    #[arg(long = "container_disk_watch_interval", default_value = "15secs")]
    pub container_disk_watch_interval: String,
    /// XFS project ids for sandboxes with `--isolation=...,disk/xfs`
    /// (Mesos's ranges syntax).
    #[arg(long = "xfs_project_range", default_value = "[5000-10000]")]
    pub xfs_project_range: String,
    /// Mesos's spelling of `--switch_user=false`.
    #[arg(long = "no-switch_user")]
    pub no_switch_user: bool,
    /// Treat unauthenticated callers from other hosts as operators, as Mesos does without
    /// `--authenticate_http_*`. Off (the default), they may read state, metrics and sandboxes,
    /// but not control containers or speak for executors: they may be another host's tasks.
    #[arg(long = "trust_remote_operators", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_remote_operators: bool,
    /// Require executors to authenticate to the executor API with their token.
    #[arg(long = "authenticate_http_executors", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub authenticate_http_executors: bool,
    /// Path (optionally `file://`) to the key executor tokens are signed with
    /// (default: generated once and kept in the work dir).
    #[arg(long = "executor_secret_key")]
    pub executor_secret_key: Option<String>,
    /// Path (optionally `file://`) to the principal and secret the agent
    /// authenticates to the master with.
    #[arg(long)]
    pub credential: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub http: HttpLimitArgs,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn http_limit_flags_reach_the_master_config_and_bad_ones_are_named() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["tepui", "master"];
            argv.extend_from_slice(extra);
            let Command::Master(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not master");
            };
            args.into_config()
        };
        let config = parse(&[
            "--http_max_connections=100",
            "--http_max_connections_per_ip=10",
            "--http_header_timeout=2secs",
            "--http_write_timeout=500ms",
            "--http_max_body_size=1MB",
            "--subscriber_queue_size=64",
        ])
        .unwrap();
        assert_eq!(config.http_limits.max_connections, 100);
        assert_eq!(config.http_limits.max_connections_per_ip, 10);
        assert_eq!(
            config.http_limits.header_read_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            config.http_limits.write_timeout,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(config.http_limits.max_body_bytes, 1 << 20);
        assert_eq!(config.subscriber_queue, 64);
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.http_limits, tepui_proto::server::Limits::default());
        let err = parse(&["--http_header_timeout=soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--http_header_timeout"), "{err}");
        let err = parse(&["--http_max_body_size=8XB"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--http_max_body_size"), "{err}");
        assert!(parse(&["--http_max_connections=0"]).is_err());
    }

    #[test]
    fn ssl_flags_become_tls_settings_with_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let parse = |extra: &[String]| {
            let mut argv = vec!["tepui".to_string(), "master".into()];
            argv.extend(extra.iter().cloned());
            let Command::Master(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not master");
            };
            args.into_config()
        };
        let cert_file = dir.path().join("cert.pem");
        let config = parse(&[
            format!("--ssl_cert_file={}", cert_file.display()),
            format!("--ssl_key_file={}", dir.path().join("key.pem").display()),
            format!("--ssl_ca_file={}", cert_file.display()),
            "--ssl_require_client_cert".into(),
        ])
        .unwrap();
        assert!(config.tls.enabled());
        assert!(config.tls.require_client_cert);
        assert_eq!(config.tls.cert_file.as_deref(), Some(cert_file.as_path()));
        assert!(config.tls.server_config().unwrap().is_some());
        assert!(!parse(&[]).unwrap().tls.enabled());
        // SSL on without a certificate, or a missing file: refused at start.
        let err = parse(&["--ssl_enabled=1".into()]).unwrap_err().to_string();
        assert!(err.contains("--ssl_cert_file"), "{err}");
        let err = parse(&[
            "--ssl_cert_file=/nonexistent/cert.pem".into(),
            "--ssl_key_file=/nonexistent/key.pem".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
