//! Authentication and authorization (Mesos's `--authenticate_*`,
//! `--credentials`, `--acls`, executor tokens) over real HTTP: a master
//! in-process for its endpoint families, then a real master and a real
//! agent with every authentication flag on running tasks end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use prost::Message;
use serde_json::{Value, json};
use tepui_proto::auth::{Acls, Authenticator, basic_header, parse_credentials};

const WAIT: Duration = Duration::from_secs(30);

const CREDENTIALS: &str = r#"{"credentials": [
    {"principal": "fw-a", "secret": "sa"},
    {"principal": "fw-b", "secret": "sb"},
    {"principal": "ops", "secret": "so"},
    {"principal": "viewer", "secret": "sv"},
    {"principal": "agent", "secret": "sg"}]}"#;

const MASTER_ACLS: &str = r#"{
    "register_frameworks": [
        {"principals": {"values": ["fw-b"]}, "roles": {"type": "NONE"}}],
    "teardown_frameworks": [
        {"principals": {"values": ["ops"]}, "framework_principals": {"type": "ANY"}},
        {"principals": {"type": "ANY"}, "framework_principals": {"type": "NONE"}}],
    "update_weights": [
        {"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
        {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}],
    "view_frameworks": [
        {"principals": {"values": ["viewer"]}, "users": {"type": "NONE"}}],
    "view_roles": [
        {"principals": {"values": ["viewer"]}, "roles": {"type": "NONE"}}],
    "register_agents": [
        {"principals": {"values": ["agent"]}, "agents": {"type": "ANY"}},
        {"principals": {"type": "ANY"}, "agents": {"type": "NONE"}}]
}"#;

const AGENT_ACLS: &str = r#"{
    "access_sandboxes": [
        {"principals": {"values": ["viewer"]}, "users": {"type": "NONE"}}],
    "launch_nested_containers": [
        {"principals": {"values": ["viewer"]}, "users": {"type": "NONE"}}],
    "kill_nested_containers": [
        {"principals": {"values": ["viewer"]}, "users": {"type": "NONE"}}],
    "view_tasks": [
        {"principals": {"values": ["viewer"]}, "users": {"type": "NONE"}}]
}"#;

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

fn with_auth(request: reqwest::RequestBuilder, auth: Auth<'_>) -> reqwest::RequestBuilder {
    match auth {
        Auth::None => request,
        Auth::Basic(p, s) => request.header("Authorization", basic_header(p, s)),
        Auth::Bearer(t) => request.header("Authorization", format!("Bearer {t}")),
    }
}

