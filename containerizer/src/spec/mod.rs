//! OCI runtime specs from Mesos container descriptions.
//!
//! The agent turns `CommandInfo` + `ContainerInfo` into a [`LaunchSpec`]
//! ([`LaunchSpec::from_mesos`]: checked, plain serde data) and sends it to the
//! pod's supervisor, which adds what only it knows ([`SpecContext`]: the
//! cgroup path, the parent's init pid, ...) and calls [`build_spec`] to get
//! the `config.json` it hands to libcontainer. DEBUG containers run inside
//! their parent as an exec: [`build_process`] gives their `process.json`.
//!
//! Everything here is pure except, as documented on each function: reading
//! passwd/group files, one `stat` for a bare executable name in the
//! sandbox, checking that the mount points of host-filesystem containers
//! exist, and resolving existing sandbox volume sources to refuse symlink
//! escapes.
//!
//! # Namespaces
//!
//! | kind | mount, cgroup | pid | net, uts | ipc |
//! |---|---|---|---|---|
//! | executor / standalone | new | new (host's if `share_pid_namespace`) | new (host's with [`SpecContext::host_network`]) | new (host's if SHARE_PARENT) |
//! | task (nested) | new | new (parent's if `share_pid_namespace`) | parent's (`/proc/<pid>/ns/*`) | parent's (new if PRIVATE) |
//! | debug | parent's | parent's | parent's | parent's |
//!
//! The cgroup namespace is rooted at the container's own cgroup, and
//! `/sys/fs/cgroup` inside is read-only (see `mounts::standard_mounts`).
//!
//! A new network namespace has only `lo`, and it is down: the runtime must
//! bring it up (and attach any other network) before the executor needs it.
//!
//! # Containers without an image
//!
//! Mesos runs them with the host's filesystem in their own mount namespace.
//! Here `root.path` is [`SpecContext::host_rootfs`]: a directory the runtime
//! prepares once as a recursive bind of `/` (`mount --rbind / <dir>`, then
//! `--make-rslave` so later host mounts, such as new sandboxes, show up in
//! it). libcontainer then pivots into it like into any rootfs and mounts a
//! fresh /proc, /dev, /sys, ... on top *inside the container's mount
//! namespace*, leaving the host's untouched. The runtime must never delete
//! that directory recursively while it is mounted: it is the host's root
//! (this happened once with a `TempDir` holding it; /etc was wiped). Why not
//! `root.path = "/"`:
//! libcontainer would bind "/" onto itself and `pivot_root` into the host
//! root, runc refuses it outright, and every standard mount would then
//! shadow a host mount point. The sandbox is also bind-mounted at its own
//! host path (so it is there even if the work dir was mounted after the
//! rbind), `cwd` and `MESOS_SANDBOX` are that path, as in Mesos.
//!
//! Unlike Mesos, such a container does not see the agent's own dirs
//! ([`SpecContext::hidden_host_dirs`]: the work dir with other tenants'
//! sandboxes, checkpoints and the operator credential, the runtime dir with
//! every supervisor's socket, ...). In spec order: an empty tmpfs over each
//! dir, then the sandbox and volumes bound into it (libcontainer creates
//! their mount points there), then each mask bound recursively onto itself
//! read-only, so the mask is read-only and what is bound below keeps its
//! own flags. Bind sources are host paths resolved before `pivot_root`, so
//! the masks never hide a source. Root in the container owns nothing more:
//! dropping `CAP_DAC_OVERRIDE`/`CAP_DAC_READ_SEARCH` would not stop root
//! reading root's files, a mask does; without `CAP_SYS_ADMIN` (not in the
//! default set) it cannot be unmounted. DEBUG containers join the mount
//! namespace, masks included.
//!
//! With an image, `root.path` is the image rootfs and the sandbox is bound
//! at [`SpecContext::sandbox_mount_point`] (`/mnt/mesos/sandbox`), which is
//! also `cwd` and `MESOS_SANDBOX`.

