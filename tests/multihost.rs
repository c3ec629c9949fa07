//! Failures across hosts: a cluster of network-namespace hosts on one
//! machine (tests/common/cluster.rs) with ZooKeeper, three HA masters, three
//! real agents and a JSON scheduler that follows the leader. The leading
//! master is SIGKILLed, an agent is cut off the network, agents are
//! restarted one after another under load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, missing_prerequisite};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// One cluster at a time: they compete for the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(30);

/// A JSON scheduler that follows the leading master: when its stream ends
/// it tries every master until one accepts SUBSCRIBE with its framework id.
struct Sched {
    masters: Vec<String>,
    framework_id: Option<String>,
    addr: String,
    stream_id: String,
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    client: reqwest::Client,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Sched {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}

impl Sched {
    async fn new(masters: Vec<String>) -> Sched {
        let (_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let mut s = Sched {
            masters,
            framework_id: None,
            addr: String::new(),
            stream_id: String::new(),
            events,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            reader: None,
        };
        s.subscribe().await;
        s
    }

    /// SUBSCRIBEs with the leader (trying each master in turn).
    async fn subscribe(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no master accepted SUBSCRIBE");
            for addr in self.masters.clone() {
                if self.try_subscribe(&addr).await {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_subscribe(&mut self, addr: &str) -> bool {
        let mut info = json!({"user": "root", "name": "multihost", "failover_timeout": 300.0,
            "checkpoint": true, "capabilities": [{"type": "PARTITION_AWARE"}]});
        let mut call = json!({"type": "SUBSCRIBE"});
        if let Some(id) = &self.framework_id {
            info["id"] = json!({"value": id});
            call["framework_id"] = json!({"value": id});
        }
        call["subscribe"] = json!({"framework_info": info});
        let Ok(resp) = self
            .client
            .post(format!("http://{addr}/api/v1/scheduler"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(call.to_string())
            .send()
            .await
        else {
            return false;
        };
        if resp.status() != 200 {
            return false;
        }
        let stream_id = resp.headers()["Mesos-Stream-Id"]
            .to_str()
            .unwrap()
            .to_string();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut bytes = resp.bytes_stream();
        let reader = tokio::spawn(async move {
            let mut decoder = tepui_proto::recordio::Decoder::new();
            while let Some(Ok(chunk)) = bytes.next().await {
                let Ok(records) = decoder.feed(&chunk) else {
                    break;
                };
                for record in records {
                    let event: Value = serde_json::from_slice(&record).unwrap();
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(json!({"type": "GONE"}));
        });
        let Ok(Some(first)) = tokio::time::timeout(WAIT, rx.recv()).await else {
            reader.abort();
            return false;
        };
        if first["type"] != "SUBSCRIBED" {
            reader.abort();
            return false;
        }
        let id = first["subscribed"]["framework_id"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(old) = &self.framework_id {
            assert_eq!(&id, old, "re-subscribed with another framework id");
        }
        self.framework_id = Some(id);
        self.addr = addr.to_string();
        self.stream_id = stream_id;
        self.events = rx;
        self.reader = Some(reader);
        true
    }

    /// A call to the current master: its status (0 when unreachable).
    async fn call(&self, mut body: Value) -> u16 {
        body["framework_id"] = json!({"value": self.framework_id.clone().unwrap()});
        match self
            .client
            .post(format!("http://{}/api/v1/scheduler", self.addr))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The next event; when the stream ends it re-subscribes (following
    /// the leader) and returns `{"type": "RESUBSCRIBED"}`.
    async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let e = tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()?
            .unwrap_or(json!({"type": "GONE"}));
        if e["type"] == "GONE" {
            self.subscribe().await;
            return Some(json!({"type": "RESUBSCRIBED"}));
        }
        if e["type"] == "UPDATE" {
            let status = &e["update"]["status"];
            if status.get("uuid").is_some() {
                let ack = json!({"type": "ACKNOWLEDGE", "acknowledge": {
                    "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
                self.call(ack).await;
            }
        }
        Some(e)
    }

    async fn decline(&self, offer: &Value) {
        self.call(
            json!({"type": "DECLINE", "decline": {"offer_ids": [offer["id"]],
            "filters": {"refuse_seconds": 0.5}}}),
        )
        .await;
    }

    async fn launch(&self, offer: &Value, tasks: Vec<Value>) -> u16 {
        self.call(
            json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": tasks}}]}}),
        )
        .await
    }
}

fn task(id: &str, agent: &Value, command: &str) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": agent,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": command}})
}

fn status_of(e: &Value) -> Option<(String, String, String)> {
    (e["type"] == "UPDATE").then(|| {
        let s = &e["update"]["status"];
        (
            s["task_id"]["value"].as_str().unwrap_or("").to_string(),
            s["state"].as_str().unwrap_or("").to_string(),
            s["agent_id"]["value"].as_str().unwrap_or("").to_string(),
        )
    })
}

/// Launches `per_agent` `sleep 1000` tasks on each of `agents` (agent ids
/// of offers, or hostnames when `only` is given) and waits until all run.
/// Returns task id -> agent id.
async fn launch_long_tasks(
    s: &mut Sched,
    per_agent: usize,
    agents: usize,
    only: Option<&str>,
) -> BTreeMap<String, String> {
    let mut launched: BTreeMap<String, usize> = BTreeMap::new();
    let mut running: BTreeMap<String, String> = BTreeMap::new();
    let total = per_agent * agents;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while running.len() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} tasks running",
            running.len()
        );
        let Some(e) = s.next(Duration::from_secs(5)).await else {
            continue;
        };
        if e["type"] == "OFFERS" {
            for offer in e["offers"]["offers"].as_array().unwrap() {
                let agent = offer["agent_id"]["value"].as_str().unwrap().to_string();
                let wanted = only.is_none_or(|h| offer["hostname"] == h);
                if !wanted || launched.contains_key(&agent) || launched.len() == agents {
                    s.decline(offer).await;
                    continue;
                }
                let tasks: Vec<Value> = (0..per_agent)
                    .map(|_| {
                        n += 1;
                        task(&format!("long-{n}"), &offer["agent_id"], "sleep 1000")
                    })
                    .collect();
                assert_eq!(s.launch(offer, tasks).await, 202);
                launched.insert(agent, per_agent);
            }
        } else if let Some((id, state, agent)) = status_of(&e) {
            assert!(
                state == "TASK_STARTING" || state == "TASK_RUNNING",
                "{id}: {state}"
            );
            if state == "TASK_RUNNING" {
                running.insert(id, agent);
            }
        }
    }
    running
}

/// Task id -> (state, agent id) of the framework's tasks in the leader's
/// `/master/state`.
fn master_tasks(cluster: &Cluster) -> Vec<(String, String, String)> {
    let leader = cluster.wait_leader(WAIT);
    let addr = cluster
        .hosts
        .iter()
        .find(|h| h.name == leader)
        .unwrap()
        .addr();
    let (_, body) = common::cluster::http_get(&addr, "/master/state");
    let state: Value = serde_json::from_str(&body).unwrap();
    let mut out = Vec::new();
    for fw in state["frameworks"].as_array().unwrap() {
        for t in fw["tasks"].as_array().unwrap() {
            out.push((
                t["id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
                t["slave_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Implicit reconciliation: task id -> (state, agent id) from the answers
/// (until `expected` tasks answered or 10 s passed).
async fn reconcile(s: &mut Sched, expected: usize) -> BTreeMap<String, (String, String)> {
    assert_eq!(
        s.call(json!({"type": "RECONCILE", "reconcile": {}})).await,
        202
    );
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < expected && Instant::now() < deadline {
        let Some(e) = s.next(Duration::from_secs(1)).await else {
            continue;
        };
        if let Some((id, state, agent)) = status_of(&e)
            && e["update"]["status"]["reason"] == "REASON_RECONCILIATION"
        {
            out.insert(id, (state, agent));
        }
    }
    out
}

#[test]
fn killing_the_leading_master_loses_no_task() {
    let test = "killing_the_leading_master_loses_no_task";
    if missing_prerequisite(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(3, 3, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut s = rt.block_on(Sched::new(cluster.masters()));
    let placed = rt.block_on(launch_long_tasks(&mut s, 10, 3, None));
    assert_eq!(placed.len(), 30);
    assert_eq!(
        placed.values().collect::<BTreeSet<_>>().len(),
        3,
        "spread over 3 agents"
    );

    let leader = cluster.wait_leader(WAIT);
    let died = Instant::now();
    cluster.kill(&leader);
    // The stream ends; the scheduler re-subscribes with whichever master
    // leads next, and times the first offer from it.
    let first_offer = rt.block_on(async {
        loop {
            let e = s.next(WAIT).await.expect("an event after the leader died");
            if e["type"] == "OFFERS" {
                let at = died.elapsed();
                for offer in e["offers"]["offers"].as_array().unwrap() {
                    s.decline(offer).await;
                }
                return at;
            }
        }
    });
    let new_leader = cluster.wait_leader(WAIT);
    assert_ne!(new_leader, leader);
    println!(
        "leader {leader} SIGKILLed; first offer from the new leader {new_leader} after {:.2}s",
        first_offer.as_secs_f64()
    );
    cluster.wait_agents(3, WAIT);
    println!(
        "all 3 agents re-registered {:.2}s after the leader died",
        died.elapsed().as_secs_f64()
    );
    let answers = rt.block_on(reconcile(&mut s, 30));
    assert_eq!(answers.len(), 30, "{answers:?}");
    for (id, (state, agent)) in &answers {
        assert_eq!(state, "TASK_RUNNING", "{id}");
        assert_eq!(agent, &placed[id], "{id} moved");
    }
    let tasks = master_tasks(&cluster);
    assert_eq!(tasks.len(), 30, "{tasks:?}");
    let ids: BTreeSet<_> = tasks.iter().map(|t| t.0.clone()).collect();
    assert_eq!(ids.len(), 30, "duplicates: {tasks:?}");
    assert!(tasks.iter().all(|t| t.1 == "TASK_RUNNING"), "{tasks:?}");
    assert!(
        first_offer < Duration::from_secs(10),
        "first offer after {first_offer:?}"
    );
    drop(s);
    drop(rt);
    drop(cluster);
}

#[test]
fn a_partitioned_agent_becomes_unreachable_and_reconciles_when_healed() {
    let test = "a_partitioned_agent_becomes_unreachable_and_reconciles_when_healed";
    if missing_prerequisite(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(
        3,
        3,
        &["--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2"],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut s = rt.block_on(Sched::new(cluster.masters()));
    let a1 = cluster.host("a1").ip.clone();
    let placed = rt.block_on(launch_long_tasks(&mut s, 5, 1, Some(a1.as_str())));
    let agent_id = placed.values().next().unwrap().clone();

    let cut = Instant::now();
    cluster.partition("a1");
    let unreachable = rt.block_on(async {
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + WAIT;
        while seen.len() < placed.len() {
            assert!(Instant::now() < deadline, "only {seen:?} unreachable");
            let Some(e) = s.next(Duration::from_secs(1)).await else {
                continue;
            };
            if let Some((id, state, _)) = status_of(&e) {
                assert_eq!(state, "TASK_UNREACHABLE", "{id}");
                seen.insert(id);
            }
        }
        cut.elapsed()
    });
    println!(
        "{} tasks TASK_UNREACHABLE {:.2}s after the partition",
        placed.len(),
        unreachable.as_secs_f64()
    );
    cluster.wait_agents(2, WAIT);
    cluster.heal("a1");
    let healed = Instant::now();
    cluster.wait_agents(3, WAIT);
    println!(
        "agent re-registered {:.2}s after the heal",
        healed.elapsed().as_secs_f64()
    );
    let answers = rt.block_on(reconcile(&mut s, placed.len()));
    assert_eq!(answers.len(), placed.len(), "{answers:?}");
    for (id, (state, agent)) in &answers {
        assert_eq!(state, "TASK_RUNNING", "{id}");
        assert_eq!(agent, &agent_id);
    }
    let tasks = master_tasks(&cluster);
    assert_eq!(tasks.len(), placed.len(), "{tasks:?}");
    let ids: BTreeSet<_> = tasks.iter().map(|t| t.0.clone()).collect();
    assert_eq!(ids.len(), placed.len(), "duplicates: {tasks:?}");
    assert!(tasks.iter().all(|t| t.1 == "TASK_RUNNING"), "{tasks:?}");
    drop(s);
    drop(rt);
    drop(cluster);
}

#[test]
fn rolling_agent_restarts_under_continuous_launches_fail_nothing() {
    let test = "rolling_agent_restarts_under_continuous_launches_fail_nothing";
    if missing_prerequisite(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(3, 3, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut s = rt.block_on(Sched::new(cluster.masters()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // The scheduler launches up to 3 short tasks on every offer until told
    // to stop, then waits for every launched task to end.
    let scheduler = rt.spawn(async move {
        let mut n = 0;
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let mut history: Vec<(String, String, String)> = Vec::new();
        loop {
            let stopping = stop2.load(std::sync::atomic::Ordering::SeqCst);
            let open = last
                .values()
                .filter(|s| s.as_str() != "TASK_FINISHED" && !is_failure(s))
                .count();
            if stopping && open == 0 {
                break;
            }
            let Some(e) = s.next(Duration::from_millis(500)).await else {
                continue;
            };
            if e["type"] == "OFFERS" {
                for offer in e["offers"]["offers"].as_array().unwrap() {
                    if stopping {
                        s.decline(offer).await;
                        continue;
                    }
                    let fits = fitting(offer).min(3);
                    if fits == 0 {
                        s.decline(offer).await;
                        continue;
                    }
                    let tasks: Vec<Value> = (0..fits)
                        .map(|_| {
                            n += 1;
                            let id = format!("short-{n}");
                            last.insert(id.clone(), "LAUNCHED".into());
                            task(&id, &offer["agent_id"], "sleep 0.5")
                        })
                        .collect();
                    s.launch(offer, tasks).await;
                }
            } else if let Some((id, state, _)) = status_of(&e) {
                let st = &e["update"]["status"];
                history.push((
                    id.clone(),
                    state.clone(),
                    format!(
                        "{} {} {}",
                        st["source"].as_str().unwrap_or(""),
                        st["reason"].as_str().unwrap_or(""),
                        st["message"].as_str().unwrap_or("")
                    ),
                ));
                last.insert(id, state);
            }
        }
        (last, history)
    });
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    for name in cluster.agents() {
        let t = Instant::now();
        cluster.kill(&name);
        std::thread::sleep(Duration::from_millis(500));
        cluster.restart(&name);
        cluster.wait_agents(3, WAIT);
        println!(
            "{name} SIGKILLed and back after {:.2}s",
            t.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (last, history) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scheduler).await })
        .expect("every task ended")
        .unwrap();
    let finished = last.values().filter(|s| *s == "TASK_FINISHED").count();
    // Tasks that never started, by Mesos's at-most-once semantics of the
    // master's messages: the ACCEPT raced the offer's rescission when the
    // agent's link closed (TASK_DROPPED), or RUN_TASK went out on the link
    // of an agent SIGKILLed before it checkpointed the task, so the agent
    // re-registered without it (TASK_GONE from the master), or the agent
    // checkpointed the task and was SIGKILLed before its executor started
    // (TASK_LOST, REASON_AGENT_RESTARTED, from the recovered agent). None
    // of them ever ran.
    let never_started = |(id, state, why): &&(String, String, String)| {
        let started = history
            .iter()
            .any(|(i, s, _)| i == id && (s == "TASK_STARTING" || s == "TASK_RUNNING"));
        !started
            && ((state == "TASK_DROPPED"
                && (why.contains("REASON_INVALID_OFFERS")
                    || why.contains("REASON_AGENT_DISCONNECTED")))
                || (state == "TASK_GONE" && why.contains("REASON_AGENT_REREGISTERED"))
                || (state == "TASK_LOST" && why.contains("REASON_AGENT_RESTARTED")))
    };
    let dropped: BTreeSet<_> = history
        .iter()
        .filter(never_started)
        .map(|(id, _, _)| id.clone())
        .collect();
    let failures: Vec<_> = history
        .iter()
        .filter(|e| is_failure(&e.1) && !never_started(e))
        .collect();
    println!(
        "{} tasks launched in {:.1}s, {finished} finished, {} never started (dropped in a SIGKILL race), {} failed",
        last.len(),
        started.elapsed().as_secs_f64(),
        dropped.len(),
        failures.len()
    );
    assert!(finished > 0);
    assert!(failures.is_empty(), "{failures:#?}");
    // Every task ends once: finished, or never started.
    let mut terminal: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, state, _) in &history {
        if state != "TASK_STARTING" && state != "TASK_RUNNING" {
            terminal.entry(id).or_default().insert(state);
        }
    }
    let conflicting: Vec<_> = terminal.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(conflicting.is_empty(), "{conflicting:?}");
    assert_eq!(finished + dropped.len(), last.len(), "{last:?}");
    drop(rt);
    drop(cluster);
}

/// How many 0.01 cpus / 32 MB tasks (each with its command executor's
/// 0.1 cpus / 32 MB) an offer holds.
fn fitting(offer: &Value) -> usize {
    let scalar = |name: &str| -> f64 {
        offer["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name)
            .filter_map(|r| r["scalar"]["value"].as_f64())
            .sum()
    };
    let by_cpus = (scalar("cpus") / 0.11).floor() as usize;
    let by_mem = (scalar("mem") / 64.0).floor() as usize;
    by_cpus.min(by_mem)
}

fn is_failure(state: &str) -> bool {
    matches!(
        state,
        "TASK_FAILED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_UNREACHABLE"
            | "TASK_GONE"
            | "TASK_KILLED"
    )
}
