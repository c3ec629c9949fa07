//! The Docker Registry v2 / OCI distribution client: manifests (with
//! platform selection and digest checks), config blobs, and layer blobs
//! streamed into a channel with resume-on-failure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::RegistryError;
use super::auth::{Challenge, Credentials};
use super::blob::BlobReader;
use super::manifest::{
    ACCEPT_ALL, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, ImageConfig, Index, Manifest, OCI_INDEX,
    OCI_MANIFEST, Platform, select_platform,
};
use super::reference::{Reference, check_digest, is_docker_hub};
use crate::stream::{CHANNEL_DEPTH, ChannelReader, Chunk};

/// Manifests and configs are small JSON documents; anything bigger is refused
/// rather than buffered.
const MAX_DOCUMENT: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where references without a host go (`--docker_registry`), as a URL
    /// (`https://registry-1.docker.io`, `http://10.0.0.1:5000`).
    pub default_registry: String,
    /// Mirrors tried, in order, before the default registry for references
    /// without a host.
    pub mirrors: Vec<String>,
    /// Hosts (`host:port`) spoken to over plain http.
    pub http_hosts: Vec<String>,
    /// Extra trusted CA certificates (PEM) for https registries.
    pub ca_bundle: Option<PathBuf>,
    /// A Docker `config.json` (`--docker_config`), used when a pull brings no
    /// credentials of its own.
    pub docker_config: Option<PathBuf>,
    /// A transfer making no progress for this long is retried (then fails).
    pub stall_timeout: Duration,
    /// Retries per request (connection errors, 5xx, 429, broken transfers).
    pub retries: u32,
    /// First retry delay; doubled on each further one.
    pub backoff: Duration,
    pub platform: Platform,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            default_registry: "https://registry-1.docker.io".into(),
            mirrors: Vec::new(),
            http_hosts: Vec::new(),
            ca_bundle: None,
            docker_config: None,
            stall_timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(200),
            platform: Platform::host(),
        }
    }
}

/// One repository on one registry endpoint, with the credentials to use.
#[derive(Debug, Clone)]
pub struct Repository {
    /// `scheme://host[:port]`.
    pub base: String,
    pub host: String,
    pub name: String,
    pub credentials: Option<Credentials>,
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.name)
    }
}

/// A manifest resolved to the host platform, with its config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub repository: Repository,
    /// Digest of the platform manifest (not of the index).
    pub manifest_digest: String,
    /// Digest of what the reference named (the index for a multi-arch image).
    pub reference_digest: String,
    pub layers: Vec<Descriptor>,
    pub config_digest: String,
    pub config: ImageConfig,
}

#[derive(Debug, Clone)]
enum AuthState {
    Basic(String),
    Bearer { header: String, expires: Instant },
}

/// The client. Cheap to share (`Arc`); tokens are cached per repository.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    /// Keyed by endpoint, repository and the credentials' basic header, so
    /// a pull with other (or no) credentials never reuses a session.
    auth: Mutex<HashMap<(String, String, String), AuthState>>,
    /// Blob GET requests sent (resumptions included): tests check that
    /// concurrent pulls fetch each blob once.
    blob_requests: AtomicU64,
}

