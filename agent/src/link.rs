//! The agent's side of the link to a master (`proto/protos/tepui/link/v1`),
//! behind the [`MasterLink`] trait so the master stays pluggable: the agent
//! only needs "subscribe and get a stream of events" and "send a call".
//! [`HttpLink`] is the real one: SUBSCRIBE is a long-lived POST answered with
//! a RecordIO stream of protobuf `MasterEvent`s; every other call is its own
//! POST carrying the stream id the master handed out.

use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

use futures_util::{Stream, StreamExt, future::BoxFuture};
use prost::Message;
use tepui_proto::link::{AgentCall, MasterEvent};
use tokio::sync::watch;

use crate::record_stream::StreamFault;

pub const LINK_PATH: &str = "/tepui/link/v1";
pub const STREAM_ID_HEADER: &str = "Tepui-Link-Stream-Id";
pub const LINK_PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("master {url}: {message}")]
    Transport { url: String, message: String },
    #[error("master {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("master {url} sent a malformed event stream: {message}")]
    Stream { url: String, message: String },
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<MasterEvent, LinkError>> + Send>>;

pub trait MasterLink: Send + Sync + 'static {
    /// Opens the event stream with a SUBSCRIBE call.
    fn subscribe(&self, call: AgentCall) -> BoxFuture<'_, Result<EventStream, LinkError>>;
    /// Sends any other call on the current subscription.
    fn send(&self, call: AgentCall) -> BoxFuture<'_, Result<(), LinkError>>;
    /// Where the master is, for logs and `/state`.
    fn describe(&self) -> String;
}

/// The link over HTTP.
pub struct HttpLink {
    client: reqwest::Client,
    /// The link endpoint of the master in use.
    url: RwLock<String>,
    stream_id: RwLock<Option<String>>,
    /// With `--master=zk://...`: the detector of the leading master,
    /// started on first use (it needs the runtime).
    zk: Option<Detector>,
    /// `Authorization` for every request (the agent's `--credential`).
    authorization: Option<String>,
    /// `http`, or `https` with SSL enabled: towards leaders found in ZooKeeper.
    scheme: &'static str,
}

struct Detector {
    url: tepui_proto::zk::ZkUrl,
    leader: tokio::sync::Mutex<Option<watch::Receiver<Option<tepui_proto::zk::Leader>>>>,
}

/// The ZooKeeper session timeout of the agent's detector.
const DETECTOR_SESSION: Duration = Duration::from_secs(10);
/// How long a subscription waits for a leading master to be elected.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How soon a subscription that failed tries the leading master again.
const LEADER_RETRY: Duration = Duration::from_millis(250);

impl HttpLink {
    /// `master` is `host:port`, an `http(s)://` URL or a
    /// `zk://host:port[,host:port]/path` URL: then the link follows the
    /// leading master elected there, re-registering whenever it changes.
    pub fn new(master: &str) -> Result<Self, LinkError> {
        Self::with_tls(master, &tepui_proto::tls::TlsSettings::default())
    }

