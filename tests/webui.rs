//! Mesos's web UI (apache/mesos `src/webui`, 1.11) against a real `tepui
//! master` and `tepui agent`: every request the UI makes, replayed as the
//! UI sends it (angular's `$http.jsonp` turns `jsonp=JSON_CALLBACK` into
//! `angular.callbacks._N`; the pailer's `$.getJSON(...&jsonp=?)` into a
//! jQuery callback), and every field the UI reads from each answer,
//! checked for presence and type. The UI's own code is not part of this
//! project; the list below is read from it (file and function cited at
//! each request).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::mesos_cluster::{Cluster, get_json, group, http, wait_until};
use serde_json::Value;

/// The callback angular 1.2's `$http.jsonp` puts in place of
/// `JSON_CALLBACK` for the first request of a page.
const ANGULAR: &str = "angular.callbacks._0";
/// What jQuery 3.6's `$.getJSON(url + '&jsonp=?')` sends (the pailer).
const JQUERY: &str = "jQuery36006383751122085611_1733593350123";

/// GET `target` with `jsonp=<callback>` appended; the JSON inside
/// `callback(...)` served as `text/javascript`, as the UI's `<script>`
/// loader needs it.
fn jsonp(addr: &str, target: &str, callback: &str) -> Value {
    let sep = if target.contains('?') { '&' } else { '?' };
    let target = format!("{target}{sep}jsonp={callback}");
    let (status, kind, body) = http(addr, "GET", &target, "");
    assert_eq!(status, 200, "GET {target}: {body}");
    assert_eq!(kind, "text/javascript", "GET {target}");
    let json = body
        .strip_prefix(&format!("{callback}("))
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or_else(|| panic!("GET {target}: not a JSONP answer: {body}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("GET {target}: {e}: {json}"))
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Num,
    Str,
    Bool,
    Arr,
    Obj,
}

/// `value` at the dotted `path` (array indexes as numbers).
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) if v.is_array() => v.get(i),
            _ => v.get(key),
        })
}

/// Asserts that each `(path, kind)` exists in `value` with that JSON type.
fn expect(what: &str, value: &Value, fields: &[(&str, Kind)]) {
    for (path, kind) in fields {
        let v = at(value, path).unwrap_or_else(|| panic!("{what}: no `{path}` in {value}"));
        let ok = match kind {
            Kind::Num => v.is_number(),
            Kind::Str => v.is_string(),
            Kind::Bool => v.is_boolean(),
            Kind::Arr => v.is_array(),
            Kind::Obj => v.is_object(),
        };
        assert!(ok, "{what}: `{path}` is not {kind:?}: {v}");
    }
}

/// The four resources the UI sums and divides (`resources.cpus` + ...).
fn resources(prefix: &str) -> Vec<(String, Kind)> {
    ["cpus", "gpus", "mem", "disk"]
        .iter()
        .map(|r| (format!("{prefix}.{r}"), Kind::Num))
        .collect()
}

fn expect_owned(what: &str, value: &Value, fields: &[(String, Kind)]) {
    let fields: Vec<(&str, Kind)> = fields.iter().map(|(p, k)| (p.as_str(), *k)).collect();
    expect(what, value, &fields);
}

/// A task as controllers.js `setTaskMetadata` and the task tables read it.
fn expect_task(what: &str, task: &Value) {
    use Kind::*;
    expect(
        what,
        task,
        &[
            ("id", Str),
            ("name", Str),
            ("state", Str),
            ("framework_id", Str),
            ("slave_id", Str),
            ("statuses", Arr),
            ("statuses.0.state", Str),
            ("statuses.0.timestamp", Num),
        ],
    );
    expect_owned(what, task, &resources("resources"));
    // `task.executor_id || task.id`: a string when present.
    assert!(
        task.get("executor_id").is_none_or(Value::is_string),
        "{what}: {task}"
    );
    for status in task["statuses"].as_array().unwrap() {
        assert!(
            status.get("healthy").is_none_or(Value::is_boolean),
            "{what}: {status}"
        );
    }
    assert!(
        task.as_object().unwrap().values().all(|v| !v.is_null()),
        "{what}: a null field: {task}"
    );
}

