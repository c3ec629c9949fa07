//! The agent <-> supervisor protocol: one JSON request per line on a fresh
//! Unix-socket connection, answered by one JSON response line (WAIT answers
//! when the container ends, however long that takes). JSON keeps it
//! debuggable with `socat`; the volume is a handful of small messages per
//! container, so the encoding cost does not matter.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::logs::LogPolicy;
use crate::ContainerPath;
use crate::spec::{LaunchSpec, SpecContext};

/// Protocol version; a supervisor refuses requests from another version
/// (after an agent upgrade, old supervisors are drained, not spoken to).
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub version: u32,
    #[serde(flatten)]
    pub body: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Request {
    /// Create and start a container from the OCI bundle the agent already
    /// wrote at `RuntimeDir::bundle(container)`.
    Launch(LaunchRequest),
    /// Answer when the container has terminated (at once if it has).
    Wait { container: ContainerPath },
    /// Send a signal to the container's init process.
    Signal {
        container: ContainerPath,
        signal: i32,
    },
    /// SIGTERM, then SIGKILL to every process of the container after the
    /// grace period; nested containers are killed first.
    Kill {
        container: ContainerPath,
        grace_period_secs: f64,
    },
    /// Forget a terminated container: remove its runtime directory. Removing
    /// the top-level container ends the supervisor.
    Remove { container: ContainerPath },
    /// Every container the supervisor knows, with its state.
    List,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub container: ContainerPath,
    /// Files that receive the container's stdout and stderr (the sandbox's
    /// `stdout`/`stderr`).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The container's cgroup for OOM attribution and statistics, relative
    /// to the cgroup roots (what `linux.cgroupsPath` says).
    pub cgroup: Option<String>,
    /// When set, the supervisor builds the bundle's `config.json` itself
    /// from this spec and `context` (completed with what only it knows: the
    /// host rootfs bind, the parent's init pid, sandbox and /dev/shm).
    /// Without it, the bundle must already be on disk.
    #[serde(default)]
    pub spec: Option<Box<LaunchSpec>>,
    #[serde(default)]
    pub context: Option<Box<SpecContext>>,
    /// Rotation of the `stdout`/`stderr` files.
    #[serde(default)]
    pub log: LogPolicy,
    /// A session's stdio (LAUNCH_NESTED_CONTAINER_SESSION): the container
    /// talks to the agent's ends instead of `/dev/null` and the log files.
    #[serde(default)]
    pub session: Option<SessionIo>,
}

/// Where a session container's stdio goes. The agent side makes both before
/// the launch and owns the other ends, so a session ends with its
/// connection even if the supervisor outlives the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionIo {
    /// FIFOs: the container reads `stdin`, writes `stdout` and `stderr`.
    Pipes {
        stdin: PathBuf,
        stdout: PathBuf,
        stderr: PathBuf,
    },
    /// A terminal made inside the container; its master is sent over this
    /// Unix socket (the OCI console-socket protocol).
    Terminal { console_socket: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Response {
    Launched { pid: i32 },
    Terminated(Termination),
    Listed { containers: Vec<ContainerState> },
    Ok,
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub container: ContainerPath,
    pub pid: Option<i32>,
    pub started_at: f64,
    pub termination: Option<Termination>,
}

/// How a container ended. Written atomically to `termination.json` before
/// anything of the container is removed, so an agent that was down when it
/// happened still learns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    pub container: ContainerPath,
    /// waitpid(2)-style status: `code << 8` for an exit, the signal number
    /// (plus 0x80 for a core dump) for a signal.
    pub status: i32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of this container.
    pub oom_killed: bool,
    /// Set when the container was killed on request (KILL), not on its own.
    pub killed_by_request: bool,
    pub started_at: f64,
    pub finished_at: f64,
    /// Peak memory use in bytes, when the cgroup reported it.
    pub peak_memory_bytes: Option<u64>,
    /// Why the supervisor could not even start or watch it, if so.
    pub message: Option<String>,
}

impl Termination {
    pub fn from_wait_status(status: i32) -> (Option<i32>, Option<i32>) {
        if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let req = Envelope {
            version: PROTOCOL_VERSION,
            body: Request::Signal {
                container: ContainerPath::new(vec!["p".into(), "t".into()]).unwrap(),
                signal: 15,
            },
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"type":"SIGNAL","container":["p","t"],"signal":15}"#
        );
        let back: Envelope<Request> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn wait_status_decodes_exits_and_signals() {
        assert_eq!(Termination::from_wait_status(3 << 8), (Some(3), None));
        assert_eq!(Termination::from_wait_status(9), (None, Some(9)));
        assert_eq!(Termination::from_wait_status(9 | 0x80), (None, Some(9)));
    }
}
