//! The inode and owner of one TCP socket on this host, asked of the kernel
//! by its 4-tuple through NETLINK_SOCK_DIAG (inet_diag, an exact lookup,
//! not a dump: O(1) in the number of sockets). See the kernel's
//! `include/uapi/linux/inet_diag.h` for the layouts built here.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_sockid`: ports, two 16-byte addresses, interface, cookie.
const SOCKID_LEN: usize = 48;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, sockid.
const REQ_LEN: usize = 8 + SOCKID_LEN;
/// `struct inet_diag_msg` up to and including `idiag_inode`.
const MSG_LEN: usize = 4 + SOCKID_LEN + 20;

/// What the kernel says of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub inode: u64,
    pub uid: u32,
}

/// The socket whose local address is `local` and remote address `remote`
/// (the client's end of a connection to us: local = our peer), or `None`
/// when no such socket is in our network namespace (a remote client).
pub fn lookup(local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<SocketOwner>> {
    let (local, remote) = (canonical(local), canonical(remote));
    let family = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
        _ => return Ok(None),
    };
    // SAFETY: plain socket(2); the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let request = request(family as u8, local, remote);
    // SAFETY: the buffer is valid for its length; the kernel is the
    // default destination of a netlink socket.
    let sent = unsafe { libc::send(fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 8192];
    // SAFETY: the buffer is valid and writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(parse(&buf[..n as usize], local))
}

pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn address_words(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    out
}

fn request(family: u8, local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let len = NLMSG_HDRLEN + REQ_LEN;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    m.push(family);
    m.push(libc::IPPROTO_TCP as u8);
    m.push(0); // no extensions
    m.push(0);
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    m.extend_from_slice(&local.port().to_be_bytes());
    m.extend_from_slice(&remote.port().to_be_bytes());
    m.extend_from_slice(&address_words(local.ip()));
    m.extend_from_slice(&address_words(remote.ip()));
    m.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    // INET_DIAG_NOCOOKIE: an exact lookup by address, not by cookie.
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m
}

/// The answer's socket, if it is the one asked for (its local port is the
/// one we asked: never our own end of the connection).
fn parse(buf: &[u8], local: SocketAddr) -> Option<SocketOwner> {
    if buf.len() < NLMSG_HDRLEN {
        return None;
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == NLMSG_ERROR || kind != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    let msg = buf.get(NLMSG_HDRLEN..NLMSG_HDRLEN + MSG_LEN)?;
    let sport = u16::from_be_bytes([msg[4], msg[5]]);
    if sport != local.port() {
        return None;
    }
    let word = |at: usize| u32::from_ne_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    // After family..retrans (4) and the sockid (48): expires, rqueue,
    // wqueue, uid, inode.
    let uid = word(4 + SOCKID_LEN + 12);
    let inode = word(4 + SOCKID_LEN + 16);
    Some(SocketOwner {
        inode: u64::from(inode),
        uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::fs::MetadataExt;

    /// The inode the kernel names is the one our own descriptor points at.
    #[test]
    fn finds_the_client_end_of_a_loopback_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let owner = lookup(peer, listener.local_addr().unwrap())
            .unwrap()
            .expect("the client socket is on this host");
        let link = std::fs::read_link(format!("/proc/self/fd/{}", client.as_raw_fd())).unwrap();
        assert_eq!(link.to_string_lossy(), format!("socket:[{}]", owner.inode));
        assert_eq!(owner.uid, std::fs::metadata("/proc/self").unwrap().uid());
    }

    #[test]
    fn a_connection_nobody_holds_is_none() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fake: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(lookup(fake, listener.local_addr().unwrap()).unwrap(), None);
    }
}
