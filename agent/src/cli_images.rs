//! `tepui images ls|pull|prune` (and `tepui pull`): an agent's image store
//! through `GET /tepui/v1/images`, `POST /tepui/v1/images/pull` (per-layer
//! progress as JSON lines) and the operator API's PRUNE_IMAGES.

use std::io::{IsTerminal, Write};

use futures_util::StreamExt;
use serde_json::Value;
use tepui_proto::v1::agent::{Call, call};
use tepui_proto::v1::{Image, image};

use crate::cli::{CliError, Client, human_bytes, write_table};
use crate::cli_locate::Scope;

/// `tepui images ls`: one agent's images, or with a master every agent's
/// (each with an `agent` field and column).
pub async fn ls(scope: &Scope, json_output: bool) -> Result<(), CliError> {
    let mut listed: Vec<(String, Value)> = Vec::new();
    for (_, label, client) in scope.agents().await? {
        match client.get_json("/tepui/v1/images").await {
            Ok(images) => listed.push((label, images)),
            // One agent down must not hide the others' images.
            Err(e) if scope.agent.is_none() => {
                let _ = writeln!(std::io::stderr(), "tepui: agent {label}: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    let cluster = scope.master.is_some();
    let mut out = std::io::stdout().lock();
    if json_output {
        if !cluster && let Some((_, images)) = listed.first() {
            writeln!(out, "{images}")?;
            return Ok(());
        }
        let all: Vec<Value> = listed
            .iter()
            .flat_map(|(label, images)| {
                images
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |mut image| {
                        image["agent"] = Value::String(label.clone());
                        image
                    })
            })
            .collect();
        writeln!(out, "{}", Value::Array(all))?;
        return Ok(());
    }
    let mut header = vec!["REFERENCE", "DIGEST", ">LAYERS", ">SIZE", "IN USE"];
    if cluster {
        header.insert(0, "AGENT");
    }
    let mut rows = Vec::new();
    for (label, images) in &listed {
        for image in images.as_array().into_iter().flatten() {
            let digest = image["manifest_digest"].as_str().unwrap_or("");
            let mut row = vec![
                image["reference"].as_str().unwrap_or("").to_string(),
                short_digest(digest).to_string(),
                image["layers"].as_array().map_or(0, Vec::len).to_string(),
                human_bytes(image["bytes"].as_u64().unwrap_or(0)),
                if image["in_use"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
            ];
            if cluster {
                row.insert(0, label.clone());
            }
            rows.push(row);
        }
    }
    write_table(&mut out, &header, &rows)?;
    Ok(())
}

fn short_digest(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

/// `tepui images pull REF`: one progress bar per layer on a terminal, a
/// line per layer otherwise, the JSON lines themselves with `--output json`.
pub async fn pull(client: &Client, reference: &str, json_output: bool) -> Result<(), CliError> {
    let response = client
        .post_json(
            "/tepui/v1/images/pull",
            &serde_json::json!({ "reference": reference }),
        )
        .await?;
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    let tty = std::io::stdout().is_terminal() && !json_output;
    let mut drawn = 0usize;
    let mut last_layers = Vec::new();
    let mut outcome: Option<Result<Value, String>> = None;
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.map_err(CliError::Stream)?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line)
                .map_err(|e| CliError::Protocol(format!("bad progress line: {e}")))?;
            if json_output {
                let mut out = std::io::stdout().lock();
                out.write_all(&line)?;
                out.flush()?;
            }
            if let Some(layers) = event["layers"].as_array() {
                last_layers = layers.clone();
                if tty {
                    drawn = draw_bars(&last_layers, drawn)?;
                }
            }
            if let Some(pulled) = event.get("pulled") {
                outcome = Some(Ok(pulled.clone()));
            }
            if let Some(message) = event["error"].as_str() {
                outcome = Some(Err(message.to_string()));
            }
        }
    }
    match outcome {
        Some(Ok(pulled)) => {
            if !json_output {
                if !tty {
                    for layer in &last_layers {
                        println!("{}", bar_line(layer));
                    }
                }
                println!(
                    "pulled {} {}",
                    pulled["reference"].as_str().unwrap_or(reference),
                    pulled["manifest_digest"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Some(Err(message)) => Err(CliError::Failed(format!(
            "pull of {reference} failed: {message}"
        ))),
        None => Err(CliError::Protocol(
            "the pull stream ended without a result".into(),
        )),
    }
}

/// Redraws the bars in place (cursor up over the previous drawing).
fn draw_bars(layers: &[Value], drawn: usize) -> Result<usize, CliError> {
    let mut out = std::io::stdout().lock();
    if drawn > 0 {
        write!(out, "\x1b[{drawn}A")?;
    }
    for layer in layers {
        writeln!(out, "\x1b[2K{}", bar_line(layer))?;
    }
    out.flush()?;
    Ok(layers.len())
}

fn bar_line(layer: &Value) -> String {
    const WIDTH: usize = 30;
    let bytes = layer["bytes"].as_u64().unwrap_or(0);
    let total = layer["total"].as_u64().unwrap_or(0);
    let fraction = if total == 0 {
        1.0
    } else {
        (bytes as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "{} [{}{}] {:>3}% {} / {}",
        short_digest(layer["digest"].as_str().unwrap_or("")),
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        (fraction * 100.0).round() as u64,
        human_bytes(bytes),
        human_bytes(total),
    )
}

/// `tepui images prune [--exclude REF]...`: PRUNE_IMAGES, then what is left.
pub async fn prune(client: &Client, exclude: &[String], json_output: bool) -> Result<(), CliError> {
    let before: Value = client.get_json("/tepui/v1/images").await?;
    client
        .call(Call {
            r#type: Some(call::Type::PruneImages as i32),
            prune_images: Some(call::PruneImages {
                excluded_images: exclude
                    .iter()
                    .map(|name| Image {
                        r#type: image::Type::Docker as i32,
                        docker: Some(image::Docker {
                            name: name.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        })
        .await
        .or_else(|e| match e {
            // PRUNE_IMAGES answers 200 with no body.
            CliError::Decode(_) => Ok(Default::default()),
            e => Err(e),
        })?;
    let after: Value = client.get_json("/tepui/v1/images").await?;
    let references = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["reference"].as_str().map(str::to_string))
            .collect()
    };
    let kept = references(&after);
    let removed: Vec<String> = references(&before)
        .into_iter()
        .filter(|r| !kept.contains(r))
        .collect();
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "removed": removed, "kept": kept })
        )?;
    } else {
        for r in &removed {
            writeln!(out, "removed {r}")?;
        }
        writeln!(out, "{} removed, {} kept", removed.len(), kept.len())?;
    }
    Ok(())
}
