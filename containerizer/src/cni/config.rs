//! The operator's network configs: every `*.conf`, `*.json` and
//! `*.conflist` in `--network_cni_config_dir`, read again at each launch
//! (an operator may add a network without restarting the agent; Mesos
//! re-reads its dir when a name is unknown, `NetworkCniIsolatorProcess::
//! _isolate`/`loadNetworkConfigs` in isolators/network/cni/cni.cpp). A
//! `.conf` holds one plugin, a `.conflist` a chain (`plugins`); both are
//! turned into a chain here. Files that do not parse are remembered, so a
//! task asking for a network no file names is told which files are broken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CniError;

/// One network: its name, CNI version and plugin chain (each plugin's own
/// config object, as in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Map<String, Value>>,
    pub file: PathBuf,
}

impl NetworkConfig {
    /// The plugin type (executable name) of each link of the chain.
    pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
        plugin.get("type").and_then(Value::as_str).unwrap_or("")
    }
}

/// What a config dir holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub networks: BTreeMap<String, Result<NetworkConfig, (PathBuf, String)>>,
    /// Files whose network name could not be read, with why.
    pub unparsable: Vec<(PathBuf, String)>,
}

impl Loaded {
    /// The network `name`, or an error naming it and what is wrong.
    pub fn get(&self, name: &str, dir: &Path) -> Result<&NetworkConfig, CniError> {
        match self.networks.get(name) {
            Some(Ok(config)) => Ok(config),
            Some(Err((file, message))) => Err(CniError::BadConfig {
                network: name.to_string(),
                file: file.clone(),
                message: message.clone(),
            }),
            None => Err(CniError::UnknownNetwork {
                network: name.to_string(),
                dir: dir.to_path_buf(),
                unparsable: if self.unparsable.is_empty() {
                    String::new()
                } else {
                    let files: Vec<String> = self
                        .unparsable
                        .iter()
                        .map(|(f, e)| format!("{}: {e}", f.display()))
                        .collect();
                    format!(" (files that do not parse: {})", files.join("; "))
                },
            }),
        }
    }
}

/// Reads every config file of `dir`, in name order; the first file that
/// names a network wins (libcni's `ConfFiles` order).
pub fn load_dir(dir: &Path) -> Result<Loaded, CniError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(CniError::io("cannot read the CNI config dir", dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conf" | "json" | "conflist")
            )
        })
        .collect();
    files.sort();
    let mut loaded = Loaded::default();
    for file in files {
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(e) => {
                loaded.unparsable.push((file, e.to_string()));
                continue;
            }
        };
        match parse(&file, &text) {
            Ok((name, config)) => {
                let config = config.map_err(|message| (file.clone(), message));
                loaded.networks.entry(name).or_insert(config);
            }
            Err(message) => loaded.unparsable.push((file, message)),
        }
    }
    Ok(loaded)
}

/// The network name of a file, and its config or what is wrong with it.
/// `Err` only when not even the name can be read.
pub fn parse(file: &Path, text: &[u8]) -> Result<(String, Result<NetworkConfig, String>), String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_string());
    };
    let name = match object.get("name") {
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        Some(Value::String(name)) => return Err(format!("invalid network name '{name}'")),
        _ => return Err("no 'name'".to_string()),
    };
    Ok((name.clone(), chain(file, name, object)))
}

/// A network name becomes a directory name in the CNI root dir.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

fn chain(file: &Path, name: String, object: Map<String, Value>) -> Result<NetworkConfig, String> {
    let cni_version = match object.get("cniVersion") {
        Some(Value::String(v)) => v.clone(),
        None => "0.2.0".to_string(),
        Some(_) => return Err("'cniVersion' is not a string".to_string()),
    };
    let plugins = match object.get("plugins") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                return Err("'plugins' is empty".to_string());
            }
            list.iter()
                .enumerate()
                .map(|(i, p)| match p {
                    Value::Object(p) => Ok(p.clone()),
                    _ => Err(format!("plugins[{i}] is not an object")),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(_) => return Err("'plugins' is not a list".to_string()),
        None => vec![object.clone()],
    };
    for (i, plugin) in plugins.iter().enumerate() {
        match plugin.get("type") {
            Some(Value::String(t)) if valid_name(t) => {}
            Some(Value::String(t)) => return Err(format!("plugins[{i}]: invalid type '{t}'")),
            _ => return Err(format!("plugins[{i}]: no 'type'")),
        }
    }
    Ok(NetworkConfig {
        name,
        cni_version,
        plugins,
        file: file.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conf_is_a_chain_of_one_and_a_conflist_keeps_its_order() {
        let (name, conf) = parse(
            Path::new("a.conf"),
            br#"{"cniVersion":"1.0.0","name":"n1","type":"bridge","bridge":"b0"}"#,
        )
        .unwrap();
        assert_eq!(name, "n1");
        let conf = conf.unwrap();
        assert_eq!(conf.plugins.len(), 1);
        assert_eq!(NetworkConfig::plugin_type(&conf.plugins[0]), "bridge");
        let (_, list) = parse(
            Path::new("b.conflist"),
            br#"{"cniVersion":"1.0.0","name":"n2","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let list = list.unwrap();
        let types: Vec<&str> = list
            .plugins
            .iter()
            .map(NetworkConfig::plugin_type)
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert_eq!(list.cni_version, "1.0.0");
    }

    #[test]
    fn broken_files_are_named_and_bad_chains_name_their_network() {
        assert!(
            parse(Path::new("x"), b"{not json")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse(Path::new("x"), br#"{"type":"bridge"}"#)
                .unwrap_err()
                .contains("no 'name'")
        );
        assert!(parse(Path::new("x"), br#"{"name":"../etc","type":"bridge"}"#).is_err());
        let (_, bad) = parse(
            Path::new("x"),
            br#"{"name":"n","plugins":[{"type":"a/b"}]}"#,
        )
        .unwrap();
        assert!(bad.unwrap_err().contains("invalid type"));
        let (_, bad) = parse(Path::new("x"), br#"{"name":"n"}"#).unwrap();
        assert!(bad.unwrap_err().contains("no 'type'"));
    }

    #[test]
    fn loading_a_dir_keeps_the_first_file_per_name_and_lists_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            br#"{"name":"n","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("20-b.conf"),
            br#"{"name":"n","type":"ptp"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("30-c.conflist"), b"garbage").unwrap();
        std::fs::write(dir.path().join("README"), b"ignored").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        let n = loaded.get("n", dir.path()).unwrap();
        assert_eq!(NetworkConfig::plugin_type(&n.plugins[0]), "bridge");
        let err = loaded.get("other", dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("'other'") && err.contains("30-c.conflist"),
            "{err}"
        );
    }
}
