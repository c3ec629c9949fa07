//! Authentication and authorization shared by the master and the agent, as
//! Mesos does them: HTTP Basic against a credentials file, HS256 JSON Web
//! Tokens (`Authorization: Bearer`), executor tokens whose claims name the
//! executor, and the Mesos ACL JSON (`--acls`). Pure: no I/O, the daemons
//! read the files and wire this into their HTTP servers.

pub mod acls;
pub mod jwt;

use std::collections::BTreeMap;

use base64::Engine;

pub use acls::{Acls, Action};

/// Claims an executor token carries (Mesos's names).
pub const CLAIM_FRAMEWORK_ID: &str = "fid";
pub const CLAIM_EXECUTOR_ID: &str = "eid";
pub const CLAIM_CONTAINER_ID: &str = "cid";
/// The environment variable an executor finds its token in.
pub const EXECUTOR_TOKEN_ENV: &str = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN";
/// The realm Mesos names in `WWW-Authenticate`.
pub const REALM: &str = "mesos";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed credentials: {0}")]
    Credentials(String),
    #[error("malformed ACLs: {0}")]
    Acls(String),
    #[error("authentication required")]
    Missing,
    #[error("invalid credentials")]
    WrongCredentials,
    #[error("invalid token: {0}")]
    Token(String),
}

/// One principal and its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Credential {
    pub principal: String,
    #[serde(default)]
    pub secret: String,
}

/// `--credentials`: `{"credentials":[{"principal":..,"secret":..}]}`, or
/// Mesos's older text form, one `principal secret` a line.
pub fn parse_credentials(text: &str) -> Result<Vec<Credential>, AuthError> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        #[derive(serde::Deserialize)]
        struct File {
            credentials: Vec<Credential>,
        }
        return serde_json::from_str::<File>(trimmed)
            .map(|f| f.credentials)
            .map_err(|e| AuthError::Credentials(e.to_string()));
    }
    trimmed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(p), Some(s), None) => Ok(Credential {
                    principal: p.to_string(),
                    secret: s.to_string(),
                }),
                _ => Err(AuthError::Credentials(format!(
                    "expected 'principal secret', got '{line}'"
                ))),
            }
        })
        .collect()
}

/// An agent's or a client's `--credential`: one `{"principal":..,"secret":..}`
/// or `principal secret`.
pub fn parse_credential(text: &str) -> Result<Credential, AuthError> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|e| AuthError::Credentials(e.to_string()));
    }
    let mut all = parse_credentials(trimmed)?;
    match (all.pop(), all.is_empty()) {
        (Some(c), true) => Ok(c),
        _ => Err(AuthError::Credentials(
            "expected exactly one principal and secret".into(),
        )),
    }
}

/// The `Authorization` header value for HTTP Basic.
pub fn basic_header(principal: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    format!("Basic {encoded}")
}

/// Splits a `Basic` header value into principal and secret.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (p, s) = text.split_once(':')?;
    Some((p.to_string(), s.to_string()))
}

/// Who made a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name (Basic principal, or a token's `sub`).
    pub value: Option<String>,
    /// A token's string claims.
    pub claims: BTreeMap<String, String>,
}

impl Principal {
    pub fn named(value: impl Into<String>) -> Self {
        Principal {
            value: Some(value.into()),
            claims: BTreeMap::new(),
        }
    }

    /// An executor token's identity: framework, executor and container ids.
    pub fn executor(&self) -> Option<ExecutorIdentity<'_>> {
        Some(ExecutorIdentity {
            framework_id: self.claims.get(CLAIM_FRAMEWORK_ID)?,
            executor_id: self.claims.get(CLAIM_EXECUTOR_ID)?,
            container_id: self.claims.get(CLAIM_CONTAINER_ID)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorIdentity<'a> {
    pub framework_id: &'a str,
    pub executor_id: &'a str,
    pub container_id: &'a str,
}

/// Checks `Authorization` headers: Basic against the credentials, Bearer
/// against the HS256 keys.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    pub credentials: Vec<Credential>,
    /// Keys a Bearer token may be signed with.
    pub jwt_keys: Vec<Vec<u8>>,
}

impl Authenticator {
    /// `now` is seconds since the epoch, for token expiry.
    pub fn authenticate(&self, header: Option<&str>, now: u64) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        if let Some((principal, secret)) = parse_basic(header) {
            let ok = self.credentials.iter().any(|c| {
                c.principal == principal && constant_time_eq(c.secret.as_bytes(), secret.as_bytes())
            });
            return if ok {
                Ok(Principal::named(principal))
            } else {
                Err(AuthError::WrongCredentials)
            };
        }
        let Some((scheme, token)) = header.trim().split_once(' ') else {
            return Err(AuthError::WrongCredentials);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::WrongCredentials);
        }
        let mut last = AuthError::Token("no key to verify tokens with".into());
        for key in &self.jwt_keys {
            match jwt::verify(token.trim(), key, now) {
                Ok(claims) => {
                    return Ok(Principal {
                        value: claims.get("sub").cloned(),
                        claims,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The `WWW-Authenticate` value of a 401.
pub fn challenge() -> String {
    format!("Basic realm=\"{REALM}\"")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_both_forms() {
        let json =
            r#"{"credentials":[{"principal":"a","secret":"x"},{"principal":"b","secret":"y"}]}"#;
        assert_eq!(parse_credentials(json).unwrap().len(), 2);
        assert_eq!(parse_credentials("a x\nb y\n").unwrap()[1].principal, "b");
        assert!(parse_credentials("a").is_err());
        assert_eq!(
            parse_credential(r#"{"principal":"p","secret":"s"}"#).unwrap(),
            Credential {
                principal: "p".into(),
                secret: "s".into()
            }
        );
    }

    #[test]
    fn basic_and_bearer() {
        let auth = Authenticator {
            credentials: parse_credentials("ops pw").unwrap(),
            jwt_keys: vec![b"key".to_vec()],
        };
        let ok = auth.authenticate(Some(&basic_header("ops", "pw")), 0);
        assert_eq!(ok.unwrap().value.as_deref(), Some("ops"));
        assert_eq!(
            auth.authenticate(Some(&basic_header("ops", "no")), 0),
            Err(AuthError::WrongCredentials)
        );
        assert_eq!(auth.authenticate(None, 0), Err(AuthError::Missing));
        let mut claims = BTreeMap::new();
        claims.insert("sub".to_string(), "svc".to_string());
        let token = jwt::sign(&claims, Some(100), b"key");
        let p = auth
            .authenticate(Some(&format!("Bearer {token}")), 50)
            .unwrap();
        assert_eq!(p.value.as_deref(), Some("svc"));
        assert!(
            auth.authenticate(Some(&format!("Bearer {token}")), 101)
                .is_err()
        );
    }
}
