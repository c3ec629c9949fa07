//! Launch latency of a pod on a CNI network (netns + bridge/host-local ADD,
//! and DEL on removal) against a host-network pod, interleaved, same run:
//! the cost issue 22's networks add to a pod start.
//!
//! Run as root with Debian's plugins in /usr/lib/cni:
//! `cargo bench --bench cni_launch` (ITERATIONS=N to change 30). The bench
//! owns its bridge (`tpcnib<pid>`, 10.89.<k>.0/24) and removes it, with its
//! host-local lease dir, at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tepui_containerizer::cni::CniConfig;
use tepui_containerizer::spec::{ContainerKind, LaunchSpec, NetworkRequest};
use tepui_containerizer::{ContainerPath, Containerizer, ContainerizerConfig};

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the CNI launch benchmark needs root (namespaces, bridges)");
        return;
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("the CNI launch benchmark needs containernetworking-plugins (/usr/lib/cni)");
        return;
    }
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let pid = std::process::id();
    let network = format!("tepui-bench-{pid}");
    let bridge = format!("tpcnib{}", pid % 100_000);
    let subnet = format!("10.89.{}", pid % 250);
    let work = tempfile::tempdir().unwrap().keep();
    let config_dir = work.join("cni.d");
    std::fs::create_dir_all(&config_dir).unwrap();
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": network, "type": "bridge", "bridge": bridge,
        "isGateway": true, "ipMasq": false,
        "ipam": {"type": "host-local", "subnet": format!("{subnet}.0/24")}
    });
    std::fs::write(config_dir.join("10-bench.conf"), conf.to_string()).unwrap();

    let runtime_dir = Path::new("/dev/shm").join(format!("tepui-bench-{pid}"));
    let cgroup_root = format!("tepui-bench-{pid}");
    let mut config = ContainerizerConfig::new(&runtime_dir);
    config.cgroups_root = cgroup_root.clone();
    config.supervisor_binary = PathBuf::from(env!("CARGO_BIN_EXE_tepui"));
    config.cni = Some(CniConfig {
        config_dir,
        plugins_dir: "/usr/lib/cni".into(),
        root_dir: runtime_dir.join("cni"),
        plugin_timeout: Duration::from_secs(30),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let containerizer = Containerizer::new(config).unwrap();
    let sandbox = work.join("sandbox");

    // (launch until the process runs, the whole launch+wait+remove)
    let mut host: Vec<(Duration, Duration)> = Vec::new();
    let mut cni: Vec<(Duration, Duration)> = Vec::new();
    for i in 0..iterations {
        for (on_network, samples) in [(false, &mut host), (true, &mut cni)] {
            let id = ContainerPath::new(vec![format!("p{i}-{on_network}")]).unwrap();
            let command =
                tepui_containerizer::spec::Command::exec("/bin/true", vec!["/bin/true".into()]);
            let mut spec =
                LaunchSpec::new(id.clone(), ContainerKind::Standalone, command, &sandbox);
            if on_network {
                spec.networks = vec![NetworkRequest {
                    name: network.clone(),
                    labels: Vec::new(),
                    port_mappings: Vec::new(),
                }];
            }
            let t = Instant::now();
            let (launched, total) = rt.block_on(async {
                containerizer.launch(spec).await.unwrap();
                let launched = t.elapsed();
                assert_eq!(containerizer.wait(&id).await.unwrap().exit_code, Some(0));
                containerizer.remove(&id).await.unwrap();
                (launched, t.elapsed())
            });
            samples.push((launched, total));
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let stats = |s: &[(Duration, Duration)]| {
        let (mut a, mut b): (Vec<_>, Vec<_>) = s.iter().copied().unzip();
        (median(&mut a), median(&mut b))
    };
    let (host_launch, host_total) = stats(&host);
    let (cni_launch, cni_total) = stats(&cni);
    println!("\npod launch of /bin/true, {iterations} iterations each, interleaved");
    println!(
        "{:<28} {:>14} {:>22} {:>10}",
        "pod", "launch ms", "launch+wait+remove ms", "vs host"
    );
    println!(
        "{:<28} {:>14.2} {:>22.2} {:>10}",
        "host network", host_launch, host_total, "1.00x"
    );
    println!(
        "{:<28} {:>14.2} {:>22.2} {:>9.2}x",
        "CNI bridge + host-local",
        cni_launch,
        cni_total,
        cni_launch / host_launch
    );

    let _ = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .status();
    let _ = std::fs::remove_dir_all(Path::new("/var/lib/cni/networks").join(&network));
    let _ = tepui_containerizer::safe_remove::remove_tree(&runtime_dir);
    if let Err(e) = tepui_containerizer::safe_remove::remove_tree(&work) {
        eprintln!("left {} in place: {e}", work.display());
    }
    for dir in [
        "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "systemd",
    ] {
        let base = PathBuf::from("/sys/fs/cgroup").join(dir).join(&cgroup_root);
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&base);
    }
}
