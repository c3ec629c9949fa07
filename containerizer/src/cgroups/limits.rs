//! Mesos requests/limits -> cgroup control values, as pure functions
//! (DESIGN.md section 3). Nothing here touches a file.
//!
//! - cpu request -> `cpu.shares = max(2, 1024 * cpus)`; v2 `cpu.weight` by
//!   the log-quadratic conversion runc/youki use.
//! - cpu limit -> CFS quota over a 100 ms period, at least 1 ms; `Infinity`
//!   or no limit -> no quota (Mesos's default `--cgroups_enable_cfs=false`).
//! - mem limit -> hard limit; `Infinity` -> unlimited; no limit -> the request
//!   is the hard limit. A request below the limit -> soft limit (v1
//!   `memory.soft_limit_in_bytes`) / protection (v2 `memory.low`).
//!   Both are at least 32 MiB (Mesos's `MIN_MEMORY`): a smaller hard limit
//!   only OOM-kills the container's init before it does anything.

use std::fmt;

use super::mounts::CgroupMode;

pub const CPU_SHARES_PER_CPU: f64 = 1024.0;
pub const MIN_CPU_SHARES: u64 = 2;
/// The kernel's maximum for `cpu.shares`.
pub const MAX_CPU_SHARES: u64 = 262_144;
/// Kernel default shares (= v2 weight 100) for a cgroup without a request.
pub const DEFAULT_CPU_SHARES: u64 = 1024;
pub const MAX_CPU_WEIGHT: u64 = 10_000;
pub const CFS_PERIOD_US: u64 = 100_000;
pub const MIN_CFS_QUOTA_US: u64 = 1_000;
pub const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

/// A limit that may be `Infinity` (Mesos `limits: {"cpus": "Infinity"}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit<T> {
    Finite(T),
    Infinity,
}

/// What one cgroup should get. `None` everywhere (the `Default`) means "no
/// constraint": kernel default shares, no quota, no memory limit, no pids
/// limit; that is what a container's own cgroup gets under
/// `share_cgroups=true`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// CPUs requested (Mesos `cpus` resource).
    pub cpu_request: Option<f64>,
    /// CPU limit (Mesos `limits.cpus`).
    pub cpu_limit: Option<Limit<f64>>,
    /// Memory requested in bytes (Mesos `mem` resource, MB -> bytes).
    pub mem_request_bytes: Option<u64>,
    /// Memory limit in bytes (Mesos `limits.mem`).
    pub mem_limit: Option<Limit<u64>>,
    /// `pids.max` (not a Mesos resource; a tepui agent option).
    pub pids_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitsError {
    #[error("{what} must be a finite number >= 0, got {value}")]
    NotANonNegativeNumber { what: &'static str, value: f64 },
    #[error("{what} limit {limit} is below its request {request}")]
    LimitBelowRequest {
        what: &'static str,
        request: String,
        limit: String,
    },
}

impl fmt::Display for Limit<f64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Finite(v) => write!(f, "{v}"),
            Limit::Infinity => f.write_str("Infinity"),
        }
    }
}

impl fmt::Display for Limit<u64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Finite(v) => write!(f, "{v}"),
            Limit::Infinity => f.write_str("Infinity"),
        }
    }
}

impl Limits {
    /// From Mesos scalars: `cpus`, `mem` (MB) and the `limits` map values;
    /// `f64::INFINITY` is `Infinity`. Memory is truncated to whole MB first,
    /// as Mesos's `Resources::mem()` does, so byte values match Mesos.
    pub fn from_mesos(
        cpus: Option<f64>,
        mem_mb: Option<f64>,
        cpu_limit: Option<f64>,
        mem_limit_mb: Option<f64>,
    ) -> Limits {
        let mb_to_bytes = |mb: f64| (mb.max(0.0).trunc() * MIB) as u64;
        Limits {
            cpu_request: cpus,
            cpu_limit: cpu_limit.map(|c| {
                if c.is_infinite() && c > 0.0 {
                    Limit::Infinity
                } else {
                    Limit::Finite(c)
                }
            }),
            mem_request_bytes: mem_mb.map(mb_to_bytes),
            mem_limit: mem_limit_mb.map(|m| {
                if m.is_infinite() && m > 0.0 {
                    Limit::Infinity
                } else {
                    Limit::Finite(mb_to_bytes(m))
                }
            }),
            pids_limit: None,
        }
    }

