//! End-to-end fetches against a real HTTP server on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::archives::{self, E, Z};
use common::server::{Route, TestServer};
use common::{dirs, mode, tree, uri};
use tepui_fetcher::{CacheStatus, FetchOptions, Fetcher, FetcherConfig, Uri};

fn fetcher() -> Fetcher {
    Fetcher::new(FetcherConfig::default()).unwrap()
}

async fn fetch(
    f: &Fetcher,
    uris: &[Uri],
    sandbox: &Path,
) -> Result<Vec<tepui_fetcher::FetchResult>, String> {
    f.fetch(uris, sandbox, FetchOptions::default())
        .await
        .map_err(|e| e.to_string())
}

const SCRIPT: &[u8] = b"#!/bin/sh\necho hello\n";

fn sample_tar() -> Vec<u8> {
    archives::tar(&[
        E::Dir("app/", 0o755),
        E::File("app/run.sh", SCRIPT, 0o750),
        E::Dir("app/ünïcødé 目录/", 0o755),
        E::File(
            "app/ünïcødé 目录/данные.txt",
            "non-ascii ✓".as_bytes(),
            0o644,
        ),
        E::Symlink("app/latest", "run.sh"),
        E::Link("app/run-hardlink.sh", "app/run.sh"),
    ])
}

fn assert_sample_extracted(sandbox: &Path) {
    assert_eq!(fs::read(sandbox.join("app/run.sh")).unwrap(), SCRIPT);
    assert_eq!(mode(&sandbox.join("app/run.sh")), 0o750);
    assert_eq!(
        fs::read_to_string(sandbox.join("app/ünïcødé 目录/данные.txt")).unwrap(),
        "non-ascii ✓"
    );
    assert_eq!(
        fs::read_link(sandbox.join("app/latest")).unwrap(),
        Path::new("run.sh")
    );
    let a = fs::metadata(sandbox.join("app/run.sh")).unwrap();
    let b = fs::metadata(sandbox.join("app/run-hardlink.sh")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link shares the inode");
    assert_eq!(a.mtime(), archives::MTIME as i64);
}

#[tokio::test]
async fn every_archive_format_is_extracted_and_the_archive_kept() {
    let server = TestServer::start().await;
    let tar = sample_tar();
    let zip = archives::zip(&[
        Z::Dir("app/"),
        Z::File("app/run.sh", SCRIPT, 0o750),
        Z::File(
            "app/ünïcødé 目录/данные.txt",
            "non-ascii ✓".as_bytes(),
            0o644,
        ),
        Z::Symlink("app/latest", "run.sh"),
    ]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a.tar", tar.clone()),
        ("a.tar.gz", archives::gz(&tar)),
        ("a.tgz", archives::gz(&tar)),
        ("a.tar.bz2", archives::bz2(&tar)),
        ("a.tbz2", archives::bz2(&tar)),
        ("a.tar.xz", archives::xz(&tar)),
        ("a.txz", archives::xz(&tar)),
        ("a.zip", zip),
    ];
    let f = fetcher();
    for (name, body) in cases {
        server.file(&format!("/{name}"), body.clone());
        let d = dirs();
        let results = fetch(&f, &[uri(&server.url(&format!("/{name}")))], &d.sandbox)
            .await
            .unwrap();
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert_eq!(r.bytes, body.len() as u64, "{name}");
        assert_eq!(r.cache, CacheStatus::NotCached);
        // Mesos keeps the archive next to what it extracted.
        assert_eq!(fs::read(d.sandbox.join(name)).unwrap(), body, "{name}");
        assert_eq!(
            fs::read(d.sandbox.join("app/run.sh")).unwrap(),
            SCRIPT,
            "{name}"
        );
        assert_eq!(mode(&d.sandbox.join("app/run.sh")), 0o750, "{name}");
        assert_eq!(
            fs::read_to_string(d.sandbox.join("app/ünïcødé 目录/данные.txt")).unwrap(),
            "non-ascii ✓",
            "{name}"
        );
        assert_eq!(
            fs::read_link(d.sandbox.join("app/latest")).unwrap(),
            Path::new("run.sh")
        );
        if name != "a.zip" {
            assert_sample_extracted(&d.sandbox);
        }
        assert!(r.extracted.as_ref().unwrap().entries >= 4, "{name}");
        assert!(r.paths.contains(&d.sandbox.join("app")));
        // No staging directory left behind.
        let top: Vec<String> = fs::read_dir(&d.sandbox)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            top.iter().all(|n| !n.starts_with(".tepui-fetch")),
            "{top:?}"
        );
        assert_eq!(tree(&d.outside), Vec::<String>::new());
    }
}

