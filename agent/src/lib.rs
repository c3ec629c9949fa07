//! tepui-agent owns the agent daemon: its flags, the executor and operator HTTP
//! APIs, the built-in executors, the status update manager, checkpoints and the
//! link to a master.
//!
//! It must never import the master crate: it talks to a master over the wire
//! (the link protocol in tepui-proto), so the master stays pluggable.
