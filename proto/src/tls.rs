//! TLS for tepui's HTTP servers (rustls, ring), shared by the master and the
//! agent: PEM loading, the server configuration from Mesos's SSL settings
//! (`--ssl_*` flags or `LIBPROCESS_SSL_*`), and [`serve`], which serves an
//! axum router over plain TCP or HTTPS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Mesos's environment variables for its SSL settings (libprocess).
pub const ENV_ENABLED: &str = "LIBPROCESS_SSL_ENABLED";
pub const ENV_CERT_FILE: &str = "LIBPROCESS_SSL_CERT_FILE";
pub const ENV_KEY_FILE: &str = "LIBPROCESS_SSL_KEY_FILE";
pub const ENV_CA_FILE: &str = "LIBPROCESS_SSL_CA_FILE";
pub const ENV_REQUIRE_CERT: &str = "LIBPROCESS_SSL_REQUIRE_CERT";

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} '{}': {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} '{}': {message}", path.display())]
    Parse {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Config(String),
}

/// Mesos's SSL settings: with a certificate and key the daemon serves HTTPS
/// only; clients trust the CA file in addition to the built-in roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `LIBPROCESS_SSL_ENABLED`: implied by a certificate file. Clients use
    /// `https` towards peers given without a scheme.
    pub enabled: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Servers refuse clients without a certificate signed by the CA.
    pub require_client_cert: bool,
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl TlsSettings {
    /// The settings from `LIBPROCESS_SSL_*` (what an executor is given).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let path = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            enabled: lookup(ENV_ENABLED).is_some_and(|v| truthy(&v)),
            cert_file: path(ENV_CERT_FILE),
            key_file: path(ENV_KEY_FILE),
            ca_file: path(ENV_CA_FILE),
            require_client_cert: lookup(ENV_REQUIRE_CERT).is_some_and(|v| truthy(&v)),
        }
    }

    /// Whether SSL is on: asked for, or a certificate is given.
    pub fn enabled(&self) -> bool {
        self.enabled || self.cert_file.is_some()
    }

    /// The scheme towards peers given without one.
    pub fn scheme(&self) -> &'static str {
        if self.enabled() { "https" } else { "http" }
    }

    /// The `LIBPROCESS_SSL_*` environment handing these settings on to
    /// executors; empty when SSL is off. The certificate and key are handed
    /// on only when clients must present one (`require_client_cert`).
    pub fn to_env(&self) -> Vec<(String, String)> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut env = vec![(ENV_ENABLED.to_string(), "true".to_string())];
        let identity = if self.require_client_cert {
            [
                (ENV_CERT_FILE, &self.cert_file),
                (ENV_KEY_FILE, &self.key_file),
            ]
        } else {
            [(ENV_CERT_FILE, &None), (ENV_KEY_FILE, &None)]
        };
        for (name, path) in identity.into_iter().chain([(ENV_CA_FILE, &self.ca_file)]) {
            if let Some(path) = path {
                env.push((name.to_string(), path.display().to_string()));
            }
        }
        env
    }

    /// The server configuration; `None` when SSL is off.
    pub fn server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
        if !self.enabled() {
            return Ok(None);
        }
        let (Some(cert_file), Some(key_file)) = (&self.cert_file, &self.key_file) else {
            return Err(TlsError::Config(
                "SSL is enabled: --ssl_cert_file and --ssl_key_file (LIBPROCESS_SSL_CERT_FILE, LIBPROCESS_SSL_KEY_FILE) are required".into(),
            ));
        };
        let certs = load_certs(cert_file, "certificate file")?;
        let key = load_key(key_file)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = if self.require_client_cert {
            let Some(ca_file) = &self.ca_file else {
                return Err(TlsError::Config(
                    "--ssl_require_client_cert needs --ssl_ca_file (LIBPROCESS_SSL_CA_FILE) to verify clients".into(),
                ));
            };
            let roots = Arc::new(root_store(ca_file)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Parse {
                what: "certificate and key",
                path: cert_file.clone(),
                message: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file (a chain or a CA bundle).
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Parse {
            what,
            path: path.to_path_buf(),
            message: "no PEM certificates".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "key file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Parse {
        what: "key file",
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The certificates of a CA file as a root store.
pub fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path, "CA file")? {
        roots.add(cert).map_err(|e| TlsError::Parse {
            what: "CA file",
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libprocess_environment_is_read_and_handed_on() {
        let env = [
            (ENV_ENABLED, "1"),
            (ENV_CA_FILE, "/ca.pem"),
            (ENV_REQUIRE_CERT, "false"),
        ];
        let settings = TlsSettings::from_lookup(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        assert!(settings.enabled());
        assert_eq!(settings.scheme(), "https");
        assert_eq!(settings.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert!(!settings.require_client_cert);
        assert_eq!(
            settings.to_env(),
            [
                (ENV_ENABLED.to_string(), "true".to_string()),
                (ENV_CA_FILE.to_string(), "/ca.pem".to_string()),
            ]
        );
        assert!(TlsSettings::default().to_env().is_empty());
        assert_eq!(TlsSettings::default().scheme(), "http");
    }

    #[test]
    fn enabled_without_a_certificate_is_a_configuration_error() {
        let settings = TlsSettings {
            enabled: true,
            ..Default::default()
        };
        let err = settings.server_config().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--ssl_cert_file")));
    }
}
