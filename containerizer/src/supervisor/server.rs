//! The supervisor's poll loop: accepts agent requests, launches containers
//! through `runtime`, reaps them, escalates kills, and writes termination
//! records. Single-threaded by design (DESIGN.md section 2): no runtime, no
//! thread pool, just poll(2) over the socket, the clients and a signal pipe.

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libcontainer::container::Container;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::SupervisorError;
use super::logs::{Drained, OutputPipe, RotatingFile, output_pipe};
use super::protocol::{
    ContainerState, Envelope, LaunchRequest, PROTOCOL_VERSION, Request, Response, SessionIo,
    Termination,
};
use super::runtime;
use super::shm;
use super::signals::SignalPipe;
use crate::cgroups::{Cgroups, OomWatcher};
use crate::spec::{
    ContainerKind, IpcMode, ParentContainer, SpecContext, build_process, build_spec,
};
use crate::{ContainerPath, RuntimeDir, atomic::write_atomic};

/// A request line longer than this is a broken or hostile client.
const MAX_REQUEST_BYTES: usize = 1 << 20;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

struct Ctr {
    lc: Option<Container>,
    pid: Option<Pid>,
    /// A DEBUG container: a process run inside its parent's container.
    debug: bool,
    started_at: f64,
    cgroup: Option<String>,
    kill_deadline: Option<Instant>,
    killed_by_request: bool,
    /// Watches the container's memory cgroup; an OOM kill anywhere in it
    /// (PID 1 or a descendant) ends the whole container, as in Mesos.
    oom_watcher: Option<OomWatcher>,
    oom_seen: bool,
    termination: Option<Termination>,
    waiters: Vec<u64>,
    /// Read ends of its stdout and stderr pipes, until their writers close.
    outputs: Vec<OutputPipe>,
    /// What nested containers inherit (known when the supervisor built the
    /// spec itself).
    view: ContainerView,
}

/// What a container's nested containers need to know about it.
#[derive(Default)]
struct ContainerView {
    sandbox_dir: Option<PathBuf>,
    cwd: Option<PathBuf>,
    /// The /dev/shm of its IPC namespace, as a directory in our mount
    /// namespace.
    shm_dir: Option<PathBuf>,
    /// The tmpfs we mounted for it (it has its own IPC namespace).
    shm_mount: Option<PathBuf>,
}

pub struct Server {
    rt: RuntimeDir,
    pod: String,
    listener: UnixListener,
    signals: SignalPipe,
    /// None when the host's cgroups could not be opened: containers still
    /// run, without OOM attribution (logged at start).
    cgroups: Option<Box<dyn Cgroups>>,
    clients: HashMap<u64, Client>,
    next_token: u64,
    containers: BTreeMap<ContainerPath, Ctr>,
    next_lc_id: u64,
    /// Set by SIGTERM or the removal of the top-level container.
    exiting: bool,
    /// When to drop the pages the last burst of work mapped (see `memory`).
    trim_at: Option<Instant>,
}

/// Idle time after start-up or a launch before the supervisor drops the
/// code pages that work touched: long enough not to slow a burst of nested
/// launches, short enough that a host full of idle pods stays small.
const TRIM_DELAY: Duration = Duration::from_millis(500);

impl Server {
    pub fn new(rt: RuntimeDir, pod: String, listener: UnixListener, signals: SignalPipe) -> Self {
        let cgroups = crate::cgroups::open(None)
            .map_err(|e| tracing::warn!("no cgroups, so no OOM attribution: {e}"))
            .ok();
        Self {
            rt,
            pod,
            listener,
            signals,
            cgroups,
            clients: HashMap::new(),
            next_token: 0,
            containers: BTreeMap::new(),
            next_lc_id: 0,
            exiting: false,
            trim_at: Some(Instant::now() + TRIM_DELAY),
        }
    }

