//! cgroups v1 and v2 behind one model (DESIGN.md section 3).
//!
//! Layout (`layout`): a pod's limits sit on its pod cgroup, which never
//! holds processes itself; every container of the pod, the executor too,
//! gets a sibling child `<pod cgroup>/<container>`, and the pod's
//! supervisor a leaf `@supervisor` of the pod (standalone) or of its
//! systemd scope (v2 + systemd: `tepui.slice/tepui-pod-<pod>.scope`, limits
//! on `<scope>/pod`). A container's cgroup is never nested in another
//! container's (libcontainer's force-delete kills the whole subtree).
//! `pod_limits` decides which of them carries limits (`share_cgroups`);
//! members without their own repeat the pod's hard limits so that a
//! container reads its real limit in its cgroup namespace.
//!
//! Modules, one job each:
//! - `mounts`: find the hierarchies in mountinfo, pick v1 or v2.
//! - `layout`: where pods and supervisors go (standalone or systemd scopes).
//! - `limits`: Mesos requests/limits -> control values (pure).
//! - `v1`, `v2`: the two backends of the [`Cgroups`] trait, over a
//!   configurable root so that unit tests run on a fake cgroupfs.
//! - `stats`: control files -> `ResourceStatistics` (pure).
//! - `oom_watch`: pollable OOM-kill notification; `oom_score`: the
//!   `oom_score_adj` rule.
//! - `fs`, `error`: file helpers and the error type.
//!
//! Why not libcgroups' managers (already compiled in via libcontainer): its
//! v1 manager finds hierarchies through the process's own mountinfo and
//! cannot be pointed at a fake root, it takes OCI resources rather than
//! Mesos's request/limit model, and it has none of the OOM watching, the
//! refusal to lower memory below usage, or the multi-hierarchy destroy
//! needed here. The files themselves are simple.

mod error;
mod fs;
pub mod layout;
pub mod limits;
pub mod mounts;
pub mod oom_score;
pub mod oom_watch;
pub mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod fake_tests;

use std::path::Path;
use std::time::Duration;

use tepui_proto::v1::ResourceStatistics;

pub use error::CgroupError;
pub use layout::Layout;
pub use limits::{ControlValues, Limit, Limits, LimitsError, PodLimits, pod_limits};
pub use mounts::{CgroupMode, CgroupMounts, PROC_SELF_MOUNTINFO};
pub use oom_score::{host_total_memory_bytes, oom_score_adj, write_oom_score_adj};
pub use oom_watch::{OomEvent, OomWatcher};
pub use v1::CgroupsV1;
pub use v2::CgroupsV2;

/// How long `kill_all` keeps killing before reporting the survivors.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// One pod's or container's cgroup operations, the same on v1 and v2.
/// `cgroup` is always a path relative to the cgroup root(s), such as
/// `tepui/<pod>/<container>` (a leading `/` is accepted; `..` is not).
///
/// Calls block only on file I/O, except `kill_all` (waits, bounded by
/// `KILL_TIMEOUT`, for the processes to be gone) and `destroy` (a few short
/// EBUSY retries), so they suit a single-threaded supervisor loop.
pub trait Cgroups: Send + Sync + std::fmt::Debug {
    fn mode(&self) -> CgroupMode;

    /// The cgroup2 mount (v2 only): where `/proc/self/cgroup` paths start.
    fn v2_root(&self) -> Option<&Path> {
        None
    }

    /// Makes every later `apply`/`update` keep the cgroup out of swap (v2
    /// `memory.swap.max = 0`, v1 `memory.memsw.limit_in_bytes` = the memory
    /// limit). Returns whether the host can: false without swap accounting.
    fn set_limit_swap(&mut self, _on: bool) -> bool {
        false
    }

    /// v2: `memory.swap.max = 0` on one cgroup (libcontainer skips a 0 swap
    /// value). The pod's own 0 already binds its subtree; this makes the
    /// container's file say so too. No-op elsewhere.
    fn swap_off(&self, _cgroup: &str) -> Result<(), CgroupError> {
        Ok(())
    }

    /// The standalone layout's start-up check (v2: the root delegates the
    /// controllers). No-op elsewhere.
    fn prepare_standalone(&self) -> Result<(), CgroupError> {
        Ok(())
    }

    /// Whether `set_limit_swap` took effect.
    fn limits_swap(&self) -> bool {
        false
    }

    /// Whether the pids controller can limit tasks here.
    fn pids_supported(&self) -> bool {
        false
    }

    /// v1 only: (name under `/sys/fs/cgroup`, host directory) of the
    /// hierarchies a container sees its own cgroup of, read-only.
    fn v1_binds(&self, _cgroup: &str) -> Vec<(String, std::path::PathBuf)> {
        Vec::new()
    }

    /// Errors unless the controllers limits need (cpu, cpuacct, memory on
    /// v1; cpu, memory on v2) are there. For agent start-up.
    fn check_controllers(&self) -> Result<(), CgroupError>;

