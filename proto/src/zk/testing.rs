//! A throwaway standalone ZooKeeper server for tests: Debian's
//! `libzookeeper-java` (`/usr/share/java/zookeeper.jar`) on a free loopback
//! port with a temporary data directory, killed on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's packages put the ZooKeeper jars and their dependencies.
pub const JAVA_DIR: &str = "/usr/share/java";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "ZooKeeper is not installed ({JAVA_DIR}/zookeeper.jar): apt-get install libzookeeper-java"
    )]
    NotInstalled,
    #[error("cannot start ZooKeeper: {0}")]
    Io(#[from] std::io::Error),
    #[error("ZooKeeper did not listen on {0} within 30s")]
    Timeout(u16),
}

pub struct ZkServer {
    child: Child,
    pub ip: std::net::IpAddr,
    pub port: u16,
    dir: PathBuf,
}

impl ZkServer {
    /// Starts a server on 127.0.0.1 and waits until it accepts connections.
    pub fn start() -> Result<ZkServer, ServerError> {
        ZkServer::start_on(std::net::IpAddr::from([127, 0, 0, 1]))
    }

    /// Starts a server listening on `ip` (e.g. a test bridge's address, for
    /// clients in other network namespaces) and waits until it accepts
    /// connections.
    pub fn start_on(ip: std::net::IpAddr) -> Result<ZkServer, ServerError> {
        if !std::path::Path::new(JAVA_DIR)
            .join("zookeeper.jar")
            .exists()
        {
            return Err(ServerError::NotInstalled);
        }
        let port = std::net::TcpListener::bind((ip, 0))?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("tepui-zk-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data"))?;
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress={ip}\n\
                 admin.enableServer=false\nminSessionTimeout=400\nmaxSessionTimeout=60000\n\
                 4lw.commands.whitelist=*\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("zookeeper.log"))?;
        let child = Command::new("java")
            .arg("-Xmx256m")
            .arg("-cp")
            .arg(format!("{JAVA_DIR}/*"))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let server = ZkServer {
            child,
            ip,
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect((ip, port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ServerError::Timeout(port))
    }

    /// `host:port` for a connect string.
    pub fn servers(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// A `zk://` URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}:{}{path}", self.ip, self.port)
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Only ZooKeeper's own files live here (no mounts).
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
