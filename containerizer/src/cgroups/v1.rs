//! cgroup v1: one hierarchy per controller (or per group of co-mounted
//! controllers), each with its own copy of the cgroup tree.
//!
//! We manage `cpu`, `cpuacct`, `memory` (required), `pids` and `freezer`
//! (used when mounted). libcontainer creates a container's cgroup in every
//! mounted hierarchy (devices, blkio, cpuset...), and its `delete()` removes
//! only the leaf, so `destroy` sweeps the path out of all of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tepui_proto::v1::ResourceStatistics;

use super::error::CgroupError;
use super::fs;
use super::limits::{ControlValues, Limits};
use super::mounts::{CgroupMode, CgroupMounts};
use super::oom_watch::OomWatcher;
use super::stats;
use super::{Cgroups, KILL_TIMEOUT};

/// How long to wait for `freezer.state` to reach FROZEN before thawing and
/// retrying (a task in uninterruptible sleep can hold FREEZING; Mesos thaws
/// and retries too, MESOS-1758).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);
const FREEZE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct CgroupsV1 {
    cpu: PathBuf,
    cpuacct: PathBuf,
    memory: PathBuf,
    pids: Option<PathBuf>,
    freezer: Option<PathBuf>,
    /// Every mounted hierarchy, for `destroy`.
    all: Vec<PathBuf>,
    /// Keep `memory.memsw.limit_in_bytes` equal to the memory limit (no
    /// swap beyond it), where swap accounting exists.
    limit_swap: bool,
}

impl CgroupsV1 {
    /// From the host's mounts; `cpu`, `cpuacct` and `memory` are required.
    pub fn from_mounts(mounts: &CgroupMounts) -> Result<Self, CgroupError> {
        let required = |name: &str| {
            mounts
                .v1
                .get(name)
                .cloned()
                .ok_or_else(|| CgroupError::Unusable {
                    what: format!(
                        "cgroup v1 controller '{name}' is not mounted (no hierarchy for it in {})",
                        super::mounts::PROC_SELF_MOUNTINFO
                    ),
                    fix: format!(
                        "mount it (`mkdir -p /sys/fs/cgroup/{name} && mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}`), or enable it on the kernel command line (`cgroup_enable={name}`) and reboot"
                    ),
                })
        };
        let mut all: Vec<PathBuf> = mounts.v1.values().cloned().collect();
        all.sort();
        all.dedup();
        Ok(CgroupsV1 {
            cpu: required("cpu")?,
            cpuacct: required("cpuacct")?,
            memory: required("memory")?,
            pids: mounts.v1.get("pids").cloned(),
            freezer: mounts.v1.get("freezer").cloned(),
            all,
            limit_swap: false,
        })
    }

    /// Every controller at `<root>/<controller>` (the usual
    /// `/sys/fs/cgroup` layout; a temp dir for a fake cgroupfs).
    pub fn under_root(root: &Path) -> Self {
        let at = |c: &str| root.join(c);
        CgroupsV1 {
            cpu: at("cpu"),
            cpuacct: at("cpuacct"),
            memory: at("memory"),
            pids: Some(at("pids")),
            freezer: Some(at("freezer")),
            all: ["cpu", "cpuacct", "memory", "pids", "freezer"]
                .iter()
                .map(|c| at(c))
                .collect(),
            limit_swap: false,
        }
    }

    /// The hierarchies a cgroup is created in and processes are moved into
    /// (co-mounted controllers share one directory, hence the set).
    fn used(&self) -> Vec<&Path> {
        let mut set = BTreeSet::new();
        for h in [
            Some(&self.cpu),
            Some(&self.cpuacct),
            Some(&self.memory),
            self.pids.as_ref(),
            self.freezer.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            set.insert(h.as_path());
        }
        set.into_iter().collect()
    }

