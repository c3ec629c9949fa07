//! A multi-host cluster on one machine: every host is a network namespace
//! with a veth pair into a private Linux bridge (10.77.<k>.0/24, the bridge
//! itself is .1 in the root namespace), one ZooKeeper on the bridge's
//! address, `tepui master` and `tepui agent` processes each in its host's
//! namespace (setns before exec, so they keep the machine's mounts and
//! cgroups). Hosts can be SIGKILLed, restarted on the same directories and
//! cut off the bridge (the bridge-side veth goes down). Everything is torn
//! down on drop, also after a panic.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tepui_proto::zk::testing::ZkServer;

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

/// True when a cluster cannot be built here (not root, no `ip`, no
/// ZooKeeper jars): the test prints why and passes (fails under CI=true).
pub fn missing_prerequisite(test: &str) -> bool {
    if !super::require_root(test) {
        return true;
    }
    let why = if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        Some("the `ip` command (iproute2) is missing")
    } else if !Path::new(tepui_proto::zk::testing::JAVA_DIR)
        .join("zookeeper.jar")
        .exists()
    {
        Some("ZooKeeper's jars are missing (scripts/deps.sh install_zookeeper)")
    } else {
        None
    };
    match why {
        None => false,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {why}, and CI=true forbids skipping")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            true
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Master,
    Agent,
}

pub struct Host {
    pub name: String,
    pub role: Role,
    pub netns: String,
    /// The veth end on the bridge (down = partitioned).
    pub bridge_end: String,
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
    pub cgroup_root: String,
    args: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

impl Host {
    /// `ip:port` of its HTTP server.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The logs of every start, concatenated.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.dir.join(format!("log.{n}"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = File::create(self.dir.join(format!("log.{}", self.starts))).unwrap();
        let netns = File::open(format!("/run/netns/{}", self.netns)).unwrap();
        let mut cmd = Command::new(super::tepui_bin());
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let fd = netns.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the fd stays open (owned by
        // `netns`, alive until spawn returns).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().unwrap());
        drop(netns);
    }

    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Cluster {
    pub k: u32,
    pub bridge: String,
    pub bridge_ip: String,
    pub dir: PathBuf,
    pub zk: Option<ZkServer>,
    pub zk_url: String,
    pub hosts: Vec<Host>,
    tag: String,
}

impl Cluster {
    /// A bridge, ZooKeeper, `masters` masters and `agents` agents (named
    /// m1.., a1..), each on its own host; `master_flags` are added to every
    /// master's command line. Returns once a master leads and every agent
    /// is registered with it.
    pub fn start(masters: usize, agents: usize, master_flags: &[&str]) -> Cluster {
        let n = CLUSTERS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let mut k = (pid.wrapping_mul(7) + n * 13) % 200 + 20;
        let used = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-4", "-o", "addr"])
                .output()
                .unwrap()
                .stdout,
        )
        .to_string();
        while used.contains(&format!("10.77.{k}.")) {
            k = (k + 1) % 200 + 20;
        }
        let tag = format!("{pid}-{n}");
        let dir = std::env::temp_dir().join(format!("tepui-cluster-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Cluster {
            k,
            bridge: format!("tpbr{k}"),
            bridge_ip: format!("10.77.{k}.1"),
            dir,
            zk: None,
            zk_url: String::new(),
            hosts: Vec::new(),
            tag,
        };
        ip(&["link", "add", &cluster.bridge, "type", "bridge"]).unwrap();
        ip(&[
            "addr",
            "add",
            &format!("{}/24", cluster.bridge_ip),
            "dev",
            &cluster.bridge,
        ])
        .unwrap();
        ip(&["link", "set", &cluster.bridge, "up"]).unwrap();
        let zk = ZkServer::start_on(cluster.bridge_ip.parse().unwrap()).expect("zookeeper");
        cluster.zk_url = zk.url("/tepui");
        cluster.zk = Some(zk);
        for i in 0..masters {
            cluster.add_host(&format!("m{}", i + 1), Role::Master, master_flags);
        }
        for i in 0..agents {
            cluster.add_host(&format!("a{}", i + 1), Role::Agent, &[]);
        }
        cluster.wait_agents(agents, Duration::from_secs(30));
        cluster
    }