#[tokio::test]
async fn single_gz_is_gunzipped_beside_the_kept_original() {
    let server = TestServer::start().await;
    let body = archives::gz(b"plain contents\n");
    server.file("/data.txt.gz", body.clone());
    let d = dirs();
    fetch(&fetcher(), &[uri(&server.url("/data.txt.gz"))], &d.sandbox)
        .await
        .unwrap();
    assert_eq!(
        fs::read(d.sandbox.join("data.txt")).unwrap(),
        b"plain contents\n"
    );
    assert_eq!(fs::read(d.sandbox.join("data.txt.gz")).unwrap(), body);
    assert_eq!(tree(&d.sandbox), ["data.txt", "data.txt.gz"]);
}

#[tokio::test]
async fn extract_false_and_unknown_suffix_only_download() {
    let server = TestServer::start().await;
    let body = archives::gz(&sample_tar());
    server.file("/a.tgz", body.clone());
    server.file("/notes.bin", b"raw".to_vec());
    let d = dirs();
    let mut u = uri(&server.url("/a.tgz"));
    u.extract = Some(false);
    fetch(&fetcher(), &[u, uri(&server.url("/notes.bin"))], &d.sandbox)
        .await
        .unwrap();
    assert_eq!(tree(&d.sandbox), ["a.tgz", "notes.bin"]);
    assert_eq!(fs::read(d.sandbox.join("a.tgz")).unwrap(), body);
    assert_eq!(mode(&d.sandbox.join("notes.bin")), 0o644);
}

#[tokio::test]
async fn executable_is_chmodded_and_never_extracted() {
    let server = TestServer::start().await;
    server.file("/run.sh", SCRIPT.to_vec());
    let tgz = archives::gz(&sample_tar());
    server.file("/tool.tgz", tgz.clone());
    let d = dirs();
    let mut a = uri(&server.url("/run.sh"));
    a.executable = Some(true);
    let mut b = uri(&server.url("/tool.tgz"));
    b.executable = Some(true);
    let mut log = Vec::new();
    fetcher()
        .fetch(
            &[a, b],
            &d.sandbox,
            FetchOptions {
                log: Some(&mut log),
                ..FetchOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(mode(&d.sandbox.join("run.sh")), 0o755);
    assert_eq!(fs::read(d.sandbox.join("run.sh")).unwrap(), SCRIPT);
    assert_eq!(mode(&d.sandbox.join("tool.tgz")), 0o755);
    assert_eq!(
        tree(&d.sandbox),
        ["run.sh", "tool.tgz"],
        "executable archives are not extracted"
    );
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("(executable)"), "{log}");
}

#[tokio::test]
async fn output_file_renames_into_a_subdirectory() {
    let server = TestServer::start().await;
    server.file("/run.sh", SCRIPT.to_vec());
    let tgz = archives::gz(&sample_tar());
    server.file("/a.tgz", tgz.clone());
    let d = dirs();
    let mut a = uri(&server.url("/run.sh"));
    a.output_file = Some("bin/tools/start".into());
    a.executable = Some(true);
    let mut b = uri(&server.url("/a.tgz"));
    b.output_file = Some("pkg/renamed.tar.gz".into());
    let results = fetch(&fetcher(), &[a, b], &d.sandbox).await.unwrap();
    assert_eq!(fs::read(d.sandbox.join("bin/tools/start")).unwrap(), SCRIPT);
    assert_eq!(mode(&d.sandbox.join("bin/tools/start")), 0o755);
    assert_eq!(
        results[0].file.as_deref(),
        Some(d.sandbox.join("bin/tools/start").as_path())
    );
    // The renamed archive lands in its subdirectory; like Mesos, it is
    // extracted into the sandbox root.
    assert_eq!(fs::read(d.sandbox.join("pkg/renamed.tar.gz")).unwrap(), tgz);
    assert_sample_extracted(&d.sandbox);

    let mut bad = uri(&server.url("/run.sh"));
    bad.output_file = Some("../escape".into());
    let err = fetch(&fetcher(), &[bad], &d.sandbox).await.unwrap_err();
    assert!(
        err.contains("output_file '../escape' escapes the sandbox"),
        "{err}"
    );
    assert!(!d.root.join("escape").exists());
}

#[tokio::test]
async fn http_404_names_the_uri_and_status_and_leaves_nothing() {
    let server = TestServer::start().await;
    let d = dirs();
    let url = server.url("/missing.tgz");
    let err = fetch(&fetcher(), &[uri(&url)], &d.sandbox)
        .await
        .unwrap_err();
    assert_eq!(err, format!("fetching '{url}': HTTP 404 Not Found"));
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
}

#[tokio::test]
async fn connection_refused_names_the_uri() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let d = dirs();
    let url = format!("http://127.0.0.1:{port}/x.tgz");
    let f = fetcher();
    let err = fetch(&f, &[uri(&url)], &d.sandbox).await.unwrap_err();
    assert_eq!(err, format!("fetching '{url}': connection refused"));
    assert_eq!(f.metrics().failures, 1);
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
}