    /// Rejects NaN/negative CPU values and limits below requests (the master
    /// validates this too; an agent must not trust it blindly).
    pub fn validate(&self) -> Result<(), LimitsError> {
        let check = |what, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(LimitsError::NotANonNegativeNumber { what, value })
            }
        };
        if let Some(c) = self.cpu_request {
            check("cpu request", c)?;
        }
        if let Some(Limit::Finite(c)) = self.cpu_limit {
            check("cpu limit", c)?;
            if let Some(r) = self.cpu_request
                && c < r
            {
                return Err(LimitsError::LimitBelowRequest {
                    what: "cpu",
                    request: r.to_string(),
                    limit: c.to_string(),
                });
            }
        }
        if let (Some(Limit::Finite(l)), Some(r)) = (self.mem_limit, self.mem_request_bytes)
            && l < r
        {
            return Err(LimitsError::LimitBelowRequest {
                what: "memory",
                request: format!("{r} bytes"),
                limit: format!("{l} bytes"),
            });
        }
        Ok(())
    }

    /// The control values these limits map to (validated first).
    pub fn controls(&self) -> Result<ControlValues, LimitsError> {
        self.validate()?;
        let cpu_shares = self.cpu_request.map_or(DEFAULT_CPU_SHARES, cpu_shares);
        let cfs_quota_us = match self.cpu_limit {
            Some(Limit::Finite(c)) => Some(cfs_quota_us(c)),
            Some(Limit::Infinity) | None => None,
        };
        let memory_max = match (self.mem_limit, self.mem_request_bytes) {
            (Some(Limit::Infinity), _) | (None, None) => None,
            (Some(Limit::Finite(l)), _) => Some(l.max(MIN_MEMORY_BYTES)),
            // No limit: the request is the hard limit (Mesos).
            (None, Some(r)) => Some(r.max(MIN_MEMORY_BYTES)),
        };
        let memory_soft = match (self.mem_request_bytes, memory_max) {
            (Some(r), max) => {
                let soft = r.max(MIN_MEMORY_BYTES);
                // Only meaningful below the hard limit (request < limit).
                match max {
                    Some(max) if soft >= max => None,
                    _ => Some(soft),
                }
            }
            (None, _) => None,
        };
        Ok(ControlValues {
            cpu_shares: Some(cpu_shares),
            cpu_weight: Some(cpu_weight_from_shares(cpu_shares)),
            cfs_quota_us,
            cfs_period_us: CFS_PERIOD_US,
            memory_max,
            memory_soft,
            pids_max: self.pids_limit,
        })
    }
}

/// The kernel-level values for one cgroup. `Limits::controls` fills both
/// CPU fields; the v1 backend writes `cpu_shares`, the v2 backend
/// `cpu_weight`, and `read_controls` fills only its own (a v2 weight cannot
/// be turned back into shares). Everything else is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlValues {
    /// v1 `cpu.shares`.
    pub cpu_shares: Option<u64>,
    /// v2 `cpu.weight`.
    pub cpu_weight: Option<u64>,
    /// CFS quota in microseconds per `cfs_period_us`; `None` = no quota.
    pub cfs_quota_us: Option<u64>,
    pub cfs_period_us: u64,
    /// Hard memory limit; `None` = unlimited.
    pub memory_max: Option<u64>,
    /// v1 soft limit / v2 `memory.low`; `None` = none (`-1` / `0`).
    pub memory_soft: Option<u64>,
    /// `pids.max`; `None` = `max`.
    pub pids_max: Option<u64>,
}