    fn add_host(&mut self, name: &str, role: Role, extra: &[&str]) {
        let index = self.hosts.len() as u32 + 2;
        let netns = format!("tp-{}-{name}", self.tag);
        let host_end = format!("tp{}{name}", self.k);
        let bridge_end = format!("tp{}{name}b", self.k);
        let addr = format!("10.77.{}.{index}", self.k);
        ip(&["netns", "add", &netns]).unwrap();
        ip(&[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            &bridge_end,
        ])
        .unwrap();
        ip(&["link", "set", &bridge_end, "master", &self.bridge]).unwrap();
        ip(&["link", "set", &bridge_end, "up"]).unwrap();
        ip(&["link", "set", &host_end, "netns", &netns]).unwrap();
        let inside = |args: &[&str]| {
            let mut all = vec!["-n", netns.as_str()];
            all.extend_from_slice(args);
            ip(&all).unwrap();
        };
        inside(&["addr", "add", &format!("{addr}/24"), "dev", &host_end]);
        inside(&["link", "set", &host_end, "up"]);
        inside(&["link", "set", "lo", "up"]);
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup_root = format!("tepui-test-{}-{name}", self.tag);
        let (port, mut args): (u16, Vec<String>) = match role {
            Role::Master => (
                5050,
                vec![
                    "master".into(),
                    format!("--ip={addr}"),
                    "--port=5050".into(),
                    format!("--hostname={addr}"),
                    format!("--zk={}", self.zk_url),
                    "--quorum=1".into(),
                    "--zk_session_timeout=2secs".into(),
                    "--allocation_interval=100ms".into(),
                ],
            ),
            Role::Agent => (
                5051,
                vec![
                    "agent".into(),
                    format!("--master={}", self.zk_url),
                    format!("--ip={addr}"),
                    "--port=5051".into(),
                    format!("--hostname={addr}"),
                    format!("--work_dir={}", dir.join("work").display()),
                    format!("--runtime_dir={}", dir.join("run").display()),
                    format!("--cgroups_root={cgroup_root}"),
                    "--resources=cpus:4;mem:4096;disk:1024".into(),
                ],
            ),
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut host = Host {
            name: name.to_string(),
            role,
            netns,
            bridge_end,
            ip: addr,
            port,
            dir,
            cgroup_root,
            args,
            child: None,
            starts: 0,
        };
        host.spawn();
        self.hosts.push(host);
    }

    pub fn host(&mut self, name: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.name == name).unwrap()
    }

    pub fn masters(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.role == Role::Master)
            .map(Host::addr)
            .collect()
    }

    pub fn agents(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.role == Role::Agent)
            .map(|h| h.name.clone())
            .collect()
    }

    /// SIGKILLs the host's process (an agent's containers keep running).
    pub fn kill(&mut self, name: &str) {
        self.host(name).sigkill();
    }

    /// Starts the host's process again on the same directories and flags.
    pub fn restart(&mut self, name: &str) {
        let host = self.host(name);
        host.sigkill();
        host.spawn();
    }

    /// Cuts the host off the bridge: nothing reaches it and it reaches
    /// nothing, connections stay open until timeouts notice.
    pub fn partition(&mut self, name: &str) {
        let end = self.host(name).bridge_end.clone();
        ip(&["link", "set", &end, "down"]).unwrap();
    }

    pub fn heal(&mut self, name: &str) {
        let end = self.host(name).bridge_end.clone();
        ip(&["link", "set", &end, "up"]).unwrap();
    }

    /// The host whose master answers `/master/state` itself (standbys
    /// redirect or answer 503).
    pub fn leader(&self) -> Option<String> {
        self.hosts
            .iter()
            .filter(|h| h.role == Role::Master)
            .find(|h| http_get(&h.addr(), "/master/state").0 == 200)
            .map(|h| h.name.clone())
    }

    pub fn wait_leader(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            assert!(Instant::now() < deadline, "no leading master");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The leader's `/master/slaves` entries that are active.
    pub fn active_agents(&self) -> Vec<serde_json::Value> {
        let Some(leader) = self.leader() else {
            return Vec::new();
        };
        let addr = self.hosts.iter().find(|h| h.name == leader).unwrap().addr();
        let (status, body) = http_get(&addr, "/slaves");
        if status != 200 {
            return Vec::new();
        }
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["slaves"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["active"].as_bool() != Some(false))
            .collect()
    }

    pub fn wait_agents(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.active_agents().len() != n {
            if Instant::now() > deadline {
                for h in &self.hosts {
                    eprintln!("--- {} ---\n{}", h.name, tail(&h.log(), 3000));
                }
                panic!("{n} agents never registered");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `GET path` on `addr` over a raw socket (no redirects followed): the
/// status (0 if unreachable) and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(sock) = addr.parse::<std::net::SocketAddr>() else {
        return (0, String::new());
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(500)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for host in &mut self.hosts {
            host.sigkill();
            if panicking {
                eprintln!("--- {} log ---\n{}", host.name, tail(&host.log(), 6000));
            }
        }
        for host in &self.hosts {
            if host.role == Role::Agent {
                super::kill_leftovers(&host.dir, &host.cgroup_root);
            }
        }
        self.zk.take();
        for host in &self.hosts {
            // Deleting the namespace deletes its veth end, and with it the peer.
            let _ = ip(&["netns", "del", &host.netns]);
            let _ = ip(&["link", "del", &host.bridge_end]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        if std::env::var_os("TEPUI_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.dir.display());
            return;
        }
        if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&self.dir) {
            eprintln!("left {}: {e}", self.dir.display());
        }
    }
}
