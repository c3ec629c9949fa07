//! The prost types generated from `protos/` by build.rs, in modules that mirror
//! the protobuf packages (generated code refers across packages with `super::`).

#![allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]

use std::sync::LazyLock;

/// Every message and enum of the compiled schema, for reflection-driven codecs
/// (the JSON mapping, required-field checks).
pub static DESCRIPTOR_POOL: LazyLock<prost_reflect::DescriptorPool> = LazyLock::new(|| {
    prost_reflect::DescriptorPool::decode(
        include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin")).as_ref(),
    )
    .expect("the descriptor set embedded by build.rs is valid")
});

pub mod mesos {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));
        pub mod agent {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
        }
        pub mod allocator {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.allocator.rs"));
        }
        pub mod executor {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
        }
        pub mod maintenance {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.maintenance.rs"));
        }
        pub mod master {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.master.rs"));
        }
        pub mod quota {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.quota.rs"));
        }
        pub mod resource_provider {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.resource_provider.rs"));
        }
        pub mod scheduler {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
        }
    }
}

pub mod tepui {
    pub mod link {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/tepui.link.v1.rs"));
        }
    }
}
