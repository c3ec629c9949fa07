//! ZooKeeper as Mesos uses it for highly available masters (the `zk`
//! feature).
//!
//! * `zk://[user:pass@]host:port[,host:port]/path` URLs ([`ZkUrl`]).
//! * Contention: every master creates an ephemeral sequential znode
//!   `<path>/json.info_NNNNNNNNNN` holding its `MasterInfo` in Mesos's JSON;
//!   the lowest sequence number leads ([`Contender`]).
//! * Detection: watch `<path>`'s children and read the leader's znode
//!   ([`detect`], a background task yielding the current leader).
//! * Versioned znodes ([`VersionedNode`]): `setData` with the version last
//!   read, so a writer that lost the race (a deposed leader) is refused.
//!
//! Both the master and the agent use it, which is why it lives here: the
//! agent never imports the master, and this is the one crate both share.

pub mod testing;

use std::time::Duration;

use crate::v1::MasterInfo;
use tokio::sync::watch;
use zookeeper_client as zk;

pub use zookeeper_client::Client;

/// The prefix of the masters' znodes, as Mesos names them.
pub const INFO_PREFIX: &str = "json.info_";

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("invalid ZooKeeper URL {url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("ZooKeeper {op} {path}: {source}")]
    Op {
        op: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error("cannot connect to ZooKeeper {servers}: {source}")]
    Connect {
        servers: String,
        #[source]
        source: zk::Error,
    },
    #[error("znode {path} was written by someone else (version conflict)")]
    Conflict { path: String },
}

