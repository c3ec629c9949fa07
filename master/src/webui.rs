//! The web UI (`/`): the bundle built from `webui/` (scripts/build-webui.sh)
//! embedded in the binary, so a master serves it with no internet and no
//! files beside it; and `/webui/agents/<id>/<endpoint>`, the master-side
//! proxy through which the page reads an agent's sandbox and statistics.
//!
//! Why a proxy rather than CORS on the agent: the page then talks to one
//! origin only (its CSP can say `connect-src 'self'`), the browser needs no
//! route to the agents' network, and the caller's credentials go with the
//! request as they are (the agent still authenticates and authorizes it);
//! with CORS the browser would have to hold credentials for every agent's
//! origin. Only the read endpoints the page uses are forwarded (GET), so
//! the master is no open proxy.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;

use crate::auth::Caller;
use crate::state::Shared;
use tepui_proto::auth::Action;

const INDEX: &[u8] = include_bytes!("../../webui/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../webui/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../webui/dist/app.css");

/// The page's policy: scripts from this origin only (no inline script, so
/// injected markup could not run even if it reached the DOM), requests to
/// this origin only (its websocket included), no framing. Inline styles are
/// allowed: xterm.js sizes its terminal with a `<style>` element it writes;
/// styles cannot run code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The agent endpoints the page reads through the master.
const PROXIED: [&str; 4] = [
    "files/browse",
    "files/read",
    "files/download",
    "monitor/statistics",
];

/// Paths of the UI's own assets: open to anyone (they hold no cluster
/// data; the page asks for credentials when the APIs answer 401).
pub fn is_asset(path: &str) -> bool {
    matches!(
        path,
        "/" | "/index.html" | "/webui/" | "/webui/app.js" | "/webui/app.css"
    )
}

/// The UI's routes. `at_root` puts its page at `/` as well as at
/// `/webui/`; with `--webui_dir` the folder's UI (Mesos's own) owns `/`.
pub fn routes(at_root: bool) -> Router<Arc<Shared>> {
    let index = || async { asset(INDEX, "text/html; charset=utf-8", false) };
    let mut router = Router::new().route("/webui/", get(index));
    if at_root {
        router = router
            .route("/", get(index))
            .route("/index.html", get(index));
    }
    router
        .route(
            "/webui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8", true) }),
        )
        .route(
            "/webui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8", true) }),
        )
        .route("/webui/agents/{agent}/{*endpoint}", get(proxy))
        .route("/webui/access", get(access))
        .route("/webui/masters", get(masters))
        .route("/webui/agents/{agent}/exec", get(crate::webui_exec::handle))
}

