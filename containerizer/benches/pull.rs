//! Pull + unpack of the ~56 MiB, 6-layer `big` image from the loopback
//! registry (scripts/oci-testenv.sh), interleaved in one run with
//! `skopeo copy` + `umoci unpack`, `podman pull` (when installed) and the
//! `gzip -dc` floor, with cold caches (fresh stores) each run.
//!
//!   bash scripts/oci-testenv.sh --dir target/oci-testenv up
//!   cargo bench -p tepui-containerizer --bench pull   # BENCH_RUNS=5
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tepui_containerizer::images::ImageStore;
use tepui_containerizer::safe_remove::remove_tree;
use tepui_fetcher::registry::RegistryConfig;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn run(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

/// Untimed: flush the previous step's dirty pages so they do not bill the next.
fn sync() {
    let _ = Command::new("sync").status();
}

fn podman(pr: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", pr.join("containers.conf"))
        .arg("--root")
        .arg(pr.join("root"))
        // podman refuses a runroot longer than 50 characters.
        .arg("--runroot")
        .arg(format!("/tmp/tepui-bench-podman-{}", std::process::id()))
        .args(["--storage-driver", "overlay"]);
    c
}

fn main() {
    let env_path = std::env::var_os("OCI_TESTENV_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/oci-testenv/env.json")
        });
    let Ok(text) = std::fs::read_to_string(&env_path) else {
        eprintln!(
            "pull bench: {} missing; run `bash scripts/oci-testenv.sh --dir target/oci-testenv up`",
            env_path.display()
        );
        return;
    };
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    let host = env["registries"]["plain"]["host"]
        .as_str()
        .unwrap()
        .to_string();
    let testenv = PathBuf::from(env["dir"].as_str().unwrap());
    let layout = PathBuf::from(env["layout"].as_str().unwrap());
    let policy = testenv.join("policy.json");
    let big = &env["images"]["big"];
    let blobs: Vec<String> = big["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            layout.join("blobs/sha256").join(hex).display().to_string()
        })
        .collect();
    let size_mib = big["compressed_size"].as_f64().unwrap() / 1048576.0;
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let have_podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let work = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| testenv.join("bench-pull"));
    let reference = format!("{host}/big:latest");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut ours, mut skopeo_umoci, mut pod, mut gzip) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        remove_tree(&work).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        sync();
        let store = ImageStore::open(
            work.join("tepui"),
            RegistryConfig {
                http_hosts: vec![host.clone()],
                stall_timeout: Duration::from_secs(30),
                ..RegistryConfig::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        let image = rt.block_on(store.pull(&reference, None)).unwrap();
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(image.layers.len(), blobs.len());
        sync();
        let oci = work.join("oci");
        let a = run(Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:big", oci.display())));
        let b = run(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:big", oci.display()))
            .arg(work.join("bundle")));
        skopeo_umoci.push(a + b);
        sync();
        if have_podman {
            let pr = work.join("podman");
            std::fs::create_dir_all(pr.join("tmp")).unwrap();
            std::fs::write(
                pr.join("containers.conf"),
                format!(
                    "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\nimage_copy_tmp_dir = \"{0}/tmp\"\ncgroup_manager = \"cgroupfs\"\n",
                    pr.display()
                ),
            )
            .unwrap();
            pod.push(run(podman(&pr)
                .args(["pull", "-q", "--tls-verify=false"])
                .arg(&reference)));
            // podman may keep its store's overlay mount: reset unmounts it before removal.
            let _ = podman(&pr).args(["system", "reset", "-f"]).output();
            sync();
        }
        gzip.push(run(Command::new("sh")
            .arg("-c")
            .arg(format!("cat {} | gzip -dc > /dev/null", blobs.join(" ")))));
        eprintln!(
            "run {}: tepui {:.2}s  skopeo+umoci {:.2}s  podman {}  gzip {:.2}s",
            i + 1,
            ours[i],
            skopeo_umoci[i],
            pod.get(i).map_or("-".to_string(), |p| format!("{p:.2}s")),
            gzip[i]
        );
    }
    remove_tree(&work).unwrap();
    let _ = remove_tree(Path::new(&format!(
        "/tmp/tepui-bench-podman-{}",
        std::process::id()
    )));
    let m = median(&mut ours);
    let su = median(&mut skopeo_umoci);
    let g = median(&mut gzip);
    println!(
        "pull + unpack {reference}: {} layers, {size_mib:.1} MiB compressed, {runs} runs (median wall s)",
        blobs.len()
    );
    println!("  {:<28} {:>6.2}", "tepui ImageStore::pull", m);
    println!(
        "  {:<28} {:>6.2}   tepui/x = {:.2}",
        "skopeo copy + umoci unpack",
        su,
        m / su
    );
    if have_podman {
        let p = median(&mut pod);
        println!(
            "  {:<28} {:>6.2}   tepui/x = {:.2}",
            "podman pull (overlay)",
            p,
            m / p
        );
    } else {
        println!("  podman: not installed, skipped");
    }
    println!(
        "  {:<28} {:>6.2}   tepui/x = {:.2}",
        "gzip -dc of all layers",
        g,
        m / g
    );
}
