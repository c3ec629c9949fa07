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
    // 2 is clap's usage error.
    /// The subcommand exists in the design but is not built yet.
    NotBuilt = 3,
}

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

    #[command(subcommand)]
    pub command: Command,
}

/// Arguments of a subcommand that is not built yet: accepted as given, so the
/// answer is always "not built yet" rather than a usage error about flags
/// that will exist.
#[derive(Debug, Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the master daemon: scheduler and operator APIs, allocator, registry.
    Master(Pending),
    /// Run the agent daemon: executor and operator APIs, containerizer.
    Agent(Pending),
    /// Run a master and an agent in one process on loopback, with a temporary work dir.
    Dev(Pending),
    /// List tasks and containers with state, cpu, memory and limits.
    Ps(Pending),
    /// Run a command in a debug container inside a task's namespaces.
    Exec(Pending),
    /// Attach to a running container's input and output.
    Attach(Pending),
    /// Print (and follow) a task's stdout or stderr.
    Logs(Pending),
    /// Send a signal to a task or container.
    Kill(Pending),
    /// Show everything known about a task or container.
    Inspect(Pending),
    /// Show live statistics of running containers.
    Top(Pending),
    /// Launch a command task or a task group (Mesos JSON) through the master.
    Run(Pending),
    /// List, pull and prune container images on an agent.
    Images(Pending),
    /// Pull a container image into an agent's image store.
    Pull(Pending),
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
    Command(Pending),
    /// Mesos's default executor: runs a task group.
    Default(Pending),
}

impl Command {
    /// The name the user typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Master(_) => "master",
            Command::Agent(_) => "agent",
            Command::Dev(_) => "dev",
            Command::Ps(_) => "ps",
            Command::Exec(_) => "exec",
            Command::Attach(_) => "attach",
            Command::Logs(_) => "logs",
            Command::Kill(_) => "kill",
            Command::Inspect(_) => "inspect",
            Command::Top(_) => "top",
            Command::Run(_) => "run",
            Command::Images(_) => "images",
            Command::Pull(_) => "pull",
            Command::Completion { .. } => "completion",
            Command::Supervise(_) => "supervise",
            Command::Executor(ExecutorKind::Command(_)) => "executor command",
            Command::Executor(ExecutorKind::Default(_)) => "executor default",
        }
    }
}

/// Says plainly that a designed subcommand is not built yet, and exits non-zero.
pub fn not_built_yet(command: &Command) -> ExitStatus {
    eprintln!(
        "tepui {}: not built yet in this version of tepui (see the open issues); nothing was done",
        command.name()
    );
    ExitStatus::NotBuilt
}
