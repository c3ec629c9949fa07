//! Image references as schedulers write them (`busybox`, `busybox:1.36`,
//! `127.0.0.1:5000/app@sha256:...`), split the way the Docker CLI does.

use super::RegistryError;

/// The registry a reference without a host names (Docker Hub).
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference. `registry` is `None` when the reference names no
/// host, so that the agent's `--docker_registry` (or Docker Hub) applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(|e| bad(&e))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (n, t) = rest.split_at(last_slash + i);
                (n, Some(t[1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(bad("invalid tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), path.to_string())
            }
            _ => (None, name.to_string()),
        };
        if repository.is_empty()
            || repository.split('/').any(|c| {
                c.is_empty()
                    || !c.chars().all(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)
                    })
            })
        {
            return Err(bad("invalid repository name"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry's manifest endpoint for: the digest when
    /// there is one (it pins the content), else the tag (default `latest`).
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The repository path on `registry_host`: Docker Hub puts one-component
    /// names under `library/`.
    pub fn repository_on(&self, registry_host: &str) -> String {
        if is_docker_hub(registry_host) && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub(crate) fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// Only sha256 digests are accepted: they are what the layer store is keyed
/// by and what the hashing reader verifies.
pub fn check_digest(d: &str) -> Result<&str, String> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest '{d}' (only sha256)"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("malformed digest '{d}'"));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_docker_style_references() {
        let r = Reference::parse("busybox:1.36").unwrap();
        assert_eq!(r.registry, None);
        assert_eq!(r.repository, "busybox");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(r.repository_on("registry-1.docker.io"), "library/busybox");
        assert_eq!(r.manifest_ref(), "1.36");

        let r = Reference::parse(&format!("127.0.0.1:5000/app@{D}")).unwrap();
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "app");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), D);

        let r = Reference::parse("localhost/a/b:v1").unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost"));
        assert_eq!(r.repository, "a/b");
        assert_eq!(
            Reference::parse("team/app").unwrap().manifest_ref(),
            "latest"
        );
        assert_eq!(
            Reference::parse(&format!("h.io:1/x:t@{D}"))
                .unwrap()
                .to_string(),
            format!("h.io:1/x:t@{D}")
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "a//b", "x:", "x@sha256:12", "x@md5:aa"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
