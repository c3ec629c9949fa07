//! The address and hostname the master tells the world (`MasterInfo`,
//! `leader_info`, its libprocess pid). A master listening on every address
//! (`--ip=0.0.0.0`, the default) must not advertise `0.0.0.0`: Mesos's web
//! UI and libmesos drivers connect to what is advertised, from other hosts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The IP others reach the master at: the listen IP, or for an unspecified
/// one the host's first non-loopback IPv4 address (libprocess advertises
/// the address its hostname resolves to, `process::initialize`; with no
/// such address, loopback).
pub fn ip(listen: SocketAddr) -> IpAddr {
    if !listen.ip().is_unspecified() {
        return listen.ip();
    }
    let found = nix::ifaddrs::getifaddrs().ok().and_then(|mut addrs| {
        addrs.find_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            (!ip.is_loopback()).then_some(ip)
        })
    });
    IpAddr::V4(found.unwrap_or(Ipv4Addr::LOCALHOST))
}

/// `--hostname`, else for an unspecified listen IP the host's name (Mesos
/// looks the name up, src/master/master.cpp `Master::initialize`,
/// `--hostname_lookup`), else the listen IP as text.
pub fn hostname(given: Option<&str>, listen: SocketAddr) -> String {
    if let Some(name) = given {
        return name.to_string();
    }
    if listen.ip().is_unspecified()
        && let Ok(name) = nix::unistd::gethostname()
        && let Some(name) = name.to_str().filter(|n| !n.is_empty())
    {
        return name.to_string();
    }
    ip(listen).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specified_address_is_advertised_as_given() {
        let listen: SocketAddr = "127.0.0.1:5050".parse().unwrap();
        assert_eq!(ip(listen), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(hostname(None, listen), "127.0.0.1");
        assert_eq!(hostname(Some("m1"), listen), "m1");
    }

    #[test]
    fn the_wildcard_address_is_never_advertised() {
        let listen: SocketAddr = "0.0.0.0:5050".parse().unwrap();
        assert!(!ip(listen).is_unspecified());
        assert_ne!(hostname(None, listen), "0.0.0.0");
    }
}
