//! The HTTP/1.1 server both daemons run, with limits against hostile
//! clients: a cap on connections overall and per client IP (connections
//! beyond it are closed as soon as they are accepted), a deadline for each
//! request head (slowloris; it also bounds how long an idle keep-alive
//! connection waits for its next request) and a default cap on buffered
//! request bodies (413), and a deadline for a stalled write (a client that
//! stopped reading).
//!
//! Long-lived responses (event streams, long polls) are not timed: once a
//! request head has arrived the connection lives as long as its response.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Limits on what clients may hold of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client IP.
    pub max_connections_per_ip: usize,
    /// A client must send a whole request head within this; an idle
    /// keep-alive connection is closed after it too.
    pub header_read_timeout: Duration,
    /// A connection whose writes make no progress this long (a client that
    /// stopped reading its response) is closed. Idle streams are not
    /// affected: only a pending write is timed.
    pub write_timeout: Duration,
    /// Largest request body a handler buffers (`Bytes` extractors); beyond
    /// it the answer is 413. Streaming handlers set their own caps.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 16_384,
            max_connections_per_ip: 4_096,
            header_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            max_body_bytes: 8 << 20,
        }
    }
}

/// Open connections, overall and per client IP.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; gives its slot back when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

fn admit(counts: &Arc<Mutex<Counts>>, limits: &Limits, ip: IpAddr) -> Option<Slot> {
    let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
    let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
    if c.total >= limits.max_connections || from_ip >= limits.max_connections_per_ip {
        return None;
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_insert(0) += 1;
    Some(Slot {
        counts: Arc::clone(counts),
        ip,
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets open connections finish their requests and returns once
/// they are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let router = router.layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or a connection reset before
                    // accept): wait a moment instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let Some(slot) = admit(&counts, &limits, peer.ip()) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, "connection limit reached: closing new connections");
            }
            drop(stream);
            continue;
        };
        let abort = Arc::new(AtomicBool::new(false));
        let stream = WriteDeadline::new(stream, limits.write_timeout, Arc::clone(&abort));
        spawn_connection(
            stream,
            limits.header_read_timeout,
            abort,
            Connection::new(peer, local),
            slot,
            tls.clone(),
            http.clone(),
            router.clone(),
            stopped.clone(),
        );
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    stop.closed().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn spawn_connection(
    stream: WriteDeadline,
    header_timeout: Duration,
    abort: Arc<AtomicBool>,
    conn: Connection,
    slot: Slot,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let _slot = slot;
        let peer = conn.peer;
        let Some(tls) = tls else {
            let mut http = http;
            match first_request(&stream.stream, header_timeout).await {
                // The head did not come in time: closed, as hyper would.
                FirstRequest::TimedOut => return,
                FirstRequest::Libprocess => {
                    http.header_read_timeout(None);
                }
                FirstRequest::Other => {}
            }
            return drive(TokioIo::new(stream), &abort, conn, http, router, stopped).await;
        };
        // In the connection's own task: a slow handshake holds up nobody,
        // and it counts against the client's connection slot.
        match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
            Ok(Ok(stream)) => {
                drive(TokioIo::new(stream), &abort, conn, http, router, stopped).await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    });
}

/// What the first request on a plain connection is.
enum FirstRequest {
    /// A libprocess message (a POST with `Libprocess-From`, or
    /// `User-Agent: libprocess/...`). libprocess peers (libmesos's drivers)
    /// keep one connection per peer and take its close for the peer's exit
    /// (`link()`; src/exec/exec.cpp `exited`: an executor driver shuts its
    /// executor down when its agent "exits"), so such a connection is not
    /// closed for idling between messages.
    Libprocess,
    Other,
    /// No whole head within the header timeout (slowloris).
    TimedOut,
}

/// Looks at the first request head on `stream` without consuming it.
async fn first_request(stream: &TcpStream, wait: Duration) -> FirstRequest {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            // Closed or failed: hyper finds out.
            Ok(_) => return FirstRequest::Other,
            Err(_) => return FirstRequest::TimedOut,
        };
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return if is_libprocess_head(&buf[..end]) {
                FirstRequest::Libprocess
            } else {
                FirstRequest::Other
            };
        }
        if n == buf.len() {
            return FirstRequest::Other;
        }
        if tokio::time::Instant::now() >= deadline {
            return FirstRequest::TimedOut;
        }
        // The head is still arriving: peek returns at once while there is
        // data, so wait a moment instead of spinning.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_libprocess_head(head: &[u8]) -> bool {
    let Ok(head) = std::str::from_utf8(head) else {
        return false;
    };
    let mut lines = head.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("POST ")) {
        return false;
    }
    lines.any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let value = value.trim();
        name.eq_ignore_ascii_case("libprocess-from")
            || (name.eq_ignore_ascii_case("user-agent") && value.starts_with("libprocess/"))
    })
}