mod capabilities;
mod error;
mod launch;
mod mounts;
mod paths;
mod process;
mod resources;
mod seccomp;
mod user;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType, Process, Root, Spec,
};
use serde::{Deserialize, Serialize};

pub use crate::ContainerPath;
pub use capabilities::{DEFAULT_CAPABILITIES, capability_name, capability_sets, parse_capability};
pub use error::SpecError;
pub use launch::{
    Command, ContainerKind, ImageRequest, IpcMode, LaunchSpec, Limit, LinuxOptions, NetworkRequest,
    PortMapping, Propagation, RLimit, ResourceRequest, SandboxOf, SeccompMode, Tty, VolumeMode,
    VolumeSource, VolumeSpec, WindowSize,
};
pub(crate) use mounts::volume_host_source;
pub use mounts::{MASKED_PATHS, READONLY_PATHS, sandbox_volume_sources, shm_tmpfs_options};
pub use process::{DEFAULT_PATH, SHELL};
pub use resources::{Ceiling, linux_resources, oom_score_adj};
pub use seccomp::default_seccomp_profile;
pub use user::{ResolvedUser, UserDb, resolve_user};

fn internal(err: oci_spec::OciSpecError) -> SpecError {
    SpecError::Internal(err.to_string())
}

/// Mesos's default `--sandbox_directory`.
pub const DEFAULT_SANDBOX_MOUNT_POINT: &str = "/mnt/mesos/sandbox";

