//! Signal delivery into the poll loop through a self-pipe.
//!
//! Not signalfd: signalfd needs the signals blocked, and a blocked mask is
//! inherited by every container process across exec, so a task could never
//! be stopped with SIGTERM. A handler is reset by exec; the mask stays empty.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the
        // byte, which is fine because one pending byte already wakes the loop.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The read end of the self-pipe; readable when a watched signal arrived.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs handlers for SIGCHLD, SIGTERM and SIGINT; ignores SIGPIPE so a
    /// client that hangs up cannot kill the supervisor.
    pub fn install() -> nix::Result<Self> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        PIPE_WRITE_FD.store(std::os::fd::AsRawFd::as_raw_fd(&write), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: the handler only performs an async-signal-safe write.
            unsafe { sigaction(signal, &action)? };
        }
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: ignoring a signal installs no code.
        unsafe { sigaction(Signal::SIGPIPE, &ignore)? };
        Ok(Self {
            read,
            _write: write,
        })
    }

    /// Drains the pipe and returns which signals arrived.
    pub fn drain(&self) -> Vec<Signal> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        while let Ok(n) = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.read), &mut buf) {
            if n == 0 {
                break;
            }
            for b in &buf[..n] {
                if let Ok(sig) = Signal::try_from(i32::from(*b))
                    && !out.contains(&sig)
                {
                    out.push(sig);
                }
            }
        }
        out
    }
}

impl AsFd for SignalPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}
