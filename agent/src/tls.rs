//! HTTPS clients of the agent crate (the link to the master, the built-in
//! executors' client, the operator CLI): reqwest with rustls, trusting the
//! CA file (`--ssl_ca_file`, `LIBPROCESS_SSL_CA_FILE`, the CLI's
//! `--ca_file`) in addition to the built-in roots, and presenting a client
//! certificate when one is configured (servers with
//! `--ssl_require_client_cert` ask for it).

use std::path::Path;

use tepui_proto::tls::{TlsError, TlsSettings};

/// A client builder trusting `ca_file` and presenting `identity`
/// (certificate chain file, key file) when given.
pub fn client_builder(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = read(path, "CA file")?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TlsError::Parse {
            what: "CA file",
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if certs.is_empty() {
            return Err(TlsError::Parse {
                what: "CA file",
                path: path.to_path_buf(),
                message: "no PEM certificates".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some((cert, key)) = identity {
        let mut pem = read(key, "key file")?;
        pem.push(b'\n');
        pem.extend(read(cert, "certificate file")?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| TlsError::Parse {
            what: "client certificate",
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// A client builder from Mesos's SSL settings: the CA file, and the
/// daemon's own certificate as its client certificate (as libprocess does).
pub fn settings_builder(settings: &TlsSettings) -> Result<reqwest::ClientBuilder, TlsError> {
    let identity = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) if settings.enabled() => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    client_builder(settings.ca_file.as_deref(), identity)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}
