//! A real HTTP/1.1 server on loopback for tests and the benchmark: serves
//! in-memory files with ETag / Last-Modified and honours conditional requests,
//! redirects, answers 404, and can stall mid-body. It counts requests so tests
//! can prove what was (not) downloaded.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub enum Route {
    File {
        body: Bytes,
        etag: Option<String>,
        last_modified: Option<String>,
        /// Wait this long before answering (to make fetches overlap).
        delay: Duration,
    },
    Redirect(String),
    /// Send the body in `pieces` parts with `gap` between them (slow but
    /// never stalled).
    Trickle {
        body: Bytes,
        pieces: usize,
        gap: Duration,
    },
    /// Send `head` of a body announced as `total` bytes, then go silent.
    Stall {
        head: Bytes,
        total: u64,
        silence: Duration,
    },
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    /// Every request per path.
    requests: HashMap<String, u64>,
    /// Full bodies sent (200) per path.
    bodies: HashMap<String, u64>,
    /// 304 answers per path.
    not_modified: HashMap<String, u64>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = Arc::clone(&st);
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        TestServer { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn route(&self, path: &str, route: Route) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), route);
    }

    /// Serves `body` at `path` with a strong ETag derived from its content.
    pub fn file(&self, path: &str, body: impl Into<Bytes>) {
        let body: Bytes = body.into();
        let etag = format!("\"{:x}-{}\"", fxhash(&body), body.len());
        self.route(
            path,
            Route::File {
                body,
                etag: Some(etag),
                last_modified: None,
                delay: Duration::ZERO,
            },
        );
    }

    pub fn requests(&self, path: &str) -> u64 {
        *self.state.lock().unwrap().requests.get(path).unwrap_or(&0)
    }

    pub fn bodies(&self, path: &str) -> u64 {
        *self.state.lock().unwrap().bodies.get(path).unwrap_or(&0)
    }

    pub fn not_modified(&self, path: &str) -> u64 {
        *self
            .state
            .lock()
            .unwrap()
            .not_modified
            .get(path)
            .unwrap_or(&0)
    }
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100000001b3)
    })
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let route = {
        let mut st = state.lock().unwrap();
        *st.requests.entry(path.clone()).or_default() += 1;
        st.routes.get(&path).cloned()
    };
    match route {
        None => {
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        }
        Some(Route::Redirect(to)) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            sock.write_all(head.as_bytes()).await?;
        }
        Some(Route::Stall {
            head,
            total,
            silence,
        }) => {
            let h =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n");
            sock.write_all(h.as_bytes()).await?;
            sock.write_all(&head).await?;
            sock.flush().await?;
            tokio::time::sleep(silence).await;
        }
        Some(Route::Trickle { body, pieces, gap }) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(h.as_bytes()).await?;
            let step = body.len().div_ceil(pieces.max(1));
            for part in body.chunks(step.max(1)) {
                sock.write_all(part).await?;
                sock.flush().await?;
                tokio::time::sleep(gap).await;
            }
            *state.lock().unwrap().bodies.entry(path).or_default() += 1;
        }
        Some(Route::File {
            body,
            etag,
            last_modified,
            delay,
        }) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let etag_match =
                matches!((&etag, headers.get("if-none-match")), (Some(e), Some(h)) if e == h);
            let lm_match = etag.is_none()
                && matches!((&last_modified, headers.get("if-modified-since")), (Some(l), Some(h)) if l == h);
            let mut extra = String::new();
            if let Some(e) = &etag {
                extra.push_str(&format!("ETag: {e}\r\n"));
            }
            if let Some(l) = &last_modified {
                extra.push_str(&format!("Last-Modified: {l}\r\n"));
            }
            if etag_match || lm_match {
                *state.lock().unwrap().not_modified.entry(path).or_default() += 1;
                let h = format!("HTTP/1.1 304 Not Modified\r\n{extra}Connection: close\r\n\r\n");
                sock.write_all(h.as_bytes()).await?;
            } else {
                *state.lock().unwrap().bodies.entry(path).or_default() += 1;
                let h = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    body.len()
                );
                sock.write_all(h.as_bytes()).await?;
                sock.write_all(&body).await?;
            }
        }
    }
    sock.shutdown().await?;
    Ok(())
}
