//! 1000 `sleep` containers on one agent through tepui's containerizer:
//! once as 1000 single-container pods, once as 100 pods of 10 nested
//! containers. Prints the time to launch them all, the time to destroy them
//! all, and each idle supervisor's memory (RSS; PSS: shared pages divided
//! among their users, what one more pod really costs; anonymous memory).
//!
//! Run as root: `cargo bench --bench scale` (COUNT=N containers instead of
//! 1000, PARALLEL=N launches in flight instead of 32).
//! Reference: Mesos 1.7 needed ~30 s and ~22 s on a 24-core host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tepui_containerizer::spec::{Command, ContainerKind, LaunchSpec};
use tepui_containerizer::{ContainerPath, Containerizer, ContainerizerConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the scale benchmark needs root (real containers)");
        return;
    }
    let count = env_usize("COUNT", 1000);
    let parallel = env_usize("PARALLEL", 32);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tag = format!("tepui-bench-{}", std::process::id());
    // Production runtime dirs live on tmpfs (/run/tepui); /run is not one here.
    let runtime_dir = Path::new("/dev/shm").join(&tag);
    let work = tempfile::tempdir().unwrap().keep();
    let mut config = ContainerizerConfig::new(&runtime_dir);
    config.cgroups_root = tag.clone();
    config.supervisor_binary = PathBuf::from(env!("CARGO_BIN_EXE_tepui"));
    let c = Arc::new(Containerizer::new(config).unwrap());

    let pods_flat: Vec<Vec<ContainerPath>> = (0..count)
        .map(|i| vec![ContainerPath::new(vec![format!("flat{i}")]).unwrap()])
        .collect();
    let pods_nested: Vec<Vec<ContainerPath>> = (0..count / 10)
        .map(|i| {
            let top = ContainerPath::new(vec![format!("pod{i}")]).unwrap();
            let mut members = vec![top.clone()];
            // The executor plus 9 tasks: 10 containers per pod.
            members.extend((1..10).map(|k| top.child(&format!("t{k}")).unwrap()));
            members
        })
        .collect();

    println!(
        "\n{count} sleep containers, {parallel} launches in flight, cgroup {:?}",
        c.cgroup_mode()
    );
    println!(
        "{:<26} {:>10} {:>11} {:>12} {:>12} {:>12}",
        "layout", "launch s", "destroy s", "RSS/pod kB", "PSS/pod kB", "anon/pod kB"
    );
    for (name, pods) in [
        (format!("{count} pods x 1"), pods_flat),
        (format!("{} pods x 10 nested", count / 10), pods_nested),
    ] {
        let (launch, destroy, rss, pss, anon) = rt.block_on(run(c.clone(), &work, pods, parallel));
        println!(
            "{name:<26} {:>10.2} {:>11.2} {rss:>12} {pss:>12} {anon:>12}",
            launch.as_secs_f64(),
            destroy.as_secs_f64()
        );
    }
    let _ = tepui_containerizer::safe_remove::remove_tree(&runtime_dir);
    let _ = tepui_containerizer::safe_remove::remove_tree(&work);
    for controller in [
        "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "blkio", "cpuset", "systemd",
    ] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(controller).join(&tag));
    }
}

/// Launches every pod (its members in order, nested after their parent),
/// at most `parallel` launches at once; measures the supervisors; destroys
/// all pods the same way.
async fn run(
    c: Arc<Containerizer>,
    work: &Path,
    pods: Vec<Vec<ContainerPath>>,
    parallel: usize,
) -> (Duration, Duration, u64, u64, u64) {
    let gate = Arc::new(Semaphore::new(parallel));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for members in &pods {
        let c = c.clone();
        let gate = gate.clone();
        let members = members.clone();
        let sandboxes = work.join("sandboxes");
        set.spawn(async move {
            for id in members {
                let _permit = gate.acquire().await.unwrap();
                let kind = if id.is_nested() {
                    ContainerKind::Task
                } else {
                    ContainerKind::Executor
                };
                let command = Command::exec("/bin/sleep", vec!["sleep".into(), "1000".into()]);
                let sandbox = sandboxes.join(id.parts().join("."));
                c.launch(LaunchSpec::new(id, kind, command, sandbox))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    let launch = started.elapsed();

    // Measured idle, as most pods are: a supervisor drops the code pages a
    // launch touched half a second after it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut rss, mut pss, mut anon) = (0, 0, 0);
    for members in &pods {
        let pid: i32 = std::fs::read_to_string(c.runtime_dir().supervisor_pid(members[0].pod()))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        rss += kb(pid, "status", "VmRSS:");
        pss += kb(pid, "smaps_rollup", "Pss:");
        anon += kb(pid, "smaps_rollup", "Anonymous:");
    }
    if std::env::var("SMAPS").is_ok() {
        let pid =
            std::fs::read_to_string(c.runtime_dir().supervisor_pid(pods[0][0].pod())).unwrap();
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", pid.trim())).unwrap();
        println!("{smaps}");
    }

    let started = Instant::now();
    for members in &pods {
        let c = c.clone();
        let gate = gate.clone();
        let top = members[0].clone();
        set.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            c.destroy(&top, Duration::ZERO).await.unwrap();
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    let destroy = started.elapsed();
    let n = pods.len() as u64;
    (launch, destroy, rss / n, pss / n, anon / n)
}

fn kb(pid: i32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
