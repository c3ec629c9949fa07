//! Sending libprocess messages to one peer (a scheduler driver): an
//! ordered queue, one persistent connection, and the peer's death.
//!
//! libprocess sends a message as an HTTP POST of its body to
//! `/<receiver id>/<message name>` on a connection it keeps per peer
//! (3rdparty/libprocess/src/encoder.hpp, `MessageEncoder::encode`;
//! `SocketManager::send`), and `link()`s to a peer to learn when it exits:
//! the linked socket breaking is the peer's `ExitedEvent`
//! (process.cpp, `SocketManager::close`). Here the sending connection is
//! the link. HTTP servers also close idle connections (Go's closes one
//! after its read timeout), so a closed connection is only an exit when
//! the peer cannot be connected to again.

use std::collections::VecDeque;
use std::time::Duration;

use crate::v0::Upid;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// How long connecting to a peer may take before it counts as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnections in a row that carry nothing through before the peer
/// counts as gone (a peer that accepts and closes at once).
const MAX_FRUITLESS_RECONNECTS: u32 = 5;
/// Largest response head or body accepted from a peer (libprocess peers
/// answer an empty 202).
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// The sending end of a peer's queue. Cheap to clone; the connection
/// closes once every clone is dropped and the queue is sent.
#[derive(Clone, Debug)]
pub struct Peer {
    pub pid: Upid,
    tx: mpsc::Sender<Bytes>,
}

/// The queue is full: the peer has stopped reading.
#[derive(Debug)]
pub struct Full;

impl Peer {
    /// Connects to `to` (an unreachable pid is refused here, before anything
    /// is registered for it) and starts sending what is queued, as `from`.
    /// The receiver resolves with the reason once the peer is gone.
    pub async fn open(
        to: Upid,
        queue: usize,
    ) -> std::io::Result<(Peer, oneshot::Receiver<String>)> {
        let stream = connect(&to).await?;
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (exited_tx, exited_rx) = oneshot::channel();
        let pid = to.clone();
        tokio::spawn(async move {
            if let Some(reason) = run(to, stream, rx).await {
                let _ = exited_tx.send(reason);
            }
        });
        Ok((Peer { pid, tx }, exited_rx))
    }

    /// Queues message `name` with protobuf `body`; fails when the peer's
    /// queue is full (it stopped reading) or the peer is gone.
    pub fn send(&self, from: &str, name: &str, body: &[u8]) -> Result<(), Full> {
        let request = encode(from, &self.pid, name, body);
        self.tx.try_send(request).map_err(|_| Full)
    }
}

