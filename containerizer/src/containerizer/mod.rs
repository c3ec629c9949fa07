//! The agent's entry point to containers: [`Containerizer`] launches,
//! waits for, kills, updates, measures and recovers the containers of every
//! pod, hiding the supervisors, cgroup layout and runtime dir behind calls
//! named after what the agent wants.
//!
//! Split of work: this side (inside the agent) owns the pod's parent cgroup
//! and the limits of every cgroup of the pod (they depend on all members,
//! `share_cgroups`), the sandbox directory, and the `spec.json` of each
//! container (what was asked, updated on live resource changes, read back
//! at recovery). The pod's supervisor owns everything libcontainer does:
//! the bundle's `config.json` (built from the spec with what only it
//! knows), the container's own cgroup, its processes, stdio and the
//! termination record.

mod error;
mod limits;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use tepui_proto::v1::ResourceStatistics;
use tokio::sync::Mutex;

pub use error::ContainerizerError;
use limits::limits_of;
use session::PreparedSession;
pub use session::{PtyMaster, SessionEnds};

use crate::cgroups::{self, CgroupError, CgroupMode, Cgroups, ControlValues, pod_limits};
use crate::images::{ImageStore, Rootfs, RootfsBackend, apply_image_config};
use crate::spec::{ContainerKind, LaunchSpec, ResourceRequest, SpecContext};
use crate::supervisor::SupervisorError;
use crate::supervisor::client::{self, SupervisorClient, SupervisorExe};
use crate::supervisor::logs::LogPolicy;
use crate::supervisor::protocol::{ContainerState, LaunchRequest, SessionIo, Termination};
use crate::{ContainerPath, RuntimeDir, atomic::write_atomic, safe_remove};

/// Default `--container_pids_limit`. pids.max counts threads, so it must
/// fit a busy JVM or Go server (hundreds to a few thousand threads) while
/// keeping a fork bomb far from the kernel's `pid_max` (32768 by default on
/// small hosts; systemd's `DefaultTasksMax` is 15% of it, 4915): 4096
/// threads per container.
pub const DEFAULT_CONTAINER_PIDS_LIMIT: u64 = 4096;

/// What the agent configures once.
#[derive(Debug, Clone)]
pub struct ContainerizerConfig {
    /// `--runtime_dir` (tmpfs; default `/run/tepui`).
    pub runtime_dir: PathBuf,
    /// `--cgroups_root`: pods are `<root>/<pod>` (standalone placement, see
    /// `cgroups::layout`).
    pub cgroups_root: String,
    /// `--cgroups_systemd`: on cgroup v2 with systemd as PID 1, each pod is
    /// a delegated transient scope instead of a cgroup under
    /// `cgroups_root` (`cgroups::layout`).
    pub systemd_scopes: bool,
    /// `None` detects v1 or v2 from the mount table.
    pub cgroup_mode: Option<CgroupMode>,
    /// The binary supervisors run (`tepui supervise`).
    pub supervisor_binary: PathBuf,
    /// Run supervisors from a sealed memfd copy of `supervisor_binary`
    /// (DESIGN.md section 2). Off only for debugging.
    pub seal_supervisor: bool,
    /// Top-level containers use the host's network (Mesos's behaviour
    /// without a CNI network: executors reach the agent at its address).
    pub host_network: bool,
    /// Where the sandbox appears in image containers.
    pub sandbox_mount_point: PathBuf,
    pub log: LogPolicy,
    /// Mesos's `--cgroups_enable_cfs`.
    pub cfs_quota_from_request: bool,
    /// `--cgroups_limit_swap`: memory limits include swap (no swap beyond
    /// the limit). Unlike Mesos (default off, v1 only) on by default, v1
    /// and v2: a memory limit then means memory, and OOM is deterministic.
    pub limit_swap: bool,
    /// `--container_pids_limit`: `pids.max` of every container's own
    /// cgroup; `None` leaves it unlimited.
    pub container_pids_limit: Option<u64>,
    /// Where pulled image layers live and how registries are reached;
    /// `None` refuses containers with an image.
    pub images: Option<ImagesConfig>,
    /// Host directories containers without an image must not see (the
    /// agent's work dir, its fetcher cache, ...), besides the runtime dir
    /// and the image store, which are always hidden
    /// (`SpecContext::hidden_host_dirs`).
    pub hidden_host_dirs: Vec<PathBuf>,
    /// Host files they must not read either (the agent's secrets given by
    /// flags; `SpecContext::hidden_host_files`).
    pub hidden_host_files: Vec<PathBuf>,
    /// CNI networks (`--network_cni_*`); `None` refuses containers that
    /// name a network.
    pub cni: Option<crate::cni::CniConfig>,
}

#[derive(Debug, Clone)]
pub struct ImagesConfig {
    pub store_dir: PathBuf,
    pub registry: tepui_fetcher::registry::RegistryConfig,
    /// `--image_gc_max_size`: after each pull, least recently used images
    /// not in use go until the unpacked layers fit. `None`: no limit.
    pub gc_max_bytes: Option<u64>,
}

impl ContainerizerConfig {
    pub fn new(runtime_dir: impl Into<PathBuf>) -> Self {
        Self {
            runtime_dir: runtime_dir.into(),
            cgroups_root: "tepui".to_string(),
            systemd_scopes: true,
            cgroup_mode: None,
            supervisor_binary: PathBuf::from("/proc/self/exe"),
            seal_supervisor: true,
            host_network: true,
            sandbox_mount_point: PathBuf::from(crate::spec::DEFAULT_SANDBOX_MOUNT_POINT),
            log: LogPolicy::default(),
            cfs_quota_from_request: false,
            limit_swap: true,
            container_pids_limit: Some(DEFAULT_CONTAINER_PIDS_LIMIT),
            images: None,
            hidden_host_dirs: Vec::new(),
            hidden_host_files: Vec::new(),
            cni: None,
        }
    }
}

/// What containers without an image must not see: the runtime dir (every
/// pod's supervisor socket: a task that reached its own could launch or
/// kill past the agent's checks), the image store and what the agent
/// names. Resolved through symlinks, as mount destinations are; a dir that
/// does not exist yet is taken as given.
fn hidden_host_dirs(config: &ContainerizerConfig) -> Vec<PathBuf> {
    std::iter::once(&config.runtime_dir)
        .chain(config.images.iter().map(|i| &i.store_dir))
        .chain(config.hidden_host_dirs.iter())
        .map(|dir| {
            let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            absolute.canonicalize().unwrap_or(absolute)
        })
        .collect()
}

