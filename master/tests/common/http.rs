//! A minimal HTTP/1.1 client on hyper: one connection per request, as Mesos
//! clients use a separate connection for the subscription stream.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    sender.send_request(req).await.expect("send")
}

/// A request answered in full: status, headers and body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, hyper::HeaderMap, Vec<u8>) {
    let resp = send(addr, method, path, headers, body).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, _, body) = call(addr, "GET", path, &[], Vec::new()).await;
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("json")
}

/// Reads RecordIO records off a streaming response.
pub struct RecordStream {
    body: Incoming,
    decoder: tepui_proto::recordio::Decoder,
    pending: std::collections::VecDeque<Bytes>,
}

impl RecordStream {
    pub fn new(body: Incoming) -> Self {
        RecordStream {
            body,
            decoder: tepui_proto::recordio::Decoder::new(),
            pending: Default::default(),
        }
    }

    /// The next record, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(r);
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                let records = self.decoder.feed(&data).expect("recordio");
                self.pending.extend(records);
            }
        }
    }
}
