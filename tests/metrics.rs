//! Both daemons' metrics as Mesos names and types them
//! (docs/monitoring.md), checked on a real master and agent running a
//! task group: `/metrics/snapshot` has Mesos's keys, and the Prometheus
//! scrape of `/metrics` parses without error in a real Prometheus parser
//! (prometheus-client's `text_string_to_metric_families`, from the venv
//! scripts/deps.sh `install_prometheus_parser` makes), with `# HELP`,
//! counters typed as counters, one `mesos_` prefix, and per-container
//! series labelled by framework, executor and task.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::json_scheduler::{JsonScheduler, launch_group};
use common::mesos_cluster::{Cluster, get_json, group, http, wait_until};
use serde_json::{Value, json};

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/prometheus/venv")
}

/// The parser's view of a scrape: `[{name, type, help, samples: [{name,
/// labels, value}]}]`; panics with the parser's error if it fails.
fn parse(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                            for s in f.samples]})
print(json.dumps(out))
"#;
    let mut child = Command::new(venv().join("bin/python"))
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// Checks one daemon's scrape; returns its families.
fn scrape(addr: &str) -> Vec<Value> {
    let (status, kind, text) = http(addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let families = parse(&text);
    assert!(!families.is_empty());
    for f in &families {
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("mesos_"), "one prefix scheme: {name}");
        assert!(!f["help"].as_str().unwrap().is_empty(), "{name}: no HELP");
        assert!(
            f["type"] == "counter" || f["type"] == "gauge",
            "{name}: {}",
            f["type"]
        );
    }
    // Every family is declared before its samples (no `untyped`).
    assert!(!text.contains("untyped"));
    families
}

#[test]
fn both_daemons_metrics_follow_mesos_and_parse_as_prometheus() {
    let test = "both_daemons_metrics_follow_mesos_and_parse_as_prometheus";
    if !common::require_root(test) {
        return;
    }
    assert!(
        venv().join("bin/python").exists(),
        "{}: no Prometheus parser; run `. scripts/deps.sh; install_prometheus_parser`",
        venv().display()
    );
    let cluster = Cluster::start();
    let (master, agent) = (cluster.master_addr.clone(), cluster.agent_addr.clone());
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });
    // A task that finishes, then a running group.
    let status = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let file = cluster.dir.join("group.json");
    std::fs::write(&file, group().to_string()).unwrap();
    let mut run = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--task_group"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("both tasks to run", || {
        get_json(&agent, "/metrics/snapshot")["slave/tasks_running"] == 2.0
    });

    // `/metrics/snapshot`: Mesos's keys with Mesos's meaning
    // (docs/monitoring.md; src/master/metrics.cpp, src/slave/metrics.cpp).
    let m = get_json(&master, "/metrics/snapshot");
    for key in [
        "master/uptime_secs",
        "master/elected",
        "master/slaves_active",
        "master/slaves_connected",
        "master/slaves_disconnected",
        "master/slaves_inactive",
        "master/frameworks_active",
        "master/frameworks_connected",
        "master/frameworks_disconnected",
        "master/frameworks_inactive",
        "master/outstanding_offers",
        "master/cpus_total",
        "master/cpus_used",
        "master/cpus_percent",
        "master/mem_total",
        "master/mem_used",
        "master/disk_total",
        "master/gpus_total",
        "master/tasks_staging",
        "master/tasks_starting",
        "master/tasks_running",
        "master/tasks_killing",
        "master/tasks_finished",
        "master/tasks_failed",
        "master/tasks_killed",
        "master/tasks_lost",
        "master/tasks_error",
        "master/tasks_unreachable",
        "allocator/mesos/allocation_runs",
        "system/cpus_total",
        "system/load_1min",
        "system/load_5min",
        "system/load_15min",
        "system/mem_total_bytes",
        "system/mem_free_bytes",
    ] {
        assert!(m[key].is_number(), "master: no {key} in {m}");
    }
    assert_eq!(m["master/tasks_running"], 2.0, "{m}");
    assert!(m["master/tasks_finished"].as_f64().unwrap() >= 1.0, "{m}");
    assert_eq!(m["master/cpus_total"], 2.0, "{m}");
    let a = get_json(&agent, "/metrics/snapshot");
    for key in [
        "slave/uptime_secs",
        "slave/registered",
        "slave/tasks_staging",
        "slave/tasks_starting",
        "slave/tasks_running",
        "slave/tasks_killing",
        "slave/tasks_finished",
        "slave/tasks_failed",
        "slave/tasks_killed",
        "slave/tasks_lost",
        "slave/executors_registering",
        "slave/executors_running",
        "slave/executors_terminating",
        "slave/executors_terminated",
        "slave/frameworks_active",
        "slave/valid_status_updates",
        "slave/cpus_total",
        "slave/cpus_used",
        "slave/cpus_percent",
        "slave/mem_total",
        "slave/mem_used",
        "slave/mem_percent",
        "slave/disk_total",
        "slave/disk_used",
        "slave/gpus_total",
        "system/cpus_total",
        "system/load_1min",
        "system/mem_total_bytes",
        "system/mem_free_bytes",
    ] {
        assert!(a[key].is_number(), "agent: no {key} in {a}");
    }
    assert_eq!(a["slave/registered"], 1.0);
    assert_eq!(a["slave/cpus_total"], 2.0);
    assert!(a["slave/tasks_finished"].as_f64().unwrap() >= 1.0, "{a}");
    assert!(
        a["slave/executors_terminated"].as_f64().unwrap() >= 1.0,
        "{a}"
    );
    // Two tasks of 0.1 cpus plus their executor's share.
    assert!(a["slave/cpus_used"].as_f64().unwrap() >= 0.2, "{a}");

    // Prometheus: both scrapes parse; counters are counters.
    let master_families = scrape(&master);
    assert_eq!(
        family(&master_families, "mesos_master_tasks_finished")["type"],
        "counter"
    );
    assert_eq!(
        family(&master_families, "mesos_master_tasks_running")["type"],
        "gauge"
    );
    let agent_families = scrape(&agent);
    assert_eq!(
        family(&agent_families, "mesos_slave_tasks_finished")["type"],
        "counter"
    );
    assert_eq!(
        family(&agent_families, "mesos_slave_tasks_running")["samples"][0]["value"],
        2.0
    );
    // Per-container series, labelled by framework and executor.
    let cpu = family(&agent_families, "mesos_container_cpus_user_time_secs");
    assert_eq!(cpu["type"], "counter");
    let rss = family(&agent_families, "mesos_container_mem_rss_bytes");
    let samples = rss["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{rss}");
    for s in samples {
        assert!(s["labels"]["framework_id"].is_string(), "{s}");
        assert!(s["labels"]["executor_id"].is_string(), "{s}");
        assert!(s["value"].as_f64().unwrap() > 0.0, "{s}");
    }

    let framework = get_json(&master, "/master/frameworks")["frameworks"][0]["id"].clone();
    let body = format!("frameworkId={}", framework.as_str().unwrap());
    assert_eq!(http(&master, "POST", "/master/teardown", &body).0, 200);
    let _ = run.kill();
    let _ = run.wait();
}