/// POSTs JSON; answers status, `WWW-Authenticate` and body.
async fn post(base: &str, path: &str, auth: Auth<'_>, body: &Value) -> (u16, String, String) {
    let response = with_auth(reqwest::Client::new().post(format!("{base}{path}")), auth)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("WWW-Authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = response.status().as_u16();
    (status, challenge, response.text().await.unwrap())
}

/// GETs; status 0 when the server is not up (yet).
async fn get(base: &str, path: &str, auth: Auth<'_>) -> (u16, String) {
    let response = match with_auth(reqwest::Client::new().get(format!("{base}{path}")), auth)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return (0, e.to_string()),
    };
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// 401 with Mesos's challenge without credentials and with a wrong secret.
async fn assert_unauthenticated(base: &str, path: &str, body: &Value) {
    for auth in [Auth::None, Auth::Basic("ops", "wrong")] {
        let (status, challenge, text) = post(base, path, auth, body).await;
        assert_eq!(status, 401, "{path}: {text}");
        assert_eq!(challenge, "Basic realm=\"mesos\"", "{path}");
    }
}

fn framework_info(principal: &str, role: &str) -> Value {
    json!({"user": "root", "name": principal, "principal": principal, "roles": [role],
        "capabilities": [{"type": "MULTI_ROLE"}], "failover_timeout": 300.0, "checkpoint": true})
}

/// A JSON scheduler authenticating with HTTP Basic.
struct Scheduler {
    base: String,
    principal: &'static str,
    secret: &'static str,
    stream_id: String,
    framework_id: String,
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Scheduler {
    async fn subscribe(
        base: &str,
        principal: &'static str,
        secret: &'static str,
        info: Value,
    ) -> Scheduler {
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        let resp = reqwest::Client::new()
            .post(format!("{base}/api/v1/scheduler"))
            .header("Authorization", basic_header(principal, secret))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(call.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let stream_id = resp.headers()["Mesos-Stream-Id"]
            .to_str()
            .unwrap()
            .to_string();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut bytes = resp.bytes_stream();
        tokio::spawn(async move {
            let mut decoder = tepui_proto::recordio::Decoder::new();
            while let Some(Ok(chunk)) = bytes.next().await {
                for record in decoder.feed(&chunk).unwrap() {
                    let event: Value = serde_json::from_slice(&record).unwrap();
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first["type"], "SUBSCRIBED");
        let framework_id = first["subscribed"]["framework_id"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        Scheduler {
            base: base.to_string(),
            principal,
            secret,
            stream_id,
            framework_id,
            events: rx,
        }
    }

    async fn call_as(&self, auth: Auth<'_>, mut body: Value) -> u16 {
        body["framework_id"] = json!({"value": self.framework_id});
        with_auth(
            reqwest::Client::new().post(format!("{}/api/v1/scheduler", self.base)),
            auth,
        )
        .header("Content-Type", "application/json")
        .header("Mesos-Stream-Id", &self.stream_id)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
    }

    async fn call(&self, body: Value) -> u16 {
        self.call_as(Auth::Basic(self.principal, self.secret), body)
            .await
    }

    async fn next(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = tokio::time::timeout(left, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind}"))
                .expect("stream open");
            if e["type"] == kind {
                return e;
            }
        }
    }

    async fn update(&mut self) -> Value {
        let status = self.next("UPDATE").await["update"]["status"].clone();
        if status.get("uuid").is_some() {
            let ack = json!({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
            assert_eq!(self.call(ack).await, 202);
        }
        status
    }
}

fn frameworks_in(state: &str) -> usize {
    let v: Value = serde_json::from_str(state).unwrap();
    v["frameworks"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_endpoints_need_credentials_and_acls_decide() {
    let config = tepui_master::MasterConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allocation_interval: Duration::from_millis(50),
        auth: tepui_master::AuthConfig {
            authenticate_frameworks: true,
            authenticate_agents: true,
            authenticate_http_readonly: true,
            authenticate_http_readwrite: true,
            authenticator: Authenticator {
                credentials: parse_credentials(CREDENTIALS).unwrap(),
                jwt_keys: vec![b"jwt-key".to_vec()],
            },
            acls: Acls::parse(MASTER_ACLS).unwrap(),
        },
        ..tepui_master::MasterConfig::default()
    };
    let master = tepui_master::start(config).await.unwrap();
    let base = format!("http://{}", master.addr);

    // Scheduler API: framework authentication, then register_frameworks.
    let subscribe = |principal: &str| {
        json!({"type": "SUBSCRIBE",
            "subscribe": {"framework_info": framework_info(principal, "web")}})
    };
    assert_unauthenticated(&base, "/api/v1/scheduler", &subscribe("fw-a")).await;
    let (status, _, text) = post(
        &base,
        "/api/v1/scheduler",
        Auth::Basic("fw-b", "sb"),
        &subscribe("fw-b"),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("register_frameworks"), "{text}");
    // Authenticated as one principal, claiming another in FrameworkInfo.
    let (status, _, _) = post(
        &base,
        "/api/v1/scheduler",
        Auth::Basic("fw-a", "sa"),
        &subscribe("fw-b"),
    )
    .await;
    assert_eq!(status, 403);
    // Operator event streams are filtered like GET_STATE: the viewer
    // principal (no view_frameworks rights) never hears of the framework.
    let events_of = |principal: &'static str, secret: &'static str| {
        let base = base.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/api/v1"))
                .header("Authorization", basic_header(principal, secret))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(json!({"type": "SUBSCRIBE"}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.bytes_stream();
            let mut decoder = tepui_proto::recordio::Decoder::new();
            let mut events = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
                for record in decoder.feed(&chunk).unwrap() {
                    events.push(serde_json::from_slice::<Value>(&record).unwrap());
                }
            }
            events
        })
    };
    let (ops_events, viewer_events) = (events_of("ops", "so"), events_of("viewer", "sv"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = Scheduler::subscribe(&base, "fw-a", "sa", framework_info("fw-a", "web")).await;
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (ops_events, viewer_events) = (ops_events.await.unwrap(), viewer_events.await.unwrap());
    assert!(
        kinds(&ops_events).contains(&"FRAMEWORK_ADDED".to_string()),
        "{ops_events:?}"
    );
    assert!(
        !kinds(&viewer_events).contains(&"FRAMEWORK_ADDED".to_string())
            && kinds(&viewer_events).contains(&"SUBSCRIBED".to_string()),
        "{viewer_events:?}"
    );
    // Calls on the subscription need the framework's own principal.
    let revive = json!({"type": "REVIVE"});
    assert_eq!(s.call_as(Auth::None, revive.clone()).await, 401);
    assert_eq!(
        s.call_as(Auth::Basic("fw-b", "sb"), revive.clone()).await,
        403
    );
    assert_eq!(s.call(revive).await, 202);
    // A Bearer JWT signed with --jwt_secret_key works too.
    let mut claims = BTreeMap::new();
    claims.insert("sub".to_string(), "fw-a".to_string());
    let token = tepui_proto::auth::jwt::sign(&claims, None, b"jwt-key");
    assert_eq!(
        s.call_as(Auth::Bearer(&token), json!({"type": "REVIVE"}))
            .await,
        202
    );
    let forged = tepui_proto::auth::jwt::sign(&claims, None, b"other-key");
    assert_eq!(
        s.call_as(Auth::Bearer(&forged), json!({"type": "REVIVE"}))
            .await,
        401
    );

    // Operator API: readonly and readwrite calls, view and teardown ACLs.
    let get_frameworks = json!({"type": "GET_FRAMEWORKS"});
    assert_unauthenticated(&base, "/api/v1", &get_frameworks).await;
    let (status, _, text) = post(&base, "/api/v1", Auth::Basic("ops", "so"), &get_frameworks).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["get_frameworks"]["frameworks"].as_array().unwrap().len(),
        1
    );
    let (status, _, text) = post(
        &base,
        "/api/v1",
        Auth::Basic("viewer", "sv"),
        &get_frameworks,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["get_frameworks"]["frameworks"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "view_frameworks hides them: {v}"
    );
    let weights = json!({"type": "UPDATE_WEIGHTS",
        "update_weights": {"weight_infos": [{"role": "web", "weight": 2.0}]}});
    assert_unauthenticated(&base, "/api/v1", &weights).await;
    let (status, _, text) = post(&base, "/api/v1", Auth::Basic("fw-a", "sa"), &weights).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("update_weights"), "{text}");
    let (status, _, text) = post(&base, "/api/v1", Auth::Basic("ops", "so"), &weights).await;
    assert_eq!(status, 200, "{text}");

    // v0: readonly authentication, frameworks filtered by view_frameworks.
    for auth in [Auth::None, Auth::Basic("ops", "wrong")] {
        assert_eq!(get(&base, "/state", auth).await.0, 401);
    }
    let (status, state) = get(&base, "/state", Auth::Basic("ops", "so")).await;
    assert_eq!((status, frameworks_in(&state)), (200, 1));
    let (status, state) = get(&base, "/master/state", Auth::Basic("viewer", "sv")).await;
    assert_eq!((status, frameworks_in(&state)), (200, 0));
    assert_eq!(get(&base, "/health", Auth::None).await.0, 200);
    let roles = |text: &str| {
        let v: Value = serde_json::from_str(text).unwrap();
        v["roles"].as_array().map_or(0, Vec::len)
    };
    let (status, text) = get(&base, "/roles", Auth::Basic("ops", "so")).await;
    assert_eq!((status, roles(&text)), (200, 1), "{text}");
    let (status, text) = get(&base, "/roles", Auth::Basic("viewer", "sv")).await;
    assert_eq!((status, roles(&text)), (200, 0), "{text}");

    // The agent link: agent authentication, then register_agents.
    let link_subscribe = tepui_proto::link::AgentCall {
        r#type: Some(tepui_proto::link::agent_call::Type::Subscribe as i32),
        ..Default::default()
    }
    .encode_to_vec();
    let link = |auth: Auth<'_>| {
        with_auth(
            reqwest::Client::new().post(format!("{base}/tepui/link/v1")),
            auth,
        )
        .header("Content-Type", "application/x-protobuf")
        .body(link_subscribe.clone())
        .send()
    };
    for auth in [Auth::None, Auth::Basic("agent", "wrong")] {
        let r = link(auth).await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("WWW-Authenticate"));
    }
    let r = link(Auth::Basic("fw-a", "sa")).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = link(Auth::Basic("agent", "sg")).await.unwrap();
    // Past authentication and authorization (this SUBSCRIBE has no body).
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());

    // Teardown: only ops may tear down other principals' frameworks.
    let teardown = json!({"type": "TEARDOWN",
        "teardown": {"framework_id": {"value": s.framework_id}}});
    assert_unauthenticated(&base, "/api/v1", &teardown).await;
    let (status, _, text) = post(&base, "/api/v1", Auth::Basic("fw-b", "sb"), &teardown).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("teardown_frameworks"), "{text}");
    let (status, _, text) = post(&base, "/api/v1", Auth::Basic("ops", "so"), &teardown).await;
    assert_eq!(status, 200, "{text}");
    master.abort();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[String], log: PathBuf) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(common::tepui_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Waits for one registered agent.
async fn wait_agent(base: &str, auth: Auth<'_>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(base, "/slaves", auth).await;
        if status == 200
            && serde_json::from_str::<Value>(&body).unwrap()["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never registered: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn command_task(id: &str, agent: &Value, command: &str) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": command}})
}

fn executor_token(fw: &str, ex: &str, container: &str) -> String {
    let claims = [("fid", fw), ("eid", ex), ("cid", container)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tepui_proto::auth::jwt::sign(&claims, None, b"exec-key")
}

/// Stops the processes; the temporary directory is removed only when
/// nothing is mounted under it.
struct Cluster {
    dir: Option<tempfile::TempDir>,
    cgroup_root: String,
    master: Child,
    agent: Child,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our child.
        unsafe { libc::kill(self.agent.id() as i32, libc::SIGTERM) };
        let _ = self.agent.wait();
        let _ = self.master.kill();
        let _ = self.master.wait();
        if let Some(dir) = self.dir.take() {
            common::kill_leftovers(dir.path(), &self.cgroup_root);
            if !common::mounts_under(dir.path()).is_empty() {
                eprintln!("leaving {} (mounts under it)", dir.path().display());
                std::mem::forget(dir);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_authentication_flag_on_tasks_run_and_tokens_stay_in_their_executor() {
    if !common::require_root(
        "with_every_authentication_flag_on_tasks_run_and_tokens_stay_in_their_executor",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let credentials = write(&path, "credentials.json", CREDENTIALS);
    let credential = write(
        &path,
        "agent.json",
        r#"{"principal": "agent", "secret": "sg"}"#,
    );
    let agent_acls = write(&path, "acls.json", AGENT_ACLS);
    let key = write(&path, "executor.key", "exec-key\n");
    let port = free_port();
    let agent_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let agent_base = format!("http://127.0.0.1:{agent_port}");
    let cgroup_root = format!("tepui-auth-{}", std::process::id());
    let master = spawn(
        &[
            "master".into(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            "--allocation_interval=100ms".into(),
            "--authenticate_frameworks".into(),
            "--authenticate_agents".into(),
            "--authenticate_http_readonly".into(),
            "--authenticate_http_readwrite".into(),
            format!("--credentials=file://{credentials}"),
            format!("--acls={MASTER_ACLS}"),
        ],
        path.join("master.log"),
    );
    let agent = spawn(
        &[
            "agent".into(),
            format!("--master=127.0.0.1:{port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", path.join("agent/work").display()),
            format!("--runtime_dir={}", path.join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
            "--authenticate_http_readonly=true".into(),
            "--authenticate_http_readwrite=true".into(),
            "--authenticate_http_executors=true".into(),
            format!("--credentials={credentials}"),
            format!("--credential={credential}"),
            format!("--acls=file://{agent_acls}"),
            format!("--executor_secret_key={key}"),
        ],
        path.join("agent.log"),
    );
    let _cluster = Cluster {
        dir: Some(dir),
        cgroup_root,
        master,
        agent,
    };

    // The agent registers with its --credential.
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(&base, "/slaves", Auth::Basic("ops", "so")).await;
        if status == 200
            && serde_json::from_str::<Value>(&body).unwrap()["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never registered: {status} {body}\n{}",
            std::fs::read_to_string(path.join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Tasks run: the built-in executors authenticate with their tokens.
    let mut s = Scheduler::subscribe(&base, "fw-a", "sa", framework_info("fw-a", "*")).await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let agent_id = offer["agent_id"].clone();
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [
            command_task("short", &agent_id, "echo hello"),
            command_task("one", &agent_id, "sleep 1000"),
            command_task("two", &agent_id, "sleep 1000")]}},
        {"type": "LAUNCH_GROUP", "launch_group": {
            "executor": {"type": "DEFAULT", "executor_id": {"value": "group"},
                "framework_id": {"value": s.framework_id},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                              {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]},
            "task_group": {"tasks": [command_task("grouped", &agent_id, "echo group")]}}}]}});
    assert_eq!(s.call(accept).await, 202);
    let mut seen = Vec::new();
    let done = |seen: &Vec<(String, String)>| {
        seen.contains(&("short".into(), "TASK_FINISHED".into()))
            && seen.contains(&("grouped".into(), "TASK_FINISHED".into()))
            && seen.contains(&("one".into(), "TASK_RUNNING".into()))
            && seen.contains(&("two".into(), "TASK_RUNNING".into()))
    };
    while !done(&seen) {
        let u = s.update().await;
        let state = u["state"].as_str().unwrap().to_string();
        assert!(
            !matches!(state.as_str(), "TASK_FAILED" | "TASK_ERROR" | "TASK_LOST"),
            "{u}"
        );
        seen.push((u["task_id"]["value"].as_str().unwrap().to_string(), state));
    }
    let fid = s.framework_id.clone();

    // Agent operator API: readonly call needs credentials.
    let get_containers = json!({"type": "GET_CONTAINERS"});
    assert_unauthenticated(&agent_base, "/api/v1", &get_containers).await;
    let (status, _, text) = post(
        &agent_base,
        "/api/v1",
        Auth::Basic("ops", "so"),
        &get_containers,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let container_of = |executor: &str| {
        v["get_containers"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["executor_id"]["value"] == executor && c["container_id"].get("parent").is_none()
            })
            .unwrap_or_else(|| panic!("no container for {executor}: {v}"))["container_id"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (one, two) = (container_of("one"), container_of("two"));
    let token_one = executor_token(&fid, "one", &one);

    // Executor API: only the executor's own token.
    let heartbeat = |executor: &str| {
        json!({"type": "HEARTBEAT", "framework_id": {"value": fid},
            "executor_id": {"value": executor}})
    };
    assert_unauthenticated(&agent_base, "/api/v1/executor", &heartbeat("one")).await;
    let (status, _, text) = post(
        &agent_base,
        "/api/v1/executor",
        Auth::Bearer(&token_one),
        &heartbeat("two"),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, _, text) = post(
        &agent_base,
        "/api/v1/executor",
        Auth::Bearer(&token_one),
        &heartbeat("one"),
    )
    .await;
    assert_eq!(status, 202, "{text}");

    // Nested containers: executor one's token reaches its own tree only.
    let launch = |parent: &str, id: &str| {
        json!({"type": "LAUNCH_NESTED_CONTAINER", "launch_nested_container": {
            "container_id": {"value": id, "parent": {"value": parent}},
            "command": {"value": "exit 3"}}})
    };
    assert_unauthenticated(&agent_base, "/api/v1", &launch(&one, "probe")).await;
    for call in [
        launch(&two, "intruder"),
        json!({"type": "KILL_NESTED_CONTAINER", "kill_nested_container": {
            "container_id": {"value": "x", "parent": {"value": two}}}}),
        json!({"type": "WAIT_NESTED_CONTAINER", "wait_nested_container": {
            "container_id": {"value": "x", "parent": {"value": two}}}}),
        json!({"type": "REMOVE_NESTED_CONTAINER", "remove_nested_container": {
            "container_id": {"value": "x", "parent": {"value": two}}}}),
        json!({"type": "KILL_CONTAINER", "kill_container": {"container_id": {"value": two}}}),
    ] {
        let (status, _, text) = post(&agent_base, "/api/v1", Auth::Bearer(&token_one), &call).await;
        assert_eq!(status, 403, "{call}: {text}");
    }
    // launch_nested_containers ACL: viewer may not.
    let (status, _, text) = post(
        &agent_base,
        "/api/v1",
        Auth::Basic("viewer", "sv"),
        &launch(&one, "viewer-probe"),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("launch_nested_containers"), "{text}");
    let (status, _, text) = post(
        &agent_base,
        "/api/v1",
        Auth::Bearer(&token_one),
        &launch(&one, "probe"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let wait = json!({"type": "WAIT_NESTED_CONTAINER", "wait_nested_container": {
        "container_id": {"value": "probe", "parent": {"value": one}}}});
    let (status, _, text) = post(&agent_base, "/api/v1", Auth::Bearer(&token_one), &wait).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["wait_nested_container"]["exit_status"], 768, "{v}");

    // Files: readonly authentication, then access_sandboxes.
    let browse = format!("/files/browse?path=/frameworks/{fid}/executors/short");
    for auth in [Auth::None, Auth::Basic("ops", "wrong")] {
        assert_eq!(get(&agent_base, &browse, auth).await.0, 401);
    }
    assert_eq!(
        get(&agent_base, &browse, Auth::Basic("viewer", "sv"))
            .await
            .0,
        403
    );
    let (status, text) = get(&agent_base, &browse, Auth::Basic("ops", "so")).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = get(&agent_base, "/state", Auth::None).await;
    assert_eq!(status, 401);
    let v0_tasks = |text: &str| {
        let v: Value = serde_json::from_str(text).unwrap();
        v["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["executors"].as_array().unwrap().iter())
            .map(|e| e["tasks"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    let (status, text) = get(&agent_base, "/state", Auth::Basic("ops", "so")).await;
    assert_eq!((status, v0_tasks(&text)), (200, 2), "{text}");
    let (status, text) = get(&agent_base, "/state", Auth::Basic("viewer", "sv")).await;
    assert_eq!((status, v0_tasks(&text)), (200, 0), "{text}");

    // GET_TASKS: view_tasks hides the tasks from viewer.
    let get_tasks = json!({"type": "GET_TASKS"});
    let launched = |text: &str| {
        let v: Value = serde_json::from_str(text).unwrap();
        v["get_tasks"]["launched_tasks"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let (status, _, text) =
        post(&agent_base, "/api/v1", Auth::Basic("ops", "so"), &get_tasks).await;
    assert_eq!((status, launched(&text)), (200, 2), "{text}");
    let (status, _, text) = post(
        &agent_base,
        "/api/v1",
        Auth::Basic("viewer", "sv"),
        &get_tasks,
    )
    .await;
    assert_eq!((status, launched(&text)), (200, 0), "{text}");

    // The CLI sends --principal/--secret, or TEPUI_PRINCIPAL/TEPUI_SECRET.
    let agent_addr = format!("127.0.0.1:{agent_port}");
    let ps = |envs: &[(&str, &str)], extra: &[&str]| {
        let out = Command::new(common::tepui_bin())
            .args(["ps", "--agent", &agent_addr])
            .args(extra)
            .env_remove("TEPUI_PRINCIPAL")
            .env_remove("TEPUI_SECRET")
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = ps(&[], &[]);
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, out, err) = ps(&[], &["--principal", "ops", "--secret", "so"]);
    assert!(ok && out.contains("one"), "{out}{err}");
    let (ok, out, err) = ps(&[("TEPUI_PRINCIPAL", "ops"), ("TEPUI_SECRET", "so")], &[]);
    assert!(ok && out.contains("two"), "{out}{err}");

    // Master v0 and operator API see the framework only with view rights.
    let (status, state) = get(&base, "/state", Auth::Basic("ops", "so")).await;
    assert_eq!((status, frameworks_in(&state)), (200, 1));
    let (status, state) = get(&base, "/state", Auth::Basic("viewer", "sv")).await;
    assert_eq!((status, frameworks_in(&state)), (200, 0));

    // TEARDOWN kills the tasks (the executors authenticate to the end).
    assert_eq!(s.call(json!({"type": "TEARDOWN"})).await, 202);
    let deadline = Instant::now() + WAIT;
    while common::sleeping_in(&_cluster.cgroup_root) {
        assert!(
            Instant::now() < deadline,
            "tasks still running after TEARDOWN"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Without `--executor_secret_key` the agent generates a key once and
/// keeps it in its work dir: after an agent SIGKILL and restart, the
/// recovered executor's token still works (it re-subscribes and reports
/// its task killed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_executor_key_survives_an_agent_restart() {
    if !common::require_root("a_generated_executor_key_survives_an_agent_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let port = free_port();
    let agent_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cgroup_root = format!("tepui-auth-key-{}", std::process::id());
    let credentials = write(&path, "credentials.json", CREDENTIALS);
    let master = spawn(
        &[
            "master".into(),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            "--allocation_interval=100ms".into(),
            "--authenticate_frameworks".into(),
            format!("--credentials={credentials}"),
        ],
        path.join("master.log"),
    );
    let agent_args: Vec<String> = vec![
        "agent".into(),
        format!("--master=127.0.0.1:{port}"),
        "--ip=127.0.0.1".into(),
        format!("--port={agent_port}"),
        format!("--work_dir={}", path.join("agent/work").display()),
        format!("--runtime_dir={}", path.join("agent/run").display()),
        format!("--cgroups_root={cgroup_root}"),
        "--resources=cpus:2;mem:2048;disk:1024".into(),
        "--authenticate_http_readwrite".into(),
        "--authenticate_http_executors".into(),
        format!("--credentials={credentials}"),
    ];
    let agent = spawn(&agent_args, path.join("agent.log"));
    let mut cluster = Cluster {
        dir: Some(dir),
        cgroup_root,
        master,
        agent,
    };
    wait_agent(&base, Auth::None).await;
    let mut s = Scheduler::subscribe(&base, "fw-a", "sa", framework_info("fw-a", "*")).await;
    let offer = s.next("OFFERS").await["offers"]["offers"][0].clone();
    let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [
            command_task("long", &offer["agent_id"], "sleep 1001")]}}]}});
    assert_eq!(s.call(accept).await, 202);
    loop {
        let u = s.update().await;
        if u["state"] == "TASK_RUNNING" {
            break;
        }
        assert_eq!(u["state"], "TASK_STARTING", "{u}");
    }
    let key_file = path.join("agent/work/executor_secret_key");
    let key = std::fs::read(&key_file).unwrap();
    assert!(key.len() >= 32);

    cluster.agent.kill().unwrap();
    cluster.agent.wait().unwrap();
    cluster.agent = spawn(&agent_args, path.join("agent2.log"));
    // The restarted agent kept the key; the executor re-subscribes with
    // its old token and reports the kill.
    let agent_base = format!("http://127.0.0.1:{agent_port}");
    let deadline = Instant::now() + WAIT;
    while get(&agent_base, "/health", Auth::None).await.0 != 200 {
        assert!(Instant::now() < deadline, "agent did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(&key_file).unwrap(), key);
    let kill = json!({"type": "KILL", "kill": {"task_id": {"value": "long"}}});
    let deadline = Instant::now() + WAIT;
    loop {
        assert_eq!(s.call(kill.clone()).await, 202);
        let u = tokio::time::timeout(Duration::from_secs(3), s.update()).await;
        if let Ok(u) = u
            && u["state"] == "TASK_KILLED"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TASK_KILLED after the restart:\n{}",
            std::fs::read_to_string(path.join("agent2.log")).unwrap_or_default()
        );
    }
}
