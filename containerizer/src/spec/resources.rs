//! cpu/mem requests and limits -> the OCI `linux.resources` section (the
//! cgroup layer writes the files; this only fills the spec), following
//! Mesos's cgroups isolators and `../shared/DESIGN.md` section 3.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::SpecError;
use super::launch::{Limit, ResourceRequest};

const MIB: f64 = 1024.0 * 1024.0;
/// Mesos's `MIN_MEMORY`: no memory limit below 32 MiB.
pub const MIN_MEMORY_BYTES: i64 = 32 << 20;
/// Mesos's `MIN_CPU_SHARES`.
pub const MIN_CPU_SHARES: u64 = 2;
pub const CPU_SHARES_PER_CPU: f64 = 1024.0;
/// CFS period (100 ms) and the smallest quota (1 ms), in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;
pub const MIN_CFS_QUOTA_US: i64 = 1_000;

/// Requests are finite and non-negative; finite limits positive and not
/// below their request.
pub(crate) fn check(request: &ResourceRequest) -> Result<(), SpecError> {
    for (resource, value) in [("cpus", request.cpus), ("mem", request.mem_mb)] {
        if let Some(value) = value
            && !(value.is_finite() && value >= 0.0)
        {
            return Err(SpecError::InvalidResource {
                resource,
                reason: format!("request {value} is not a finite non-negative number"),
            });
        }
    }
    for (resource, request, limit) in [
        ("cpus", request.cpus, request.cpus_limit),
        ("mem", request.mem_mb, request.mem_limit_mb),
    ] {
        if let Some(Limit::Finite(limit)) = limit {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(SpecError::InvalidResource {
                    resource,
                    reason: format!(
                        "limit {limit} is not a positive number (an infinite limit is 'unlimited')"
                    ),
                });
            }
            if let Some(request) = request
                && limit < request
            {
                return Err(SpecError::LimitBelowRequest {
                    resource,
                    request,
                    limit,
                });
            }
        }
    }
    Ok(())
}

fn bytes(mb: f64) -> i64 {
    (mb * MIB) as i64
}

fn quota_us(cpus: f64) -> i64 {
    ((cpus * CFS_PERIOD_US as f64) as i64).max(MIN_CFS_QUOTA_US)
}

/// The cgroup settings for a request/limit pair:
/// - cpu request -> `shares = max(2, 1024 * cpus)`;
/// - cpu limit -> CFS quota over a 100 ms period (at least 1 ms);
///   unlimited -> quota -1; no limit -> no quota, unless
///   `cfs_quota_from_request` (Mesos's `--cgroups_enable_cfs`), which caps
///   the container at its request;
/// - mem limit -> hard limit (at least 32 MiB); unlimited -> -1; no limit ->
///   the request is the hard limit;
/// - a mem request below its limit -> `reservation` (v1 soft limit, v2
///   `memory.low`), at least 32 MiB.
///
/// A limit below its request is [`SpecError::LimitBelowRequest`].
pub fn linux_resources(
    request: &ResourceRequest,
    cfs_quota_from_request: bool,
) -> Result<LinuxResources, SpecError> {
    check(request)?;
    let mut resources = LinuxResources::default();

    let mut cpu = LinuxCpu::default();
    if let Some(cpus) = request.cpus {
        cpu.set_shares(Some(
            ((CPU_SHARES_PER_CPU * cpus) as u64).max(MIN_CPU_SHARES),
        ));
    }
    let quota = match (request.cpus_limit, request.cpus) {
        (Some(Limit::Finite(limit)), _) => Some(quota_us(limit)),
        (Some(Limit::Unlimited), _) => Some(-1),
        (None, Some(cpus)) if cfs_quota_from_request => Some(quota_us(cpus)),
        (None, _) => None,
    };
    if quota.is_some() {
        cpu.set_quota(quota);
        cpu.set_period(Some(CFS_PERIOD_US));
    }
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }

    let mut memory = LinuxMemory::default();
    let hard = match (request.mem_limit_mb, request.mem_mb) {
        (Some(Limit::Finite(limit)), _) => Some(bytes(limit).max(MIN_MEMORY_BYTES)),
        (Some(Limit::Unlimited), _) => Some(-1),
        (None, Some(mem)) => Some(bytes(mem).max(MIN_MEMORY_BYTES)),
        (None, None) => None,
    };
    memory.set_limit(hard);
    if let Some(mem) = request.mem_mb
        && request_below_limit(mem, request.mem_limit_mb)
    {
        memory.set_reservation(Some(bytes(mem).max(MIN_MEMORY_BYTES)));
    }
    if memory != LinuxMemory::default() {
        resources.set_memory(Some(memory));
    }
    Ok(resources)
}

/// The pod's hard limits, repeated on a member's own cgroup
/// (`SpecContext::ceiling`). `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ceiling {
    pub memory_max_bytes: Option<u64>,
    pub cfs_quota_us: Option<u64>,
}

impl Ceiling {
    pub fn resources(&self) -> LinuxResources {
        let mut resources = LinuxResources::default();
        if let Some(quota) = self.cfs_quota_us {
            let mut cpu = LinuxCpu::default();
            cpu.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
            cpu.set_period(Some(CFS_PERIOD_US));
            resources.set_cpu(Some(cpu));
        }
        if let Some(bytes) = self.memory_max_bytes {
            let mut memory = LinuxMemory::default();
            memory.set_limit(Some(i64::try_from(bytes).unwrap_or(i64::MAX)));
            resources.set_memory(Some(memory));
        }
        resources
    }
}

