//! A plugin chain's ADD result, in the forms the CNI spec has had:
//! 0.3.0 and later (`ips[].address`, `dns`) and 0.1.0/0.2.0 (`ip4.ip`,
//! `ip6.ip`). Only what the agent uses is read: the addresses (for status
//! updates, `/etc/hosts`, and telling which pod an HTTP caller is) and
//! the DNS settings (the pod's `resolv.conf`, as Mesos's
//! `cni::spec::formatResolverConfig` in isolators/network/cni/spec.cpp).

use std::net::IpAddr;

use serde_json::Value;

/// An address the pod got, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl Address {
    /// Parses `10.88.1.2/24` (a bare address is a host route).
    pub fn parse(text: &str) -> Option<Self> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, prefix.parse().ok()?),
            None => (text, if text.contains(':') { 128 } else { 32 }),
        };
        let ip: IpAddr = ip.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { ip, prefix })
    }

    /// Whether `other` is in this address's subnet.
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.ip, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// DNS settings a plugin returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }

    /// `resolv.conf` text.
    pub fn resolv_conf(&self) -> String {
        let mut out = String::new();
        if let Some(domain) = &self.domain {
            out.push_str(&format!("domain {domain}\n"));
        }
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// What the agent keeps of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub addresses: Vec<Address>,
    pub dns: Dns,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a result of any CNI version.
pub fn parse(result: &Value) -> Parsed {
    let mut addresses = Vec::new();
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        addresses.extend(
            ips.iter()
                .filter_map(|ip| ip.get("address")?.as_str())
                .filter_map(Address::parse),
        );
    }
    for old in ["ip4", "ip6"] {
        if let Some(ip) = result
            .get(old)
            .and_then(|v| v.get("ip"))
            .and_then(Value::as_str)
            && let Some(a) = Address::parse(ip)
        {
            addresses.push(a);
        }
    }
    let dns = result.get("dns");
    Parsed {
        addresses,
        dns: Dns {
            nameservers: strings(dns.and_then(|d| d.get("nameservers"))),
            domain: dns
                .and_then(|d| d.get("domain"))
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            search: strings(dns.and_then(|d| d.get("search"))),
            options: strings(dns.and_then(|d| d.get("options"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn current_and_old_results_give_their_addresses_and_dns() {
        let new = parse(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/x"}],
            "ips": [{"address": "10.88.3.7/24", "gateway": "10.88.3.1", "interface": 0}],
            "dns": {"nameservers": ["10.0.0.53"], "search": ["a.local", "b.local"]}
        }));
        assert_eq!(
            new.addresses,
            [Address {
                ip: "10.88.3.7".parse().unwrap(),
                prefix: 24
            }]
        );
        assert_eq!(
            new.dns.resolv_conf(),
            "nameserver 10.0.0.53\nsearch a.local b.local\n"
        );
        let old = parse(&json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.9/16"}}));
        assert_eq!(old.addresses[0].ip, "10.1.0.9".parse::<IpAddr>().unwrap());
        assert!(old.dns.is_empty());
    }

    #[test]
    fn subnets_contain_their_addresses_only() {
        let a = Address::parse("10.88.3.7/24").unwrap();
        assert!(a.contains("10.88.3.200".parse().unwrap()));
        assert!(!a.contains("10.88.4.1".parse().unwrap()));
        assert!(!a.contains("::1".parse().unwrap()));
        assert!(Address::parse("10.0.0.1/33").is_none());
        assert!(
            Address::parse("fd00::5/64")
                .unwrap()
                .contains("fd00::9".parse().unwrap())
        );
    }
}
