//! cgroup v2: one unified tree. A controller's files appear in a cgroup only
//! when its parent lists the controller in `cgroup.subtree_control`, so
//! `create` enables `cpu`, `memory` and `pids` on every ancestor, from the
//! root down. The "no internal processes" rule means an ancestor we enable
//! controllers in must hold no processes: the pod parent never does, and the
//! agent must not live inside the cgroups root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tepui_proto::v1::ResourceStatistics;

use super::error::CgroupError;
use super::fs;
use super::limits::{ControlValues, Limits};
use super::mounts::CgroupMode;
use super::oom_watch::OomWatcher;
use super::stats;
use super::{Cgroups, KILL_TIMEOUT};

/// Controllers every tepui cgroup gets when the host has them. `pids` is
/// optional (only needed for a pids limit); cpu and memory are required for
/// limits, which `check_controllers` reports.
const WANTED: &[&str] = &["cpu", "memory", "pids"];
const REQUIRED: &[&str] = &["cpu", "memory"];
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct CgroupsV2 {
    root: PathBuf,
    /// Write `memory.swap.max = 0` with the memory limits.
    limit_swap: bool,
}

impl CgroupsV2 {
    /// `root` is the cgroup2 mount point (`/sys/fs/cgroup`), or a fake
    /// cgroupfs directory holding at least `cgroup.controllers`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CgroupsV2 {
            root: root.into(),
            limit_swap: false,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn available(&self) -> Result<BTreeSet<String>, CgroupError> {
        let file = self.root.join("cgroup.controllers");
        Ok(fs::read_opt("/", &file)?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Enables the wanted controllers in `dir/cgroup.subtree_control` that
    /// are available and not yet enabled, in one write.
    fn enable_controllers(
        &self,
        cgroup: &str,
        dir: &Path,
        available: &BTreeSet<String>,
    ) -> Result<(), CgroupError> {
        // A level can only delegate what it has itself: below a delegated
        // systemd unit, the unit's own `cgroup.controllers` is the truth,
        // not the root's (writing more would fail with ENOENT). A fake
        // cgroupfs has the file at its root only.
        let level: Option<BTreeSet<String>> =
            fs::read_opt(cgroup, &dir.join("cgroup.controllers"))?
                .map(|t| t.split_whitespace().map(str::to_owned).collect());
        let available = level.as_ref().unwrap_or(available);
        let file = dir.join("cgroup.subtree_control");
        let enabled: BTreeSet<String> = fs::read_opt(cgroup, &file)?
            .unwrap_or_default()
            .split_whitespace()
            .map(|c| c.trim_start_matches('+').to_owned())
            .collect();
        let missing: Vec<String> = WANTED
            .iter()
            .filter(|c| available.contains(**c) && !enabled.contains(**c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        fs::write(cgroup, &file, &missing.join(" ")).map_err(|e| match e {
            // EBUSY here means the cgroup holds processes (no internal
            // processes rule): say so instead of a bare "busy".
            CgroupError::Io { source, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
                CgroupError::Io {
                    cgroup: cgroup.to_owned(),
                    file: file.clone(),
                    action: "enable controllers (the cgroup must not hold processes) in",
                    source,
                }
            }
            other => other,
        })
    }

    fn controls(cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError> {
        limits
            .controls()
            .map_err(|source| CgroupError::InvalidLimits {
                cgroup: cgroup.to_owned(),
                source,
            })
    }

    fn write_controls(
        &self,
        cgroup: &str,
        dir: &Path,
        v: &ControlValues,
    ) -> Result<(), CgroupError> {
        if let Some(weight) = v.cpu_weight {
            fs::write(cgroup, &dir.join("cpu.weight"), &weight.to_string())?;
        }
        let quota = v.cfs_quota_us.map_or("max".to_owned(), |q| q.to_string());
        fs::write(
            cgroup,
            &dir.join("cpu.max"),
            &format!("{quota} {}", v.cfs_period_us),
        )?;
        let max = v.memory_max.map_or("max".to_owned(), |m| m.to_string());
        // memory.low before memory.max: lowering max never races a stale low.
        fs::write(
            cgroup,
            &dir.join("memory.low"),
            &v.memory_soft.unwrap_or(0).to_string(),
        )?;
        fs::write(cgroup, &dir.join("memory.max"), &max)?;
        // Hierarchical: 0 on a pod's cgroup keeps its whole subtree out of
        // swap. Absent without swap accounting (CONFIG_MEMCG_SWAP).
        let swap_file = dir.join("memory.swap.max");
        if self.limit_swap && swap_file.exists() {
            fs::write(cgroup, &swap_file, "0")?;
        }
        let pids_file = dir.join("pids.max");
        // Resetting a pids limit where the controller is absent is a no-op.
        if v.pids_max.is_some() || pids_file.exists() {
            let pids = v.pids_max.map_or("max".to_owned(), |p| p.to_string());
            fs::write(cgroup, &pids_file, &pids)?;
        }
        Ok(())
    }

    fn subtree_pids(&self, cgroup: &str, rel: &str) -> Result<(Vec<i32>, PathBuf), CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in fs::subtree_leaf_first(cgroup, &self.root.join(rel))? {
            let file = dir.join("cgroup.procs");
            if let Some(text) = fs::read_opt(cgroup, &file)? {
                pids.extend(fs::parse_pids(cgroup, &file, &text)?);
            }
        }
        Ok((
            pids.into_iter().collect(),
            self.root.join(rel).join("cgroup.procs"),
        ))
    }

    fn count_in_subtree(&self, cgroup: &str, rel: &str, name: &str) -> Result<u32, CgroupError> {
        let mut n: u64 = 0;
        for dir in fs::subtree_leaf_first(cgroup, &self.root.join(rel))? {
            let file = dir.join(name);
            if let Some(text) = fs::read_opt(cgroup, &file)? {
                n += fs::parse_pids(cgroup, &file, &text)?.len() as u64;
            }
        }
        Ok(stats::saturate_u32(n))
    }

    /// Kernels before 5.14 have no `cgroup.kill`: freeze the subtree, kill
    /// what is listed, thaw. Returns whether the freeze worked.
    fn freeze_and_kill(&self, cgroup: &str, rel: &str) -> Result<bool, CgroupError> {
        let dir = self.root.join(rel);
        let freeze = dir.join("cgroup.freeze");
        if !freeze.exists() {
            return Ok(false); // kernel < 5.2: plain kill loop only
        }
        let events = dir.join("cgroup.events");
        fs::write(cgroup, &freeze, "1")?;
        let frozen = fs::wait_until(FREEZE_TIMEOUT, || {
            let text = fs::read(cgroup, &events)?;
            Ok(fs::flat_keyed(&text).get("frozen") == Some(&1))
        })?;
        if frozen {
            let (pids, file) = self.subtree_pids(cgroup, rel)?;
            for pid in pids {
                fs::sigkill(cgroup, &file, pid)?;
            }
        }
        fs::write(cgroup, &freeze, "0")?;
        Ok(frozen)
    }
}

impl Cgroups for CgroupsV2 {
    fn mode(&self) -> CgroupMode {
        CgroupMode::V2
    }

    fn v2_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    /// Swap accounting shows as `memory.swap.*` files in non-root cgroups
    /// only; the root's `memory.swap.current`-less listing says nothing, so
    /// the kernel's own switch is read instead.
    fn set_limit_swap(&mut self, on: bool) -> bool {
        let accounting = self.available().is_ok_and(|c| c.contains("memory"))
            && !std::fs::read_to_string("/proc/cmdline")
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "swapaccount=0"));
        self.limit_swap = on && accounting;
        self.limit_swap
    }

    fn swap_off(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        let file = self.root.join(rel).join("memory.swap.max");
        if self.limit_swap && file.exists() {
            fs::write(cgroup, &file, "0")?;
        }
        Ok(())
    }

    /// Standalone only: the hierarchy root must delegate the controllers to
    /// `--cgroups_root`; checked at start instead of at the first launch. A
    /// cgroup namespace root holding processes (an agent in a container)
    /// cannot (EBUSY: no internal processes).
    fn prepare_standalone(&self) -> Result<(), CgroupError> {
        let available = self.available()?;
        self.enable_controllers("/", &self.root, &available)
            .map_err(|e| CgroupError::Unusable {
                what: e.to_string(),
                fix: "run the agent where the cgroup root can delegate controllers: on the host, or in a container whose own processes sit in a child cgroup (nested cgroup namespace with a delegated subtree)".into(),
            })
    }

    fn limits_swap(&self) -> bool {
        self.limit_swap
    }

    fn pids_supported(&self) -> bool {
        self.available().is_ok_and(|c| c.contains("pids"))
    }

    fn check_controllers(&self) -> Result<(), CgroupError> {
        let available = self.available()?;
        for c in REQUIRED {
            if !available.contains(*c) {
                let file = self.root.join("cgroup.controllers");
                return Err(CgroupError::Unusable {
                    what: format!(
                        "cgroup v2 controller '{c}' is not available: {} lists only '{}'",
                        file.display(),
                        available.iter().cloned().collect::<Vec<_>>().join(" ")
                    ),
                    fix: format!(
                        "enable it: on the host, remove `cgroup_disable={c}` from the kernel command line; in a container, give the agent a delegated cgroup tree with the {c} controller (or run it on the host)"
                    ),
                });
            }
        }
        fs::check_writable(&self.root)
    }

    fn create(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        let available = self.available()?;
        for c in REQUIRED {
            if !available.contains(*c) {
                tracing::warn!(
                    cgroup,
                    controller = c,
                    root = %self.root.display(),
                    "cgroup v2 controller not available: limits using it will fail"
                );
            }
        }
        // Top-down: each ancestor must exist and delegate the controllers to
        // its children before the next level can use them.
        let mut dir = self.root.clone();
        for part in rel.split('/') {
            self.enable_controllers(cgroup, &dir, &available)?;
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CgroupError::io(cgroup, &dir, "create", e)),
            }
        }
        Ok(())
    }

