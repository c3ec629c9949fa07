//! Image calls: the operator API's `PRUNE_IMAGES`, and tepui's own
//! `GET /tepui/v1/images` (what is pulled) and `POST /tepui/v1/images/pull`
//! (a pull whose per-layer progress streams back as JSON lines), which
//! Mesos's API has no calls for.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tepui_containerizer::images::PullProgress;
use tepui_proto::v1::agent::call;
use tepui_proto::v1::image;

use super::error;
use crate::daemon::Agent;

const NOT_ENABLED: &str = "container images are not enabled on this agent (--image_providers)";

/// `GET /tepui/v1/images`: the pulled images, as a JSON array.
pub(super) async fn list(State(agent): State<Arc<Agent>>) -> Response {
    let Some(store) = agent.containerizer.image_store() else {
        return error(404, NOT_ENABLED);
    };
    match store.list().await {
        Ok(images) => json_response(&images),
        Err(e) => error(500, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PullRequest {
    reference: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /tepui/v1/images/pull` with `{"reference": ...}`: JSON lines,
/// `{"layers": [{digest, bytes, total}]}` as the pull goes, then
/// `{"pulled": {reference, manifest_digest, layers}}` or `{"error": ...}`.
pub(super) async fn pull(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    let Some(store) = agent.containerizer.image_store() else {
        return error(404, NOT_ENABLED);
    };
    let request: PullRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, format!("Expecting {{\"reference\": ...}}: {e}")),
    };
    if request.reference.trim().is_empty() {
        return error(400, "'reference' is empty");
    }
    // A reference that cannot name an image is the caller's mistake: a 400
    // before the 200 of the progress stream, not an error line inside it.
    if let Err(e) = tepui_fetcher::registry::Reference::parse(&request.reference) {
        return error(400, format!("'reference' is invalid: {e}"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let progress = Arc::new(PullProgress::default());
        let mut updates = progress.subscribe();
        let credentials = match (&request.username, &request.password) {
            (Some(u), Some(p)) => Some(tepui_fetcher::registry::Credentials::new(u, p)),
            _ => None,
        };
        let pulling = {
            let progress = progress.clone();
            let store = store.clone();
            let reference = request.reference.clone();
            tokio::spawn(async move {
                store
                    .pull_with_progress(&reference, credentials.as_ref(), &progress)
                    .await
            })
        };
        let line = |value: serde_json::Value| Bytes::from(format!("{value}\n"));
        tokio::pin!(pulling);
        let outcome = loop {
            tokio::select! {
                done = &mut pulling => break done,
                changed = updates.changed() => {
                    if changed.is_ok() {
                        let layers = updates.borrow_and_update().clone();
                        if tx.send(line(serde_json::json!({ "layers": layers }))).await.is_err() {
                            // The client left; the pull still completes.
                        }
                    }
                }
            }
        };
        let last = match outcome {
            Ok(Ok(image)) => serde_json::json!({
                "layers": progress.subscribe().borrow().clone(),
                "pulled": {
                    "reference": image.reference,
                    "manifest_digest": image.manifest_digest,
                    "layers": image.layer_digests,
                }
            }),
            Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
            Err(e) => serde_json::json!({ "error": format!("the pull task failed: {e}") }),
        };
        let _ = tx.send(line(last)).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn json_response<T: serde::Serialize>(value: &T) -> Response {
    let mut response = Response::new(Body::from(serde_json::to_vec(value).unwrap_or_default()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `PRUNE_IMAGES`: removes every pulled image but the excluded ones and
/// those running containers use; 200 with no body (Mesos's answer). An
/// agent without container images has nothing to prune.
pub(super) async fn prune_images(agent: &Arc<Agent>, call: Option<call::PruneImages>) -> Response {
    if agent.containerizer.image_metrics().is_none() {
        return StatusCode::OK.into_response();
    }
    let excluded = match excluded_references(call.map(|c| c.excluded_images).unwrap_or_default()) {
        Ok(e) => e,
        Err(message) => return error(400, message),
    };
    match agent.containerizer.prune_images(&excluded).await {
        Ok(report) => {
            tracing::info!(
                images = report.images_removed,
                layers = report.layers_removed,
                bytes = report.bytes_freed,
                "pruned images"
            );
            StatusCode::OK.into_response()
        }
        Err(e) => error(500, e.to_string()),
    }
}

/// The Docker references of `excluded_images`; APPC images cannot be in
/// the store, so excluding them is a no-op.
fn excluded_references(images: Vec<tepui_proto::v1::Image>) -> Result<Vec<String>, String> {
    let mut references = Vec::new();
    for image in images {
        match image::Type::try_from(image.r#type) {
            Ok(image::Type::Docker) => match image.docker {
                Some(docker) => references.push(docker.name),
                None => return Err("Expecting 'docker' in a DOCKER excluded image".into()),
            },
            Ok(image::Type::Appc) => {}
            Err(_) => return Err(format!("unknown image type {}", image.r#type)),
        }
    }
    Ok(references)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_docker_names_are_kept_and_appc_ignored() {
        let docker = tepui_proto::v1::Image {
            r#type: image::Type::Docker as i32,
            docker: Some(image::Docker {
                name: "busybox:1.36".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let appc = tepui_proto::v1::Image {
            r#type: image::Type::Appc as i32,
            ..Default::default()
        };
        assert_eq!(
            excluded_references(vec![docker, appc]).unwrap(),
            vec!["busybox:1.36".to_string()]
        );
        let bad = tepui_proto::v1::Image {
            r#type: image::Type::Docker as i32,
            ..Default::default()
        };
        assert!(excluded_references(vec![bad]).is_err());
    }
}