/// Whether a supervisor that just hung up on a request is gone. A killed
/// process's files are released one by one as it exits: the request's
/// connection may close while its listening socket still takes connections
/// for a moment, so one probe right after the hang-up can say "alive".
/// A few probes over half a second tell a dying supervisor from a live one
/// that failed a request (which then answers every probe).
async fn supervisor_gone(client: &SupervisorClient) -> bool {
    for _ in 0..10 {
        if !client.is_alive().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One container of a pod as the containerizer tracks it.
#[derive(Debug, Clone)]
struct Member {
    kind: ContainerKind,
    resources: ResourceRequest,
}

#[derive(Debug)]
struct Pod {
    /// `None` when the supervisor was found dead at recovery.
    client: Option<SupervisorClient>,
    members: BTreeMap<ContainerPath, Member>,
    /// The pod's `share_cgroups`, fixed by its first task.
    share_cgroups: Option<bool>,
    /// How the containers of a dead supervisor ended (from its records).
    dead: BTreeMap<ContainerPath, Termination>,
    /// The agent's view of the pod's live tasks and their `share_cgroups`
    /// ([`Containerizer::size_pod`]); `None` until it says.
    sized: Option<(Vec<ResourceRequest>, bool)>,
    /// Containers of the pod seen to end OOM-killed: the pod's OOM count
    /// keeps them once their cgroups are gone.
    oom_ended: std::collections::BTreeSet<ContainerPath>,
}

/// A container found by [`Containerizer::recover`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredContainer {
    pub container: ContainerPath,
    /// Set while it runs.
    pub pid: Option<i32>,
    /// Set once it ended (possibly while the agent was away).
    pub termination: Option<Termination>,
    /// What it was launched with (`None` when its spec was not recorded).
    pub spec: Option<LaunchSpec>,
}

/// A launched container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    /// Its init process, in the host's pid namespace.
    pub pid: i32,
}

pub struct Containerizer {
    config: ContainerizerConfig,
    rt: RuntimeDir,
    cgroups: Arc<dyn Cgroups>,
    layout: cgroups::Layout,
    exe: SupervisorExe,
    host_memory_bytes: u64,
    pods: SyncMutex<HashMap<String, Arc<Mutex<Pod>>>>,
    images: Option<Arc<ImageStore>>,
    /// `SpecContext::hidden_host_dirs`, resolved once.
    hidden_host_dirs: Vec<PathBuf>,
    cni: Option<Arc<crate::cni::Cni>>,
}

impl std::fmt::Debug for Containerizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containerizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Containerizer {
    /// Opens the host's cgroups and prepares the supervisor executable.
    /// Call [`recover`](Self::recover) next, before launching anything.
    pub fn new(config: ContainerizerConfig) -> Result<Self, ContainerizerError> {
        let mut opened = cgroups::open(config.cgroup_mode)
            .map_err(|e| ContainerizerError::Setup(e.to_string()))?;
        // Degraded, not refused, where Mesos would run too (it has neither
        // limit by default): said in the log and in /flags.
        if config.limit_swap && !opened.set_limit_swap(true) {
            tracing::warn!(
                "--cgroups_limit_swap: this kernel has no swap accounting (v1: memory.memsw.limit_in_bytes missing; boot with swapaccount=1): containers may swap beyond their memory limit"
            );
        }
        if config.container_pids_limit.is_some() && !opened.pids_supported() {
            tracing::warn!(
                "--container_pids_limit: the pids cgroup controller is not available (v1: mount it; v2: enable it in the parent's cgroup.subtree_control): containers run without a pids limit"
            );
        }
        let cgroups: Arc<dyn Cgroups> = Arc::from(opened);
        cgroups
            .check_controllers()
            .map_err(|e| ContainerizerError::Setup(e.to_string()))?;
        let layout = Self::choose_layout(&config, cgroups.as_ref());
        if layout.scope_unit("p").is_none() {
            cgroups
                .prepare_standalone()
                .map_err(|e| ContainerizerError::Setup(e.to_string()))?;
        }
        tracing::info!(cgroups = %layout.describe(), "cgroup layout");
        let exe = if config.seal_supervisor {
            SupervisorExe::sealed_copy_of(&config.supervisor_binary)
                .map_err(|e| ContainerizerError::Setup(e.to_string()))?
        } else {
            SupervisorExe::Path(config.supervisor_binary.clone())
        };
        let host_memory_bytes = cgroups::host_total_memory_bytes(Path::new("/proc/meminfo"))
            .map_err(|e| ContainerizerError::Setup(e.to_string()))?;
        std::fs::create_dir_all(config.runtime_dir.join("pods")).map_err(|e| {
            ContainerizerError::Setup(format!(
                "cannot create {}: {e}",
                config.runtime_dir.display()
            ))
        })?;
        let images = match &config.images {
            Some(images) => Some(Arc::new(
                ImageStore::open(&images.store_dir, images.registry.clone())
                    .map_err(|e| ContainerizerError::Setup(format!("image store: {e}")))?
                    .with_gc_max_bytes(images.gc_max_bytes),
            )),
            None => None,
        };
        let cni = match &config.cni {
            Some(cni) => Some(Arc::new(
                crate::cni::Cni::new(cni.clone())
                    .map_err(|e| ContainerizerError::Setup(e.to_string()))?,
            )),
            None => None,
        };
        let hidden_host_dirs = hidden_host_dirs(&config);
        Ok(Self {
            rt: RuntimeDir::new(&config.runtime_dir),
            images,
            hidden_host_dirs,
            cni,
            config,
            cgroups,
            layout,
            exe,
            host_memory_bytes,
            pods: SyncMutex::new(HashMap::new()),
        })
    }

    pub fn runtime_dir(&self) -> &RuntimeDir {
        &self.rt
    }

    /// The CNI networks a live pod is attached to (empty: the host's).
    pub fn pod_networks(&self, pod: &str) -> Vec<crate::cni::Attached> {
        self.cni
            .as_ref()
            .map(|c| c.networks_of(pod))
            .unwrap_or_default()
    }

    /// Whose address `ip` is among the agent's CNI networks: how the agent
    /// tells a pod calling it over its bridge from a remote client.
    pub fn address_owner(&self, ip: std::net::IpAddr) -> crate::cni::AddressOwner {
        self.cni
            .as_ref()
            .map_or(crate::cni::AddressOwner::NotOurs, |c| c.owner_of(ip))
    }

    pub fn cgroup_mode(&self) -> CgroupMode {
        self.cgroups.mode()
    }

    /// Picks the placement of pods (`cgroups::layout`).
    fn choose_layout(config: &ContainerizerConfig, cgroups: &dyn Cgroups) -> cgroups::Layout {
        let standalone = cgroups::Layout::standalone(&config.cgroups_root);
        if cgroups.mode() != CgroupMode::V2 || !config.systemd_scopes {
            return standalone;
        }
        match cgroups::layout::systemd_run() {
            Some(_) => cgroups::Layout::SystemdScopes,
            None => {
                tracing::info!(
                    "systemd is not PID 1 (or systemd-run is missing): pods go under --cgroups_root"
                );
                standalone
            }
        }
    }

    /// Whether memory limits include swap here (`--cgroups_limit_swap`).
    pub fn limits_swap(&self) -> bool {
        self.cgroups.limits_swap()
    }

    /// Whether `--container_pids_limit` is enforced here.
    pub fn limits_pids(&self) -> bool {
        self.pids_limit().is_some()
    }

    /// `--container_pids_limit` where the host can enforce it.
    fn pids_limit(&self) -> Option<u64> {
        self.config
            .container_pids_limit
            .filter(|_| self.cgroups.pids_supported())
    }

    /// Where pods and supervisors are placed.
    pub fn cgroup_layout(&self) -> &cgroups::Layout {
        &self.layout
    }

    /// The pod's parent cgroup (`cgroups::layout`).
    pub fn pod_cgroup(&self, pod: &str) -> String {
        self.layout.pod(pod)
    }

