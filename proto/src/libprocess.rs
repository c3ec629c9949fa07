//! What Mesos's HTTP clients expect of libprocess beyond the routes
//! themselves: its path resolution (a trailing `/` is ignored, the longest
//! registered prefix answers, paths outside any process go to the daemon's
//! delegate process) and JSONP answers for `?jsonp=callback`.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;

/// Marks the answer of the inner router when no route matched.
#[derive(Clone, Copy)]
struct NoRoute;

/// The 404 of a path no route takes: also the answer to any method but
/// POST on a libprocess message route (`/master/{name}`), so that a GET of
/// an unknown path is a 404 as in libprocess, not a 405, and the other
/// candidate paths are still tried.
pub fn no_route() -> Response {
    let mut r = StatusCode::NOT_FOUND.into_response();
    r.extensions_mut().insert(NoRoute);
    r
}

/// Where a daemon's processes are: `delegate` takes every path whose first
/// segment names no process (libprocess `ProcessManager::handle` with a
/// delegate: `/state` is `/master/state`), `processes` are the first
/// segments that name one.
#[derive(Clone, Copy)]
pub struct Processes {
    pub delegate: &'static str,
    pub processes: &'static [&'static str],
}

/// Largest request body replayed against several candidate routes.
const REPLAY_BODY_BYTES: usize = 64 << 20;

/// Adds libprocess's path resolution to `router` (which must have no
/// fallback): a request that matches no route exactly is tried, as
/// `ProcessBase::consume` (3rdparty/libprocess/src/process.cpp) does, with
/// its trailing `/` trimmed and then with ever shorter prefixes of its path
/// inside its process (`/master/frameworks/x/` -> `/master/frameworks/x`,
/// `/master/frameworks`); the first that exists answers, else 404.
pub fn routing(router: Router, processes: Processes) -> Router {
    let inner = router.clone().fallback(|| async { no_route() });
    router.fallback(move |req: Request| resolve(inner.clone(), processes, req))
}

async fn resolve(inner: Router, processes: Processes, req: Request) -> Response {
    let candidates = candidates(req.uri().path(), processes);
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, REPLAY_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let service = TowerToHyperService::new(inner);
    for path in candidates {
        if path == parts.uri.path() {
            continue;
        }
        let uri = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let Ok(uri) = uri.parse() else { continue };
        let mut req = Request::from_parts(parts.clone(), Body::from(body.clone()));
        *req.uri_mut() = uri;
        let Ok(response) = service.call(req).await;
        if response.extensions().get::<NoRoute>().is_none() {
            return response;
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The paths libprocess would try for `path`, longest first.
pub fn candidates(path: &str, processes: Processes) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = segments.first() else {
        return Vec::new();
    };
    let (pid, names) = if processes.processes.contains(first) {
        (*first, &segments[1..])
    } else {
        (processes.delegate, &segments[..])
    };
    if names.is_empty() {
        return vec![format!("/{pid}")];
    }
    (1..=names.len())
        .rev()
        .map(|n| format!("/{pid}/{}", names[..n].join("/")))
        .collect()
}

/// JSONP as libprocess's `OK(json, jsonp)` writes it
/// (3rdparty/libprocess/src/http.cpp, `OK::OK(const JSON::Value&, jsonp)`):
/// a GET with `?jsonp=cb` whose answer is JSON gets `cb(<json>)` as
/// `text/javascript`. The callback is reflected into a script, so one
/// that is not a (dotted) JavaScript identifier is refused with 400.
pub async fn jsonp(req: Request, next: Next) -> Response {
    let callback = (req.method() == axum::http::Method::GET)
        .then(|| jsonp_param(req.uri().query().unwrap_or("")))
        .flatten();
    let Some(callback) = callback else {
        return next.run(req).await;
    };
    if !is_callback(&callback) {
        return (
            StatusCode::BAD_REQUEST,
            "Invalid 'jsonp' callback: expected a JavaScript identifier",
        )
            .into_response();
    }
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() != StatusCode::OK || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(json) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut out = Vec::with_capacity(json.len() + callback.len() + 3);
    out.extend_from_slice(callback.as_bytes());
    out.push(b'(');
    out.extend_from_slice(&json);
    out.push(b')');
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

/// The decoded value of the `jsonp` query parameter, if present.
fn jsonp_param(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "jsonp").then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JavaScript identifier, or several joined by `.` (namespaces such as
/// `angular.callbacks._0`).
pub fn is_callback(callback: &str) -> bool {
    !callback.is_empty()
        && callback.len() <= 256
        && callback.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: Processes = Processes {
        delegate: "master",
        processes: &["master", "metrics"],
    };

    #[test]
    fn longest_prefix_first_inside_the_process() {
        assert_eq!(
            candidates("/master/frameworks/", MASTER),
            ["/master/frameworks"]
        );
        assert_eq!(
            candidates("/master/state/a/b", MASTER),
            ["/master/state/a/b", "/master/state/a", "/master/state"]
        );
        assert_eq!(candidates("/frameworks/", MASTER), ["/master/frameworks"]);
        assert_eq!(
            candidates("/metrics/snapshot//", MASTER),
            ["/metrics/snapshot"]
        );
        assert!(candidates("/", MASTER).is_empty());
    }

    #[test]
    fn callbacks_are_identifiers() {
        for ok in ["cb", "angular.callbacks._0", "$x1", "JSON_CALLBACK"] {
            assert!(is_callback(ok), "{ok}");
        }
        for bad in ["", "a(b)", "alert(1)//", "a..b", "1a", "a b", "a;b", ".a"] {
            assert!(!is_callback(bad), "{bad}");
        }
        assert_eq!(jsonp_param("x=1&jsonp=a.b%2Ec"), Some("a.b.c".into()));
        assert_eq!(jsonp_param("x=1"), None);
    }
}
