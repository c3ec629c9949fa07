//! Mounts: the standard Linux set (runc's default spec), /dev/shm, the
//! sandbox and volumes; runc's masked and read-only paths.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::launch::{LaunchSpec, Propagation, SandboxOf, VolumeMode, VolumeSource, VolumeSpec};
use super::paths::{Target, volume_source, volume_target};
use super::{SpecContext, SpecError};

/// runc's `maskedPaths` (plus `/proc/key-users`, which Mesos masks, and
/// `/sys/devices/virtual/powercap`, which newer runc and Docker mask).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's `readonlyPaths`.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub(crate) fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(destination));
    mount.set_typ(Some(typ.to_string()));
    mount.set_source(Some(PathBuf::from(source)));
    mount.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    mount
}

pub(crate) fn bind(source: &Path, destination: &Path, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(destination.to_path_buf());
    mount.set_typ(Some("bind".to_string()));
    mount.set_source(Some(source.to_path_buf()));
    mount.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    mount
}

/// The options of a fresh /dev/shm tmpfs; the runtime uses the same ones
/// when it mounts a shareable /dev/shm on the host
/// ([`SpecContext::shm_dir`]). Without a size the kernel's default applies
/// (half of RAM, charged to the container's memory cgroup), as in Mesos.
pub fn shm_tmpfs_options(size_mb: Option<u32>) -> Vec<String> {
    let mut options: Vec<String> = ["nosuid", "noexec", "nodev", "mode=1777"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(size) = size_mb {
        options.push(format!("size={}", u64::from(size) << 20));
    }
    options
}

/// Where /dev/shm comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shm {
    /// A fresh tmpfs of its own.
    Tmpfs(Option<u32>),
    /// A bind of an existing directory (a tmpfs the runtime mounted on the
    /// host, the parent's, or the host's /dev/shm).
    Bind(PathBuf),
}

/// runc's default mounts: /proc, /dev (tmpfs; the runtime creates the
/// standard device nodes), /dev/pts, /dev/shm, /dev/mqueue, /sys (ro) and a
/// read-only /sys/fs/cgroup.
///
/// The container has a cgroup namespace rooted at its own cgroup (see
/// `namespaces`). On v2 (`cgroup_v1_binds` empty) libcontainer mounts a
/// fresh cgroup2 there, read-only. On v1 libcontainer would mount each
/// hierarchy read-write whatever the options say, so instead: a tmpfs, and
/// one read-only bind per hierarchy of the container's own cgroup directory
/// (what runc shows a container with a cgroup namespace on v1): a root task
/// can read its limits, not change them or create cgroups (EROFS).
pub(crate) fn standard_mounts(shm: &Shm, cgroup_v1_binds: &[(String, PathBuf)]) -> Vec<Mount> {
    let shm = match shm {
        Shm::Tmpfs(size) => {
            let options = shm_tmpfs_options(*size);
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            mount("/dev/shm", "tmpfs", "shm", &options)
        }
        Shm::Bind(dir) => bind(dir, Path::new("/dev/shm"), &["rbind", "nosuid", "nodev"]),
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        shm,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
    .into_iter()
    .chain(cgroup_mounts(cgroup_v1_binds))
    .collect()
}

fn cgroup_mounts(v1_binds: &[(String, PathBuf)]) -> Vec<Mount> {
    let root = Path::new("/sys/fs/cgroup");
    if v1_binds.is_empty() {
        return vec![mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )];
    }
    let mut mounts = vec![mount(
        "/sys/fs/cgroup",
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
    )];
    for (name, source) in v1_binds {
        mounts.push(bind(
            source,
            &root.join(name),
            &["rbind", "ro", "nosuid", "noexec", "nodev"],
        ));
    }
    mounts
}

/// The host path a volume's source refers to.
pub(crate) fn volume_host_source(
    volume: &VolumeSpec,
    launch: &LaunchSpec,
    ctx: &SpecContext,
) -> Result<PathBuf, SpecError> {
    let relative = volume_source(volume)?;
    Ok(match &volume.source {
        VolumeSource::HostPath { .. } => relative,
        VolumeSource::SandboxPath {
            of: SandboxOf::Own, ..
        } => launch.sandbox_dir.join(relative),
        VolumeSource::SandboxPath {
            of: SandboxOf::Parent,
            ..
        } => {
            let parent = ctx.parent.as_ref().ok_or(SpecError::MissingContext(
                "the parent container (SpecContext::parent) for a PARENT sandbox volume",
            ))?;
            parent.sandbox_dir.join(relative)
        }
    })
}

