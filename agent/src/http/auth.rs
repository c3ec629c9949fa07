//! Authentication and authorization of the agent's endpoints, as Mesos
//! does them: the executor API takes the executor's own token
//! (`MESOS_EXECUTOR_AUTHENTICATION_TOKEN`), operator calls are readonly
//! (GET_*, LIST_FILES, READ_FILE) or readwrite, `/state`, `/files/*` and
//! the other v0 reads are readonly; `--acls` decides what a principal may
//! do, and an executor's token only reaches its own containers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tepui_proto::auth::{Action, Principal};
use tepui_proto::v1::ContainerId;
use tepui_proto::v1::agent::Call;
use tepui_proto::v1::agent::call::Type;

use super::error;
use super::tenancy;
use crate::daemon::Agent;
use crate::peer::Origin;

/// Who called: set by the middleware for every request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub error: Option<String>,
    /// Where the connection comes from, asked of the kernel.
    pub origin: Origin,
    /// `--trust_remote_operators`: a caller from another host counts as an
    /// operator without credentials.
    pub remote_trusted: bool,
}

impl Default for Caller {
    fn default() -> Self {
        Caller {
            principal: None,
            error: None,
            origin: Origin::Remote,
            remote_trusted: false,
        }
    }
}

/// What a caller may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement<'a> {
    /// An operator (a host process, a remote client, or a principal that is
    /// no executor's token): `--acls` decide.
    Operator,
    /// A process inside this pod: its own pod only.
    Pod(&'a str),
    /// A client on this host the kernel could not tie to a process
    /// (`Origin::Unidentified`): it owns nothing.
    Unidentified,
    /// An unauthenticated client on another host (`Origin::Remote`,
    /// without `--trust_remote_operators`): it may read what an operator
    /// reads, but control nothing, since it may be another host's task.
    Remote,
}

impl Caller {
    /// What the caller is confined to: a process inside a pod to its pod,
    /// unless it authenticated as an operator, which `--acls` then
    /// governs like any operator.
    pub fn confinement(&self) -> Confinement<'_> {
        let operator = self
            .principal
            .as_ref()
            .is_some_and(|p| p.executor().is_none());
        match &self.origin {
            _ if operator => Confinement::Operator,
            Origin::Pod { pod, .. } => Confinement::Pod(pod),
            Origin::Unidentified => Confinement::Unidentified,
            Origin::Remote if !self.remote_trusted => Confinement::Remote,
            _ => Confinement::Operator,
        }
    }

    /// The principal when authentication is `required` (401 without one),
    /// `None` (anonymous) otherwise.
    pub fn authenticated(&self, required: bool) -> Result<Option<&Principal>, Response> {
        if !required {
            return Ok(None);
        }
        match &self.principal {
            Some(p) => Ok(Some(p)),
            None => Err(unauthorized(
                self.error.as_deref().unwrap_or("authentication required"),
            )),
        }
    }
}