/// The parent of a nested container, as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentContainer {
    /// Pid (in the supervisor's pid namespace) of the parent's init
    /// process: its `/proc/<pid>/ns/*` are joined. For a task of a pod this
    /// is the executor's init.
    pub init_pid: i32,
    /// Host path of the parent's sandbox (SANDBOX_PATH volumes of type
    /// PARENT).
    pub sandbox_dir: PathBuf,
    /// Host directory holding the parent's /dev/shm (a tmpfs the runtime
    /// mounted, see [`SpecContext::shm_dir`]); needed by a nested container
    /// that shares the parent's IPC namespace.
    #[serde(default)]
    pub shm_dir: Option<PathBuf>,
    /// The parent's working directory (its `process.cwd`): where a DEBUG
    /// session starts. `/` when unknown.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// What only the runtime knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecContext {
    /// `linux.cgroupsPath` (always set: without it libcontainer uses a
    /// literal `/:youki:<id>` cgroup).
    pub cgroups_path: String,
    /// `root.path` for containers without an image: a recursive, rslave bind
    /// of the host's `/` (see the module docs). Never delete it recursively
    /// (`remove_dir_all`, `rm -r`, a `TempDir` holding it): while mounted it
    /// *is* the host's root and the delete wipes the host. Unmount it, then
    /// `rmdir` it (rmdir fails on a mount point).
    pub host_rootfs: PathBuf,
    /// The host's user database (default `/etc/passwd`, `/etc/group`).
    pub host_passwd: PathBuf,
    pub host_group: PathBuf,
    /// Where the sandbox appears in image containers (Mesos's
    /// `--sandbox_directory`, default `/mnt/mesos/sandbox`).
    pub sandbox_mount_point: PathBuf,
    /// Required for nested (task and debug) containers.
    pub parent: Option<ParentContainer>,
    /// For a container with its own IPC namespace: a host directory (a tmpfs
    /// mounted with [`shm_tmpfs_options`]) bound at its /dev/shm, so that
    /// nested containers can share it. `None` gives it a plain tmpfs that
    /// only it can see.
    pub shm_dir: Option<PathBuf>,
    /// Top-level containers share the host's network and UTS namespaces
    /// instead of getting new ones (Mesos's behaviour without a CNI network).
    pub host_network: bool,
    /// A top-level container of a pod on CNI networks joins this network
    /// namespace (the bound netns file, `crate::cni::netns`) and gets a
    /// UTS namespace of its own; it overrides `host_network`.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// Files bound over the container's `/etc/hosts`, `/etc/hostname`,
    /// `/etc/resolv.conf` (a pod on CNI networks): (host file, path inside).
    #[serde(default)]
    pub etc_files: Vec<(PathBuf, PathBuf)>,
    /// The pod has a network namespace of its own on a CNI network: its
    /// containers lose `NET_RAW` from the default capabilities, since the
    /// agent knows a pod's calls by its source address and raw sockets
    /// could forge another pod's (ARP/IP spoofing on the bridge). A
    /// container that names its capabilities keeps what it names.
    #[serde(default)]
    pub pod_on_cni_network: bool,
    /// Total host memory: needed for the OOM score of nested containers whose
    /// memory request is below their limit.
    pub host_memory_bytes: Option<u64>,
    /// Mesos's `--cgroups_enable_cfs`: a cpu request without a limit also
    /// caps the container (CFS quota).
    pub cfs_quota_from_request: bool,
    /// v1: the hierarchies the container sees at `/sys/fs/cgroup/<name>`
    /// (its own cgroup's directory in each, bound read-only). Empty on v2.
    #[serde(default)]
    pub cgroup_v1_binds: Vec<(String, PathBuf)>,
    /// For a container without limits of its own (the executor, a task
    /// with `share_cgroups`): the pod's limits, written on its own cgroup
    /// too so that what it reads there (its cgroup namespace's root) is the
    /// limit it runs under. The pod's cgroup still enforces the sum.
    #[serde(default)]
    pub ceiling: Option<Ceiling>,
    /// Host directories a container without an image must not see: the
    /// agent's work dir (sandboxes of other tenants, checkpoints, the
    /// operator credential), its runtime dir (supervisor sockets), the
    /// image store, the fetcher cache. Mesos shows them to every such task
    /// (no `filesystem/linux` masking); a root task could then read what
    /// the agent API refuses it. Each is covered by an empty read-only
    /// tmpfs in the container's mount namespace, and the container's own
    /// sandbox and volumes are bound back at their paths, so
    /// `MESOS_SANDBOX` still works. Absolute, symlink-free paths (the
    /// runtime resolves mount destinations inside the root, and the mask's
    /// source by its host path). Ignored for image containers: they never
    /// see the host's tree.
    #[serde(default)]
    pub hidden_host_dirs: Vec<PathBuf>,
    /// Host files a container without an image must not read (the agent's
    /// secrets given by flags, outside its dirs): `/dev/null` is bound over
    /// each (the runtime's `maskedPaths`, after `pivot_root`; a path not
    /// there is skipped).
    #[serde(default)]
    pub hidden_host_files: Vec<PathBuf>,
    /// `pids.max` of the container's own cgroup (`--container_pids_limit`).
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// Memory limits include swap (`--cgroups_limit_swap`): the spec's
    /// `memory.swap` equals the limit (v1 memsw; v2 `memory.swap.max` 0).
    #[serde(default)]
    pub limit_swap: bool,
}

impl SpecContext {
    pub fn new(cgroups_path: impl Into<String>, host_rootfs: impl Into<PathBuf>) -> Self {
        Self {
            cgroups_path: cgroups_path.into(),
            host_rootfs: host_rootfs.into(),
            host_passwd: PathBuf::from("/etc/passwd"),
            host_group: PathBuf::from("/etc/group"),
            sandbox_mount_point: PathBuf::from(DEFAULT_SANDBOX_MOUNT_POINT),
            parent: None,
            shm_dir: None,
            host_network: false,
            netns: None,
            etc_files: Vec::new(),
            pod_on_cni_network: false,
            host_memory_bytes: None,
            cfs_quota_from_request: false,
            cgroup_v1_binds: Vec::new(),
            ceiling: None,
            pids_limit: None,
            limit_swap: false,
            hidden_host_dirs: Vec::new(),
            hidden_host_files: Vec::new(),
        }
    }

