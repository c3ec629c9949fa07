//! The v0 maintenance endpoints (src/master/http.cpp):
//! `/master/maintenance/schedule` (GET the schedule, POST a new one),
//! `/master/maintenance/status`, `/master/machine/down` and
//! `/master/machine/up` (POST a JSON array of machines). Same rules and
//! answers as the v1 calls (crate::maintenance); bodies are JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tepui_proto::auth::Action;
use tepui_proto::v1::MachineId;
use tepui_proto::v1::maintenance::Schedule;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Master, Shared};

pub fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for prefix in ["", "/master"] {
        r = r
            .route(
                &format!("{prefix}/maintenance/schedule"),
                get(schedule).post(update_schedule),
            )
            .route(&format!("{prefix}/maintenance/status"), get(status))
            .route(&format!("{prefix}/machine/down"), post(machine_down))
            .route(&format!("{prefix}/machine/up"), post(machine_up));
    }
    r
}

fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// `Master::Http::maintenanceSchedule` (GET): the schedule as JSON, only
/// the machines the caller may see.
async fn schedule(State(s): State<Arc<Shared>>, Extension(caller): Extension<Caller>) -> Response {
    let auth = &s.config.auth;
    let principal = match caller.authenticated(auth.authenticate_http_readonly) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let visible = auth.allowed(Action::GetMaintenanceSchedules, principal, None);
    let schedule = s.lock().maintenance_schedule(|_| visible);
    json(tepui_proto::json::to_value(&schedule))
}

/// `Master::Http::maintenanceStatus`.
async fn status(State(s): State<Arc<Shared>>, Extension(caller): Extension<Caller>) -> Response {
    let auth = &s.config.auth;
    let principal = match caller.authenticated(auth.authenticate_http_readonly) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let visible = auth.allowed(Action::GetMaintenanceStatuses, principal, None);
    let status = s.lock().maintenance_status(|_| visible);
    json(tepui_proto::json::to_value(&status))
}

/// The body as JSON of the expected kind, or 400 with the parser's words
/// (`JSON::parse<JSON::Object>` / `JSON::parse<JSON::Array>`).
fn parse_body(body: &[u8], array: bool) -> Result<serde_json::Value, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Failed to parse JSON: {e}")))?;
    let expected = if array {
        value.is_array()
    } else {
        value.is_object()
    };
    if !expected {
        return Err(ApiError::bad_request(format!(
            "Expecting a JSON {}",
            if array { "array" } else { "object" }
        )));
    }
    Ok(value)
}

fn machines(body: &[u8]) -> Result<Vec<MachineId>, ApiError> {
    parse_body(body, true)?
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            tepui_proto::json::from_value::<MachineId>(m)
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect()
}

fn answer(s: &Shared, result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => {
            s.allocate_now.notify_one();
            axum::http::StatusCode::OK.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `Master::Http::maintenanceSchedule` (POST): a new schedule.
async fn update_schedule(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let auth = &s.config.auth;
        let principal = caller.authenticated(auth.authenticate_http_readwrite)?;
        let schedule: Schedule = tepui_proto::json::from_value(&parse_body(&body, false)?)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        s.lock().update_maintenance_schedule(schedule, |_| {
            auth.authorize(Action::UpdateMaintenanceSchedules, principal, None)
        })
    })();
    answer(&s, result)
}

/// `Master::Http::machineDown`.
async fn machine_down(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    machines_call(
        &s,
        &caller,
        &body,
        Action::StartMaintenances,
        |m, ids, auth| m.start_maintenance(ids, auth),
    )
}

/// `Master::Http::machineUp`.
async fn machine_up(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    machines_call(
        &s,
        &caller,
        &body,
        Action::StopMaintenances,
        |m, ids, auth| m.stop_maintenance(ids, auth),
    )
}

/// A machines body (`machine/down`, `machine/up`) applied by `apply` under
/// `action`'s ACL, as the v1 START/STOP_MAINTENANCE calls are.
fn machines_call(
    s: &Arc<Shared>,
    caller: &Caller,
    body: &Bytes,
    action: Action,
    apply: impl FnOnce(
        &mut Master,
        &[MachineId],
        &dyn Fn(&MachineId) -> Result<(), ApiError>,
    ) -> Result<(), ApiError>,
) -> Response {
    let result = (|| {
        let auth = &s.config.auth;
        let principal = caller.authenticated(auth.authenticate_http_readwrite)?;
        let ids = machines(body)?;
        apply(&mut s.lock(), &ids, &|_| {
            auth.authorize(action, principal, None)
        })
    })();
    answer(s, result)
}
