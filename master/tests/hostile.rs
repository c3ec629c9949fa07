//! Hostile clients against a master in-process: thousands of idle
//! connections and a slowloris do not keep a scheduler from its offers, an
//! operator subscriber that never reads is dropped while the master's
//! memory stays flat, and an oversized body gets 413. Loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::agent::TestAgent;
use common::scheduler::{Format, Scheduler, framework};
use tepui_proto::server::Limits;
use tepui_proto::v1::scheduler::call;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// One at a time: they measure the process's memory and load the machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read a plain struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A TCP connection from `from` (another loopback address) to `to`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// The master's side of connections from `from`: ESTABLISHED sockets with
/// local port `port` in /proc/net/tcp (this process's network namespace).
fn established_from(port: u16, from: [u8; 4]) -> usize {
    let local = format!(":{port:04X}");
    let remote = format!(
        "{:02X}{:02X}{:02X}{:02X}:",
        from[3], from[2], from[1], from[0]
    );
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[2].starts_with(&remote) && f[3] == "01"
        })
        .count()
}

/// Bytes the kernel still holds to send on the master's closed
/// (FIN-WAIT-1) connections on `port`: what a graceful close of a stalled
/// stream leaves behind until the zero-window probes give up.
fn closed_unsent_bytes(port: u16) -> u64 {
    let local = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 4 && f[1].ends_with(&local) && f[3] == "04").then(|| {
                let tx = f[4].split(':').next().unwrap_or("0");
                u64::from_str_radix(tx, 16).unwrap_or(0)
            })
        })
        .sum()
}

