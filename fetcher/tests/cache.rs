//! The fetcher cache against a real HTTP server: hits, misses, revalidation,
//! LRU eviction, pinning, single download under concurrency, restarts.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::archives::{self, E};
use common::server::{Route, TestServer};
use common::{dirs, tree, uri};
use tepui_fetcher::{CacheStatus, FetchOptions, FetchResult, Fetcher, FetcherConfig, Uri};

fn cached(value: &str) -> Uri {
    let mut u = uri(value);
    u.cache = Some(true);
    u
}

fn cache_fetcher(dir: &Path, size: u64) -> Fetcher {
    Fetcher::new(FetcherConfig {
        cache_dir: Some(dir.to_path_buf()),
        cache_size_bytes: size,
        ..FetcherConfig::default()
    })
    .unwrap()
}

async fn fetch_into(f: &Fetcher, u: &Uri, sandbox: &Path) -> FetchResult {
    f.fetch(std::slice::from_ref(u), sandbox, FetchOptions::default())
        .await
        .unwrap()
        .remove(0)
}

fn fresh_sandbox(root: &Path, name: &str) -> std::path::PathBuf {
    let p = root.join(name);
    fs::create_dir(&p).unwrap();
    p
}

#[tokio::test]
async fn hit_miss_and_revalidation_after_the_artifact_changed() {
    let server = TestServer::start().await;
    let d = dirs();
    let cache_dir = d.root.join("cache");
    let f = cache_fetcher(&cache_dir, 1 << 30);
    let v1 = archives::gz(&archives::tar(&[E::File("app/version", b"v1", 0o644)]));
    server.file("/app.tgz", v1.clone());
    let u = cached(&server.url("/app.tgz"));

    let s1 = fresh_sandbox(&d.root, "s1");
    let r = fetch_into(&f, &u, &s1).await;
    assert_eq!(r.cache, CacheStatus::Miss);
    assert_eq!(r.bytes, v1.len() as u64);
    assert_eq!(fs::read(s1.join("app/version")).unwrap(), b"v1");
    // Through the cache Mesos lays down only the extracted files.
    assert_eq!(tree(&s1), ["app", "app/version"]);

    let s2 = fresh_sandbox(&d.root, "s2");
    let r = fetch_into(&f, &u, &s2).await;
    assert_eq!(r.cache, CacheStatus::Hit);
    assert_eq!(fs::read(s2.join("app/version")).unwrap(), b"v1");
    assert_eq!(
        (
            server.requests("/app.tgz"),
            server.bodies("/app.tgz"),
            server.not_modified("/app.tgz")
        ),
        (2, 1, 1)
    );

    // The artifact changes on the server: the next fetch must not serve v1.
    server.file(
        "/app.tgz",
        archives::gz(&archives::tar(&[E::File("app/version", b"v2", 0o644)])),
    );
    let s3 = fresh_sandbox(&d.root, "s3");
    let r = fetch_into(&f, &u, &s3).await;
    assert_eq!(r.cache, CacheStatus::Miss);
    assert_eq!(fs::read(s3.join("app/version")).unwrap(), b"v2");
    assert_eq!(server.bodies("/app.tgz"), 2);

    let m = f.metrics();
    assert_eq!((m.cache_hits, m.cache_misses, m.fetches), (1, 2, 3));
}

#[tokio::test]
async fn last_modified_revalidation_and_no_validators_means_no_reuse() {
    let server = TestServer::start().await;
    let d = dirs();
    let f = cache_fetcher(&d.root.join("cache"), 1 << 30);
    let lm = |body: &'static [u8], date: &str| Route::File {
        body: Bytes::from_static(body),
        etag: None,
        last_modified: Some(date.to_string()),
        delay: Duration::ZERO,
    };
    server.route("/lm.txt", lm(b"old", "Wed, 21 Oct 2015 07:28:00 GMT"));
    let u = cached(&server.url("/lm.txt"));
    let s = fresh_sandbox(&d.root, "a");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Miss);
    let s = fresh_sandbox(&d.root, "b");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Hit);
    assert_eq!(fs::read(s.join("lm.txt")).unwrap(), b"old");
    server.route("/lm.txt", lm(b"new", "Thu, 22 Oct 2015 07:28:00 GMT"));
    let s = fresh_sandbox(&d.root, "c");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Miss);
    assert_eq!(fs::read(s.join("lm.txt")).unwrap(), b"new");

    // Without ETag or Last-Modified there is no safe way to reuse a copy.
    server.route(
        "/plain.txt",
        Route::File {
            body: Bytes::from_static(b"p"),
            etag: None,
            last_modified: None,
            delay: Duration::ZERO,
        },
    );
    let u = cached(&server.url("/plain.txt"));
    for name in ["p1", "p2"] {
        let s = fresh_sandbox(&d.root, name);
        assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Miss);
        assert_eq!(fs::read(s.join("plain.txt")).unwrap(), b"p");
    }
    assert_eq!(server.bodies("/plain.txt"), 2);
}

