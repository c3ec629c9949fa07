//! Authentication and authorization for the master's endpoints, as Mesos
//! classifies them: the scheduler API needs framework authentication
//! (`--authenticate_frameworks`), the agent link agent authentication
//! (`--authenticate_agents`), operator calls readonly (GET_*) or readwrite,
//! and the v0 read endpoints readonly. ACLs (`--acls`) then decide.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tepui_proto::auth::{Action, Principal};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::state::Shared;

/// Who called, as the middleware found out: `principal` is set when the
/// request carried valid credentials; `error` says why it did not.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub error: Option<String>,
}

impl Caller {
    /// The principal when authentication is `required` (401 without one),
    /// `None` (anonymous) otherwise.
    pub fn authenticated(&self, required: bool) -> Result<Option<&str>, ApiError> {
        if !required {
            return Ok(None);
        }
        match &self.principal {
            Some(p) => Ok(p.value.as_deref()),
            None => Err(ApiError::new(
                401,
                self.error
                    .clone()
                    .unwrap_or_else(|| "authentication required".into()),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Scheduler,
    Operator,
    Link,
    ReadOnly,
    Open,
}

fn classify(path: &str) -> Class {
    // `/master/api/v1` is `/api/v1`: the routes of the master's process.
    let path = match path.strip_prefix("/master") {
        Some(api) if api.starts_with("/api/") => api,
        _ => path,
    };
    match path {
        "/api/v1/scheduler" => Class::Scheduler,
        // Both decide per request whether authentication is needed. The
        // maintenance endpoints read (GET) or write (POST): their handlers
        // decide, as the operator API's calls do.
        "/api/v1"
        | "/webui/access"
        | "/maintenance/schedule"
        | "/master/maintenance/schedule"
        | "/machine/down"
        | "/master/machine/down"
        | "/machine/up"
        | "/master/machine/up" => Class::Operator,
        // The terminal's websocket authenticates its first message.
        p if p.starts_with("/webui/agents/") && p.ends_with("/exec") => Class::Operator,
        "/tepui/link/v1" => Class::Link,
        "/health" | "/master/health" | "/version" | "/redirect" | "/master/redirect" => Class::Open,
        // The web UI's own files: the page asks for credentials itself.
        p if crate::webui::is_asset(p) => Class::Open,
        _ => Class::ReadOnly,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Authenticates every request (when its class needs it) and hands the
/// handlers a [`Caller`].
pub async fn middleware(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = &shared.config.auth;
    let class = classify(req.uri().path());
    let required = match class {
        Class::Scheduler => auth.authenticate_frameworks,
        Class::Link => auth.authenticate_agents,
        Class::ReadOnly => auth.authenticate_http_readonly,
        // Decided per call by the operator API.
        Class::Operator => auth.authenticate_http_readonly || auth.authenticate_http_readwrite,
        Class::Open => false,
    };
    let mut caller = Caller::default();
    if required {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match auth.authenticator.authenticate(header, now()) {
            Ok(p) => caller.principal = Some(p),
            Err(e) => {
                tracing::debug!(path = %req.uri().path(), error = %e, "authentication failed");
                caller.error = Some(e.to_string());
                if class != Class::Operator {
                    return ApiError::new(401, e.to_string()).into_response();
                }
            }
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

impl AuthConfig {
    /// 403 unless the ACLs let `principal` do `action` on `object`.
    pub fn authorize(
        &self,
        action: Action,
        principal: Option<&str>,
        object: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.acls.authorize(action, principal, object) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "Principal '{}' is not authorized to {}{}",
            principal.unwrap_or("ANY"),
            action.as_str(),
            object.map(|o| format!(" on '{o}'")).unwrap_or_default()
        )))
    }

    pub fn allowed(&self, action: Action, principal: Option<&str>, object: Option<&str>) -> bool {
        self.acls.authorize(action, principal, object)
    }
}