    /// `<cgroups_root>/<pod>/<a.b.c>`: a container's own cgroup, a sibling
    /// of the pod's other containers.
    pub fn container_cgroup(&self, id: &ContainerPath) -> String {
        format!("{}/{}", self.pod_cgroup(id.pod()), id.parts().join("."))
    }

    fn pod(&self, name: &str) -> Option<Arc<Mutex<Pod>>> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn forget_pod(&self, name: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Launches a container: a top-level one gets a new pod (cgroup and
    /// supervisor), a nested one joins its parent's pod. Checks what can be
    /// checked here first; what only the supervisor can check (the user,
    /// the executable, volume sources) comes back as
    /// [`ContainerizerError::Launch`]. A failed launch leaves nothing behind.
    pub async fn launch(&self, spec: LaunchSpec) -> Result<Launched, ContainerizerError> {
        self.launch_with(spec, None).await
    }

    /// Launches a nested container whose stdio the caller holds (Mesos's
    /// LAUNCH_NESTED_CONTAINER_SESSION): FIFOs, or a terminal when the spec
    /// asks for one. Dropping the ends ends the session for the process
    /// (EOF, EPIPE, SIGHUP); the caller still kills and removes it.
    pub async fn launch_session(
        &self,
        spec: LaunchSpec,
    ) -> Result<(Launched, SessionEnds), ContainerizerError> {
        let id = spec.container_id.clone();
        if id.is_top_level() {
            return Err(ContainerizerError::Launch {
                container: id,
                message: "a session container must be nested (container_id.parent)".into(),
            });
        }
        if self.rt.container(&id).exists() {
            return Err(ContainerizerError::AlreadyExists(id));
        }
        let io_err = |what, source| ContainerizerError::Io {
            container: id.clone(),
            what,
            path: self.rt.container(&id),
            source,
        };
        let prepared = PreparedSession::prepare(&self.rt.container(&id), self.rt.root(), spec.tty)
            .map_err(|e| io_err("cannot set up the session's stdio in", e))?;
        let launched = self.launch_with(spec, Some(prepared.io.clone())).await?;
        match prepared.finish().await {
            Ok(ends) => Ok((launched, ends)),
            Err(e) => {
                if let Err(e) = self.destroy(&id, Duration::ZERO).await {
                    tracing::warn!(container = %id, "session container left: {e}");
                }
                Err(io_err("cannot connect the session's terminal for", e))
            }
        }
    }

    async fn launch_with(
        &self,
        mut spec: LaunchSpec,
        session: Option<SessionIo>,
    ) -> Result<Launched, ContainerizerError> {
        let id = spec.container_id.clone();
        spec.validate().map_err(|source| ContainerizerError::Spec {
            container: id.clone(),
            source,
        })?;
        limits_of(&spec.resources)
            .validate()
            .map_err(|source| ContainerizerError::Limits {
                container: id.clone(),
                source,
            })?;
        if id.is_top_level() {
            // The pod's rootfs dir must be a shared mount before anything
            // is provisioned in it: launch_pod provisions after that.
            return self.launch_pod(spec).await;
        }
        let provisioned = self.provision_checked(&mut spec).await?;
        let result = self.launch_nested(spec, session).await;
        if result.is_err()
            && let (Some(store), Some(rootfs)) = (&self.images, provisioned)
            && let Err(e) = store.release(&rootfs)
        {
            tracing::warn!(container = %id, "image rootfs left after a failed launch: {e}");
        }
        result
    }

    /// [`provision`](Self::provision), then checks that the rootfs the
    /// container will pivot into is there.
    async fn provision_checked(
        &self,
        spec: &mut LaunchSpec,
    ) -> Result<Option<Rootfs>, ContainerizerError> {
        let provisioned = self.provision(spec).await?;
        if let Some(rootfs) = &spec.rootfs
            && !rootfs.is_dir()
        {
            if let (Some(store), Some(rootfs)) = (&self.images, &provisioned) {
                let _ = store.release(rootfs);
            }
            return Err(ContainerizerError::MissingRootfs {
                container: spec.container_id.clone(),
                rootfs: rootfs.clone(),
            });
        }
        Ok(provisioned)
    }

    /// Pulls the spec's image and assembles its rootfs (overlay, or a copy)
    /// under the image store; the image's Entrypoint/Cmd/Env/WorkingDir/User
    /// apply by Mesos's rules.
    async fn provision(&self, spec: &mut LaunchSpec) -> Result<Option<Rootfs>, ContainerizerError> {
        let Some(request) = spec.image.clone() else {
            return Ok(None);
        };
        if spec.rootfs.is_some() {
            return Ok(None);
        }
        let id = spec.container_id.clone();
        let image_err = |message: String| ContainerizerError::Image {
            container: id.clone(),
            image: request.reference.clone(),
            message: if message.contains(&request.reference) {
                message
            } else {
                format!("image '{}': {message}", request.reference)
            },
        };
        let store = self.images.clone().ok_or_else(|| {
            image_err("container images are not enabled on this agent (--image_providers)".into())
        })?;
        let credentials = request
            .credentials
            .as_ref()
            .map(|(user, password)| tepui_fetcher::registry::Credentials::new(user, password));
        let dir = store
            .root()
            .join("containers")
            .join(id.pod())
            .join(id.parts().join("."));
        let (image, rootfs) = store
            .pull_and_provision(&request.reference, credentials.as_ref(), &dir)
            .await
            .map_err(|e| image_err(e.to_string()))?;
        spec.rootfs = Some(rootfs.path.clone());
        if let Err(e) = apply_image_config(spec, &request.reference, &image.config) {
            let _ = store.release(&rootfs);
            return Err(image_err(e.to_string()));
        }
        Ok(Some(rootfs))
    }

    /// PRUNE_IMAGES: removes every pulled image except `excluded` ones
    /// (references) and those live containers use, then the layers no
    /// remaining image needs. Layers of provisioned rootfses are never
    /// removed: the store's per-rootfs `image.json`s name them, and the
    /// live containers' specs add their images' references to `excluded`
    /// (for rootfses provisioned before those records existed).
    pub async fn prune_images(
        &self,
        excluded: &[String],
    ) -> Result<crate::images::PruneReport, ContainerizerError> {
        let store = self.images.clone().ok_or_else(|| {
            ContainerizerError::PruneImages(
                "container images are not enabled on this agent (--image_providers)".into(),
            )
        })?;
        let mut keep = excluded.to_vec();
        keep.extend(self.live_image_references());
        store
            .prune(&keep, &[])
            .await
            .map_err(|e| ContainerizerError::PruneImages(e.to_string()))
    }

    /// Whether the container was launched and not yet removed (running or
    /// terminated).
    pub async fn knows(&self, id: &ContainerPath) -> bool {
        match self.pod(id.pod()) {
            Some(entry) => {
                let pod = entry.lock().await;
                pod.members.contains_key(id)
                    || pod.dead.contains_key(id)
                    || self.rt.termination(id).exists()
            }
            None => false,
        }
    }

    /// The image store (`None` without `--image_providers`).
    pub fn image_store(&self) -> Option<Arc<ImageStore>> {
        self.images.clone()
    }

    /// Pull and GC counters of the image store (`None` without images).
    pub fn image_metrics(&self) -> Option<crate::images::ImageMetricsSnapshot> {
        self.images.as_ref().map(|s| s.metrics().snapshot())
    }

    /// The image references of every container with a `spec.json` under
    /// the runtime dir (every container not yet removed).
    fn live_image_references(&self) -> Vec<String> {
        let mut found = Vec::new();
        let Ok(pods) = std::fs::read_dir(self.config.runtime_dir.join("pods")) else {
            return found;
        };
        let mut stack: Vec<PathBuf> = Vec::new();
        for pod in pods.flatten() {
            if let Ok(children) = std::fs::read_dir(pod.path().join("containers")) {
                stack.extend(children.flatten().map(|c| c.path()));
            }
        }
        while let Some(dir) = stack.pop() {
            if let Ok(bytes) = std::fs::read(dir.join("spec.json"))
                && let Ok(spec) = serde_json::from_slice::<LaunchSpec>(&bytes)
                && let Some(image) = spec.image
            {
                found.push(image.reference);
            }
            if let Ok(children) = std::fs::read_dir(dir.join("containers")) {
                stack.extend(children.flatten().map(|c| c.path()));
            }
        }
        found
    }

    /// The image rootfses of a container and everything nested in it, from
    /// their `spec.json` (read before the supervisor removes them).
    fn image_rootfses(&self, id: &ContainerPath) -> Vec<Rootfs> {
        let mut found = Vec::new();
        let mut stack = vec![self.rt.container(id)];
        while let Some(dir) = stack.pop() {
            if let Ok(bytes) = std::fs::read(dir.join("spec.json"))
                && let Ok(spec) = serde_json::from_slice::<LaunchSpec>(&bytes)
                && spec.image.is_some()
                && let Some(path) = spec.rootfs
                && let Some(container_dir) = path.parent().map(Path::to_path_buf)
            {
                found.push(Rootfs {
                    path,
                    container_dir,
                    backend: RootfsBackend::Overlay,
                });
            }
            if let Ok(children) = std::fs::read_dir(dir.join("containers")) {
                stack.extend(children.flatten().map(|c| c.path()));
            }
        }
        found
    }

    fn release_rootfses(&self, rootfses: Vec<Rootfs>) {
        let Some(store) = &self.images else {
            return;
        };
        for rootfs in rootfses {
            if let Err(e) = store.release(&rootfs) {
                tracing::warn!(rootfs = %rootfs.path.display(), "image rootfs left: {e}");
            }
        }
    }

    async fn launch_pod(&self, mut spec: LaunchSpec) -> Result<Launched, ContainerizerError> {
        let id = spec.container_id.clone();
        let pod_name = id.pod().to_string();
        let entry = Arc::new(Mutex::new(Pod {
            client: None,
            members: BTreeMap::new(),
            share_cgroups: None,
            dead: BTreeMap::new(),
            sized: None,
            oom_ended: Default::default(),
        }));
        let mut pod = entry
            .clone()
            .try_lock_owned()
            .map_err(|_| ContainerizerError::Setup("a fresh pod entry is locked".to_string()))?;
        {
            let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
            if pods.contains_key(&pod_name) || self.rt.pod(&pod_name).exists() {
                return Err(ContainerizerError::AlreadyExists(id));
            }
            pods.insert(pod_name.clone(), entry);
        }
        pod.members.insert(
            id.clone(),
            Member {
                kind: spec.kind,
                resources: spec.resources,
            },
        );
        let result = self.start_pod(&mut pod, &mut spec).await;
        if let Err(e) = &result {
            tracing::warn!(container = %id, "launch failed: {e}");
            self.cleanup_pod(&pod_name).await;
            self.forget_pod(&pod_name);
        }
        result
    }

    async fn start_pod(
        &self,
        pod: &mut Pod,
        spec: &mut LaunchSpec,
    ) -> Result<Launched, ContainerizerError> {
        let id = &spec.container_id.clone();
        let cgroup_err = |source| ContainerizerError::Cgroup {
            container: id.clone(),
            source,
        };
        // The pod dir comes first: an agent killed at any later point leaves
        // a dir that recovery finds and cleans, cgroup included.
        let pod_dir = self.rt.pod(id.pod());
        std::fs::create_dir_all(&pod_dir).map_err(|source| ContainerizerError::Io {
            container: id.clone(),
            what: "cannot create",
            path: pod_dir.clone(),
            source,
        })?;
        if let Some(store) = &self.images {
            store
                .prepare_pod(id.pod())
                .map_err(|e| ContainerizerError::Launch {
                    container: id.clone(),
                    message: format!("cannot prepare the pod's image dir: {e}"),
                })?;
        }
        // (Undone by cleanup_pod with the rest of the pod on a failure.)
        self.provision_checked(spec).await?;
        self.layout
            .check_pod(id.pod())
            .map_err(|message| ContainerizerError::Launch {
                container: id.clone(),
                message,
            })?;
        let pod_cgroup = self.pod_cgroup(id.pod());
        let own = limits_of(&spec.resources);
        let split = pod_limits(&own, &[], true);
        if self.layout.scope_unit(id.pod()).is_none() {
            self.cgroups.create(&pod_cgroup).map_err(cgroup_err)?;
            self.cgroups
                .apply(&pod_cgroup, &split.parent)
                .map_err(cgroup_err)?;
        }
        if !spec.networks.is_empty() {
            self.attach_networks(spec).await?;
        }
        self.write_spec(spec)?;
        let supervisor_cgroup = self.layout.supervisor(id.pod());
        let scope = self
            .layout
            .scope_unit(id.pod())
            .zip(cgroups::layout::systemd_run())
            .map(|(unit, systemd_run)| client::ScopeLaunch {
                systemd_run: systemd_run.to_path_buf(),
                unit,
                slice: cgroups::layout::SLICE.to_string(),
            });
        let cgroups = self.cgroups.clone();
        let pod_limits_cgroup = pod_cgroup.clone();
        let limits = split.parent;
        let scoped = scope.is_some();
        // The supervisor leaves the scope's root first: only then may the
        // scope delegate controllers to the pod cgroup (no internal
        // processes), which is created and limited after that.
        let place = move |pid: i32| -> Result<(), String> {
            match cgroups.v2_root().filter(|_| scoped) {
                // The scope holds the supervisor until it is moved: a plain
                // mkdir, no controllers enabled in the scope yet.
                Some(root) => {
                    let dir = root.join(supervisor_cgroup.trim_start_matches('/'));
                    match std::fs::create_dir(&dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                            return Err(format!("cannot create {}: {e}", dir.display()));
                        }
                        _ => {}
                    }
                }
                None => cgroups
                    .create(&supervisor_cgroup)
                    .map_err(|e| e.to_string())?,
            }
            cgroups
                .add_process(&supervisor_cgroup, pid)
                .map_err(|e| e.to_string())?;
            if scoped {
                cgroups
                    .create(&pod_limits_cgroup)
                    .and_then(|()| cgroups.apply(&pod_limits_cgroup, &limits).map(|_| ()))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        let client = client::spawn(&self.exe, &self.rt, id.pod(), scope.as_ref(), place)
            .await
            .map_err(|source| ContainerizerError::Supervisor {
                container: id.clone(),
                source,
            })?;
        pod.client = Some(client.clone());
        self.send_launch(&client, spec, None).await
    }

    /// The pod's netns and CNI networks, before its supervisor starts (so
    /// the netns bind is in the supervisor's mount namespace). Undone by
    /// `cleanup_pod` with the rest of the pod on a later failure.
    async fn attach_networks(&self, spec: &mut LaunchSpec) -> Result<(), ContainerizerError> {
        let id = spec.container_id.clone();
        let Some(cni) = &self.cni else {
            return Err(ContainerizerError::Launch {
                container: id,
                message: crate::cni::CniError::Disabled(spec.networks[0].name.clone()).to_string(),
            });
        };
        // Mesos names the container after its id when the task names no
        // hostname (`NetworkCniIsolatorProcess::_isolate`).
        if spec.hostname.is_none()
            && id.pod().len() <= 63
            && id
                .pod()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            spec.hostname = Some(id.pod().to_string());
        }
        let hostname = spec.hostname.clone().unwrap_or_else(|| "localhost".into());
        cni.attach(id.pod(), &spec.networks, &hostname)
            .await
            .map(|_| ())
            .map_err(|e| ContainerizerError::Launch {
                container: id,
                message: e.to_string(),
            })
    }

    async fn launch_nested(
        &self,
        spec: LaunchSpec,
        session: Option<SessionIo>,
    ) -> Result<Launched, ContainerizerError> {
        let id = spec.container_id.clone();
        let entry = self
            .pod(id.pod())
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
        let mut pod = entry.lock().await;
        let Some(client) = pod.client.clone() else {
            return Err(ContainerizerError::ParentNotRunning {
                parent: id.parent().unwrap_or_else(|| id.clone()),
                container: id,
            });
        };
        if pod.members.contains_key(&id) {
            return Err(ContainerizerError::AlreadyExists(id));
        }
        let previous_share = pod.share_cgroups;
        if spec.kind == ContainerKind::Task {
            let share = spec.linux.share_cgroups;
            match pod.share_cgroups {
                Some(pod_value) if pod_value != share => {
                    return Err(ContainerizerError::ShareCgroupsMismatch {
                        container: id,
                        pod: spec.container_id.pod().to_string(),
                        pod_value,
                    });
                }
                _ => pod.share_cgroups = Some(share),
            }
        }
        pod.members.insert(
            id.clone(),
            Member {
                kind: spec.kind,
                resources: spec.resources,
            },
        );
        // The pod's limits grow before the task starts, never after.
        let result = match self.apply_pod_limits(id.pod(), &pod) {
            Err(source) => Err(ContainerizerError::Cgroup {
                container: id.clone(),
                source,
            }),
            Ok(()) => match self.write_spec(&spec) {
                Ok(()) => self.send_launch(&client, &spec, session).await,
                Err(e) => Err(e),
            },
        };
        if result.is_err() {
            pod.members.remove(&id);
            pod.share_cgroups = previous_share;
            if let Err(e) = self.apply_pod_limits(id.pod(), &pod) {
                tracing::warn!(container = %id, "pod limits not lowered after a failed launch: {e}");
            }
            let _ = safe_remove::remove_tree(&self.rt.container(&id));
        }
        result
    }

    /// Records the spec beside the container's runtime state: the agent
    /// reads it back at recovery, live updates rewrite it.
    fn write_spec(&self, spec: &LaunchSpec) -> Result<(), ContainerizerError> {
        let id = &spec.container_id;
        let io_err = |what, path: &Path, source| ContainerizerError::Io {
            container: id.clone(),
            what,
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&spec.sandbox_dir)
            .map_err(|e| io_err("cannot create the sandbox", &spec.sandbox_dir, e))?;
        let path = self.rt.launch_spec(id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        }
        let bytes = serde_json::to_vec_pretty(spec).map_err(|e| {
            io_err(
                "cannot encode the spec for",
                &path,
                std::io::Error::other(e),
            )
        })?;
        write_atomic(&path, &bytes).map_err(|e| io_err("cannot write", &path, e))
    }

    async fn send_launch(
        &self,
        client: &SupervisorClient,
        spec: &LaunchSpec,
        session: Option<SessionIo>,
    ) -> Result<Launched, ContainerizerError> {
        let id = &spec.container_id;
        let cgroup = self.container_cgroup(id);
        // A debug container shares its parent's sandbox: its own output
        // (when it is not a session) stays out of the parent's logs.
        let logs = if spec.kind == ContainerKind::Debug {
            self.rt.container(id)
        } else {
            spec.sandbox_dir.clone()
        };
        let mut context = SpecContext::new(cgroup.clone(), PathBuf::new());
        context.host_network = self.config.host_network;
        context.pod_on_cni_network = self
            .cni
            .as_ref()
            .is_some_and(|cni| cni.netns_of(id.pod()).is_some());
        if let Some(cni) = &self.cni
            && spec.kind != ContainerKind::Debug
            && let Some(netns) = cni.netns_of(id.pod())
        {
            if id.is_top_level() {
                context.netns = Some(netns);
            }
            context.etc_files = cni.etc_files(id.pod());
        }
        context.sandbox_mount_point = self.config.sandbox_mount_point.clone();
        context.host_memory_bytes = Some(self.host_memory_bytes);
        context.cfs_quota_from_request = self.config.cfs_quota_from_request;
        context.cgroup_v1_binds = self.cgroups.v1_binds(&cgroup);
        context.hidden_host_dirs = self.hidden_host_dirs.clone();
        context.hidden_host_files = self.config.hidden_host_files.clone();
        context.limit_swap = self.cgroups.limits_swap();
        context.pids_limit = self
            .pids_limit()
            .map(|p| i64::try_from(p).unwrap_or(i64::MAX));
        let own_limits = spec.kind == ContainerKind::Task && !spec.linux.share_cgroups;
        if !own_limits && spec.kind != ContainerKind::Debug {
            let pod = self.cgroups.read_controls(&self.pod_cgroup(id.pod()));
            context.ceiling = pod.ok().map(|v| crate::spec::Ceiling {
                memory_max_bytes: v.memory_max,
                cfs_quota_us: v.cfs_quota_us,
            });
        }
        let request = LaunchRequest {
            container: id.clone(),
            stdout: logs.join("stdout"),
            stderr: logs.join("stderr"),
            cgroup: Some(cgroup),
            spec: Some(Box::new(spec.clone())),
            context: Some(Box::new(context)),
            log: self.config.log,
            session,
        };
        match client.launch(request).await {
            Ok(pid) => {
                if let Err(e) = self.cgroups.swap_off(&self.container_cgroup(id)) {
                    tracing::warn!(container = %id, "{e}");
                }
                Ok(Launched { pid })
            }
            Err(SupervisorError::Remote { message, .. }) => Err(ContainerizerError::Launch {
                container: id.clone(),
                message,
            }),
            Err(source) => Err(ContainerizerError::Supervisor {
                container: id.clone(),
                source,
            }),
        }
    }

    /// Sets the limits of the pod's cgroups from its members (see
    /// `pod_limits`). Lowering below current use is refused by the cgroup
    /// layer.
    /// Sizes a pod by its live tasks, before they launch and as they end:
    /// Mesos resizes the executor's container to the executor plus its live
    /// tasks before it hands the executor its tasks, and again when a task
    /// ends (`Slave::__run` "queue tasks until the containerizer is updated
    /// with new resource limits (MESOS-998)", `Slave::statusUpdate` ->
    /// `containerizer->update`). With `share_cgroups` the pod's cgroup then
    /// holds the group's whole limit from the start: a task that starts
    /// before its siblings sees the limit it will run under, not a partial
    /// sum. Without it each task's own cgroup carries its own limit and
    /// this only records the view.
    pub async fn size_pod(
        &self,
        top: &ContainerPath,
        tasks: Vec<ResourceRequest>,
        share_cgroups: bool,
    ) -> Result<(), ContainerizerError> {
        for request in &tasks {
            limits_of(request)
                .validate()
                .map_err(|source| ContainerizerError::Limits {
                    container: top.clone(),
                    source,
                })?;
        }
        let Some(entry) = self.pod(top.pod()) else {
            return Err(ContainerizerError::Unknown(top.clone()));
        };
        let mut pod = entry.lock().await;
        pod.sized = Some((tasks, share_cgroups));
        self.apply_pod_limits(top.pod(), &pod)
            .map_err(|source| ContainerizerError::Cgroup {
                container: top.clone(),
                source,
            })
    }

    fn apply_pod_limits(&self, pod_name: &str, pod: &Pod) -> Result<(), CgroupError> {
        let Some((top, executor)) = pod.members.iter().find(|(id, _)| id.is_top_level()) else {
            return Ok(());
        };
        let share = pod
            .share_cgroups
            .or(pod.sized.as_ref().map(|(_, share)| *share))
            .unwrap_or(true);
        let launched = pod
            .members
            .values()
            .filter(|m| m.kind == ContainerKind::Task)
            .map(|m| m.resources);
        let task_limits: Vec<cgroups::Limits> = match &pod.sized {
            // Shared: the pod's limit is the executor's plus its live
            // tasks', launched or not (see `size_pod`): the launched ones,
            // and the agent's tasks none of them stands for yet.
            Some((tasks, _)) if share => {
                let mut pending = tasks.clone();
                let mut all = Vec::new();
                for resources in launched {
                    if let Some(i) = pending.iter().position(|r| *r == resources) {
                        pending.swap_remove(i);
                    }
                    all.push(limits_of(&resources));
                }
                all.extend(pending.iter().map(limits_of));
                all
            }
            _ => launched.map(|r| limits_of(&r)).collect(),
        };
        let split = pod_limits(&limits_of(&executor.resources), &task_limits, share);
        let parent = self
            .cgroups
            .update(&self.pod_cgroup(pod_name), &split.parent)?;
        if share {
            // Each member's own cgroup repeats the pod's limits (see
            // `SpecContext::ceiling`): what it reads stays what it gets.
            let ceiling = cgroups::Limits {
                cpu_limit: parent.cfs_quota_us.map(|q| {
                    cgroups::Limit::Finite((q as f64 + 0.5) / parent.cfs_period_us as f64)
                }),
                mem_limit: Some(
                    parent
                        .memory_max
                        .map_or(cgroups::Limit::Infinity, cgroups::Limit::Finite),
                ),
                pids_limit: self.pids_limit(),
                ..cgroups::Limits::default()
            };
            for (id, member) in &pod.members {
                let own = self.container_cgroup(id);
                if member.kind != ContainerKind::Debug && self.cgroups.exists(&own) {
                    self.cgroups.update(&own, &ceiling)?;
                }
            }
        } else {
            let own = self.container_cgroup(top);
            if self.cgroups.exists(&own) {
                let executor = cgroups::Limits {
                    pids_limit: self.pids_limit(),
                    ..split.executor
                };
                self.cgroups.update(&own, &executor)?;
            }
        }
        Ok(())
    }

    /// Waits until the container has terminated and says how.
    pub async fn wait(&self, id: &ContainerPath) -> Result<Termination, ContainerizerError> {
        let client = {
            let entry = self
                .pod(id.pod())
                .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
            let pod = entry.lock().await;
            if let Some(t) = pod.dead.get(id) {
                return Ok(t.clone());
            }
            pod.client
                .clone()
                .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?
        };
        match client.wait(id).await {
            Ok(t) => {
                if t.oom_killed
                    && let Some(entry) = self.pod(id.pod())
                {
                    entry.lock().await.oom_ended.insert(id.clone());
                }
                Ok(t)
            }
            Err(e @ (SupervisorError::Io(_) | SupervisorError::Protocol { .. }))
                if supervisor_gone(&client).await =>
            {
                tracing::warn!(container = %id, "the pod's supervisor died ({e}): killing what it left");
                Ok(self.supervisor_died(id).await)
            }
            Err(e) => Err(self.remote(id, e)),
        }
    }

    /// A supervisor died under a live pod: nothing watches its containers
    /// any more, so every process left in the pod's cgroups is killed (the
    /// cgroup, not a pid list: re-parented processes included) and each
    /// container is recorded as ended by that, so waiters learn it and the
    /// pod's removal cleans cgroups, mounts and dirs. Returns how `id` ended.
    async fn supervisor_died(&self, id: &ContainerPath) -> Termination {
        let cgroups = self.cgroups.clone();
        let cgroup = self.pod_cgroup(id.pod());
        let killed = tokio::task::spawn_blocking(move || cgroups.kill_all(&cgroup)).await;
        if let Ok(Err(e)) = killed {
            tracing::warn!(
                pod = id.pod(),
                "processes of a dead supervisor's pod left: {e}"
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let ended = |container: &ContainerPath| Termination {
            container: container.clone(),
            status: libc::SIGKILL,
            exit_code: None,
            signal: None,
            oom_killed: false,
            killed_by_request: false,
            started_at: 0.0,
            finished_at: now,
            peak_memory_bytes: None,
            message: Some(
                "the pod's supervisor died: its containers were killed and their cgroups removed"
                    .to_string(),
            ),
        };
        let Some(entry) = self.pod(id.pod()) else {
            return ended(id);
        };
        let mut pod = entry.lock().await;
        pod.client = None;
        let members: Vec<ContainerPath> = pod.members.keys().cloned().collect();
        for member in members.iter().chain(std::iter::once(id)) {
            pod.dead
                .entry(member.clone())
                .or_insert_with(|| ended(member));
        }
        pod.dead.get(id).cloned().unwrap_or_else(|| ended(id))
    }

    fn remote(&self, id: &ContainerPath, source: SupervisorError) -> ContainerizerError {
        match source {
            SupervisorError::Remote { message, .. } if message.starts_with("unknown container") => {
                ContainerizerError::Unknown(id.clone())
            }
            source => ContainerizerError::Supervisor {
                container: id.clone(),
                source,
            },
        }
    }

    async fn client_of(&self, id: &ContainerPath) -> Result<SupervisorClient, ContainerizerError> {
        let entry = self
            .pod(id.pod())
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
        let pod = entry.lock().await;
        pod.client
            .clone()
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))
    }

    /// SIGTERM, then SIGKILL after `grace`; nested containers go first.
    /// Returns at once; [`wait`](Self::wait) says when it is over.
    pub async fn kill(
        &self,
        id: &ContainerPath,
        grace: Duration,
    ) -> Result<(), ContainerizerError> {
        if let Some(entry) = self.pod(id.pod())
            && entry.lock().await.dead.contains_key(id)
        {
            return Ok(());
        }
        let client = self.client_of(id).await?;
        client.kill(id, grace).await.map_err(|e| self.remote(id, e))
    }

    /// Sends `signal` to the container's init process.
    pub async fn signal(&self, id: &ContainerPath, signal: i32) -> Result<(), ContainerizerError> {
        let client = self.client_of(id).await?;
        client
            .signal(id, signal)
            .await
            .map_err(|e| self.remote(id, e))
    }

    /// Forgets a terminated container and everything nested in it. Removing
    /// a top-level container ends its pod: the supervisor exits, the pod's
    /// cgroups and runtime dir go. The sandbox stays (the agent's garbage
    /// collection owns it).
    pub async fn remove(&self, id: &ContainerPath) -> Result<(), ContainerizerError> {
        // (A pod's dir is made before its cgroup, and recovery cleans pods
        // that never got a container, so an unknown pod has nothing left.)
        let Some(entry) = self.pod(id.pod()) else {
            return Err(ContainerizerError::Unknown(id.clone()));
        };
        let mut pod = entry.lock().await;
        let live = pod.client.clone();
        let rootfses = self.image_rootfses(id);
        match &live {
            Some(client) => match client.remove(id).await {
                Ok(()) => {}
                // The supervisor already exited (a stop request raced the
                // end of its last container): nobody answers for the pod
                // any more, and what it left (cgroups, dir) is cleaned below
                // as for a dead pod, rather than left for good.
                Err(crate::supervisor::SupervisorError::Io(e))
                    if id.is_top_level() && supervisor_gone(client).await =>
                {
                    tracing::warn!(container = %id, "supervisor gone before the removal ({e}): cleaning up its pod");
                }
                Err(e) => return Err(self.remote(id, e)),
            },
            None if !pod.dead.contains_key(id) => {
                return Err(ContainerizerError::Unknown(id.clone()));
            }
            None => {}
        }
        // Its processes are gone: the rootfs mounts can go.
        self.release_rootfses(rootfses);
        let inside = |c: &ContainerPath| c.parts().starts_with(id.parts());
        pod.members.retain(|c, _| !inside(c));
        pod.dead.retain(|c, _| !inside(c));
        if id.is_top_level() {
            // A live supervisor removed the pod dir before answering and
            // exits now; what is left is the pod's cgroup.
            drop(pod);
            self.cleanup_pod(id.pod()).await;
            self.forget_pod(id.pod());
        } else {
            if pod.members.values().all(|m| m.kind != ContainerKind::Task) {
                pod.share_cgroups = None;
            }
            if let Err(e) = self.apply_pod_limits(id.pod(), &pod) {
                tracing::warn!(container = %id, "pod limits kept after the removal: {e}");
            }
        }
        Ok(())
    }

    /// Kills (with `grace`), waits for and removes the container; returns
    /// how it ended.
    pub async fn destroy(
        &self,
        id: &ContainerPath,
        grace: Duration,
    ) -> Result<Termination, ContainerizerError> {
        self.kill(id, grace).await?;
        let termination = self.wait(id).await?;
        self.remove(id).await?;
        Ok(termination)
    }

    /// SIGTERM to a supervisor with no containers: it exits and removes its
    /// pod dir; waits a moment for that.
    async fn stop_empty_supervisor(&self, pod: &str) {
        let pid = std::fs::read_to_string(self.rt.supervisor_pid(pod))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let Some(pid) = pid else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..200 {
            if !self.rt.supervisor_socket(pod).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Removes what a pod leaves once its supervisor is gone (or never
    /// started): stray processes in its cgroups, the cgroups, the pod dir.
    async fn cleanup_pod(&self, pod: &str) {
        let cgroups = self.cgroups.clone();
        let cgroup = self.pod_cgroup(pod);
        // Under a scope the supervisor's leaf is beside the pod cgroup (the
        // scope's own cgroup is systemd's: it goes when the scope is empty).
        let supervisor =
            Some(self.layout.supervisor(pod)).filter(|_| self.layout.scope_unit(pod).is_some());
        if let Some(cni) = &self.cni {
            cni.detach(pod).await;
        }
        let dir = self.rt.pod(pod);
        let images = self.images.clone();
        let pod_name = pod.to_string();
        let done = tokio::task::spawn_blocking(move || {
            // Usually empty: killing (freezing on v1) an empty cgroup costs
            // milliseconds for nothing.
            let stray = cgroups.processes(&cgroup).map_or(true, |p| !p.is_empty());
            if stray && let Err(e) = cgroups.kill_all(&cgroup) {
                tracing::warn!(cgroup, "{e}");
            }
            for cgroup in std::iter::once(&cgroup).chain(supervisor.as_ref()) {
                if let Err(e) = cgroups.destroy(cgroup) {
                    tracing::warn!(cgroup, "{e}");
                }
            }
            if let Err(e) = safe_remove::remove_tree(&dir) {
                tracing::warn!(dir = %dir.display(), "pod dir left: {e}");
            }
            if let Some(store) = images
                && let Err(e) = store.release_pod(&pod_name)
            {
                tracing::warn!(pod = pod_name, "pod image dir left: {e}");
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(pod, "pod cleanup failed: {e}");
        }
    }

    /// Changes a running container's cpu/mem request and limit. With
    /// `share_cgroups` the pod's cgroup changes; otherwise the container's
    /// own. A memory limit below current use is refused, nothing changes.
    pub async fn update(
        &self,
        id: &ContainerPath,
        resources: ResourceRequest,
    ) -> Result<ControlValues, ContainerizerError> {
        limits_of(&resources)
            .validate()
            .map_err(|source| ContainerizerError::Limits {
                container: id.clone(),
                source,
            })?;
        let entry = self
            .pod(id.pod())
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
        let mut pod = entry.lock().await;
        let Some(member) = pod.members.get_mut(id) else {
            return Err(ContainerizerError::Unknown(id.clone()));
        };
        let previous = std::mem::replace(&mut member.resources, resources);
        // The agent's view of the pod (`size_pod`) follows the change.
        let resize = |pod: &mut Pod, from: ResourceRequest, to: ResourceRequest| {
            if let Some((tasks, _)) = &mut pod.sized
                && let Some(entry) = tasks.iter_mut().find(|r| **r == from)
            {
                *entry = to;
            }
        };
        let kind = member.kind;
        resize(&mut pod, previous, resources);
        let own_cgroup = kind == ContainerKind::Task && pod.share_cgroups == Some(false);
        let cgroup_err = |source| ContainerizerError::Cgroup {
            container: id.clone(),
            source,
        };
        let applied = if own_cgroup {
            self.cgroups.update(
                &self.container_cgroup(id),
                &cgroups::Limits {
                    pids_limit: self.pids_limit(),
                    ..limits_of(&resources)
                },
            )
        } else {
            self.apply_pod_limits(id.pod(), &pod)
                .and_then(|()| self.cgroups.read_controls(&self.pod_cgroup(id.pod())))
        };
        match applied {
            Ok(values) => {
                if let Some(mut spec) = self.read_spec(id) {
                    spec.resources = resources;
                    self.write_spec(&spec)?;
                }
                Ok(values)
            }
            Err(e) => {
                if let Some(member) = pod.members.get_mut(id) {
                    member.resources = previous;
                }
                resize(&mut pod, resources, previous);
                // Undo a partial pod update (parent changed, executor not).
                let _ = self.apply_pod_limits(id.pod(), &pod);
                Err(cgroup_err(e))
            }
        }
    }

    /// What the container was launched with (and its current resources).
    pub fn launch_spec(&self, id: &ContainerPath) -> Option<LaunchSpec> {
        self.read_spec(id)
    }

    fn read_spec(&self, id: &ContainerPath) -> Option<LaunchSpec> {
        let bytes = std::fs::read(self.rt.launch_spec(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// ResourceStatistics of a running container. A top-level container's
    /// are its whole pod's (its nested containers included, as in Mesos).
    pub async fn stats(
        &self,
        id: &ContainerPath,
    ) -> Result<ResourceStatistics, ContainerizerError> {
        let entry = self
            .pod(id.pod())
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
        let pod = entry.lock().await;
        let member = pod
            .members
            .get(id)
            .ok_or_else(|| ContainerizerError::Unknown(id.clone()))?;
        let cgroup = if id.is_top_level() {
            self.pod_cgroup(id.pod())
        } else {
            self.container_cgroup(id)
        };
        let mut stats =
            self.cgroups
                .stats(&cgroup)
                .map_err(|source| ContainerizerError::Cgroup {
                    container: id.clone(),
                    source,
                })?;
        stats.cpus_soft_limit = member.resources.cpus;
        Ok(stats)
    }

    /// OOM kills so far in a running top-level container's pod (its nested
    /// containers included); `None` when the kernel does not count them.
    ///
    /// The kernel's counters live in the cgroups, and a container is
    /// destroyed at its first OOM kill (its cgroup with it), so the count is
    /// what the pod's cgroups still say plus one for each container that
    /// ended OOM-killed and whose cgroup is gone.
    pub async fn oom_kills(&self, id: &ContainerPath) -> Option<u64> {
        let entry = self.pod(id.pod())?;
        let ended: Vec<ContainerPath> = entry.lock().await.oom_ended.iter().cloned().collect();
        let live = self
            .cgroups
            .subtree_oom_kills(&self.pod_cgroup(id.pod()))
            .ok()
            .flatten();
        let gone = ended
            .iter()
            .filter(|c| !self.cgroups.exists(&self.container_cgroup(c)))
            .count() as u64;
        match (live, gone) {
            (None, 0) => None,
            (live, gone) => Some(live.unwrap_or(0) + gone),
        }
    }

    /// Every container of every pod, running or terminated-but-not-removed.
    /// Where the image rootfses of a pod's containers keep their writable
    /// layers (overlay `upper/` dirs); `None` without image support.
    pub fn pod_image_dir(&self, pod: &str) -> Option<std::path::PathBuf> {
        self.images.as_ref().map(|images| images.pod_dir(pod))
    }

    /// The init pid of a live container, asked of its pod's supervisor
    /// alone (one local request; `list` asks every pod).
    pub async fn pid(&self, id: &ContainerPath) -> Option<i32> {
        let entry = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id.pod())
            .cloned()?;
        let client = entry.lock().await.client.clone()?;
        let list = client.list().await.ok()?;
        list.into_iter()
            .find(|c| &c.container == id && c.termination.is_none())
            .and_then(|c| c.pid)
    }

    pub async fn list(&self) -> Vec<ContainerState> {
        let entries: Vec<Arc<Mutex<Pod>>> = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut all = Vec::new();
        for entry in entries {
            let (client, dead) = {
                let pod = entry.lock().await;
                (pod.client.clone(), pod.dead.clone())
            };
            match client {
                Some(client) => match client.list().await {
                    Ok(list) => all.extend(list),
                    Err(e) => tracing::warn!(pod = client.pod(), "cannot list: {e}"),
                },
                None => all.extend(dead.into_values().map(|t| ContainerState {
                    container: t.container.clone(),
                    pid: None,
                    started_at: t.started_at,
                    termination: Some(t),
                })),
            }
        }
        all.sort_by(|a, b| a.container.cmp(&b.container));
        all
    }

    /// Finds every pod the runtime dir knows: reconnects to live
    /// supervisors, and for dead ones kills whatever still runs in their
    /// cgroups (nothing supervises it any more) and keeps their termination
    /// records until the agent removes the pod.
    pub async fn recover(&self) -> Result<Vec<RecoveredContainer>, ContainerizerError> {
        let pods = client::recover(&self.rt)
            .await
            .map_err(|e| ContainerizerError::Setup(format!("recovery failed: {e}")))?;
        let mut found = Vec::new();
        for recovered in pods {
            // A pod that never got its container (the agent died between
            // creating the pod dir and the launch) holds nothing anyone can
            // name: stop its supervisor, if one started, and clean up.
            let has_top = recovered
                .containers
                .iter()
                .any(|c| c.container.is_top_level());
            if !has_top {
                tracing::warn!(pod = %recovered.pod, "pod without a container: cleaning it up");
                if recovered.client.is_some() {
                    self.stop_empty_supervisor(&recovered.pod).await;
                }
                self.cleanup_pod(&recovered.pod).await;
                continue;
            }
            if recovered.client.is_some() {
                // Runtime dirs the supervisor never heard of: the agent died
                // between writing a nested container's spec and launching it.
                // They go, so the launch can be asked for again.
                let listed: std::collections::HashSet<&ContainerPath> =
                    recovered.containers.iter().map(|c| &c.container).collect();
                for stale in client::containers_on_disk(&self.rt, &recovered.pod)
                    .into_iter()
                    .filter(|c| !c.container.is_top_level() && !listed.contains(&c.container))
                {
                    tracing::warn!(container = %stale.container, "never launched: removing its runtime dir");
                    let _ = safe_remove::remove_tree(&self.rt.container(&stale.container));
                }
            }
            let mut pod = Pod {
                client: recovered.client.clone(),
                members: BTreeMap::new(),
                share_cgroups: None,
                dead: BTreeMap::new(),
                sized: None,
                oom_ended: Default::default(),
            };
            if recovered.client.is_none() {
                let cgroups = self.cgroups.clone();
                let cgroup = self.pod_cgroup(&recovered.pod);
                let _ = tokio::task::spawn_blocking(move || cgroups.kill_all(&cgroup)).await;
            }
            for state in recovered.containers {
                let spec = self.read_spec(&state.container);
                if let Some(spec) = &spec
                    && state.termination.is_none()
                {
                    if spec.kind == ContainerKind::Task {
                        pod.share_cgroups = Some(spec.linux.share_cgroups);
                    }
                    pod.members.insert(
                        state.container.clone(),
                        Member {
                            kind: spec.kind,
                            resources: spec.resources,
                        },
                    );
                }
                if recovered.client.is_none()
                    && let Some(t) = &state.termination
                {
                    pod.dead.insert(state.container.clone(), t.clone());
                }
                found.push(RecoveredContainer {
                    container: state.container,
                    pid: state.pid,
                    termination: state.termination,
                    spec,
                });
            }
            self.pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(recovered.pod, Arc::new(Mutex::new(pod)));
        }
        if let Some(cni) = &self.cni {
            // Pods still known keep their networks until removed (the
            // agent removes the dead ones, DEL then runs); networks of pods
            // with no runtime dir left are released now.
            let live: Vec<String> = self
                .pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect();
            cni.recover(&live).await;
        }
        Ok(found)
    }
}
