//! The registry: what must survive a master restart, as Mesos's registry
//! holds it (admitted, unreachable and gone agents, weights, quotas,
//! maintenance and drain state). One JSON document under `--work_dir`,
//! replaced atomically (temp file, fsync, rename, fsync of the directory)
//! so a crash leaves either the old or the new state.
//!
//! Changes mark the registry dirty and the master's background loop writes
//! it once per tick: 40k agents re-registering after a failover cost a few
//! writes, not 40k rewrites of a growing file. An agent admitted in the
//! window before a write that a crash loses simply re-registers with its
//! id, which the master accepts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::allocator::{Quantities, Quota};

const FILE: &str = "registry.json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoredQuota {
    pub guarantees: BTreeMap<String, f64>,
    #[serde(default)]
    pub limits: BTreeMap<String, f64>,
}

impl StoredQuota {
    pub fn to_quota(&self) -> Quota {
        let mut guarantee = Quantities::new();
        for (n, v) in &self.guarantees {
            guarantee.add_one(n, tepui_proto::resources::scalar::to_fixed(*v));
        }
        let limit = (!self.limits.is_empty()).then(|| {
            let mut q = Quantities::new();
            for (n, v) in &self.limits {
                q.add_one(n, tepui_proto::resources::scalar::to_fixed(*v));
            }
            q
        });
        Quota { guarantee, limit }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoredAgent {
    /// The AgentInfo in Mesos JSON.
    pub info: serde_json::Value,
    #[serde(default)]
    pub deactivated: bool,
    #[serde(default)]
    pub draining: bool,
}

/// The maintenance schedule and the machines in it, as Mesos's registry
/// keeps them (`Registry.schedules`, `Registry.machines`;
/// src/master/maintenance.cpp): the schedule in Mesos JSON
/// (`maintenance::Schedule`) and one `MachineInfo` (JSON) per machine that
/// is not UP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoredMaintenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<serde_json::Value>,
    #[serde(default)]
    pub machines: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegistryState {
    #[serde(default)]
    pub admitted: BTreeMap<String, StoredAgent>,
    /// Agent id -> when it became unreachable (seconds since the epoch).
    #[serde(default)]
    pub unreachable: BTreeMap<String, f64>,
    #[serde(default)]
    pub gone: BTreeMap<String, f64>,
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub quotas: BTreeMap<String, StoredQuota>,
    #[serde(default)]
    pub maintenance: StoredMaintenance,
}

/// Where the registry is written.
#[derive(Debug)]
enum Store {
    Memory,
    Dir(PathBuf),
    /// Highly available masters: the leader's ZooKeeper writer task, which
    /// writes the latest document with a versioned setData (crate::ha).
    Zk(tokio::sync::mpsc::UnboundedSender<Vec<u8>>),
}

#[derive(Debug)]
pub struct Registry {
    store: Store,
    pub state: RegistryState,
    dirty: bool,
}

impl Registry {
    /// An in-memory registry (no `--work_dir`).
    pub fn in_memory() -> Self {
        Registry {
            store: Store::Memory,
            state: RegistryState::default(),
            dirty: false,
        }
    }

    /// The registry read from ZooKeeper (`data` is the znode's content,
    /// empty for a new cluster); writes go to `writer`.
    pub fn from_zk(
        data: &[u8],
        writer: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<Self, serde_json::Error> {
        let state = if data.is_empty() {
            RegistryState::default()
        } else {
            serde_json::from_slice(data)?
        };
        Ok(Registry {
            store: Store::Zk(writer),
            state,
            dirty: false,
        })
    }

    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(dir).map_err(|source| RegistryError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| RegistryError::Parse { path, source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistryState::default(),
            Err(source) => return Err(RegistryError::Read { path, source }),
        };
        Ok(Registry {
            store: Store::Dir(dir.to_path_buf()),
            state,
            dirty: false,
        })
    }

    /// Marks the state changed; [`Registry::flush`] writes it.
    pub fn save(&mut self) {
        self.dirty = true;
    }

    /// Writes the state if it changed. Failures are logged, not fatal: the
    /// master keeps serving and the next flush retries.
    pub fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        match self.try_save() {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::error!(error = %e, "registry write failed"),
        }
    }

    fn try_save(&self) -> Result<(), RegistryError> {
        let dir = match &self.store {
            Store::Memory => return Ok(()),
            Store::Zk(writer) => {
                let bytes = serde_json::to_vec(&self.state).map_err(|e| RegistryError::Write {
                    path: PathBuf::from("zookeeper"),
                    source: std::io::Error::other(e),
                })?;
                // The writer is gone only once this master was deposed.
                let _ = writer.send(bytes);
                return Ok(());
            }
            Store::Dir(dir) => dir,
        };
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let wrap = |source| RegistryError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&self.state).map_err(|e| wrap(std::io::Error::other(e)))?;
        let mut file = std::fs::File::create(&tmp).map_err(wrap)?;
        file.write_all(&bytes).map_err(wrap)?;
        file.sync_all().map_err(wrap)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(wrap)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_work_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Registry::open(dir.path()).expect("open");
        r.state.weights.insert("a".into(), 2.0);
        r.state.admitted.insert("S1".into(), StoredAgent::default());
        r.save();
        r.flush();
        let again = Registry::open(dir.path()).expect("reopen");
        assert_eq!(again.state, r.state);
        assert!(!dir.path().join("registry.json.tmp").exists());
    }
}
