//! Hostile archives and sandboxes: nothing may be written outside the sandbox,
//! and a rejected fetch leaves nothing of itself inside it either.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::archives::{self, E, Z};
use common::server::TestServer;
use common::{Dirs, dirs, tree, uri};
use tepui_fetcher::{FetchOptions, Fetcher, FetcherConfig};

async fn fetch_one(
    server: &TestServer,
    d: &Dirs,
    name: &str,
    body: Vec<u8>,
    max: u64,
) -> Result<(), String> {
    server.file(&format!("/{name}"), body);
    let f = Fetcher::new(FetcherConfig {
        max_size_bytes: max,
        ..FetcherConfig::default()
    })
    .unwrap();
    f.fetch(
        &[uri(&server.url(&format!("/{name}")))],
        &d.sandbox,
        FetchOptions::default(),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The temp root holds only what the test made; the sandbox and the outside
/// directory are empty.
fn assert_untouched(d: &Dirs, extra: &[&str]) {
    assert_eq!(
        tree(&d.outside),
        Vec::<String>::new(),
        "outside was written"
    );
    assert_eq!(
        tree(&d.sandbox),
        Vec::<String>::new(),
        "rejected fetch left files"
    );
    let mut expected: Vec<String> = ["outside", "sandbox"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    let mut top: Vec<String> = fs::read_dir(&d.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, expected);
}

#[tokio::test]
async fn tar_slip_dotdot_is_rejected() {
    let server = TestServer::start().await;
    for bad in ["../escape", "app/../../escape", "./../outside/escape"] {
        let d = dirs();
        let tar = archives::tar(&[
            E::File("good.txt", b"fine", 0o644),
            E::File(bad, b"pwned", 0o644),
        ]);
        let err = fetch_one(&server, &d, "slip.tar.gz", archives::gz(&tar), u64::MAX)
            .await
            .unwrap_err();
        let url = server.url("/slip.tar.gz");
        assert_eq!(
            err,
            format!("fetching '{url}': archive entry '{bad}' escapes the target directory")
        );
        assert_untouched(&d, &[]);
    }
}

#[tokio::test]
async fn tar_absolute_path_is_rejected() {
    let server = TestServer::start().await;
    let d = dirs();
    let abs = format!("{}/abs", d.outside.display());
    let tar = archives::tar(&[E::File(&abs, b"pwned", 0o644)]);
    let err = fetch_one(&server, &d, "abs.tar", tar, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        err.ends_with(&format!("archive entry '{abs}' has an absolute path")),
        "{err}"
    );
    assert_untouched(&d, &[]);
}

#[tokio::test]
async fn tar_symlink_then_write_through_is_rejected() {
    let server = TestServer::start().await;
    let d = dirs();
    let outside = d.outside.display().to_string();
    let tar = archives::tar(&[
        E::Symlink("link", &outside),
        E::File("link/pwned", b"pwned", 0o644),
    ]);
    let err = fetch_one(&server, &d, "through.tar", tar, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        err.ends_with("archive entry 'link/pwned' goes through symlink 'link'"),
        "{err}"
    );
    assert_untouched(&d, &[]);

    // Same through a symlinked directory deeper down, and with a relative
    // symlink target.
    let d = dirs();
    let tar = archives::tar(&[
        E::Dir("a/", 0o755),
        E::Symlink("a/b", "../../outside"),
        E::File("a/b/c/pwned", b"pwned", 0o644),
    ]);
    let err = fetch_one(&server, &d, "through2.tar", tar, u64::MAX)
        .await
        .unwrap_err();
    assert!(err.ends_with("goes through symlink 'a/b'"), "{err}");
    assert_untouched(&d, &[]);
}

#[tokio::test]
async fn tar_hardlink_escapes_are_rejected() {
    let server = TestServer::start().await;
    for (name, entries_target) in [
        ("dotdot", "../victim/secret"),
        ("absolute", "ABS"),
        ("via-symlink", "s/secret"),
    ] {
        let d = dirs();
        let victim = d.root.join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("secret"), b"secret").unwrap();
        let abs = format!("{}/secret", victim.display());
        let target = if entries_target == "ABS" {
            abs.as_str()
        } else {
            entries_target
        };
        let victim_s = victim.display().to_string();
        let tar = archives::tar(&[E::Symlink("s", &victim_s), E::Link("hl", target)]);
        let err = fetch_one(&server, &d, &format!("{name}.tar"), tar, u64::MAX)
            .await
            .unwrap_err();
        assert!(
            err.ends_with(&format!(
                "archive entry 'hl': hard link target '{target}' escapes the target directory"
            )),
            "{name}: {err}"
        );
        assert_eq!(
            fs::metadata(victim.join("secret")).unwrap().nlink(),
            1,
            "{name}"
        );
        assert_untouched(&d, &["victim"]);
    }
}

#[tokio::test]
async fn zip_slip_is_rejected() {
    let server = TestServer::start().await;
    let d = dirs();
    let zip = archives::zip(&[
        Z::File("good.txt", b"fine", 0o644),
        Z::File("../../escape", b"pwned", 0o644),
    ]);
    let err = fetch_one(&server, &d, "slip.zip", zip, u64::MAX)
        .await
        .unwrap_err();
    let url = server.url("/slip.zip");
    assert_eq!(
        err,
        format!("fetching '{url}': archive entry '../../escape' escapes the target directory")
    );
    assert_untouched(&d, &[]);
    assert!(!d.root.parent().unwrap().join("escape").exists());

    let d = dirs();
    let outside = d.outside.display().to_string();
    let zip = archives::zip(&[
        Z::Symlink("link", &outside),
        Z::File("link/pwned", b"pwned", 0o644),
    ]);
    let err = fetch_one(&server, &d, "through.zip", zip, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        err.ends_with("archive entry 'link/pwned' goes through symlink 'link'"),
        "{err}"
    );
    assert_untouched(&d, &[]);
}

#[tokio::test]
async fn decompression_bombs_stop_at_the_size_limit() {
    let server = TestServer::start().await;
    let zeros = vec![0u8; 24 << 20];
    let limit = 4 << 20;
    let bombs: Vec<(&str, Vec<u8>)> = vec![
        (
            "bomb.tar.gz",
            archives::gz(&archives::tar(&[E::File("zeros", &zeros, 0o644)])),
        ),
        (
            "bomb.tar.xz",
            archives::xz(&archives::tar(&[E::File("zeros", &zeros, 0o644)])),
        ),
        ("bomb.gz", archives::gz(&zeros)),
        (
            "bomb.zip",
            archives::zip(&[Z::File("zeros", &zeros, 0o644)]),
        ),
    ];
    for (name, body) in bombs {
        assert!(
            body.len() < 1 << 20,
            "{name} should be small: {}",
            body.len()
        );
        let d = dirs();
        let err = fetch_one(&server, &d, name, body, limit).await.unwrap_err();
        assert!(
            err.ends_with("size limit of 4194304 bytes exceeded"),
            "{name}: {err}"
        );
        assert_untouched(&d, &[]);
    }
    // A plain download past the limit is refused too (from Content-Length).
    let d = dirs();
    let err = fetch_one(&server, &d, "big.bin", vec![7u8; 5 << 20], limit)
        .await
        .unwrap_err();
    assert!(
        err.ends_with("size limit of 4194304 bytes exceeded"),
        "{err}"
    );
    assert_untouched(&d, &[]);
}

#[tokio::test]
async fn planted_symlinks_in_the_sandbox_are_replaced_not_followed() {
    let server = TestServer::start().await;
    let d = dirs();
    // Left by an earlier, hostile task: names the fetch will write to.
    std::os::unix::fs::symlink(&d.outside, d.sandbox.join("app")).unwrap();
    std::os::unix::fs::symlink(d.outside.join("f"), d.sandbox.join("plain.txt")).unwrap();
    std::os::unix::fs::symlink(&d.outside, d.sandbox.join("sub")).unwrap();
    server.file(
        "/app.tar",
        archives::tar(&[E::File("app/run.sh", b"ok", 0o755)]),
    );
    server.file("/plain.txt", b"plain".to_vec());
    let mut via_dir = uri(&server.url("/plain.txt"));
    via_dir.output_file = Some("sub/x.txt".into());
    Fetcher::new(FetcherConfig::default())
        .unwrap()
        .fetch(
            &[
                uri(&server.url("/app.tar")),
                uri(&server.url("/plain.txt")),
                via_dir,
            ],
            &d.sandbox,
            FetchOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(tree(&d.outside), Vec::<String>::new());
    assert!(
        fs::symlink_metadata(d.sandbox.join("app"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(fs::read(d.sandbox.join("app/run.sh")).unwrap(), b"ok");
    assert!(
        fs::symlink_metadata(d.sandbox.join("plain.txt"))
            .unwrap()
            .is_file()
    );
    assert_eq!(fs::read(d.sandbox.join("sub/x.txt")).unwrap(), b"plain");
    assert!(
        fs::symlink_metadata(d.sandbox.join("sub"))
            .unwrap()
            .is_dir()
    );
}

#[tokio::test]
async fn a_failed_uri_keeps_earlier_uris_and_removes_only_its_own_files() {
    let server = TestServer::start().await;
    let d = dirs();
    server.file("/ok.txt", b"ok".to_vec());
    let bad = archives::tar(&[
        E::File("partial.txt", b"partial", 0o644),
        E::File("../x", b"", 0o644),
    ]);
    server.file("/bad.tar", bad);
    let err = Fetcher::new(FetcherConfig::default())
        .unwrap()
        .fetch(
            &[uri(&server.url("/ok.txt")), uri(&server.url("/bad.tar"))],
            &d.sandbox,
            FetchOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/bad.tar': archive entry '../x' escapes"),
        "{err}"
    );
    assert_eq!(tree(&d.sandbox), ["ok.txt"]);
    assert_eq!(tree(&d.outside), Vec::<String>::new());
}