    /// The controls file writes for `values`, in order: the period before
    /// the quota (a quota is validated against the current period).
    fn writes(&self, rel: &str, v: &ControlValues) -> Vec<(PathBuf, String)> {
        let cpu = self.cpu.join(rel);
        let mem = self.memory.join(rel);
        let mut w = Vec::new();
        if let Some(shares) = v.cpu_shares {
            w.push((cpu.join("cpu.shares"), shares.to_string()));
        }
        w.extend([
            (cpu.join("cpu.cfs_period_us"), v.cfs_period_us.to_string()),
            (
                cpu.join("cpu.cfs_quota_us"),
                v.cfs_quota_us.map_or("-1".to_owned(), |q| q.to_string()),
            ),
            (
                mem.join("memory.limit_in_bytes"),
                v.memory_max.map_or("-1".to_owned(), |m| m.to_string()),
            ),
            (
                mem.join("memory.soft_limit_in_bytes"),
                v.memory_soft.map_or("-1".to_owned(), |m| m.to_string()),
            ),
        ]);
        if let Some(pids) = &self.pids {
            w.push((
                pids.join(rel).join("pids.max"),
                v.pids_max.map_or("max".to_owned(), |p| p.to_string()),
            ));
        }
        w
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
        rel: &str,
        v: &ControlValues,
    ) -> Result<(), CgroupError> {
        if v.pids_max.is_some() && self.pids.is_none() {
            return Err(CgroupError::MissingFile {
                cgroup: cgroup.to_owned(),
                file: PathBuf::from("pids.max"),
                controller: "pids".into(),
            });
        }
        let memsw = self.memory.join(rel).join("memory.memsw.limit_in_bytes");
        let swap_limited = self.limit_swap && memsw.exists();
        // memsw may never be below the memory limit: when growing, memsw
        // first; when shrinking, the memory limit first
        // (Mesos's `CgroupsMemIsolatorProcess::update` ordering).
        let new_limit = v.memory_max.unwrap_or(u64::MAX);
        let grows = swap_limited
            && fs::read_opt(cgroup, &memsw)?
                .and_then(|t| t.trim().parse::<u64>().ok())
                .is_some_and(|old| new_limit > old);
        let memsw_value = v.memory_max.map_or("-1".to_owned(), |m| m.to_string());
        if grows {
            fs::write(cgroup, &memsw, &memsw_value)?;
        }
        for (file, value) in self.writes(rel, v) {
            fs::write(cgroup, &file, &value)?;
        }
        if swap_limited && !grows {
            fs::write(cgroup, &memsw, &memsw_value)?;
        }
        Ok(())
    }

    /// Every pid in the subtree, across the hierarchies we use (a process
    /// placed by someone else may be in some of them only).
    fn subtree_pids(&self, cgroup: &str, rel: &str) -> Result<(Vec<i32>, PathBuf), CgroupError> {
        let mut pids = BTreeSet::new();
        for h in self.used() {
            for dir in fs::subtree_leaf_first(cgroup, &h.join(rel))? {
                let file = dir.join("cgroup.procs");
                if let Some(text) = fs::read_opt(cgroup, &file)? {
                    pids.extend(fs::parse_pids(cgroup, &file, &text)?);
                }
            }
        }
        Ok((
            pids.into_iter().collect(),
            self.memory.join(rel).join("cgroup.procs"),
        ))
    }

    fn count_lines_in_subtree(
        &self,
        cgroup: &str,
        rel: &str,
        name: &str,
    ) -> Result<u32, CgroupError> {
        let mut n: u64 = 0;
        for dir in fs::subtree_leaf_first(cgroup, &self.memory.join(rel))? {
            let file = dir.join(name);
            if let Some(text) = fs::read_opt(cgroup, &file)? {
                n += fs::parse_pids(cgroup, &file, &text)?.len() as u64;
            }
        }
        Ok(stats::saturate_u32(n))
    }

    /// Freezes the subtree, SIGKILLs every process, thaws: nothing can fork
    /// between listing and killing. Returns whether the freeze worked.
    fn freeze_and_kill(
        &self,
        cgroup: &str,
        rel: &str,
        freezer: &Path,
    ) -> Result<bool, CgroupError> {
        let dir = freezer.join(rel);
        if !dir.is_dir() {
            return Ok(false);
        }
        let state = dir.join("freezer.state");
        for _ in 0..FREEZE_ATTEMPTS {
            fs::write(cgroup, &state, "FROZEN")?;
            let frozen = fs::wait_until(FREEZE_TIMEOUT, || {
                Ok(fs::read(cgroup, &state)?.trim() == "FROZEN")
            })?;
            if frozen {
                let (pids, file) = self.subtree_pids(cgroup, rel)?;
                for pid in pids {
                    fs::sigkill(cgroup, &file, pid)?;
                }
                // SIGKILL is delivered once thawed.
                fs::write(cgroup, &state, "THAWED")?;
                return Ok(true);
            }
            fs::write(cgroup, &state, "THAWED")?;
        }
        tracing::warn!(cgroup, "could not freeze cgroup; killing without freezing");
        Ok(false)
    }
}

