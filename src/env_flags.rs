//! Daemon flags can come from the environment as `TEPUI_<FLAG>` or
//! `MESOS_<FLAG>` (Mesos's convention, so existing agent configs and systemd
//! units work). clap reads one variable per flag; we accept two, so this pass
//! turns the environment into explicit `--flag=value` arguments before clap
//! parses, and only for flags the command line does not already give.

use std::ffi::OsString;

/// Subcommands whose flags are read from the environment (the daemons).
const DAEMONS: [&str; 3] = ["master", "agent", "dev"];

/// Returns `argv` with environment-provided flags of the chosen daemon
/// subcommand inserted right after the subcommand name. Precedence: command
/// line, then `TEPUI_<FLAG>`, then `MESOS_<FLAG>`.
pub fn with_env_flags(
    cmd: &clap::Command,
    argv: Vec<OsString>,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Vec<OsString> {
    // The daemon subcommand is the first argument that names one; global
    // flags before it (`--log_level x`) are left alone.
    let Some((pos, sub)) = argv.iter().enumerate().skip(1).find_map(|(i, a)| {
        let name = a.to_str()?;
        DAEMONS
            .contains(&name)
            .then(|| cmd.find_subcommand(name).map(|s| (i, s)))?
    }) else {
        return argv;
    };
    let given = |flag: &str| {
        argv[pos + 1..].iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{flag}") || a.starts_with(&format!("--{flag}="))
        })
    };
    let mut injected = Vec::new();
    for arg in sub.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if given(long) {
            continue;
        }
        let suffix = long.to_ascii_uppercase().replace('-', "_");
        let value =
            lookup(&format!("TEPUI_{suffix}")).or_else(|| lookup(&format!("MESOS_{suffix}")));
        if let Some(value) = value {
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(&value);
            injected.push(flag);
        }
    }
    let mut out = argv;
    out.splice(pos + 1..pos + 1, injected);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};
    use std::collections::HashMap;

    fn cmd() -> Command {
        Command::new("tepui")
            .arg(Arg::new("log_level").long("log_level").global(true))
            .subcommand(
                Command::new("agent")
                    .arg(Arg::new("work_dir").long("work_dir"))
                    .arg(Arg::new("port").long("port")),
            )
            .subcommand(Command::new("ps").arg(Arg::new("work_dir").long("work_dir")))
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        with_env_flags(&cmd(), args.iter().map(OsString::from).collect(), |k| {
            env.get(k).map(OsString::from)
        })
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
    }

    #[test]
    fn mesos_and_tepui_variables_become_flags_with_tepui_first() {
        let out = run(
            &["tepui", "agent"],
            &[
                ("MESOS_WORK_DIR", "/m"),
                ("TEPUI_WORK_DIR", "/t"),
                ("MESOS_PORT", "5051"),
            ],
        );
        assert_eq!(out, ["tepui", "agent", "--work_dir=/t", "--port=5051"]);
    }

    #[test]
    fn command_line_wins_over_environment() {
        let out = run(
            &["tepui", "agent", "--work_dir", "/cli"],
            &[("MESOS_WORK_DIR", "/m")],
        );
        assert_eq!(out, ["tepui", "agent", "--work_dir", "/cli"]);
        let out = run(
            &["tepui", "agent", "--work_dir=/cli"],
            &[("MESOS_WORK_DIR", "/m")],
        );
        assert_eq!(out, ["tepui", "agent", "--work_dir=/cli"]);
    }

    #[test]
    fn only_daemons_read_the_environment() {
        let out = run(&["tepui", "ps"], &[("MESOS_WORK_DIR", "/m")]);
        assert_eq!(out, ["tepui", "ps"]);
        let out = run(
            &["tepui", "--log_level", "debug", "agent"],
            &[("MESOS_PORT", "1")],
        );
        assert_eq!(out, ["tepui", "--log_level", "debug", "agent", "--port=1"]);
    }
}
