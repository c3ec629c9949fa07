//! Who is on the other end of an HTTP connection, asked of the kernel
//! instead of the client: the client's socket by its 4-tuple
//! (`sock_diag`), the process holding it (`/proc/<pid>/fd`), and the pod
//! whose cgroup that process lives in (`/proc/<pid>/cgroup`). Tasks share
//! the host's network, so a task's calls arrive on loopback like an
//! operator's; this is how the agent tells them apart without asking
//! anything of existing executors (issue 16 item 2).
//!
//! The answer is kept per connection (`tepui_proto::server::Connection`):
//! a client cannot hand its connection to another process after the fact
//! without handing over its descriptor, which only it can do.

mod sock_diag;

use std::net::SocketAddr;
use std::path::Path;

use tepui_containerizer::cgroups::layout;

pub use sock_diag::SocketOwner;

/// Where a connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not a socket on this host (or the kernel would not say): a remote
    /// client, trusted as an operator only through `--authenticate_http_*`.
    Remote,
    /// A process on this host outside every pod: the operator's side.
    Host { uid: u32, pid: Option<u32> },
    /// A process inside the pod (top-level container) `pod`.
    Pod { pod: String, uid: u32, pid: u32 },
    /// A client on this host whose socket no process holds by the time we
    /// look (it closed or reset right after sending), or that the kernel
    /// no longer lists. It may have been a task: it gets no rights beyond
    /// health and version unless it authenticates as an operator.
    Unidentified,
}

/// Identifies the client of a connection accepted at `local` from `peer`.
/// `cgroups_root` is the agent's `--cgroups_root`: a process whose cgroup
/// path has `/<cgroups_root>/<pod>` in any hierarchy belongs to `<pod>`.
pub fn identify(peer: SocketAddr, local: SocketAddr, cgroups_root: &str) -> Origin {
    let same_host = is_this_host(peer, local);
    let owner = match sock_diag::lookup(peer, local) {
        Ok(Some(owner)) => owner,
        // A client on this host that is gone already (closed, or reset with
        // a zero linger, right after sending): a task could do that to pass
        // for a remote operator. Without its process there is no telling.
        Ok(None) if same_host => return Origin::Unidentified,
        Ok(None) => return Origin::Remote,
        Err(e) => {
            tracing::warn!(error = %e, "sock_diag lookup failed: the caller counts as remote");
            return Origin::Remote;
        }
    };
    let Some(pid) = holder(Path::new("/proc"), owner.inode, owner.uid) else {
        // A socket no process holds any more (an orphan closing): its
        // owner is gone and may have been a task.
        return Origin::Unidentified;
    };
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    match pod_of(&cgroups, cgroups_root) {
        Some(pod) => Origin::Pod {
            pod,
            uid: owner.uid,
            pid,
        },
        None => Origin::Host {
            uid: owner.uid,
            pid: Some(pid),
        },
    }
}

/// Whether a connection from `peer` to `local` comes from this host:
/// loopback, our own address, or any address of our interfaces.
fn is_this_host(peer: SocketAddr, local: SocketAddr) -> bool {
    let ip = sock_diag::canonical(peer).ip();
    if ip.is_loopback() || ip == sock_diag::canonical(local).ip() {
        return true;
    }
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            let Some(address) = a.address else {
                return false;
            };
            let own = address
                .as_sockaddr_in()
                .map(|v4| std::net::IpAddr::V4(v4.ip()))
                .or_else(|| {
                    address
                        .as_sockaddr_in6()
                        .map(|v6| std::net::IpAddr::V6(v6.ip()))
                });
            own == Some(ip)
        })
    })
}

/// The process holding a descriptor of the socket with this inode. The
/// processes of the socket's owner `uid` are looked at first (a task as
/// `nobody` is found among a handful), then every other one (a process
/// that changed its user after making the socket).
fn holder(proc: &Path, inode: u64, uid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let target = format!("socket:[{inode}]");
    let me = std::process::id();
    let pids: Vec<(u32, bool)> = std::fs::read_dir(proc)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let same_user = entry.metadata().is_ok_and(|m| m.uid() == uid);
            (pid != me).then_some((pid, same_user))
        })
        .collect();
    let holds = |pid: u32| {
        let Ok(fds) = std::fs::read_dir(proc.join(pid.to_string()).join("fd")) else {
            return false;
        };
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
    };
    let first = pids.iter().filter(|(_, same)| *same);
    let then = pids.iter().filter(|(_, same)| !*same);
    // Last, the agent's own process: in `tepui dev` the master runs in it,
    // and its web UI proxy calls the agent (a host process, no tenant).
    first
        .chain(then)
        .map(|(pid, _)| *pid)
        .chain(std::iter::once(me))
        .find(|pid| holds(*pid))
}