#[tokio::test]
async fn unsupported_scheme_is_a_clear_error() {
    let d = dirs();
    let err = fetch(
        &fetcher(),
        &[uri("ftp://example.invalid/a.tgz")],
        &d.sandbox,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        "fetching 'ftp://example.invalid/a.tgz': unsupported scheme 'ftp'"
    );
}

#[tokio::test]
async fn redirects_are_followed() {
    let server = TestServer::start().await;
    server.file("/real/a.tgz", archives::gz(&sample_tar()));
    server.route("/moved/a.tgz", Route::Redirect(server.url("/real/a.tgz")));
    let d = dirs();
    fetch(&fetcher(), &[uri(&server.url("/moved/a.tgz"))], &d.sandbox)
        .await
        .unwrap();
    assert_eq!(server.requests("/moved/a.tgz"), 1);
    assert_eq!(server.bodies("/real/a.tgz"), 1);
    assert_sample_extracted(&d.sandbox);
}

#[tokio::test]
async fn stalled_download_is_aborted_and_cleaned_up() {
    let server = TestServer::start().await;
    server.route(
        "/slow.tgz",
        Route::Stall {
            head: bytes::Bytes::from(vec![0x1fu8, 0x8b, 0x08, 0, 0, 0, 0, 0]),
            total: 10 << 20,
            silence: Duration::from_secs(30),
        },
    );
    let d = dirs();
    let f = Fetcher::new(FetcherConfig {
        stall_timeout: Duration::from_millis(400),
        ..FetcherConfig::default()
    })
    .unwrap();
    let url = server.url("/slow.tgz");
    let started = Instant::now();
    let err = fetch(&f, &[uri(&url)], &d.sandbox).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.starts_with(&format!("fetching '{url}': download stalled")),
        "{err}"
    );
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
}

#[tokio::test]
async fn local_files_absolute_file_scheme_and_frameworks_home() {
    let d = dirs();
    let home = d.root.join("frameworks");
    fs::create_dir_all(home.join("fw1")).unwrap();
    fs::write(home.join("fw1/app.tgz"), archives::gz(&sample_tar())).unwrap();
    fs::write(d.root.join("plain.cfg"), b"k=v").unwrap();
    let f = Fetcher::new(FetcherConfig {
        frameworks_home: Some(home.clone()),
        ..FetcherConfig::default()
    })
    .unwrap();
    let plain = d.root.join("plain.cfg").display().to_string();
    let mut by_scheme = uri(&format!("file://{plain}"));
    by_scheme.output_file = Some("via-scheme.cfg".into());
    let results = fetch(
        &f,
        &[uri("fw1/app.tgz"), uri(&plain), by_scheme],
        &d.sandbox,
    )
    .await
    .unwrap();
    assert_sample_extracted(&d.sandbox);
    assert_eq!(fs::read(d.sandbox.join("plain.cfg")).unwrap(), b"k=v");
    assert_eq!(fs::read(d.sandbox.join("via-scheme.cfg")).unwrap(), b"k=v");
    assert_eq!(results[1].bytes, 3);
    let err = fetch(&fetcher(), &[uri("fw1/app.tgz")], &d.sandbox)
        .await
        .unwrap_err();
    assert!(err.contains("frameworks_home"), "{err}");
}