    fn exists(&self, cgroup: &str) -> bool {
        fs::validate(cgroup).is_ok_and(|rel| self.root.join(rel).is_dir())
    }

    fn apply(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let values = Self::controls(cgroup, limits)?;
        self.write_controls(cgroup, &self.root.join(rel), &values)?;
        Ok(values)
    }

    /// On v2, lowering `memory.max` below usage makes the kernel reclaim and
    /// then OOM-kill: refused here. The check races with the container's own
    /// allocations; a container growing past the new limit in that window is
    /// OOM-killed as it would be at its limit anyway.
    fn update(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let dir = self.root.join(rel);
        let values = Self::controls(cgroup, limits)?;
        if let Some(requested) = values.memory_max {
            let file = dir.join("memory.current");
            let usage = fs::read_u64(cgroup, &file)?;
            if requested < usage {
                return Err(CgroupError::BelowUsage {
                    cgroup: cgroup.to_owned(),
                    file,
                    usage_bytes: usage,
                    requested_bytes: requested,
                });
            }
        }
        self.write_controls(cgroup, &dir, &values)?;
        Ok(values)
    }

    fn read_controls(&self, cgroup: &str) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let dir = self.root.join(rel);
        let cpu_max_file = dir.join("cpu.max");
        let cpu_max = fs::read(cgroup, &cpu_max_file)?;
        let mut parts = cpu_max.split_whitespace();
        let quota = fs::parse_limit(cgroup, &cpu_max_file, parts.next().unwrap_or(""))?;
        let period = fs::parse_limit(cgroup, &cpu_max_file, parts.next().unwrap_or(""))?
            .ok_or_else(|| {
                CgroupError::parse(cgroup, &cpu_max_file, &cpu_max, "period is not a number")
            })?;
        let limit = |name: &str| -> Result<Option<u64>, CgroupError> {
            let file = dir.join(name);
            let text = fs::read(cgroup, &file)?;
            fs::parse_limit(cgroup, &file, &text)
        };
        let pids_file = dir.join("pids.max");
        let pids_max = match fs::read_opt(cgroup, &pids_file)? {
            Some(text) => fs::parse_limit(cgroup, &pids_file, &text)?,
            None => None,
        };
        Ok(ControlValues {
            cpu_shares: None,
            cpu_weight: Some(fs::read_u64(cgroup, &dir.join("cpu.weight"))?),
            cfs_quota_us: quota,
            cfs_period_us: period,
            memory_max: limit("memory.max")?,
            memory_soft: limit("memory.low")?.filter(|low| *low > 0),
            pids_max,
        })
    }

    fn add_process(&self, cgroup: &str, pid: i32) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        fs::write(
            cgroup,
            &self.root.join(rel).join("cgroup.procs"),
            &pid.to_string(),
        )
    }

    fn processes(&self, cgroup: &str) -> Result<Vec<i32>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        Ok(self.subtree_pids(cgroup, rel)?.0)
    }

    fn memory_usage_bytes(&self, cgroup: &str) -> Result<u64, CgroupError> {
        let rel = fs::validate(cgroup)?;
        fs::read_u64(cgroup, &self.root.join(rel).join("memory.current"))
    }

    /// `memory.peak` exists from kernel 5.19.
    fn peak_memory_bytes(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let file = self.root.join(rel).join("memory.peak");
        match fs::read_opt(cgroup, &file)? {
            Some(text) => fs::parse_limit(cgroup, &file, &text),
            None => Ok(None),
        }
    }

    fn oom_kill_count(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let text = fs::read(cgroup, &self.root.join(rel).join("memory.events"))?;
        Ok(stats::parse_oom_kill_count(&text))
    }

    fn stats(&self, cgroup: &str) -> Result<ResourceStatistics, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let dir = self.root.join(rel);
        let mut s = ResourceStatistics {
            timestamp: stats::now_secs(),
            ..Default::default()
        };
        stats::apply_v2_cpu_stat(&mut s, &fs::read(cgroup, &dir.join("cpu.stat"))?);
        let controls = self.read_controls(cgroup)?;
        s.cpus_limit = stats::cpus_limit(controls.cfs_quota_us, controls.cfs_period_us);
        s.mem_total_bytes = Some(fs::read_u64(cgroup, &dir.join("memory.current"))?);
        s.mem_limit_bytes = controls.memory_max;
        s.mem_soft_limit_bytes = controls.memory_soft;
        stats::apply_v2_memory_stat(&mut s, &fs::read(cgroup, &dir.join("memory.stat"))?);
        if let Some(swap) = fs::read_opt(cgroup, &dir.join("memory.swap.current"))? {
            s.mem_swap_bytes = swap.trim().parse().ok();
        }
        s.processes = Some(self.count_in_subtree(cgroup, rel, "cgroup.procs")?);
        s.threads = Some(self.count_in_subtree(cgroup, rel, "cgroup.threads")?);
        Ok(s)
    }

    fn kill_all(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        let dir = self.root.join(rel);
        if !dir.is_dir() {
            return Ok(());
        }
        // Kernel >= 5.14: one write kills the whole subtree, race-free.
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            fs::write(cgroup, &kill_file, "1")?;
        } else {
            self.freeze_and_kill(cgroup, rel)?;
        }
        let mut left = (Vec::new(), PathBuf::new());
        let emptied = fs::wait_until(KILL_TIMEOUT, || {
            left = self.subtree_pids(cgroup, rel)?;
            for pid in &left.0 {
                fs::sigkill(cgroup, &left.1, *pid)?;
            }
            Ok(left.0.is_empty())
        })?;
        if emptied {
            Ok(())
        } else {
            Err(CgroupError::StillPopulated {
                cgroup: cgroup.to_owned(),
                file: left.1,
                pids: left.0,
                waited: KILL_TIMEOUT,
            })
        }
    }

    fn destroy(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        for dir in fs::subtree_leaf_first(cgroup, &self.root.join(rel))? {
            fs::remove_dir(cgroup, &dir)?;
        }
        Ok(())
    }

    fn oom_watcher(&self, cgroup: &str) -> Result<OomWatcher, CgroupError> {
        let rel = fs::validate(cgroup)?;
        OomWatcher::v2(cgroup, &self.root.join(rel))
    }
}