fn op(op: &'static str, path: &str) -> impl FnOnce(zk::Error) -> ZkError + use<> {
    let path = path.to_string();
    move |source| ZkError::Op { op, path, source }
}

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port[,host:port]`.
    pub servers: String,
    /// The znode under which masters contend, e.g. `/mesos`.
    pub path: String,
    /// `user:pass` for the digest scheme.
    pub auth: Option<(String, String)>,
}

impl ZkUrl {
    pub fn parse(url: &str) -> Result<ZkUrl, ZkError> {
        let bad = |reason| ZkError::Url {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| bad("must start with zk://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => return Err(bad("needs a path, e.g. zk://host:2181/mesos")),
        };
        let (auth, servers) = match authority.rsplit_once('@') {
            Some((creds, servers)) => {
                let (user, pass) = creds
                    .split_once(':')
                    .ok_or_else(|| bad("credentials must be user:pass"))?;
                (Some((user.to_string(), pass.to_string())), servers)
            }
            None => (None, authority),
        };
        if servers.is_empty() || servers.split(',').any(|s| !s.contains(':')) {
            return Err(bad("servers must be host:port[,host:port]"));
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(bad("needs a path other than /"));
        }
        Ok(ZkUrl {
            servers: servers.to_string(),
            path: path.to_string(),
            auth,
        })
    }

    /// Opens a session.
    pub async fn connect(&self, session_timeout: Duration) -> Result<Client, ZkError> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(session_timeout);
        if let Some((user, pass)) = &self.auth {
            connector = connector.with_auth("digest", format!("{user}:{pass}").as_bytes());
        }
        connector
            .connect(&self.servers)
            .await
            .map_err(|source| ZkError::Connect {
                servers: self.servers.clone(),
                source,
            })
    }
}

/// Creates `path` and its parents (persistent, open ACL) if missing.
pub async fn ensure_path(client: &Client, path: &str) -> Result<(), ZkError> {
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client.create(&at, &[], &options).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(op("create", &at)(e)),
        }
    }
    Ok(())
}

/// The sequence number of a contender's znode name, if it is one.
pub fn sequence_of(child: &str) -> Option<u64> {
    child.strip_prefix(INFO_PREFIX)?.parse().ok()
}

/// The leading contender among `children`: the lowest sequence number.
pub fn leader_child(children: &[String]) -> Option<&String> {
    children
        .iter()
        .filter_map(|c| sequence_of(c).map(|s| (s, c)))
        .min_by_key(|(s, _)| *s)
        .map(|(_, c)| c)
}

/// The `MasterInfo` JSON a contender's znode holds.
pub fn encode_info(info: &MasterInfo) -> Vec<u8> {
    crate::json::to_vec(info)
}

pub fn decode_info(bytes: &[u8]) -> Option<MasterInfo> {
    crate::json::from_slice(bytes).ok()
}

/// `host:port` of a master, from its `MasterInfo` (the address's hostname,
/// then its ip, then the little-endian uint32 `ip` as Mesos writes it).
pub fn info_endpoint(info: &MasterInfo) -> String {
    if let Some(address) = &info.address {
        let host = address
            .hostname
            .clone()
            .or_else(|| address.ip.clone())
            .unwrap_or_default();
        if !host.is_empty() {
            return format!("{host}:{}", address.port);
        }
    }
    let ip = std::net::Ipv4Addr::from(info.ip.to_le_bytes());
    format!("{ip}:{}", info.port)
}

/// The leader as seen by a detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    /// The znode name, `json.info_NNNNNNNNNN`.
    pub child: String,
    pub info: MasterInfo,
}

impl Leader {
    pub fn endpoint(&self) -> String {
        info_endpoint(&self.info)
    }
}

/// Reads the current leader once: `None` if nobody contends.
pub async fn current_leader(client: &Client, path: &str) -> Result<Option<Leader>, ZkError> {
    loop {
        let children = match client.list_children(path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(None),
            Err(e) => return Err(op("list", path)(e)),
        };
        let Some(child) = leader_child(&children) else {
            return Ok(None);
        };
        let node = format!("{path}/{child}");
        match client.get_data(&node).await {
            Ok((data, _)) => {
                return Ok(decode_info(&data).map(|info| Leader {
                    child: child.clone(),
                    info,
                }));
            }
            // The leader went away between the two reads: look again.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(op("get", &node)(e)),
        }
    }
}

/// Every contender, leader first then the standbys in election order
/// (lowest sequence number first): what the web UI lists and follows when
/// its leader dies. A contender whose znode vanishes between the listing
/// and the read (its session ended) is left out.
pub async fn contenders(client: &Client, path: &str) -> Result<Vec<Leader>, ZkError> {
    let mut children = match client.list_children(path).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(op("list", path)(e)),
    };
    children.retain(|c| sequence_of(c).is_some());
    children.sort_by_key(|c| sequence_of(c));
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        let node = format!("{path}/{child}");
        match client.get_data(&node).await {
            Ok((data, _)) => {
                if let Some(info) = decode_info(&data) {
                    out.push(Leader { child, info });
                }
            }
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(op("get", &node)(e)),
        }
    }
    Ok(out)
}

/// Follows the leader on an open session until the session ends: every
/// change of `path`'s children re-reads the leader into `tx`.
pub async fn follow_leader(
    client: &Client,
    path: &str,
    tx: &watch::Sender<Option<Leader>>,
) -> Result<(), ZkError> {
    loop {
        if tx.is_closed() {
            return Ok(());
        }
        match client.get_and_watch_children(path).await {
            Ok((_, _, watcher)) => {
                let leader = current_leader(client, path).await?;
                tx.send_if_modified(|current| {
                    let changed = *current != leader;
                    *current = leader;
                    changed
                });
                let event = watcher.changed().await;
                if event.event_type == zk::EventType::Session && event.session_state.is_terminated()
                {
                    return Err(op("watch", path)(zk::Error::SessionExpired));
                }
            }
            Err(zk::Error::NoNode) => {
                tx.send_if_modified(|current| current.take().is_some());
                let (_, watcher) = client
                    .check_and_watch_stat(path)
                    .await
                    .map_err(op("watch", path))?;
                watcher.changed().await;
            }
            Err(e) => return Err(op("watch", path)(e)),
        }
    }
}

/// A detector: a background task that keeps the current leader of `url` in
/// the returned receiver, reconnecting whenever its session ends. It stops
/// when every receiver is dropped.
pub fn detect(url: ZkUrl, session_timeout: Duration) -> watch::Receiver<Option<Leader>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        while !tx.is_closed() {
            match url.connect(session_timeout).await {
                Ok(client) => {
                    if let Err(e) = follow_leader(&client, &url.path, &tx).await {
                        tracing::warn!(error = %e, "master detection interrupted; reconnecting");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach ZooKeeper; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    rx
}

/// A master's candidacy: its ephemeral sequential znode.
#[derive(Debug, Clone)]
pub struct Contender {
    pub path: String,
    /// This contender's znode name, `json.info_NNNNNNNNNN`.
    pub child: String,
}

impl Contender {
    /// Joins the group at `path` with `info` as the znode's data.
    pub async fn join(client: &Client, path: &str, info: &MasterInfo) -> Result<Self, ZkError> {
        ensure_path(client, path).await?;
        let prefix = format!("{path}/{INFO_PREFIX}");
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, sequence) = client
            .create(&prefix, &encode_info(info), &options)
            .await
            .map_err(op("create", &prefix))?;
        Ok(Contender {
            path: path.to_string(),
            child: format!("{INFO_PREFIX}{sequence}"),
        })
    }
}

/// Resolves once the session is lost for good: expired, closed, or
/// disconnected for longer than `timeout` (Mesos's rule: a leader that
/// cannot prove its session within the timeout must assume it is gone).
pub async fn session_lost(client: &Client, timeout: Duration) -> zk::SessionState {
    let mut states = client.state_watcher();
    let mut state = states.peek_state();
    loop {
        if state.is_terminated() {
            return state;
        }
        if state == zk::SessionState::Disconnected {
            match tokio::time::timeout(timeout, states.changed()).await {
                Ok(next) => state = next,
                Err(_) => return zk::SessionState::Disconnected,
            }
        } else {
            state = states.changed().await;
        }
    }
}

/// The largest chunk of data in one znode: ZooKeeper refuses packets over
/// `jute.maxbuffer` (1 MiB by default).
pub const CHUNK: usize = 512 * 1024;

/// Data of any size kept in ZooKeeper and written only with the version last
/// seen: once someone else writes it, this writer's next write fails with
/// [`ZkError::Conflict`].
///
/// `path` is a pointer znode, `<generation>:<chunks>`; a generation is a
/// persistent sequential znode under `<path>.data/` whose children `0`, `1`,
/// ... hold the data in chunks of at most [`CHUNK`] bytes. A write builds a
/// new generation, then swings the pointer with a versioned setData (the
/// one step that can conflict), then deletes the generation it replaced; a
/// refused writer deletes its own. Readers follow the pointer.
#[derive(Debug)]
pub struct VersionedNode {
    client: Client,
    path: String,
    version: i32,
    generation: Option<String>,
}

/// A pointer read: the generation's name and its number of chunks.
fn parse_pointer(data: &[u8]) -> Option<(String, usize)> {
    let text = std::str::from_utf8(data).ok()?;
    let (name, count) = text.split_once(':')?;
    Some((name.to_string(), count.parse().ok()?))
}

impl VersionedNode {
    /// Reads (creating it empty if missing) the data at `path` and claims
    /// it: writes the pointer back with the version read, so that from then
    /// on any earlier writer (a deposed leader) is refused. A write that
    /// slips in between the read and the claim makes it read again.
    pub async fn open(client: Client, path: &str) -> Result<(Self, Vec<u8>), ZkError> {
        if let Some((parent, _)) = path.rsplit_once('/')
            && !parent.is_empty()
        {
            ensure_path(&client, parent).await?;
        }
        ensure_path(&client, &format!("{path}.data")).await?;
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match client.create(path, &[], &options).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(op("create", path)(e)),
        }
        loop {
            let (pointer, stat) = client.get_data(path).await.map_err(op("get", path))?;
            let mut node = VersionedNode {
                client: client.clone(),
                path: path.to_string(),
                version: stat.version,
                generation: parse_pointer(&pointer).map(|(name, _)| name),
            };
            let Some(data) = node.read(&pointer).await? else {
                continue;
            };
            match node
                .client
                .set_data(path, &pointer, Some(node.version))
                .await
            {
                Ok(stat) => node.version = stat.version,
                Err(zk::Error::BadVersion) => continue,
                Err(e) => return Err(op("set", path)(e)),
            }
            node.collect_garbage().await;
            return Ok((node, data));
        }
    }

    fn data_dir(&self) -> String {
        format!("{}.data", self.path)
    }

    /// Reads the data at `path` without claiming it (`None` if missing).
    pub async fn peek(client: &Client, path: &str) -> Result<Option<Vec<u8>>, ZkError> {
        loop {
            let pointer = match client.get_data(path).await {
                Ok((pointer, _)) => pointer,
                Err(zk::Error::NoNode) => return Ok(None),
                Err(e) => return Err(op("get", path)(e)),
            };
            let reader = VersionedNode {
                client: client.clone(),
                path: path.to_string(),
                version: 0,
                generation: None,
            };
            if let Some(data) = reader.read(&pointer).await? {
                return Ok(Some(data));
            }
        }
    }

    /// The data a pointer refers to; `None` if its generation was replaced
    /// while reading.
    async fn read(&self, pointer: &[u8]) -> Result<Option<Vec<u8>>, ZkError> {
        let Some((name, count)) = parse_pointer(pointer) else {
            return Ok(Some(Vec::new()));
        };
        let mut data = Vec::new();
        for i in 0..count {
            let chunk = format!("{}/{name}/{i}", self.data_dir());
            match self.client.get_data(&chunk).await {
                Ok((bytes, _)) => data.extend_from_slice(&bytes),
                Err(zk::Error::NoNode) => return Ok(None),
                Err(e) => return Err(op("get", &chunk)(e)),
            }
        }
        Ok(Some(data))
    }

    /// Deletes generations other than the current one (left by writers that
    /// died between building a generation and swinging the pointer).
    async fn collect_garbage(&self) {
        let Ok(children) = self.client.list_children(&self.data_dir()).await else {
            return;
        };
        for child in children {
            if Some(&child) != self.generation.as_ref() {
                self.delete_generation(&child).await;
            }
        }
    }

    async fn delete_generation(&self, name: &str) {
        let dir = format!("{}/{name}", self.data_dir());
        if let Ok(chunks) = self.client.list_children(&dir).await {
            for chunk in chunks {
                let _ = self.client.delete(&format!("{dir}/{chunk}"), None).await;
            }
        }
        let _ = self.client.delete(&dir, None).await;
    }

    /// Replaces the data if nobody wrote since this node's last read or write.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ZkError> {
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let prefix = format!("{}/gen-", self.data_dir());
        let (_, sequence) = self
            .client
            .create(&prefix, &[], &sequential)
            .await
            .map_err(op("create", &prefix))?;
        let name = format!("gen-{sequence}");
        let dir = format!("{}/{name}", self.data_dir());
        let mut count = 0;
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            let path = format!("{dir}/{i}");
            if let Err(e) = self.client.create(&path, chunk, &options).await {
                self.delete_generation(&name).await;
                return Err(op("create", &path)(e));
            }
            count = i + 1;
        }
        let pointer = format!("{name}:{count}");
        match self
            .client
            .set_data(&self.path, pointer.as_bytes(), Some(self.version))
            .await
        {
            Ok(stat) => {
                self.version = stat.version;
                if let Some(old) = self.generation.replace(name) {
                    self.delete_generation(&old).await;
                }
                Ok(())
            }
            Err(e) => {
                self.delete_generation(&name).await;
                Err(match e {
                    zk::Error::BadVersion => ZkError::Conflict {
                        path: self.path.clone(),
                    },
                    e => op("set", &self.path)(e),
                })
            }
        }
    }

    pub fn version(&self) -> i32 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = ZkUrl::parse("zk://u:p@a:2181,b:2182/mesos/").expect("url");
        assert_eq!(url.servers, "a:2181,b:2182");
        assert_eq!(url.path, "/mesos");
        assert_eq!(url.auth, Some(("u".into(), "p".into())));
        assert!(ZkUrl::parse("http://a:1/x").is_err());
        assert!(ZkUrl::parse("zk://a:1").is_err());
        assert!(ZkUrl::parse("zk://a:1/").is_err());
        assert!(ZkUrl::parse("zk://a/x").is_err());
    }

    #[test]
    fn lowest_sequence_leads() {
        let children: Vec<String> = ["json.info_0000000003", "registry", "json.info_0000000001"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            leader_child(&children).map(String::as_str),
            Some("json.info_0000000001")
        );
        assert_eq!(leader_child(&[]), None);
    }

    #[test]
    fn endpoint_from_info() {
        let info = MasterInfo {
            ip: u32::from_le_bytes([127, 0, 0, 1]),
            port: 5050,
            ..Default::default()
        };
        assert_eq!(info_endpoint(&info), "127.0.0.1:5050");
        let round = decode_info(&encode_info(&info)).expect("decode");
        assert_eq!(round.port, 5050);
    }
}
