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
use oci_spec::runtime::{LinuxNamespaceType, RootBuilder, Spec};
use tepui_containerizer::supervisor::client::{self, SupervisorExe};
use tepui_containerizer::supervisor::protocol::LaunchRequest;
use tepui_containerizer::{ContainerPath, RuntimeDir};

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
    let runtime_dir =
        RuntimeDir::new(Path::new("/dev/shm").join(format!("tepui-bench-{}", std::process::id())));
    let exe = SupervisorExe::sealed_copy_of(Path::new(env!("CARGO_BIN_EXE_tepui"))).unwrap();
    let cgroup_root = format!("tepui-bench-{}", std::process::id());

    // A warm pod: its supervisor and executor container stay up, each
    // iteration launches a nested /bin/true in it.
    let warm = rt
        .block_on(client::spawn(&exe, &runtime_dir, "warm"))
        .unwrap();
    let warm_top = ContainerPath::new(vec!["warm".into()]).unwrap();
    let req = write_bundle(
        &runtime_dir,
        &warm_top,
        &["/bin/sleep", "1000"],
        &cgroup_root,
        None,
        work.as_path(),
    );
    let warm_pid = rt.block_on(warm.launch(req)).unwrap();

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
        let req = write_bundle(
            &runtime_dir,
            &id,
            &["/bin/true"],
            &cgroup_root,
            Some(warm_pid),
            work.as_path(),
        );
        let t = Instant::now();
        rt.block_on(async {
            warm.launch(req).await.unwrap();
            let term = warm.wait(&id).await.unwrap();
            assert_eq!(term.exit_code, Some(0));
            warm.remove(&id).await.unwrap();
        });
        samples[0].1.push(t.elapsed());

        // tepui, a new pod: supervisor start included.
        let pod = format!("cold{i}");
        let id = ContainerPath::new(vec![pod.clone()]).unwrap();
        let t = Instant::now();
        rt.block_on(async {
            let sup = client::spawn(&exe, &runtime_dir, &pod).await.unwrap();
            let req = write_bundle(
                &runtime_dir,
                &id,
                &["/bin/true"],
                &cgroup_root,
                None,
                work.as_path(),
            );
            sup.launch(req).await.unwrap();
            assert_eq!(sup.wait(&id).await.unwrap().exit_code, Some(0));
            sup.remove(&id).await.unwrap();
        });
        samples[1].1.push(t.elapsed());

        for (k, peer) in peers.iter().enumerate() {
            let bundle = work.as_path().join(format!("{peer}-{i}"));
            std::fs::create_dir_all(&bundle).unwrap();
            let spec = spec_for(
                &rootfs,
                &["/bin/true"],
                &format!("/{cgroup_root}/{peer}-{i}"),
                None,
            );
            spec.save(bundle.join("config.json")).unwrap();
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
    let supervisor_pid = std::fs::read_to_string(runtime_dir.supervisor_pid("warm")).unwrap();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", supervisor_pid.trim())).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?");
    rt.block_on(async {
        warm.kill(&warm_top, Duration::ZERO).await.unwrap();
        warm.wait(&warm_top).await.unwrap();
        warm.remove(&warm_top).await.unwrap();
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
    println!(
        "warm supervisor after {iterations} launches: {}",
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
    let _ = tepui_containerizer::safe_remove::remove_tree(runtime_dir.root());
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

fn spec_for(rootfs: &Path, args: &[&str], cgroup: &str, join_pid: Option<i32>) -> Spec {
    let mut spec = Spec::default();
    spec.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(false)
            .build()
            .unwrap(),
    ));
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut linux = spec.linux().clone().unwrap();
    linux.set_cgroups_path(Some(cgroup.into()));
    if let Some(pid) = join_pid {
        let namespaces = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|mut ns| {
                let name = match ns.typ() {
                    LinuxNamespaceType::Network => Some("net"),
                    LinuxNamespaceType::Ipc => Some("ipc"),
                    LinuxNamespaceType::Uts => Some("uts"),
                    _ => None,
                };
                if let Some(name) = name {
                    ns.set_path(Some(format!("/proc/{pid}/ns/{name}").into()));
                }
                ns
            })
            .collect();
        linux.set_namespaces(Some(namespaces));
    }
    spec.set_linux(Some(linux));
    spec
}

fn write_bundle(
    rt: &RuntimeDir,
    id: &ContainerPath,
    args: &[&str],
    cgroup_root: &str,
    join_pid: Option<i32>,
    work: &Path,
) -> LaunchRequest {
    let bundle = rt.bundle(id);
    std::fs::create_dir_all(&bundle).unwrap();
    let cgroup = format!("/{cgroup_root}/{}/{}", id.pod(), id.parts().join("."));
    spec_for(&rt.hostfs(id.pod()), args, &cgroup, join_pid)
        .save(bundle.join("config.json"))
        .unwrap();
    LaunchRequest {
        container: id.clone(),
        stdout: work.join("bench.stdout"),
        stderr: work.join("bench.stderr"),
        cgroup: Some(cgroup),
    }
}
