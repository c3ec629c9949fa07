use std::path::PathBuf;

/// Why attaching a pod to a CNI network (or detaching it) failed. Every
/// message names the network and, where one ran, the plugin.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI network '{network}': no config of that name in {dir}{unparsable}")]
    UnknownNetwork {
        network: String,
        dir: PathBuf,
        /// Files of the dir that did not parse (their network is unknown).
        unparsable: String,
    },
    #[error("CNI network '{network}': config {file}: {message}")]
    BadConfig {
        network: String,
        file: PathBuf,
        message: String,
    },
    #[error("CNI network '{network}': plugin '{plugin}' ({command}): {message}")]
    Plugin {
        network: String,
        plugin: String,
        command: &'static str,
        message: String,
    },
    #[error("CNI network '{network}': {message}")]
    Network { network: String, message: String },
    #[error("CNI: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CNI: the pod's network namespace {path}: {message}")]
    Netns { path: PathBuf, message: String },
    #[error(
        "CNI networks are not enabled on this agent (--network_cni_config_dir and --network_cni_plugins_dir): cannot join network '{0}'"
    )]
    Disabled(String),
}

impl CniError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CniError::Io { what, path, source }
    }
}
