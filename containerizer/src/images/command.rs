//! Image config -> launch spec, by Mesos's docker/runtime rules
//! (docs/isolators/docker-runtime.md): a shell command ignores the image's
//! Entrypoint/Cmd; an executable (`value`) replaces both; with neither, the
//! image's Entrypoint (else Cmd[0]) runs, followed by the task's arguments
//! when it has any, else by Cmd. Image Env is the lowest-priority
//! environment; WorkingDir and User apply unless the task sets them.

use tepui_fetcher::registry::ContainerConfig;

use super::ImageError;
use crate::spec::LaunchSpec;

pub fn apply_image_config(
    launch: &mut LaunchSpec,
    image: &str,
    config: &ContainerConfig,
) -> Result<(), ImageError> {
    let err = |reason: &str| ImageError::Command {
        image: image.to_string(),
        reason: reason.to_string(),
    };
    let cmd = &mut launch.command;
    let has_value = cmd.value.as_deref().is_some_and(|v| !v.is_empty());
    if cmd.shell {
        if !has_value {
            return Err(err("a shell command (shell=true) needs a value"));
        }
    } else if !has_value {
        let entrypoint = config.entrypoint.clone().unwrap_or_default();
        let image_cmd = config.cmd.clone().unwrap_or_default();
        let task_args = std::mem::take(&mut cmd.arguments);
        let argv: Vec<String> = if let Some(first) = entrypoint.first() {
            let mut argv = entrypoint.clone();
            argv.extend(if task_args.is_empty() {
                image_cmd
            } else {
                task_args
            });
            cmd.value = Some(first.clone());
            argv
        } else if let Some(first) = image_cmd.first() {
            let mut argv = vec![first.clone()];
            if task_args.is_empty() {
                argv.extend(image_cmd.iter().skip(1).cloned());
            } else {
                argv.extend(task_args);
            }
            cmd.value = Some(first.clone());
            argv
        } else {
            return Err(err(
                "the task gives no command value and the image has neither Entrypoint nor Cmd",
            ));
        };
        cmd.arguments = argv;
    }
    if let Some(env) = &config.env {
        let mut merged: Vec<(String, String)> = env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .filter(|(k, _)| !k.is_empty())
            .collect();
        merged.append(&mut launch.env);
        launch.env = merged;
    }
    if launch.working_dir.is_none() {
        launch.working_dir = config.working_dir.clone().filter(|w| !w.is_empty());
    }
    if launch.user.is_none() {
        launch.user = config.user.clone().filter(|u| !u.is_empty());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerPath;
    use crate::spec::{Command, ContainerKind};

    fn launch(command: Command) -> LaunchSpec {
        LaunchSpec::new(
            ContainerPath::new(vec!["c1".to_string()]).unwrap(),
            ContainerKind::Task,
            command,
            "/tmp/sandbox",
        )
    }

    fn config(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        let v = |x: Option<&[&str]>| x.map(|a| a.iter().map(|s| s.to_string()).collect());
        ContainerConfig {
            entrypoint: v(ep),
            cmd: v(cmd),
            env: Some(vec!["PATH=/bin".into(), "A=image".into(), "B=x=y".into()]),
            working_dir: Some("/data".into()),
            user: Some("1000:1000".into()),
        }
    }

    fn run(
        command: Command,
        ep: Option<&[&str]>,
        cmd: Option<&[&str]>,
    ) -> Result<(Option<String>, Vec<String>), ImageError> {
        let mut l = launch(command);
        apply_image_config(&mut l, "img", &config(ep, cmd))?;
        Ok((l.command.value, l.command.arguments))
    }

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn follows_the_docker_runtime_table() {
        let none = Command {
            shell: false,
            value: None,
            arguments: vec![],
        };
        let args = Command {
            shell: false,
            value: None,
            arguments: argv(&["x", "y"]),
        };
        let ep: &[&str] = &["/ep", "e1"];
        let cmd: &[&str] = &["/cmd", "c1"];
        assert!(run(none.clone(), None, None).is_err());
        assert_eq!(
            run(none.clone(), None, Some(cmd)).unwrap(),
            (Some("/cmd".into()), argv(&["/cmd", "c1"]))
        );
        assert_eq!(
            run(none.clone(), Some(ep), None).unwrap(),
            (Some("/ep".into()), argv(&["/ep", "e1"]))
        );
        assert_eq!(
            run(none, Some(ep), Some(cmd)).unwrap(),
            (Some("/ep".into()), argv(&["/ep", "e1", "/cmd", "c1"]))
        );
        assert!(run(args.clone(), None, None).is_err());
        assert_eq!(
            run(args.clone(), None, Some(cmd)).unwrap(),
            (Some("/cmd".into()), argv(&["/cmd", "x", "y"]))
        );
        assert_eq!(
            run(args.clone(), Some(ep), None).unwrap(),
            (Some("/ep".into()), argv(&["/ep", "e1", "x", "y"]))
        );
        assert_eq!(
            run(args, Some(ep), Some(cmd)).unwrap(),
            (Some("/ep".into()), argv(&["/ep", "e1", "x", "y"]))
        );
        let exec = Command::exec("/bin/true", argv(&["true", "z"]));
        assert_eq!(
            run(exec, Some(ep), Some(cmd)).unwrap(),
            (Some("/bin/true".into()), argv(&["true", "z"]))
        );
        let shell = Command::shell("echo hi");
        assert_eq!(
            run(shell, Some(ep), Some(cmd)).unwrap(),
            (Some("echo hi".into()), vec![])
        );
        let empty_shell = Command {
            shell: true,
            value: None,
            arguments: argv(&["a"]),
        };
        assert!(run(empty_shell, Some(ep), Some(cmd)).is_err());
    }

    #[test]
    fn merges_env_workdir_and_user() {
        let mut l = launch(Command::shell("true"));
        l.env = vec![("A".into(), "agent".into())];
        l.user = Some("nobody".into());
        apply_image_config(&mut l, "img", &config(None, None)).unwrap();
        assert_eq!(
            l.env,
            vec![
                ("PATH".into(), "/bin".into()),
                ("A".into(), "image".into()),
                ("B".into(), "x=y".into()),
                ("A".into(), "agent".into())
            ]
        );
        assert_eq!(l.working_dir.as_deref(), Some("/data"));
        assert_eq!(l.user.as_deref(), Some("nobody"));
        let mut l = launch(Command::shell("true"));
        apply_image_config(&mut l, "img", &config(None, None)).unwrap();
        assert_eq!(l.user.as_deref(), Some("1000:1000"));
    }
}
