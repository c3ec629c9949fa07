//! What a process inside a pod may ask of the agent (issue 16 item 2).
//! Tasks share the host's network, so the agent API hears them like any
//! operator; the kernel tells which pod a caller lives in
//! ([`crate::peer`]), and a pod may act only on itself: its own executor
//! on the executor API, containers nested under its own top-level
//! container, its own sandbox through the files API, and nothing that
//! shows other tenants (`/state`, `/containers`, `/monitor/statistics`,
//! GET_STATE and the like). Host processes are operators, governed by the
//! `--authenticate_http_*` flags and `--acls` as in Mesos.

use std::sync::Arc;

use axum::response::Response;
use tepui_proto::server::Connection;
use tepui_proto::v1::agent::Call;
use tepui_proto::v1::agent::call::Type;

use super::auth::Confinement;
use super::error;
use crate::daemon::Agent;
use crate::peer::{self, Origin};
use tepui_containerizer::cni::AddressOwner;

/// The connection's origin, found once per connection and kept with it.
pub async fn origin(agent: &Agent, conn: Option<Connection>) -> Origin {
    let Some(conn) = conn else {
        return Origin::Remote;
    };
    if let Some(known) = conn.memo.get().and_then(|m| m.downcast_ref::<Origin>()) {
        return known.clone();
    }
    let (peer, local) = (conn.peer, conn.local);
    let root = agent.config.cgroups_root.clone();
    let started = std::time::Instant::now();
    // A pod on a CNI network reaches the agent over its bridge from an
    // address of its own, in a network namespace sock_diag does not see
    // from here: the address the agent gave it names it. Any other caller
    // from one of the agent's CNI subnets is no operator either.
    let cni = agent
        .containerizer
        .address_owner(tepui_containerizer::cni::canonical_ip(peer.ip()));
    let found = match cni {
        // (The process is not known: uid and pid of a caller in another
        // network namespace are not the kernel's to tell here.)
        AddressOwner::Pod(pod) => Origin::Pod {
            pod,
            uid: u32::MAX,
            pid: 0,
        },
        owner => {
            let found = tokio::task::spawn_blocking(move || peer::identify(peer, local, &root))
                .await
                .unwrap_or(Origin::Remote);
            match (found, owner) {
                (Origin::Remote, AddressOwner::Network) => Origin::Unidentified,
                (found, _) => found,
            }
        }
    };
    tracing::debug!(%peer, origin = ?found, took_us = started.elapsed().as_micros() as u64, "caller identified");
    let _ = conn.memo.set(Arc::new(found.clone()));
    found
}

/// The framework and executor whose container is the pod `pod`.
pub async fn pod_owner(agent: &Agent, pod: &str) -> Option<(String, String)> {
    agent.state.lock().await.containers.get(pod).cloned()
}

/// 403 for an unauthenticated caller from another host that asks for more
/// than reading: it could be a task on another agent.
pub fn refused_remote(what: &str) -> Response {
    error(
        403,
        format!(
            "a caller from another host without credentials may only read, not {what}: run the command on the agent's host, authenticate (--authenticate_http_readwrite with --credentials), or start the agent with --trust_remote_operators"
        ),
    )
}

fn refused(who: Confinement<'_>, what: &str) -> Response {
    let message = match who {
        Confinement::Pod(pod) => {
            format!("a process in container '{pod}' may not {what}: it may act only on its own pod")
        }
        _ => format!(
            "an unidentified process on this host may not {what}: it gave no credential and the kernel named no process for it"
        ),
    };
    error(403, message)
}

/// The v0 endpoints a pod may read: its own sandbox (the files scope
/// checks it), the agent's aggregate metrics and version; nothing that
/// lists other tenants (the Prometheus `/metrics` has a series per
/// container, labelled with other frameworks' task ids: operators only).
pub fn check_v0(who: Confinement<'_>, readonly_class: bool, path: &str) -> Result<(), Response> {
    if !readonly_class {
        return Ok(());
    }
    let path = path.strip_prefix("/slave(1)").unwrap_or(path);
    match path {
        "/metrics/snapshot" | "/version" | "/health" => Ok(()),
        p if p.starts_with("/files/") => Ok(()),
        p => Err(refused(who, &format!("read '{p}'"))),
    }
}

/// An operator API call from a pod: container calls under its own
/// top-level container, files of its own sandbox, health and version.
pub async fn check_call(
    agent: &Agent,
    who: Confinement<'_>,
    kind: Type,
    call: &Call,
) -> Result<(), Response> {
    if let Some((id, _)) = super::auth::container_target(call) {
        let mine = id.parent.is_some()
            && matches!(who, Confinement::Pod(pod) if super::auth::root_of(id) == pod);
        if !mine {
            return Err(refused(
                who,
                &format!("{} on container '{}'", kind.as_str_name(), id.value),
            ));
        }
        return Ok(());
    }
    match kind {
        // The files scope confines the path to the pod's own sandbox.
        Type::GetHealth | Type::GetVersion | Type::ListFiles | Type::ReadFile => {
            let _ = agent;
            Ok(())
        }
        other => Err(refused(who, &format!("make {} calls", other.as_str_name()))),
    }
}

/// The sandbox scope of a pod's requests: its executor's sandboxes (every
/// run), or its own directory for a standalone container.
pub async fn files_scope(agent: &Agent, who: Confinement<'_>) -> super::files::Scope {
    let Confinement::Pod(pod) = who else {
        return super::files::Scope::Nothing;
    };
    match pod_owner(agent, pod).await {
        Some((framework, executor)) => super::files::Scope::Executor {
            framework,
            executor,
        },
        None => super::files::Scope::Container(pod.to_string()),
    }
}