    /// Like [`HttpLink::new`], with Mesos's SSL settings: a master given
    /// without a scheme (and every leader found in ZooKeeper, whose
    /// MasterInfo has none) is reached over `https` when SSL is enabled;
    /// the CA file is trusted and the agent's certificate is its client
    /// certificate.
    pub fn with_tls(master: &str, tls: &tepui_proto::tls::TlsSettings) -> Result<Self, LinkError> {
        let scheme = tls.scheme();
        let mut zk = None;
        let base = if master.starts_with("http://") || master.starts_with("https://") {
            master.trim_end_matches('/').to_string()
        } else if master.starts_with("zk://") {
            let url = tepui_proto::zk::ZkUrl::parse(master).map_err(|e| LinkError::Transport {
                url: master.to_string(),
                message: e.to_string(),
            })?;
            zk = Some(Detector {
                url,
                leader: tokio::sync::Mutex::new(None),
            });
            master.to_string()
        } else {
            format!("{scheme}://{}", master.trim_end_matches('/'))
        };
        let builder = crate::tls::settings_builder(tls).map_err(|e| LinkError::Transport {
            url: base.clone(),
            message: e.to_string(),
        })?;
        let client = builder
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LinkError::Transport {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            url: RwLock::new(format!("{base}{LINK_PATH}")),
            stream_id: RwLock::new(None),
            zk,
            authorization: None,
            scheme,
        })
    }

    /// Authenticates to the master with HTTP Basic.
    pub fn with_credential(mut self, credential: Option<&tepui_proto::auth::Credential>) -> Self {
        self.authorization =
            credential.map(|c| tepui_proto::auth::basic_header(&c.principal, &c.secret));
        self
    }

    fn url(&self) -> String {
        self.url.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn transport(&self, e: impl std::fmt::Display) -> LinkError {
        LinkError::Transport {
            url: self.url(),
            message: e.to_string(),
        }
    }

    /// The detector's view of the leader (starting the detector).
    async fn leader_watch(detector: &Detector) -> watch::Receiver<Option<tepui_proto::zk::Leader>> {
        let mut slot = detector.leader.lock().await;
        slot.get_or_insert_with(|| tepui_proto::zk::detect(detector.url.clone(), DETECTOR_SESSION))
            .clone()
    }

    /// Subscribes to the leading master, waiting for one to be elected and
    /// retrying at once when a failed attempt is followed by a new leader.
    /// The stream ends when another master takes the lead.
    async fn subscribe_leader(
        &self,
        detector: &Detector,
        call: AgentCall,
    ) -> Result<EventStream, LinkError> {
        let mut leaders = Self::leader_watch(detector).await;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = tokio::time::timeout(LEADER_WAIT, leaders.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|r| r.ok().and_then(|l| l.clone()))
                .ok_or_else(|| LinkError::Transport {
                    url: detector.url.path.clone(),
                    message: format!("no leading master elected within {LEADER_WAIT:?}"),
                })?;
            *self.url.write().unwrap_or_else(|e| e.into_inner()) =
                format!("{}://{}{LINK_PATH}", self.scheme, leader.endpoint());
            match self.subscribe_at(call.clone()).await {
                Ok(events) => {
                    let mut changes = leaders.clone();
                    let child = leader.child.clone();
                    let changed = async move {
                        let _ = changes
                            .wait_for(|l| l.as_ref().is_none_or(|l| l.child != child))
                            .await;
                    };
                    tracing::info!(master = %leader.endpoint(), "subscribed to the leading master");
                    return Ok(Box::pin(events.take_until(changed)));
                }
                Err(e) => {
                    // A leader that died keeps its znode until its session
                    // expires, and a new one answers 503 while it recovers:
                    // retry soon, at once when the leader changes.
                    if tokio::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    tracing::debug!("leading master not ready: {e}");
                    let _ = tokio::time::timeout(LEADER_RETRY, leaders.changed()).await;
                }
            }
        }
    }

    async fn subscribe_at(&self, call: AgentCall) -> Result<EventStream, LinkError> {
        let response = self.post(&call, false).await?;
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        *self.stream_id.write().unwrap_or_else(|e| e.into_inner()) = stream_id;
        Ok(decode_events(self.url(), response.bytes_stream()))
    }

    async fn post(
        &self,
        call: &AgentCall,
        with_stream: bool,
    ) -> Result<reqwest::Response, LinkError> {
        let url = self.url();
        let mut request = self
            .client
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .header("Accept", "application/x-protobuf")
            .body(call.encode_to_vec());
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        if with_stream
            && let Some(id) = self
                .stream_id
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        {
            request = request.header(STREAM_ID_HEADER, id);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(LinkError::Refused {
                url,
                status: status.as_u16(),
                body,
            });
        }
        Ok(response)
    }
}

impl MasterLink for HttpLink {
    fn subscribe(&self, call: AgentCall) -> BoxFuture<'_, Result<EventStream, LinkError>> {
        Box::pin(async move {
            match &self.zk {
                Some(detector) => self.subscribe_leader(detector, call).await,
                None => self.subscribe_at(call).await,
            }
        })
    }

    fn send(&self, call: AgentCall) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move { self.post(&call, true).await.map(|_| ()) })
    }

    fn describe(&self) -> String {
        self.url()
    }
}

/// Turns a RecordIO byte stream into protobuf events.
fn decode_events<S>(url: String, bytes: S) -> EventStream
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
{
    Box::pin(
        crate::record_stream::decode::<MasterEvent, _>(bytes).map(move |item| {
            item.map_err(|fault| match fault {
                StreamFault::Transport(message) => LinkError::Transport {
                    url: url.clone(),
                    message,
                },
                StreamFault::Malformed(message) => LinkError::Stream {
                    url: url.clone(),
                    message,
                },
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_without_a_scheme_is_reached_over_https_with_ssl_enabled() {
        let on = tepui_proto::tls::TlsSettings {
            enabled: true,
            ..Default::default()
        };
        let link = HttpLink::with_tls("127.0.0.1:5050", &on).expect("link");
        assert_eq!(link.describe(), "https://127.0.0.1:5050/tepui/link/v1");
        assert_eq!(link.scheme, "https");
        let link = HttpLink::with_tls("http://m:5050/", &on).expect("link");
        assert_eq!(link.describe(), "http://m:5050/tepui/link/v1");
        let link = HttpLink::new("127.0.0.1:5050").expect("link");
        assert_eq!(link.describe(), "http://127.0.0.1:5050/tepui/link/v1");
        let missing = tepui_proto::tls::TlsSettings {
            enabled: true,
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert!(HttpLink::with_tls("m:5050", &missing).is_err());
    }
}