fn auth_key(repo: &Repository) -> (String, String, String) {
    let who = repo
        .credentials
        .as_ref()
        .map(Credentials::basic_header)
        .unwrap_or_default();
    (repo.base.clone(), repo.name.clone(), who)
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn transfer(url: &str, e: &reqwest::Error) -> RegistryError {
    let mut cause = crate::http::describe(e);
    if let Some(hint) = plain_http_hint(url, &cause) {
        cause.push_str(&hint);
    }
    RegistryError::Transfer {
        url: url.to_string(),
        cause,
    }
}

/// A TLS handshake answered in plain text fails with an error that never
/// says why; the usual reason is a plain-http registry not listed in
/// `--docker_insecure_registries` (the operator's fix, so the message names
/// it). rustls reports the plain-text answer as a record of an invalid
/// content type; OpenSSL-style wording is matched too.
fn plain_http_hint(url: &str, cause: &str) -> Option<String> {
    let tls_on_plain = [
        "InvalidContentType",
        "corrupt message",
        "wrong version number",
        "http request to an https server",
    ];
    let lower = cause.to_ascii_lowercase();
    let matched = tls_on_plain
        .iter()
        .any(|p| lower.contains(&p.to_ascii_lowercase()));
    (url.starts_with("https://") && matched).then(|| {
        format!(
            " (is it a plain-http registry? add {} to --docker_insecure_registries)",
            host_of(url)
        )
    })
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, RegistryError> {
        let http = crate::http::build_client(config.ca_bundle.as_deref(), config.stall_timeout)
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        Ok(RegistryClient {
            http,
            config,
            auth: Mutex::new(HashMap::new()),
            blob_requests: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    pub fn blob_requests(&self) -> u64 {
        self.blob_requests.load(Ordering::Relaxed)
    }

    fn base_for_host(&self, host: &str) -> String {
        let scheme = if self.config.http_hosts.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    /// The endpoints to try for `reference`, in order: mirrors then the
    /// default registry for host-less references, else the named host.
    /// Per-pull credentials win over the Docker config.
    pub fn repositories(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<Vec<Repository>, RegistryError> {
        let bases: Vec<String> = match &reference.registry {
            Some(host) if !is_docker_hub(host) => vec![self.base_for_host(host)],
            _ => {
                let mut b: Vec<String> = self.config.mirrors.clone();
                b.push(self.config.default_registry.clone());
                b
            }
        };
        bases
            .into_iter()
            .map(|base| {
                let base = base.trim_end_matches('/').to_string();
                let base = if base.contains("://") {
                    base
                } else {
                    self.base_for_host(&base)
                };
                let host = host_of(&base).to_string();
                let credentials = match credentials {
                    Some(c) => Some(c.clone()),
                    None => match &self.config.docker_config {
                        Some(path) => Credentials::from_docker_config(path, &host)?,
                        None => None,
                    },
                };
                Ok(Repository {
                    name: reference.repository_on(&host),
                    base,
                    host,
                    credentials,
                })
            })
            .collect()
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.config.backoff.saturating_mul(1u32 << attempt.min(10))
    }

    fn cached_auth(&self, key: &(String, String, String)) -> Option<String> {
        let map = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(AuthState::Basic(h)) => Some(h.clone()),
            // A token about to expire is dropped; the 401 re-authenticates.
            Some(AuthState::Bearer { header, expires })
                if *expires > Instant::now() + Duration::from_secs(5) =>
            {
                Some(header.clone())
            }
            _ => None,
        }
    }

    /// Answers a 401 challenge: basic credentials, or a bearer token from
    /// the realm (with basic credentials when we have them).
    async fn authenticate(
        &self,
        repo: &Repository,
        header: Option<&str>,
    ) -> Result<(), RegistryError> {
        let unauthorized = |reason: String| RegistryError::Unauthorized {
            repository: repo.to_string(),
            reason,
        };
        let challenge = header.and_then(Challenge::parse).ok_or_else(|| {
            unauthorized("registry answered 401 without a usable WWW-Authenticate challenge".into())
        })?;
        let key = auth_key(repo);
        let state = match challenge.scheme.as_str() {
            "basic" => {
                let creds = repo.credentials.as_ref().ok_or_else(|| {
                    unauthorized("the registry requires credentials and none were given".into())
                })?;
                AuthState::Basic(creds.basic_header())
            }
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
                let mut url = reqwest::Url::parse(realm)
                    .map_err(|e| unauthorized(format!("bad token realm '{realm}': {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = challenge.params.get("service") {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", &format!("repository:{}:pull", repo.name));
                }
                let mut req = self.http.get(url.clone());
                if let Some(creds) = &repo.credentials {
                    req = req.header(AUTHORIZATION, creds.basic_header());
                }
                let resp = tokio::time::timeout(self.config.stall_timeout, req.send())
                    .await
                    .map_err(|_| RegistryError::Stalled {
                        url: realm.clone(),
                        timeout: self.config.stall_timeout,
                    })?
                    .map_err(|e| transfer(realm, &e))?;
                let status = resp.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(unauthorized(format!(
                        "token server {realm} refused the {} (HTTP {})",
                        if repo.credentials.is_some() {
                            "credentials"
                        } else {
                            "anonymous request"
                        },
                        status.as_u16()
                    )));
                }
                if !status.is_success() {
                    return Err(unauthorized(format!(
                        "token server {realm} answered HTTP {}",
                        status.as_u16()
                    )));
                }
                let body = read_limited(resp, realm).await?;
                let doc: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| unauthorized(format!("token server reply is not JSON: {e}")))?;
                let token = doc
                    .get("token")
                    .or_else(|| doc.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| unauthorized("token server reply has no token".into()))?;
                // The spec's default lifetime is 60 s.
                let ttl = doc.get("expires_in").and_then(|v| v.as_u64()).unwrap_or(60);
                AuthState::Bearer {
                    header: format!("Bearer {token}"),
                    expires: Instant::now() + Duration::from_secs(ttl),
                }
            }
            other => return Err(unauthorized(format!("unsupported auth scheme '{other}'"))),
        };
        self.auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, state);
        Ok(())
    }

    /// GET with auth, retries with backoff on transient failures, and one
    /// re-authentication on 401.
    async fn get(
        &self,
        repo: &Repository,
        path: &str,
        accept: &[&str],
        range_from: u64,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}/v2/{}/{}", repo.base, repo.name, path);
        let key = auth_key(repo);
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let mut req = self.http.get(&url);
            for a in accept {
                req = req.header(ACCEPT, *a);
            }
            if range_from > 0 {
                req = req.header(RANGE, format!("bytes={range_from}-"));
            }
            if let Some(h) = self.cached_auth(&key) {
                req = req.header(AUTHORIZATION, h);
            }
            let failure = match tokio::time::timeout(self.config.stall_timeout, req.send()).await {
                Err(_) => RegistryError::Stalled {
                    url: url.clone(),
                    timeout: self.config.stall_timeout,
                },
                Ok(Err(e)) => transfer(&url, &e),
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    if status.is_success() {
                        return Ok(resp);
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        if reauthenticated {
                            return Err(RegistryError::Unauthorized {
                                repository: repo.to_string(),
                                reason: if repo.credentials.is_some() {
                                    "the registry rejected the credentials (HTTP 401)".into()
                                } else {
                                    "the registry requires credentials (HTTP 401)".into()
                                },
                            });
                        }
                        let challenge = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        self.authenticate(repo, challenge.as_deref()).await?;
                        reauthenticated = true;
                        continue;
                    }
                    let err = RegistryError::Status {
                        url: url.clone(),
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(
                            &read_limited(resp, &url).await.unwrap_or_default(),
                        )
                        .chars()
                        .take(300)
                        .collect(),
                    };
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !transient {
                        return Err(err);
                    }
                    err
                }
            };
            if attempt >= self.config.retries {
                return Err(failure);
            }
            tracing::debug!(%url, attempt, error = %failure, "registry request failed; retrying");
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Fetches a manifest or index and checks its digest (against the
    /// reference's digest when given, else against `Docker-Content-Digest`).
    async fn manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        let resp = self
            .get(repo, &format!("manifests/{reference}"), &ACCEPT_ALL, 0)
            .await?;
        let url = resp.url().to_string();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, &url).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            header_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {repo}:{reference}"),
                expected,
                actual,
            });
        }
        let media_type = match content_type {
            Some(ct) if ct != "application/json" && !ct.is_empty() => ct,
            _ => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default(),
        };
        Ok((body, media_type, actual))
    }

    /// Resolves `reference` on `repo` to the host platform's manifest and
    /// its config.
    pub async fn resolve(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<ResolvedImage, RegistryError> {
        let shown = format!("{repo}:{}", reference.manifest_ref());
        let bad = |reason: String| RegistryError::Manifest {
            reference: shown.clone(),
            reason,
        };
        let (mut body, mut media_type, reference_digest) =
            self.manifest(repo, reference.manifest_ref()).await?;
        let mut manifest_digest = reference_digest.clone();
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            let index: Index =
                serde_json::from_slice(&body).map_err(|e| bad(format!("index: {e}")))?;
            let want = &self.config.platform;
            let chosen =
                select_platform(&index, want).ok_or_else(|| RegistryError::NoPlatform {
                    reference: shown.clone(),
                    platform: want.to_string(),
                    available: index
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            check_digest(&chosen.digest).map_err(bad)?;
            let digest = chosen.digest.clone();
            (body, media_type, manifest_digest) = self.manifest(repo, &digest).await?;
        }
        if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
            return Err(bad(format!(
                "unsupported manifest type '{media_type}' (schema1 and other types are not supported)"
            )));
        }
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|e| bad(format!("manifest: {e}")))?;
        check_digest(&manifest.config.digest).map_err(bad)?;
        for l in &manifest.layers {
            check_digest(&l.digest).map_err(bad)?;
        }
        let config_bytes = self.small_blob(repo, &manifest.config).await?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| bad(format!("image config: {e}")))?;
        Ok(ResolvedImage {
            repository: repo.clone(),
            manifest_digest,
            reference_digest,
            layers: manifest.layers,
            config_digest: manifest.config.digest,
            config,
        })
    }

    /// A small blob (the image config), buffered and verified.
    async fn small_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > MAX_DOCUMENT as u64 {
            return Err(RegistryError::Manifest {
                reference: format!("{repo}@{}", desc.digest),
                reason: format!("config blob of {} bytes is too large", desc.size),
            });
        }
        let resp = self
            .get(repo, &format!("blobs/{}", desc.digest), &[], 0)
            .await?;
        let url = resp.url().to_string();
        let body = read_limited(resp, &url).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob {repo}@{}", desc.digest),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(body)
    }

    /// Starts streaming a layer blob. The returned reader yields its bytes
    /// (a broken transfer resumes with a Range request, or re-downloads and
    /// skips what was already delivered when the registry ignores Range) and
    /// verifies size and digest in [`BlobReader::finish`]. The task's result
    /// is the download's own error, which explains a reader failure better.
    pub fn open_blob(
        self: &Arc<Self>,
        repo: &Repository,
        desc: &Descriptor,
        progress: Arc<AtomicU64>,
    ) -> (
        BlobReader,
        tokio::task::JoinHandle<Result<u64, RegistryError>>,
    ) {
        let (tx, rx) = mpsc::channel::<Chunk>(CHANNEL_DEPTH);
        let this = Arc::clone(self);
        let r = repo.clone();
        let d = desc.clone();
        let task = tokio::spawn(async move {
            let result = this.pump_blob(&r, &d, &tx, &progress).await;
            match &result {
                Ok(_) => {
                    let _ = tx.send(Ok(bytes::Bytes::new())).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                }
            }
            result
        });
        let what = format!("blob {}@{}", repo, desc.digest);
        (
            BlobReader::new(ChannelReader::new(rx), desc.digest.clone(), desc.size, what),
            task,
        )
    }

    async fn pump_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        tx: &mpsc::Sender<Chunk>,
        progress: &AtomicU64,
    ) -> Result<u64, RegistryError> {
        let path = format!("blobs/{}", desc.digest);
        let mut delivered = 0u64;
        let mut failures = 0u32;
        loop {
            self.blob_requests.fetch_add(1, Ordering::Relaxed);
            let resp = self.get(repo, &path, &[], delivered).await?;
            let url = resp.url().to_string();
            // 206: the registry resumed; 200: it sent everything again.
            let mut skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                0
            } else {
                delivered
            };
            let mut body = resp.bytes_stream();
            let failure = loop {
                match tokio::time::timeout(self.config.stall_timeout, body.next()).await {
                    Ok(None) => break None,
                    Ok(Some(Ok(mut chunk))) => {
                        if skip > 0 {
                            let n = skip.min(chunk.len() as u64);
                            skip -= n;
                            let _ = chunk.split_to(n as usize);
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        delivered += chunk.len() as u64;
                        if delivered > desc.size {
                            return Err(RegistryError::SizeMismatch {
                                what: format!("blob {repo}@{}", desc.digest),
                                expected: desc.size,
                                actual: delivered,
                            });
                        }
                        progress.store(delivered, Ordering::Relaxed);
                        if tx.send(Ok(chunk)).await.is_err() {
                            // The extractor stopped; its error is the one reported.
                            return Ok(delivered);
                        }
                    }
                    Ok(Some(Err(e))) => break Some(transfer(&url, &e)),
                    Err(_) => {
                        break Some(RegistryError::Stalled {
                            url: url.clone(),
                            timeout: self.config.stall_timeout,
                        });
                    }
                }
            };
            let failure = match failure {
                None if delivered >= desc.size => return Ok(delivered),
                None => RegistryError::SizeMismatch {
                    what: format!("blob {repo}@{} (body ended early)", desc.digest),
                    expected: desc.size,
                    actual: delivered,
                },
                Some(f) => f,
            };
            if failures >= self.config.retries {
                return Err(failure);
            }
            tracing::info!(blob = %desc.digest, delivered, error = %failure, "blob transfer broke; resuming");
            tokio::time::sleep(self.backoff(failures)).await;
            failures += 1;
        }
    }
}

