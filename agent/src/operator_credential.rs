//! The host operator's credential: with any `--authenticate_http_*` flag
//! on, the agent makes `<work_dir>/operator.credential` at first start
//! (mode 0600, root's like the work dir, a random secret) and accepts it
//! besides `--credentials`. The CLI on the host reads it when it is given
//! no principal (`TEPUI_CREDENTIAL_FILE`, else the default work dir's), so
//! operators need no set-up, like a kubeconfig. A task cannot read it: the
//! work dir is the agent's alone.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tepui_proto::auth::Credential;

/// The principal the file names.
pub const PRINCIPAL: &str = "tepui-operator";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
}

pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("operator.credential")
}

/// Reads the credential file `path`.
pub fn read(path: &Path) -> Result<Credential, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    tepui_proto::auth::parse_credential(&text).map_err(|e| CredentialError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The work dir's operator credential, made on first use.
pub fn ensure(work_dir: &Path) -> Result<Credential, CredentialError> {
    let file = path(work_dir);
    let io = |source| CredentialError::Io {
        path: file.clone(),
        source,
    };
    if file.exists() {
        return read(&file);
    }
    std::fs::create_dir_all(work_dir).map_err(io)?;
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut secret))
        .map_err(io)?;
    let credential = Credential {
        principal: PRINCIPAL.to_string(),
        secret: hex::encode(secret),
    };
    let body = serde_json::json!({"principal": credential.principal, "secret": credential.secret});
    // Written whole under a temporary name, then renamed: a crash leaves
    // no half file, and the mode is 0600 from the start.
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    out.write_all(body.to_string().as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &file).map_err(io)?;
    Ok(credential)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path()).unwrap();
        assert_eq!(first.principal, PRINCIPAL);
        assert_eq!(first.secret.len(), 64);
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = ensure(dir.path()).unwrap();
        assert_eq!(again.secret, first.secret);
    }
}
