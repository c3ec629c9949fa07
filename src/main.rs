//! The single `tepui` binary: argument parsing and wiring only. Every role
//! (master, agent, the operator CLI, the internal supervisor and executors)
//! lives in a library crate; this file picks one and runs it.

mod agent_cmd;
mod auth_flags;
mod cli;
mod cli_config;
mod daemon_flags;
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
    daemon_flags::record(&argv);
    let cli = Cli::parse_from(argv);
    init_tracing(cli.log_level.as_deref(), cli.log_format);
    match run(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("tepui: {}", message(&err));
            if is_usage(&err) {
                ExitStatus::Usage.into()
            } else {
                ExitStatus::Failure.into()
            }
        }
    }
}

/// The error and its causes, each said once: many errors already quote
/// their source in their own message.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Usage errors found after parsing exit 2, like clap's.
fn is_usage(err: &anyhow::Error) -> bool {
    err.downcast_ref::<cli::UsageError>().is_some()
        || matches!(
            err.downcast_ref::<ops::CliError>(),
            Some(ops::CliError::Usage(_))
        )
}

fn init_tracing(level: Option<&str>, format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEPUI_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into files or the
    // journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        Command::Dev(args) => dev_cmd::run_dev(*args).map(Into::into),
        Command::Executor(cli::ExecutorKind::Command) => {
            agent_cmd::run_executor(false).map(Into::into)
        }
        Command::Executor(cli::ExecutorKind::Default) => {
            agent_cmd::run_executor(true).map(Into::into)
        }
        Command::Ps(args) => {
            let scope = args.agent.scope()?;
            ops::block_on(tepui_agent::cli_ps::ps(
                &scope,
                args.all,
                args.output == cli::OutputFormat::Json,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Logs(args) => {
            let scope = args.agent.scope()?;
            let options = ops::LogsOptions {
                stderr: args.stderr,
                tail: args.tail,
                follow: args.follow,
            };
            ops::block_on(ops::logs(&scope, &args.task, &options))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Kill(args) => {
            let scope = args.agent.scope()?;
            ops::block_on(tepui_agent::cli_resolve::kill(
                &scope,
                &args.target,
                args.signal,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Top(args) => {
            let scope = args.agent.scope()?;
            ops::block_on(tepui_agent::cli_ps::top(
                &scope,
                args.interval,
                args.iterations,
                args.output == cli::OutputFormat::Json,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Inspect(args) => {
            let scope = args.agent.scope()?;
            ops::block_on(tepui_agent::cli_resolve::inspect(&scope, &args.target))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Exec(args) => {
            let scope = args.agent.scope()?;
            // As `docker exec -t`: the caller's TERM, else xterm.
            let term = args.tty.then(|| {
                std::env::var("TERM")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "xterm".to_string())
            });
            let options = tepui_agent::cli_session::ExecOptions {
                interactive: args.interactive,
                tty: args.tty,
                term,
            };
            let code = ops::block_on(tepui_agent::cli_session::exec(
                &scope,
                &args.target,
                &args.command,
                &options,
            ))?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Attach(args) => {
            let scope = args.agent.scope()?;
            ops::block_on(tepui_agent::cli_session::attach(
                &scope,
                &args.target,
                args.interactive,
            ))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Status(args) => {
            let master = args.master()?;
            let json = args.output == cli::OutputFormat::Json;
            ops::block_on(tepui_agent::cli_cluster::status(&master, json))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Agents(args) => {
            let master = args.master()?;
            let json = args.output == cli::OutputFormat::Json;
            ops::block_on(tepui_agent::cli_cluster::agents(&master, json))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Frameworks(args) => {
            let master = args.master()?;
            let json = args.output == cli::OutputFormat::Json;
            ops::block_on(tepui_agent::cli_cluster::frameworks(&master, json))?;
            Ok(ExitStatus::Success.into())
        }
        Command::Images(args) => {
            use tepui_agent::cli_images;
            match args.action {
                cli::ImagesAction::Ls { agent, output } => {
                    let scope = agent.scope()?;
                    ops::block_on(cli_images::ls(&scope, output == cli::OutputFormat::Json))?;
                }
                cli::ImagesAction::Pull(args) => pull(args)?,
                cli::ImagesAction::Prune {
                    agent,
                    exclude,
                    output,
                } => {
                    let client = agent.client("images prune")?;
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
        Command::Run(args) => run_workload(args),
    }
}

fn pull(args: cli::PullArgs) -> anyhow::Result<()> {
    let client = args.agent.client("pull")?;
    ops::block_on(tepui_agent::cli_images::pull(
        &client,
        &args.reference,
        args.output == cli::OutputFormat::Json,
    ))?;
    Ok(())
}

fn run_workload(args: cli::RunArgs) -> anyhow::Result<ExitCode> {
    use tepui_agent::cli_run;
    let workload = match (&args.task, &args.task_group) {
        (Some(path), _) => cli_run::load_workload(path, false)?,
        (None, Some(path)) => cli_run::load_workload(path, true)?,
        (None, None) => cli_run::Workload::Command {
            name: args.name.clone(),
            command: args.command.join(" "),
            resources: args.resources.clone(),
            image: args.docker_image.clone(),
        },
    };
    let options = cli_run::RunOptions {
        master: args.master,
        role: args.role,
        framework_name: args.framework_name,
        json_output: args.output == cli::OutputFormat::Json,
        offer_timeout: std::time::Duration::try_from_secs_f64(args.offer_timeout.max(1.0))
            .unwrap_or(std::time::Duration::from_secs(60)),
    };
    let code = ops::block_on(cli_run::run(workload, &options))?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