    fn parent(&self) -> Result<&ParentContainer, SpecError> {
        self.parent.as_ref().ok_or(SpecError::MissingContext(
            "the parent container (SpecContext::parent) of a nested container",
        ))
    }
}

/// Where the container's filesystem comes from.
struct Layout {
    root: PathBuf,
    /// The sandbox as the container sees it.
    sandbox: PathBuf,
    user_db: UserDb,
    /// Set for host-filesystem containers.
    host_root: Option<PathBuf>,
}

fn layout(launch: &LaunchSpec, ctx: &SpecContext) -> Result<Layout, SpecError> {
    Ok(match &launch.rootfs {
        Some(rootfs) => {
            if !ctx.sandbox_mount_point.is_absolute() {
                return Err(SpecError::MissingContext(
                    "an absolute sandbox mount point (SpecContext::sandbox_mount_point)",
                ));
            }
            Layout {
                root: rootfs.clone(),
                sandbox: ctx.sandbox_mount_point.clone(),
                user_db: UserDb::Root(rootfs.clone()),
                host_root: None,
            }
        }
        None => {
            if !ctx.host_rootfs.is_absolute() {
                return Err(SpecError::MissingContext(
                    "an absolute host rootfs (SpecContext::host_rootfs)",
                ));
            }
            Layout {
                root: ctx.host_rootfs.clone(),
                sandbox: launch.sandbox_dir.clone(),
                user_db: UserDb::Files {
                    passwd: ctx.host_passwd.clone(),
                    group: ctx.host_group.clone(),
                },
                host_root: Some(ctx.host_rootfs.clone()),
            }
        }
    })
}

fn resolve(launch: &LaunchSpec, db: &UserDb) -> Result<ResolvedUser, SpecError> {
    match &launch.user {
        None => Ok(ResolvedUser::root()),
        Some(user) => resolve_user(user, db),
    }
}

fn process_capabilities(
    launch: &LaunchSpec,
    ctx: &SpecContext,
) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let mut caps = capability_sets(
        launch.linux.effective_capabilities.as_deref(),
        launch.linux.bounding_capabilities.as_deref(),
    )?;
    let named = launch.linux.effective_capabilities.is_some()
        || launch.linux.bounding_capabilities.is_some();
    if ctx.pod_on_cni_network && !named {
        capabilities::without(&mut caps, oci_spec::runtime::Capability::NetRaw);
    }
    Ok(caps)
}

/// The OCI process of a container. For a DEBUG container this is its
/// `process.json` for an exec into the parent (libcontainer's
/// `TenantContainerBuilder::with_process`): the user is resolved in the
/// parent's filesystem (`/proc/<pid>/root`), the working directory is the
/// parent's, and the environment is `launch.env` (the parent's, from the
/// agent) under `launch.environment`.
///
/// I/O: reads passwd/group; one `stat` for a bare executable name.
pub fn build_process(launch: &LaunchSpec, ctx: &SpecContext) -> Result<Process, SpecError> {
    launch.validate()?;
    if launch.kind == ContainerKind::Debug {
        let parent = ctx.parent()?;
        let db = UserDb::Root(PathBuf::from(format!("/proc/{}/root", parent.init_pid)));
        return process::process(
            launch,
            process::ProcessView {
                sandbox: None,
                cwd: parent.cwd.clone().unwrap_or_else(|| PathBuf::from("/")),
                user: resolve(launch, &db)?,
                capabilities: process_capabilities(launch, ctx)?,
                oom_score_adj: None,
            },
        );
    }
    let layout = layout(launch, ctx)?;
    container_process(launch, ctx, &layout)
}