#[tokio::test]
async fn least_recently_used_entry_is_evicted() {
    let server = TestServer::start().await;
    let d = dirs();
    let f = cache_fetcher(&d.root.join("cache"), 2500);
    for name in ["a", "b", "c"] {
        server.file(&format!("/{name}.bin"), vec![name.as_bytes()[0]; 1000]);
    }
    let u = |n: &str| cached(&server.url(&format!("/{n}.bin")));
    for (i, n) in ["a", "b", "a", "c"].iter().enumerate() {
        let s = fresh_sandbox(&d.root, &format!("s{i}"));
        fetch_into(&f, &u(n), &s).await;
        assert_eq!(
            fs::read(s.join(format!("{n}.bin"))).unwrap(),
            vec![n.as_bytes()[0]; 1000]
        );
    }
    assert!(f.is_cached(&server.url("/a.bin")), "a was used recently");
    assert!(
        !f.is_cached(&server.url("/b.bin")),
        "b is least recently used"
    );
    assert!(f.is_cached(&server.url("/c.bin")));
    let m = f.metrics();
    assert_eq!((m.cache_evictions, m.cache_size), (1, 2000));
    let blobs = fs::read_dir(d.root.join("cache/blobs")).unwrap().count();
    assert_eq!(blobs, 2);

    // An artifact larger than the whole cache is still served (the entry is
    // pinned while in use), then dropped.
    server.file("/huge.bin", vec![b'h'; 4000]);
    let s = fresh_sandbox(&d.root, "huge");
    let r = fetch_into(&f, &u("huge"), &s).await;
    assert_eq!(r.cache, CacheStatus::Miss);
    assert_eq!(fs::read(s.join("huge.bin")).unwrap(), vec![b'h'; 4000]);
    assert!(!f.is_cached(&server.url("/huge.bin")));
    assert!(f.metrics().cache_size <= 2500);
}

#[tokio::test]
async fn concurrent_fetches_of_one_uri_download_once() {
    let server = TestServer::start().await;
    let d = dirs();
    let f = cache_fetcher(&d.root.join("cache"), 1 << 30);
    let body = archives::gz(&archives::tar(&[E::File(
        "data/blob",
        &vec![3u8; 200_000],
        0o644,
    )]));
    server.route(
        "/shared.tgz",
        Route::File {
            body: Bytes::from(body),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            delay: Duration::from_millis(300),
        },
    );
    let url = server.url("/shared.tgz");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let f = f.clone();
        let sandbox = fresh_sandbox(&d.root, &format!("c{i}"));
        let u = cached(&url);
        tasks.spawn(async move {
            let r = f
                .fetch(&[u], &sandbox, FetchOptions::default())
                .await
                .unwrap();
            (sandbox, r[0].cache)
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (sandbox, status) = done.unwrap();
        assert_eq!(
            fs::read(sandbox.join("data/blob")).unwrap(),
            vec![3u8; 200_000]
        );
        statuses.push(status);
    }
    assert_eq!(server.bodies("/shared.tgz"), 1, "downloaded once");
    assert_eq!(
        server.requests("/shared.tgz"),
        1,
        "waiters reuse the fresh copy without asking again"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
        1
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == CacheStatus::Hit).count(),
        5
    );
}

#[tokio::test]
async fn cache_survives_a_restart_and_reconciles_its_files() {
    let server = TestServer::start().await;
    let d = dirs();
    let cache_dir = d.root.join("cache");
    server.file("/keep.txt", b"keep".to_vec());
    server.file("/lost.txt", b"lost".to_vec());
    {
        let f = cache_fetcher(&cache_dir, 1 << 30);
        let s = fresh_sandbox(&d.root, "before");
        fetch_into(&f, &cached(&server.url("/keep.txt")), &s).await;
        fetch_into(&f, &cached(&server.url("/lost.txt")), &s).await;
    }
    // Between runs: one blob vanishes, an orphan and a partial download appear.
    let index: serde_json_like::Index = serde_json_like::read(&cache_dir.join("index.json"));
    let lost_blob = index.file_of(&server.url("/lost.txt"));
    fs::remove_file(cache_dir.join("blobs").join(lost_blob)).unwrap();
    fs::write(cache_dir.join("blobs/orphan"), b"?").unwrap();
    fs::write(cache_dir.join("tmp/dl-1-1"), b"partial").unwrap();

    let f = cache_fetcher(&cache_dir, 1 << 30);
    assert!(f.is_cached(&server.url("/keep.txt")));
    assert!(!f.is_cached(&server.url("/lost.txt")));
    assert!(!cache_dir.join("blobs/orphan").exists());
    assert!(!cache_dir.join("tmp/dl-1-1").exists());
    let s = fresh_sandbox(&d.root, "after");
    let r = fetch_into(&f, &cached(&server.url("/keep.txt")), &s).await;
    assert_eq!(r.cache, CacheStatus::Hit);
    assert_eq!(fs::read(s.join("keep.txt")).unwrap(), b"keep");
    assert_eq!(
        server.bodies("/keep.txt"),
        1,
        "revalidated with a 304, not downloaded again"
    );
    assert_eq!(server.not_modified("/keep.txt"), 1);
}