#[tokio::test]
async fn symlinked_sandbox_is_refused() {
    let d = dirs();
    let link = d.root.join("link-sandbox");
    std::os::unix::fs::symlink(&d.outside, &link).unwrap();
    fs::write(d.root.join("x.txt"), b"x").unwrap();
    let err = fetch(
        &fetcher(),
        &[uri(&d.root.join("x.txt").display().to_string())],
        &link,
    )
    .await
    .unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(tree(&d.outside), Vec::<String>::new());
}

#[tokio::test]
async fn files_are_owned_by_the_task_user_without_setid_bits() {
    if fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipping: needs root to chown");
        return;
    }
    let server = TestServer::start().await;
    let tar = archives::tar(&[
        E::Dir("app/", 0o755),
        E::File("app/suid", b"x", 0o4755),
        E::Symlink("app/l", "suid"),
        E::File("deep/er/file", b"y", 0o644),
    ]);
    server.file("/a.tar", tar);
    server.file("/tool", SCRIPT.to_vec());
    let d = dirs();
    let mut tool = uri(&server.url("/tool"));
    tool.output_file = Some("bin/tool".into());
    tool.executable = Some(true);
    fetcher()
        .fetch(
            &[uri(&server.url("/a.tar")), tool],
            &d.sandbox,
            FetchOptions {
                user: Some((4321, 8765)),
                ..FetchOptions::default()
            },
        )
        .await
        .unwrap();
    let all = tree(&d.sandbox);
    assert_eq!(
        all,
        [
            "a.tar",
            "app",
            "app/l",
            "app/suid",
            "bin",
            "bin/tool",
            "deep",
            "deep/er",
            "deep/er/file"
        ]
    );
    for p in &all {
        let m = fs::symlink_metadata(d.sandbox.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 8765), "{p}");
    }
    assert_eq!(
        mode(&d.sandbox.join("app/suid")),
        0o755,
        "setuid dropped for task user"
    );
    assert_eq!(mode(&d.sandbox.join("bin/tool")), 0o755);
}

#[tokio::test]
async fn result_lines_and_metrics() {
    let server = TestServer::start().await;
    let tgz = archives::gz(&sample_tar());
    server.file("/a.tgz", tgz.clone());
    let d = dirs();
    let f = fetcher();
    let mut log = Vec::new();
    f.fetch(
        &[uri(&server.url("/a.tgz"))],
        &d.sandbox,
        FetchOptions {
            log: Some(&mut log),
            ..FetchOptions::default()
        },
    )
    .await
    .unwrap();
    let log = String::from_utf8(log).unwrap();
    let url = server.url("/a.tgz");
    assert!(
        log.contains(&format!("tepui-fetcher: fetching '{url}'")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "tepui-fetcher: fetched '{url}' ({} bytes, ",
            tgz.len()
        )),
        "{log}"
    );
    assert!(log.contains("not cached) -> extracted 6 entries"), "{log}");
    let m = f.metrics();
    assert_eq!(
        (m.fetches, m.failures, m.bytes_fetched),
        (1, 0, tgz.len() as u64)
    );
    assert_eq!(
        m.bytes_extracted,
        (SCRIPT.len() + "non-ascii ✓".len()) as u64
    );
}

