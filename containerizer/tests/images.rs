//! Image pulls against the real docker-registry instances started by
//! `scripts/oci-testenv.sh up` (plain http, https + basic auth, https +
//! bearer tokens; see `target/oci-testenv/env.json`). Without that
//! environment the tests print how to start it and pass, except under
//! CI=true, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tepui_containerizer::images::{ImageStore, PullProgress, RootfsBackend};
use tepui_containerizer::safe_remove::remove_tree;
use tepui_fetcher::registry::{Credentials, RegistryConfig};

struct Env {
    json: Value,
}

impl Env {
    fn load(test: &str) -> Option<Env> {
        let path = std::env::var_os("OCI_TESTENV_JSON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/oci-testenv/env.json")
            });
        let ok = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        let running = ok.as_ref().is_some_and(|j| {
            let host = j["registries"]["plain"]["host"].as_str().unwrap_or("");
            std::net::TcpStream::connect(host).is_ok()
        });
        match (ok, running) {
            (Some(json), true) => Some(Env { json }),
            _ => {
                let msg = format!(
                    "{test}: the OCI test registries are not running ({} missing or stale); start them with \
                     `bash scripts/oci-testenv.sh --dir target/oci-testenv up`",
                    path.display()
                );
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{msg} (CI=true forbids skipping)");
                }
                eprintln!("skipping {msg}");
                None
            }
        }
    }

    fn host(&self, which: &str) -> String {
        self.json["registries"][which]["host"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn creds(&self) -> Credentials {
        Credentials::new(
            self.json["user"].as_str().unwrap(),
            self.json["password"].as_str().unwrap(),
        )
    }

    fn image(&self, name: &str) -> &Value {
        &self.json["images"][name]
    }

    fn config(&self) -> RegistryConfig {
        RegistryConfig {
            http_hosts: vec![self.host("plain")],
            ca_bundle: Some(PathBuf::from(self.json["ca_cert"].as_str().unwrap())),
            retries: 2,
            backoff: Duration::from_millis(50),
            ..RegistryConfig::default()
        }
    }

    fn store(&self, root: &Path) -> ImageStore {
        ImageStore::open(root, self.config()).unwrap()
    }
}

fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root (device nodes, owners, overlay), and CI=true forbids skipping");
    }
    eprintln!("skipping {test}: needs root");
    false
}