fn container_process(
    launch: &LaunchSpec,
    ctx: &SpecContext,
    layout: &Layout,
) -> Result<Process, SpecError> {
    let oom_score_adj = if launch.kind == ContainerKind::Task {
        if resources::overcommits(&launch.resources) {
            let total = ctx.host_memory_bytes.ok_or(SpecError::MissingContext(
                "the host's total memory (SpecContext::host_memory_bytes) for the OOM score",
            ))?;
            oom_score_adj(&launch.resources, total)
        } else {
            None
        }
    } else {
        None
    };
    process::process(
        launch,
        process::ProcessView {
            sandbox: Some(&layout.sandbox),
            cwd: match (&launch.rootfs, &launch.working_dir) {
                (Some(_), Some(dir)) => PathBuf::from(dir),
                _ => layout.sandbox.clone(),
            },
            user: resolve(launch, &layout.user_db)?,
            capabilities: process_capabilities(launch, ctx)?,
            oom_score_adj,
        },
    )
}

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path);
    ns
}

fn ns_path(pid: i32, name: &str) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/{pid}/ns/{name}")))
}

/// The namespaces (see the table in the module docs) and where /dev/shm
/// comes from.
fn namespaces(
    launch: &LaunchSpec,
    ctx: &SpecContext,
) -> Result<(Vec<LinuxNamespace>, mounts::Shm), SpecError> {
    use LinuxNamespaceType::{Cgroup, Ipc, Mount, Network, Pid, Uts};
    // A cgroup namespace of its own, rooted at its own cgroup (runc's
    // default): it sees its own limits at /sys/fs/cgroup, not the host's
    // tree.
    let mut list = vec![namespace(Mount, None), namespace(Cgroup, None)];
    let own_shm = || match &ctx.shm_dir {
        Some(dir) => mounts::Shm::Bind(dir.clone()),
        None => mounts::Shm::Tmpfs(launch.linux.shm_size_mb),
    };
    let shm;
    if launch.kind.is_top_level() {
        if !launch.linux.share_pid_namespace {
            list.push(namespace(Pid, None));
        }
        if let Some(netns) = &ctx.netns {
            list.push(namespace(Network, Some(netns.clone())));
            list.push(namespace(Uts, None));
        } else if ctx.host_network {
            if launch.hostname.is_some() {
                return Err(SpecError::Unsupported(
                    "a hostname for a container on the host network".into(),
                ));
            }
        } else {
            list.push(namespace(Network, None));
            list.push(namespace(Uts, None));
        }
        if launch.linux.ipc_mode == Some(IpcMode::ShareParent) {
            shm = mounts::Shm::Bind(PathBuf::from("/dev/shm"));
        } else {
            list.push(namespace(Ipc, None));
            shm = own_shm();
        }
    } else {
        let parent = ctx.parent()?;
        let pid = parent.init_pid;
        if pid <= 0 {
            return Err(SpecError::MissingContext(
                "a valid init pid of the parent container",
            ));
        }
        list.push(namespace(
            Pid,
            launch
                .linux
                .share_pid_namespace
                .then(|| ns_path(pid, "pid"))
                .flatten(),
        ));
        list.push(namespace(Network, ns_path(pid, "net")));
        list.push(namespace(Uts, ns_path(pid, "uts")));
        if launch.linux.ipc_mode == Some(IpcMode::Private) {
            list.push(namespace(Ipc, None));
            shm = own_shm();
        } else {
            list.push(namespace(Ipc, ns_path(pid, "ipc")));
            shm = mounts::Shm::Bind(parent.shm_dir.clone().ok_or(SpecError::MissingContext(
                "the parent's /dev/shm directory (ParentContainer::shm_dir) for a container sharing its IPC namespace",
            ))?);
        }
    }
    Ok((list, shm))
}

