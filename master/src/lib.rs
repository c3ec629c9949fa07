//! tepui-master owns the master daemon: the scheduler and operator HTTP APIs,
//! offers from the weighted DRF allocator with roles, quotas and reservations,
//! agent membership and the registry.
//!
//! It must not depend on the agent or containerizer crates: agents are remote
//! peers that speak the link protocol defined in tepui-proto.

pub mod allocator;