async fn read_limited(resp: reqwest::Response, url: &str) -> Result<Vec<u8>, RegistryError> {
    let mut body = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| transfer(url, &e))?;
        if out.len() + chunk.len() > MAX_DOCUMENT {
            return Err(RegistryError::Manifest {
                reference: url.to_string(),
                reason: format!("document larger than {MAX_DOCUMENT} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_tls_error_from_a_plain_http_host_names_the_flag() {
        let hint = plain_http_hint(
            "https://10.0.0.1:5000/v2/busybox/manifests/latest",
            "received corrupt message of type InvalidContentType",
        )
        .unwrap();
        assert_eq!(
            hint,
            " (is it a plain-http registry? add 10.0.0.1:5000 to --docker_insecure_registries)"
        );
        // Other failures, and plain http itself, get no such hint.
        assert!(plain_http_hint("https://h:1/v2/", "connection refused").is_none());
        assert!(plain_http_hint("http://h:1/v2/", "corrupt message").is_none());
    }

    /// A real handshake against a plain-text HTTP server on loopback: the
    /// error the client reports carries the hint.
    #[tokio::test]
    async fn pulling_over_https_from_a_plain_http_server_says_what_to_do() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        let client = RegistryClient::new(RegistryConfig {
            retries: 0,
            ..RegistryConfig::default()
        })
        .unwrap();
        let reference =
            crate::registry::Reference::parse(&format!("{host}/busybox:latest")).unwrap();
        let repos = client.repositories(&reference, None).unwrap();
        assert!(repos[0].base.starts_with("https://"), "{}", repos[0].base);
        let err = client.resolve(&repos[0], &reference).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("add {host} to --docker_insecure_registries")),
            "{text}"
        );
    }
}
