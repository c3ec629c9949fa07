//! systemd's readiness protocol (`sd_notify(3)`) for both daemons' `Type=notify`
//! units: `READY=1` once a daemon serves, `STOPPING=1` when it begins to shut
//! down, and `WATCHDOG=1` at half of `WATCHDOG_USEC` while it runs, so systemd
//! restarts a daemon whose runtime stopped making progress.
//!
//! The protocol is one datagram of `KEY=value` lines sent to the unix socket
//! named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace);
//! outside systemd the variable is unset and every call does nothing. Written
//! here (a few lines of std) rather than pulling in a crate for it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The socket `$NOTIFY_SOCKET` names; `None` when not started by
    /// systemd (or the variable is unusable).
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::new(&path) {
            Ok(notifier) => Some(notifier),
            Err(error) => {
                tracing::warn!(?path, %error, "NOTIFY_SOCKET unusable: systemd is not notified");
                None
            }
        }
    }

    /// A notifier for `path`: a filesystem path, or `@name` for a socket in
    /// the abstract namespace (as `sd_notify` accepts).
    pub fn new(path: &OsStr) -> io::Result<Notifier> {
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(path)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "NOTIFY_SOCKET is neither an absolute path nor @abstract",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        // Never stall a daemon on a full notification queue: a lost
        // heartbeat is better than a blocked runtime thread.
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, addr })
    }

    /// Sends `state` (newline-separated `KEY=value` assignments).
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.addr)?;
        Ok(())
    }
}

/// Sends `state` to `$NOTIFY_SOCKET` when there is one; failures are logged,
/// never fatal (the daemon works the same without a service manager).
pub fn notify(state: &str) {
    if let Some(notifier) = Notifier::from_env()
        && let Err(error) = notifier.send(state)
    {
        tracing::warn!(state, %error, "could not notify systemd");
    }
}

/// `READY=1`: startup finished (recovered, listening).
pub fn ready() {
    notify("READY=1\nSTATUS=serving");
}

/// `STOPPING=1`: shutdown began (so `systemctl stop` is not mistaken for a
/// crash by the watchdog or the start timeout).
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=stopping");
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC` (as
/// `sd_watchdog_enabled(3)` advises), when it is set and `$WATCHDOG_PID` is
/// unset or names this process. `None` when no watchdog is configured.
pub fn watchdog_interval(
    usec: Option<&OsStr>,
    pid: Option<&OsStr>,
    own_pid: u32,
) -> Option<Duration> {
    if let Some(pid) = pid {
        let pid: u32 = pid.to_str()?.parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// Starts sending `WATCHDOG=1` every [`watchdog_interval`] from a task on the
/// current tokio runtime (which is what the watchdog then vouches for: a
/// wedged runtime stops the heartbeats and systemd restarts the daemon).
/// `None` when systemd asked for no watchdog. Call inside a runtime.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let interval = watchdog_interval(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
        std::process::id(),
    )?;
    let notifier = Notifier::from_env()?;
    tracing::info!(?interval, "systemd watchdog: sending WATCHDOG=1");
    Some(tokio::spawn(heartbeat(notifier, interval)))
}

/// Sends `WATCHDOG=1` now and then every `interval`, forever.
pub async fn heartbeat(notifier: Notifier, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = notifier.send("WATCHDOG=1") {
            tracing::warn!(%error, "could not send WATCHDOG=1 to systemd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    /// A receiving socket standing in for systemd's, at a fresh path.
    fn manager_socket(name: &str) -> (UnixDatagram, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("tepui-sdnotify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_the_state_to_a_path_socket() {
        let (manager, path) = manager_socket("path");
        let notifier = Notifier::new(path.as_os_str()).unwrap();
        notifier.send("READY=1\nSTATUS=serving").unwrap();
        notifier.send("STOPPING=1").unwrap();
        assert_eq!(receive(&manager), "READY=1\nSTATUS=serving");
        assert_eq!(receive(&manager), "STOPPING=1");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tepui-sdnotify-test-{}", std::process::id());
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::new(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.send("READY=1").unwrap();
        assert_eq!(receive(&manager), "READY=1");
    }

    #[test]
    fn refuses_a_relative_socket_name() {
        let err = Notifier::new(OsStr::new("relative/socket")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_vanished_manager_is_an_error_not_a_hang() {
        let (manager, path) = manager_socket("gone");
        let notifier = Notifier::new(path.as_os_str()).unwrap();
        drop(manager);
        std::fs::remove_file(&path).unwrap();
        assert!(notifier.send("WATCHDOG=1").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec_for_this_process() {
        let usec = OsStr::new("30000000");
        assert_eq!(
            watchdog_interval(Some(usec), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some(usec), Some(OsStr::new("7")), 7),
            Some(Duration::from_secs(15))
        );
        // Meant for another process (a child inherited the environment).
        assert_eq!(
            watchdog_interval(Some(usec), Some(OsStr::new("8")), 7),
            None
        );
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some(OsStr::new("0")), None, 7), None);
        assert_eq!(watchdog_interval(Some(OsStr::new("soon")), None, 7), None);
        let invalid = std::ffi::OsString::from_vec(vec![0xff, 0x31]);
        assert_eq!(watchdog_interval(Some(&invalid), None, 7), None);
    }

    #[tokio::test]
    async fn heartbeat_sends_watchdog_repeatedly() {
        let (manager, path) = manager_socket("watchdog");
        let notifier = Notifier::new(path.as_os_str()).unwrap();
        let task = tokio::spawn(heartbeat(notifier, Duration::from_millis(20)));
        let beats = tokio::task::spawn_blocking(move || {
            (0..3).map(|_| receive(&manager)).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        task.abort();
        assert_eq!(beats, vec!["WATCHDOG=1"; 3]);
        std::fs::remove_file(path).unwrap();
    }
}