fn array<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array `{key}` in {v}"))
}

#[test]
fn every_request_of_the_mesos_web_ui_is_answered_with_what_it_reads() {
    use Kind::*;
    let test = "every_request_of_the_mesos_web_ui_is_answered_with_what_it_reads";
    if !common::require_root(test) {
        return;
    }
    let cluster = Cluster::start();
    let master = cluster.master_addr.clone();
    wait_until("the agent to register", || {
        std::net::TcpStream::connect(&master).is_ok()
            && get_json(&master, "/master/slaves")["slaves"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["active"] == true)
    });
    // History first: a command task that finishes under a framework that
    // then goes away (a completed framework, executor and task).
    let status = Command::new(common::tepui_bin())
        .args(["run", &format!("--master={master}"), "--"])
        .arg("echo finished-task-output")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Then a running default-executor task group.
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
        get_json(&master, "/master/tasks")["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").count() == 2)
    });
    wait_until("the finished framework to be completed", || {
        get_json(&master, "/master/frameworks")["completed_frameworks"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });

    // 1. MainCtrl `pollState` -> `updateState` (app/controllers.js), the
    //    home page and every master page: frameworks, agents, offers, tasks.
    let state = jsonp(&master, "/master/state", ANGULAR);
    expect(
        "/master/state",
        &state,
        &[
            ("id", Str),
            ("pid", Str),
            ("hostname", Str),
            ("version", Str),
            ("build_time", Num),
            ("build_user", Str),
            ("start_time", Num),
            ("elected_time", Num),
            ("activated_slaves", Num),
            ("deactivated_slaves", Num),
            ("unreachable_slaves", Num),
            ("leader_info.hostname", Str),
            ("leader_info.port", Num),
            ("flags", Obj),
            ("slaves", Arr),
            ("frameworks", Arr),
            ("completed_frameworks", Arr),
            ("capabilities", Arr),
        ],
    );
    // `leadingMasterURLPrefix(state.leader_info)`: later requests go there.
    let leader = format!(
        "{}:{}",
        state["leader_info"]["hostname"].as_str().unwrap(),
        state["leader_info"]["port"]
    );
    assert_eq!(leader, master, "{}", state["leader_info"]);
    let agent = &array(&state, "slaves")[0];
    expect(
        "/master/state slaves[0]",
        agent,
        &[
            ("id", Str),
            ("pid", Str),
            ("hostname", Str),
            ("deactivated", Bool),
            ("registered_time", Num),
        ],
    );
    for r in ["resources", "used_resources", "offered_resources"] {
        expect_owned("/master/state slaves[0]", agent, &resources(r));
    }
    let frameworks = array(&state, "frameworks");
    let framework = frameworks
        .iter()
        .find(|f| array(f, "tasks").len() == 2)
        .unwrap_or_else(|| panic!("{frameworks:?}"));
    let framework_fields = [
        ("id", Str),
        ("name", Str),
        ("user", Str),
        ("hostname", Str),
        ("webui_url", Str),
        ("registered_time", Num),
        ("active", Bool),
        ("roles", Arr),
        ("tasks", Arr),
        ("unreachable_tasks", Arr),
        ("completed_tasks", Arr),
        ("executors", Arr),
        ("offers", Arr),
    ];
    expect("/master/state frameworks[]", framework, &framework_fields);
    // Optional fields are absent when unset, never `null`.
    assert!(
        framework.get("principal").is_none_or(Value::is_string),
        "{framework}"
    );
    assert!(
        framework
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_null()),
        "{framework}"
    );
    for r in ["resources", "used_resources", "offered_resources"] {
        expect_owned("/master/state frameworks[]", framework, &resources(r));
    }
    // `role` *or* `roles`, as Mesos writes a framework (MULTI_ROLE or not).
    assert!(
        framework.get("role").is_some() != framework.get("roles").is_some()
            || framework.get("roles").is_some(),
        "{framework}"
    );
    for task in array(framework, "tasks") {
        expect_task("/master/state frameworks[].tasks[]", task);
    }
    // The framework's usage counts its executor too (the UI's `used_*`).
    let tasks_cpus: f64 = array(framework, "tasks")
        .iter()
        .map(|t| t["resources"]["cpus"].as_f64().unwrap())
        .sum();
    let executors = array(framework, "executors");
    assert_eq!(executors.len(), 1, "{framework}");
    let executor_cpus = executors[0]["resources"]["cpus"].as_f64().unwrap();
    let used = framework["used_resources"]["cpus"].as_f64().unwrap();
    assert!(
        (used - (tasks_cpus + executor_cpus)).abs() < 1e-9,
        "{used} != {tasks_cpus} + {executor_cpus}"
    );
    for offer in array(framework, "offers") {
        expect(
            "offer",
            offer,
            &[("id", Str), ("framework_id", Str), ("slave_id", Str)],
        );
        expect_owned("offer", offer, &resources("resources"));
    }
    let completed = &array(&state, "completed_frameworks")[0];
    expect(
        "/master/state completed_frameworks[]",
        completed,
        &[
            ("id", Str),
            ("name", Str),
            ("unregistered_time", Num),
            ("completed_tasks", Arr),
        ],
    );
    let finished = &array(completed, "completed_tasks")[0];
    expect_task("completed_frameworks[].completed_tasks[]", finished);
    assert_eq!(finished["state"], "TASK_FINISHED", "{finished}");

    // 2. MainCtrl `pollMetrics` -> `updateMetrics`: the task counters.
    let metrics = jsonp(&master, "/metrics/snapshot", ANGULAR);
    for state in [
        "staging", "starting", "running", "killing", "finished", "killed", "failed", "lost",
    ] {
        expect(
            "/metrics/snapshot",
            &metrics,
            &[(&format!("master/tasks_{state}"), Num)],
        );
    }
    assert_eq!(metrics["master/tasks_running"], 2.0, "{metrics}");
    assert!(
        metrics["master/tasks_finished"].as_f64().unwrap() >= 1.0,
        "{metrics}"
    );

    // 3. RolesCtrl (app/roles/roles.html).
    let roles = jsonp(&master, "/master/roles", ANGULAR);
    let role = array(&roles, "roles")
        .iter()
        .find(|r| r["name"] == "*")
        .unwrap_or_else(|| panic!("{roles}"));
    expect(
        "/master/roles",
        role,
        &[("name", Str), ("weight", Num), ("frameworks", Arr)],
    );
    for r in [
        "allocated",
        "offered",
        "reserved",
        "quota.consumed",
        "quota.guarantee",
        "quota.limit",
    ] {
        expect("/master/roles", role, &[(r, Obj)]);
    }
    assert!(role["allocated"]["cpus"].as_f64().unwrap() > 0.0, "{role}");

    // 4. MaintenanceCtrl (app/maintenance/maintenance.html reads `windows`).
    let schedule = jsonp(&master, "/master/maintenance/schedule", ANGULAR);
    assert!(schedule.is_object(), "{schedule}");
    assert!(
        schedule.get("windows").is_none_or(Value::is_array),
        "{schedule}"
    );

    // The agent pages reach the agent directly, at `agentURLPrefix`: the
    // host from `hostname`, the port and process id from `pid`.
    let pid = agent["pid"].as_str().unwrap();
    let (process, endpoint) = pid.split_once('@').unwrap();
    assert_eq!(process, "slave(1)", "{pid}");
    let port = endpoint.rsplit_once(':').unwrap().1;
    let agent_addr = format!("{}:{port}", agent["hostname"].as_str().unwrap());
    assert_eq!(agent_addr, cluster.agent_addr);
    let agent_id = agent["id"].as_str().unwrap();

    // 5. Top (app/services.js, `parseResponse`) on AgentCtrl,
    //    AgentFrameworkCtrl and AgentExecutorCtrl.
    let statistics = jsonp(&agent_addr, "/slave(1)/monitor/statistics", ANGULAR);
    let statistics = statistics.as_array().unwrap();
    assert!(!statistics.is_empty());
    for entry in statistics {
        expect(
            "/slave(1)/monitor/statistics",
            entry,
            &[
                ("executor_id", Str),
                ("framework_id", Str),
                ("statistics.timestamp", Num),
                ("statistics.cpus_user_time_secs", Num),
                ("statistics.cpus_system_time_secs", Num),
                ("statistics.mem_rss_bytes", Num),
            ],
        );
        // Present only with a hard limit, as Mesos's containerizer
        // writes them (src/slave/containerizer/mesos/containerizer.cpp,
        // `_usage`); the UI sums what is there.
        for optional in ["cpus_limit", "mem_limit_bytes", "disk_used_bytes"] {
            assert!(
                entry["statistics"]
                    .get(optional)
                    .is_none_or(Value::is_number),
                "{entry}"
            );
        }
    }

    // 6. AgentCtrl / AgentFrameworkCtrl / AgentExecutorCtrl /
    //    AgentTaskAndExecutorRerouterCtrl: the agent's state.
    let slave = jsonp(&agent_addr, "/slave(1)/state", ANGULAR);
    expect(
        "/slave(1)/state",
        &slave,
        &[
            ("id", Str),
            ("pid", Str),
            ("hostname", Str),
            ("version", Str),
            ("build_time", Num),
            ("start_time", Num),
            ("master_hostname", Str),
            ("flags", Obj),
            ("attributes", Obj),
            ("reserved_resources", Obj),
            ("reserved_resources_allocated", Obj),
            ("frameworks", Arr),
            ("completed_frameworks", Arr),
        ],
    );
    assert_eq!(slave["id"], agent_id);
    // The UI shows it as a host name: no port (src/slave/http.cpp,
    // `Http::state`: `master_hostname` is the leader's `hostname()`).
    assert!(
        !slave["master_hostname"].as_str().unwrap().contains(':'),
        "{}",
        slave["master_hostname"]
    );
    for r in [
        "resources",
        "unreserved_resources",
        "unreserved_resources_allocated",
    ] {
        expect_owned("/slave(1)/state", &slave, &resources(r));
    }
    let running = array(&slave, "frameworks")
        .iter()
        .find(|f| f["id"] == framework["id"])
        .unwrap_or_else(|| panic!("{slave}"));
    expect(
        "/slave(1)/state frameworks[]",
        running,
        &[
            ("id", Str),
            ("name", Str),
            ("user", Str),
            ("executors", Arr),
            ("completed_executors", Arr),
        ],
    );
    let executor = &array(running, "executors")[0];
    let executor_fields = [
        ("id", Str),
        ("name", Str),
        ("source", Str),
        ("directory", Str),
        ("type", Str),
        ("tasks", Arr),
        ("queued_tasks", Arr),
        ("completed_tasks", Arr),
    ];
    expect("/slave(1)/state executors[]", executor, &executor_fields);
    expect_owned("executor", executor, &resources("resources"));
    assert_eq!(executor["type"], "DEFAULT", "{executor}");
    assert_eq!(array(executor, "tasks").len(), 2, "{executor}");
    for task in array(executor, "tasks") {
        expect_task("/slave(1)/state executors[].tasks[]", task);
    }
    // The executor's resources are counted as the UI sums them: the
    // executor's own plus its tasks' (src/slave/http.cpp, ExecutorWriter).
    assert!(
        executor["resources"]["cpus"].as_f64().unwrap() >= tasks_cpus,
        "{executor}"
    );
    // The monitor's executors are the state's (`monitor.frameworks[fw]
    // .executors[ex]`).
    assert!(
        statistics
            .iter()
            .any(|e| e["executor_id"] == executor["id"] && e["framework_id"] == running["id"]),
        "{statistics:?}"
    );
    // History: the finished command task's framework and executor.
    let done = array(&slave, "completed_frameworks")
        .iter()
        .find(|f| f["id"] == completed["id"])
        .unwrap_or_else(|| panic!("no completed framework in {slave}"));
    expect(
        "/slave(1)/state completed_frameworks[]",
        done,
        &[
            ("id", Str),
            ("name", Str),
            ("executors", Arr),
            ("completed_executors", Arr),
        ],
    );
    let gone = &array(done, "completed_executors")[0];
    expect("completed_executors[]", gone, &executor_fields);
    let finished_on_agent = &array(gone, "completed_tasks")[0];
    expect_task("completed_executors[].completed_tasks[]", finished_on_agent);
    assert_eq!(finished_on_agent["state"], "TASK_FINISHED");

    // 7. AgentCtrl: the agent's task counters from its metrics.
    let agent_metrics = jsonp(&agent_addr, "/metrics/snapshot", ANGULAR);
    for state in [
        "staging", "starting", "running", "killing", "finished", "killed", "failed", "lost",
    ] {
        expect(
            "agent /metrics/snapshot",
            &agent_metrics,
            &[(&format!("slave/tasks_{state}"), Num)],
        );
    }
    assert_eq!(agent_metrics["slave/tasks_running"], 2.0);

    // 8. BrowseCtrl (app/agents/agent-browse.html): the executor's sandbox
    //    (the rerouter's `executor.directory`) and a task's
    //    (`setTaskSandbox`: `<directory>/tasks/<task id>` for DEFAULT).
    let directory = executor["directory"].as_str().unwrap();
    let encode = |p: &str| p.replace('%', "%25").replace(' ', "%20");
    for path in [directory.to_string(), format!("{directory}/tasks/web-task")] {
        let listing = jsonp(
            &agent_addr,
            &format!("/files/browse?path={}", encode(&path)),
            ANGULAR,
        );
        let listing = listing.as_array().unwrap();
        assert!(!listing.is_empty(), "{path}");
        for file in listing {
            expect(
                "/files/browse",
                file,
                &[
                    ("path", Str),
                    ("mode", Str),
                    ("nlink", Num),
                    ("uid", Str),
                    ("gid", Str),
                    ("size", Num),
                    ("mtime", Num),
                ],
            );
        }
    }
    let sandbox = gone["directory"].as_str().unwrap();
    let stdout = format!("{sandbox}/stdout");

    // 9. The pailer (app/shared/pailer.html, assets/libs/jquery.pailer.js):
    //    `offset=-1&length=-1` for the size, then pages from an offset.
    let size = jsonp(
        &agent_addr,
        &format!("/files/read?path={stdout}&offset=-1&length=-1"),
        JQUERY,
    );
    expect("/files/read", &size, &[("offset", Num), ("data", Str)]);
    let size = size["offset"].as_u64().unwrap();
    assert!(size > 0);
    let page = jsonp(
        &agent_addr,
        &format!("/files/read?path={stdout}&offset=0&length={size}"),
        JQUERY,
    );
    assert_eq!(page["offset"], 0);
    assert!(
        page["data"]
            .as_str()
            .unwrap()
            .contains("finished-task-output"),
        "{page}"
    );
    // Past the end: no data, the offset is the file's size.
    let past = jsonp(
        &agent_addr,
        &format!("/files/read?path={stdout}&offset={}&length=10", size + 5),
        JQUERY,
    );
    assert_eq!(past["data"], "", "{past}");

    // 10. The browse page's download links: the file itself.
    let (status, _, body) = http(
        &agent_addr,
        "GET",
        &format!("/files/download?path={}", encode(&stdout)),
        "",
    );
    assert_eq!(status, 200);
    assert!(body.contains("finished-task-output"), "{body}");

    // Not a UI request, but the summary dashboards read: per-state task
    // counters and the ids linking agents and frameworks
    // (src/master/readonly_handler.cpp, `ReadOnlyHandler::stateSummary`).
    let summary = jsonp(&master, "/master/state-summary", ANGULAR);
    let fw = array(&summary, "frameworks")
        .iter()
        .find(|f| f["id"] == framework["id"])
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(fw["TASK_RUNNING"], 2, "{fw}");
    assert_eq!(fw["TASK_FINISHED"], 0, "{fw}");
    assert_eq!(fw["slave_ids"], serde_json::json!([agent_id]), "{fw}");
    assert!(fw.get("tasks").is_none(), "{fw}");
    let slave = &array(&summary, "slaves")[0];
    assert_eq!(slave["TASK_RUNNING"], 2, "{slave}");
    assert!(
        array(slave, "framework_ids").contains(&framework["id"]),
        "{slave}"
    );

    assert_eq!(
        http(
            &master,
            "POST",
            "/master/teardown",
            &format!("frameworkId={}", framework["id"].as_str().unwrap())
        )
        .0,
        200
    );
    let _ = run.kill();
    let _ = run.wait();
}

