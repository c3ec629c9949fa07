//! `tepui exec` and `tepui attach`: the client side of
//! LAUNCH_NESTED_CONTAINER_SESSION, ATTACH_CONTAINER_INPUT and
//! ATTACH_CONTAINER_OUTPUT. With `-t` the local terminal goes raw and its
//! window size follows SIGWINCH; the session's exit status becomes ours.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use prost::Message;
use tepui_proto::recordio;
use tepui_proto::v1::agent::{Call, ProcessIo, call, process_io};
use tepui_proto::v1::{
    CommandInfo, ContainerId, ContainerInfo, DurationInfo, Environment, TtyInfo, environment,
    tty_info,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::cli::{CliError, Client};
use crate::cli_locate::Scope;
use crate::cli_resolve::resolve;

const PROTOBUF: &str = "application/x-protobuf";
const HEARTBEAT: Duration = Duration::from_secs(30);

pub struct ExecOptions {
    pub interactive: bool,
    pub tty: bool,
    /// `TERM` for the command when it gets a terminal (as `docker exec -t`
    /// passes the caller's).
    pub term: Option<String>,
}

/// Runs `command` in a debug container inside `target`'s container and
/// returns its exit code (128 + signal when it was killed).
pub async fn exec(
    scope: &Scope,
    target: &str,
    command: &[String],
    options: &ExecOptions,
) -> Result<i32, CliError> {
    let found = resolve(scope, target).await?;
    let parent = found.running(target)?;
    let client = &found.agent;
    let Some((program, _)) = command.split_first() else {
        return Err(CliError::Usage("exec needs a command after '--'".into()));
    };
    let id = ContainerId {
        value: uuid::Uuid::new_v4().to_string(),
        parent: Some(Box::new(parent)),
    };
    let window = if options.tty { local_window() } else { None };
    let container = options.tty.then(|| ContainerInfo {
        r#type: tepui_proto::v1::container_info::Type::Mesos as i32,
        tty_info: Some(TtyInfo {
            window_size: window.map(|(rows, columns)| tty_info::WindowSize { rows, columns }),
        }),
        ..Default::default()
    });
    let launch = Call {
        r#type: Some(call::Type::LaunchNestedContainerSession as i32),
        launch_nested_container_session: Some(call::LaunchNestedContainerSession {
            container_id: id.clone(),
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some(program.clone()),
                arguments: command.to_vec(),
                environment: options.term.as_ref().filter(|_| options.tty).map(|term| {
                    Environment {
                        variables: vec![environment::Variable {
                            name: "TERM".into(),
                            r#type: Some(environment::variable::Type::Value as i32),
                            value: Some(term.clone()),
                            secret: None,
                        }],
                    }
                }),
                ..Default::default()
            }),
            container,
        }),
        ..Default::default()
    };
    let output = client.post_stream(launch.encode_to_vec(), PROTOBUF).await?;
    let _raw = if options.tty {
        RawTerminal::enter()
    } else {
        None
    };
    let input = if options.interactive {
        Some(tokio::spawn(send_input(
            client.clone(),
            id.clone(),
            options.tty,
        )))
    } else {
        None
    };
    let printed = print_output(output).await;
    if let Some(input) = input {
        input.abort();
    }
    drop(_raw);
    printed?;
    wait_exit_code(client, id).await
}

/// Streams a container's output (and with `interactive`, our stdin to it)
/// until it ends.
pub async fn attach(scope: &Scope, target: &str, interactive: bool) -> Result<(), CliError> {
    let found = resolve(scope, target).await?;
    let id = found.running(target)?;
    let client = &found.agent;
    let call = Call {
        r#type: Some(call::Type::AttachContainerOutput as i32),
        attach_container_output: Some(call::AttachContainerOutput {
            container_id: id.clone(),
        }),
        ..Default::default()
    };
    let output = client.post_stream(call.encode_to_vec(), PROTOBUF).await?;
    let input = interactive.then(|| tokio::spawn(send_input(client.clone(), id, false)));
    let printed = print_output(output).await;
    if let Some(input) = input {
        input.abort();
    }
    printed
}

