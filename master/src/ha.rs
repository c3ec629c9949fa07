//! Highly available masters (`--zk=zk://host:port/path`), as Mesos runs
//! them: every master contends with an ephemeral sequential znode
//! `<path>/json.info_NNNNNNNNNN` holding its `MasterInfo` JSON and the
//! lowest sequence number leads.
//!
//! * A standby answers the scheduler, operator and v0 APIs with 307 and the
//!   leader's `Location` (503 while no leader is known); `/redirect` sends to
//!   the leader's `/`.
//! * The elected master reads the registry from `<path>/registry` (a
//!   pointer znode to chunked data, [`tepui_proto::zk::VersionedNode`]), claims it
//!   with a versioned write and recovers as after a restart
//!   (agents get `--agent_reregister_timeout`, frameworks re-subscribe).
//!   Every later write carries the version it last wrote, so a deposed
//!   leader can never overwrite its successor's registry.
//! * Losing the ZooKeeper session (expired, or disconnected longer than
//!   `--zk_session_timeout`), a refused registry write or seeing another
//!   master lead deposes the master at once: it stops serving, drops every
//!   scheduler and agent stream, and `tepui master` exits so that its
//!   supervisor restarts it as a fresh contender.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tepui_proto::zk::{Client, Contender, Leader, VersionedNode, ZkUrl};
use tokio::sync::{mpsc, watch};

use crate::registry::Registry;
use crate::state::{Master, Shared};

/// The znode under the contenders' path that holds the registry.
pub const REGISTRY_NODE: &str = "registry";

/// Leadership state shared with the HTTP handlers.
pub struct Ha {
    /// This master's znode name.
    child: String,
    leading: AtomicBool,
    leader: watch::Receiver<Option<Leader>>,
    deposed: watch::Sender<Option<String>>,
    /// The session and contenders' path, to list every contender for the
    /// web UI (`/webui/masters`).
    client: Client,
    path: String,
}

impl Ha {
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// `host:port` of the current leader, if one is known and is not this
    /// master (elected but still recovering the registry).
    pub fn leader_endpoint(&self) -> Option<String> {
        self.leader
            .borrow()
            .as_ref()
            .filter(|l| l.child != self.child)
            .map(Leader::endpoint)
    }

    /// Resolves with the reason once this master is deposed.
    pub fn deposed(&self) -> watch::Receiver<Option<String>> {
        self.deposed.subscribe()
    }

    /// Every contender, leader first, then the standbys in election order.
    pub async fn contenders(&self) -> Result<Vec<Leader>, tepui_proto::zk::ZkError> {
        tepui_proto::zk::contenders(&self.client, &self.path).await
    }

    /// Whether `child` is this master's znode.
    pub fn is_me(&self, child: &str) -> bool {
        self.child == child
    }

    fn is_deposed(&self) -> bool {
        self.deposed.borrow().is_some()
    }
}

/// Connects to ZooKeeper, joins the contest and returns the shared state
/// (serving as a standby) and the election task.
pub(crate) async fn start(
    zk: &str,
    master: Master,
) -> Result<(Arc<Shared>, tokio::task::JoinHandle<()>), crate::MasterError> {
    let url = ZkUrl::parse(zk)?;
    let timeout = master.config.zk_session_timeout;
    let client = url.connect(timeout).await?;
    let contender = Contender::join(&client, &url.path, &master.info).await?;
    tracing::info!(znode = %format!("{}/{}", url.path, contender.child), "contending for leadership");
    let (leader_tx, leader_rx) = watch::channel(None);
    let (deposed, _) = watch::channel(None);
    let ha = Ha {
        child: contender.child.clone(),
        leading: AtomicBool::new(false),
        leader: leader_rx,
        deposed,
        client: client.clone(),
        path: url.path.clone(),
    };
    let mut master = master;
    master.elected = false;
    let shared = Shared::new_ha(master, ha);
    let task = tokio::spawn(elect(shared.clone(), client, url, contender, leader_tx));
    Ok((shared, task))
}

