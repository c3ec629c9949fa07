//! A container's Mesos request/limit (`ResourceRequest`, cpus and MiB) as
//! cgroup `Limits`.

use crate::cgroups::Limits;
use crate::spec::{Limit, ResourceRequest};

pub fn limits_of(request: &ResourceRequest) -> Limits {
    let unlimited = |limit: Option<Limit>| {
        limit.map(|l| match l {
            Limit::Finite(v) => v,
            Limit::Unlimited => f64::INFINITY,
        })
    };
    Limits::from_mesos(
        request.cpus,
        request.mem_mb,
        unlimited(request.cpus_limit),
        unlimited(request.mem_limit_mb),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Limit as CgLimit;

    #[test]
    fn unlimited_becomes_infinity_and_mib_become_bytes() {
        let limits = limits_of(&ResourceRequest {
            cpus: Some(0.5),
            cpus_limit: Some(Limit::Unlimited),
            mem_mb: Some(512.0),
            mem_limit_mb: Some(Limit::Finite(4096.0)),
        });
        assert_eq!(limits.cpu_request, Some(0.5));
        assert_eq!(limits.cpu_limit, Some(CgLimit::Infinity));
        assert_eq!(limits.mem_request_bytes, Some(512 << 20));
        assert_eq!(limits.mem_limit, Some(CgLimit::Finite(4096 << 20)));
    }
}
