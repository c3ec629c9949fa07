//! The agent's HTTP endpoints: the executor API v1, the operator API v1,
//! and the v0 endpoints tools read. Shared request decoding and error
//! answers live here; each API has its own module.
// Handlers return a ready `Response` as their error: boxing it would only
// move the allocation.
#![allow(clippy::result_large_err)]

mod auth;
mod debug_api;
mod executor_api;
mod files;
mod images_api;
mod io_api;
pub(crate) mod libprocess;
pub(crate) mod operator_api;
mod state_model;
mod tenancy;
mod v0;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prost::{Message, Name};
use tepui_proto::content::{self, ContentError, MessageFormat, RequestFormat, ResponseFormat};

use crate::daemon::Agent;

/// The agent's libprocess processes: paths under none of them belong to
/// `slave(1)`, the process Mesos's agent delegates to.
const PROCESSES: tepui_proto::libprocess::Processes = tepui_proto::libprocess::Processes {
    delegate: "slave(1)",
    processes: &[
        "slave(1)", "files", "metrics", "version", "tepui", "logging",
    ],
};

pub fn router(agent: Arc<Agent>) -> Router {
    let mut slave = Router::new();
    // Mesos's agent serves these as routes of its `slave(1)` process; the
    // bare paths are what its delegate answers.
    for prefix in ["", "/slave(1)"] {
        slave = slave
            .route(
                &format!("{prefix}/api/v1/executor"),
                post(executor_api::handle),
            )
            .route(&format!("{prefix}/api/v1"), post(operator_api::dispatch))
            .route(&format!("{prefix}/health"), get(v0::health))
            .route(&format!("{prefix}/state"), get(v0::state))
            .route(&format!("{prefix}/state.json"), get(v0::state))
            .route(&format!("{prefix}/flags"), get(v0::flags))
            .route(
                &format!("{prefix}/monitor/statistics"),
                get(debug_api::monitor_statistics),
            )
            .route(
                &format!("{prefix}/monitor/statistics.json"),
                get(debug_api::monitor_statistics),
            )
            .route(&format!("{prefix}/containers"), get(debug_api::containers));
    }
    // libprocess messages to the agent's process (libmesos executor
    // drivers; scheduler drivers' framework messages).
    let slave = slave.route(
        "/slave(1)/{name}",
        post(libprocess::handle).fallback(|| async { tepui_proto::libprocess::no_route() }),
    );
    let router = slave
        .route("/version", get(v0::version))
        .route("/metrics/snapshot", get(v0::metrics_snapshot))
        .route("/metrics", get(v0::prometheus))
        .route("/files/browse", get(files::browse))
        .route("/files/read", get(files::read_v0))
        .route("/files/download", get(files::download))
        .route("/tepui/v1/images", get(images_api::list))
        .route("/tepui/v1/images/pull", post(images_api::pull))
        .layer(axum::middleware::from_fn(tepui_proto::libprocess::jsonp))
        .layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            auth::middleware,
        ))
        .with_state(agent);
    tepui_proto::libprocess::routing(router, PROCESSES)
}

/// A plain-text error answer, as Mesos gives them.
pub fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, message.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn content_error(e: ContentError) -> Response {
    error(e.status(), e.to_string())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decodes a one-message request body by its Content-Type.
pub fn decode_call<T: Message + Name + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(T, MessageFormat), Response> {
    let format = RequestFormat::from_headers(
        header_str(headers, "content-type"),
        header_str(headers, "message-content-type"),
    )
    .map_err(content_error)?;
    if format.is_recordio() {
        return Err(error(
            415,
            "this endpoint takes one message, not a RecordIO stream",
        ));
    }
    let message = content::decode_message::<T>(format.message_format(), body).map_err(|e| {
        error(
            400,
            format!("Failed to parse body into {}: {e}", T::full_name()),
        )
    })?;
    Ok((message, format.message_format()))
}

/// The response format the client accepts.
pub fn accepted_format(headers: &HeaderMap, streaming: bool) -> Result<ResponseFormat, Response> {
    content::negotiate(
        header_str(headers, "accept"),
        header_str(headers, "message-accept"),
        streaming,
    )
    .map_err(content_error)
}

/// A one-message answer.
pub fn message_response<T: Message + Name>(format: ResponseFormat, message: &T) -> Response {
    let body = content::encode_message(format.message_format, message);
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type),
    );
    response
}

/// Headers of a streaming (RecordIO) answer.
pub fn stream_headers(format: ResponseFormat, response: &mut Response) {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type),
    );
    if let Some(inner) = format.message_content_type {
        response
            .headers_mut()
            .insert("Message-Content-Type", HeaderValue::from_static(inner));
    }
}

/// Serves until `shutdown` resolves: HTTPS with a TLS configuration.
pub async fn serve(
    agent: Arc<Agent>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tepui_proto::tls::rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = agent.config.http_limits.clone();
    tepui_proto::server::serve(listener, router(agent), limits, tls, shutdown).await
}
