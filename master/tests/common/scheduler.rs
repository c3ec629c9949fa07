//! Scheduler clients written directly against `/api/v1/scheduler`, one
//! speaking JSON and one protobuf, sharing the event plumbing.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;
use tepui_proto::v1::scheduler::{Call, Event, call, event};
use tepui_proto::v1::{
    FrameworkId, FrameworkInfo, Offer, OfferId, TaskState, TaskStatus, framework_info,
};
use tokio::sync::mpsc;

use super::http::{RecordStream, call as http_call, send};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    fn media(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }

    fn encode(self, call: &Call) -> Vec<u8> {
        match self {
            Format::Json => tepui_proto::json::to_vec(call),
            Format::Protobuf => call.encode_to_vec(),
        }
    }

    fn decode(self, bytes: &[u8]) -> Event {
        match self {
            Format::Json => tepui_proto::json::from_slice(bytes).expect("json event"),
            Format::Protobuf => Event::decode(bytes).expect("protobuf event"),
        }
    }
}

pub struct Scheduler {
    pub addr: SocketAddr,
    pub format: Format,
    pub framework_id: String,
    pub stream_id: String,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub heartbeat_interval: f64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub fn framework(name: &str, roles: &[&str]) -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        checkpoint: Some(true),
        capabilities: vec![
            framework_info::Capability {
                r#type: Some(framework_info::capability::Type::MultiRole as i32),
            },
            framework_info::Capability {
                r#type: Some(framework_info::capability::Type::PartitionAware as i32),
            },
        ],
        ..Default::default()
    }
}

impl Scheduler {
    pub async fn subscribe(addr: SocketAddr, format: Format, info: FrameworkInfo) -> Scheduler {
        Self::try_subscribe(addr, format, info)
            .await
            .expect("subscribe")
    }

    pub async fn try_subscribe(
        addr: SocketAddr,
        format: Format,
        info: FrameworkInfo,
    ) -> Result<Scheduler, (u16, String)> {
        let sub = Call {
            framework_id: info.id.clone(),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: info,
                ..Default::default()
            }),
            ..Default::default()
        };
        let resp = send(
            addr,
            "POST",
            "/api/v1/scheduler",
            &[("content-type", format.media()), ("accept", format.media())],
            format.encode(&sub),
        )
        .await;
        if resp.status() != 200 {
            let status = resp.status().as_u16();
            use http_body_util::BodyExt;
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        assert_eq!(
            resp.headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap(),
            format.media()
        );
        let stream_id = resp
            .headers()
            .get("Mesos-Stream-Id")
            .expect("Mesos-Stream-Id")
            .to_str()
            .unwrap()
            .to_string();
        let mut records = RecordStream::new(resp.into_body());
        let first = format.decode(&records.next().await.expect("SUBSCRIBED"));
        if first.r#type == Some(event::Type::Error as i32) {
            // Refused as Mesos does: 200, one ERROR, then the end.
            assert!(records.next().await.is_none(), "the stream ends");
            return Err((200, first.error.unwrap().message));
        }
        assert_eq!(first.r#type, Some(event::Type::Subscribed as i32));
        let subscribed = first.subscribed.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(r) = records.next().await {
                if tx.send(format.decode(&r)).is_err() {
                    break;
                }
            }
        });
        Ok(Scheduler {
            addr,
            format,
            framework_id: subscribed.framework_id.value,
            stream_id,
            events: rx,
            heartbeat_interval: subscribed.heartbeat_interval_seconds.unwrap_or(0.0),
            reader,
        })
    }

    pub fn id(&self) -> FrameworkId {
        FrameworkId {
            value: self.framework_id.clone(),
        }
    }

    /// Sends a call; returns the status and body.
    pub async fn send(&self, mut c: Call) -> (u16, String) {
        c.framework_id.get_or_insert(self.id());
        self.send_raw(self.format.encode(&c), Some(&self.stream_id))
            .await
    }

    pub async fn send_raw(&self, body: Vec<u8>, stream_id: Option<&str>) -> (u16, String) {
        let mut headers = vec![("content-type", self.format.media())];
        if let Some(s) = stream_id {
            headers.push(("Mesos-Stream-Id", s));
        }
        let (status, _, body) =
            http_call(self.addr, "POST", "/api/v1/scheduler", &headers, body).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn ok(&self, c: Call) {
        let (status, body) = self.send(c).await;
        assert_eq!(status, 202, "{body}");
    }

    /// The next event that is not a HEARTBEAT.
    pub async fn next(&mut self, secs: u64) -> Event {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(secs), self.events.recv())
                .await
                .expect("event in time")
                .expect("stream open");
            if e.r#type != Some(event::Type::Heartbeat as i32) {
                return e;
            }
        }
    }

    /// Waits for an event of `kind`, skipping others.
    pub async fn expect(&mut self, kind: event::Type, secs: u64) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = tokio::time::timeout(left, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind:?} in {secs}s"))
                .expect("stream open");
            if e.r#type == Some(kind as i32) {
                return e;
            }
        }
    }

    pub async fn offers(&mut self, secs: u64) -> Vec<Offer> {
        self.expect(event::Type::Offers, secs)
            .await
            .offers
            .unwrap()
            .offers
    }

    /// No OFFERS within `secs` (other events are ignored).
    pub async fn no_offers(&mut self, millis: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Err(_) => return true,
                Ok(None) => return true,
                Ok(Some(e)) if e.r#type == Some(event::Type::Offers as i32) => return false,
                Ok(Some(_)) => {}
            }
        }
    }

    pub async fn update(&mut self, secs: u64) -> TaskStatus {
        self.expect(event::Type::Update, secs)
            .await
            .update
            .unwrap()
            .status
    }

    /// Waits for an update with `state` for `task`, acknowledging every
    /// update with a uuid on the way.
    pub async fn await_state(&mut self, task: &str, state: TaskState, secs: u64) -> TaskStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let s = tokio::time::timeout(left, self.update(secs))
                .await
                .unwrap_or_else(|_| panic!("no {state:?} for {task}"));
            self.ack(&s).await;
            if s.task_id.value == task && s.state == state as i32 {
                return s;
            }
        }
    }

    pub async fn ack(&self, s: &TaskStatus) {
        if let (Some(uuid), Some(agent)) = (&s.uuid, &s.agent_id) {
            self.ok(Call {
                r#type: Some(call::Type::Acknowledge as i32),
                acknowledge: Some(call::Acknowledge {
                    agent_id: agent.clone(),
                    task_id: s.task_id.clone(),
                    uuid: uuid.clone(),
                }),
                ..Default::default()
            })
            .await;
        }
    }

    pub async fn decline(&self, offers: &[Offer], refuse_seconds: Option<f64>) {
        self.ok(Call {
            r#type: Some(call::Type::Decline as i32),
            decline: Some(call::Decline {
                offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
                filters: refuse_seconds.map(|s| tepui_proto::v1::Filters {
                    refuse_seconds: Some(s),
                }),
            }),
            ..Default::default()
        })
        .await;
    }

    pub async fn simple(&self, kind: call::Type) {
        self.ok(Call {
            r#type: Some(kind as i32),
            ..Default::default()
        })
        .await;
    }

    pub fn offer_ids(offers: &[Offer]) -> Vec<OfferId> {
        offers.iter().map(|o| o.id.clone()).collect()
    }
}
