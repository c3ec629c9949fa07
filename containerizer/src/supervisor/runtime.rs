//! The only place that calls libcontainer. It runs inside the supervisor, a
//! single-threaded process, because libcontainer clones the calling process
//! without exec (DESIGN.md section 2).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::Pid;

/// A created and started container.
pub struct Started {
    /// `None` for a process run inside another container (`exec_in`).
    pub container: Option<Container>,
    pub pid: Pid,
}

/// A container's stdio: three fds, or a terminal whose master libcontainer
/// sends to a console socket.
pub enum Stdio {
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Console(PathBuf),
}

impl Stdio {
    /// Logs only: stdin is `/dev/null`.
    pub fn logged(stdout: OwnedFd, stderr: OwnedFd) -> Result<Self, String> {
        let stdin = File::open("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?;
        Ok(Stdio::Fds {
            stdin: stdin.into(),
            stdout,
            stderr,
        })
    }

    fn apply(self, builder: ContainerBuilder) -> ContainerBuilder {
        match self {
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => builder
                .with_stdin(stdin)
                .with_stdout(stdout)
                .with_stderr(stderr),
            Stdio::Console(socket) => builder.with_console_socket(Some(socket)),
        }
    }
}

/// Creates and starts the container described by `bundle/config.json` with
/// `stdio`. On failure nothing of it is left: no state dir, cgroup or
/// process.
pub fn create_and_start(
    lc_id: &str,
    state_root: &Path,
    bundle: &Path,
    stdio: Stdio,
) -> Result<Started, String> {
    let built = ContainerBuilder::new(lc_id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .and_then(|b| b.validate_id())
        .map(|b| {
            stdio
                .apply(b)
                .as_init(bundle)
                .with_systemd(false)
                .with_detach(true)
        })
        .and_then(|b| b.build());
    let mut container = match built {
        Ok(container) => container,
        Err(err) => {
            force_delete_by_id(state_root, lc_id);
            return Err(format!("cannot create the container: {err}"));
        }
    };
    if let Some(pid) = container.pid()
        && let Err(err) = super::loopback::bring_up_in_netns_of(pid.as_raw())
    {
        let _ = container.delete(true);
        return Err(format!("cannot bring up loopback: {err}"));
    }
    if let Err(err) = container.start() {
        let _ = container.delete(true);
        return Err(format!("cannot start the container: {err}"));
    }
    match container.pid() {
        Some(pid) => Ok(Started {
            container: Some(container),
            pid,
        }),
        None => {
            let _ = container.delete(true);
            Err("the container started without an init pid".to_string())
        }
    }
}

/// Runs the process `process_json` describes inside the running container
/// `lc_id` (`runc exec`): it joins the container's namespaces and cgroup, so
/// it sees the container's filesystem and processes. Returns its pid; it is
/// our child (libcontainer clones it as a sibling of its helper), so it is
/// reaped like a container's init.
pub fn exec_in(
    lc_id: &str,
    state_root: &Path,
    process_json: &Path,
    stdio: Stdio,
) -> Result<Pid, String> {
    ContainerBuilder::new(lc_id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .map(|b| {
            stdio
                .apply(b)
                .as_tenant()
                .with_process(Some(process_json))
                .with_detach(true)
        })
        .and_then(|b| b.build())
        .map_err(|e| format!("cannot run the process in container {lc_id}: {e}"))
}

/// Removes a half-created container that libcontainer left state for.
fn force_delete_by_id(state_root: &Path, lc_id: &str) {
    let dir = state_root.join(lc_id);
    if dir.exists() {
        if let Ok(mut container) = Container::load(dir.clone()) {
            let _ = container.delete(true);
        }
        let _ = crate::safe_remove::remove_tree(&dir);
    }
}

/// Kills what is left of a container (its whole cgroup) and removes its
/// cgroup and libcontainer state.
pub fn destroy(container: &mut Container) -> Result<(), String> {
    let _ = container.refresh_status();
    container
        .delete(true)
        .map_err(|e| format!("cannot delete container {}: {e}", container.id()))
}
