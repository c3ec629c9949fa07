//! The CNI root dir, after Mesos's `paths.hpp` of the CNI isolator
//! (isolators/network/cni/paths.cpp): `<runtime_dir>/cni` by default, or
//! `<work_dir>/cni` with `--network_cni_root_dir_persist` (so a DEL can
//! still release IPAM leases after a reboot).
//!
//! ```text
//! <root>/<pod>/
//!   ns                                   the pod's netns (bind mount)
//!   hostname, hosts, resolv.conf         bound at /etc/* in its containers
//!   networks/<network>/network.conf      the chain as sent to ADD (for DEL)
//!   networks/<network>/<ifname>/network.info   the chain's ADD result
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniPaths {
    root: PathBuf,
}

impl CniPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pod(&self, pod: &str) -> PathBuf {
        self.root.join(pod)
    }

    pub fn netns(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("ns")
    }

    pub fn etc_file(&self, pod: &str, name: &str) -> PathBuf {
        self.pod(pod).join(name)
    }

    pub fn networks(&self, pod: &str) -> PathBuf {
        self.pod(pod).join("networks")
    }

    pub fn network_dir(&self, pod: &str, network: &str) -> PathBuf {
        self.networks(pod).join(network)
    }

    pub fn network_conf(&self, pod: &str, network: &str) -> PathBuf {
        self.network_dir(pod, network).join("network.conf")
    }

    pub fn network_info(&self, pod: &str, network: &str, ifname: &str) -> PathBuf {
        self.network_dir(pod, network)
            .join(ifname)
            .join("network.info")
    }
}