/// A task's OOM kill is counted in its executor container's series
/// (`mesos_container_mem_oom_kills`, a counter; tepui's addition, as Mesos's
/// ResourceStatistics has no OOM count): the kernel's `oom_kill` counters
/// of the pod's cgroups (v1 `memory.oom_control`, v2 `memory.events`) plus
/// the containers that ended OOM-killed. The executor runs two task groups
/// so that it outlives the one whose task OOMs; the series is labelled by
/// framework and executor, and by no task, since two ran there.
#[test]
fn an_oom_kill_is_counted_in_its_containers_series() {
    let test = "an_oom_kill_is_counted_in_its_containers_series";
    if !common::require_root(test) {
        return;
    }
    assert!(
        venv().join("bin/python").exists(),
        "{}: no Prometheus parser; run `. scripts/deps.sh; install_prometheus_parser`",
        venv().display()
    );
    let cluster = Cluster::start();
    let (master, agent) = (cluster.master_addr.clone(), cluster.agent_addr.clone());
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut s = runtime.block_on(JsonScheduler::subscribe(&format!("http://{master}"), "oom"));
    let launch = |s: &mut JsonScheduler, tasks: &[(&str, &str, Option<&str>)]| {
        let offers = runtime.block_on(s.next("OFFERS"));
        let offer = offers["offers"]["offers"][0].clone();
        let mut op = launch_group("pod", &offer["agent_id"], tasks);
        // Each task in its own memory cgroup with its own limit: the OOM
        // stays the oomer's (in a shared pod cgroup it would end the pod).
        for t in op["launch_group"]["task_group"]["tasks"]
            .as_array_mut()
            .unwrap()
        {
            t["container"] = json!({"type": "MESOS", "linux_info": {"share_cgroups": false}});
        }
        // The same ExecutorInfo both times, as Mesos requires.
        op["launch_group"]["executor"]["framework_id"] = json!({"value": s.framework_id});
        let accept = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]],
            "operations": [op]}});
        assert_eq!(runtime.block_on(s.call(accept)), 202);
    };
    launch(&mut s, &[("sleeper", "sleep 1000", None)]);
    runtime.block_on(s.await_all(&["sleeper"], "TASK_RUNNING"));
    // `tail` keeps a line without a newline whole: 400 MB in 32.
    launch(&mut s, &[("oomer", "head -c 400m /dev/zero | tail", None)]);
    let failed = loop {
        let u = runtime.block_on(s.update());
        if u["task_id"]["value"] == "oomer"
            && !matches!(
                u["state"].as_str(),
                Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING")
            )
        {
            break u;
        }
    };
    assert_eq!(failed["state"], "TASK_FAILED", "{failed}");
    assert_eq!(
        failed["reason"], "REASON_CONTAINER_LIMITATION_MEMORY",
        "{failed}"
    );

    let framework = s.framework_id.clone();
    let families = scrape(&agent);
    let oom = family(&families, "mesos_container_mem_oom_kills");
    assert_eq!(oom["type"], "counter", "{oom}");
    let sample = oom["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["labels"]["executor_id"] == "pod")
        .cloned()
        .unwrap_or_else(|| panic!("no sample for the executor: {oom}"));
    assert_eq!(
        sample["labels"]["framework_id"],
        json!(framework),
        "{sample}"
    );
    assert!(sample["labels"].get("task_id").is_none(), "{sample}");
    assert!(sample["value"].as_f64().unwrap() >= 1.0, "{sample}");
    // The same count in the executor's `/monitor/statistics` entry.
    let stats = get_json(&agent, "/monitor/statistics");
    let entry = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "pod")
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{stats}\n{}\n{}",
                get_json(&agent, "/state")["completed_frameworks"],
                cluster.log("agent.log")
            )
        });
    assert!(
        entry["statistics"]["mem_oom_kills"].as_u64().unwrap() >= 1,
        "{entry}"
    );
    drop(s);
}
