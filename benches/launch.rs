//! create + start + wait + destroy of `/bin/true`: tepui's containerizer
//! (supervisor included) against `crun run` and `runc run`, interleaved, on
//! the same rootfs, in the same run. Prints medians and ratios.
//!
//! Run as root: `cargo bench --bench launch` (ITERATIONS=N to change 50).
//!
//! Like DESIGN.md's measurement, everything runs in a private mount
//! namespace with the cgroup2 `unified` mount unmounted, because crun refuses
//! this machine's hybrid layout; all three runtimes get the same view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount, umount2};
use tepui_containerizer::spec::{ContainerKind, LaunchSpec, SpecContext, build_spec};
use tepui_containerizer::{ContainerPath, Containerizer, ContainerizerConfig};

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the launch benchmark needs root (real containers)");
        return;
    }
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let _ = umount2("/sys/fs/cgroup/unified", nix::mount::MntFlags::MNT_DETACH);

    // Never a TempDir: its drop would remove_dir_all through the rootfs
    // bind of `/` if the unmount failed. Removed only via safe_remove below.
    let work = tempfile::tempdir().unwrap().keep();
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    mount(
        Some("/"),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap();

    let peers: Vec<&str> = ["crun", "runc"]
        .into_iter()
        .filter(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Production runtime dirs live on tmpfs (/run/tepui); /run is not one here.
    let runtime_dir = Path::new("/dev/shm").join(format!("tepui-bench-{}", std::process::id()));
    let cgroup_root = format!("tepui-bench-{}", std::process::id());
    let mut config = ContainerizerConfig::new(&runtime_dir);
    config.cgroups_root = cgroup_root.clone();
    config.supervisor_binary = PathBuf::from(env!("CARGO_BIN_EXE_tepui"));
    // crun cannot mount sysfs without its own network namespace; every
    // runtime gets one so they all do the same work.
    config.host_network = false;
    let containerizer = Containerizer::new(config).unwrap();
    let sandbox = work.join("sandbox");

    // A warm pod: its supervisor and executor container stay up, each
    // iteration launches a nested /bin/true in it.
    let warm_top = ContainerPath::new(vec!["warm".into()]).unwrap();
    let spec = launch_spec(
        &warm_top,
        ContainerKind::Executor,
        &["/bin/sleep", "1000"],
        &sandbox,
    );
    let warm_pid = rt.block_on(containerizer.launch(spec)).unwrap().pid;

    let mut samples: Vec<(&str, Vec<Duration>)> = vec![
        ("tepui warm (nested)", vec![]),
        ("tepui cold (new pod)", vec![]),
    ];
    for p in &peers {
        samples.push((p, vec![]));
    }
    for i in 0..iterations {
        // tepui, warm supervisor.
        let id = warm_top.child(&format!("t{i}")).unwrap();
        let spec = launch_spec(&id, ContainerKind::Task, &["/bin/true"], &sandbox);
        let t = Instant::now();
        rt.block_on(async {
            containerizer.launch(spec).await.unwrap();
            let term = containerizer.wait(&id).await.unwrap();
            assert_eq!(term.exit_code, Some(0));
            containerizer.remove(&id).await.unwrap();
        });
        samples[0].1.push(t.elapsed());

        // tepui, a new pod: cgroup and supervisor start included.
        let id = ContainerPath::new(vec![format!("cold{i}")]).unwrap();
        let spec = launch_spec(&id, ContainerKind::Standalone, &["/bin/true"], &sandbox);
        let t = Instant::now();
        rt.block_on(async {
            containerizer.launch(spec).await.unwrap();
            assert_eq!(containerizer.wait(&id).await.unwrap().exit_code, Some(0));
            containerizer.remove(&id).await.unwrap();
        });
        samples[1].1.push(t.elapsed());

        // The peers run the very spec tepui's supervisor builds.
        for (k, peer) in peers.iter().enumerate() {
            let bundle = work.as_path().join(format!("{peer}-{i}"));
            std::fs::create_dir_all(&bundle).unwrap();
            let id = ContainerPath::new(vec![format!("{peer}-{i}")]).unwrap();
            let spec = launch_spec(&id, ContainerKind::Standalone, &["/bin/true"], &sandbox);
            let ctx = SpecContext::new(format!("/{cgroup_root}/{peer}-{i}"), &rootfs);
            build_spec(&spec, &ctx)
                .unwrap()
                .save(bundle.join("config.json"))
                .unwrap();
            let t = Instant::now();
            let status = Command::new(peer)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("bench-{peer}-{i}"))
                .stdin(std::process::Stdio::null())
                .status()
                .unwrap();
            samples[2 + k].1.push(t.elapsed());
            assert!(status.success(), "{peer} run failed");
            let _ = std::fs::remove_dir_all(&bundle);
        }
    }
    let supervisor_pid =
        std::fs::read_to_string(containerizer.runtime_dir().supervisor_pid("warm")).unwrap();
    let memory = process_memory(supervisor_pid.trim().parse().unwrap());
    let _ = warm_pid;
    rt.block_on(async {
        containerizer
            .destroy(&warm_top, Duration::ZERO)
            .await
            .unwrap();
    });

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let medians: Vec<(String, f64)> = samples
        .iter_mut()
        .map(|(n, v)| (n.to_string(), median(v)))
        .collect();
    let crun = medians.iter().find(|(n, _)| n == "crun").map(|(_, m)| *m);
    println!("\nlaunch /bin/true: create+start+wait+destroy, {iterations} iterations, interleaved");
    println!("{:<24} {:>10} {:>12}", "runtime", "median ms", "vs crun");
    for (name, m) in &medians {
        let ratio = crun.map_or("-".to_string(), |c| format!("{:.2}x", m / c));
        println!("{name:<24} {m:>10.2} {ratio:>12}");
    }
    println!("warm supervisor after {iterations} launches: {memory}");
    let _ = tepui_containerizer::safe_remove::remove_tree(&runtime_dir);
    let _ = umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
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

/// A host-filesystem container running `args` (argv form).
fn launch_spec(
    id: &ContainerPath,
    kind: ContainerKind,
    args: &[&str],
    sandbox: &Path,
) -> LaunchSpec {
    let command = tepui_containerizer::spec::Command::exec(
        args[0],
        args.iter().map(|s| s.to_string()).collect(),
    );
    LaunchSpec::new(id.clone(), kind, command, sandbox)
}

/// RSS and PSS (shared pages divided among their users: what one more
/// supervisor really costs) of a process, from /proc.
fn process_memory(pid: i32) -> String {
    let field = |file: &str, name: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "RSS {} kB, PSS {} kB",
        field("status", "VmRSS:"),
        field("smaps_rollup", "Pss:")
    )
}