/// An existing sandbox-path source must not leave its sandbox through a
/// symlink (one `realpath` per volume; the runtime creates missing ones).
fn check_no_symlink_escape(
    volume: &VolumeSpec,
    source: &Path,
    launch: &LaunchSpec,
    ctx: &SpecContext,
) -> Result<(), SpecError> {
    let (base, what) = match &volume.source {
        VolumeSource::HostPath { .. } => return Ok(()),
        VolumeSource::SandboxPath {
            of: SandboxOf::Own, ..
        } => (
            launch.sandbox_dir.clone(),
            "the container's sandbox (through a symlink)",
        ),
        VolumeSource::SandboxPath {
            of: SandboxOf::Parent,
            ..
        } => match &ctx.parent {
            Some(parent) => (
                parent.sandbox_dir.clone(),
                "the parent container's sandbox (through a symlink)",
            ),
            None => return Ok(()),
        },
    };
    let (Ok(real_source), Ok(real_base)) = (source.canonicalize(), base.canonicalize()) else {
        return Ok(());
    };
    if real_source.starts_with(&real_base) {
        Ok(())
    } else {
        Err(SpecError::VolumeEscape {
            volume: volume.container_path.clone(),
            path: real_source.display().to_string(),
            base: what,
        })
    }
}

/// The bind mount of one volume. `sandbox` is the sandbox as the container
/// sees it; `host_root` is set for host-filesystem containers, whose
/// absolute mount points must already exist on the host (Mesos refuses to
/// create mount points outside the sandbox on the host).
pub(crate) fn volume_mount(
    volume: &VolumeSpec,
    launch: &LaunchSpec,
    ctx: &SpecContext,
    sandbox: &Path,
    host_root: Option<&Path>,
) -> Result<Mount, SpecError> {
    let source = volume_host_source(volume, launch, ctx)?;
    check_no_symlink_escape(volume, &source, launch, ctx)?;
    let destination = match volume_target(volume)? {
        Target::Absolute(path) => {
            if let Some(root) = host_root {
                let on_host = root.join(path.strip_prefix("/").unwrap_or(&path));
                if !on_host.exists() {
                    return Err(SpecError::HostMountPointMissing {
                        volume: volume.container_path.clone(),
                        path: path.display().to_string(),
                    });
                }
            }
            path
        }
        Target::InSandbox(relative) => sandbox.join(relative),
    };
    let mut options = vec!["rbind"];
    match volume.mode {
        VolumeMode::Rw => options.push("rw"),
        VolumeMode::Ro => options.extend(["ro", "rro"]),
    }
    if let VolumeSource::HostPath { propagation, .. } = &volume.source {
        options.push(match propagation {
            Propagation::HostToContainer => "rslave",
            Propagation::Bidirectional => "rshared",
        });
    }
    Ok(bind(&source, &destination, &options))
}

/// Host paths of the SANDBOX_PATH volume sources: the runtime creates the
/// missing ones (directories, owned like their sandbox, as Mesos does)
/// before it creates the container, since a bind source must exist.
pub fn sandbox_volume_sources(
    launch: &LaunchSpec,
    ctx: &SpecContext,
) -> Result<Vec<PathBuf>, SpecError> {
    launch
        .volumes
        .iter()
        .filter(|v| matches!(v.source, VolumeSource::SandboxPath { .. }))
        .map(|v| volume_host_source(v, launch, ctx))
        .collect()
}

/// The agent's own directories a host-filesystem container must not see
/// (`SpecContext::hidden_host_dirs`), as masks: absolute, not `/`, each
/// given once, none below another (the outer mask hides it already).
pub(crate) fn hidden_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| d.is_absolute() && d.parent().is_some())
        .map(|d| d.components().collect())
        .collect();
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|outer| outer != d && d.starts_with(outer)));
    dirs
}

/// Step one of hiding the agent's dirs: an empty tmpfs over each, before
/// the sandbox and volumes are bound. It is writable only while the runtime
/// creates their mount points in it; [`seal_hidden_dirs`] makes it
/// read-only afterwards. Small on purpose: it only ever holds directories.
pub(crate) fn mask_hidden_dirs(dirs: &[PathBuf]) -> Vec<Mount> {
    dirs.iter()
        .map(|dir| {
            let mut m = mount(
                "/",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "noexec", "mode=755", "size=64k"],
            );
            m.set_destination(dir.clone());
            m
        })
        .collect()
}

/// Step two, after every other mount: each mask bound onto itself
/// read-only. The bind is recursive, so the sandbox and volumes bound below
/// it come along with their own flags (the sandbox stays writable); only
/// the mask itself becomes read-only. The source is the mask as the runtime
/// sees it before `pivot_root`: below the container's root, which for a
/// host-filesystem container is the host's `/` rbound at `host_root`.
pub(crate) fn seal_hidden_dirs(dirs: &[PathBuf], host_root: &Path) -> Vec<Mount> {
    dirs.iter()
        .map(|dir| {
            let inside = host_root.join(dir.strip_prefix("/").unwrap_or(dir));
            bind(&inside, dir, &["rbind", "ro", "nosuid", "nodev", "noexec"])
        })
        .collect()
}
