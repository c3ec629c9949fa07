//! What identifying an agent API caller costs (issue 16 item 2): the
//! kernel's `sock_diag` lookup of the client's socket, the `/proc` scan
//! for the process holding it and its `/proc/<pid>/cgroup`. The agent does
//! it once per connection (kept with it), never per request; compared with
//! a plain loopback HTTP-sized round trip (connect + one write/read).
//! Prints a table; `cargo bench --bench peer_lookup`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The client is another process, as a task would be.
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket,sys; s=socket.create_connection(('127.0.0.1',{})); sys.stdin.read()",
                addr.port()
            ),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_conn, peer) = listener.accept().unwrap();
    let processes = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        let origin = tepui_agent::peer::identify(peer, addr, "tepui");
        assert!(matches!(origin, tepui_agent::peer::Origin::Host { .. }));
    }
    let identify = started.elapsed() / rounds;

    // For scale: a fresh loopback connection with a small request/answer.
    let echo = std::thread::spawn(move || {
        for _ in 0..rounds {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let started = Instant::now();
    for _ in 0..rounds {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).unwrap();
    }
    let round_trip = started.elapsed() / rounds;
    echo.join().unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();

    println!("| what | per call | processes on the host |");
    println!("|---|---|---|");
    println!("| identify a loopback caller (once per connection) | {identify:?} | {processes} |");
    println!("| loopback connect + small round trip | {round_trip:?} | |");
}