impl Cgroups for CgroupsV1 {
    fn mode(&self) -> CgroupMode {
        CgroupMode::V1
    }

    fn set_limit_swap(&mut self, on: bool) -> bool {
        self.limit_swap = on && self.memory.join("memory.memsw.limit_in_bytes").exists();
        self.limit_swap
    }

    fn limits_swap(&self) -> bool {
        self.limit_swap
    }

    fn pids_supported(&self) -> bool {
        self.pids.as_ref().is_some_and(|p| p.is_dir())
    }

    fn v1_binds(&self, cgroup: &str) -> Vec<(String, PathBuf)> {
        let Ok(rel) = fs::validate(cgroup) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        [
            Some(&self.cpu),
            Some(&self.cpuacct),
            Some(&self.memory),
            self.pids.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter(|h| seen.insert((*h).clone()))
        .filter_map(|h| {
            let name = h.file_name()?.to_str()?.to_owned();
            Some((name, h.join(rel)))
        })
        .collect()
    }

    fn check_controllers(&self) -> Result<(), CgroupError> {
        for (name, dir) in [
            ("cpu", &self.cpu),
            ("cpuacct", &self.cpuacct),
            ("memory", &self.memory),
        ] {
            if !dir.is_dir() {
                return Err(CgroupError::MissingFile {
                    cgroup: "/".into(),
                    file: dir.clone(),
                    controller: name.into(),
                });
            }
        }
        let mut roots = vec![&self.cpu, &self.cpuacct, &self.memory];
        roots.extend(self.pids.as_ref());
        for root in roots {
            fs::check_writable(root)?;
        }
        Ok(())
    }

    fn create(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        for h in self.used() {
            let dir = h.join(rel);
            std::fs::create_dir_all(&dir)
                .map_err(|e| CgroupError::io(cgroup, &dir, "create", e))?;
        }
        Ok(())
    }

    fn exists(&self, cgroup: &str) -> bool {
        fs::validate(cgroup).is_ok_and(|rel| self.memory.join(rel).is_dir())
    }

    fn apply(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let values = Self::controls(cgroup, limits)?;
        self.write_controls(cgroup, rel, &values)?;
        Ok(values)
    }

    fn update(&self, cgroup: &str, limits: &Limits) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let values = Self::controls(cgroup, limits)?;
        if let Some(requested) = values.memory_max {
            let file = self.memory.join(rel).join("memory.usage_in_bytes");
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
        self.write_controls(cgroup, rel, &values)?;
        Ok(values)
    }

    fn read_controls(&self, cgroup: &str) -> Result<ControlValues, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let cpu = self.cpu.join(rel);
        let mem = self.memory.join(rel);
        let quota_file = cpu.join("cpu.cfs_quota_us");
        let quota_text = fs::read(cgroup, &quota_file)?;
        let quota: i64 = quota_text
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| {
                CgroupError::parse(cgroup, &quota_file, &quota_text, e.to_string())
            })?;
        let cpu_shares = fs::read_u64(cgroup, &cpu.join("cpu.shares"))?;
        let pids_max = match &self.pids {
            Some(p) => {
                let file = p.join(rel).join("pids.max");
                match fs::read_opt(cgroup, &file)? {
                    Some(text) => fs::parse_limit(cgroup, &file, &text)?,
                    None => None,
                }
            }
            None => None,
        };
        Ok(ControlValues {
            cpu_shares: Some(cpu_shares),
            cpu_weight: None,
            cfs_quota_us: u64::try_from(quota).ok(),
            cfs_period_us: fs::read_u64(cgroup, &cpu.join("cpu.cfs_period_us"))?,
            memory_max: read_v1_limit(cgroup, &mem.join("memory.limit_in_bytes"))?,
            memory_soft: read_v1_limit(cgroup, &mem.join("memory.soft_limit_in_bytes"))?,
            pids_max,
        })
    }

    fn add_process(&self, cgroup: &str, pid: i32) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        for h in self.used() {
            fs::write(cgroup, &h.join(rel).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn processes(&self, cgroup: &str) -> Result<Vec<i32>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        Ok(self.subtree_pids(cgroup, rel)?.0)
    }

    fn memory_usage_bytes(&self, cgroup: &str) -> Result<u64, CgroupError> {
        let rel = fs::validate(cgroup)?;
        fs::read_u64(cgroup, &self.memory.join(rel).join("memory.usage_in_bytes"))
    }

    fn peak_memory_bytes(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let file = self.memory.join(rel).join("memory.max_usage_in_bytes");
        match fs::read_opt(cgroup, &file)? {
            Some(text) => fs::parse_limit(cgroup, &file, &text),
            None => Ok(None),
        }
    }

    fn oom_kill_count(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let text = fs::read(cgroup, &self.memory.join(rel).join("memory.oom_control"))?;
        Ok(stats::parse_oom_kill_count(&text))
    }

    /// v1 counts a kill only in the victim's own memcg (the kernel's
    /// `memcg_memory_event` does not walk up on v1), so every cgroup of the
    /// subtree is summed.
    fn subtree_oom_kills(&self, cgroup: &str) -> Result<Option<u64>, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let mut total = None;
        for dir in fs::subtree_leaf_first(cgroup, &self.memory.join(rel))? {
            let Some(text) = fs::read_opt(cgroup, &dir.join("memory.oom_control"))? else {
                continue;
            };
            if let Some(n) = stats::parse_oom_kill_count(&text) {
                total = Some(total.unwrap_or(0) + n);
            }
        }
        Ok(total)
    }

    fn stats(&self, cgroup: &str) -> Result<ResourceStatistics, CgroupError> {
        let rel = fs::validate(cgroup)?;
        let cpu = self.cpu.join(rel);
        let mem = self.memory.join(rel);
        let mut s = ResourceStatistics {
            timestamp: stats::now_secs(),
            ..Default::default()
        };
        let cpuacct = fs::read(cgroup, &self.cpuacct.join(rel).join("cpuacct.stat"))?;
        stats::apply_cpuacct_stat(&mut s, &cpuacct, stats::clock_ticks_per_sec());
        stats::apply_v1_cpu_stat(&mut s, &fs::read(cgroup, &cpu.join("cpu.stat"))?);
        let controls = self.read_controls(cgroup)?;
        s.cpus_limit = stats::cpus_limit(controls.cfs_quota_us, controls.cfs_period_us);
        s.mem_total_bytes = Some(fs::read_u64(cgroup, &mem.join("memory.usage_in_bytes"))?);
        s.mem_limit_bytes = controls.memory_max;
        s.mem_soft_limit_bytes = controls.memory_soft;
        stats::apply_v1_memory_stat(&mut s, &fs::read(cgroup, &mem.join("memory.stat"))?);
        s.processes = Some(self.count_lines_in_subtree(cgroup, rel, "cgroup.procs")?);
        s.threads = Some(self.count_lines_in_subtree(cgroup, rel, "tasks")?);
        Ok(s)
    }

    fn kill_all(&self, cgroup: &str) -> Result<(), CgroupError> {
        let rel = fs::validate(cgroup)?;
        if let Some(freezer) = &self.freezer {
            self.freeze_and_kill(cgroup, rel, freezer)?;
        }
        // Without a freezer (or after it), kill until empty: a process forked
        // between listing and killing shows up in the next round.
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
        for h in &self.all {
            for dir in fs::subtree_leaf_first(cgroup, &h.join(rel))? {
                fs::remove_dir(cgroup, &dir)?;
            }
        }
        Ok(())
    }

    fn oom_watcher(&self, cgroup: &str) -> Result<OomWatcher, CgroupError> {
        let rel = fs::validate(cgroup)?;
        OomWatcher::v1(cgroup, &self.memory.join(rel))
    }
}

/// A v1 memory limit: the kernel shows "unlimited" as a huge page-aligned
/// number; `-1` (what we write for it) is accepted too.
fn read_v1_limit(cgroup: &str, file: &Path) -> Result<Option<u64>, CgroupError> {
    let text = fs::read(cgroup, file)?;
    let value: i128 = text.trim().parse().map_err(|e: std::num::ParseIntError| {
        CgroupError::parse(cgroup, file, &text, e.to_string())
    })?;
    Ok(u64::try_from(value).ok().and_then(stats::v1_limit))
}
