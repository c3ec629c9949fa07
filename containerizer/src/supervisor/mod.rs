//! The per-pod supervisor (`tepui supervise`): one process per top-level
//! container that makes every libcontainer call for the pod, reaps the
//! containers, escalates kills and records how each one ended. It keeps
//! running when the agent dies; the agent reconnects through its socket.
//!
//! `client` is the agent's side: it starts supervisors (re-executed from a
//! sealed memfd copy of the binary) and speaks `protocol` to them.

pub mod client;
pub mod logs;
pub(crate) mod loopback;
mod memory;
pub mod protocol;
mod runtime;
mod server;
mod shm;
mod signals;
mod volumes;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::mount::MsFlags;

use crate::RuntimeDir;

/// Why the supervisor could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("supervisor I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot set up the supervisor's mount namespace: {0}")]
    MountNamespace(nix::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(nix::Error),
    #[error("another supervisor already serves pod {0}")]
    AlreadyRunning(String),
    #[error("cannot start a supervisor: {0}")]
    Spawn(String),
    #[error("supervisor of pod {pod} answered: {message}")]
    Remote { pod: String, message: String },
    #[error("bad answer from the supervisor of pod {pod}: {message}")]
    Protocol { pod: String, message: String },
}

/// Arguments of `tepui supervise`.
#[derive(Debug, Clone)]
pub struct SupervisorArgs {
    pub runtime_dir: PathBuf,
    pub pod: String,
    /// A pipe the supervisor writes one line to once it listens.
    pub ready_fd: Option<i32>,
}

/// The supervisor's main: sets up the process, then serves until the pod is
/// removed (or SIGTERM'd and all containers are gone).
pub fn run(args: SupervisorArgs) -> Result<(), SupervisorError> {
    let rt = RuntimeDir::new(&args.runtime_dir);
    let pod_dir = rt.pod(&args.pod);
    std::fs::create_dir_all(&pod_dir)?;

    // Run from a memfd, the kernel names us after the fd ("11"); give
    // ps/top/perf a name that says what we are.
    // SAFETY: PR_SET_NAME with a NUL-terminated string that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"tepui-supervise".as_ptr(), 0, 0, 0) };
    // Orphaned grandchildren are reparented to us and reaped, not to init.
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    private_mount_namespace(&rt, &args.pod)?;
    let signals = signals::SignalPipe::install().map_err(SupervisorError::Signals)?;

    let socket = rt.supervisor_socket(&args.pod);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(SupervisorError::AlreadyRunning(args.pod));
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    crate::atomic::write_atomic(
        &rt.supervisor_pid(&args.pod),
        std::process::id().to_string().as_bytes(),
    )?;
    if let Some(fd) = args.ready_fd {
        // SAFETY: the spawner passed this fd for us alone; we own it now.
        let ready = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::unistd::write(&ready, b"ready\n");
    }
    tracing::info!(pod = %args.pod, "supervisor serving");
    let result = server::Server::new(rt.clone(), args.pod.clone(), listener, signals).run();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(rt.supervisor_pid(&args.pod));
    if result.is_ok() {
        remove_pod_dir(&rt, &args.pod);
    }
    result
}

/// Once the pod was removed: leave nothing behind. hostfs holds the whole
/// host, so never recurse into it: only once it is unmounted and empty may
/// the pod dir go. Idempotent.
pub(super) fn remove_pod_dir(rt: &RuntimeDir, pod: &str) {
    let pod_dir = rt.pod(pod);
    if !pod_dir.exists() {
        return;
    }
    let hostfs = rt.hostfs(pod);
    let _ = nix::mount::umount2(&hostfs, nix::mount::MntFlags::MNT_DETACH);
    if std::fs::remove_dir(&hostfs).is_ok() || !hostfs.exists() {
        if let Err(e) = crate::safe_remove::remove_tree(&pod_dir) {
            tracing::warn!("pod dir left in place: {e}");
        }
    } else {
        tracing::warn!(hostfs = %hostfs.display(), "hostfs still mounted: pod dir left in place");
    }
}

/// Gives the supervisor its own mount namespace (host mounts still propagate
/// in) and binds the host's `/` at `hostfs`, the rootfs of containers without
/// an image. Nothing of it shows in the host's mount table, and it all goes
/// away with the supervisor.
fn private_mount_namespace(rt: &RuntimeDir, pod: &str) -> Result<(), SupervisorError> {
    let err = SupervisorError::MountNamespace;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(err)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(err)?;
    let hostfs = rt.hostfs(pod);
    std::fs::create_dir_all(&hostfs)?;
    nix::mount::mount(
        Some("/"),
        &hostfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err)?;
    nix::mount::mount(
        None::<&str>,
        &hostfs,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(err)?;
    Ok(())
}
