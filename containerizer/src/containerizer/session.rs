//! The agent's ends of a session container's stdio (Mesos's
//! LAUNCH_NESTED_CONTAINER_SESSION). Without a terminal they are three FIFOs
//! in the container's runtime dir; with one, the pty master that
//! libcontainer makes inside the container and sends over a console socket.
//! The agent holds these ends, so a session ends with the agent's
//! connection: when they close the process sees EOF, EPIPE or SIGHUP.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use crate::spec::WindowSize;
use crate::supervisor::protocol::SessionIo;

/// How long the container may take to send its terminal once launched.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running session's stdio, as the agent sees it.
pub enum SessionEnds {
    Pipes {
        stdin: pipe::Sender,
        stdout: pipe::Receiver,
        stderr: pipe::Receiver,
    },
    Terminal(PtyMaster),
}

/// Made before the launch: what the supervisor is told, and our ends.
pub(super) struct PreparedSession {
    pub io: SessionIo,
    pending: Pending,
}

enum Pending {
    Pipes {
        stdin: pipe::Sender,
        stdout: pipe::Receiver,
        stderr: pipe::Receiver,
    },
    Terminal {
        listener: UnixListener,
        socket: SocketFile,
        window: Option<WindowSize>,
    },
}

/// Removes the console socket's file however the launch ends.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl PreparedSession {
    /// FIFOs in `container_dir`, or a console socket under `runtime_root`
    /// (short enough for `sun_path`, unlike the nested runtime dirs).
    pub fn prepare(
        container_dir: &Path,
        runtime_root: &Path,
        tty: Option<crate::spec::Tty>,
    ) -> io::Result<Self> {
        match tty {
            None => {
                std::fs::create_dir_all(container_dir)?;
                let fifo = |name: &str| -> io::Result<PathBuf> {
                    let path = container_dir.join(name);
                    let _ = std::fs::remove_file(&path);
                    nix::unistd::mkfifo(
                        &path,
                        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
                    )
                    .map_err(io::Error::from)?;
                    Ok(path)
                };
                let (stdin, stdout, stderr) = (fifo("stdin")?, fifo("stdout")?, fifo("stderr")?);
                // Read-write keeps the open from failing for want of a
                // reader; closing it is the container's EOF.
                let stdin_end = pipe::OpenOptions::new()
                    .read_write(true)
                    .open_sender(&stdin)?;
                let stdout_end = pipe::OpenOptions::new().open_receiver(&stdout)?;
                let stderr_end = pipe::OpenOptions::new().open_receiver(&stderr)?;
                Ok(Self {
                    io: SessionIo::Pipes {
                        stdin,
                        stdout,
                        stderr,
                    },
                    pending: Pending::Pipes {
                        stdin: stdin_end,
                        stdout: stdout_end,
                        stderr: stderr_end,
                    },
                })
            }
            Some(tty) => {
                let dir = runtime_root.join("tty");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("{}.sock", uuid::Uuid::new_v4().simple()));
                let listener = UnixListener::bind(&path)?;
                let socket = SocketFile(path.clone());
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                Ok(Self {
                    io: SessionIo::Terminal {
                        console_socket: path,
                    },
                    pending: Pending::Terminal {
                        listener,
                        socket,
                        window: tty.window_size,
                    },
                })
            }
        }
    }

    /// After a successful launch: our ends, with the terminal received.
    pub async fn finish(self) -> io::Result<SessionEnds> {
        match self.pending {
            Pending::Pipes {
                stdin,
                stdout,
                stderr,
            } => Ok(SessionEnds::Pipes {
                stdin,
                stdout,
                stderr,
            }),
            Pending::Terminal {
                listener,
                socket,
                window,
            } => {
                let master = tokio::task::spawn_blocking(move || {
                    let _socket = socket;
                    receive_terminal(&listener)
                })
                .await
                .map_err(io::Error::other)??;
                let master = PtyMaster::new(master)?;
                if let Some(window) = window {
                    master.resize(window)?;
                }
                Ok(SessionEnds::Terminal(master))
            }
        }
    }
}

/// Accepts the container's connection and takes the pty master it sends
/// (SCM_RIGHTS), bounded by `CONSOLE_TIMEOUT`.
fn receive_terminal(listener: &UnixListener) -> io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + CONSOLE_TIMEOUT;
    let stream: UnixStream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the container never sent its terminal",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CONSOLE_TIMEOUT))?;
    let mut name = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut received = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed this fd in our table for
                // us; nothing else owns it.
                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    received.ok_or_else(|| io::Error::other("the console socket message carried no terminal"))
}

/// A pty master driven by tokio. Reading after the container's side has
/// closed gives EIO on Linux; we report that as end of file.
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    fn new(fd: OwnedFd) -> io::Result<Self> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own, with integer arguments.
        let ok = unsafe {
            let flags = libc::fcntl(raw, libc::F_GETFL);
            flags >= 0 && libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns the fd; nothing closes or replaces it
        // while registered.
        let fd = unsafe { AsyncFd::register(fd)? };
        Ok(Self { fd })
    }

    /// Some output, or `Ok(0)` once the terminal is closed.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                nix::unistd::read(fd.get_ref().as_raw_fd(), buf).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the window size; the process gets SIGWINCH.
    pub fn resize(&self, window: WindowSize) -> io::Result<()> {
        let size = libc::winsize {
            ws_row: u16::try_from(window.rows).unwrap_or(u16::MAX),
            ws_col: u16::try_from(window.columns).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
        let rc = unsafe { libc::ioctl(self.fd.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
