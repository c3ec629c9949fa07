//! The single `tepui` binary: argument parsing and wiring only. Every role
//! (master, agent, the operator CLI, the internal supervisor and executors)
//! lives in a library crate; this file picks one and runs it.

mod agent_cmd;
mod auth_flags;
mod cli;
mod dev_cmd;
mod env_flags;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, ExitStatus};
use tepui_agent::cli as ops;

fn main() -> ExitCode {
    let argv = env_flags::with_env_flags(&Cli::command(), std::env::args_os().collect(), |k| {
        std::env::var_os(k)
    });
    let cli = Cli::parse_from(argv);
    init_tracing(cli.log_level.as_deref(), cli.log_format);
    match run(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("tepui: {err:#}");
            ExitStatus::Failure.into()
        }
    }
}

fn init_tracing(level: Option<&str>, format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEPUI_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tepui", &mut std::io::stdout());
            Ok(ExitStatus::Success.into())
        }
        Command::Master(args) => {
            tepui_master::run(args.into_config()?)?;
            Ok(ExitStatus::Success.into())
        }
        Command::Supervise(args) => {
            tepui_containerizer::supervisor::run(
                tepui_containerizer::supervisor::SupervisorArgs {
                    runtime_dir: args.runtime_dir,
                    pod: args.pod,
                    ready_fd: args.ready_fd,
                },
            )?;
            Ok(ExitStatus::Success.into())
        }
        Command::Agent(args) => agent_cmd::run_agent(*args).map(Into::into),
        Command::Dev(args) => dev_cmd::run_dev(args).map(Into::into),
        Command::Executor(cli::ExecutorKind::Command) => {
            agent_cmd::run_executor(false).map(Into::into)
        }
        Command::Executor(cli::ExecutorKind::Default) => {
            agent_cmd::run_executor(true).map(Into::into)
        }
        Command::Ps(args) => {
            let client = args.agent.client()?;
            ops::block_on(ops::ps(&client, args.output == cli::OutputFormat::Json))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Logs(args) => {
            let client = args.agent.client()?;
            let options = ops::LogsOptions {
                stderr: args.stderr,
                tail: args.tail,
                follow: args.follow,
            };
            ops::block_on(ops::logs(&client, &args.task, &options))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Kill(args) => {
            let client = args.agent.client()?;
            ops::block_on(ops::kill(&client, &args.target, args.signal))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Top(args) => {
            let client = args.agent.client()?;
            let interval = std::time::Duration::try_from_secs_f64(args.interval.max(0.1))
                .unwrap_or(std::time::Duration::from_secs(2));
            ops::block_on(ops::top(
                &client,
                interval,
                args.iterations,
                args.output == cli::OutputFormat::Json,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Inspect(args) => {
            let client = args.agent.client()?;
            ops::block_on(ops::inspect(&client, &args.target))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Exec(args) => {
            let client = args.agent.client()?;
            let options = tepui_agent::cli_session::ExecOptions {
                interactive: args.interactive,
                tty: args.tty,
            };
            let code = ops::block_on(tepui_agent::cli_session::exec(
                &client,
                &args.target,
                &args.command,
                &options,
            ))?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Attach(args) => {
            let client = args.agent.client()?;
            ops::block_on(tepui_agent::cli_session::attach(
                &client,
                &args.target,
                args.interactive,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Images(args) => {
            use tepui_agent::cli_images;
            match args.action {
                cli::ImagesAction::Ls { agent, output } => {
                    let client = agent.client()?;
                    ops::block_on(cli_images::ls(&client, output == cli::OutputFormat::Json))?;
                }
                cli::ImagesAction::Pull(args) => pull(args)?,
                cli::ImagesAction::Prune {
                    agent,
                    exclude,
                    output,
                } => {
                    let client = agent.client()?;
                    ops::block_on(cli_images::prune(
                        &client,
                        &exclude,
                        output == cli::OutputFormat::Json,
                    ))?;
                }
            }
            Ok(ExitStatus::Success.into())
        }
        Command::Pull(args) => {
            pull(args)?;
            Ok(ExitStatus::Success.into())
        }
        other => Ok(cli::not_built_yet(&other).into()),
    }
}

fn pull(args: cli::PullArgs) -> Result<(), ops::CliError> {
    let client = args.agent.client()?;
    ops::block_on(tepui_agent::cli_images::pull(
        &client,
        &args.reference,
        args.output == cli::OutputFormat::Json,
    ))
}