/// A fresh directory that is never auto-removed by a Drop (it may hold a
/// mount); tests remove it with `remove_tree`, which refuses mounts.
fn scratch() -> PathBuf {
    tempfile::Builder::new()
        .prefix("tepui-images-test-")
        .tempdir()
        .unwrap()
        .keep()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn pulls_busybox_by_tag_and_digest_in_oci_and_schema2_and_runs_it() {
    let Some(env) = Env::load("pulls_busybox") else {
        return;
    };
    if !require_root("pulls_busybox") {
        return;
    }
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let plain = env.host("plain");
    let oci_digest = env.image("busybox")["oci_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = rt();
    for reference in [
        format!("{plain}/busybox:latest"),
        format!("{plain}/busybox:v2s2"),
        format!("{plain}/busybox@{oci_digest}"),
    ] {
        let image = rt.block_on(store.pull(&reference, None)).unwrap();
        assert_eq!(image.layers.len(), 1, "{reference}");
        assert_eq!(image.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(image.layers[0].join("bin/busybox").is_file());
        if !reference.ends_with("v2s2") {
            assert_eq!(image.manifest_digest, oci_digest);
        }
    }
    // One layer blob shared by all three: fetched once, then cache hits.
    assert_eq!(store.metrics().layers_fetched.load(Ordering::Relaxed), 1);
    assert_eq!(store.metrics().layer_cache_hits.load(Ordering::Relaxed), 2);
    // Run busybox from a copied rootfs (no mount needed).
    let image = rt
        .block_on(store.pull(&format!("{plain}/busybox:latest"), None))
        .unwrap();
    let copy = env
        .store(&dir.join("store"))
        .with_backend(RootfsBackend::Copy);
    let rootfs = copy.provision(&image, &dir.join("c1")).unwrap();
    assert_eq!(rootfs.backend, RootfsBackend::Copy);
    let out = Command::new("chroot")
        .arg(&rootfs.path)
        .args(["/bin/sh", "-c", "echo hello from $(cat /etc/hostname)"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from oci-testenv\n"
    );
    copy.release(&rootfs).unwrap();
    assert!(!dir.join("c1").exists());
    remove_tree(&dir).unwrap();
}

#[test]
fn an_index_resolves_to_the_host_platform() {
    let Some(env) = Env::load("index_platform") else {
        return;
    };
    if !require_root("index_platform") {
        return;
    }
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let plain = env.host("plain");
    let busybox = env.image("busybox")["oci_digest"].as_str().unwrap();
    let rt = rt();
    let oci = rt
        .block_on(store.pull(&format!("{plain}/multi:latest"), None))
        .unwrap();
    assert_eq!(
        oci.manifest_digest, busybox,
        "OCI index picks the native manifest"
    );
    let list = rt
        .block_on(store.pull(&format!("{plain}/multi:v2s2"), None))
        .unwrap();
    assert_eq!(
        list.layer_digests.len(),
        1,
        "Docker manifest list resolves too"
    );
    assert_eq!(list.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    remove_tree(&dir).unwrap();
}

#[test]
fn basic_and_token_auth_over_tls() {
    let Some(env) = Env::load("auth") else { return };
    if !require_root("auth") {
        return;
    }
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let (basic, token) = (env.host("basic"), env.host("token"));
    let good = env.creds();
    let bad = Credentials::new(good.username.clone(), "wrong-password");
    let rt = rt();
    // basic auth over TLS with the test CA
    rt.block_on(store.pull(&format!("{basic}/busybox:latest"), Some(&good)))
        .unwrap();
    let e = rt
        .block_on(store.pull(&format!("{basic}/busybox:v2s2"), Some(&bad)))
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    assert!(e.to_string().contains("authentication failed"), "{e}");
    let e = rt
        .block_on(store.pull(&format!("{basic}/busybox:latest"), None))
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    // bearer tokens: anonymous pull of a public repo, credentials for private/
    rt.block_on(store.pull(&format!("{token}/busybox:v2s2"), None))
        .unwrap();
    rt.block_on(store.pull(&format!("{token}/private/busybox:latest"), Some(&good)))
        .unwrap();
    let e = rt
        .block_on(store.pull(&format!("{token}/private/busybox:latest"), None))
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    let e = rt
        .block_on(store.pull(&format!("{token}/private/busybox:latest"), Some(&bad)))
        .unwrap_err();
    assert!(
        e.is_unauthorized() && e.to_string().contains("refused the credentials"),
        "{e}"
    );
    // without the test CA, TLS fails with a clear error
    let no_ca = ImageStore::open(
        dir.join("store2"),
        RegistryConfig {
            ca_bundle: None,
            retries: 0,
            ..env.config()
        },
    )
    .unwrap();
    let e = rt
        .block_on(no_ca.pull(&format!("{basic}/busybox:latest"), Some(&good)))
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    remove_tree(&dir).unwrap();
}

fn tree(env: &Env, root: &Path) -> String {
    let py = Path::new(env.json["dir"].as_str().unwrap()).join("bin/oci_testenv.py");
    let out = Command::new("python3")
        .arg(py)
        .arg("tree")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_same_tree(expected: &str, actual: &str) {
    if expected.trim_end() != actual.trim_end() {
        let e: std::collections::BTreeSet<&str> = expected.lines().collect();
        let a: std::collections::BTreeSet<&str> = actual.lines().collect();
        let missing: Vec<_> = e.difference(&a).collect();
        let extra: Vec<_> = a.difference(&e).collect();
        panic!(
            "rootfs differs from umoci's:\nonly in umoci: {missing:#?}\nonly in ours: {extra:#?}"
        );
    }
}

#[test]
fn whiteouts_opaque_dirs_links_xattrs_and_setuid_match_umoci() {
    let Some(env) = Env::load("layers_tree") else {
        return;
    };
    if !require_root("layers_tree") {
        return;
    }
    let expected =
        std::fs::read_to_string(env.json["expected_layers_tree"].as_str().unwrap()).unwrap();
    let dir = scratch();
    let store = env
        .store(&dir.join("store"))
        .with_backend(RootfsBackend::Copy);
    let plain = env.host("plain");
    let rt = rt();
    for tag in ["latest", "v2s2"] {
        let image = rt
            .block_on(store.pull(&format!("{plain}/layers:{tag}"), None))
            .unwrap();
        assert_eq!(image.config.user.as_deref(), Some("1000:1000"));
        assert_eq!(image.config.working_dir.as_deref(), Some("/data"));
        let rootfs = store
            .provision(&image, &dir.join(format!("copy-{tag}")))
            .unwrap();
        assert_same_tree(&expected, &tree(&env, &rootfs.path));
        store.release(&rootfs).unwrap();
    }
    remove_tree(&dir).unwrap();
}

/// The overlay variant of the tree test: mounts only in a private mount
/// namespace (the test re-runs itself under `unshare -m`), so whatever
/// happens, no mount outlives the child.
#[test]
fn overlay_rootfs_matches_umoci() {
    let Some(env) = Env::load("overlay_tree") else {
        return;
    };
    if !require_root("overlay_tree") {
        return;
    }
    if std::env::var_os("TEPUI_IMAGES_PRIVATE_NS").is_none() {
        let status = Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "overlay_rootfs_matches_umoci",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TEPUI_IMAGES_PRIVATE_NS", "1")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "child in a private mount namespace failed"
        );
        return;
    }
    let expected =
        std::fs::read_to_string(env.json["expected_layers_tree"].as_str().unwrap()).unwrap();
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let rt = rt();
    let image = rt
        .block_on(store.pull(&format!("{}/layers:latest", env.host("plain")), None))
        .unwrap();
    let rootfs = store.provision(&image, &dir.join("c1")).unwrap();
    assert_eq!(rootfs.backend, RootfsBackend::Overlay);
    let actual = tree(&env, &rootfs.path);
    let out = Command::new("chroot")
        .arg(&rootfs.path)
        .args([
            "/bin/sh",
            "-c",
            "cat /data/keep.txt; echo new > /data/written",
        ])
        .output()
        .unwrap();
    store.release(&rootfs).unwrap();
    assert_same_tree(&expected, &actual);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "keep (rewritten in layer 2)\n"
    );
    // The write went to the container's upper dir, not to a shared layer.
    assert!(!image.layers.iter().any(|l| l.join("data/written").exists()));
    remove_tree(&dir).unwrap();
}

#[test]
fn concurrent_pulls_fetch_each_blob_once() {
    let Some(env) = Env::load("concurrent") else {
        return;
    };
    if !require_root("concurrent") {
        return;
    }
    let dir = scratch();
    let store = Arc::new(env.store(&dir.join("store")));
    let reference = format!("{}/layers:latest", env.host("plain"));
    let rt = rt();
    let (a, b) = rt.block_on(async {
        let (s1, s2) = (store.clone(), store.clone());
        let (r1, r2) = (reference.clone(), reference.clone());
        tokio::join!(
            tokio::spawn(async move { s1.pull(&r1, None).await }),
            tokio::spawn(async move { s2.pull(&r2, None).await })
        )
    });
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(a, b);
    assert_eq!(store.registry().blob_requests(), a.layers.len() as u64);
    assert_eq!(store.metrics().layers_fetched.load(Ordering::Relaxed), 3);
    assert_eq!(store.metrics().layer_cache_hits.load(Ordering::Relaxed), 3);
    remove_tree(&dir).unwrap();
}

#[test]
fn a_pull_killed_midway_is_retried_cleanly() {
    let Some(env) = Env::load("killed_pull") else {
        return;
    };
    if !require_root("killed_pull") {
        return;
    }
    let dir = scratch();
    let root = dir.join("store");
    let reference = format!("{}/big:latest", env.host("plain"));
    let killed = rt();
    let store = Arc::new(env.store(&root));
    let progress = Arc::new(PullProgress::default());
    let (s, r, p) = (store.clone(), reference.clone(), progress.clone());
    let task = killed.spawn(async move { s.pull_with_progress(&r, None, &p).await });
    killed.block_on(async {
        while progress.totals().0 < 8 << 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    task.abort();
    assert!(killed.block_on(task).unwrap_err().is_cancelled());
    // Like the agent process dying: its unpack threads end with the runtime.
    drop(killed);
    let rt = rt();
    // Nothing half-done is visible as a layer: each published layer is complete.
    let published: Vec<_> = std::fs::read_dir(root.join("layers/sha256"))
        .unwrap()
        .flatten()
        .collect();
    for layer in &published {
        assert!(layer.path().join("layer.json").is_file());
    }
    drop(store);
    // A new store (an agent restart) wipes staging and pulls the rest.
    let store = env.store(&root);
    assert_eq!(std::fs::read_dir(root.join("staging")).unwrap().count(), 0);
    let image = rt.block_on(store.pull(&reference, None)).unwrap();
    assert_eq!(image.layers.len(), 6);
    assert!(
        published.len() < 6,
        "the pull was killed before it finished"
    );
    assert_eq!(
        store.metrics().layers_fetched.load(Ordering::Relaxed) as usize,
        6 - published.len()
    );
    remove_tree(&dir).unwrap();
}

/// Re-runs `test` in a private mount namespace (so no mount it makes can
/// outlive it); returns true in the child, which then does the work.
fn in_private_mount_ns(test: &str) -> bool {
    if std::env::var_os("TEPUI_IMAGES_PRIVATE_NS").is_some() {
        return true;
    }
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("TEPUI_IMAGES_PRIVATE_NS", "1")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{test}: child in a private mount namespace failed"
    );
    false
}

fn layer_dirs(root: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("layers/sha256"))
        .unwrap()
        .flatten()
        .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
        .collect();
    dirs.sort();
    dirs
}

fn image_records(root: &Path) -> usize {
    std::fs::read_dir(root.join("images")).unwrap().count()
}

#[test]
fn prune_keeps_the_image_of_a_live_rootfs_and_removes_unused_ones() {
    let test = "prune_keeps_the_image_of_a_live_rootfs_and_removes_unused_ones";
    let Some(env) = Env::load(test) else {
        return;
    };
    if !require_root(test) || !in_private_mount_ns(test) {
        return;
    }
    let dir = scratch();
    let root = dir.join("store");
    let store = Arc::new(env.store(&root));
    let rt = rt();
    let busybox_ref = format!("{}/busybox:latest", env.host("plain"));
    let layers_ref = format!("{}/layers:latest", env.host("plain"));
    let layers = rt.block_on(store.pull(&layers_ref, None)).unwrap();
    // busybox's one layer is the base of `layers`; `layers` adds two.
    let (busybox, rootfs) = rt
        .block_on(store.pull_and_provision(&busybox_ref, None, &root.join("containers/pod1/c1")))
        .unwrap();
    assert_eq!(busybox.layer_digests.len(), 1);
    assert_eq!(layers.layer_digests[0], busybox.layer_digests[0]);
    assert_eq!(layer_dirs(&root).len(), 3);

    let report = rt.block_on(store.prune(&[], &[])).unwrap();
    assert_eq!(report.images_removed, 1, "{report:?}");
    assert_eq!(report.layers_removed, 2, "{report:?}");
    assert!(report.bytes_freed > 0);
    assert_eq!(layer_dirs(&root), busybox.layer_digests);
    assert_eq!(image_records(&root), 1);
    // The live rootfs still works.
    let out = Command::new("chroot")
        .arg(&rootfs.path)
        .args(["/bin/sh", "-c", "echo alive"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
    assert_eq!(
        std::fs::read_dir(root.join("staging")).unwrap().count(),
        0,
        "prune leaves nothing in staging"
    );

    // Excluded by reference: kept even without a rootfs.
    rt.block_on(store.pull(&layers_ref, None)).unwrap();
    store.release(&rootfs).unwrap();
    let report = rt
        .block_on(store.prune(std::slice::from_ref(&layers_ref), &[]))
        .unwrap();
    assert_eq!((report.images_removed, report.layers_removed), (1, 0));
    assert_eq!(layer_dirs(&root).len(), 3);
    // Nothing in use, nothing excluded: the store empties.
    let report = rt.block_on(store.prune(&[], &[])).unwrap();
    assert_eq!((report.images_removed, report.layers_removed), (1, 3));
    assert!(layer_dirs(&root).is_empty());
    assert_eq!(image_records(&root), 0);
    let metrics = store.metrics().snapshot();
    assert_eq!((metrics.images_removed, metrics.layers_removed), (3, 5));
    remove_tree(&dir).unwrap();
}

#[test]
fn size_gc_removes_least_recently_used_images_after_a_pull() {
    let Some(env) = Env::load("size_gc") else {
        return;
    };
    if !require_root("size_gc") {
        return;
    }
    let dir = scratch();
    let root = dir.join("store");
    // 1 byte: every image but the one just pulled must go.
    let store = env.store(&root).with_gc_max_bytes(Some(1));
    let rt = rt();
    let busybox = rt
        .block_on(store.pull(&format!("{}/busybox:latest", env.host("plain")), None))
        .unwrap();
    assert_eq!(layer_dirs(&root), busybox.layer_digests);
    let layers = rt
        .block_on(store.pull(&format!("{}/layers:latest", env.host("plain")), None))
        .unwrap();
    // busybox's record went; its layer stays (the new image uses it).
    assert_eq!(image_records(&root), 1);
    let mut expected = layers.layer_digests.clone();
    expected.sort();
    assert_eq!(layer_dirs(&root), expected);
    assert_eq!(store.metrics().snapshot().images_removed, 1);
    remove_tree(&dir).unwrap();
}

#[test]
fn pull_progress_is_published_to_subscribers() {
    let Some(env) = Env::load("progress") else {
        return;
    };
    if !require_root("progress") {
        return;
    }
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let rt = rt();
    let progress = PullProgress::default();
    let mut updates = progress.subscribe();
    let image = rt
        .block_on(store.pull_with_progress(
            &format!("{}/layers:latest", env.host("plain")),
            None,
            &progress,
        ))
        .unwrap();
    assert!(updates.has_changed().unwrap());
    let last = updates.borrow_and_update().clone();
    assert_eq!(
        last.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        image.layer_digests
    );
    for layer in &last {
        assert_eq!(layer.bytes, layer.total, "{layer:?}");
        assert!(layer.total > 0);
    }
    let m = store.metrics().snapshot();
    assert_eq!((m.pulls, m.layers_fetched, m.layer_cache_hits), (1, 3, 0));
    assert_eq!(m.bytes_fetched, last.iter().map(|l| l.total).sum::<u64>());
    remove_tree(&dir).unwrap();
}

/// Builds a one-layer image from `entries` (JSON: `[{"name", "type":
/// "file"|"dir"|"symlink"|"hardlink", "data"?, "link"?}]`, written as is,
/// `..` and absolute names included) and pushes it to the plain registry
/// with the v2 upload API. `compression`: "none" or "zstd". Returns the
/// layer digest.
const PUSH_LAYER_PY: &str = r#"
import hashlib, io, json, platform, subprocess, sys, tarfile, urllib.request
host, repo, tag, compression, entries = sys.argv[1:6]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for e in json.loads(entries):
        ti = tarfile.TarInfo(e["name"])
        ti.mode = 0o755 if e["type"] == "dir" else 0o644
        data = e.get("data", "").encode()
        ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                   "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[e["type"]]
        ti.linkname = e.get("link", "")
        ti.size = len(data) if e["type"] == "file" else 0
        t.addfile(ti, io.BytesIO(data) if e["type"] == "file" else None)
raw = buf.getvalue()
if compression == "zstd":
    blob = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    media = "application/vnd.oci.image.layer.v1.tar+zstd"
else:
    blob, media = raw, "application/vnd.oci.image.layer.v1.tar"
def digest(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def push(b):
    d = digest(b)
    start = urllib.request.urlopen(urllib.request.Request(
        f"http://{host}/v2/{repo}/blobs/uploads/", data=b"", method="POST"))
    loc = start.headers["Location"]
    if loc.startswith("/"):
        loc = f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    req = urllib.request.Request(f"{loc}{sep}digest={d}", data=b, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).read()
    return d
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                     "rootfs": {"type": "layers", "diff_ids": [digest(raw)]}}).encode()
layer = push(blob)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": push(config), "size": len(config)},
    "layers": [{"mediaType": media, "digest": layer, "size": len(blob)}]}).encode()
req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
urllib.request.urlopen(req).read()
print(layer)
"#;

fn push_layer(env: &Env, repo: &str, compression: &str, entries: Value) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            PUSH_LAYER_PY,
            &env.host("plain"),
            repo,
            "latest",
            compression,
        ])
        .arg(entries.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pushing {repo}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Layers that try to write outside their directory fail the pull with an
/// error naming the layer and the entry; the sibling `outside` dir is
/// untouched and no staging dir is left. The store sits at
/// `<dir>/store`, a layer unpacks in `<dir>/store/staging/<x>/rootfs`, so
/// four `..` reach `<dir>` exactly (a buggy extractor cannot reach further
/// than the scratch dir).
#[test]
fn malicious_layers_fail_the_pull_and_touch_nothing_outside() {
    let Some(env) = Env::load("malicious_layers") else {
        return;
    };
    if !require_root("malicious_layers") {
        return;
    }
    let dir = scratch();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "secret\n").unwrap();
    let root = dir.join("store");
    let store = env.store(&root);
    let rt = rt();
    let outside_abs = outside.to_str().unwrap().to_string();
    let cases = [
        (
            "evil/dotdot",
            serde_json::json!([{"name": "../../../../outside/pwned", "type": "file", "data": "x"}]),
            "../../../../outside/pwned",
        ),
        (
            "evil/symlink",
            serde_json::json!([
                {"name": "link", "type": "symlink", "link": outside_abs},
                {"name": "link/pwned", "type": "file", "data": "x"},
            ]),
            "link/pwned",
        ),
        (
            "evil/hardlink",
            serde_json::json!([
                {"name": "hl", "type": "hardlink", "link": "../../../../outside/secret"},
            ]),
            "hl",
        ),
    ];
    for (repo, entries, bad_entry) in cases {
        let digest = push_layer(&env, repo, "none", entries);
        let reference = format!("{}/{repo}:latest", env.host("plain"));
        let err = rt.block_on(store.pull(&reference, None)).unwrap_err();
        let message = err.to_string();
        eprintln!("{repo}: {message}");
        assert!(message.contains(&digest), "{repo}: {message}");
        assert!(message.contains(bad_entry), "{repo}: {message}");
        assert!(message.contains(repo), "{repo}: {message}");
        assert!(!root.join("layers/sha256").join(&digest[7..]).exists());
        assert_eq!(
            std::fs::read_dir(root.join("staging")).unwrap().count(),
            0,
            "{repo}: staging left behind"
        );
    }
    // An absolute name is refused too (the issue: such a layer fails).
    let digest = push_layer(
        &env,
        "evil/absolute",
        "none",
        serde_json::json!([{"name": format!("{outside_abs}/pwned"), "type": "file", "data": "x"}]),
    );
    let message = rt
        .block_on(store.pull(&format!("{}/evil/absolute:latest", env.host("plain")), None))
        .unwrap_err()
        .to_string();
    assert!(message.contains(&digest), "{message}");
    assert!(message.contains("absolute path"), "{message}");
    assert!(!root.join("layers/sha256").join(&digest[7..]).exists());

    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["secret"], "outside was written to");
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "secret\n"
    );
    let meta = std::fs::metadata(outside.join("secret")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&meta), 1);
    remove_tree(&dir).unwrap();
}

#[test]
fn a_zstd_layer_unpacks() {
    let Some(env) = Env::load("zstd_layer") else {
        return;
    };
    if !require_root("zstd_layer") {
        return;
    }
    let dir = scratch();
    let store = env.store(&dir.join("store"));
    let digest = push_layer(
        &env,
        "zstd/hello",
        "zstd",
        serde_json::json!([
            {"name": "etc", "type": "dir"},
            {"name": "etc/hello", "type": "file", "data": "hello zstd\n"},
            {"name": "etc/hello-link", "type": "symlink", "link": "hello"},
        ]),
    );
    let rt = rt();
    let image = rt
        .block_on(store.pull(&format!("{}/zstd/hello:latest", env.host("plain")), None))
        .unwrap();
    assert_eq!(image.layer_digests, vec![digest]);
    let layer = &image.layers[0];
    assert_eq!(
        std::fs::read_to_string(layer.join("etc/hello")).unwrap(),
        "hello zstd\n"
    );
    assert_eq!(
        std::fs::read_link(layer.join("etc/hello-link")).unwrap(),
        Path::new("hello")
    );
    remove_tree(&dir).unwrap();
}
