//! The HTTP server: routes, and the streaming response used by every
//! subscription (scheduler, agent link, operator SUBSCRIBE).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::{Bytes, BytesMut};

use crate::queue::EventRx;
use crate::state::Shared;

/// Serves the master's HTTP APIs on `listener` with its limits
/// (`MasterConfig::http_limits`); runs until aborted. The one place the
/// master's server is built.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<tepui_proto::tls::rustls::ServerConfig>>,
) {
    let limits = shared.config.http_limits.clone();
    let app = router(shared);
    let forever = std::future::pending::<()>();
    if let Err(e) = tepui_proto::server::serve(listener, app, limits, tls, forever).await {
        tracing::error!(error = %e, "server stopped");
    }
}

/// The master's libprocess processes: paths under none of them belong to
/// the `master` process, as Mesos's master delegates them.
const PROCESSES: tepui_proto::libprocess::Processes = tepui_proto::libprocess::Processes {
    delegate: "master",
    processes: &["master", "metrics", "version", "tepui", "files", "logging"],
};

pub fn router(shared: Arc<Shared>) -> Router {
    let mut api = Router::new();
    // Mesos's master serves its APIs as routes of the `master` process.
    for prefix in ["", "/master"] {
        api = api
            .route(
                &format!("{prefix}/api/v1/scheduler"),
                post(crate::scheduler_api::handle),
            )
            .route(
                &format!("{prefix}/api/v1"),
                post(crate::operator_api::handle),
            );
    }
    let webui_dir = shared.config.webui_dir.clone();
    let router = api
        // The link reads its own body: its cap depends on who calls.
        .route("/tepui/link/v1", post(crate::link::handle))
        // libprocess messages to the master process (libmesos drivers).
        .route(
            "/master/{name}",
            post(crate::libprocess::handle)
                .fallback(|| async { tepui_proto::libprocess::no_route() }),
        )
        .merge(crate::v0::routes())
        .merge(crate::webui::routes(webui_dir.is_none()))
        .layer(axum::middleware::from_fn(tepui_proto::libprocess::jsonp))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::auth::middleware,
        ))
        // Outermost: a standby redirects to the leader before anything else.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::ha::gate,
        ))
        .with_state(shared);
    // Static UI files are outside the auth and leader gates, as libprocess
    // serves `provide`d files (a standby serves the UI too; the UI itself
    // finds the leader through `/master/state`).
    let router = match webui_dir {
        Some(dir) => router.merge(crate::webui_dir::routes(dir)),
        None => router,
    };
    tepui_proto::libprocess::routing(router, PROCESSES)
}

/// Runs `on_close` when the response body is dropped: the peer went away
/// or the stream ended.
pub struct CloseGuard(Option<Box<dyn FnOnce() + Send + Sync>>);

impl CloseGuard {
    pub fn new(f: impl FnOnce() + Send + Sync + 'static) -> Self {
        CloseGuard(Some(Box::new(f)))
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A streaming 200 response: every message from `rx` is encoded by
/// `encode` into one chunk; `heartbeat` (if any) is sent whenever the
/// stream has been idle for `interval`.
pub fn stream_response<T: Clone + Send + Sync + 'static>(
    rx: EventRx<T>,
    encode: impl Fn(&T, &mut BytesMut) + Send + Sync + 'static,
    heartbeat: Option<(Duration, T)>,
    guard: CloseGuard,
    headers: HeaderMap,
) -> Response {
    let stream = futures_util::stream::unfold(
        (rx, encode, heartbeat, guard),
        |(mut rx, encode, heartbeat, guard)| async move {
            let next = match &heartbeat {
                Some((interval, beat)) => match tokio::time::timeout(*interval, rx.recv()).await {
                    Ok(Some(m)) => Some(m),
                    Ok(None) => None,
                    Err(_) => Some(beat.clone()),
                },
                None => rx.recv().await,
            };
            let Some(message) = next else {
                // A subscriber that fell too far behind: break the stream
                // (the connection is aborted) rather than end it cleanly.
                return rx.overflowed().then(|| {
                    let cut = std::io::Error::other("the subscriber reads too slowly");
                    (Err(cut), (rx, encode, heartbeat, guard))
                });
            };
            let mut buf = BytesMut::new();
            encode(&message, &mut buf);
            let mut more = 0;
            // Drain what is already queued into the same chunk.
            while more < 64 {
                match rx.try_recv() {
                    Some(m) => encode(&m, &mut buf),
                    None => break,
                }
                more += 1;
            }
            Some((
                Ok::<Bytes, std::io::Error>(buf.freeze()),
                (rx, encode, heartbeat, guard),
            ))
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().extend(headers);
    response
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

pub fn status(code: u16) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

pub fn body_response(code: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", header_value(content_type));
    r
}