fn asset(body: &'static [u8], content_type: &'static str, revalidate: bool) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The asset names carry no hash: browsers may keep them but must ask
    // again (an upgraded master serves a new bundle under the same name);
    // the ETag makes that a 304-free but cheap revalidation.
    let cache = if revalidate { "no-cache" } else { "no-store" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// Whether the caller may see anything at all: the page shows a 403 page
/// instead of empty tables to someone whose ACLs let them view neither
/// frameworks nor tasks (Mesos's endpoints filter silently, so the page
/// cannot tell "nothing there" from "nothing for you" by itself). Rules
/// naming particular objects do not decide here (object "anything"), so a
/// principal allowed some frameworks only still gets the page.
async fn access(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let auth = &shared.config.auth;
    let principal = match caller.authenticated(auth.authenticate_http_readonly) {
        Ok(p) => p,
        // Without `WWW-Authenticate`: the page asks for credentials in its
        // own form, and the browser must not pop up its dialog as well.
        Err(e) => {
            return crate::http::body_response(e.status, "text/plain", e.message.into_bytes());
        }
    };
    let sees = [Action::ViewFrameworks, Action::ViewTasks]
        .into_iter()
        .any(|a| auth.allowed(a, principal, None));
    let body = serde_json::json!({ "principal": principal, "view": sees }).to_string();
    let code = if sees { 200 } else { 403 };
    crate::http::body_response(code, "application/json", body.into_bytes())
}

/// The masters contending in ZooKeeper, leader first then the standbys in
/// election order, with the address each advertises (`--zk`); without
/// `--zk` this master alone. The page remembers the list so that when its
/// leader dies it can navigate to another master (its CSP lets it fetch
/// from its own origin only; navigation is not limited), and the overview
/// shows the standbys beside the leader. MasterInfo carries no scheme: the
/// masters of one cluster share their TLS settings, so this master's own
/// scheme is given for all.
async fn masters(State(shared): State<Arc<Shared>>) -> Response {
    let scheme = shared.config.tls.scheme();
    let entry = |info: &tepui_proto::v1::MasterInfo, leader: bool, me: bool| {
        serde_json::json!({
            "id": info.id,
            "address": tepui_proto::zk::info_endpoint(info),
            "scheme": scheme,
            "leader": leader,
            "self": me,
        })
    };
    let list: Vec<serde_json::Value> = match &shared.ha {
        None => {
            let info = shared.lock().info.clone();
            vec![entry(&info, true, true)]
        }
        Some(ha) => match ha.contenders().await {
            Ok(all) => all
                .iter()
                .enumerate()
                .map(|(i, c)| entry(&c.info, i == 0, ha.is_me(&c.child)))
                .collect(),
            Err(e) => {
                return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
            }
        },
    };
    let body = serde_json::json!({ "masters": list }).to_string();
    let mut r = crate::http::body_response(200, "application/json", body.into_bytes());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `host:port` of the agent's HTTP server (plain HTTP: an agent serving
/// HTTPS only is not reachable through the UI's proxy yet).
pub fn agent_address(shared: &Shared, agent: &str) -> Option<String> {
    let m = shared.lock();
    let a = m.agents.get(agent)?;
    Some(
        a.address
            .clone()
            .unwrap_or_else(|| format!("{}:{}", a.info.hostname, a.info.port.unwrap_or(5051))),
    )
}

async fn proxy(
    State(shared): State<Arc<Shared>>,
    Path((agent, endpoint)): Path<(String, String)>,
    req: Request,
) -> Response {
    if !PROXIED.contains(&endpoint.as_str()) {
        return (StatusCode::NOT_FOUND, "not an agent endpoint the UI reads").into_response();
    }
    let address = {
        let m = shared.lock();
        let Some(a) = m.agents.get(&agent) else {
            return (StatusCode::NOT_FOUND, "no such agent").into_response();
        };
        a.address
            .clone()
            .unwrap_or_else(|| format!("{}:{}", a.info.hostname, a.info.port.unwrap_or(5051)))
    };
    let target = match req.uri().query() {
        Some(q) => format!("/{endpoint}?{q}"),
        None => format!("/{endpoint}"),
    };
    match forward(&address, &target, req.headers().get(header::AUTHORIZATION)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(agent, error = %e, "webui proxy");
            (StatusCode::BAD_GATEWAY, format!("agent {address}: {e}")).into_response()
        }
    }
}

/// GETs `target` from the agent at `address` (plain HTTP) and streams its
/// answer back with the headers the page needs.
async fn forward(
    address: &str,
    target: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Response, String> {
    let connect = tokio::net::TcpStream::connect(address);
    let stream = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = axum::http::Request::get(target).header(header::HOST, address);
    if let Some(auth) = authorization {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    let request = builder
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .map_err(|_| "the agent did not answer".to_string())?
        .map_err(|e| e.to_string())?;
    let (parts, body) = answer.into_parts();
    let mut r = Response::new(Body::new(body));
    *r.status_mut() = parts.status;
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_DISPOSITION,
        header::CONTENT_LENGTH,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            r.headers_mut().insert(name, v.clone());
        }
    }
    // The agent's answers (a sandbox file above all) are data, never a page.
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(r)
}
