//! The agent's link with `--master=zk://...`: it finds the leading master in
//! ZooKeeper, and when that master dies it re-registers with the next
//! leader, keeping its agent id. Real ZooKeeper, real masters over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tepui_agent::link::{HttpLink, MasterLink};
use tepui_proto::link::{AgentCall, agent_call, master_event};
use tepui_proto::v1::{AgentId, AgentInfo};
use tepui_proto::zk::testing::ZkServer;

/// A master in its own runtime; dropping the stop sender drops the runtime
/// and every socket with it, as SIGKILL would (its ZooKeeper session then
/// expires after the session timeout).
struct Master {
    addr: SocketAddr,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Master {
    fn start(zk: &str) -> Master {
        let config = tepui_master::MasterConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            allocation_interval: Duration::from_millis(50),
            zk: Some(zk.to_string()),
            zk_session_timeout: Duration::from_secs(2),
            quorum: Some(1),
            ..tepui_master::MasterConfig::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let running = rt.block_on(tepui_master::start(config)).unwrap();
            addr_tx.send(running.addr).unwrap();
            let _ = stopped.recv();
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        Master {
            addr: addr_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn kill(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.stop.take();
    }
}

fn subscribe_call(id: Option<&str>) -> AgentCall {
    AgentCall {
        protocol_version: Some(1),
        r#type: Some(agent_call::Type::Subscribe as i32),
        agent_id: id.map(|value| AgentId {
            value: value.to_string(),
        }),
        subscribe: Some(agent_call::Subscribe {
            agent_info: AgentInfo {
                hostname: "127.0.0.1".into(),
                port: Some(5051),
                resources: tepui_proto::resources::parse_resources("cpus:1;mem:128", "*")
                    .unwrap()
                    .into_vec(),
                id: id.map(|value| AgentId {
                    value: value.to_string(),
                }),
                ..Default::default()
            },
            version: Some("test".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Subscribes and returns the agent id from SUBSCRIBED, and the stream.
async fn subscribe(link: &HttpLink, id: Option<&str>) -> (String, tepui_agent::link::EventStream) {
    let mut events = link.subscribe(subscribe_call(id)).await.expect("subscribe");
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("SUBSCRIBED in time")
        .expect("an event")
        .expect("a valid event");
    assert_eq!(first.r#type, Some(master_event::Type::Subscribed as i32));
    (first.subscribed.unwrap().agent_id.value, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_link_follows_the_leading_master_in_zookeeper() {
    let zk = ZkServer::start().expect("zookeeper (apt-get install libzookeeper-java)");
    let url = zk.url("/tepui");
    let first = Master::start(&url);
    // The first master leads before the second contends.
    let link = HttpLink::new(&url).expect("zk:// link");
    let (agent_id, mut events) = subscribe(&link, None).await;
    assert!(link.describe().contains(&first.addr.to_string()));
    let second = Master::start(&url);

    let died = Instant::now();
    first.kill();
    // The stream from the dead leader ends; re-registering goes to the new
    // leader once ZooKeeper expires the old one's session.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(30), events.next()).await {
    }
    let (again, _events) = subscribe(&link, Some(&agent_id)).await;
    println!(
        "agent link re-registered with the new leader {:.2}s after the leader died",
        died.elapsed().as_secs_f64()
    );
    assert_eq!(again, agent_id);
    assert!(link.describe().contains(&second.addr.to_string()));
    second.kill();
}

/// `GET path` over a raw socket: the status code, or 0 if unreachable.
fn http_status(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut head = [0u8; 12];
    if s.read_exact(&mut head).is_err() {
        return 0;
    }
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn master_process_steps_down_and_exits_when_its_zookeeper_session_is_lost() {
    let zk = ZkServer::start().expect("zookeeper (apt-get install libzookeeper-java)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("master.log");
    let mut master = std::process::Command::new(common::tepui_bin())
        .args([
            "master".to_string(),
            "--ip=127.0.0.1".to_string(),
            format!("--port={port}"),
            format!("--zk={}", zk.url("/tepui")),
            "--quorum=1".to_string(),
            "--zk_session_timeout=2secs".to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_status(port, "/master/state") != 200 {
        assert!(Instant::now() < deadline, "the master never led");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ZooKeeper goes away: past the session timeout the leader must assume
    // a successor may be elected, so it stops at once.
    drop(zk);
    let lost = Instant::now();
    let status = loop {
        if let Some(status) = master.try_wait().unwrap() {
            break status;
        }
        if lost.elapsed() > Duration::from_secs(20) {
            let _ = master.kill();
            panic!("the master kept running without ZooKeeper");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("no longer the leading master"), "{text}");
    println!(
        "master exited {:.2}s after ZooKeeper went away",
        lost.elapsed().as_secs_f64()
    );
}

#[test]
fn master_zk_flags_are_checked() {
    let out = std::process::Command::new(common::tepui_bin())
        .args(["master", "--zk=zk://127.0.0.1:1/tepui"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--quorum is required"));
    let out = std::process::Command::new(common::tepui_bin())
        .args(["master", "--zk=127.0.0.1:1/tepui", "--quorum=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zk://"));
}