/// The OCI spec (`config.json`) of an executor, task or standalone
/// container. See the module docs for the namespaces and filesystem.
///
/// I/O: reads passwd/group (the host's, or the image's inside its rootfs);
/// one `stat` for a bare executable name in the sandbox; checks that the
/// absolute volume mount points of a host-filesystem container exist;
/// resolves existing sandbox volume sources (symlink escapes are refused).
pub fn build_spec(launch: &LaunchSpec, ctx: &SpecContext) -> Result<Spec, SpecError> {
    launch.validate()?;
    if launch.kind == ContainerKind::Debug {
        return Err(SpecError::DebugContainerIsExec);
    }
    if ctx.cgroups_path.is_empty() {
        return Err(SpecError::MissingContext(
            "linux.cgroupsPath (SpecContext::cgroups_path)",
        ));
    }
    let layout = layout(launch, ctx)?;
    let process = container_process(launch, ctx, &layout)?;
    let (namespaces, shm) = namespaces(launch, ctx)?;

    let mut mounts = mounts::standard_mounts(&shm, &ctx.cgroup_v1_binds);
    // The agent's dirs are masked before the sandbox and volumes are bound
    // (their mount points are made in the mask) and sealed read-only after
    // them; see `SpecContext::hidden_host_dirs`.
    let hidden = match &layout.host_root {
        Some(_) => mounts::hidden_dirs(&ctx.hidden_host_dirs),
        None => Vec::new(),
    };
    mounts.extend(mounts::mask_hidden_dirs(&hidden));
    mounts.push(mounts::bind(
        &launch.sandbox_dir,
        &layout.sandbox,
        &["rbind", "rw"],
    ));
    for (host, inside) in &ctx.etc_files {
        mounts.push(mounts::bind(host, inside, &["bind", "rw"]));
    }
    for volume in &launch.volumes {
        mounts.push(mounts::volume_mount(
            volume,
            launch,
            ctx,
            &layout.sandbox,
            layout.host_root.as_deref(),
        )?);
    }
    if let Some(host_root) = &layout.host_root {
        mounts.extend(mounts::seal_hidden_dirs(&hidden, host_root));
    }

    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(PathBuf::from(&ctx.cgroups_path)));
    let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    if layout.host_root.is_some() {
        masked.extend(
            ctx.hidden_host_files
                .iter()
                .filter(|f| f.is_absolute())
                .map(|f| f.display().to_string()),
        );
    }
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    // The container's own cgroup carries cpu/mem only for a nested container
    // with share_cgroups=false; otherwise the pod's cgroup does (the cgroup
    // layer's job). Devices are always denied except the standard ones,
    // which the runtime allows itself.
    let mut resources = if launch.kind == ContainerKind::Task && !launch.linux.share_cgroups {
        linux_resources(&launch.resources, ctx.cfs_quota_from_request)?
    } else if let Some(ceiling) = &ctx.ceiling {
        ceiling.resources()
    } else {
        oci_spec::runtime::LinuxResources::default()
    };
    if ctx.limit_swap
        && let Some(memory) = *resources.memory()
        && let Some(limit) = memory.limit().filter(|l| *l > 0)
    {
        let mut memory = memory;
        memory.set_swap(Some(limit));
        resources.set_memory(Some(memory));
    }
    if let Some(limit) = ctx.pids_limit {
        let mut pids = oci_spec::runtime::LinuxPids::default();
        pids.set_limit(limit);
        resources.set_pids(Some(pids));
    }
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_string()));
    resources.set_devices(Some(vec![deny_all]));
    linux.set_resources(Some(resources));

    linux.set_seccomp(match launch.linux.seccomp {
        SeccompMode::Unconfined => None,
        SeccompMode::Default => {
            let bounding = process
                .capabilities()
                .as_ref()
                .and_then(|c| c.bounding().clone())
                .unwrap_or_default();
            Some(default_seccomp_profile(&bounding)?)
        }
    });

    let mut root = Root::default();
    root.set_path(layout.root.clone());
    root.set_readonly(Some(false));

    let mut spec = Spec::default();
    spec.set_root(Some(root));
    spec.set_process(Some(process));
    spec.set_mounts(Some(mounts));
    spec.set_hostname(launch.hostname.clone());
    spec.set_annotations(Some(HashMap::from([
        (
            "org.tepui.container-id".to_string(),
            launch.container_id.to_string(),
        ),
        ("org.tepui.kind".to_string(), launch.kind.name().to_string()),
    ])));
    spec.set_linux(Some(linux));
    Ok(spec)
}
