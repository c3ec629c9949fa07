//! The agent's side of the supervisor: starting one per pod and speaking the
//! protocol to it (one connection per request).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::SupervisorError;
use super::protocol::{
    ContainerState, Envelope, LaunchRequest, PROTOCOL_VERSION, Request, Response, Termination,
};
use crate::{ContainerPath, RuntimeDir};

/// How long a new supervisor may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Tries at sealing the supervisor's memfd before giving up on EBUSY.
const SEAL_ATTEMPTS: u64 = 10;

/// Copies `src` into `dst` with plain reads and writes. `std::io::copy`
/// would splice (sendfile/copy_file_range), which can leave page-cache pages
/// referenced from the memfd for a moment and make sealing fail with EBUSY.
fn copy_through_buffer(src: &mut File, dst: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => dst.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The executable supervisors are started from.
#[derive(Debug)]
pub enum SupervisorExe {
    /// A sealed memfd copy of the binary: a container that gains write access
    /// to the host's binary through /proc cannot overwrite what later
    /// supervisors run (the CVE-2019-5736 class). All supervisors share it.
    SealedCopy(OwnedFd),
    /// A plain path (tests, debugging).
    Path(PathBuf),
}

impl SupervisorExe {
    /// A sealed in-memory copy of `binary` (usually `/proc/self/exe`).
    pub fn sealed_copy_of(binary: &Path) -> Result<Self, SupervisorError> {
        let spawn_err = |what: &str, e: &dyn std::fmt::Display| {
            SupervisorError::Spawn(format!("{what} {}: {e}", binary.display()))
        };
        let fd = nix::sys::memfd::memfd_create(
            c"tepui-supervisor",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC
                | nix::sys::memfd::MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(|e| spawn_err("memfd_create for", &e))?;
        let mut dst = File::from(fd);
        let mut src = File::open(binary).map_err(|e| spawn_err("cannot open", &e))?;
        copy_through_buffer(&mut src, &mut dst).map_err(|e| spawn_err("cannot copy", &e))?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // F_SEAL_WRITE fails with EBUSY while any page of the memfd still
        // has an extra reference (the kernel's memfd_wait_for_pins gives up
        // after a short wait); seen under load in CI. Pages referenced by a
        // concurrent fork's copy of our address space or by writeback are
        // released shortly: try again a few times before refusing to start.
        let mut attempt = 0;
        loop {
            // SAFETY: fcntl on an fd we own, with integer arguments.
            if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            attempt += 1;
            if err.raw_os_error() != Some(libc::EBUSY) || attempt >= SEAL_ATTEMPTS {
                return Err(spawn_err("cannot seal the copy of", &err));
            }
            std::thread::sleep(Duration::from_millis(50 * attempt));
        }
        Ok(Self::SealedCopy(OwnedFd::from(dst)))
    }

    fn program(&self) -> PathBuf {
        match self {
            // The child resolves this in its own fd table, which still holds
            // the memfd until exec closes it (CLOEXEC).
            Self::SealedCopy(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            Self::Path(path) => path.clone(),
        }
    }
}

/// Starts the supervisor of `pod` and waits until it listens.
pub async fn spawn(
    exe: &SupervisorExe,
    rt: &RuntimeDir,
    pod: &str,
) -> Result<SupervisorClient, SupervisorError> {
    let pod_dir = rt.pod(pod);
    std::fs::create_dir_all(&pod_dir)?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(rt.supervisor_log(pod))?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SupervisorError::Spawn(format!("pipe: {e}")))?;
    const READY_FD: i32 = 3;

    let mut cmd = tokio::process::Command::new(exe.program());
    cmd.arg0("tepui-supervisor")
        .args(["supervise", "--runtime_dir"])
        .arg(rt.root())
        .args(["--pod", pod, "--ready_fd", &READY_FD.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    let write_fd = ready_write.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls (setsid,
    // dup2) run; they allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: the agent's terminal or process group going
            // away must not signal the pod.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 clears CLOEXEC on the copy, so only fd 3 survives exec.
            if libc::dup2(write_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| SupervisorError::Spawn(format!("{}: {e}", exe.program().display())))?;
    drop(ready_write);

    let ready = wait_ready(ready_read);
    match tokio::time::timeout(READY_TIMEOUT, ready).await {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            let status = child.try_wait().ok().flatten();
            return Err(SupervisorError::Spawn(format!(
                "supervisor of pod {pod} did not start ({message}; exit {status:?}); see {}",
                rt.supervisor_log(pod).display()
            )));
        }
        Err(_) => {
            let _ = child.start_kill();
            return Err(SupervisorError::Spawn(format!(
                "supervisor of pod {pod} was not ready within {READY_TIMEOUT:?}"
            )));
        }
    }
    // tokio reaps the supervisor if it exits while we run; it is meant to
    // outlive us, so never kill it on drop.
    drop(child);
    Ok(SupervisorClient::new(rt.clone(), pod))
}

async fn wait_ready(fd: OwnedFd) -> Result<(), String> {
    // SAFETY: we own `fd`; the File takes it over.
    let file = unsafe { File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
    let mut reader = BufReader::new(tokio::fs::File::from_std(file));
    let mut line = String::new();
    match reader.read_line(&mut line).await {
        Ok(_) if line.trim() == "ready" => Ok(()),
        Ok(_) => Err("it exited before listening".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Talks to the running supervisor of one pod.
#[derive(Debug, Clone)]
pub struct SupervisorClient {
    rt: RuntimeDir,
    pod: String,
}

impl SupervisorClient {
    pub fn new(rt: RuntimeDir, pod: &str) -> Self {
        Self {
            rt,
            pod: pod.to_string(),
        }
    }

    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// Whether a supervisor answers on the pod's socket.
    pub async fn is_alive(&self) -> bool {
        UnixStream::connect(self.rt.supervisor_socket(&self.pod))
            .await
            .is_ok()
    }

    pub async fn request(&self, request: Request) -> Result<Response, SupervisorError> {
        let protocol_err = |message: String| SupervisorError::Protocol {
            pod: self.pod.clone(),
            message,
        };
        let mut stream = UnixStream::connect(self.rt.supervisor_socket(&self.pod)).await?;
        let mut line = serde_json::to_vec(&Envelope {
            version: PROTOCOL_VERSION,
            body: request,
        })
        .map_err(|e| protocol_err(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).await?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        reader.read_line(&mut answer).await?;
        if answer.is_empty() {
            return Err(protocol_err(
                "the supervisor hung up without answering".into(),
            ));
        }
        let env: Envelope<Response> =
            serde_json::from_str(&answer).map_err(|e| protocol_err(e.to_string()))?;
        match env.body {
            Response::Error { message } => Err(SupervisorError::Remote {
                pod: self.pod.clone(),
                message,
            }),
            other => Ok(other),
        }
    }

    fn unexpected(&self, response: Response) -> SupervisorError {
        SupervisorError::Protocol {
            pod: self.pod.clone(),
            message: format!("unexpected answer {response:?}"),
        }
    }

    /// Launches a container whose bundle is already written; returns its pid.
    pub async fn launch(&self, request: LaunchRequest) -> Result<i32, SupervisorError> {
        match self.request(Request::Launch(request)).await? {
            Response::Launched { pid } => Ok(pid),
            other => Err(self.unexpected(other)),
        }
    }

    /// Waits until the container has terminated.
    pub async fn wait(&self, container: &ContainerPath) -> Result<Termination, SupervisorError> {
        match self
            .request(Request::Wait {
                container: container.clone(),
            })
            .await?
        {
            Response::Terminated(t) => Ok(t),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn signal(
        &self,
        container: &ContainerPath,
        signal: i32,
    ) -> Result<(), SupervisorError> {
        self.expect_ok(Request::Signal {
            container: container.clone(),
            signal,
        })
        .await
    }

    pub async fn kill(
        &self,
        container: &ContainerPath,
        grace: Duration,
    ) -> Result<(), SupervisorError> {
        self.expect_ok(Request::Kill {
            container: container.clone(),
            grace_period_secs: grace.as_secs_f64(),
        })
        .await
    }

    pub async fn remove(&self, container: &ContainerPath) -> Result<(), SupervisorError> {
        self.expect_ok(Request::Remove {
            container: container.clone(),
        })
        .await
    }

    pub async fn list(&self) -> Result<Vec<ContainerState>, SupervisorError> {
        match self.request(Request::List).await? {
            Response::Listed { containers } => Ok(containers),
            other => Err(self.unexpected(other)),
        }
    }

    async fn expect_ok(&self, request: Request) -> Result<(), SupervisorError> {
        match self.request(request).await? {
            Response::Ok => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }
}

/// One pod found in the runtime dir when the agent starts again.
#[derive(Debug)]
pub struct RecoveredPod {
    pub pod: String,
    /// Set when the pod's supervisor still answers.
    pub client: Option<SupervisorClient>,
    /// Every container of the pod: from the supervisor when it answers,
    /// otherwise from the termination records on disk (a container without
    /// a record whose supervisor is gone is reported as lost).
    pub containers: Vec<ContainerState>,
}

/// Finds every pod the runtime dir knows, so an agent that was killed (or
/// restarted) reconnects to running pods and learns how finished containers
/// ended while it was away. Keeps no state beyond what is on disk.
pub async fn recover(rt: &RuntimeDir) -> Result<Vec<RecoveredPod>, SupervisorError> {
    let mut pods = Vec::new();
    let entries = match std::fs::read_dir(rt.pods()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pods),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for pod in names {
        let client = SupervisorClient::new(rt.clone(), &pod);
        // A supervisor that is dying may still accept a connection and then
        // hang up: only an answer to LIST counts as alive.
        let listed = if client.is_alive().await {
            client.list().await.ok()
        } else {
            None
        };
        if let Some(containers) = listed {
            pods.push(RecoveredPod {
                pod,
                client: Some(client),
                containers,
            });
        } else {
            let containers = containers_on_disk(rt, &pod);
            pods.push(RecoveredPod {
                pod,
                client: None,
                containers,
            });
        }
    }
    Ok(pods)
}

/// The containers of a pod whose supervisor is gone, from the directories
/// and termination records it left.
pub(crate) fn containers_on_disk(rt: &RuntimeDir, pod: &str) -> Vec<ContainerState> {
    let mut found = Vec::new();
    let mut stack = vec![(rt.pod(pod).join("containers"), Vec::<String>::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = prefix.clone();
            parts.push(name);
            let Ok(id) = ContainerPath::new(parts.clone()) else {
                continue;
            };
            let termination = std::fs::read(rt.termination(&id))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Termination>(&bytes).ok())
                .unwrap_or_else(|| Termination {
                    container: id.clone(),
                    status: libc::SIGKILL,
                    exit_code: None,
                    signal: None,
                    oom_killed: false,
                    killed_by_request: false,
                    started_at: 0.0,
                    finished_at: 0.0,
                    peak_memory_bytes: None,
                    message: Some(
                        "its supervisor died before recording how it ended: the container was lost"
                            .to_string(),
                    ),
                });
            found.push(ContainerState {
                container: id,
                pid: None,
                started_at: termination.started_at,
                termination: Some(termination),
            });
            stack.push((entry.path().join("containers"), parts));
        }
    }
    found.sort_by(|a, b| a.container.cmp(&b.container));
    found
}
