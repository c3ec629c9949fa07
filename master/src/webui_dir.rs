//! `--webui_dir`: serves a web UI's static files from a folder on disk, the
//! way Mesos's master serves its own UI (src/master/master.cpp,
//! `Master::initialize`: `provide("", webui_dir/index.html)`,
//! `provide("app", webui_dir/app)`, `provide("assets", webui_dir/assets)`).
//!
//! Pointing it at an unchanged copy of apache/mesos `src/webui` gives
//! operators Mesos's own UI against tepui. Only files below the folder are
//! ever served: a path with `..`, a hidden component or a symlink leading
//! outside is a 404, never a read elsewhere.

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The folders below `--webui_dir` Mesos serves, besides `index.html` at `/`.
const FOLDERS: [&str; 2] = ["app", "assets"];

/// Routes `/`, `/app/...` and `/assets/...` to files in `dir`.
pub fn routes<S: Clone + Send + Sync + 'static>(dir: PathBuf) -> Router<S> {
    let root = Root(std::sync::Arc::new(dir));
    let mut router = Router::new().route("/", get(index));
    for folder in FOLDERS {
        router = router.route(
            &format!("/{folder}/{{*path}}"),
            get(move |state: State<Root>, UrlPath(path): UrlPath<String>| {
                file(state, format!("{folder}/{path}"))
            }),
        );
    }
    router.with_state(root)
}

#[derive(Clone)]
struct Root(std::sync::Arc<PathBuf>);

async fn index(State(root): State<Root>) -> Response {
    serve(&root.0, "index.html").await
}

async fn file(State(root): State<Root>, path: String) -> Response {
    serve(&root.0, &path).await
}

async fn serve(root: &Path, relative: &str) -> Response {
    let Some(path) = resolve(root, relative) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The file `relative` names below `root`, or `None` when the name has a
/// component that could leave the folder (`..`, absolute, hidden) or the
/// file, once symlinks are followed, lies outside it.
fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    let plain = relative.components().all(|c| match c {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if !plain {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let path = root.join(relative).canonicalize().ok()?;
    (path.starts_with(&root) && path.is_file()).then_some(path)
}

/// The media type for a UI file, by extension; browsers refuse scripts and
/// styles served as anything else under `nosniff`.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "eot" => "application/vnd.ms-fontobject",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_below_the_folder_resolve() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<html>").unwrap();
        std::fs::write(dir.path().join("app/app.js"), "1").unwrap();
        std::fs::write(dir.path().join(".secret"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("app/out")).unwrap();

        assert!(resolve(dir.path(), "index.html").is_some());
        assert!(resolve(dir.path(), "app/app.js").is_some());
        for bad in [
            "../etc/passwd",
            "app/../../etc/passwd",
            "/etc/passwd",
            ".secret",
            "app/out",
            "app",
            "missing.js",
        ] {
            assert_eq!(resolve(dir.path(), bad), None, "{bad}");
        }
    }

    #[test]
    fn scripts_and_styles_get_their_media_types() {
        assert_eq!(
            content_type(Path::new("a/b.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("b.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}