#[tokio::test]
async fn local_files_are_read_with_the_task_users_permissions() {
    use std::os::unix::fs::PermissionsExt;
    if fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipping: needs root");
        return;
    }
    let d = dirs();
    fs::set_permissions(&d.root, fs::Permissions::from_mode(0o755)).unwrap();
    let secret = d.root.join("secret.txt");
    let public = d.root.join("public.txt");
    fs::write(&secret, b"root only").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&public, b"anyone").unwrap();
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = || FetchOptions {
        user: Some((4321, 8765)),
        ..FetchOptions::default()
    };
    let f = fetcher();
    let err = f
        .fetch(&[uri(&secret.display().to_string())], &d.sandbox, as_user())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "fetching '{0}': reading '{0}': Permission denied (os error 13)",
            secret.display()
        )
    );
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
    // Through the cache too: a copy cached for root is not handed to the user.
    let cache_f = Fetcher::new(FetcherConfig {
        cache_dir: Some(d.root.join("cache")),
        ..FetcherConfig::default()
    })
    .unwrap();
    let mut cached = uri(&secret.display().to_string());
    cached.cache = Some(true);
    let root_box = d.root.join("root-box");
    fs::create_dir(&root_box).unwrap();
    cache_f
        .fetch(
            std::slice::from_ref(&cached),
            &root_box,
            FetchOptions::default(),
        )
        .await
        .unwrap();
    let err = cache_f
        .fetch(&[cached], &d.sandbox, as_user())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());

    f.fetch(&[uri(&public.display().to_string())], &d.sandbox, as_user())
        .await
        .unwrap();
    let m = fs::metadata(d.sandbox.join("public.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 8765));
    assert_eq!(fs::read(d.sandbox.join("public.txt")).unwrap(), b"anyone");
}

#[tokio::test]
async fn slow_downloads_report_progress_and_are_not_stalls() {
    let server = TestServer::start().await;
    let body = bytes::Bytes::from(vec![5u8; 64 * 1024]);
    server.route(
        "/slow.bin",
        Route::Trickle {
            body: body.clone(),
            pieces: 8,
            gap: Duration::from_millis(100),
        },
    );
    let d = dirs();
    let f = Fetcher::new(FetcherConfig {
        stall_timeout: Duration::from_millis(500),
        progress_interval: Duration::from_millis(150),
        ..FetcherConfig::default()
    })
    .unwrap();
    let mut log = Vec::new();
    f.fetch(
        &[uri(&server.url("/slow.bin"))],
        &d.sandbox,
        FetchOptions {
            log: Some(&mut log),
            ..FetchOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(fs::read(d.sandbox.join("slow.bin")).unwrap(), body);
    let log = String::from_utf8(log).unwrap();
    let url = server.url("/slow.bin");
    assert!(log.contains(&format!("tepui-fetcher: '{url}': ")), "{log}");
    assert!(log.contains(" bytes so far"), "{log}");
}

#[tokio::test]
async fn non_ascii_url_names_the_sandbox_file() {
    let server = TestServer::start().await;
    server.file(
        "/d/%C3%BCber%20%E6%97%A5%E6%9C%AC.tgz",
        archives::gz(&sample_tar()),
    );
    let d = dirs();
    let url = format!("http://{}/d/über 日本.tgz", server.addr);
    fetch(&fetcher(), &[uri(&url)], &d.sandbox).await.unwrap();
    assert!(d.sandbox.join("über 日本.tgz").is_file());
    assert_sample_extracted(&d.sandbox);
}

#[tokio::test]
async fn a_cancelled_fetch_leaves_nothing_in_the_sandbox() {
    let server = TestServer::start().await;
    server.route(
        "/slow.bin",
        Route::Trickle {
            body: bytes::Bytes::from(vec![1u8; 64 * 1024]),
            pieces: 16,
            gap: Duration::from_millis(100),
        },
    );
    let d = dirs();
    let f = fetcher();
    let uris = [uri(&server.url("/slow.bin"))];
    let fut = f.fetch(&uris, &d.sandbox, FetchOptions::default());
    assert!(
        tokio::time::timeout(Duration::from_millis(350), fut)
            .await
            .is_err()
    );
    // The blocking half notices the aborted transfer on its own.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
}
