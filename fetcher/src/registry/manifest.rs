//! Manifests, indexes and image configs (OCI image-spec and Docker schema2),
//! and choosing the host's platform from an index.

use serde::{Deserialize, Serialize};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Sent on every manifest request: without the Docker types a registry
/// rewrites schema2 manifests to schema1, without the OCI ones it answers 404.
pub const ACCEPT_ALL: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Layer blobs are gzip, zstd or plain tar; the media type says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn from_media_type(mt: &str) -> Option<LayerCompression> {
        match mt {
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(LayerCompression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(LayerCompression::Zstd)
            }
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
                Some(LayerCompression::None)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// linux + this build's architecture in GOARCH spelling.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: variant.map(str::to_string),
        }
    }

    /// An index entry matches when os and architecture agree and its variant
    /// is absent or ours (arm64 images often omit "v8").
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The parts of the image config the containerizer uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
}

/// `config` of an image config (Docker spelling, shared by OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// Picks the host platform's manifest from an index / manifest list.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates = index
        .manifests
        .iter()
        .filter(|d| d.media_type == OCI_MANIFEST || d.media_type == DOCKER_MANIFEST);
    let mut fallback = None;
    for d in candidates {
        match &d.platform {
            Some(p) if want.matches(p) => {
                // An exact variant beats a missing one.
                if p.variant == want.variant {
                    return Some(d);
                }
                fallback.get_or_insert(d);
            }
            _ => {}
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
            }),
        }
    }

    #[test]
    fn selects_architecture_and_variant() {
        let index = Index {
            manifests: vec![
                desc("amd64", None, "a"),
                desc("arm", Some("v6"), "b"),
                desc("arm", Some("v7"), "c"),
                desc("arm64", None, "d"),
                desc("arm64", Some("v8"), "e"),
            ],
        };
        let pick = |arch: &str, v: Option<&str>| {
            let want = Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: v.map(str::to_string),
            };
            select_platform(&index, &want).map(|d| d.digest.clone())
        };
        assert_eq!(pick("amd64", None).as_deref(), Some("a"));
        assert_eq!(pick("arm", Some("v7")).as_deref(), Some("c"));
        assert_eq!(pick("arm64", Some("v8")).as_deref(), Some("e"));
        assert_eq!(pick("s390x", None), None);
        assert!(
            select_platform(&index, &Platform::host()).is_some()
                || cfg!(not(any(target_arch = "x86_64", target_arch = "aarch64")))
        );
    }

    #[test]
    fn layer_media_types() {
        assert_eq!(
            LayerCompression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(LayerCompression::Gzip)
        );
        assert_eq!(
            LayerCompression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(LayerCompression::Zstd)
        );
        assert_eq!(LayerCompression::from_media_type("text/plain"), None);
    }
}
