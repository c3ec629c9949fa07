//! The OCI `process`: argv, environment, user, capabilities, rlimits, tty.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    BoxBuilder, LinuxCapabilities, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, User,
};

use super::SpecError;
use super::launch::{Command, LaunchSpec, RLimit};
use super::user::ResolvedUser;

/// `PATH` when neither the agent nor the command sets one (Mesos's
/// `os::host_default_path()`); libcontainer refuses a process without PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The shell for `shell=true` commands (Mesos's `os::Shell`).
pub const SHELL: &str = "/bin/sh";

const RLIMITS: [(&str, PosixRlimitType); 16] = [
    ("AS", PosixRlimitType::RlimitAs),
    ("CORE", PosixRlimitType::RlimitCore),
    ("CPU", PosixRlimitType::RlimitCpu),
    ("DATA", PosixRlimitType::RlimitData),
    ("FSIZE", PosixRlimitType::RlimitFsize),
    ("LOCKS", PosixRlimitType::RlimitLocks),
    ("MEMLOCK", PosixRlimitType::RlimitMemlock),
    ("MSGQUEUE", PosixRlimitType::RlimitMsgqueue),
    ("NICE", PosixRlimitType::RlimitNice),
    ("NOFILE", PosixRlimitType::RlimitNofile),
    ("NPROC", PosixRlimitType::RlimitNproc),
    ("RSS", PosixRlimitType::RlimitRss),
    ("RTPRIO", PosixRlimitType::RlimitRtprio),
    ("RTTIME", PosixRlimitType::RlimitRttime),
    ("SIGPENDING", PosixRlimitType::RlimitSigpending),
    ("STACK", PosixRlimitType::RlimitStack),
];

/// `RLMT_NOFILE` (Mesos) or `RLIMIT_NOFILE` (OCI) -> the OCI type.
pub(crate) fn rlimit_type(name: &str) -> Result<PosixRlimitType, SpecError> {
    let bare = name
        .strip_prefix("RLMT_")
        .or_else(|| name.strip_prefix("RLIMIT_"))
        .ok_or_else(|| SpecError::UnknownRlimit(name.to_string()))?;
    RLIMITS
        .iter()
        .find(|(known, _)| *known == bare)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| SpecError::UnknownRlimit(name.to_string()))
}

/// Mesos's rule: soft and hard both set, or both unset (= unlimited).
pub(crate) fn rlimits(limits: &[RLimit]) -> Result<Vec<PosixRlimit>, SpecError> {
    limits
        .iter()
        .map(|limit| {
            let kind = rlimit_type(&limit.kind)?;
            let invalid = |reason| SpecError::InvalidRlimit {
                rlimit: limit.kind.clone(),
                reason,
            };
            let (soft, hard) = match (limit.soft, limit.hard) {
                (Some(soft), Some(hard)) if soft > hard => {
                    return Err(invalid("the soft limit is above the hard limit"));
                }
                (Some(soft), Some(hard)) => (soft, hard),
                (None, None) => (u64::MAX, u64::MAX),
                _ => return Err(invalid("soft and hard must both be set or both be unset")),
            };
            if kind == PosixRlimitType::RlimitNofile && hard == u64::MAX {
                // setrlimit(2) refuses more than fs.nr_open: fail here, clearly.
                return Err(invalid(
                    "cannot be unlimited (the kernel caps it at fs.nr_open)",
                ));
            }
            PosixRlimitBuilder::default()
                .typ(kind)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(super::internal)
        })
        .collect()
}

