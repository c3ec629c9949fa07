//! The operator CLI's config file: defaults for `--agent`, `--master`,
//! `--principal` and `--secret` after flags and environment variables.
//! `$TEPUI_CONFIG` (which must exist), else
//! `$XDG_CONFIG_HOME/tepui/config.toml`, else `~/.config/tepui/config.toml`
//! (optional); `key = "value"` lines, `#` comments.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file's settings (empty when there is no file).
#[derive(Debug, Default, Clone)]
pub struct CliConfig {
    values: BTreeMap<String, String>,
}

impl CliConfig {
    pub fn load() -> anyhow::Result<Self> {
        let Some((path, named)) = config_path() else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            // The default file is optional; one named by TEPUI_CONFIG is not.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read the config file {}{}: {e}",
                path.display(),
                if named { " (TEPUI_CONFIG)" } else { "" }
            )),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected key = \"value\"", n + 1))?;
            let key = key.trim();
            if !matches!(key, "agent" | "master" | "principal" | "secret") {
                return Err(format!(
                    "line {}: unknown key '{key}' (agent, master, principal, secret)",
                    n + 1
                ));
            }
            let value = value.trim().trim_matches('"').to_string();
            values.insert(key.to_string(), value);
        }
        Ok(Self { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The config file, and whether `TEPUI_CONFIG` named it.
fn config_path() -> Option<(PathBuf, bool)> {
    if let Some(path) = std::env::var_os("TEPUI_CONFIG") {
        return Some((PathBuf::from(path), true));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some((PathBuf::from(dir).join("tepui/config.toml"), false));
    }
    std::env::var_os("HOME")
        .map(|home| (PathBuf::from(home).join(".config/tepui/config.toml"), false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_quoted_and_bare_values_and_refuses_unknown_keys() {
        let c = CliConfig::parse("# mine\nagent = \"10.0.0.5:5051\"\nmaster=zk://zk:2181/mesos\n")
            .unwrap();
        assert_eq!(c.get("agent"), Some("10.0.0.5:5051"));
        assert_eq!(c.get("master"), Some("zk://zk:2181/mesos"));
        assert!(
            CliConfig::parse("agnet = x")
                .unwrap_err()
                .contains("unknown key 'agnet'")
        );
        assert!(CliConfig::parse("agent").is_err());
    }
}