async fn elect(
    shared: Arc<Shared>,
    client: Client,
    url: ZkUrl,
    contender: Contender,
    leader_tx: watch::Sender<Option<Leader>>,
) {
    let timeout = shared.config.zk_session_timeout;
    let leader_rx = leader_tx.subscribe();
    let reason = tokio::select! {
        r = tepui_proto::zk::follow_leader(&client, &url.path, &leader_tx) => match r {
            Ok(()) => "leader detection stopped".to_string(),
            Err(e) => format!("leader detection failed: {e}"),
        },
        state = tepui_proto::zk::session_lost(&client, timeout) => {
            format!("ZooKeeper session lost ({state:?}, session timeout {timeout:?})")
        }
        reason = lead(&shared, &client, &url, &contender, leader_rx) => reason,
    };
    depose(&shared, reason);
}

/// Waits to be elected, then leads until something deposes this master.
async fn lead(
    shared: &Arc<Shared>,
    client: &Client,
    url: &ZkUrl,
    contender: &Contender,
    mut leader: watch::Receiver<Option<Leader>>,
) -> String {
    let ours = |l: &Option<Leader>| l.as_ref().is_some_and(|l| l.child == contender.child);
    if leader.wait_for(ours).await.is_err() {
        return "leader detection stopped".to_string();
    }
    tracing::info!(child = %contender.child, "elected the leading master; recovering the registry");
    let path = format!("{}/{REGISTRY_NODE}", url.path);
    let (node, data) = match VersionedNode::open(client.clone(), &path).await {
        Ok(read) => read,
        Err(e) => return format!("cannot read the registry: {e}"),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let registry = match Registry::from_zk(&data, tx) {
        Ok(r) => r,
        Err(e) => return format!("cannot parse the registry {path}: {e}"),
    };
    {
        let mut master = shared.lock();
        master.registry = registry;
        master.recover_registry();
        master.elected = true;
        tracing::info!(
            agents = master.registry.state.admitted.len(),
            "registry recovered; serving as the leading master"
        );
    }
    if let Some(ha) = &shared.ha {
        ha.leading.store(true, Ordering::SeqCst);
    }
    shared.allocate_now.notify_one();
    tokio::select! {
        reason = write_registry(node, rx) => reason,
        _ = leader.wait_for(|l| !ours(l)) => "another master leads".to_string(),
    }
}

/// Writes the latest registry document; a refused write ends leadership.
async fn write_registry(
    mut node: VersionedNode,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) -> String {
    while let Some(mut bytes) = rx.recv().await {
        while let Ok(newer) = rx.try_recv() {
            bytes = newer;
        }
        if let Err(e) = node.write(&bytes).await {
            return format!("registry write refused: {e}");
        }
    }
    "registry closed".to_string()
}

/// Stops serving as leader at once: every request is refused from now on
/// and every scheduler and agent stream is dropped with the old state.
fn depose(shared: &Arc<Shared>, reason: String) {
    tracing::error!(%reason, "stepping down: this master no longer leads");
    let Some(ha) = &shared.ha else { return };
    ha.leading.store(false, Ordering::SeqCst);
    ha.deposed.send_replace(Some(reason));
    let config = shared.config.clone();
    let mut standby = Master::new(config, Registry::in_memory());
    standby.elected = false;
    let old = std::mem::replace(&mut *shared.lock(), standby);
    drop(old);
}

/// Paths a standby serves itself, as Mesos's do; and the web UI's page at
/// `/webui/` with the contenders list: a page whose leader died navigates
/// to a standby's `/webui/` (`/` there would redirect to the dead leader
/// until its ZooKeeper session expires) and waits there, reading
/// `/webui/masters`, until a live master leads.
fn served_by_standby(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/master/health"
            | "/version"
            | "/metrics"
            | "/metrics/snapshot"
            | "/webui/"
            | "/webui/app.js"
            | "/webui/app.css"
            | "/webui/masters"
    )
}

/// The middleware in front of every route: the leader serves, a standby
/// redirects to the leader.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(ha) = &shared.ha else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if ha.is_deposed() {
        return (StatusCode::SERVICE_UNAVAILABLE, "this master was deposed").into_response();
    }
    let redirect = path == "/redirect" || path == "/master/redirect";
    if ha.leading() || (!redirect && served_by_standby(path)) {
        return next.run(request).await;
    }
    let Some(leader) = ha.leader_endpoint() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no leading master elected yet (or this one is recovering)",
        )
            .into_response();
    };
    let target = if redirect {
        String::new()
    } else {
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    };
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, format!("//{leader}{target}"))],
    )
        .into_response()
}