    /// Creates the cgroup and its missing ancestors (v1: in each managed
    /// hierarchy; v2: enabling cpu/memory/pids on every ancestor).
    /// Creating an existing cgroup is fine.
    fn create(&self, cgroup: &str) -> Result<(), CgroupError>;

    fn exists(&self, cgroup: &str) -> bool;

    /// Writes every control `limits` maps to (including the "unlimited"
    /// values for what it leaves unset) without checks: for a new cgroup.
    fn apply(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError>;

    /// Like `apply` for a running cgroup, but refuses (writing nothing) a
    /// memory limit below current usage, with `CgroupError::BelowUsage`.
    fn update(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError>;

    /// The values the control files hold now (see `ControlValues`).
    fn read_controls(&self, cgroup: &str) -> Result<ControlValues, CgroupError>;

    /// Moves a process (all its threads) into the cgroup.
    fn add_process(&self, cgroup: &str, pid: i32) -> Result<(), CgroupError>;

    /// Every process in the cgroup and its descendants, sorted.
    fn processes(&self, cgroup: &str) -> Result<Vec<i32>, CgroupError>;

    /// Current memory use of the subtree (v1 `memory.usage_in_bytes`, v2
    /// `memory.current`; both include page cache).
    fn memory_usage_bytes(&self, cgroup: &str) -> Result<u64, CgroupError>;

    /// Peak memory use (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`;
    /// `None` on v2 kernels before 5.19). For OOM messages.
    fn peak_memory_bytes(&self, cgroup: &str) -> Result<Option<u64>, CgroupError>;

    /// The `oom_kill` counter; `None` on v1 kernels before 4.13.
    fn oom_kill_count(&self, cgroup: &str) -> Result<Option<u64>, CgroupError>;

    /// OOM kills anywhere in the subtree. v2's `memory.events` is
    /// hierarchical, so its own counter says it; v1 overrides this.
    fn subtree_oom_kills(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        self.oom_kill_count(cgroup)
    }

    /// CPU, memory and process statistics of the subtree, timestamped now.
    /// `cpus_soft_limit` is left to the caller, which knows the request.
    fn stats(&self, cgroup: &str) -> Result<ResourceStatistics, CgroupError>;

    /// SIGKILLs every process in the subtree and waits until it is empty
    /// (zombies not yet reaped by their parent do not count). v2 uses
    /// `cgroup.kill`; otherwise freeze, kill, thaw, then kill until empty.
    /// A missing cgroup is fine.
    fn kill_all(&self, cgroup: &str) -> Result<(), CgroupError>;

    /// Removes the cgroup and its descendants, leaf first, from every
    /// hierarchy. Fails if processes remain (call `kill_all` first). A
    /// missing cgroup is fine.
    fn destroy(&self, cgroup: &str) -> Result<(), CgroupError>;

    /// A pollable OOM-kill watcher for the cgroup (see `OomWatcher`).
    fn oom_watcher(&self, cgroup: &str) -> Result<OomWatcher, CgroupError>;
}

/// The host's cgroups from `/proc/self/mountinfo`, in the detected mode or
/// in `forced` (the agent's cgroup-mode flag).
pub fn open(forced: Option<CgroupMode>) -> Result<Box<dyn Cgroups>, CgroupError> {
    open_from(Path::new(PROC_SELF_MOUNTINFO), forced)
}

/// `open` with another mountinfo file.
pub fn open_from(
    mountinfo: &Path,
    forced: Option<CgroupMode>,
) -> Result<Box<dyn Cgroups>, CgroupError> {
    let mounts = CgroupMounts::from_mountinfo(mountinfo)?;
    match mounts.choose_mode(forced, mountinfo)? {
        CgroupMode::V1 => Ok(Box::new(CgroupsV1::from_mounts(&mounts)?)),
        CgroupMode::V2 => match mounts.unified {
            Some(root) => Ok(Box::new(CgroupsV2::new(root))),
            None => Err(CgroupError::Detect {
                file: mountinfo.to_owned(),
                reason: "no cgroup2 mount".into(),
            }),
        },
    }
}

/// `<cgroups_root>/<pod>`: the pod's parent cgroup.
pub fn pod_cgroup(cgroups_root: &str, pod: &str) -> Result<String, CgroupError> {
    let path = format!("{}/{}", cgroups_root.trim_matches('/'), name(pod)?);
    Ok(fs::validate(&path)?.to_owned())
}

/// `<cgroups_root>/<pod>/<container>`: a container's own cgroup, a sibling
/// of the pod's other containers.
pub fn container_cgroup(
    cgroups_root: &str,
    pod: &str,
    container: &str,
) -> Result<String, CgroupError> {
    Ok(format!(
        "{}/{}",
        pod_cgroup(cgroups_root, pod)?,
        name(container)?
    ))
}

fn name(id: &str) -> Result<&str, CgroupError> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        return Err(CgroupError::InvalidPath {
            cgroup: id.to_owned(),
            reason: "a pod or container id must be one non-empty path component",
        });
    }
    Ok(id)
}
