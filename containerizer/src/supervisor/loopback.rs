//! A new network namespace starts with `lo` down, and a pod's tasks talk to
//! each other over 127.0.0.1: bring it up after libcontainer created the
//! container and before its process starts, so the task never sees it down.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::sched::{CloneFlags, setns};

/// Brings `lo` up in the network namespace of `pid`, if that namespace is
/// not the supervisor's own. The supervisor is single-threaded, so switching
/// its one thread into the namespace and back is safe.
pub fn bring_up_in_netns_of(pid: i32) -> Result<(), String> {
    let ours = File::open("/proc/self/ns/net").map_err(|e| format!("open own netns: {e}"))?;
    let theirs = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("open netns of pid {pid}: {e}"))?;
    let same = {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (ours.metadata(), theirs.metadata());
        matches!((a, b), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
    };
    if same {
        return Ok(());
    }
    setns(&theirs, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns into pid {pid}: {e}"))?;
    let result = set_lo_up();
    // Going back must succeed, or every later container would start inside
    // this pod's network namespace.
    setns(&ours, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns back: {e}"))?;
    result
}

pub(crate) fn set_lo_up() -> Result<(), String> {
    // SAFETY: plain socket(2); the fd is owned by the File below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: we just created fd and nothing else owns it.
    let sock = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(format!(
                "SIOCGIFFLAGS lo: {}",
                std::io::Error::last_os_error()
            ));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(format!(
                "SIOCSIFFLAGS lo: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}