#[tokio::test]
async fn local_files_are_cached_and_revalidated_by_identity() {
    let d = dirs();
    let f = cache_fetcher(&d.root.join("cache"), 1 << 30);
    let src = d.root.join("artifact.txt");
    fs::write(&src, b"one").unwrap();
    let u = cached(&src.display().to_string());
    let s = fresh_sandbox(&d.root, "a");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Miss);
    let s = fresh_sandbox(&d.root, "b");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Hit);
    fs::write(&src, b"two!").unwrap();
    let s = fresh_sandbox(&d.root, "c");
    assert_eq!(fetch_into(&f, &u, &s).await.cache, CacheStatus::Miss);
    assert_eq!(fs::read(s.join("artifact.txt")).unwrap(), b"two!");
}

#[tokio::test]
async fn cache_flag_without_a_cache_dir_fetches_directly() {
    let server = TestServer::start().await;
    server.file("/x.txt", b"x".to_vec());
    let d = dirs();
    let f = Fetcher::new(FetcherConfig::default()).unwrap();
    let r = fetch_into(&f, &cached(&server.url("/x.txt")), &d.sandbox).await;
    assert_eq!(r.cache, CacheStatus::NotCached);
    assert_eq!(fs::read(d.sandbox.join("x.txt")).unwrap(), b"x");
}

/// Reads the on-disk index the way an operator would, without depending on the
/// crate's private types.
mod serde_json_like {
    use std::path::Path;

    pub struct Index(String);

    pub fn read(p: &Path) -> Index {
        Index(std::fs::read_to_string(p).unwrap())
    }

    impl Index {
        /// The blob file name recorded for `key`.
        pub fn file_of(&self, key: &str) -> String {
            let at = self.0.find(&format!("\"key\": \"{key}\"")).unwrap();
            let rest = &self.0[at..];
            let f = rest.find("\"file\": \"").unwrap() + "\"file\": \"".len();
            rest[f..f + 64].to_string()
        }
    }
}

#[tokio::test]
async fn a_rejected_archive_is_never_cached() {
    let server = TestServer::start().await;
    let d = dirs();
    let cache_dir = d.root.join("cache");
    let f = cache_fetcher(&cache_dir, 1 << 30);
    let tar = archives::tar(&[
        E::File("ok", b"ok", 0o644),
        E::File("../escape", b"x", 0o644),
    ]);
    server.file("/evil.tar.gz", archives::gz(&tar));
    let url = server.url("/evil.tar.gz");
    let err = f
        .fetch(&[cached(&url)], &d.sandbox, FetchOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("archive entry '../escape' escapes the target directory"),
        "{err}"
    );
    assert!(!f.is_cached(&url));
    assert_eq!(tree(&d.sandbox), Vec::<String>::new());
    assert_eq!(tree(&cache_dir.join("blobs")), Vec::<String>::new());
    assert_eq!(tree(&cache_dir.join("tmp")), Vec::<String>::new());
    assert!(!d.root.join("escape").exists());
}

#[tokio::test]
async fn zip_gz_and_executables_through_the_cache() {
    let server = TestServer::start().await;
    let d = dirs();
    let f = cache_fetcher(&d.root.join("cache"), 1 << 30);
    server.file(
        "/a.zip",
        archives::zip(&[archives::Z::File("z/inside.txt", b"zipped", 0o640)]),
    );
    server.file("/b.txt.gz", archives::gz(b"gunzipped"));
    server.file("/tool", b"#!/bin/sh\n".to_vec());
    let mut tool = cached(&server.url("/tool"));
    tool.executable = Some(true);
    let uris = [
        cached(&server.url("/a.zip")),
        cached(&server.url("/b.txt.gz")),
        tool,
    ];
    for (round, expect) in [("one", CacheStatus::Miss), ("two", CacheStatus::Hit)] {
        let s = fresh_sandbox(&d.root, round);
        let results = f.fetch(&uris, &s, FetchOptions::default()).await.unwrap();
        assert!(
            results.iter().all(|r| r.cache == expect),
            "{round}: {results:?}"
        );
        assert_eq!(tree(&s), ["b.txt", "tool", "z", "z/inside.txt"], "{round}");
        assert_eq!(fs::read(s.join("z/inside.txt")).unwrap(), b"zipped");
        assert_eq!(common::mode(&s.join("z/inside.txt")), 0o640);
        assert_eq!(fs::read(s.join("b.txt")).unwrap(), b"gunzipped");
        assert_eq!(common::mode(&s.join("tool")), 0o755);
    }
}