/// 401 with Mesos's challenge.
pub fn unauthorized(message: &str) -> Response {
    let mut response = error(401, message);
    if let Ok(v) = HeaderValue::from_str(&tepui_proto::auth::challenge()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

pub fn forbidden(action: Action, principal: Option<&Principal>, object: Option<&str>) -> Response {
    error(
        403,
        format!(
            "Principal '{}' is not authorized to {}{}",
            principal.and_then(|p| p.value.as_deref()).unwrap_or("ANY"),
            action.as_str(),
            object.map(|o| format!(" on '{o}'")).unwrap_or_default()
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Executor,
    Operator,
    ReadOnly,
    Open,
}

fn classify(path: &str) -> Class {
    // `/slave(1)/x` is `/x`: the routes of the agent's libprocess process.
    match path.strip_prefix("/slave(1)").unwrap_or(path) {
        "/api/v1/executor" => Class::Executor,
        // libprocess messages (libmesos executor drivers): the handler
        // checks who may speak for which executor.
        p if p.starts_with("/mesos.internal.") => Class::Executor,
        "/api/v1" => Class::Operator,
        "/health" | "/version" => Class::Open,
        _ => Class::ReadOnly,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Agent {
    pub(crate) fn executor_auth_required(&self) -> bool {
        self.config.auth.authenticate_http_executors || self.config.auth.authenticate_http_readwrite
    }

    fn allowed(&self, action: Action, principal: Option<&Principal>, object: Option<&str>) -> bool {
        self.config
            .auth
            .acls
            .authorize(action, principal.and_then(|p| p.value.as_deref()), object)
    }

    /// The user a framework's things run as, by framework id.
    async fn framework_user(&self, framework_id: &str) -> Option<String> {
        let state = self.state.lock().await;
        state
            .frameworks
            .get(framework_id)
            .map(|f| f.info.user.clone())
    }

    /// The framework, executor and user of a top-level container.
    async fn container_owner(&self, root: &str) -> Option<(String, String, String)> {
        let state = self.state.lock().await;
        let (fw, ex) = state.containers.get(root)?.clone();
        let user = state
            .executor(&fw, &ex)
            .and_then(|e| e.info.command.as_ref())
            .and_then(|c| c.user.clone())
            .or_else(|| state.frameworks.get(&fw).map(|f| f.info.user.clone()))
            .unwrap_or_default();
        Some((fw, ex, user))
    }
}

/// The framework whose sandbox `path` resolves into (after symlinks, `..`
/// and `runs/latest`, exactly as the files endpoints will resolve it).
fn sandbox_framework(agent: &Agent, path: &str) -> Option<String> {
    let real = super::files::resolve(agent, path).ok()?;
    let slaves = std::fs::canonicalize(agent.work.root().join("slaves")).ok()?;
    let rel = real.strip_prefix(slaves).ok()?;
    let mut parts = rel.components().skip(1);
    match (parts.next(), parts.next()) {
        (Some(frameworks), Some(id)) if frameworks.as_os_str() == "frameworks" => {
            Some(id.as_os_str().to_string_lossy().into_owned())
        }
        _ => None,
    }
}

/// `access_sandboxes` for a files path: the object is the user of the
/// framework whose sandbox it is.
async fn may_access_sandbox(agent: &Arc<Agent>, principal: Option<&Principal>, path: &str) -> bool {
    let owned = path.to_string();
    let framework = super::files::blocking(agent, move |a| Ok(sandbox_framework(a, &owned)))
        .await
        .ok()
        .flatten();
    let user = match framework {
        Some(fw) => agent.framework_user(&fw).await,
        None => None,
    };
    agent.allowed(Action::AccessSandboxes, principal, user.as_deref())
}

/// Authenticates requests whose class needs it and hands handlers a
/// [`Caller`]; `/files/*` also checks `access_sandboxes`.
pub async fn middleware(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let auth = &agent.config.auth;
    let path = req.uri().path().to_string();
    let class = classify(&path);
    let required = match class {
        Class::Executor => agent.executor_auth_required(),
        Class::Operator => auth.authenticate_http_readonly || auth.authenticate_http_readwrite,
        Class::ReadOnly => auth.authenticate_http_readonly,
        Class::Open => false,
    };
    let mut caller = Caller {
        origin: tenancy::origin(&agent, req.extensions().get().cloned()).await,
        remote_trusted: agent.config.trust_remote_operators,
        ..Caller::default()
    };
    if required {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match agent.authenticator.authenticate(header, now()) {
            Ok(p) => caller.principal = Some(p),
            Err(e) => {
                tracing::debug!(%path, error = %e, "authentication failed");
                // A process in a pod needs no token to speak for its own
                // executor (the handler checks it is its own).
                let pod_executor =
                    class == Class::Executor && matches!(caller.origin, Origin::Pod { .. });
                if class != Class::Operator && !pod_executor {
                    return unauthorized(&e.to_string());
                }
                caller.error = Some(e.to_string());
            }
        }
    }
    let confinement = caller.confinement();
    let readonly_class = class == Class::ReadOnly;
    if confinement == Confinement::Remote
        && readonly_class
        && !matches!(*req.method(), Method::GET | Method::HEAD)
    {
        return tenancy::refused_remote(&format!("{} {path}", req.method()));
    }
    if !matches!(confinement, Confinement::Operator | Confinement::Remote)
        && let Err(response) = tenancy::check_v0(confinement, readonly_class, &path)
    {
        return response;
    }
    let scope = match confinement {
        // A remote reader sees sandboxes as operators do (Mesos's web UI
        // reads them from the browser); `--authenticate_http_readonly`
        // and `access_sandboxes` ACLs restrict that.
        Confinement::Operator | Confinement::Remote => None,
        tenant => Some(tenancy::files_scope(&agent, tenant).await),
    };
    super::files::REQUEST_SCOPE
        .scope(
            scope,
            authorize_files_and_run(agent, caller, path, req, next),
        )
        .await
}

async fn authorize_files_and_run(
    agent: Arc<Agent>,
    caller: Caller,
    path: String,
    mut req: Request,
    next: Next,
) -> Response {
    if path.starts_with("/files/") {
        let wanted =
            axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(
                req.uri(),
            )
            .ok()
            .and_then(|q| q.0.get("path").cloned())
            .unwrap_or_default();
        if !may_access_sandbox(&agent, caller.principal.as_ref(), &wanted).await {
            return forbidden(Action::AccessSandboxes, caller.principal.as_ref(), None);
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The top-level container of a container id.
pub(super) fn root_of(id: &ContainerId) -> &str {
    let mut id = id;
    while let Some(parent) = id.parent.as_deref() {
        id = parent;
    }
    &id.value
}

/// The container a container call targets, and the user a launch asks for.
fn user(c: &Option<tepui_proto::v1::CommandInfo>) -> Option<&str> {
    c.as_ref().and_then(|c| c.user.as_deref())
}

pub(super) fn container_target(call: &Call) -> Option<(&ContainerId, Option<&str>)> {
    #[allow(deprecated)]
    let target = match call.r#type.and_then(|t| Type::try_from(t).ok())? {
        Type::LaunchContainer => call
            .launch_container
            .as_ref()
            .map(|c| (&c.container_id, user(&c.command))),
        Type::LaunchNestedContainer => call
            .launch_nested_container
            .as_ref()
            .map(|c| (&c.container_id, user(&c.command))),
        Type::LaunchNestedContainerSession => call
            .launch_nested_container_session
            .as_ref()
            .map(|c| (&c.container_id, user(&c.command))),
        Type::WaitContainer => call
            .wait_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::WaitNestedContainer => call
            .wait_nested_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::KillContainer => call
            .kill_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::KillNestedContainer => call
            .kill_nested_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::RemoveContainer => call
            .remove_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::RemoveNestedContainer => call
            .remove_nested_container
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::AttachContainerOutput => call
            .attach_container_output
            .as_ref()
            .map(|c| (&c.container_id, None)),
        Type::AttachContainerInput => call
            .attach_container_input
            .as_ref()
            .and_then(|c| c.container_id.as_ref())
            .map(|id| (id, None)),
        _ => None,
    };
    target
}

/// The ACL action of a container call (nested or standalone by whether
/// the container has a parent).
fn container_action(kind: Type, nested: bool) -> Option<Action> {
    #[allow(deprecated)]
    Some(match (kind, nested) {
        (Type::LaunchNestedContainer | Type::LaunchContainer, true) => {
            Action::LaunchNestedContainers
        }
        (Type::LaunchNestedContainerSession, _) => Action::LaunchNestedContainerSessions,
        (Type::WaitNestedContainer | Type::WaitContainer, true) => Action::WaitNestedContainers,
        (Type::KillNestedContainer | Type::KillContainer, true) => Action::KillNestedContainers,
        (Type::RemoveNestedContainer | Type::RemoveContainer, true) => {
            Action::RemoveNestedContainers
        }
        (Type::AttachContainerOutput, _) => Action::AttachContainersOutput,
        (Type::AttachContainerInput, _) => Action::AttachContainersInput,
        (Type::LaunchContainer, false) => Action::LaunchStandaloneContainers,
        (Type::WaitContainer, false) => Action::WaitStandaloneContainers,
        (Type::KillContainer, false) => Action::KillStandaloneContainers,
        (Type::RemoveContainer, false) => Action::RemoveStandaloneContainers,
        _ => return None,
    })
}

/// Drops from GET_STATE / GET_TASKS / GET_FRAMEWORKS / GET_EXECUTORS
/// answers what the `view_frameworks`, `view_executors` and `view_tasks`
/// ACLs hide (objects: the users things run as).
pub struct Viewer<'a> {
    acls: &'a tepui_proto::auth::Acls,
    principal: Option<String>,
    users: std::collections::HashMap<String, String>,
}

impl Viewer<'_> {
    fn allowed(&self, action: Action, user: &str) -> bool {
        self.acls
            .authorize(action, self.principal.as_deref(), Some(user))
    }

    fn framework_user(&self, id: Option<&tepui_proto::v1::FrameworkId>) -> &str {
        id.and_then(|id| self.users.get(&id.value))
            .map_or("", String::as_str)
    }

    pub fn filter(&self, response: &mut tepui_proto::v1::agent::Response) {
        use tepui_proto::v1::agent::response;
        let frameworks = |f: &mut response::GetFrameworks| {
            let keep = |x: &response::get_frameworks::Framework| {
                self.allowed(Action::ViewFrameworks, &x.framework_info.user)
            };
            f.frameworks.retain(keep);
            f.completed_frameworks.retain(keep);
        };
        let executors = |e: &mut response::GetExecutors| {
            let keep = |x: &response::get_executors::Executor| {
                let fw_user = self.framework_user(x.executor_info.framework_id.as_ref());
                let user = x
                    .executor_info
                    .command
                    .as_ref()
                    .and_then(|c| c.user.as_deref())
                    .unwrap_or(fw_user);
                self.allowed(Action::ViewFrameworks, fw_user)
                    && self.allowed(Action::ViewExecutors, user)
            };
            e.executors.retain(keep);
            e.completed_executors.retain(keep);
        };
        let tasks = |t: &mut response::GetTasks| {
            let keep = |task: &tepui_proto::v1::Task| {
                let fw_user = self.framework_user(Some(&task.framework_id));
                let user = task.user.as_deref().unwrap_or(fw_user);
                self.allowed(Action::ViewFrameworks, fw_user)
                    && self.allowed(Action::ViewTasks, user)
            };
            for list in [
                &mut t.pending_tasks,
                &mut t.queued_tasks,
                &mut t.launched_tasks,
                &mut t.terminated_tasks,
                &mut t.completed_tasks,
            ] {
                list.retain(keep);
            }
        };
        if let Some(f) = &mut response.get_frameworks {
            frameworks(f);
        }
        if let Some(e) = &mut response.get_executors {
            executors(e);
        }
        if let Some(t) = &mut response.get_tasks {
            tasks(t);
        }
        if let Some(s) = &mut response.get_state {
            if let Some(f) = &mut s.get_frameworks {
                frameworks(f);
            }
            if let Some(e) = &mut s.get_executors {
                executors(e);
            }
            if let Some(t) = &mut s.get_tasks {
                tasks(t);
            }
        }
    }
}

impl Agent {
    pub async fn viewer(&self, caller: &Caller) -> Viewer<'_> {
        let users = self
            .state
            .lock()
            .await
            .frameworks
            .iter()
            .map(|(id, f)| (id.clone(), f.info.user.clone()))
            .collect();
        Viewer {
            acls: &self.config.auth.acls,
            principal: caller.principal.as_ref().and_then(|p| p.value.clone()),
            users,
        }
    }
}

/// Authenticates and authorizes one operator call.
pub async fn authorize_call(
    agent: &Arc<Agent>,
    caller: &Caller,
    call: &Call,
) -> Result<(), Response> {
    let auth = &agent.config.auth;
    let kind = call
        .r#type
        .and_then(|t| Type::try_from(t).ok())
        .unwrap_or(Type::Unknown);
    let readonly =
        kind.as_str_name().starts_with("GET_") || matches!(kind, Type::ListFiles | Type::ReadFile);
    let confinement = caller.confinement();
    if confinement == Confinement::Remote && !readonly && kind != Type::WaitContainer {
        return Err(tenancy::refused_remote(&format!(
            "make {} calls",
            kind.as_str_name()
        )));
    }
    if !matches!(confinement, Confinement::Operator | Confinement::Remote) {
        // A process in a pod is identified by the kernel: it needs no
        // token, and may only act on what is its own.
        tenancy::check_call(agent, confinement, kind, call).await?;
    }
    let principal = if !matches!(confinement, Confinement::Operator | Confinement::Remote) {
        caller.principal.as_ref()
    } else {
        caller.authenticated(if readonly {
            auth.authenticate_http_readonly
        } else {
            auth.authenticate_http_readwrite
        })?
    };
    let executor = principal.and_then(|p| p.executor());
    if let Some((id, launch_user)) = container_target(call) {
        let nested = id.parent.is_some();
        let root = root_of(id);
        let owner = agent.container_owner(root).await;
        if let Some(me) = executor {
            // An executor's token reaches its own container tree only.
            let mine = nested
                && me.container_id == root
                && owner
                    .as_ref()
                    .is_none_or(|(fw, ex, _)| fw == me.framework_id && ex == me.executor_id);
            if !mine {
                return Err(error(
                    403,
                    format!(
                        "executor '{}' may not act on container '{}'",
                        me.executor_id, id.value
                    ),
                ));
            }
        }
        if let Some(action) = container_action(kind, nested) {
            let user = launch_user
                .map(str::to_string)
                .or_else(|| owner.map(|(_, _, user)| user));
            if !agent.allowed(action, principal, user.as_deref()) {
                return Err(forbidden(action, principal, user.as_deref()));
            }
        }
        return Ok(());
    }
    if executor.is_some() && !readonly {
        return Err(error(
            403,
            format!("executor tokens may not make {} calls", kind.as_str_name()),
        ));
    }
    let path = match kind {
        Type::ListFiles => call.list_files.as_ref().map(|c| c.path.as_str()),
        Type::ReadFile => call.read_file.as_ref().map(|c| c.path.as_str()),
        _ => None,
    };
    if let Some(path) = path
        && !may_access_sandbox(agent, principal, path).await
    {
        return Err(forbidden(Action::AccessSandboxes, principal, None));
    }
    if kind == Type::SetLoggingLevel && !agent.allowed(Action::SetLogLevel, principal, None) {
        return Err(forbidden(Action::SetLogLevel, principal, None));
    }
    // src/slave/http.cpp `addResourceProviderConfig` and friends:
    // MODIFY_RESOURCE_PROVIDER_CONFIG and MARK_RESOURCE_PROVIDER_GONE.
    let provider_action = match kind {
        Type::AddResourceProviderConfig
        | Type::UpdateResourceProviderConfig
        | Type::RemoveResourceProviderConfig => Some(Action::ModifyResourceProviderConfigs),
        Type::MarkResourceProviderGone => Some(Action::MarkResourceProvidersGone),
        _ => None,
    };
    if let Some(action) = provider_action
        && !agent.allowed(action, principal, None)
    {
        return Err(forbidden(action, principal, None));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(origin: Origin, principal: Option<Principal>) -> Caller {
        Caller {
            principal,
            error: None,
            origin,
            remote_trusted: false,
        }
    }

    #[test]
    fn confinement_follows_the_origin_unless_an_operator_authenticated() {
        let pod = || Origin::Pod {
            pod: "p1".into(),
            uid: 0,
            pid: 7,
        };
        assert_eq!(caller(pod(), None).confinement(), Confinement::Pod("p1"));
        assert_eq!(
            caller(Origin::Unidentified, None).confinement(),
            Confinement::Unidentified
        );
        assert_eq!(
            caller(Origin::Host { uid: 0, pid: None }, None).confinement(),
            Confinement::Operator
        );
        // Another host: a reader unless trusted (`--trust_remote_operators`)
        // or authenticated as an operator.
        assert_eq!(
            caller(Origin::Remote, None).confinement(),
            Confinement::Remote
        );
        let trusted = Caller {
            remote_trusted: true,
            ..caller(Origin::Remote, None)
        };
        assert_eq!(trusted.confinement(), Confinement::Operator);
        // An operator's credential lifts the confinement, from a pod too.
        let operator = Some(Principal::named("ops"));
        assert_eq!(
            caller(pod(), operator.clone()).confinement(),
            Confinement::Operator
        );
        assert_eq!(
            caller(Origin::Unidentified, operator).confinement(),
            Confinement::Operator
        );
    }
}
