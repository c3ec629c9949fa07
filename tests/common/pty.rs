//! A `tepui` CLI process on a pseudo-terminal, as an operator's shell runs
//! it: its own session with the pty as controlling terminal. A reader
//! thread collects everything it prints. (Blocking: for std tests.)

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PtyCli {
    child: Child,
    master: std::fs::File,
    seen: Arc<Mutex<String>>,
}

impl PtyCli {
    /// Runs `tepui args` on a `rows` x `cols` terminal with `env` added.
    pub fn spawn(args: &[String], env: &[(&str, &str)], rows: u16, cols: u16) -> Self {
        Self::spawn_program(&super::tepui_bin(), args, env, rows, cols)
    }

    /// Runs `program args` on a `rows` x `cols` terminal with `env` added.
    pub fn spawn_program(
        program: &std::path::Path,
        args: &[String],
        env: &[(&str, &str)],
        rows: u16,
        cols: u16,
    ) -> Self {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave = pty.slave.into_raw_fd();
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: the fds are ours; only async-signal-safe calls follow fork.
        unsafe {
            cmd.stdin(Stdio::from_raw_fd(libc::dup(slave)))
                .stdout(Stdio::from_raw_fd(libc::dup(slave)))
                .stderr(Stdio::from_raw_fd(libc::dup(slave)))
                .pre_exec(|| {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
        }
        let child = cmd.spawn().unwrap();
        // SAFETY: closing our copy of the slave, which we own.
        unsafe { libc::close(slave) };
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            master,
            seen,
        }
    }

    pub fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Waits until the output contains `what`.
    pub fn expect(&self, what: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.contains(what) {
                return;
            }
            assert!(Instant::now() < deadline, "never saw {what:?} in {seen:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn seen(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    pub fn exit_code(mut self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the CLI did not exit: {}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