fn vm_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_a_slowloris_do_not_stop_a_scheduler() {
    let _serial = SERIAL.lock().await;
    let nofile = raise_nofile(65_536);
    let per_ip = 1_000;
    let attempts: usize = if nofile >= 16_384 { 10_000 } else { 2_000 };
    let mut config = common::config();
    config.http_limits = Limits {
        max_connections_per_ip: per_ip,
        header_read_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let master = common::master_with(config).await;
    let attacker: IpAddr = [127, 0, 0, 2].into();

    // The idle flood: every connection opens, none sends a byte.
    let started = Instant::now();
    let mut idle = Vec::with_capacity(attempts);
    for chunk in 0..attempts.div_ceil(250) {
        let n = 250.min(attempts - chunk * 250);
        let batch =
            futures_util::future::join_all((0..n).map(|_| connect_from(attacker, master.addr)))
                .await;
        idle.extend(batch.into_iter().filter_map(Result::ok));
    }
    let connected = idle.len();
    // The slowloris: a request head trickled one byte at a time.
    let mut slow = connect_from([127, 0, 0, 3].into(), master.addr)
        .await
        .unwrap();
    let slow_started = Instant::now();
    let trickle = tokio::spawn(async move {
        let head = b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for b in head {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });

    // A scheduler and an agent (from 127.0.0.1) still get through.
    let agent = TestAgent::start(master.addr, "cpus:2;mem:1024", true).await;
    let subscribed_at = Instant::now();
    let mut s =
        Scheduler::subscribe(master.addr, Format::Json, framework("under-fire", &["*"])).await;
    let offers = s.offers(10).await;
    let offered_after = subscribed_at.elapsed();
    assert_eq!(offers[0].agent_id.value, agent.id());

    // Beyond the per-IP cap the flood was closed at once: the master holds
    // at most the cap (counted on its side: under load the kernel completes
    // handshakes it then drops from a full accept queue, which the client
    // side would count as open).
    let open = established_from(master.addr.port(), [127, 0, 0, 2]);
    assert!(open <= per_ip, "{open} idle connections open, cap {per_ip}");
    if connected > per_ip {
        assert!(open > 0, "the flood was admitted up to the cap");
    }
    // The slowloris is cut at the head deadline, long before its head ends.
    let mut slow = trickle.await.unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(10)).await);
    let slow_cut = slow_started.elapsed();
    assert!(slow_cut < Duration::from_secs(14), "{slow_cut:?}");
    // And the idle ones that were admitted time out the same way (slots
    // freed by the first ones go to later ones still in the listen backlog:
    // give those their deadline too).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut kept = established_from(master.addr.port(), [127, 0, 0, 2]);
    while kept > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        kept = established_from(master.addr.port(), [127, 0, 0, 2]);
    }
    println!(
        "nofile {nofile}: {connected} of {attempts} idle connections in {:?}, {open} admitted (cap {per_ip}), {kept} still open after the head deadline; slowloris cut after {slow_cut:?}; offers {offered_after:?} after subscribing",
        started.elapsed()
    );
    assert_eq!(kept, 0, "idle connections outlived the deadline");
    drop(idle);
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_subscriber_that_never_reads_is_dropped() {
    let _serial = SERIAL.lock().await;
    let mut config = common::config();
    config.subscriber_queue = 256;
    config.http_limits = Limits {
        write_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let master = common::master_with(config).await;
    // SUBSCRIBE with a tiny receive window, then never read.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut silent = socket.connect(master.addr).await.unwrap();
    let body = br#"{"type":"SUBSCRIBE"}"#;
    let head = format!(
        "POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    silent.write_all(head.as_bytes()).await.unwrap();
    silent.write_all(body).await.unwrap();
    // Another operator subscriber that reads everything as it arrives (in
    // protobuf: its stream costs the master no JSON encoding).
    let reading = common::http::send(
        master.addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/x-protobuf"),
        ],
        body.to_vec(),
    )
    .await;
    assert_eq!(reading.status(), 200);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let read = read.clone();
        let mut records = common::http::RecordStream::new(reading.into_body());
        tokio::spawn(async move {
            while records.next().await.is_some() {
                read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    common::eventually(5, async || {
        (master.shared.lock().operator_subscribers.len() == 2).then_some(())
    })
    .await;

    // Frameworks with 64 KiB of labels come and go: every FRAMEWORK_ADDED /
    // REMOVED event is big.
    let mut info = framework("big", &["*"]);
    info.labels = Some(tepui_proto::v1::Labels {
        labels: vec![tepui_proto::v1::Label {
            key: "padding".into(),
            value: Some("x".repeat(64 << 10)),
        }],
    });
    let cycle = async |info: &tepui_proto::v1::FrameworkInfo| {
        let s = Scheduler::subscribe(master.addr, Format::Protobuf, info.clone()).await;
        s.simple(call::Type::Teardown).await;
    };
    for _ in 0..100 {
        cycle(&info).await;
    }
    let warm = vm_rss_kb();
    let cycles = 1000;
    let started = Instant::now();
    for _ in 0..cycles {
        cycle(&info).await;
    }
    let after = vm_rss_kb();
    let subscribers = master.shared.lock().operator_subscribers.len();
    let grown_mb = after.saturating_sub(warm) / 1024;
    println!(
        "{cycles} subscribe/teardown cycles (~{} MiB of events) in {:?}: RSS {} -> {} MiB, operator subscribers left {subscribers}",
        cycles * 2 * 64 / 1024,
        started.elapsed(),
        warm / 1024,
        after / 1024
    );
    assert_eq!(
        subscribers, 1,
        "the silent subscriber was dropped, the reader kept"
    );
    assert!(!reader.is_finished(), "the reader's stream goes on");
    let events = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        events >= 2 * (cycles + 100),
        "the reader got {events} events"
    );
    // Unbounded, the queue alone would hold ~125 MiB.
    assert!(grown_mb < 50, "RSS grew {grown_mb} MiB");
    // Its connection is closed too (the stalled write timed out).
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Closed with a reset: no megabytes left queued in the kernel for a
    // client that will never read them.
    assert_eq!(closed_unsent_bytes(master.addr.port()), 0);
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    reader.abort();
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_outlive_the_head_deadline() {
    let _serial = SERIAL.lock().await;
    let mut config = common::config();
    config.http_limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let master = common::master_with(config).await;
    let agent = TestAgent::start(master.addr, "cpus:2;mem:1024", false).await;
    let mut s = Scheduler::subscribe(master.addr, Format::Json, framework("patient", &["*"])).await;
    let offers = s.offers(5).await;
    s.decline(&offers, Some(0.0)).await;
    // Four head deadlines later the scheduler stream (heartbeats every
    // second) and the agent's link are both still there.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let offers = s.offers(5).await;
    assert_eq!(offers[0].agent_id.value, agent.id());
    let master_state = master.shared.lock();
    let fw = master_state.frameworks.get(&s.framework_id).unwrap();
    assert!(fw.conn.is_some(), "the scheduler is still connected");
    assert!(
        master_state.agents.get(&agent.id()).unwrap().conn.is_some(),
        "the agent is still linked"
    );
    drop(master_state);
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413() {
    let _serial = SERIAL.lock().await;
    let master = common::master().await;
    // The master answers once 8 MiB are in and closes the connection; a
    // client still writing may see its pipe break before it reads the
    // answer: try again then.
    for path in ["/api/v1/scheduler", "/api/v1"] {
        let mut answered = None;
        for _ in 0..5 {
            let mut stream = TcpStream::connect(master.addr).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                9 << 20
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let (mut rd, mut wr) = stream.into_split();
            let writer = tokio::spawn(async move {
                let chunk = vec![b' '; 64 << 10];
                for _ in 0..(9 * 16) {
                    if wr.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                wr
            });
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut answer)).await;
            drop(writer.await);
            let answer = String::from_utf8_lossy(&answer).into_owned();
            if answer.starts_with("HTTP/1.1") {
                answered = Some(answer);
                break;
            }
        }
        let answer = answered.expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("length limit"), "{path}: {answer}");
    }
    // A normal call on the same server still works.
    let (status, _, _) = common::http::call(
        master.addr,
        "POST",
        "/api/v1",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        br#"{"type":"GET_HEALTH"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    master.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_never_reads_is_disconnected() {
    // Its queue overflows.
    never_reading_scheduler(64, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_whose_socket_stalls_is_disconnected() {
    // Its queue never fills: the stalled write cuts it.
    never_reading_scheduler(100_000, 300).await;
}

async fn never_reading_scheduler(queue: usize, messages: usize) {
    let _serial = SERIAL.lock().await;
    let mut config = common::config();
    config.subscriber_queue = queue;
    config.http_limits = Limits {
        write_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let master = common::master_with(config).await;
    let agent = TestAgent::start(master.addr, "cpus:2;mem:1024", false).await;
    // SUBSCRIBE with a tiny receive window; read only what names the
    // framework, then never again.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut silent = socket.connect(master.addr).await.unwrap();
    let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"silent","roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}"#;
    let head = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    silent.write_all(head.as_bytes()).await.unwrap();
    silent.write_all(body).await.unwrap();
    let framework_id = common::eventually(5, async || {
        let m = master.shared.lock();
        m.frameworks
            .iter()
            .find(|(_, f)| f.info.name == "silent" && f.conn.is_some())
            .map(|(id, _)| id.clone())
    })
    .await;
    // Its executor sends it 64 KiB messages, far more than it reads.
    let data = vec![b'x'; 64 << 10];
    let warm = vm_rss_kb();
    for _ in 0..messages {
        agent.send_message(&framework_id, "ex", &data).await;
    }
    let after = vm_rss_kb();
    // The master broke its stream (queue full, then the stalled write):
    // the framework is disconnected, as after any lost connection (and,
    // with no failover timeout, removed).
    common::eventually(10, async || {
        let m = master.shared.lock();
        m.frameworks
            .get(&framework_id)
            .is_none_or(|f| f.conn.is_none())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Closed with a reset: no megabytes left queued in the kernel for a
    // client that will never read them.
    assert_eq!(closed_unsent_bytes(master.addr.port()), 0);
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    let grown_mb = after.saturating_sub(warm) / 1024;
    println!(
        "{messages} messages of 64 KiB to a scheduler that never reads (queue {queue}): RSS {} -> {} MiB",
        warm / 1024,
        after / 1024
    );
    if queue < messages {
        // Bounded by the queue: unbounded it would be ~85 MiB of JSON.
        assert!(grown_mb < 30, "RSS grew {grown_mb} MiB");
    }
    master.abort();
}