/// A memory request below its limit (Mesos's condition for the OOM score).
pub(crate) fn overcommits(request: &ResourceRequest) -> bool {
    request
        .mem_mb
        .is_some_and(|mem| request_below_limit(mem, request.mem_limit_mb))
}

fn request_below_limit(request: f64, limit: Option<Limit>) -> bool {
    match limit {
        Some(Limit::Unlimited) => true,
        Some(Limit::Finite(limit)) => request < limit,
        None => false,
    }
}

/// Mesos's OOM score for a container whose memory request is below its
/// limit: `1000 - 1000 * request / host_total`, so the more a container
/// overcommits, the likelier the OOM killer picks it. `None` when the rule
/// does not apply (no request, or no limit above it).
pub fn oom_score_adj(request: &ResourceRequest, host_memory_bytes: u64) -> Option<i32> {
    let mem = request.mem_mb?;
    if !request_below_limit(mem, request.mem_limit_mb) || host_memory_bytes == 0 {
        return None;
    }
    let request_bytes = (mem * MIB) as u128;
    let score = 1000 - (1000 * request_bytes / u128::from(host_memory_bytes)).min(2000) as i64;
    Some(score.clamp(-1000, 1000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        cpus: Option<f64>,
        cpus_limit: Option<Limit>,
        mem: Option<f64>,
        mem_limit: Option<Limit>,
    ) -> ResourceRequest {
        ResourceRequest {
            cpus,
            cpus_limit,
            mem_mb: mem,
            mem_limit_mb: mem_limit,
        }
    }

    #[test]
    fn requests_without_limits() {
        let r = linux_resources(&req(Some(0.5), None, Some(128.0), None), false).unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), None);
        let memory = r.memory().unwrap();
        assert_eq!(memory.limit(), Some(128 << 20));
        assert_eq!(memory.reservation(), None);
    }

    #[test]
    fn minimums_apply() {
        let r = linux_resources(
            &req(Some(0.001), Some(Limit::Finite(0.001)), Some(1.0), None),
            false,
        )
        .unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!(cpu.shares(), Some(MIN_CPU_SHARES));
        assert_eq!(cpu.quota(), Some(MIN_CFS_QUOTA_US));
        assert_eq!(cpu.period(), Some(CFS_PERIOD_US));
        assert_eq!(r.memory().unwrap().limit(), Some(MIN_MEMORY_BYTES));
    }

    #[test]
    fn limits_above_requests() {
        let r = linux_resources(
            &req(
                Some(1.0),
                Some(Limit::Finite(2.5)),
                Some(256.0),
                Some(Limit::Finite(1024.0)),
            ),
            false,
        )
        .unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!(cpu.shares(), Some(1024));
        assert_eq!(cpu.quota(), Some(250_000));
        let memory = r.memory().unwrap();
        assert_eq!(memory.limit(), Some(1024 << 20));
        assert_eq!(memory.reservation(), Some(256 << 20));
    }

    #[test]
    fn infinity_means_no_limit() {
        let r = linux_resources(
            &req(
                Some(1.0),
                Some(Limit::Unlimited),
                Some(64.0),
                Some(Limit::Unlimited),
            ),
            true,
        )
        .unwrap();
        assert_eq!(r.cpu().clone().unwrap().quota(), Some(-1));
        let memory = r.memory().unwrap();
        assert_eq!(memory.limit(), Some(-1));
        assert_eq!(memory.reservation(), Some(64 << 20));
    }

    #[test]
    fn cfs_quota_from_request_when_enabled() {
        let r = linux_resources(&req(Some(2.0), None, None, None), true).unwrap();
        assert_eq!(r.cpu().clone().unwrap().quota(), Some(200_000));
        assert!(r.memory().is_none());
        let none = linux_resources(&ResourceRequest::default(), true).unwrap();
        assert!(none.cpu().is_none() && none.memory().is_none());
    }

    #[test]
    fn limit_below_request_is_refused() {
        assert_eq!(
            linux_resources(&req(Some(2.0), Some(Limit::Finite(1.0)), None, None), false),
            Err(SpecError::LimitBelowRequest {
                resource: "cpus",
                request: 2.0,
                limit: 1.0
            })
        );
        assert_eq!(
            linux_resources(
                &req(None, None, Some(512.0), Some(Limit::Finite(256.0))),
                false
            ),
            Err(SpecError::LimitBelowRequest {
                resource: "mem",
                request: 512.0,
                limit: 256.0
            })
        );
    }

    #[test]
    fn nonsense_numbers_are_refused() {
        for bad in [
            req(Some(-1.0), None, None, None),
            req(Some(f64::NAN), None, None, None),
            req(None, None, Some(f64::INFINITY), None),
            req(None, Some(Limit::Finite(0.0)), None, None),
            req(None, None, None, Some(Limit::Finite(f64::NAN))),
        ] {
            assert!(
                matches!(
                    linux_resources(&bad, false),
                    Err(SpecError::InvalidResource { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn oom_score_follows_mesos() {
        let gib = 1u64 << 30;
        let overcommit = req(None, None, Some(256.0), Some(Limit::Unlimited));
        assert_eq!(oom_score_adj(&overcommit, 4 * gib), Some(1000 - 62));
        let capped = req(None, None, Some(256.0), Some(Limit::Finite(256.0)));
        assert_eq!(oom_score_adj(&capped, 4 * gib), None);
        assert_eq!(
            oom_score_adj(&req(None, None, Some(256.0), None), 4 * gib),
            None
        );
    }
}