/// The TCP connection a request came on, in every request's extensions:
/// handlers may identify the client by it (the agent asks the kernel who
/// holds the other end of a loopback connection). `memo` keeps what a
/// handler learned about the connection for its later requests.
#[derive(Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub memo: Arc<std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>>,
}

impl Connection {
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        Connection {
            peer,
            local,
            memo: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The router, with the request's [`Connection`] added to its extensions.
struct WithConnection {
    inner: TowerToHyperService<Router>,
    conn: Connection,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for WithConnection {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
    >>::Response;
    type Error = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
    >>::Error;
    type Future = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
    >>::Future;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.conn.clone());
        self.inner.call(req)
    }
}

/// Serves one connection until it closes, or gracefully once `stopped`.
/// A connection whose response body broke (a subscriber cut for reading
/// too slowly) is closed abortively through `abort`.
async fn drive<I>(
    io: I,
    abort: &AtomicBool,
    conn: Connection,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let service = WithConnection {
        inner: TowerToHyperService::new(router),
        conn,
    };
    // Upgrades: the master's web UI terminal is a websocket.
    let conn = http.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection closed");
        // A body that failed mid-stream: whatever still sits in the socket's
        // send queue is part of a response the client can no longer use.
        // A graceful close would queue the FIN behind it and keep megabytes
        // of kernel memory per stalled client while the zero window is
        // probed; a reset drops it and tells the client at once.
        if e.is_user() {
            abort.store(true, Ordering::Relaxed);
        }
    }
}

/// A TCP stream whose writes fail with `TimedOut` once one has been
/// pending (the peer's receive window closed) for longer than the limit.
/// Closed with a reset instead of a FIN when `abort` is set by the time
/// it is dropped.
struct WriteDeadline {
    stream: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    abort: Arc<AtomicBool>,
}

impl WriteDeadline {
    fn new(stream: TcpStream, limit: Duration, abort: Arc<AtomicBool>) -> Self {
        WriteDeadline {
            stream,
            limit,
            stalled: None,
            abort,
        }
    }

    /// Makes the coming close abortive (RST).
    fn reset_on_close(&self) {
        // A zero linger never blocks on drop (only a positive one does,
        // which is what the deprecation warns about).
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
    }

    /// After a pending write: starts or checks the stall timer.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // An abortive close (RST): the data the client never read
                // is dropped at once and the client learns the connection
                // is gone, instead of the kernel probing a zero window until
                // TCP_USER_TIMEOUT silently discards the socket.
                self.reset_on_close();
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        result: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match result {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl Drop for WriteDeadline {
    fn drop(&mut self) {
        if self.abort.load(Ordering::Relaxed) {
            self.reset_on_close();
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libprocess_messages_are_told_apart_by_their_head() {
        assert!(is_libprocess_head(
            b"POST /master/mesos.internal.X HTTP/1.1\r\nHost: a\r\nLibprocess-From: scheduler(1)@127.0.0.1:9"
        ));
        assert!(is_libprocess_head(
            b"POST /slave(1)/mesos.internal.X HTTP/1.1\r\nUser-Agent: libprocess/executor(1)@127.0.0.1:9"
        ));
        assert!(!is_libprocess_head(
            b"GET /master/state HTTP/1.1\r\nLibprocess-From: scheduler(1)@127.0.0.1:9"
        ));
        assert!(!is_libprocess_head(
            b"POST /api/v1/scheduler HTTP/1.1\r\nUser-Agent: curl/8"
        ));
    }

    #[test]
    fn admits_up_to_the_caps() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = admit(&counts, &limits, a);
        let second = admit(&counts, &limits, a);
        assert!(first.is_some() && second.is_some());
        assert!(admit(&counts, &limits, a).is_none(), "per-IP cap");
        let third = admit(&counts, &limits, b);
        assert!(third.is_some());
        assert!(admit(&counts, &limits, b).is_none(), "overall cap");
        drop(first);
        assert!(admit(&counts, &limits, a).is_some(), "a slot came back");
    }
}
