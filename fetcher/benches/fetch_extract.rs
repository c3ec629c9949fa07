//! Fetch + extract of a ~100 MiB .tar.gz over loopback HTTP: tepui's fetcher
//! against `curl -s URL | tar xz -C DIR`, interleaved in the same run so both
//! see the same machine state.
//!
//! Run: `cargo bench -p tepui-fetcher --bench fetch_extract` (env RUNS=N to
//! change the number of runs, default 5; BENCH_DIR=DIR to extract somewhere
//! other than the system temp dir, e.g. /dev/shm).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/server.rs"]
mod server;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tepui_fetcher::{FetchOptions, Fetcher, FetcherConfig, Uri};

/// A cheap deterministic generator: incompressible bytes without pulling in
/// a random-number crate.
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

fn append(builder: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut h, path, data).unwrap();
}

/// ~80 MiB of random data, ~80 MiB of text-like data and 2,000 small files:
/// about 90-100 MiB once gzipped.
fn build_archive() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(110 << 20),
        flate2::Compression::default(),
    );
    let mut b = tar::Builder::new(gz);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; 4 << 20];
    for i in 0..20 {
        rng.fill(&mut buf);
        append(&mut b, &format!("bench/random/blob-{i:02}.bin"), &buf);
    }
    let mut text = Vec::with_capacity(2 << 20);
    for i in 0..40 {
        text.clear();
        let mut line = 0u64;
        while text.len() < (2 << 20) {
            writeln!(
                text,
                "{i:02} line {line:08} the quick brown fox jumps over the lazy dog {}",
                line * 7919 % 1_000_003
            )
            .unwrap();
            line += 1;
        }
        append(&mut b, &format!("bench/text/file-{i:02}.log"), &text);
    }
    let mut small = vec![0u8; 4096];
    for i in 0..2000 {
        rng.fill(&mut small[..2048]);
        append(
            &mut b,
            &format!("bench/small/{:02}/f-{i:04}.dat", i % 50),
            &small,
        );
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn file_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += file_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let t = Instant::now();
        let archive = tokio::task::spawn_blocking(build_archive).await.unwrap();
        let size = archive.len();
        println!(
            "archive: {:.1} MiB .tar.gz (built in {:.1} s)",
            size as f64 / (1 << 20) as f64,
            t.elapsed().as_secs_f64()
        );
        let server = server::TestServer::start().await;
        server.file("/bench.tar.gz", archive);
        let url = server.url("/bench.tar.gz");
        let fetcher = Fetcher::new(FetcherConfig::default()).unwrap();
        let curl = have("curl") && have("tar");
        if !curl {
            println!("curl or tar not found: comparison excluded");
        }
        // BENCH_DIR=/dev/shm takes the disk out of the comparison.
        let work = match std::env::var_os("BENCH_DIR") {
            Some(base) => tempfile::tempdir_in(base).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        println!("extracting under {}", work.path().display());
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        println!("{:>4} {:>12} {:>14}", "run", "tepui (s)", "curl|tar (s)");
        for run in 0..runs {
            let dir = tempfile::tempdir_in(work.path()).unwrap();
            let t = Instant::now();
            let uri = Uri {
                value: url.clone(),
                ..Uri::default()
            };
            let r = fetcher
                .fetch(&[uri], dir.path(), FetchOptions::default())
                .await
                .unwrap();
            let ours_t = t.elapsed();
            assert_eq!(r[0].bytes, size as u64);
            assert_eq!(file_count(&dir.path().join("bench")), 2060);
            drop(dir);
            ours.push(ours_t);

            let mut theirs_t = None;
            if curl {
                let dir = tempfile::tempdir_in(work.path()).unwrap();
                let cmd = format!("curl -sf '{url}' | tar xz -C '{}'", dir.path().display());
                let t = Instant::now();
                let status = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(&cmd)
                    .status()
                    .await
                    .unwrap();
                let elapsed = t.elapsed();
                assert!(status.success(), "{cmd}");
                assert_eq!(file_count(&dir.path().join("bench")), 2060);
                drop(dir);
                theirs.push(elapsed);
                theirs_t = Some(elapsed);
            }
            println!(
                "{:>4} {:>12.3} {:>14}",
                run + 1,
                ours_t.as_secs_f64(),
                theirs_t.map_or("-".into(), |t| format!("{:.3}", t.as_secs_f64()))
            );
        }
        // Through the cache: the first fetch fills it while extracting (then
        // fsyncs the blob), later ones revalidate (304) and extract.
        let cache_dir = tempfile::tempdir_in(work.path()).unwrap();
        let cached = Fetcher::new(FetcherConfig {
            cache_dir: Some(cache_dir.path().to_path_buf()),
            cache_size_bytes: 1 << 30,
            ..FetcherConfig::default()
        })
        .unwrap();
        let mut cache_times = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir_in(work.path()).unwrap();
            let uri = Uri {
                value: url.clone(),
                cache: Some(true),
                ..Uri::default()
            };
            let t = Instant::now();
            let r = cached
                .fetch(&[uri], dir.path(), FetchOptions::default())
                .await
                .unwrap();
            cache_times.push(format!(
                "{:.3} s ({})",
                t.elapsed().as_secs_f64(),
                r[0].cache
            ));
        }
        println!("through the cache: {}", cache_times.join(", "));

        let m_ours = median(&mut ours);
        let mib = size as f64 / (1 << 20) as f64;
        println!(
            "median tepui:    {:.3} s ({:.0} MiB/s of archive)",
            m_ours.as_secs_f64(),
            mib / m_ours.as_secs_f64()
        );
        if curl {
            let m_theirs = median(&mut theirs);
            println!(
                "median curl|tar: {:.3} s ({:.0} MiB/s of archive)",
                m_theirs.as_secs_f64(),
                mib / m_theirs.as_secs_f64()
            );
            println!(
                "ratio tepui / curl|tar: {:.2}x (target <= 1.10x)",
                m_ours.as_secs_f64() / m_theirs.as_secs_f64()
            );
        }
    });
}