impl ControlValues {
    /// These values as `read_controls` reports them once written in `mode`.
    pub fn as_read_back(&self, mode: CgroupMode) -> ControlValues {
        let mut v = *self;
        match mode {
            CgroupMode::V1 => v.cpu_weight = None,
            CgroupMode::V2 => v.cpu_shares = None,
        }
        v
    }
}

/// `cpu.shares = max(2, 1024 * cpus)`, capped at the kernel maximum.
pub fn cpu_shares(cpus: f64) -> u64 {
    let shares = (CPU_SHARES_PER_CPU * cpus.max(0.0)) as u64; // truncates, like Mesos
    shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES)
}

/// v1 shares -> v2 weight, the log-quadratic mapping runc and youki adopted
/// (it maps the default 1024 to the default 100, which the old linear
/// `1 + (shares - 2) * 9999 / 262142` did not: that gave 39).
/// `0` means "unset" and stays `0`; 2 -> 1, 1024 -> 100, 262144 -> 10000.
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= MIN_CPU_SHARES {
        return 1;
    }
    if shares >= MAX_CPU_SHARES {
        return MAX_CPU_WEIGHT;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    let weight = 10f64.powf(exponent).ceil() as u64;
    weight.clamp(1, MAX_CPU_WEIGHT)
}

/// CFS quota for a CPU limit over the 100 ms period, at least 1 ms.
pub fn cfs_quota_us(cpus: f64) -> u64 {
    let quota = (cpus.max(0.0) * CFS_PERIOD_US as f64) as u64;
    quota.max(MIN_CFS_QUOTA_US)
}

/// What every cgroup of a pod gets. The layout (DESIGN.md section 3) is
/// `<root>/<pod>/` (no processes) with one sibling child per container.
#[derive(Debug, Clone, PartialEq)]
pub struct PodLimits {
    pub parent: Limits,
    pub executor: Limits,
    pub tasks: Vec<Limits>,
}

/// Splits a pod's resources between its parent cgroup and its members.
///
/// `share_cgroups = true` (Mesos default): the parent carries everything,
/// members carry nothing. Requests are summed. A limit, following Mesos's
/// `Slave::computeExecutorLimits`: if no member has one, the parent has none
/// (so for memory the summed request becomes the hard limit). Otherwise the
/// parent limit is the sum of every member's limit, counting members without
/// a limit at their request; any `Infinity` makes it `Infinity`. For CPU,
/// one exception: a task with a CPU request but no CPU limit runs without
/// CFS quota, so a parent quota would throttle it behind its back; then the
/// parent gets no CPU limit at all (Mesos with `cgroups_enable_cfs=false`).
/// The executor's own request always counts into the limit.
///
/// `share_cgroups = false`: each member's cgroup carries its own limits. The
/// parent still carries the summed *requests* as `cpu.shares`/`cpu.weight`
/// and soft limit/`memory.low`, with an explicit `Infinity` memory limit
/// (so the request sum is not made a hard limit): CPU weight is relative
/// among siblings, so without it a 0.1-CPU pod would compete with a 10-CPU
/// pod as an equal, and on v2 a child's `memory.low` is capped by its
/// parent's.
///
/// `pids_limit`: summed when every member has one, else unlimited.
///
/// On v2, a parent's `memory.low` protects children only as far as they
/// claim it (`memory.low` of their own) unless the cgroup2 mount has
/// `memory_recursiveprot` (systemd's default since v247); the members'
/// cgroups here claim none.
pub fn pod_limits(executor: &Limits, tasks: &[Limits], share_cgroups: bool) -> PodLimits {
    let members: Vec<&Limits> = std::iter::once(executor).chain(tasks).collect();
    let cpu_request = sum_f64(members.iter().map(|m| m.cpu_request));
    let mem_request_bytes = sum_u64(members.iter().map(|m| m.mem_request_bytes));

    if !share_cgroups {
        return PodLimits {
            parent: Limits {
                cpu_request,
                cpu_limit: None,
                mem_request_bytes,
                mem_limit: Some(Limit::Infinity),
                pids_limit: None,
            },
            executor: *executor,
            tasks: tasks.to_vec(),
        };
    }

    let no_cpu_limits = members.iter().all(|m| m.cpu_limit.is_none());
    let unthrottled_task = tasks
        .iter()
        .any(|t| t.cpu_limit.is_none() && t.cpu_request.unwrap_or(0.0) > 0.0);
    let cpu_limit = if no_cpu_limits || unthrottled_task {
        None
    } else {
        sum_limits_f64(members.iter().map(|m| (m.cpu_limit, m.cpu_request)))
    };

    let mem_limit = if members.iter().all(|m| m.mem_limit.is_none()) {
        None
    } else {
        sum_limits_u64(members.iter().map(|m| (m.mem_limit, m.mem_request_bytes)))
    };

    let pids_limit = if members.iter().all(|m| m.pids_limit.is_some()) {
        sum_u64(members.iter().map(|m| m.pids_limit))
    } else {
        None
    };

    PodLimits {
        parent: Limits {
            cpu_request,
            cpu_limit,
            mem_request_bytes,
            mem_limit,
            pids_limit,
        },
        executor: Limits::default(),
        tasks: vec![Limits::default(); tasks.len()],
    }
}

