//! Image calls of the operator API: `PRUNE_IMAGES`.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tepui_proto::v1::agent::call;
use tepui_proto::v1::image;

use super::error;
use crate::daemon::Agent;

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
