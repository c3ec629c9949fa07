//! Container networks through CNI, after Mesos's `network/cni` isolator
//! (src/slave/containerizer/mesos/isolators/network/cni/): a pod whose
//! container names networks (`ContainerInfo.network_infos[].name`) gets a
//! network namespace of its own ([`netns`]), joined by every container of
//! the pod; each named network's plugin chain ([`config`]) is run with ADD
//! before the pod's first container starts ([`exec`]), its result kept
//! ([`result`]) for status updates, `/etc/hosts` and for telling which pod
//! an HTTP caller is; DEL runs when the pod is removed, also for a pod that
//! died while the agent was away (recovery finds its dir, [`paths`]).
//!
//! Nothing is configured unless the operator gives both
//! `--network_cni_config_dir` and `--network_cni_plugins_dir`.

pub mod config;
mod error;
pub mod exec;
pub mod netns;
pub mod paths;
pub mod result;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value, json};

pub use error::CniError;
pub use paths::CniPaths;
pub use result::Address;

use crate::atomic::write_atomic;
use crate::spec::NetworkRequest;

/// Default bound on one plugin run (a tepui flag; Mesos has none and
/// waits forever).
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the operator configured.
#[derive(Debug, Clone)]
pub struct CniConfig {
    /// `--network_cni_config_dir`.
    pub config_dir: PathBuf,
    /// `--network_cni_plugins_dir` (`:`-separated dirs).
    pub plugins_dir: String,
    /// Where pods' netns files, checkpoints and `/etc` files live.
    pub root_dir: PathBuf,
    pub plugin_timeout: Duration,
}

/// One network a pod is attached to, as status updates report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub name: String,
    pub ifname: String,
    pub addresses: Vec<Address>,
    pub labels: Vec<(String, String)>,
    pub port_mappings: Vec<crate::spec::PortMapping>,
}

/// Who an address belongs to, as far as the agent's networks tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressOwner {
    /// An address the agent's CNI networks gave to this pod.
    Pod(String),
    /// In a subnet of one of the agent's CNI networks, but no live pod's.
    Network,
    NotOurs,
}

/// The agent's side of CNI.
#[derive(Debug)]
pub struct Cni {
    config: CniConfig,
    paths: CniPaths,
    /// pod -> its networks (live pods only).
    pods: Mutex<HashMap<String, Vec<Attached>>>,
    /// Every subnet a network of this agent handed out addresses from.
    subnets: Mutex<Vec<Address>>,
}

impl Cni {
    pub fn new(config: CniConfig) -> Result<Self, CniError> {
        std::fs::create_dir_all(&config.root_dir).map_err(CniError::io(
            "cannot create the CNI root dir",
            &config.root_dir,
        ))?;
        Ok(Self {
            paths: CniPaths::new(&config.root_dir),
            config,
            pods: Mutex::new(HashMap::new()),
            subnets: Mutex::new(Vec::new()),
        })
    }

    pub fn paths(&self) -> &CniPaths {
        &self.paths
    }

    /// The pod's netns file, when the pod has one.
    pub fn netns_of(&self, pod: &str) -> Option<PathBuf> {
        let path = self.paths.netns(pod);
        netns::is_bound(&path).then_some(path)
    }

