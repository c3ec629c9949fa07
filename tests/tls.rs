//! TLS end to end with real processes and a CA generated here: a master and
//! an agent serving HTTPS only, the agent's link and the built-in command
//! executor over https, a scheduler and the CLI trusting the test CA, and
//! clients without the CA (or without a client certificate where one is
//! required) refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A test CA and a certificate it signs for 127.0.0.1 and localhost
/// (servers use it, and clients present it as their client certificate).
fn pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tepui tls test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

fn spawn(args: &[String], env: &[(&str, &Path)], log: PathBuf) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut command = Command::new(common::tepui_bin());
    command.args(args).stdout(Stdio::null()).stderr(log);
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

fn master_args(port: u16, dir: &Path, pki: &Pki) -> Vec<String> {
    vec![
        "master".into(),
        "--ip=127.0.0.1".into(),
        format!("--port={port}"),
        format!("--work_dir={}", dir.display()),
        "--allocation_interval=100ms".into(),
        format!("--ssl_cert_file={}", pki.cert.display()),
        format!("--ssl_key_file={}", pki.key.display()),
        format!("--ssl_ca_file={}", pki.ca.display()),
        "--ssl_require_client_cert".into(),
    ]
}

/// A client trusting the test CA, presenting a client certificate or not.
fn client_with_ca(pki: &Pki, with_cert: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().add_root_certificate(ca);
    if with_cert {
        let mut identity = std::fs::read(&pki.key).unwrap();
        identity.extend(std::fs::read(&pki.cert).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&identity).unwrap());
    }
    builder.build().unwrap()
}

/// Every message in an error's chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

