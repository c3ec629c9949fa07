//! A framework written against the scheduler HTTP API in JSON, as a
//! third-party scheduler would be: SUBSCRIBE stream decoded into events,
//! calls with the stream id, updates acknowledged.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(60);

pub struct JsonScheduler {
    pub base: String,
    pub stream_id: String,
    pub framework_id: String,
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    client: reqwest::Client,
}

impl JsonScheduler {
    pub async fn subscribe(base: &str, name: &str) -> JsonScheduler {
        Self::subscribe_as(base, name, None).await
    }

    /// SUBSCRIBE, as the framework `id` when given (a failed-over
    /// scheduler re-subscribing).
    pub async fn subscribe_as(base: &str, name: &str, id: Option<&str>) -> JsonScheduler {
        Self::subscribe_full(base, name, id, "root", &[]).await
    }

    /// SUBSCRIBE as a MULTI_ROLE framework of `roles`.
    pub async fn subscribe_with_roles(base: &str, name: &str, roles: &[&str]) -> JsonScheduler {
        Self::subscribe_full(base, name, None, "root", roles).await
    }

    /// SUBSCRIBE with `FrameworkInfo.user` = `user`.
    pub async fn subscribe_with_user(base: &str, name: &str, user: &str) -> JsonScheduler {
        Self::subscribe_full(base, name, None, user, &[]).await
    }

    async fn subscribe_full(
        base: &str,
        name: &str,
        id: Option<&str>,
        user: &str,
        roles: &[&str],
    ) -> JsonScheduler {
        let client = reqwest::Client::new();
        let mut info = json!({"user": user, "name": name, "failover_timeout": 300.0,
            "checkpoint": true, "capabilities": [{"type": "PARTITION_AWARE"}]});
        if !roles.is_empty() {
            info["roles"] = json!(roles);
            info["capabilities"] = json!([{"type": "PARTITION_AWARE"}, {"type": "MULTI_ROLE"}]);
        }
        let mut call = json!({"type": "SUBSCRIBE"});
        if let Some(id) = id {
            info["id"] = json!({"value": id});
            call["framework_id"] = json!({"value": id});
        }
        call["subscribe"] = json!({"framework_info": info});
        let resp = client
            .post(format!("{base}/api/v1/scheduler"))
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
        JsonScheduler {
            base: base.to_string(),
            stream_id,
            framework_id,
            events: rx,
            client,
        }
    }

    pub async fn call(&self, mut body: Value) -> u16 {
        body["framework_id"] = json!({"value": self.framework_id});
        self.client
            .post(format!("{}/api/v1/scheduler", self.base))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn next(&mut self, kind: &str) -> Value {
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

    /// The next status update, acknowledged.
    pub async fn update(&mut self) -> Value {
        let status = self.next("UPDATE").await["update"]["status"].clone();
        if status.get("uuid").is_some() {
            let ack = json!({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
            assert_eq!(self.call(ack).await, 202);
        }
        status
    }

    /// Waits until every task in `ids` reported `state`; panics on another
    /// terminal state.
    pub async fn await_all(&mut self, ids: &[&str], state: &str) {
        let mut left: Vec<&str> = ids.to_vec();
        while !left.is_empty() {
            let u = self.update().await;
            let id = u["task_id"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let got = u["state"].as_str().unwrap_or_default();
            if got == state {
                left.retain(|t| *t != id);
            } else {
                assert!(
                    matches!(got, "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"),
                    "{id}: {u}"
                );
            }
        }
    }
}

/// cpus and mem of `offers`, summed.
pub fn offered(offers: &Value) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    for offer in offers.as_array().into_iter().flatten() {
        for r in offer["resources"].as_array().into_iter().flatten() {
            let v = r["scalar"]["value"].as_f64().unwrap_or(0.0);
            match r["name"].as_str() {
                Some("cpus") => total.0 += v,
                Some("mem") => total.1 += v,
                _ => {}
            }
        }
    }
    total
}

pub fn scalar(name: &str, value: f64) -> Value {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": value}})
}

/// A command task of 0.2 cpus and 64 MB.
pub fn command_task(id: &str, agent: &Value, command: &str) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [scalar("cpus", 0.2), scalar("mem", 64.0)],
        "command": {"value": command}})
}

/// LAUNCH_GROUP under the default executor (0.1 cpus, 32 MB) of `tasks`,
/// each 0.1 cpus and 32 MB; `images` gives some tasks a container image.
pub fn launch_group(executor: &str, agent: &Value, tasks: &[(&str, &str, Option<&str>)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(id, command, image)| {
            let mut t = json!({"name": id, "task_id": {"value": id}, "agent_id": agent,
                "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)],
                "command": {"value": command}});
            if let Some(image) = image {
                t["container"] = json!({"type": "MESOS", "mesos": {"image": {
                    "type": "DOCKER", "docker": {"name": image}}}});
            }
            t
        })
        .collect();
    json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"type": "DEFAULT", "executor_id": {"value": executor},
            "resources": [scalar("cpus", 0.1), scalar("mem", 32.0)]},
        "task_group": {"tasks": tasks}}})
}

/// `/master/state`'s used resources of the (only) agent: (cpus, mem).
pub async fn agent_used(base: &str) -> (f64, f64) {
    let body = reqwest::get(format!("{base}/master/state"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let state: Value = serde_json::from_slice(&body).unwrap();
    let used = &state["slaves"][0]["used_resources"];
    (
        used["cpus"].as_f64().unwrap_or(0.0),
        used["mem"].as_f64().unwrap_or(0.0),
    )
}
