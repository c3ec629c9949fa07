//! The master's libprocess endpoint: frameworks built on libmesos's
//! `MesosSchedulerDriver` (and its re-implementations) POST protobuf
//! messages to `/master/<message name>` with a `Libprocess-From` header
//! naming their own pid, and receive the master's messages as POSTs to
//! that pid (`tepui_proto::libprocess_peer`). What they send is translated into the v1 calls
//! of the scheduler API ([`scheduler`]): one master state, one allocator,
//! one set of ACLs for both generations of frameworks.

mod scheduler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tepui_proto::v0::Upid;

use crate::state::Shared;

pub use tepui_proto::libprocess_peer::Peer;

/// The frameworks that registered over libprocess, by framework id.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

/// A v0 framework's registration: who it is and which subscription of the
/// master's state carries its events.
#[derive(Clone, Debug)]
pub struct Session {
    pub pid: Upid,
    pub stream_id: String,
    pub peer: Peer,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who sent a libprocess message: `Libprocess-From`, else the legacy
/// `User-Agent: libprocess/<pid>` (3rdparty/libprocess/src/process.cpp,
/// `libprocess()` and `parse()`). `None`: not a libprocess message at all.
fn sender(headers: &HeaderMap) -> Option<Result<Upid, String>> {
    let from = headers
        .get("libprocess-from")
        .map(|v| v.to_str().map(str::to_string))
        .or_else(|| {
            headers
                .get_all("user-agent")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|ua| ua.strip_prefix("libprocess/").map(str::to_string))
                .map(Ok)
        })?;
    Some(match from {
        Ok(from) => from.parse(),
        Err(_) => Err("the sender's pid is not text".to_string()),
    })
}

/// `POST /master/<name>`: a message to the master process. 202 once
/// taken (as libprocess answers a delivered message), 404 for a name the
/// master does not handle (libprocess answers 404 for an unknown
/// receiver; an unknown name it would drop silently — answering 404 tells
/// the sender), 400 for a sender or body that does not parse.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let from = match sender(&headers) {
        // Not a message: an HTTP request for a route the master lacks.
        None => return StatusCode::NOT_FOUND.into_response(),
        Some(Err(reason)) => {
            tracing::warn!(%name, %reason, "dropping a libprocess message whose sender cannot be parsed");
            return (StatusCode::BAD_REQUEST, reason).into_response();
        }
        Some(Ok(from)) => from,
    };
    match scheduler::receive(&shared, from, &name, &body) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(Refusal::UnknownName) => StatusCode::NOT_FOUND.into_response(),
        Err(Refusal::Undecodable(e)) => {
            tracing::warn!(%name, error = %e, "dropping a libprocess message that does not decode");
            (
                StatusCode::BAD_REQUEST,
                format!("cannot decode {name}: {e}"),
            )
                .into_response()
        }
    }
}

/// Why a message is refused outright.
#[derive(Debug)]
pub enum Refusal {
    UnknownName,
    Undecodable(prost::DecodeError),
}
