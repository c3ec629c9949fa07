//! Registry authentication: credentials (per task or from a Docker
//! `config.json`), `WWW-Authenticate` challenges, and bearer tokens.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::RegistryError;

/// A user name and password (or a registry token used as the password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Never print secrets (this ends up in logs through `{:?}`).
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(raw))
    }

    /// The entry for `host` in a Docker `config.json` (`auths.<host>.auth`,
    /// base64 `user:password`, or `username`/`password`). Keys may carry a
    /// scheme or a path (`https://index.docker.io/v1/`), as `docker login`
    /// writes them. Credential helpers are not run.
    pub fn from_docker_config(
        path: &Path,
        host: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        let bad = |reason: String| {
            RegistryError::Config(format!("docker config '{}': {reason}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        let hub = super::reference::is_docker_hub(host);
        for (key, entry) in auths {
            let key_host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            let same = key_host == host || (hub && super::reference::is_docker_hub(key_host));
            if !same {
                continue;
            }
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let raw = STANDARD
                    .decode(auth.trim())
                    .map_err(|e| bad(format!("auths.{key}.auth: {e}")))?;
                let raw = String::from_utf8(raw)
                    .map_err(|_| bad(format!("auths.{key}.auth is not UTF-8")))?;
                let (u, p) = raw
                    .split_once(':')
                    .ok_or_else(|| bad(format!("auths.{key}.auth is not 'user:password'")))?;
                return Ok(Some(Credentials::new(u, p)));
            }
            let user = entry.get("username").and_then(|v| v.as_str());
            let pass = entry.get("password").and_then(|v| v.as_str());
            if let (Some(u), Some(p)) = (user, pass) {
                return Ok(Some(Credentials::new(u, p)));
            }
        }
        Ok(None)
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// `Bearer realm="https://auth",service="registry",scope="repository:x:pull"`.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = HashMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
            }
            params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://127.0.0.1:1/token",service="oci-testenv",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://127.0.0.1:1/token");
        assert_eq!(c.params["service"], "oci-testenv");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = Challenge::parse(r#"Basic realm="oci-testenv""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "oci-testenv");
    }

    #[test]
    fn reads_docker_config_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = STANDARD.encode("u1:p:w");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"u2","password":"p2"}}}}}}"#
            ),
        )
        .unwrap();
        let hub = Credentials::from_docker_config(&path, "registry-1.docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("u1", "p:w")
        );
        let local = Credentials::from_docker_config(&path, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(local.username, "u2");
        assert!(
            Credentials::from_docker_config(&path, "other:1")
                .unwrap()
                .is_none()
        );
        assert!(!format!("{hub:?}").contains("p:w"));
    }
}
