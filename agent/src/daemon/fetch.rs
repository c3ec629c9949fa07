//! Task artifacts (`CommandInfo.uris`) into a sandbox before its container
//! starts, as the task's user, with progress in the sandbox's stderr.

use std::path::Path;

use tepui_containerizer::spec::{UserDb, resolve_user};
use tepui_fetcher::Uri;

use super::Agent;

impl Agent {
    /// Fetches `uris` into `sandbox` (created if missing). The error names
    /// the URI and the cause; it becomes the task's failure message.
    pub async fn fetch_uris(
        &self,
        uris: &[Uri],
        sandbox: &Path,
        user: Option<&str>,
    ) -> Result<(), String> {
        if uris.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(sandbox)
            .map_err(|e| format!("cannot create the sandbox {}: {e}", sandbox.display()))?;
        let owner = match user {
            Some(user) => {
                let db = UserDb::Files {
                    passwd: "/etc/passwd".into(),
                    group: "/etc/group".into(),
                };
                let resolved = resolve_user(user, &db).map_err(|e| e.to_string())?;
                Some((resolved.uid, resolved.gid))
            }
            None => None,
        };
        let mut stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.join("stderr"))
            .map_err(|e| format!("cannot open the sandbox's stderr: {e}"))?;
        let options = tepui_fetcher::FetchOptions {
            user: owner,
            log: Some(&mut stderr),
        };
        self.fetcher
            .fetch(uris, sandbox, options)
            .await
            .map(|_| ())
            .map_err(|e| format!("Failed to fetch artifacts: {e}"))
    }
}