async fn connect(to: &Upid) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to.addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The request libprocess's `MessageEncoder` would write, with the
/// `Libprocess-From` form of the sender (which receivers answer with 202)
/// and a length instead of chunks.
pub fn encode(from: &str, to: &Upid, name: &str, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 256);
    out.extend_from_slice(
        format!(
            "POST /{}/{} HTTP/1.1\r\nHost: {}\r\nLibprocess-From: {}\r\n\
             Connection: Keep-Alive\r\nContent-Type: application/x-protobuf\r\n\
             Content-Length: {}\r\n\r\n",
            to.id,
            name,
            to.addr,
            from,
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out.freeze()
}

/// Sends until the queue closes (`None`: done) or the peer is gone
/// (`Some(reason)`). Requests not yet answered when a connection closes
/// are sent again on the next one, so a message written as the peer
/// closed an idle connection is not lost.
async fn run(to: Upid, first: TcpStream, mut rx: mpsc::Receiver<Bytes>) -> Option<String> {
    let mut unanswered: VecDeque<Bytes> = VecDeque::new();
    let mut stream = Some(first);
    let mut fruitless = 0u32;
    loop {
        let conn = match stream.take() {
            Some(s) => s,
            None => match connect(&to).await {
                Ok(s) => s,
                Err(e) => return Some(format!("cannot reconnect to {to}: {e}")),
            },
        };
        let (rd, mut wr) = conn.into_split();
        let (answers_tx, mut answers) = mpsc::unbounded_channel::<u16>();
        let reader = tokio::spawn(read_responses(rd, answers_tx));
        let mut progressed = false;
        let mut broken = false;
        for request in &unanswered {
            if wr.write_all(request).await.is_err() {
                broken = true;
                break;
            }
        }
        while !broken {
            tokio::select! {
                request = rx.recv() => {
                    let Some(request) = request else {
                        reader.abort();
                        return None;
                    };
                    let written = wr.write_all(&request).await;
                    unanswered.push_back(request);
                    if written.is_err() {
                        broken = true;
                    }
                }
                answer = answers.recv() => match answer {
                    Some(code) => {
                        unanswered.pop_front();
                        progressed = true;
                        if code >= 400 {
                            tracing::warn!(peer = %to, code, "a libprocess peer refused a message");
                        }
                    }
                    None => broken = true,
                },
            }
        }
        reader.abort();
        if progressed || unanswered.is_empty() {
            fruitless = 0;
        } else {
            fruitless += 1;
            if fruitless > MAX_FRUITLESS_RECONNECTS {
                return Some(format!("{to} keeps closing connections unanswered"));
            }
        }
        // Not a busy loop against a peer that accepts and closes at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads HTTP responses and reports their status codes in order; returns
/// (dropping `answers`) when the connection closes or misbehaves.
async fn read_responses(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    answers: mpsc::UnboundedSender<u16>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let code = loop {
            match parse_response(&mut buf) {
                Ok(Some(code)) => break code,
                Ok(None) => {}
                Err(()) => return,
            }
            if buf.len() > MAX_RESPONSE_BYTES {
                return;
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        if answers.send(code).is_err() {
            return;
        }
    }
}

/// Takes one complete response off the front of `buf`: its status code,
/// `None` while incomplete, `Err` when it is not HTTP.
fn parse_response(buf: &mut BytesMut) -> Result<Option<u16>, ()> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().ok_or(())?;
    let code: u16 = status
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or(())?;
    let mut length = 0usize;
    let mut chunked = false;
    for line in lines {
        let (k, v) = line.split_once(':').ok_or(())?;
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().map_err(|_| ())?;
        } else if k.eq_ignore_ascii_case("transfer-encoding")
            && v.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let body_start = head_end + 4;
    let total = if chunked {
        match chunked_len(&buf[body_start..])? {
            Some(n) => body_start + n,
            None => return Ok(None),
        }
    } else {
        body_start + length
    };
    if buf.len() < total {
        return Ok(None);
    }
    let _ = buf.split_to(total);
    Ok(Some(code))
}

/// The length of a complete chunked body at the front of `body`.
fn chunked_len(body: &[u8]) -> Result<Option<usize>, ()> {
    let mut at = 0;
    loop {
        let Some(eol) = body[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[at..at + eol]).map_err(|_| ())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ())?;
        at += eol + 2;
        if size == 0 {
            // Trailers are not expected: the final CRLF.
            if body.len() < at + 2 {
                return Ok(None);
            }
            return Ok(Some(at + 2));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_taken_one_at_a_time() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nab"[..],
        );
        assert_eq!(parse_response(&mut buf), Ok(Some(202)));
        assert_eq!(parse_response(&mut buf), Ok(None));
        buf.extend_from_slice(b"c");
        assert_eq!(parse_response(&mut buf), Ok(Some(404)));
        assert!(buf.is_empty());
        let mut chunked = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
        );
        assert_eq!(parse_response(&mut chunked), Ok(Some(200)));
        assert!(chunked.is_empty());
        let mut junk = BytesMut::from(&b"SSH-2.0\r\n\r\n"[..]);
        assert_eq!(parse_response(&mut junk), Err(()));
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_fills_its_bounded_queue() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to: Upid = format!("scheduler(1)@{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        // Accepts, then never reads a byte.
        let held = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(conn);
        });
        let (peer, _exited) = Peer::open(to, 4).await.unwrap();
        let body = vec![0u8; 1 << 20];
        let mut sent = 0;
        let full = loop {
            match peer.send("master@127.0.0.1:1", "mesos.internal.X", &body) {
                Ok(()) => sent += 1,
                Err(Full) => break true,
            }
            assert!(sent < 256, "the queue never filled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(full);
        held.abort();
    }

    #[tokio::test]
    async fn a_peer_that_cannot_be_reached_again_has_exited() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to: Upid = format!("scheduler(1)@{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let (peer, exited) = Peer::open(to, 4).await.unwrap();
        // The process is gone: its listening socket and connection close.
        let (conn, _) = listener.accept().await.unwrap();
        drop(conn);
        drop(listener);
        let reason = tokio::time::timeout(Duration::from_secs(10), exited)
            .await
            .expect("the exit is noticed")
            .expect("a reason");
        assert!(reason.contains("cannot reconnect"), "{reason}");
        drop(peer);
    }

    #[test]
    fn requests_are_what_libprocess_receivers_parse() {
        let to: Upid = "scheduler(1)@127.0.0.1:4000".parse().unwrap();
        let req = encode(
            "master@127.0.0.1:5050",
            &to,
            "mesos.internal.X",
            b"\x0a\x00",
        );
        let text = String::from_utf8_lossy(&req);
        assert!(text.starts_with("POST /scheduler(1)/mesos.internal.X HTTP/1.1\r\n"));
        assert!(text.contains("\r\nLibprocess-From: master@127.0.0.1:5050\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n\x0a\x00"));
    }
}