/// Prints DATA records to stdout/stderr as they come.
async fn print_output(response: reqwest::Response) -> Result<(), CliError> {
    let mut decoder = recordio::Decoder::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(CliError::Stream)?;
        let records = decoder
            .feed(&chunk)
            .map_err(|e| CliError::Protocol(e.to_string()))?;
        for record in records {
            let io = ProcessIo::decode(record)?;
            let Some(data) = io.data else { continue };
            let bytes = data.data.unwrap_or_default();
            let stderr = data.r#type == Some(process_io::data::Type::Stderr as i32);
            let written = if stderr {
                let mut e = std::io::stderr().lock();
                e.write_all(&bytes).and_then(|()| e.flush())
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(&bytes).and_then(|()| o.flush())
            };
            written?;
        }
    }
    Ok(())
}

fn input_call(id: Option<ContainerId>, io: Option<ProcessIo>) -> Bytes {
    use call::attach_container_input::Type;
    let call = Call {
        r#type: Some(call::Type::AttachContainerInput as i32),
        attach_container_input: Some(call::AttachContainerInput {
            r#type: Some(if id.is_some() {
                Type::ContainerId
            } else {
                Type::ProcessIo
            } as i32),
            container_id: id,
            process_io: io,
        }),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    recordio::encode(&call.encode_to_vec(), &mut out);
    out.freeze()
}

fn stdin_record(data: &[u8]) -> Bytes {
    input_call(
        None,
        Some(ProcessIo {
            r#type: Some(process_io::Type::Data as i32),
            data: Some(process_io::Data {
                r#type: Some(process_io::data::Type::Stdin as i32),
                data: Some(Bytes::copy_from_slice(data)),
            }),
            control: None,
        }),
    )
}

fn control_record(control: process_io::Control) -> Bytes {
    input_call(
        None,
        Some(ProcessIo {
            r#type: Some(process_io::Type::Control as i32),
            data: None,
            control: Some(control),
        }),
    )
}

fn window_record(rows: u32, columns: u32) -> Bytes {
    control_record(process_io::Control {
        r#type: Some(process_io::control::Type::TtyInfo as i32),
        tty_info: Some(TtyInfo {
            window_size: Some(tty_info::WindowSize { rows, columns }),
        }),
        heartbeat: None,
    })
}

fn heartbeat_record() -> Bytes {
    control_record(process_io::Control {
        r#type: Some(process_io::control::Type::Heartbeat as i32),
        tty_info: None,
        heartbeat: Some(process_io::control::Heartbeat {
            interval: Some(DurationInfo {
                nanoseconds: i64::try_from(HEARTBEAT.as_nanos()).unwrap_or(i64::MAX),
            }),
        }),
    })
}

/// ATTACH_CONTAINER_INPUT: our stdin (and window size changes) as a
/// RecordIO request body; end of our stdin is an empty DATA record (EOF).
async fn send_input(client: Client, id: ContainerId, tty: bool) -> Result<(), CliError> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let _ = tx.send(input_call(Some(id), None)).await;
    if tty && let Some((rows, columns)) = local_window() {
        let _ = tx.send(window_record(rows, columns)).await;
    }
    let feeder = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 8192];
        let mut winch =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
        let mut ticker = tokio::time::interval(HEARTBEAT);
        ticker.reset();
        loop {
            let record = tokio::select! {
                n = stdin.read(&mut buf) => match n {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(stdin_record(&[])).await;
                        return;
                    }
                    Ok(n) => stdin_record(&buf[..n]),
                },
                Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                    match local_window() {
                        Some((rows, columns)) if tty => window_record(rows, columns),
                        _ => continue,
                    }
                }
                _ = ticker.tick() => heartbeat_record(),
            };
            if tx.send(record).await.is_err() {
                return;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let result = client
        .post_body(
            reqwest::Body::wrap_stream(body),
            "application/recordio",
            PROTOBUF,
        )
        .await;
    feeder.abort();
    result.map(|_| ())
}

/// WAIT_CONTAINER's exit status as a shell exit code.
async fn wait_exit_code(client: &Client, id: ContainerId) -> Result<i32, CliError> {
    let answer = client
        .call(Call {
            r#type: Some(call::Type::WaitContainer as i32),
            wait_container: Some(call::WaitContainer { container_id: id }),
            ..Default::default()
        })
        .await?;
    let status = answer
        .wait_container
        .and_then(|w| w.exit_status)
        .unwrap_or(0);
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    })
}

/// Our terminal's size, if stdout or stdin is one.
fn local_window() -> Option<(u32, u32)> {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize into memory we own.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
        if rc == 0 && size.ws_row > 0 {
            return Some((u32::from(size.ws_row), u32::from(size.ws_col)));
        }
    }
    None
}

/// Raw mode on our stdin while a terminal session runs: keys (^C, ^D)
/// go to the remote terminal. Restored when dropped.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
