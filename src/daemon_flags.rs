//! Every flag of `tepui master` / `tepui agent` with its effective value
//! (given, from `MESOS_<FLAG>`, or its default), for `/flags`, `/state`'s
//! `flags` and GET_FLAGS: Mesos lists all of its flags there, not only the
//! given ones (src/master/http.cpp, `Master::Http::_flags`: every
//! `flags::Flag` that `stringify`s to a value).

use std::ffi::OsString;
use std::sync::OnceLock;

use clap::CommandFactory;

static EFFECTIVE: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Records the effective flags of the daemon subcommand in `argv` (after
/// `MESOS_*` were merged into it); other subcommands record nothing.
pub fn record(argv: &[OsString]) {
    let _ = EFFECTIVE.set(effective(argv));
}

fn effective(argv: &[OsString]) -> Vec<(String, String)> {
    let command = crate::cli::Cli::command();
    let Ok(matches) = command.clone().try_get_matches_from(argv) else {
        return Vec::new();
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    if name != "master" && name != "agent" {
        return Vec::new();
    }
    let Some(definition) = command.find_subcommand(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for arg in definition.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let Ok(Some(raw)) = sub.try_get_raw(arg.get_id().as_str()) else {
            continue;
        };
        let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
        out.push((long.to_string(), values.join(",")));
    }
    out.sort();
    out
}

/// `given` (the flags a daemon's config already lists, which win) plus
/// every other effective flag.
pub fn complete(mut given: Vec<(String, String)>) -> Vec<(String, String)> {
    for (name, value) in EFFECTIVE.get().into_iter().flatten() {
        if !given.iter().any(|(k, _)| k == name) {
            given.push((name.clone(), value.clone()));
        }
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_given_values_are_listed() {
        let argv: Vec<OsString> = ["tepui", "master", "--port=5055", "--work_dir=/tmp/x"]
            .iter()
            .map(OsString::from)
            .collect();
        let flags = effective(&argv);
        let get = |k: &str| flags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("port"), Some("5055"));
        assert_eq!(get("work_dir"), Some("/tmp/x"));
        // A default nobody gave.
        assert_eq!(get("allocation_interval"), Some("1secs"));
        assert!(get("help").is_none());
        let none: Vec<OsString> = ["tepui", "ps"].iter().map(OsString::from).collect();
        assert!(effective(&none).is_empty());
    }
}