    pub fn run(mut self) -> Result<(), SupervisorError> {
        self.listener.set_nonblocking(true)?;
        loop {
            if self.exiting && self.running().next().is_none() && self.clients.is_empty() {
                return Ok(());
            }
            let timeout = self.poll_timeout();
            let tokens: Vec<u64> = self.clients.keys().copied().collect();
            let watched: Vec<ContainerPath> = self
                .containers
                .iter()
                .filter(|(_, c)| c.oom_watcher.is_some() && c.termination.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            let piped: Vec<(ContainerPath, usize)> = self
                .containers
                .iter()
                .flat_map(|(id, c)| (0..c.outputs.len()).map(move |i| (id.clone(), i)))
                .collect();
            let (listener_ready, signals_ready, ready_clients, ooms, outputs) = {
                let mut fds: Vec<PollFd<'_>> =
                    Vec::with_capacity(2 + tokens.len() + watched.len() + piped.len());
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
                for token in &tokens {
                    let fd: BorrowedFd<'_> = self.clients[token].stream.as_fd();
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
                for id in &watched {
                    if let Some(w) = self.containers[id].oom_watcher.as_ref() {
                        fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
                    }
                }
                for (id, i) in &piped {
                    let fd = self.containers[id].outputs[*i].as_fd();
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(SupervisorError::Io(e.into())),
                }
                let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                let clients: Vec<u64> = tokens
                    .iter()
                    .zip(&fds[2..])
                    .filter(|(_, fd)| ready(fd))
                    .map(|(t, _)| *t)
                    .collect();
                let ooms: Vec<ContainerPath> = watched
                    .iter()
                    .zip(&fds[2 + tokens.len()..])
                    .filter(|(_, fd)| ready(fd))
                    .map(|(id, _)| id.clone())
                    .collect();
                let outputs: Vec<(ContainerPath, usize)> = piped
                    .iter()
                    .zip(&fds[2 + tokens.len() + watched.len()..])
                    .filter(|(_, fd)| ready(fd))
                    .map(|(p, _)| p.clone())
                    .collect();
                (ready(&fds[0]), ready(&fds[1]), clients, ooms, outputs)
            };
            self.drain_outputs(outputs);
            for id in ooms {
                self.check_oom(&id);
            }
            if signals_ready {
                for signal in self.signals.drain() {
                    match signal {
                        Signal::SIGCHLD => self.reap(),
                        _ => {
                            tracing::info!(?signal, "supervisor asked to stop: killing the pod");
                            self.exiting = true;
                            let all: Vec<ContainerPath> = self.running().cloned().collect();
                            for id in all {
                                self.kill(&id, Duration::from_secs(3));
                            }
                        }
                    }
                }
            }
            if listener_ready {
                self.accept();
            }
            for token in ready_clients {
                self.read_client(token);
            }
            self.escalate_kills();
            if self.trim_at.is_some_and(|t| t <= Instant::now()) {
                self.trim_at = None;
                let released = super::memory::release_clean_file_pages();
                tracing::debug!(released, "dropped clean file pages");
            }
        }
    }

    /// Copies ready output to the log files; pipes whose writers all closed
    /// are dropped (highest index first, so the others' indices hold).
    fn drain_outputs(&mut self, mut ready: Vec<(ContainerPath, usize)>) {
        ready.sort_by_key(|r| std::cmp::Reverse(r.1));
        for (id, i) in ready {
            if let Some(ctr) = self.containers.get_mut(&id)
                && i < ctr.outputs.len()
                && ctr.outputs[i].drain() == Drained::Closed
            {
                ctr.outputs.remove(i);
            }
        }
    }

    fn running(&self) -> impl Iterator<Item = &ContainerPath> {
        self.containers
            .iter()
            .filter(|(_, c)| c.termination.is_none())
            .map(|(id, _)| id)
    }

    fn poll_timeout(&self) -> PollTimeout {
        let nearest = self
            .containers
            .values()
            .filter_map(|c| c.kill_deadline)
            .chain(self.trim_at)
            .min();
        match nearest {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let ms = deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis();
                PollTimeout::try_from(ms.min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_token += 1;
                    self.clients.insert(
                        self.next_token,
                        Client {
                            stream,
                            buf: Vec::new(),
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn read_client(&mut self, token: u64) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 8192];
        let closed = loop {
            match client.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => client.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if let Some(end) = client.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = client.buf.drain(..=end).collect();
            let response = match serde_json::from_slice::<Envelope<Request>>(&line) {
                Ok(env) if env.version != PROTOCOL_VERSION => Some(Response::Error {
                    message: format!(
                        "protocol version {} is not spoken here (supervisor speaks {PROTOCOL_VERSION})",
                        env.version
                    ),
                }),
                Ok(env) => self.handle(token, env.body),
                Err(e) => Some(Response::Error {
                    message: format!("malformed request: {e}"),
                }),
            };
            if let Some(response) = response {
                self.respond(token, &response);
            }
        } else if closed || client.buf.len() > MAX_REQUEST_BYTES {
            self.drop_client(token);
        }
    }

    /// Answers and hangs up: one request per connection.
    fn respond(&mut self, token: u64, response: &Response) {
        if let Some(mut client) = self.clients.remove(&token) {
            let env = Envelope {
                version: PROTOCOL_VERSION,
                body: response,
            };
            if let Ok(mut line) = serde_json::to_vec(&env) {
                line.push(b'\n');
                // Responses are small; a blocking write cannot stall the loop
                // for long, and a client that stopped reading loses its answer.
                let _ = client.stream.set_nonblocking(false);
                let _ = client
                    .stream
                    .set_write_timeout(Some(Duration::from_secs(5)));
                let _ = client.stream.write_all(&line);
            }
        }
    }

    fn drop_client(&mut self, token: u64) {
        self.clients.remove(&token);
        for ctr in self.containers.values_mut() {
            ctr.waiters.retain(|t| *t != token);
        }
    }

    fn handle(&mut self, token: u64, request: Request) -> Option<Response> {
        let wrong_pod = |id: &ContainerPath| id.pod() != self.pod;
        match request {
            Request::Launch(req) if wrong_pod(&req.container) => {
                Some(self.not_here(&req.container))
            }
            Request::Launch(req) => Some(self.launch(req)),
            Request::Wait { container } => match self.containers.get_mut(&container) {
                None => Some(self.unknown(&container)),
                Some(ctr) => match &ctr.termination {
                    Some(t) => Some(Response::Terminated(t.clone())),
                    None => {
                        ctr.waiters.push(token);
                        None
                    }
                },
            },
            Request::Signal { container, signal } => Some(self.signal(&container, signal)),
            Request::Kill {
                container,
                grace_period_secs,
            } => {
                if !self.containers.contains_key(&container) {
                    return Some(self.unknown(&container));
                }
                let grace = Duration::try_from_secs_f64(grace_period_secs.max(0.0))
                    .unwrap_or(Duration::ZERO);
                self.kill(&container, grace);
                Some(Response::Ok)
            }
            Request::Remove { container } => Some(self.remove(&container)),
            Request::List => Some(Response::Listed {
                containers: self
                    .containers
                    .iter()
                    .map(|(id, c)| ContainerState {
                        container: id.clone(),
                        pid: c.pid.map(|p| p.as_raw()),
                        started_at: c.started_at,
                        termination: c.termination.clone(),
                    })
                    .collect(),
            }),
        }
    }

    fn not_here(&self, id: &ContainerPath) -> Response {
        Response::Error {
            message: format!("container {id} does not belong to pod {}", self.pod),
        }
    }

    fn unknown(&self, id: &ContainerPath) -> Response {
        Response::Error {
            message: format!("unknown container {id}"),
        }
    }

    fn launch(&mut self, req: LaunchRequest) -> Response {
        let id = req.container.clone();
        if self.exiting {
            return Response::Error {
                message: format!("cannot launch {id}: the pod is being torn down"),
            };
        }
        if self.containers.contains_key(&id) {
            return Response::Error {
                message: format!("container {id} already exists"),
            };
        }
        if let Some(parent) = id.parent() {
            let parent_state = self
                .containers
                .get(&parent)
                .map(|p| (p.termination.is_none(), p.debug));
            let refusal = match parent_state {
                Some((true, false)) => None,
                Some((true, true)) => Some("a debug container cannot have nested containers"),
                _ => Some("is not running"),
            };
            if let Some(why) = refusal {
                return Response::Error {
                    message: format!("cannot launch {id}: its parent {parent} {why}"),
                };
            }
        }
        let debug = req
            .spec
            .as_deref()
            .is_some_and(|s| s.kind == ContainerKind::Debug);
        let prepared = if debug {
            self.prepare_debug(&req)
                .map(|(view, exec)| (view, Some(exec)))
        } else {
            self.prepare_bundle(&req).map(|view| (view, None))
        };
        let (view, exec) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => return self.launch_failed(&id, message),
        };
        let release_shm = |view: &ContainerView| {
            if let Some(dir) = &view.shm_mount {
                shm::unmount_shm(dir);
            }
        };
        let (outputs, stdio) = match open_stdio(&req) {
            Ok(opened) => opened,
            Err(message) => {
                release_shm(&view);
                return self.launch_failed(&id, message);
            }
        };
        let started_at = now_secs();
        let state_root = self.rt.libcontainer_state(&self.pod);
        let started = match exec {
            // Debug containers join their parent's container: no
            // libcontainer state, no cgroup of their own.
            Some((parent_lc, process_json)) => {
                runtime::exec_in(&parent_lc, &state_root, &process_json, stdio).map(|pid| {
                    runtime::Started {
                        container: None,
                        pid,
                    }
                })
            }
            None => {
                self.next_lc_id += 1;
                let lc_id = format!("c{}", self.next_lc_id);
                runtime::create_and_start(&lc_id, &state_root, &self.rt.bundle(&id), stdio)
            }
        };
        match started {
            Ok(started) => {
                let kind = if debug { "debug" } else { "container" };
                tracing::info!(container = %id, pid = started.pid.as_raw(), kind, "launched");
                let pid = started.pid.as_raw();
                let cgroup = if debug { None } else { req.cgroup };
                let oom_watcher = match (&self.cgroups, &cgroup) {
                    (Some(cgroups), Some(cgroup)) => cgroups
                        .oom_watcher(cgroup)
                        .map_err(|e| tracing::warn!(container = %id, "no OOM watcher: {e}"))
                        .ok(),
                    _ => None,
                };
                self.containers.insert(
                    id,
                    Ctr {
                        lc: started.container,
                        pid: Some(started.pid),
                        debug,
                        started_at,
                        cgroup,
                        kill_deadline: None,
                        killed_by_request: false,
                        oom_watcher,
                        oom_seen: false,
                        termination: None,
                        waiters: Vec::new(),
                        outputs,
                        view,
                    },
                );
                self.trim_at = Some(Instant::now() + TRIM_DELAY);
                Response::Launched { pid }
            }
            Err(message) => {
                release_shm(&view);
                drop(outputs);
                self.launch_failed(&id, message)
            }
        }
    }

    /// A failed launch leaves nothing: its runtime dir goes, and a pod whose
    /// top-level container never started has no reason to keep a supervisor.
    fn launch_failed(&mut self, id: &ContainerPath, message: String) -> Response {
        tracing::warn!(container = %id, "launch failed: {message}");
        if let Err(e) = crate::safe_remove::remove_tree(&self.rt.container(id)) {
            tracing::warn!(container = %id, "runtime dir left: {e}");
        }
        if id.is_top_level() {
            self.exiting = true;
            super::remove_pod_dir(&self.rt, &self.pod);
        }
        Response::Error {
            message: format!("cannot launch {id}: {message}"),
        }
    }

    /// Writes `config.json` from the request's spec (if it has one): fills
    /// in the host rootfs, the parent's namespaces and sandbox, and mounts a
    /// /dev/shm for a container that gets its own IPC namespace.
    fn prepare_bundle(&self, req: &LaunchRequest) -> Result<ContainerView, String> {
        let Some(launch) = req.spec.as_deref() else {
            return Ok(ContainerView::default());
        };
        let id = &req.container;
        if launch.container_id != *id {
            return Err(format!(
                "the spec is for container {}, not {id}",
                launch.container_id
            ));
        }
        if launch.kind == ContainerKind::Debug {
            return Err("DEBUG containers are not supported by this supervisor yet".into());
        }
        let mut ctx = match req.context.as_deref() {
            Some(ctx) => ctx.clone(),
            None => SpecContext::new(String::new(), PathBuf::new()),
        };
        ctx.host_rootfs = self.rt.hostfs(&self.pod);
        if let Some(cgroup) = &req.cgroup {
            ctx.cgroups_path = cgroup.clone();
        }
        let mut parent_shm = None;
        if let Some(parent_id) = id.parent() {
            let parent = self
                .containers
                .get(&parent_id)
                .ok_or_else(|| format!("its parent {parent_id} is unknown"))?;
            let (Some(pid), Some(sandbox_dir)) = (parent.pid, parent.view.sandbox_dir.clone())
            else {
                return Err(format!(
                    "its parent {parent_id} was launched without a spec; nested containers need one"
                ));
            };
            parent_shm = parent.view.shm_dir.clone();
            ctx.parent = Some(ParentContainer {
                init_pid: pid.as_raw(),
                sandbox_dir,
                shm_dir: parent_shm.clone(),
                cwd: parent.view.cwd.clone(),
            });
        }
        let own_ipc = if id.is_top_level() {
            launch.linux.ipc_mode != Some(IpcMode::ShareParent)
        } else {
            launch.linux.ipc_mode == Some(IpcMode::Private)
        };
        let mut view = ContainerView {
            sandbox_dir: Some(launch.sandbox_dir.clone()),
            ..ContainerView::default()
        };
        if own_ipc {
            let dir = self.rt.container(id).join("shm");
            shm::mount_shm(&dir, launch.linux.shm_size_mb)?;
            ctx.shm_dir = Some(dir.clone());
            view.shm_dir = Some(dir.clone());
            view.shm_mount = Some(dir);
        } else if id.is_top_level() {
            view.shm_dir = Some(PathBuf::from("/dev/shm"));
        } else {
            view.shm_dir = parent_shm;
        }
        let written = super::volumes::create_sandbox_sources(launch, &ctx)
            .and_then(|()| build_spec(launch, &ctx).map_err(|e| e.to_string()))
            .and_then(|spec| {
                view.cwd = spec.process().as_ref().map(|p| p.cwd().clone());
                let bundle = self.rt.bundle(id);
                std::fs::create_dir_all(&bundle)
                    .map_err(|e| format!("cannot create {}: {e}", bundle.display()))?;
                spec.save(bundle.join("config.json"))
                    .map_err(|e| format!("cannot write config.json: {e}"))
            });
        if let Err(message) = written {
            if let Some(dir) = &view.shm_mount {
                shm::unmount_shm(dir);
            }
            return Err(message);
        }
        Ok(view)
    }

    /// Writes the `process.json` of a debug container, a process that joins
    /// its parent's container (namespaces, cgroup, filesystem) the way
    /// `runc exec` does. Returns what nested containers would inherit, the
    /// parent's libcontainer id and the process file.
    fn prepare_debug(
        &self,
        req: &LaunchRequest,
    ) -> Result<(ContainerView, (String, PathBuf)), String> {
        let id = &req.container;
        let launch = req
            .spec
            .as_deref()
            .ok_or("a debug container needs a spec")?;
        let parent_id = id.parent().ok_or("a debug container needs a parent")?;
        let parent = self
            .containers
            .get(&parent_id)
            .ok_or_else(|| format!("its parent {parent_id} is unknown"))?;
        let (Some(lc), Some(pid)) = (parent.lc.as_ref(), parent.pid) else {
            return Err(format!("its parent {parent_id} is not running"));
        };
        let mut ctx = match req.context.as_deref() {
            Some(ctx) => ctx.clone(),
            None => SpecContext::new(String::new(), PathBuf::new()),
        };
        let sandbox_dir = parent
            .view
            .sandbox_dir
            .clone()
            .unwrap_or_else(|| launch.sandbox_dir.clone());
        ctx.parent = Some(ParentContainer {
            init_pid: pid.as_raw(),
            sandbox_dir: sandbox_dir.clone(),
            shm_dir: parent.view.shm_dir.clone(),
            cwd: parent.view.cwd.clone(),
        });
        let process = build_process(launch, &ctx).map_err(|e| e.to_string())?;
        let dir = self.rt.container(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("process.json");
        let bytes =
            serde_json::to_vec(&process).map_err(|e| format!("cannot encode the process: {e}"))?;
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let view = ContainerView {
            sandbox_dir: Some(sandbox_dir),
            cwd: parent.view.cwd.clone(),
            shm_dir: parent.view.shm_dir.clone(),
            shm_mount: None,
        };
        Ok((view, (lc.id().to_string(), path)))
    }

    fn signal(&mut self, id: &ContainerPath, signal: i32) -> Response {
        let Some(ctr) = self.containers.get(id) else {
            return self.unknown(id);
        };
        let Ok(sig) = Signal::try_from(signal) else {
            return Response::Error {
                message: format!("{signal} is not a signal"),
            };
        };
        match (ctr.pid, &ctr.termination) {
            (Some(pid), None) => match nix::sys::signal::kill(pid, sig) {
                Ok(()) => {
                    self.signal_others(id, pid, sig);
                    Response::Ok
                }
                Err(e) => Response::Error {
                    message: format!("cannot signal {id}: {e}"),
                },
            },
            _ => Response::Error {
                message: format!("container {id} is not running"),
            },
        }
    }

    /// Sends `sig` to every other process of the container too (`runc kill
    /// --all`): a shell as PID 1 has no handler for SIGTERM, so the kernel
    /// drops it, and the command it runs would never hear of the kill.
    fn signal_others(&self, id: &ContainerPath, init: Pid, sig: Signal) {
        let (Some(cgroups), Some(cgroup)) = (
            &self.cgroups,
            self.containers.get(id).and_then(|c| c.cgroup.as_deref()),
        ) else {
            return;
        };
        if let Ok(pids) = cgroups.processes(cgroup) {
            // A task on its way out whose pid is already released may be
            // listed as 0, and kill(0) would signal our own process group:
            // this supervisor (`fs::sigkill` refuses it the same way).
            for pid in pids.into_iter().filter(|p| *p > 0 && *p != init.as_raw()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
        }
    }

    /// SIGTERM now, SIGKILL to the whole container at the deadline. Nested
    /// containers go first so a parent never outlives-then-orphans them.
    fn kill(&mut self, id: &ContainerPath, grace: Duration) {
        let mut sigterm_all = Vec::new();
        let nested: Vec<ContainerPath> = self
            .running()
            .filter(|c| c.parts().len() > id.parts().len() && c.parts().starts_with(id.parts()))
            .cloned()
            .collect();
        for target in nested.iter().chain(std::iter::once(id)) {
            let Some(ctr) = self.containers.get_mut(target) else {
                continue;
            };
            if ctr.termination.is_some() {
                continue;
            }
            ctr.killed_by_request = true;
            if let Some(pid) = ctr.pid {
                let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                sigterm_all.push((target.clone(), pid));
            }
            let deadline = Instant::now() + grace;
            ctr.kill_deadline = Some(ctr.kill_deadline.map_or(deadline, |d| d.min(deadline)));
        }
        for (target, pid) in sigterm_all {
            self.signal_others(&target, pid, Signal::SIGTERM);
        }
        self.escalate_kills();
    }

    /// The kernel OOM-killed a process of the container: the container has
    /// hit its memory limit and is destroyed whole (Mesos's memory
    /// limitation), whether the victim was PID 1 or a descendant.
    fn check_oom(&mut self, id: &ContainerPath) {
        let Some(ctr) = self.containers.get_mut(id) else {
            return;
        };
        let Some(watcher) = ctr.oom_watcher.as_mut() else {
            return;
        };
        match watcher.check() {
            Ok(Some(event)) => {
                tracing::warn!(container = %id, kills = event.new_kills, "OOM kill: destroying the container");
                ctr.oom_seen = true;
                ctr.kill_deadline = Some(Instant::now());
                self.escalate_kills();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(container = %id, "OOM watcher failed, dropping it: {e}");
                ctr.oom_watcher = None;
            }
        }
    }

    fn escalate_kills(&mut self) {
        let now = Instant::now();
        for (id, ctr) in self.containers.iter_mut() {
            if ctr.termination.is_some() || ctr.kill_deadline.is_none_or(|d| d > now) {
                continue;
            }
            ctr.kill_deadline = None;
            tracing::info!(container = %id, "grace period over: SIGKILL");
            let killed = ctr
                .lc
                .as_mut()
                .is_some_and(|lc| lc.kill(Signal::SIGKILL, true).is_ok());
            if !killed && let Some(pid) = ctr.pid {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Ok(WaitStatus::Exited(pid, code)) => self.terminated(pid, code << 8),
                Ok(WaitStatus::Signaled(pid, sig, core)) => {
                    self.terminated(pid, sig as i32 | if core { 0x80 } else { 0 })
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    fn terminated(&mut self, pid: Pid, status: i32) {
        let Some(id) = self
            .containers
            .iter()
            .find(|(_, c)| c.pid == Some(pid) && c.termination.is_none())
            .map(|(id, _)| id.clone())
        else {
            return; // an orphan we adopted as subreaper: reaped, nothing to record
        };
        // Everything nested inside dies with its parent, as in Mesos.
        let nested: Vec<ContainerPath> = self
            .running()
            .filter(|c| c.parts().len() > id.parts().len() && c.parts().starts_with(id.parts()))
            .cloned()
            .collect();
        for child in nested {
            self.kill(&child, Duration::ZERO);
        }

        let termination_path = self.rt.termination(&id);
        let Some(ctr) = self.containers.get_mut(&id) else {
            return;
        };
        let (exit_code, signal) = Termination::from_wait_status(status);
        // Read before libcontainer removes the cgroup below.
        let (oom_kills, peak_memory_bytes) = match (&self.cgroups, ctr.cgroup.as_deref()) {
            (Some(cgroups), Some(cgroup)) => (
                cgroups.oom_kill_count(cgroup).ok().flatten().unwrap_or(0),
                cgroups.peak_memory_bytes(cgroup).ok().flatten(),
            ),
            _ => (0, None),
        };
        let termination = Termination {
            container: id.clone(),
            status,
            exit_code,
            signal,
            oom_killed: ctr.oom_seen || oom_kills > 0,
            killed_by_request: ctr.killed_by_request,
            started_at: ctr.started_at,
            finished_at: now_secs(),
            peak_memory_bytes,
            message: None,
        };
        // The record is on disk before anything of the container goes away.
        match serde_json::to_vec_pretty(&termination) {
            Ok(bytes) => {
                if let Err(e) = write_atomic(&termination_path, &bytes) {
                    tracing::error!(container = %id, "cannot write the termination record: {e}");
                }
            }
            Err(e) => tracing::error!(container = %id, "cannot encode the termination record: {e}"),
        }
        tracing::info!(container = %id, status, oom = termination.oom_killed, "terminated");
        if let Some(mut lc) = ctr.lc.take()
            && let Err(e) = runtime::destroy(&mut lc)
        {
            tracing::warn!(container = %id, "{e}");
        }
        ctr.kill_deadline = None;
        ctr.oom_watcher = None;
        // Its processes are all gone now: what is still in the pipes is the
        // last of its output.
        for mut output in std::mem::take(&mut ctr.outputs) {
            output.drain();
        }
        if let Some(dir) = ctr.view.shm_mount.take() {
            shm::unmount_shm(&dir);
        }
        ctr.termination = Some(termination.clone());
        let waiters = std::mem::take(&mut ctr.waiters);
        for token in waiters {
            self.respond(token, &Response::Terminated(termination.clone()));
        }
    }

    fn remove(&mut self, id: &ContainerPath) -> Response {
        let Some(ctr) = self.containers.get(id) else {
            return self.unknown(id);
        };
        if ctr.termination.is_none() {
            return Response::Error {
                message: format!("container {id} is still running: kill it first"),
            };
        }
        let still_running_inside = self
            .running()
            .any(|c| c.parts().len() > id.parts().len() && c.parts().starts_with(id.parts()));
        if still_running_inside {
            return Response::Error {
                message: format!("container {id} still has running nested containers"),
            };
        }
        self.containers.retain(|c, _| {
            !(c.parts().len() >= id.parts().len() && c.parts().starts_with(id.parts()))
        });
        if let Err(e) = crate::safe_remove::remove_tree(&self.rt.container(id))
            && e.kind() != ErrorKind::NotFound
        {
            return Response::Error {
                message: format!("cannot remove the runtime dir of {id}: {e}"),
            };
        }
        if id.is_top_level() {
            // The pod is gone: clean up before answering, so the agent
            // finds nothing of it once it has the answer (the process
            // itself exits right after).
            self.exiting = true;
            super::remove_pod_dir(&self.rt, &self.pod);
        }
        Response::Ok
    }
}

/// The container's stdio: a session's FIFOs or terminal, or else `/dev/null`
/// in and log pipes out (with the pipes' read ends, which we drain).
fn open_stdio(req: &LaunchRequest) -> Result<(Vec<OutputPipe>, runtime::Stdio), String> {
    match &req.session {
        None => {
            let (outputs, stdout, stderr) = open_outputs(req)?;
            Ok((outputs, runtime::Stdio::logged(stdout, stderr)?))
        }
        Some(SessionIo::Pipes {
            stdin,
            stdout,
            stderr,
        }) => Ok((
            Vec::new(),
            runtime::Stdio::Fds {
                stdin: open_fifo(stdin, false)?,
                stdout: open_fifo(stdout, true)?,
                stderr: open_fifo(stderr, true)?,
            },
        )),
        Some(SessionIo::Terminal { console_socket }) => {
            Ok((Vec::new(), runtime::Stdio::Console(console_socket.clone())))
        }
    }
}

/// Opens one end of a session FIFO without ever blocking this loop: the
/// agent holds the other end open already, and if it has gone the open
/// fails (a write end with no reader) instead of hanging. The container
/// gets a blocking fd, as programs expect.
fn open_fifo(path: &std::path::Path, write: bool) -> Result<std::os::fd::OwnedFd, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot open the session pipe {}: {e}", path.display()))?;
    let is_fifo = file.metadata().is_ok_and(|m| m.file_type().is_fifo());
    if !is_fifo {
        return Err(format!("{} is not a FIFO", path.display()));
    }
    let fd = std::os::fd::OwnedFd::from(file);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: fcntl on an fd we own, with integer arguments.
    let cleared = unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        flags >= 0 && libc::fcntl(raw, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(format!(
            "cannot make {} blocking: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// The container's stdout/stderr pipes: the write ends for the container,
/// the read ends feeding the sandbox's (rotated) files.
fn open_outputs(
    req: &LaunchRequest,
) -> Result<(Vec<OutputPipe>, std::os::fd::OwnedFd, std::os::fd::OwnedFd), String> {
    let mut outputs = Vec::with_capacity(2);
    let mut write_ends = Vec::with_capacity(2);
    for path in [&req.stdout, &req.stderr] {
        let sink = RotatingFile::open(path, req.log)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let (read, write) = output_pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        outputs.push(OutputPipe::new(read, sink));
        write_ends.push(write);
    }
    let stderr = write_ends.pop();
    let stdout = write_ends.pop();
    match (stdout, stderr) {
        (Some(stdout), Some(stderr)) => Ok((outputs, stdout, stderr)),
        _ => Err("cannot create the output pipes".into()),
    }
}