/// The pod of a `/proc/<pid>/cgroup` text: the component after
/// `<cgroups_root>` in any hierarchy's path, or in the systemd layout
/// (`cgroups::layout`) the pod of a `tepui.slice/tepui-pod-<pod>.scope`.
pub fn pod_of(cgroups: &str, cgroups_root: &str) -> Option<String> {
    let root: Vec<&str> = cgroups_root.split('/').filter(|c| !c.is_empty()).collect();
    for line in cgroups.lines() {
        // hierarchy-id:controllers:path
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for at in 0..parts.len() {
            if parts[at] == layout::SLICE
                && let Some(pod) = parts
                    .get(at + 1)
                    .and_then(|unit| unit.strip_prefix(layout::SCOPE_PREFIX))
                    .and_then(|unit| unit.strip_suffix(layout::SCOPE_SUFFIX))
            {
                return Some(pod.to_string());
            }
            if !root.is_empty()
                && parts[at..].starts_with(&root)
                && let Some(pod) = parts.get(at + root.len())
            {
                return Some((*pod).to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_of_reads_any_hierarchy() {
        let text = "12:pids:/\n5:memory:/tepui/pod-a/pod-a.task\n0::/system.slice/x\n";
        assert_eq!(pod_of(text, "tepui").as_deref(), Some("pod-a"));
        let nested = "3:cpu,cpuacct:/system.slice/tepui-agent.service/tepui/p1/p1\n";
        assert_eq!(pod_of(nested, "/tepui/").as_deref(), Some("p1"));
        assert_eq!(pod_of("0::/user.slice\n", "tepui"), None);
        // The root itself (no pod below it) is no pod.
        assert_eq!(pod_of("4:memory:/tepui\n", "tepui"), None);
        assert_eq!(pod_of("4:memory:/a/b/p\n", "a/b").as_deref(), Some("p"));
        // The systemd layout (cgroup v2 under systemd): one scope per pod.
        let scoped = "0::/tepui.slice/tepui-pod-p-2.scope/pod/p-2.t\n";
        assert_eq!(pod_of(scoped, "tepui").as_deref(), Some("p-2"));
        let supervisor = "0::/tepui.slice/tepui-pod-p3.scope/@supervisor\n";
        assert_eq!(pod_of(supervisor, "tepui").as_deref(), Some("p3"));
        assert_eq!(pod_of("0::/tepui.slice\n", "tepui"), None);
    }

    /// A client that sends and resets at once (zero linger) is gone before
    /// the agent looks: on this host that is no licence to be an operator.
    #[test]
    fn a_local_client_gone_before_the_lookup_is_unidentified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own with a valid linger struct.
        let rc = unsafe {
            libc::setsockopt(
                client.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        drop(client);
        assert_eq!(
            identify(peer, addr, "tepui-test-no-such-root"),
            Origin::Unidentified
        );
    }

    /// A client in the agent's own process (`tepui dev`'s master proxying
    /// the web UI's calls) is the host, not an unidentified caller.
    #[test]
    fn a_client_in_our_own_process_is_host() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        match identify(peer, addr, "tepui-test-no-such-root") {
            Origin::Host { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected the host, got {other:?}"),
        }
    }

    /// Our own test process, seen through a loopback connection from a
    /// child: the child is found, and it is on the host.
    #[test]
    fn a_host_process_is_host() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket,sys,time; s=socket.create_connection(('127.0.0.1',{})); \
                     sys.stdin.read()",
                    addr.port()
                ),
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        let origin = identify(peer, addr, "tepui-test-no-such-root");
        drop(child.stdin.take());
        child.wait().unwrap();
        match origin {
            Origin::Host { pid, .. } => assert_eq!(pid, Some(child.id())),
            other => panic!("expected the host, got {other:?}"),
        }
    }
}