/// `--webui_dir` serves a UI folder as Mesos's master serves `src/webui`
/// (src/master/master.cpp, `Master::initialize`: `provide("", index.html)`,
/// `provide("app", ...)`, `provide("assets", ...)`), so an operator points
/// it at an unchanged copy of Mesos's UI. The folder here is a stand-in
/// with the same layout; nothing outside it is ever served.
#[test]
fn webui_dir_serves_a_ui_folder_at_the_paths_mesos_uses() {
    let dir = tempfile::tempdir().unwrap();
    let ui = dir.path().join("webui");
    std::fs::create_dir_all(ui.join("app/shared")).unwrap();
    std::fs::create_dir_all(ui.join("assets/css")).unwrap();
    std::fs::write(ui.join("index.html"), "<html ng-app=\"mesos\"></html>").unwrap();
    std::fs::write(ui.join("app/app.js"), "var mesosApp;").unwrap();
    std::fs::write(ui.join("app/shared/pailer.html"), "<html></html>").unwrap();
    std::fs::write(ui.join("assets/css/mesos.css"), "body{}").unwrap();
    std::fs::write(dir.path().join("secret"), "not for the web").unwrap();

    let port = common::mesos_cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut master = Command::new(common::tepui_bin())
        .args([
            "master",
            "--ip=127.0.0.1",
            &format!("--port={port}"),
            &format!("--webui_dir={}", ui.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the master to serve", || {
        std::net::TcpStream::connect(&addr).is_ok()
    });

    let expect_file = |target: &str, kind: &str, body: &str| {
        let (status, got_kind, got) = http(&addr, "GET", target, "");
        assert_eq!(
            (status, got_kind.as_str(), got.as_str()),
            (200, kind, body),
            "GET {target}"
        );
    };
    expect_file(
        "/",
        "text/html; charset=utf-8",
        "<html ng-app=\"mesos\"></html>",
    );
    expect_file(
        "/app/app.js",
        "text/javascript; charset=utf-8",
        "var mesosApp;",
    );
    expect_file(
        "/app/shared/pailer.html",
        "text/html; charset=utf-8",
        "<html></html>",
    );
    expect_file("/assets/css/mesos.css", "text/css; charset=utf-8", "body{}");
    for outside in [
        "/app/../secret",
        "/app/%2e%2e/secret",
        "/assets/..%2F..%2Fsecret",
        "/app/missing.js",
        "/secret",
    ] {
        let (status, _, body) = http(&addr, "GET", outside, "");
        assert_eq!(status, 404, "GET {outside}: {body}");
        assert!(!body.contains("not for the web"), "GET {outside}");
    }
    // The APIs the UI reads are not shadowed by the folder.
    let state = get_json(&addr, "/master/state");
    assert_eq!(state["leader_info"]["hostname"], "127.0.0.1");
    let _ = master.kill();
    let _ = master.wait();

    // A folder without index.html is refused at start-up, naming the flag.
    let out = Command::new(common::tepui_bin())
        .args([
            "master",
            "--ip=127.0.0.1",
            &format!("--port={}", common::mesos_cluster::free_port()),
            &format!("--webui_dir={}", dir.path().join("app").display()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--webui_dir"), "{stderr}");
}
