//! A container's identity as the chain of ContainerID values from the pod's
//! top-level container down to it (Mesos's `ContainerID.parent` links).

use serde::{Deserialize, Serialize};
use tepui_proto::v1::ContainerId;

/// Root-first chain of container ids; never empty, every part a safe path
/// component (it names directories in the runtime dir).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ContainerPath(Vec<String>);

/// Why a ContainerID cannot name a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerPathError {
    #[error("a container id needs at least one value")]
    Empty,
    #[error(
        "container id '{0}' is invalid: ids must be non-empty, not '.' or '..', and contain only letters, digits, '-', '_' and '.'"
    )]
    Invalid(String),
    #[error("container id chain is deeper than {0} levels")]
    TooDeep(usize),
}

/// Mesos allows any nesting depth; this bound keeps paths under PATH_MAX.
const MAX_DEPTH: usize = 32;

impl ContainerPath {
    pub fn new(parts: Vec<String>) -> Result<Self, ContainerPathError> {
        if parts.is_empty() {
            return Err(ContainerPathError::Empty);
        }
        if parts.len() > MAX_DEPTH {
            return Err(ContainerPathError::TooDeep(MAX_DEPTH));
        }
        for part in &parts {
            let valid = !part.is_empty()
                && part.len() <= 128
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(ContainerPathError::Invalid(part.clone()));
            }
        }
        Ok(Self(parts))
    }

    /// From a Mesos ContainerID, following `parent` links to the root.
    pub fn from_container_id(id: &ContainerId) -> Result<Self, ContainerPathError> {
        let mut parts = vec![id.value.clone()];
        let mut cursor = id.parent.as_deref();
        while let Some(parent) = cursor {
            if parts.len() >= MAX_DEPTH {
                return Err(ContainerPathError::TooDeep(MAX_DEPTH));
            }
            parts.push(parent.value.clone());
            cursor = parent.parent.as_deref();
        }
        parts.reverse();
        Self::new(parts)
    }

    pub fn to_container_id(&self) -> ContainerId {
        let mut id: Option<ContainerId> = None;
        for part in &self.0 {
            id = Some(ContainerId {
                value: part.clone(),
                parent: id.map(Box::new),
            });
        }
        id.unwrap_or_default()
    }

    /// The top-level container's id, which names the pod.
    pub fn pod(&self) -> &str {
        &self.0[0]
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// This container's own id value.
    pub fn leaf(&self) -> &str {
        &self.0[self.0.len() - 1]
    }

    pub fn is_nested(&self) -> bool {
        self.0.len() > 1
    }

    pub fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    pub fn parent(&self) -> Option<ContainerPath> {
        (self.0.len() > 1).then(|| ContainerPath(self.0[..self.0.len() - 1].to_vec()))
    }

    pub fn child(&self, value: &str) -> Result<ContainerPath, ContainerPathError> {
        let mut parts = self.0.clone();
        parts.push(value.to_string());
        Self::new(parts)
    }
}

impl TryFrom<Vec<String>> for ContainerPath {
    type Error = ContainerPathError;
    fn try_from(parts: Vec<String>) -> Result<Self, Self::Error> {
        Self::new(parts)
    }
}

impl From<ContainerPath> for Vec<String> {
    fn from(path: ContainerPath) -> Self {
        path.0
    }
}

impl std::fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_container_id_with_parents() {
        let path = ContainerPath::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let id = path.to_container_id();
        assert_eq!(id.value, "c");
        assert_eq!(id.parent.as_ref().unwrap().value, "b");
        assert_eq!(ContainerPath::from_container_id(&id).unwrap(), path);
        assert_eq!(path.parent().unwrap().parts(), ["a", "b"]);
        assert_eq!(path.pod(), "a");
    }

    #[test]
    fn unsafe_values_are_refused() {
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(ContainerPath::new(vec![bad.into()]).is_err(), "{bad:?}");
        }
        assert_eq!(ContainerPath::new(vec![]), Err(ContainerPathError::Empty));
        let json = serde_json::to_string(&ContainerPath::new(vec!["p".into()]).unwrap()).unwrap();
        assert_eq!(json, r#"["p"]"#);
        assert!(serde_json::from_str::<ContainerPath>(r#"["../x"]"#).is_err());
    }
}
