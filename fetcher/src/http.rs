//! HTTP(S) downloads: redirects, a custom CA bundle, conditional requests for
//! cache revalidation, and a stall timeout that aborts a transfer making no
//! progress (like Mesos' `--fetcher_stall_timeout`, which is curl's low-speed
//! limit of 1 byte/s).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;

use crate::error::FetchError;
use crate::stream::Chunk;

/// What a cache entry remembers to revalidate itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub(crate) fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

pub(crate) enum Start {
    /// 304: the cached copy is current.
    NotModified,
    Body(Body),
}

/// A 2xx response whose body is still to be read.
pub(crate) struct Body {
    pub response: reqwest::Response,
    pub validators: Validators,
    pub length: Option<u64>,
}

pub(crate) fn build_client(
    ca_bundle: Option<&Path>,
    stall_timeout: Duration,
) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .connect_timeout(stall_timeout)
        .user_agent(concat!("tepui-fetcher/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).map_err(|e| {
            FetchError::Config(format!("reading CA bundle '{}': {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            FetchError::Config(format!("parsing CA bundle '{}': {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(FetchError::Config(format!(
                "CA bundle '{}' contains no PEM certificates",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| FetchError::Config(format!("building HTTP client: {}", describe(&e))))
}

/// A short cause for a transfer error: the innermost error in the chain, with
/// the common socket failures spelled the way operators search for them.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut deepest: &dyn std::error::Error = e;
    let mut io_kind = None;
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        if let Some(ioe) = err.downcast_ref::<io::Error>() {
            io_kind = Some(ioe.kind());
        }
        deepest = err;
        cur = err.source();
    }
    match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => "connection refused".into(),
        Some(io::ErrorKind::ConnectionReset) => "connection reset by peer".into(),
        Some(io::ErrorKind::TimedOut) => "timed out".into(),
        _ if e.is_redirect() => format!("redirect error: {deepest}"),
        _ if e.is_timeout() => "timed out".into(),
        _ => deepest.to_string(),
    }
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Sends the request and waits for the response head, at most one stall
/// timeout.
pub(crate) async fn start(
    client: &reqwest::Client,
    url: &Url,
    uri: &str,
    conditional: Option<&Validators>,
    stall_timeout: Duration,
) -> Result<Start, FetchError> {
    let mut req = client.get(url.clone());
    if let Some(v) = conditional {
        if let Some(etag) = &v.etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &v.last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm);
        }
    }
    let response = match tokio::time::timeout(stall_timeout, req.send()).await {
        Err(_) => {
            return Err(FetchError::Stalled {
                uri: uri.to_string(),
                timeout: stall_timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(FetchError::Transfer {
                uri: uri.to_string(),
                cause: describe(&e),
            });
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED && conditional.is_some() {
        return Ok(Start::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::HttpStatus {
            uri: uri.to_string(),
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
        });
    }
    let validators = Validators {
        etag: header(&response, ETAG),
        last_modified: header(&response, LAST_MODIFIED),
    };
    let length = header(&response, CONTENT_LENGTH).and_then(|l| l.parse().ok());
    Ok(Start::Body(Body {
        response,
        validators,
        length,
    }))
}

/// How pumping a body ended early.
pub(crate) enum PumpError {
    Fetch(FetchError),
    /// The consumer stopped reading (it failed; its error is the one to report).
    ConsumerGone,
}

/// Streams the body into `tx`, aborting when no bytes arrive for a whole stall
/// timeout. On failure an error chunk is sent so the reader cannot mistake a
/// truncated body for a complete one.
pub(crate) async fn pump(
    response: reqwest::Response,
    tx: mpsc::Sender<Chunk>,
    uri: &str,
    stall_timeout: Duration,
    progress: Arc<AtomicU64>,
) -> Result<u64, PumpError> {
    let mut body = response.bytes_stream();
    let mut total = 0u64;
    loop {
        let failure = match tokio::time::timeout(stall_timeout, body.next()).await {
            Ok(None) => {
                // The end marker: without it the reader treats a closed
                // channel as an aborted transfer.
                let _ = tx.send(Ok(bytes::Bytes::new())).await;
                return Ok(total);
            }
            Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
            Ok(Some(Ok(chunk))) => {
                total += chunk.len() as u64;
                progress.store(total, Ordering::Relaxed);
                if tx.send(Ok(chunk)).await.is_err() {
                    return Err(PumpError::ConsumerGone);
                }
                continue;
            }
            Ok(Some(Err(e))) => FetchError::Transfer {
                uri: uri.to_string(),
                cause: describe(&e),
            },
            Err(_) => FetchError::Stalled {
                uri: uri.to_string(),
                timeout: stall_timeout,
            },
        };
        let _ = tx.send(Err(io::Error::other("download failed"))).await;
        return Err(PumpError::Fetch(failure));
    }
}