fn sum_f64(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

fn sum_u64(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0u64).saturating_add(v)))
}

/// Sum of (limit, or request when there is no limit); `Infinity` absorbs.
fn sum_limits_f64(
    members: impl Iterator<Item = (Option<Limit<f64>>, Option<f64>)>,
) -> Option<Limit<f64>> {
    let mut total = 0.0;
    for (limit, request) in members {
        match limit {
            Some(Limit::Infinity) => return Some(Limit::Infinity),
            Some(Limit::Finite(v)) => total += v,
            None => total += request.unwrap_or(0.0),
        }
    }
    Some(Limit::Finite(total))
}

fn sum_limits_u64(
    members: impl Iterator<Item = (Option<Limit<u64>>, Option<u64>)>,
) -> Option<Limit<u64>> {
    let mut total: u64 = 0;
    for (limit, request) in members {
        match limit {
            Some(Limit::Infinity) => return Some(Limit::Infinity),
            Some(Limit::Finite(v)) => total = total.saturating_add(v),
            None => total = total.saturating_add(request.unwrap_or(0)),
        }
    }
    Some(Limit::Finite(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn weight_conversion_points() {
        assert_eq!(cpu_weight_from_shares(0), 0);
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(1024), 100);
        assert_eq!(cpu_weight_from_shares(262_144), 10_000);
        // Between the points: monotonic and inside the v2 range.
        let mut last = 1;
        for shares in (2..=262_144).step_by(97) {
            let w = cpu_weight_from_shares(shares);
            assert!(w >= last && (1..=10_000).contains(&w), "{shares} -> {w}");
            last = w;
        }
        assert_eq!(cpu_weight_from_shares(512), 59);
        assert_eq!(cpu_weight_from_shares(2048), 174);
        assert_eq!(cpu_weight_from_shares(u64::MAX), 10_000);
    }

    #[test]
    fn shares_and_quota() {
        assert_eq!(cpu_shares(1.0), 1024);
        assert_eq!(cpu_shares(0.5), 512);
        assert_eq!(cpu_shares(0.001), 2);
        assert_eq!(cpu_shares(0.0), 2);
        assert_eq!(cpu_shares(1e9), MAX_CPU_SHARES);
        assert_eq!(cfs_quota_us(1.5), 150_000);
        assert_eq!(cfs_quota_us(0.001), 1_000);
        assert_eq!(cfs_quota_us(0.0), 1_000);
    }

    #[test]
    fn request_only() {
        let l = Limits::from_mesos(Some(0.5), Some(256.0), None, None);
        let c = l.controls().unwrap();
        assert_eq!(c.cpu_shares, Some(512));
        assert_eq!(c.cpu_weight, Some(59));
        assert_eq!(c.cfs_quota_us, None);
        assert_eq!(c.memory_max, Some(256 * MIB), "request is the hard limit");
        assert_eq!(c.memory_soft, None);
        assert_eq!(c.pids_max, None);
    }

    #[test]
    fn request_below_limit() {
        let l = Limits::from_mesos(Some(1.0), Some(512.0), Some(2.0), Some(4096.0));
        let c = l.controls().unwrap();
        assert_eq!(c.cpu_shares, Some(1024));
        assert_eq!(c.cpu_weight, Some(100));
        assert_eq!(c.cfs_quota_us, Some(200_000));
        assert_eq!(c.cfs_period_us, 100_000);
        assert_eq!(c.memory_max, Some(4096 * MIB));
        assert_eq!(c.memory_soft, Some(512 * MIB));
    }

    #[test]
    fn infinity() {
        let l = Limits::from_mesos(
            Some(1.0),
            Some(64.0),
            Some(f64::INFINITY),
            Some(f64::INFINITY),
        );
        assert_eq!(l.cpu_limit, Some(Limit::Infinity));
        assert_eq!(l.mem_limit, Some(Limit::Infinity));
        let c = l.controls().unwrap();
        assert_eq!(c.cfs_quota_us, None);
        assert_eq!(c.memory_max, None);
        assert_eq!(c.memory_soft, Some(64 * MIB));
    }

    #[test]
    fn memory_floors() {
        // A tiny request: both hard and soft are floored at 32 MiB, and a soft
        // limit equal to the hard one is dropped.
        let l = Limits::from_mesos(None, Some(8.0), None, Some(16.0));
        let c = l.controls().unwrap();
        assert_eq!(c.memory_max, Some(32 * MIB));
        assert_eq!(c.memory_soft, None);
        // Nothing at all: unlimited, default shares.
        let c = Limits::default().controls().unwrap();
        assert_eq!(c.memory_max, None);
        assert_eq!(c.cpu_shares, Some(1024));
        assert_eq!(c.cpu_weight, Some(100));
        // Mesos truncates MB.
        let l = Limits::from_mesos(None, Some(100.9), None, None);
        assert_eq!(l.mem_request_bytes, Some(100 * MIB));
    }

    #[test]
    fn invalid_limits() {
        let below = Limits::from_mesos(Some(2.0), None, Some(1.0), None);
        assert!(matches!(
            below.controls(),
            Err(LimitsError::LimitBelowRequest { .. })
        ));
        let below = Limits::from_mesos(None, Some(512.0), None, Some(256.0));
        assert!(below.controls().unwrap_err().to_string().contains("memory"));
        let nan = Limits::from_mesos(Some(f64::NAN), None, None, None);
        assert!(nan.controls().is_err());
        let neg = Limits::from_mesos(None, None, Some(-1.0), None);
        assert!(neg.controls().is_err());
    }

    fn task(cpus: f64, mem_mb: f64, cpu_limit: Option<f64>, mem_limit_mb: Option<f64>) -> Limits {
        Limits::from_mesos(Some(cpus), Some(mem_mb), cpu_limit, mem_limit_mb)
    }

    #[test]
    fn share_cgroups_true_sums_into_parent() {
        let exec = task(0.1, 32.0, None, None);
        let tasks = [
            task(1.0, 256.0, Some(2.0), Some(512.0)),
            task(0.5, 128.0, Some(1.0), Some(1024.0)),
        ];
        let pod = pod_limits(&exec, &tasks, true);
        let p = pod.parent;
        assert!((p.cpu_request.unwrap() - 1.6).abs() < 1e-9);
        assert_eq!(p.mem_request_bytes, Some((32 + 256 + 128) * MIB));
        // Limits: tasks' limits + the executor's request.
        match p.cpu_limit {
            Some(Limit::Finite(c)) => assert!((c - 3.1).abs() < 1e-9, "{c}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.mem_limit, Some(Limit::Finite((32 + 512 + 1024) * MIB)));
        assert_eq!(pod.executor, Limits::default());
        assert_eq!(pod.tasks, vec![Limits::default(); 2]);
        // The parent's controls follow the usual mapping.
        let c = p.controls().unwrap();
        assert_eq!(c.cfs_quota_us, Some(310_000));
        assert_eq!(c.memory_soft, Some(416 * MIB));
    }

    #[test]
    fn share_cgroups_true_infinity_and_no_limits() {
        let exec = task(0.1, 32.0, None, None);
        // Any Infinity -> Infinity.
        let tasks = [
            task(1.0, 256.0, Some(f64::INFINITY), Some(512.0)),
            task(0.5, 128.0, Some(1.0), Some(f64::INFINITY)),
        ];
        let p = pod_limits(&exec, &tasks, true).parent;
        assert_eq!(p.cpu_limit, Some(Limit::Infinity));
        assert_eq!(p.mem_limit, Some(Limit::Infinity));
        // No task limits: no parent limits (memory: the request sum is hard).
        let tasks = [task(1.0, 256.0, None, None), task(0.5, 128.0, None, None)];
        let p = pod_limits(&exec, &tasks, true).parent;
        assert_eq!(p.cpu_limit, None);
        assert_eq!(p.mem_limit, None);
        assert_eq!(p.controls().unwrap().memory_max, Some(416 * MIB));
        // A task with a cpu request but no cpu limit: no parent cpu quota;
        // memory counts that task's request into the limit.
        let tasks = [
            task(1.0, 256.0, Some(2.0), Some(512.0)),
            task(0.5, 128.0, None, None),
        ];
        let p = pod_limits(&exec, &tasks, true).parent;
        assert_eq!(p.cpu_limit, None);
        assert_eq!(p.mem_limit, Some(Limit::Finite((32 + 512 + 128) * MIB)));
    }

    #[test]
    fn share_cgroups_false_keeps_member_limits() {
        let exec = task(0.1, 32.0, None, None);
        let tasks = [
            task(1.0, 256.0, Some(2.0), Some(512.0)),
            task(0.5, 128.0, None, None),
        ];
        let pod = pod_limits(&exec, &tasks, false);
        assert_eq!(pod.executor, exec);
        assert_eq!(pod.tasks, tasks.to_vec());
        let p = pod.parent;
        assert_eq!(p.cpu_limit, None);
        assert_eq!(p.mem_limit, Some(Limit::Infinity));
        let c = p.controls().unwrap();
        assert_eq!(c.cpu_shares, Some(cpu_shares(1.6)));
        assert_eq!(c.cfs_quota_us, None);
        assert_eq!(c.memory_max, None);
        assert_eq!(c.memory_soft, Some(416 * MIB));
        let t0 = pod.tasks[0].controls().unwrap();
        assert_eq!(t0.memory_max, Some(512 * MIB));
        assert_eq!(t0.cfs_quota_us, Some(200_000));
    }

    #[test]
    fn pids_sum() {
        let mut exec = Limits {
            pids_limit: Some(10),
            ..Limits::default()
        };
        let mut t = Limits {
            pids_limit: Some(100),
            ..Limits::default()
        };
        assert_eq!(pod_limits(&exec, &[t], true).parent.pids_limit, Some(110));
        t.pids_limit = None;
        assert_eq!(pod_limits(&exec, &[t], true).parent.pids_limit, None);
        exec.pids_limit = None;
        assert_eq!(pod_limits(&exec, &[], true).parent.pids_limit, None);
    }
}
