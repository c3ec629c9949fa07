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
    url: String,
    stream_id: RwLock<Option<String>>,
    /// `Authorization` for every request (the agent's `--credential`).
    authorization: Option<String>,
}

impl HttpLink {
    /// `master` is `host:port` or an `http(s)://` URL (Mesos's `--master`;
    /// ZooKeeper URLs are not supported).
    pub fn new(master: &str) -> Result<Self, LinkError> {
        let base = if master.starts_with("http://") || master.starts_with("https://") {
            master.trim_end_matches('/').to_string()
        } else if master.starts_with("zk://") {
            return Err(LinkError::Transport {
                url: master.to_string(),
                message: "ZooKeeper master detection is not supported: give host:port".into(),
            });
        } else {
            format!("http://{}", master.trim_end_matches('/'))
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LinkError::Transport {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            url: format!("{base}{LINK_PATH}"),
            stream_id: RwLock::new(None),
            authorization: None,
        })
    }

    /// Authenticates to the master with HTTP Basic.
    pub fn with_credential(mut self, credential: Option<&tepui_proto::auth::Credential>) -> Self {
        self.authorization =
            credential.map(|c| tepui_proto::auth::basic_header(&c.principal, &c.secret));
        self
    }

    fn transport(&self, e: impl std::fmt::Display) -> LinkError {
        LinkError::Transport {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    async fn post(
        &self,
        call: &AgentCall,
        with_stream: bool,
    ) -> Result<reqwest::Response, LinkError> {
        let mut request = self
            .client
            .post(&self.url)
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
                url: self.url.clone(),
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
            let response = self.post(&call, false).await?;
            let stream_id = response
                .headers()
                .get(STREAM_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            *self.stream_id.write().unwrap_or_else(|e| e.into_inner()) = stream_id;
            let url = self.url.clone();
            Ok(decode_events(url, response.bytes_stream()))
        })
    }

    fn send(&self, call: AgentCall) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move { self.post(&call, true).await.map(|_| ()) })
    }

    fn describe(&self) -> String {
        self.url.clone()
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