/// The argv. OCI has no separate executable: `args[0]` is both the program
/// (looked up in PATH when it has no '/') and argv[0]. So for shell=false,
/// Mesos's `value` (the executable) becomes args[0] and `arguments[1..]`
/// follow; a different `arguments[0]` is lost (programs that dispatch on
/// argv[0] must be given by that name).
///
/// Like Mesos's launcher, a relative executable is looked for in the
/// sandbox (the working directory) first: `./run.sh` and `bin/run` are
/// made absolute in `sandbox`, and a bare name that exists in `host_sandbox`
/// (checked on the host: one `stat`) becomes `sandbox/<name>`; other bare
/// names are left to the PATH lookup.
pub(crate) fn argv(
    command: &Command,
    sandbox: Option<&Path>,
    host_sandbox: &Path,
) -> Result<Vec<String>, SpecError> {
    let value = command.value.clone().unwrap_or_default();
    if command.shell {
        if value.is_empty() {
            return Err(SpecError::MissingShellCommand);
        }
        return Ok(vec![SHELL.to_string(), "-c".to_string(), value]);
    }
    if value.is_empty() {
        return Err(SpecError::MissingExecutable);
    }
    let executable = match sandbox {
        Some(sandbox) if !value.starts_with('/') => {
            if value.contains('/') {
                path_string(&sandbox.join(value.trim_start_matches("./")))
            } else if host_sandbox.join(&value).is_file() {
                path_string(&sandbox.join(&value))
            } else {
                value
            }
        }
        _ => value,
    };
    let mut args = vec![executable];
    args.extend(command.arguments.iter().skip(1).cloned());
    Ok(args)
}

pub(crate) fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The environment, lowest priority first: the user's passwd `HOME`, the
/// agent's `env`, `MESOS_SANDBOX` (when given), then the command's
/// `environment` (Mesos's order). `PATH` defaults to [`DEFAULT_PATH`].
pub(crate) fn environment(
    launch: &LaunchSpec,
    mesos_sandbox: Option<&Path>,
    home: Option<&str>,
) -> Vec<String> {
    fn set(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
        if let Some(slot) = vars.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value.to_string();
        } else {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    let mut vars: Vec<(String, String)> = Vec::new();
    if let Some(home) = home {
        set(&mut vars, "HOME", home);
    }
    for (name, value) in &launch.env {
        set(&mut vars, name, value);
    }
    if let Some(sandbox) = mesos_sandbox {
        set(&mut vars, "MESOS_SANDBOX", &path_string(sandbox));
    }
    for (name, value) in &launch.environment {
        set(&mut vars, name, value);
    }
    if !vars.iter().any(|(n, _)| n == "PATH") {
        set(&mut vars, "PATH", DEFAULT_PATH);
    }
    vars.into_iter().map(|(n, v)| format!("{n}={v}")).collect()
}

/// Everything [`process`] needs that depends on where the container runs.
pub(crate) struct ProcessView<'a> {
    /// The sandbox as the container sees it; `None` for DEBUG containers.
    pub sandbox: Option<&'a Path>,
    pub cwd: PathBuf,
    pub user: ResolvedUser,
    pub capabilities: LinuxCapabilities,
    pub oom_score_adj: Option<i32>,
}