    /// `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` of a pod with
    /// networks: (host file, path in the container).
    pub fn etc_files(&self, pod: &str) -> Vec<(PathBuf, PathBuf)> {
        ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|name| (self.paths.etc_file(pod, name), Path::new("/etc").join(name)))
            .filter(|(host, _)| host.exists())
            .collect()
    }

    /// The networks of a live pod (empty for a host-network pod).
    pub fn networks_of(&self, pod: &str) -> Vec<Attached> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pod)
            .cloned()
            .unwrap_or_default()
    }

    /// Whose address `ip` is.
    pub fn owner_of(&self, ip: IpAddr) -> AddressOwner {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        for (pod, networks) in pods.iter() {
            if networks
                .iter()
                .any(|n| n.addresses.iter().any(|a| a.ip == ip))
            {
                return AddressOwner::Pod(pod.clone());
            }
        }
        drop(pods);
        let subnets = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        if subnets.iter().any(|s| s.contains(ip)) {
            AddressOwner::Network
        } else {
            AddressOwner::NotOurs
        }
    }

    fn remember(&self, pod: &str, attached: Vec<Attached>) {
        {
            let mut subnets = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
            for a in attached.iter().flat_map(|n| &n.addresses) {
                if !subnets
                    .iter()
                    .any(|s| s.prefix == a.prefix && s.contains(a.ip))
                {
                    subnets.push(*a);
                }
            }
        }
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pod.to_string(), attached);
    }

    /// Creates the pod's netns and attaches it to every requested network,
    /// in order (`eth0`, `eth1`, ...: Mesos's `ifName` rule in
    /// `NetworkCniIsolatorProcess::prepare`). On any failure everything
    /// done so far is undone (DEL, netns, files) before the error returns.
    pub async fn attach(
        &self,
        pod: &str,
        requests: &[NetworkRequest],
        hostname: &str,
    ) -> Result<Vec<Attached>, CniError> {
        match self.try_attach(pod, requests, hostname).await {
            Ok(attached) => {
                self.remember(pod, attached.clone());
                Ok(attached)
            }
            Err(e) => {
                self.detach(pod).await;
                Err(e)
            }
        }
    }

    async fn try_attach(
        &self,
        pod: &str,
        requests: &[NetworkRequest],
        hostname: &str,
    ) -> Result<Vec<Attached>, CniError> {
        // Checked before anything is made: a bad name fails alone.
        let loaded = config::load_dir(&self.config.config_dir)?;
        let mut configs = Vec::new();
        for request in requests {
            if configs
                .iter()
                .any(|(r, _): &(&NetworkRequest, _)| r.name == request.name)
            {
                return Err(CniError::Network {
                    network: request.name.clone(),
                    message: "named twice in the container's network_infos".into(),
                });
            }
            configs.push((request, loaded.get(&request.name, &self.config.config_dir)?));
        }
        let dir = self.paths.pod(pod);
        std::fs::create_dir_all(self.paths.networks(pod))
            .map_err(CniError::io("cannot create", &dir))?;
        let ns = self.paths.netns(pod);
        netns::create(&ns)?;
        let mut attached = Vec::new();
        let mut dns = result::Dns::default();
        for (index, (request, network)) in configs.into_iter().enumerate() {
            let ifname = format!("eth{index}");
            let chain = chain_for(network, request)?;
            let conf_path = self.paths.network_conf(pod, &network.name);
            let info_path = self.paths.network_info(pod, &network.name, &ifname);
            if let Some(parent) = info_path.parent() {
                std::fs::create_dir_all(parent).map_err(CniError::io("cannot create", parent))?;
            }
            // Checkpointed before the ADD: an agent killed during it still
            // knows what to DEL (Mesos checkpoints `network.conf` first, too).
            write_json(&conf_path, &chain)?;
            let result = self.add(pod, &ns, &ifname, network, &chain).await?;
            write_json(&info_path, &result)?;
            let parsed = result::parse(&result);
            if dns.is_empty() {
                dns = parsed.dns.clone();
            }
            attached.push(Attached {
                name: network.name.clone(),
                ifname,
                addresses: parsed.addresses,
                labels: request.labels.clone(),
                port_mappings: request.port_mappings.clone(),
            });
        }
        self.write_etc_files(pod, &attached, &dns, hostname)?;
        Ok(attached)
    }

    async fn add(
        &self,
        pod: &str,
        ns: &Path,
        ifname: &str,
        network: &config::NetworkConfig,
        chain: &Value,
    ) -> Result<Value, CniError> {
        let call = exec::Invocation {
            command: "ADD",
            container_id: pod,
            netns: ns,
            ifname,
            plugin_path: &self.config.plugins_dir,
            timeout: self.config.plugin_timeout,
        };
        let mut previous: Option<Value> = None;
        for plugin in chain["plugins"].as_array().into_iter().flatten() {
            let kind = plugin["type"].as_str().unwrap_or_default().to_string();
            let mut conf = plugin.clone();
            if let Some(prev) = &previous {
                conf["prevResult"] = prev.clone();
            }
            tracing::info!(pod, network = %network.name, plugin = %kind, "CNI ADD");
            let out = exec::run(&kind, &conf, &call)
                .await
                .map_err(|message| CniError::Plugin {
                    network: network.name.clone(),
                    plugin: kind.clone(),
                    command: "ADD",
                    message,
                })?;
            previous = Some(out);
        }
        Ok(previous.unwrap_or(Value::Null))
    }

    /// `/etc/hostname`, `/etc/hosts` (localhost and the first IPv4 address
    /// under the hostname) and `/etc/resolv.conf` (the plugins' DNS, else the
    /// host's), as Mesos's `NetworkCniIsolatorProcess::_isolate` writes them.
    fn write_etc_files(
        &self,
        pod: &str,
        attached: &[Attached],
        dns: &result::Dns,
        hostname: &str,
    ) -> Result<(), CniError> {
        let write = |name: &str, text: &[u8]| {
            let path = self.paths.etc_file(pod, name);
            write_atomic(&path, text).map_err(CniError::io("cannot write", &path))
        };
        write("hostname", format!("{hostname}\n").as_bytes())?;
        let mut hosts =
            String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
        if let Some(ip) = attached
            .iter()
            .flat_map(|n| &n.addresses)
            .find(|a| a.ip.is_ipv4())
        {
            hosts.push_str(&format!("{} {hostname}\n", ip.ip));
        }
        write("hosts", hosts.as_bytes())?;
        let resolv = if dns.is_empty() {
            std::fs::read("/etc/resolv.conf").unwrap_or_default()
        } else {
            dns.resolv_conf().into_bytes()
        };
        write("resolv.conf", &resolv)
    }

    /// Runs DEL for every network the pod was (or was being) attached to,
    /// in reverse chain order with the ADD's config and result, then
    /// removes the netns and the pod's dir. Idempotent; a failing DEL is
    /// logged (Mesos's `_cleanup` then keeps the dir; the agent here has
    /// no better second chance, and the netns goes anyway).
    pub async fn detach(&self, pod: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pod);
        let dir = self.paths.pod(pod);
        if !dir.exists() {
            return;
        }
        let ns = self.paths.netns(pod);
        let networks: Vec<PathBuf> = std::fs::read_dir(self.paths.networks(pod))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        for network_dir in networks {
            if let Err(e) = self.del(pod, &ns, &network_dir).await {
                tracing::warn!(pod, "{e}");
            }
        }
        if let Err(e) = netns::remove(&ns) {
            tracing::warn!(pod, "{e}");
        }
        if let Err(e) = crate::safe_remove::remove_tree(&dir) {
            tracing::warn!(pod, dir = %dir.display(), "CNI dir left: {e}");
        }
    }

    async fn del(&self, pod: &str, ns: &Path, network_dir: &Path) -> Result<(), CniError> {
        let name = network_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let conf_path = network_dir.join("network.conf");
        let chain: Value = match std::fs::read(&conf_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CniError::BadConfig {
                network: name.clone(),
                file: conf_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CniError::io("cannot read", &conf_path)(e)),
        };
        let ifname = std::fs::read_dir(network_dir)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .unwrap_or_else(|| "eth0".to_string());
        let result: Option<Value> = std::fs::read(network_dir.join(&ifname).join("network.info"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        // A netns already gone (a reboot, or unmounted by hand) is passed
        // empty, as the CNI spec allows for DEL: plugins then still release
        // what they hold outside it (leases, iptables rules) instead of
        // failing on a file that is no namespace.
        let bound = netns::is_bound(ns);
        let call = exec::Invocation {
            command: "DEL",
            container_id: pod,
            netns: if bound { ns } else { Path::new("") },
            ifname: &ifname,
            plugin_path: &self.config.plugins_dir,
            timeout: self.config.plugin_timeout,
        };
        let version = chain["cniVersion"].as_str().unwrap_or("0.2.0").to_string();
        let mut failed = None;
        for plugin in chain["plugins"].as_array().into_iter().flatten().rev() {
            let kind = plugin["type"].as_str().unwrap_or_default().to_string();
            let mut conf = plugin.clone();
            // prevResult on DEL came with CNI 0.4.0.
            if let Some(result) = &result
                && !version.starts_with("0.1")
                && !version.starts_with("0.2")
                && !version.starts_with("0.3")
            {
                conf["prevResult"] = result.clone();
            }
            tracing::info!(pod, network = %name, plugin = %kind, "CNI DEL");
            if let Err(message) = exec::run(&kind, &conf, &call).await {
                failed.get_or_insert(CniError::Plugin {
                    network: name.clone(),
                    plugin: kind,
                    command: "DEL",
                    message,
                });
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// After an agent restart: the networks of pods still known (`live`),
    /// and DEL for every other pod dir (pods that died, or whose launch
    /// the agent never finished).
    pub async fn recover(&self, live: &[String]) {
        let dirs: Vec<String> = std::fs::read_dir(self.paths.root())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for pod in dirs {
            if live.contains(&pod) {
                let attached = self.read_attached(&pod);
                self.remember(&pod, attached);
            } else {
                tracing::info!(pod, "CNI networks of a pod that is gone: DEL");
                self.detach(&pod).await;
            }
        }
    }

    fn read_attached(&self, pod: &str) -> Vec<Attached> {
        let mut out = Vec::new();
        let dirs = std::fs::read_dir(self.paths.networks(pod))
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let conf: Value = std::fs::read(dir.join("network.conf"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !entry.path().is_dir() {
                    continue;
                }
                let ifname = entry.file_name().to_string_lossy().into_owned();
                let Some(result) = std::fs::read(entry.path().join("network.info"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                else {
                    continue;
                };
                let request: Option<NetworkRequest> = conf
                    .get("tepui")
                    .and_then(|t| serde_json::from_value(t.clone()).ok());
                out.push(Attached {
                    name: name.clone(),
                    ifname,
                    addresses: result::parse(&result).addresses,
                    labels: request
                        .as_ref()
                        .map(|r| r.labels.clone())
                        .unwrap_or_default(),
                    port_mappings: request.map(|r| r.port_mappings).unwrap_or_default(),
                });
            }
        }
        out.sort_by(|a, b| a.ifname.cmp(&b.ifname));
        out
    }
}

/// An IPv4 address seen as an IPv4-mapped IPv6 one (a dual-stack
/// listener) compared as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn write_json(path: &Path, value: &Value) -> Result<(), CniError> {
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    write_atomic(path, &bytes).map_err(CniError::io("cannot write", path))
}

/// The chain as sent to the plugins: each plugin's config with the
/// network's `name` and `cniVersion`, Mesos's `args` (`org.apache.mesos.
/// network_info`, refused in the operator's own args as Mesos does in
/// `NetworkCniIsolatorProcess::attach`) and, for plugins that declare the
/// `portMappings` capability, `runtimeConfig.portMappings` (the CNI
/// CONVENTIONS.md way; Mesos used its own port-mapper plugin instead).
/// The request itself is kept under `tepui` for recovery.
fn chain_for(network: &config::NetworkConfig, request: &NetworkRequest) -> Result<Value, CniError> {
    let bad = |message: String| CniError::BadConfig {
        network: network.name.clone(),
        file: network.file.clone(),
        message,
    };
    let network_info = json!({
        "name": request.name,
        "labels": {"labels": request.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()},
        "port_mappings": request.port_mappings.iter().map(|p| json!({
            "host_port": p.host_port, "container_port": p.container_port,
            "protocol": p.protocol.clone().unwrap_or_else(|| "tcp".into()),
        })).collect::<Vec<_>>(),
    });
    let mappings: Vec<Value> = request
        .port_mappings
        .iter()
        .map(|p| {
            json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol.clone().unwrap_or_else(|| "tcp".into()).to_lowercase(),
            })
        })
        .collect();
    let mut plugins = Vec::new();
    let mut mapped = false;
    for plugin in &network.plugins {
        let mut conf: Map<String, Value> = plugin.clone();
        conf.insert("name".into(), Value::String(network.name.clone()));
        conf.insert(
            "cniVersion".into(),
            Value::String(network.cni_version.clone()),
        );
        let mut args = match conf.remove("args") {
            None => Map::new(),
            Some(Value::Object(args)) => args,
            Some(_) => return Err(bad("'args' is not an object".into())),
        };
        if args.contains_key("org.apache.mesos") {
            return Err(bad(
                "'org.apache.mesos' in 'args' is reserved for the agent".into(),
            ));
        }
        args.insert(
            "org.apache.mesos".into(),
            json!({"network_info": network_info}),
        );
        conf.insert("args".into(), Value::Object(args));
        let wants_ports = conf
            .get("capabilities")
            .and_then(|c| c.get("portMappings"))
            .and_then(Value::as_bool)
            == Some(true);
        if wants_ports && !mappings.is_empty() {
            mapped = true;
            let runtime = conf
                .entry("runtimeConfig")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(runtime) = runtime {
                runtime.insert("portMappings".into(), Value::Array(mappings.clone()));
            }
        }
        plugins.push(Value::Object(conf));
    }
    if !mappings.is_empty() && !mapped {
        return Err(bad(
            "the task asks for port_mappings but no plugin of this network has the 'portMappings' capability (add the portmap plugin)".into(),
        ));
    }
    Ok(json!({
        "cniVersion": network.cni_version,
        "name": network.name,
        "plugins": plugins,
        "tepui": request,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PortMapping;

    #[test]
    fn an_address_names_its_pod_and_the_rest_of_the_subnet_names_no_one() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Cni::new(CniConfig {
            config_dir: dir.path().join("conf"),
            plugins_dir: String::new(),
            root_dir: dir.path().join("root"),
            plugin_timeout: Duration::from_secs(1),
        })
        .unwrap();
        let attached = |ip: &str| Attached {
            name: "n".into(),
            ifname: "eth0".into(),
            addresses: vec![Address::parse(ip).unwrap()],
            labels: Vec::new(),
            port_mappings: Vec::new(),
        };
        cni.remember("pod-a", vec![attached("10.88.7.10/24")]);
        cni.remember("pod-b", vec![attached("10.88.7.11/24")]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            cni.owner_of(ip("10.88.7.10")),
            AddressOwner::Pod("pod-a".into())
        );
        assert_eq!(
            cni.owner_of(ip("10.88.7.11")),
            AddressOwner::Pod("pod-b".into())
        );
        // Another address of the bridge's subnet (a pod that changed its
        // own address, or one of another agent's): no operator.
        assert_eq!(cni.owner_of(ip("10.88.7.99")), AddressOwner::Network);
        assert_eq!(cni.owner_of(ip("192.0.2.7")), AddressOwner::NotOurs);
        // A removed pod's address is no one's, but still of the network.
        cni.pods.lock().unwrap().remove("pod-a");
        assert_eq!(cni.owner_of(ip("10.88.7.10")), AddressOwner::Network);
        assert_eq!(
            canonical_ip("::ffff:10.88.7.11".parse().unwrap()),
            ip("10.88.7.11")
        );
    }

    #[test]
    fn the_chain_carries_mesos_args_and_port_mappings_to_capable_plugins_only() {
        let (_, network) = config::parse(
            Path::new("n.conflist"),
            br#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","args":{"x":1}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let network = network.unwrap();
        let request = NetworkRequest {
            name: "n".into(),
            labels: vec![("team".into(), "a".into())],
            port_mappings: vec![PortMapping {
                host_port: 18080,
                container_port: 8080,
                protocol: None,
            }],
        };
        let chain = chain_for(&network, &request).unwrap();
        let plugins = chain["plugins"].as_array().unwrap();
        assert_eq!(plugins[0]["name"], "n");
        assert_eq!(plugins[0]["args"]["x"], 1);
        assert_eq!(
            plugins[0]["args"]["org.apache.mesos"]["network_info"]["labels"]["labels"][0]["key"],
            "team"
        );
        assert!(plugins[0].get("runtimeConfig").is_none());
        assert_eq!(
            plugins[1]["runtimeConfig"]["portMappings"][0],
            json!({"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"})
        );
        let (_, plain) =
            config::parse(Path::new("p.conf"), br#"{"name":"p","type":"bridge"}"#).unwrap();
        let err = chain_for(
            &plain.unwrap(),
            &NetworkRequest {
                name: "p".into(),
                ..request.clone()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("portMappings"), "{err}");
        let (_, reserved) = config::parse(
            Path::new("r.conf"),
            br#"{"name":"r","type":"bridge","args":{"org.apache.mesos":{}}}"#,
        )
        .unwrap();
        let err = chain_for(
            &reserved.unwrap(),
            &NetworkRequest {
                name: "r".into(),
                labels: vec![],
                port_mappings: vec![],
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("reserved"), "{err}");
    }
}
