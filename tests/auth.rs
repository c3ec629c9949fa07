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

async fn get(base: &str, path: &str, auth: Auth<'_>) -> (u16, String) {
    let response = with_auth(reqwest::Client::new().get(format!("{base}{path}")), auth)
        .send()
        .await
        .unwrap();
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
    let s = Scheduler::subscribe(&base, "fw-a", "sa", framework_info("fw-a", "web")).await;
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