async fn wait_up(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_agent(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let count = match client.get(format!("{base}/slaves")).send().await {
            Ok(r) => r
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .map_or(0, |v| v["slaves"].as_array().map_or(0, Vec::len)),
            Err(_) => 0,
        };
        if count == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the agent never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Subscribes a JSON framework, launches `echo` on the first offer and
/// returns the states the task went through until TASK_FINISHED.
async fn run_a_task(client: &reqwest::Client, base: &str) -> Vec<String> {
    let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info":
        {"user": "root", "name": "tls-e2e"}}});
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
    let mut bytes = resp.bytes_stream();
    let mut decoder = tepui_proto::recordio::Decoder::new();
    let mut pending: std::collections::VecDeque<Value> = Default::default();
    let mut framework_id = Value::Null;
    let mut states = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let event = match pending.pop_front() {
            Some(e) => e,
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                let chunk = tokio::time::timeout(left, bytes.next())
                    .await
                    .expect("no TASK_FINISHED in time")
                    .expect("scheduler stream open")
                    .unwrap();
                for record in decoder.feed(&chunk).unwrap() {
                    pending.push_back(serde_json::from_slice(&record).unwrap());
                }
                continue;
            }
        };
        let post = |body: Value| {
            client
                .post(format!("{base}/api/v1/scheduler"))
                .header("Content-Type", "application/json")
                .header("Mesos-Stream-Id", &stream_id)
                .body(body.to_string())
                .send()
        };
        match event["type"].as_str().unwrap_or_default() {
            "SUBSCRIBED" => framework_id = event["subscribed"]["framework_id"].clone(),
            "OFFERS" if states.is_empty() => {
                let offer = &event["offers"]["offers"][0];
                let task = json!({"name": "tls", "task_id": {"value": "tls"},
                    "agent_id": offer["agent_id"],
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
                    "command": {"value": "echo over-tls"}});
                let accept = json!({"type": "ACCEPT", "framework_id": framework_id,
                    "accept": {"offer_ids": [offer["id"]], "operations": [
                        {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}});
                assert_eq!(post(accept).await.unwrap().status(), 202);
                states.push("LAUNCHED".to_string());
            }
            "UPDATE" => {
                let status = &event["update"]["status"];
                if status.get("uuid").is_some() {
                    let ack = json!({"type": "ACKNOWLEDGE", "framework_id": framework_id,
                        "acknowledge": {"agent_id": status["agent_id"],
                        "task_id": status["task_id"], "uuid": status["uuid"]}});
                    assert_eq!(post(ack).await.unwrap().status(), 202);
                }
                let state = status["state"].as_str().unwrap().to_string();
                states.push(state.clone());
                if state == "TASK_FINISHED" || state == "TASK_FAILED" || state == "TASK_LOST" {
                    return states;
                }
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_end_to_end_with_a_test_ca() {
    if !common::require_root("tls_end_to_end_with_a_test_ca") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let cgroup_root = format!("tepui-e2e-tls-{}", std::process::id());
    let master_port = free_port();
    let agent_port = free_port();
    let base = format!("https://127.0.0.1:{master_port}");
    let agent_url = format!("https://127.0.0.1:{agent_port}");
    let mut master = spawn(
        &master_args(master_port, &dir.path().join("master"), &pki),
        &[],
        dir.path().join("master.log"),
    );
    // The agent's SSL settings come from libprocess's environment, and its
    // master is given without a scheme: https, as Mesos does with SSL on.
    let mut agent = spawn(
        &[
            "agent".into(),
            format!("--master=127.0.0.1:{master_port}"),
            "--ip=127.0.0.1".into(),
            format!("--port={agent_port}"),
            format!("--work_dir={}", dir.path().join("agent/work").display()),
            format!("--runtime_dir={}", dir.path().join("agent/run").display()),
            format!("--cgroups_root={cgroup_root}"),
            "--resources=cpus:2;mem:2048;disk:1024".into(),
        ],
        &[
            ("LIBPROCESS_SSL_ENABLED", Path::new("true")),
            ("LIBPROCESS_SSL_CERT_FILE", &pki.cert),
            ("LIBPROCESS_SSL_KEY_FILE", &pki.key),
            ("LIBPROCESS_SSL_CA_FILE", &pki.ca),
            ("LIBPROCESS_SSL_REQUIRE_CERT", Path::new("1")),
        ],
        dir.path().join("agent.log"),
    );
    let result = std::panic::AssertUnwindSafe(async {
        let client = client_with_ca(&pki, true);
        wait_up(&client, &format!("{base}/health")).await;
        wait_agent(&client, &base).await;

        // A command task: the agent's link, the scheduler and the built-in
        // command executor's client all speak https and present the test
        // CA's certificate (both servers require one).
        let states = run_a_task(&client, &base).await;
        eprintln!("task states over TLS: {states:?}");
        assert_eq!(
            states.last().map(String::as_str),
            Some("TASK_FINISHED"),
            "{states:?}"
        );

        // The CLI with the CA and a client certificate (the address without
        // a scheme becomes https).
        let agent_addr = format!("127.0.0.1:{agent_port}");
        let ps = Command::new(common::tepui_bin())
            .args(["ps", "--output", "json", "--agent", &agent_addr])
            .arg(format!("--ca_file={}", pki.ca.display()))
            .arg(format!("--cert_file={}", pki.cert.display()))
            .arg(format!("--key_file={}", pki.key.display()))
            .output()
            .unwrap();
        assert!(
            ps.status.success(),
            "tepui ps with the CA: {}",
            String::from_utf8_lossy(&ps.stderr)
        );
        // ... without a client certificate, and without the CA: refused.
        let ps = Command::new(common::tepui_bin())
            .args(["ps", "--agent", &agent_addr])
            .arg(format!("--ca_file={}", pki.ca.display()))
            .output()
            .unwrap();
        assert!(
            !ps.status.success(),
            "tepui ps without a client certificate"
        );
        let ps = Command::new(common::tepui_bin())
            .args(["ps", "--agent", &agent_url])
            .env_remove("TEPUI_CA_FILE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&ps.stderr);
        assert!(!ps.status.success());
        assert!(err.contains("certificate"), "{err}");

        // Clients without the CA are refused by both servers, clients
        // without a client certificate too; plain http is not served.
        let no_cert = client_with_ca(&pki, false);
        for url in [format!("{base}/health"), format!("{agent_url}/health")] {
            let e = reqwest::get(&url).await.expect_err("no CA: refused");
            assert!(chain(&e).contains("certificate"), "{}", chain(&e));
            assert!(
                no_cert.get(&url).send().await.is_err(),
                "{url} served without a client certificate"
            );
            let plain = url.replace("https://", "http://");
            assert!(client.get(&plain).send().await.is_err(), "{plain} served");
        }

        // Without --ssl_require_client_cert a client without a certificate
        // is served.
        let open_port = free_port();
        let mut args = master_args(open_port, &dir.path().join("open"), &pki);
        args.retain(|a| a != "--ssl_require_client_cert");
        let mut open = spawn(&args, &[], dir.path().join("open.log"));
        wait_up(&no_cert, &format!("https://127.0.0.1:{open_port}/health")).await;
        let _ = open.kill();
        let _ = open.wait();
    })
    .catch_unwind()
    .await;

    // SAFETY: kill has no memory preconditions; the pid is our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let _ = agent.wait();
    let _ = master.kill();
    let _ = master.wait();
    common::kill_leftovers(dir.path(), &cgroup_root);
    if !common::mounts_under(dir.path()).is_empty() {
        // Never remove a directory with mounts in it.
        let _ = dir.keep();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