pub(crate) fn process(launch: &LaunchSpec, view: ProcessView<'_>) -> Result<Process, SpecError> {
    let mut process = Process::default();
    process.set_args(Some(argv(
        &launch.command,
        view.sandbox,
        &launch.sandbox_dir,
    )?));
    process.set_env(Some(environment(
        launch,
        view.sandbox,
        view.user.home.as_deref(),
    )));
    process.set_cwd(view.cwd);

    let mut user = User::default();
    user.set_uid(view.user.uid);
    user.set_gid(view.user.gid);
    if !view.user.additional_gids.is_empty() {
        user.set_additional_gids(Some(view.user.additional_gids.clone()));
    }
    process.set_user(user);

    process.set_capabilities(Some(view.capabilities));
    process.set_no_new_privileges(Some(true));
    process.set_rlimits(if launch.rlimits.is_empty() {
        None
    } else {
        Some(rlimits(&launch.rlimits)?)
    });
    process.set_oom_score_adj(view.oom_score_adj);

    match launch.tty {
        Some(tty) => {
            process.set_terminal(Some(true));
            let size = match tty.window_size {
                Some(size) => Some(
                    BoxBuilder::default()
                        .height(u64::from(size.rows))
                        .width(u64::from(size.columns))
                        .build()
                        .map_err(super::internal)?,
                ),
                None => None,
            };
            process.set_console_size(size);
        }
        None => {
            process.set_terminal(Some(false));
            process.set_console_size(None);
        }
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(kind: &str, soft: Option<u64>, hard: Option<u64>) -> RLimit {
        RLimit {
            kind: kind.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn rlimit_names_map_from_mesos_and_oci() {
        assert_eq!(
            rlimit_type("RLMT_NOFILE").unwrap(),
            PosixRlimitType::RlimitNofile
        );
        assert_eq!(
            rlimit_type("RLIMIT_CORE").unwrap(),
            PosixRlimitType::RlimitCore
        );
        for name in ["RLMT_", "NOFILE", "RLMT_WARP", "rlmt_nofile"] {
            assert_eq!(
                rlimit_type(name),
                Err(SpecError::UnknownRlimit(name.into()))
            );
        }
        // Every Mesos RLimit type has an OCI counterpart.
        use tepui_proto::v1::r_limit_info::r_limit::Type;
        for value in 1..=16 {
            let name = Type::try_from(value).unwrap().as_str_name();
            assert!(rlimit_type(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rlimits_are_unlimited_when_unset_and_checked_otherwise() {
        let out = rlimits(&[
            limit("RLMT_CORE", None, None),
            limit("RLMT_NOFILE", Some(1024), Some(4096)),
        ])
        .unwrap();
        assert_eq!(out[0].typ(), PosixRlimitType::RlimitCore);
        assert_eq!((out[0].soft(), out[0].hard()), (u64::MAX, u64::MAX));
        assert_eq!((out[1].soft(), out[1].hard()), (1024, 4096));

        let err = |l| match rlimits(&[l]) {
            Err(SpecError::InvalidRlimit { rlimit, reason }) => (rlimit, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(limit("RLMT_CPU", Some(1), None)).0, "RLMT_CPU");
        assert!(err(limit("RLMT_CPU", Some(5), Some(1))).1.contains("above"));
        assert!(
            err(limit("RLMT_NOFILE", None, None))
                .1
                .contains("unlimited")
        );
    }

    #[test]
    fn shell_commands_run_under_bin_sh() {
        let args = argv(&Command::shell("echo hi | wc"), None, Path::new("/")).unwrap();
        assert_eq!(args, ["/bin/sh", "-c", "echo hi | wc"]);
        let mut empty = Command::shell("");
        assert_eq!(
            argv(&empty, None, Path::new("/")),
            Err(SpecError::MissingShellCommand)
        );
        empty.value = None;
        assert_eq!(
            argv(&empty, None, Path::new("/")),
            Err(SpecError::MissingShellCommand)
        );
    }

    #[test]
    fn exec_commands_use_value_as_executable_and_arguments_as_argv() {
        let command = Command::exec("/bin/echo", vec!["echo".into(), "a b".into(), "c".into()]);
        assert_eq!(
            argv(&command, Some(Path::new("/s")), Path::new("/nonexistent")).unwrap(),
            ["/bin/echo", "a b", "c"]
        );
        let bare = Command::exec("sleep", vec![]);
        assert_eq!(
            argv(&bare, Some(Path::new("/s")), Path::new("/nonexistent")).unwrap(),
            ["sleep"]
        );
        let missing = Command {
            shell: false,
            value: None,
            arguments: vec!["ls".into()],
        };
        assert_eq!(
            argv(&missing, None, Path::new("/")),
            Err(SpecError::MissingExecutable)
        );
    }

    #[test]
    fn relative_executables_are_found_in_the_sandbox() {
        let sandbox = tempfile::tempdir().unwrap();
        std::fs::write(sandbox.path().join("my-executor"), "#!/bin/sh\n").unwrap();
        let inside = Path::new("/mnt/mesos/sandbox");
        let run = |value: &str| {
            argv(
                &Command::exec(value, vec![value.into()]),
                Some(inside),
                sandbox.path(),
            )
            .unwrap()
            .remove(0)
        };
        assert_eq!(run("./run.sh"), "/mnt/mesos/sandbox/run.sh");
        assert_eq!(run("bin/tool"), "/mnt/mesos/sandbox/bin/tool");
        assert_eq!(run("my-executor"), "/mnt/mesos/sandbox/my-executor");
        assert_eq!(run("cat"), "cat");
    }
}
