//! Mesos's authentication and authorization flags, shared by `tepui
//! master` and `tepui agent`, and the files they name.

use anyhow::Context;
use clap::Args;
use tepui_proto::auth::{Acls, Authenticator, Credential, parse_credential, parse_credentials};

/// HTTP authentication and ACL flags both daemons take.
#[derive(Debug, Args)]
pub struct HttpAuthArgs {
    /// Require authentication on read-write HTTP endpoints (mutating operator calls).
    #[arg(long = "authenticate_http_readwrite", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub authenticate_http_readwrite: bool,
    /// Require authentication on read-only HTTP endpoints (GET_* calls, /state, /files).
    #[arg(long = "authenticate_http_readonly", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub authenticate_http_readonly: bool,
    /// Path (optionally `file://`) to `{"credentials":[{"principal":..,"secret":..}]}`.
    #[arg(long)]
    pub credentials: Option<String>,
    /// ACLs in Mesos's JSON format, inline or `file:///path`.
    #[arg(long)]
    pub acls: Option<String>,
    /// Path (optionally `file://`) to the HMAC-SHA256 key Bearer tokens are verified with.
    #[arg(long = "jwt_secret_key")]
    pub jwt_secret_key: Option<String>,
}

fn read(flag: &str, path: &str) -> anyhow::Result<String> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    std::fs::read_to_string(path).with_context(|| format!("--{flag}: cannot read {path}"))
}

/// A key file's bytes (trailing newline dropped).
pub fn read_key(flag: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    Ok(read(flag, path)?
        .trim_end_matches(['\n', '\r'])
        .as_bytes()
        .to_vec())
}

/// `--credential` (one principal and secret) from its file.
pub fn read_credential(flag: &str, path: &str) -> anyhow::Result<Credential> {
    parse_credential(&read(flag, path)?).with_context(|| format!("--{flag}"))
}

impl HttpAuthArgs {
    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        let mut authenticator = Authenticator::default();
        if let Some(path) = &self.credentials {
            authenticator.credentials =
                parse_credentials(&read("credentials", path)?).context("--credentials")?;
        }
        if let Some(path) = &self.jwt_secret_key {
            authenticator
                .jwt_keys
                .push(read_key("jwt_secret_key", path)?);
        }
        Ok(authenticator)
    }

    pub fn acls(&self) -> anyhow::Result<Acls> {
        match &self.acls {
            None => Ok(Acls::default()),
            Some(v) => {
                let text = if v.starts_with("file://") {
                    read("acls", v)?
                } else {
                    v.clone()
                };
                Acls::parse(&text).context("--acls")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn master_flags_read_credentials_acls_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &credentials,
            r#"{"credentials":[{"principal":"ops","secret":"s"}]}"#,
        )
        .unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k\n").unwrap();
        let acls = dir.path().join("acls");
        std::fs::write(&acls, r#"{"permissive": false}"#).unwrap();
        let cli = Cli::try_parse_from([
            "tepui".to_string(),
            "master".into(),
            "--authenticate_frameworks".into(),
            "--authenticate_http_readwrite=false".into(),
            format!("--credentials=file://{}", credentials.display()),
            format!("--jwt_secret_key={}", key.display()),
            format!("--acls=file://{}", acls.display()),
        ])
        .unwrap();
        let Command::Master(args) = cli.command else {
            panic!("not master");
        };
        let config = args.into_config().unwrap();
        assert!(config.auth.authenticate_frameworks);
        assert!(!config.auth.authenticate_http_readwrite);
        assert!(!config.auth.authenticate_agents);
        assert_eq!(config.auth.authenticator.credentials[0].principal, "ops");
        assert_eq!(config.auth.authenticator.jwt_keys, vec![b"k".to_vec()]);
        assert!(!config.auth.acls.permissive);
        let bad = Cli::try_parse_from(["tepui", "master", "--acls={\"nope\": []}"]).unwrap();
        let Command::Master(args) = bad.command else {
            panic!("not master");
        };
        assert!(
            args.into_config()
                .unwrap_err()
                .to_string()
                .contains("--acls")
        );
    }
}
