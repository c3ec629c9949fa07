//! Live session containers (LAUNCH_NESTED_CONTAINER_SESSION): who holds
//! their stdin, and the fan-out of their output to any number of attachers.
//!
//! The session's own connection is the primary output subscriber: it gets
//! back-pressure (the pump waits for it), so it never loses output. Other
//! attachers (ATTACH_CONTAINER_OUTPUT) get copies; one that falls more than
//! `ATTACHER_BACKLOG` chunks behind is dropped rather than let it grow the
//! agent's memory or slow the session down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tepui_containerizer::spec::WindowSize;
use tepui_containerizer::{ContainerPath, PtyMaster, SessionEnds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Chunks an extra attacher may lag behind before it is dropped.
const ATTACHER_BACKLOG: usize = 256;
/// Chunks buffered for the session's own connection (then the pump waits).
const PRIMARY_BACKLOG: usize = 64;
const READ_CHUNK: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Some output of a session; never empty.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub stream: Stream,
    pub data: Bytes,
}

/// What ATTACH_CONTAINER_INPUT feeds a session.
#[derive(Debug)]
pub enum Input {
    Data(Bytes),
    /// End of input: the FIFO closes, or a terminal gets EOT (^D).
    Eof,
    Resize(WindowSize),
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "container {0} has no session: only containers launched with LAUNCH_NESTED_CONTAINER_SESSION take input"
    )]
    NoSession(ContainerPath),
    #[error("another ATTACH_CONTAINER_INPUT is already connected to container {0}")]
    InputTaken(ContainerPath),
    #[error("the session of container {0} has ended")]
    Ended(ContainerPath),
}

pub struct Session {
    pub container: ContainerPath,
    pub tty: bool,
    input: mpsc::Sender<Input>,
    input_attached: AtomicBool,
    attachers: std::sync::Mutex<Vec<mpsc::Sender<Chunk>>>,
}

impl Session {
    /// Claims the session's stdin: one ATTACH_CONTAINER_INPUT at a time.
    pub fn attach_input(self: &Arc<Self>) -> Result<InputClaim, AttachError> {
        if self.input.is_closed() {
            return Err(AttachError::Ended(self.container.clone()));
        }
        if self.input_attached.swap(true, Ordering::SeqCst) {
            return Err(AttachError::InputTaken(self.container.clone()));
        }
        Ok(InputClaim {
            session: self.clone(),
        })
    }

    /// A copy of the output from now on; ends when the session's output
    /// does, or when this attacher falls too far behind.
    pub fn attach_output(&self) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(ATTACHER_BACKLOG);
        self.attachers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    fn fan_out(&self, chunk: &Chunk) {
        let mut attachers = self.attachers.lock().unwrap_or_else(|e| e.into_inner());
        attachers.retain(|tx| match tx.try_send(chunk.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(container = %self.container, "an output attacher fell behind: dropping it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

/// The right to write to a session's stdin; released when dropped.
pub struct InputClaim {
    session: Arc<Session>,
}

impl InputClaim {
    pub fn tty(&self) -> bool {
        self.session.tty
    }

    /// False once the session's process no longer reads input.
    pub async fn send(&self, input: Input) -> bool {
        self.session.input.send(input).await.is_ok()
    }
}

impl Drop for InputClaim {
    fn drop(&mut self) {
        self.session.input_attached.store(false, Ordering::SeqCst);
    }
}

/// Every live session of the agent.
#[derive(Default)]
pub struct Sessions {
    live: std::sync::Mutex<HashMap<ContainerPath, Arc<Session>>>,
}

impl Sessions {
    pub fn get(&self, id: &ContainerPath) -> Option<Arc<Session>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Registers a launched session and starts its pumps. Returns the
    /// primary output stream (closed when all output has been read).
    pub fn start(
        self: &Arc<Self>,
        container: ContainerPath,
        ends: SessionEnds,
    ) -> mpsc::Receiver<Chunk> {
        self.start_with(container, ends, true)
    }

    /// [`Sessions::start`]; `eof_is_eot` says whether an empty input
    /// record becomes EOT (^D) on a terminal. A task's terminal follows
    /// Mesos's switchboard (`IOSwitchboardServerProcess::
    /// attachContainerInput`): with a TTY an empty DATA record is no EOF,
    /// the client sends EOT itself, so an attacher that detaches leaves the
    /// task's shell running.
    pub fn start_with(
        self: &Arc<Self>,
        container: ContainerPath,
        ends: SessionEnds,
        eof_is_eot: bool,
    ) -> mpsc::Receiver<Chunk> {
        let (input_tx, input_rx) = mpsc::channel(16);
        let (primary_tx, primary_rx) = mpsc::channel(PRIMARY_BACKLOG);
        let tty = matches!(ends, SessionEnds::Terminal(_));
        let session = Arc::new(Session {
            container: container.clone(),
            tty,
            input: input_tx,
            input_attached: AtomicBool::new(false),
            attachers: std::sync::Mutex::new(Vec::new()),
        });
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.clone(), session.clone());
        let sessions = self.clone();
        tokio::spawn(async move {
            match ends {
                SessionEnds::Pipes {
                    stdin,
                    stdout,
                    stderr,
                } => {
                    let input = tokio::spawn(feed_pipe(stdin, input_rx));
                    let out = pump(stdout, Stream::Stdout, session.clone(), primary_tx.clone());
                    let err = pump(stderr, Stream::Stderr, session.clone(), primary_tx);
                    tokio::join!(out, err);
                    input.abort();
                }
                SessionEnds::Terminal(pty) => {
                    let pty = Arc::new(pty);
                    let input = tokio::spawn(feed_terminal(pty.clone(), input_rx, eof_is_eot));
                    pump_terminal(&pty, &session, primary_tx).await;
                    input.abort();
                }
            }
            // Output is over: attachers see their streams end.
            session
                .attachers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            sessions
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&container);
        });
        primary_rx
    }
}

/// Forwards one output stream to the primary (with back-pressure) and the
/// attachers. A primary that went away (its connection dropped) no longer
/// counts; the attachers still get the output.
async fn pump(
    mut from: tokio::net::unix::pipe::Receiver,
    stream: Stream,
    session: Arc<Session>,
    primary: mpsc::Sender<Chunk>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = Chunk {
            stream,
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        session.fan_out(&chunk);
        let _ = primary.send(chunk).await;
    }
}

async fn pump_terminal(pty: &PtyMaster, session: &Arc<Session>, primary: mpsc::Sender<Chunk>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match pty.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = Chunk {
            stream: Stream::Stdout,
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        session.fan_out(&chunk);
        let _ = primary.send(chunk).await;
    }
}

async fn feed_pipe(mut stdin: tokio::net::unix::pipe::Sender, mut input: mpsc::Receiver<Input>) {
    while let Some(message) = input.recv().await {
        match message {
            Input::Data(data) => {
                if stdin.write_all(&data).await.is_err() {
                    return;
                }
            }
            // Dropping our end is the process's EOF.
            Input::Eof => return,
            Input::Resize(_) => {}
        }
    }
}

async fn feed_terminal(pty: Arc<PtyMaster>, mut input: mpsc::Receiver<Input>, eof_is_eot: bool) {
    while let Some(message) = input.recv().await {
        let result = match message {
            Input::Data(data) => pty.write_all(&data).await,
            Input::Eof if eof_is_eot => pty.write_all(b"\x04").await,
            Input::Eof => Ok(()),
            Input::Resize(size) => pty.resize(size),
        };
        if let Err(e) = result {
            tracing::debug!("session terminal input ended: {e}");
            return;
        }
    }
}
