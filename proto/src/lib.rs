//! tepui-proto owns the wire: the Mesos v1 API types (generated from Mesos's own
//! schema, same names and field numbers), tepui's agent <-> master link messages,
//! Mesos's JSON mapping, protobuf, RecordIO framing, content negotiation and the
//! Mesos resource model.
//!
//! It must not do I/O beyond byte buffers, spawn tasks or know about HTTP servers:
//! every daemon and client depends on it, so it stays small and pure. The one
//! exception is opt-in: the `zk` feature (ZooKeeper contention and leader
//! detection for HA masters) lives here because the master and the agent both
//! need it and this is the only crate they share. The `server` feature is the
//! second: the HTTP server both daemons run, with its limits against hostile
//! clients, in one place, with systemd's readiness protocol (`sd_notify`)
//! that both daemons' units use.

pub mod auth;
#[cfg(feature = "server")]
pub mod build_info;
pub mod content;
pub mod duration;
pub mod generated;
pub mod ids;
pub mod json;
#[cfg(feature = "server")]
pub mod libprocess;
#[cfg(feature = "server")]
pub mod libprocess_peer;
pub mod model;
pub mod prometheus;
pub mod recordio;
pub mod resources;
#[cfg(feature = "server")]
pub mod sd_notify;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod system_metrics;
#[cfg(feature = "tls")]
pub mod tls;
pub mod v0;
#[cfg(feature = "zk")]
pub mod zk;

pub use generated::DESCRIPTOR_POOL;
pub use generated::mesos::v1;
pub use generated::tepui::link::v1 as link;
