//! What each cell must show, checked against what its scheduler saw and
//! what its tasks wrote about themselves into their sandboxes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::cells::{Cell, Env, Image, Launch, Outcome, PAYLOAD_TEXT, TaskSpec, image_reference};
use super::clients::Scheduler;
use super::cluster::{browse_sandbox, read_sandbox_file};

/// Mesos's executors send TASK_STARTING before TASK_RUNNING.
pub const STARTING: bool = true;

pub const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

pub struct Row {
    pub cell: String,
    pub client: &'static str,
    pub codec: &'static str,
    pub launch: &'static str,
    pub image: String,
    pub share: &'static str,
    pub uris: &'static str,
    pub outcome: &'static str,
    pub states: String,
    pub reason: String,
    /// What went wrong; each with the known tepui bug it comes from, if
    /// it is one.
    pub problems: Vec<(String, Option<&'static str>)>,
}

impl Row {
    /// Problems that are not known tepui bugs.
    pub fn failures(&self) -> Vec<&str> {
        self.problems
            .iter()
            .filter(|(_, known)| known.is_none())
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Problems(Vec<(String, Option<&'static str>)>);

impl Problems {
    fn fail(&mut self, problem: String) {
        self.0.push((problem, None));
    }
}

/// The executor a task runs under: the command executor's id is the task's
/// (Mesos), the default executor's the cell's.
pub fn executor_id(cell: &Cell, task: &TaskSpec) -> String {
    match cell.launch {
        Launch::Task => task.id.clone(),
        Launch::Group => format!("{}-executor", cell.name),
    }
}

/// Where Mesos puts a task's sandbox, relative to its executor's: a
/// command task shares the executor's; a task-group task has
/// `tasks/<task id>` (a link to its container's directory).
pub fn task_sandbox(cell: &Cell, task: &TaskSpec) -> String {
    match cell.launch {
        Launch::Task => String::new(),
        Launch::Group => format!("tasks/{}/", task.id),
    }
}

/// The `JOURNEY key value` lines a task printed.
pub fn report_of(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("JOURNEY "))
        .map(|l| match l.split_once(' ') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

pub async fn task_stdout(
    agent: &str,
    s: &Scheduler,
    cell: &Cell,
    task: &TaskSpec,
) -> Option<String> {
    let rel = format!("{}stdout", task_sandbox(cell, task));
    read_sandbox_file(agent, &s.framework_id, &executor_id(cell, task), &rel).await
}

fn shared_cgroups(cell: &Cell) -> bool {
    cell.launch == Launch::Task || cell.share_cgroups != Some(false)
}

/// The terminal state and reason Mesos gives `task` in `cell`.
fn expected_end(cell: &Cell, task: &TaskSpec) -> (&'static str, Option<&'static str>) {
    match (cell.outcome, task.subject) {
        (Outcome::Exit0 | Outcome::AgentRestart, _) => ("TASK_FINISHED", None),
        (Outcome::Exit3, true) => ("TASK_FAILED", None),
        // A memory limitation of a shared cgroup ends the executor's whole
        // container: every task fails with it (Mesos's agent).
        (Outcome::Oom, true) => ("TASK_FAILED", Some("REASON_CONTAINER_LIMITATION_MEMORY")),
        (Outcome::Oom, false) if shared_cgroups(cell) => {
            ("TASK_FAILED", Some("REASON_CONTAINER_LIMITATION_MEMORY"))
        }
        // The default executor kills the rest of a group when one task
        // fails or is killed.
        (Outcome::Exit3 | Outcome::Oom | Outcome::Kill | Outcome::BadImage, _) => {
            ("TASK_KILLED", None)
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

const UNLIMITED: u64 = 1 << 62;

/// How soon a launch with a bad image must fail: the agent's default pull
/// stall timeout (`--fetcher_stall_timeout`, 1 minute).
const BAD_IMAGE_BOUND: Duration = Duration::from_secs(60);

pub async fn check(cell: &Cell, s: &Scheduler, agent: &str, env: &Env) -> Row {
    let mut problems = Problems::default();
    let mut states_col = Vec::new();
    let mut reason_col = Vec::new();
    let host_debian = std::fs::read_to_string("/etc/debian_version")
        .unwrap_or_default()
        .trim()
        .to_string();
    for task in &cell.tasks {
        let updates = s.updates_of(&task.id);
        let states: Vec<String> = updates.iter().map(|u| str_of(u, "state")).collect();
        let short: Vec<&str> = states
            .iter()
            .map(|s| s.strip_prefix("TASK_").unwrap_or(s))
            .collect();
        states_col.push(format!(
            "{}: {}",
            task.id.rsplit('-').next().unwrap_or(""),
            short.join(">")
        ));
        let Some(last) = updates.last() else {
            problems.fail(format!("{}: no status update at all", task.id));
            continue;
        };
        let reason = str_of(last, "reason");
        let message = str_of(last, "message");
        reason_col.push(if reason.is_empty() {
            "-".to_string()
        } else {
            reason.trim_start_matches("REASON_").to_string()
        });

        if let Image::Bad { .. } = task.image {
            // Bad input: the launch fails (FAILED or ERROR) with a reason
            // and a message naming the image; the task never runs.
            let reference = image_reference(&task.image, env).unwrap();
            if states.iter().any(|s| s == "TASK_RUNNING") {
                problems.fail(format!("{}: reached TASK_RUNNING: {states:?}", task.id));
            }
            if !["TASK_FAILED", "TASK_ERROR"].contains(&str_of(last, "state").as_str()) {
                problems.fail(format!("{}: ended {states:?}, not FAILED/ERROR", task.id));
            }
            if reason.is_empty() {
                problems.fail(format!("{}: terminal update without a reason", task.id));
            }
            // Within the pull timeout (the agent's --fetcher_stall_timeout,
            // 1 minute): a bad image fails fast.
            let took = s
                .launched_ms(&cell.name)
                .zip(last["received_ms"].as_u64())
                .map(|(from, to)| Duration::from_millis(to.saturating_sub(from)));
            if took.is_none_or(|t| t > BAD_IMAGE_BOUND) {
                problems.fail(format!(
                    "{}: failed {took:?} after its launch, not within {BAD_IMAGE_BOUND:?}",
                    task.id
                ));
            }
            if !message.contains(&reference) {
                problems.fail(format!(
                    "{}: message does not name the image {reference:?}: {message:?}",
                    task.id
                ));
            }
            continue;
        }
        if cell.outcome == Outcome::BadImage {
            // The sibling of a task whose image fails: killed with it.
            if str_of(last, "state") != "TASK_KILLED" {
                problems.fail(format!(
                    "{}: sibling of a failed launch ended {states:?}, not killed",
                    task.id
                ));
            }
            continue;
        }

        // The exact state sequence.
        let (end, end_reason) = expected_end(cell, task);
        let mut expected: Vec<&str> = Vec::new();
        if STARTING {
            expected.push("TASK_STARTING");
        }
        expected.push("TASK_RUNNING");
        expected.push(end);
        if states != expected {
            problems.fail(format!(
                "{}: states {states:?}, expected {expected:?} (last message {message:?})",
                task.id
            ));
        }
        // Reason and message of the terminal update.
        match end_reason {
            Some(r) if reason != r => {
                problems.fail(format!(
                    "{}: reason {reason:?}, expected {r} ({message:?})",
                    task.id
                ));
            }
            // Mesos's executors give a failed command no reason.
            None if !reason.is_empty() => {
                problems.fail(format!(
                    "{}: unexpected reason {reason:?} ({message:?})",
                    task.id
                ));
            }
            _ => {}
        }
        if end == "TASK_FINISHED" && !message.contains("status 0") {
            problems.fail(format!(
                "{}: FINISHED message {message:?} does not say status 0",
                task.id
            ));
        }
        if cell.outcome == Outcome::Exit3 && task.subject && !message.contains("status 3") {
            problems.fail(format!(
                "{}: message {message:?} does not name status 3",
                task.id
            ));
        }
        if end_reason == Some("REASON_CONTAINER_LIMITATION_MEMORY")
            && !message.to_lowercase().contains("memory")
        {
            problems.fail(format!(
                "{}: OOM message {message:?} does not mention memory",
                task.id
            ));
        }

        // Where its stdout landed, and what the task saw.
        let executor = executor_id(cell, task);
        if let Some(e) = last.get("executor_id").and_then(Value::as_str)
            && e != executor
        {
            problems.fail(format!(
                "{}: executor {e:?}, expected {executor:?}",
                task.id
            ));
        }
        let where_ = format!("{executor}/{}stdout", task_sandbox(cell, task));
        let Some(stdout) = task_stdout(agent, s, cell, task).await else {
            problems.fail(format!("{}: no stdout at {where_} (files API)", task.id));
            continue;
        };
        let report = report_of(&stdout);
        if !report.contains_key("ready") {
            problems.fail(format!(
                "{}: {where_} lacks the task's report: {stdout:?}",
                task.id
            ));
            continue;
        }
        let number = |k: &str| report.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let want = cell.expected_limit(task);
        let effective = number("mem_effective");
        let ok = match (want, effective) {
            (Some(w), Some(e)) => w == e || cell.shrunk_limits(task).contains(&e),
            (None, Some(e)) => e >= UNLIMITED,
            _ => false,
        };
        if !ok {
            problems.fail(format!(
                "{}: effective memory limit {effective:?}, expected {want:?} (cgroup {:?}, own limit {:?})",
                task.id,
                report.get("cgroup"),
                report.get("mem_limit")
            ));
        }
        if !shared_cgroups(cell)
            && number("mem_limit") != want
            && !(want.is_none() && number("mem_limit").is_some_and(|l| l >= UNLIMITED))
        {
            problems.fail(format!(
                "{}: own memory limit {:?}, expected {want:?}",
                task.id,
                report.get("mem_limit")
            ));
        }
        if task.image.is_image() {
            if !report.contains_key("has_busybox") || report.contains_key("debian") {
                problems.fail(format!(
                    "{}: does not see the image's filesystem: {report:?}",
                    task.id
                ));
            }
            if report.get("sandbox").map(String::as_str) != Some("/mnt/mesos/sandbox") {
                problems.fail(format!(
                    "{}: MESOS_SANDBOX {:?}, expected /mnt/mesos/sandbox",
                    task.id,
                    report.get("sandbox")
                ));
            }
        } else if report.get("debian").map(|d| d.trim()) != Some(host_debian.as_str()) {
            problems.fail(format!(
                "{}: does not see the host's filesystem: {report:?}",
                task.id
            ));
        }
        if task.uris {
            if report.get("payload").map(String::as_str) != Some(PAYLOAD_TEXT) {
                problems.fail(format!(
                    "{}: fetched archive not in its sandbox: {:?}",
                    task.id,
                    report.get("payload")
                ));
            }
            let listed =
                browse_sandbox(agent, &s.framework_id, &executor, &task_sandbox(cell, task)).await;
            if !listed.iter().any(|n| n == "journey-payload") {
                problems.fail(format!(
                    "{}: files API shows no journey-payload in {executor}/{}: {listed:?}",
                    task.id,
                    task_sandbox(cell, task)
                ));
            }
        }
        if cell.outcome == Outcome::AgentRestart && !report.contains_key("after-restart") {
            problems.fail(format!(
                "{}: did not run on after the agent restart",
                task.id
            ));
        }
    }
    for p in s.problems() {
        if p.to_string().contains(&cell.name) {
            problems.fail(format!("scheduler: {p}"));
        }
    }
    Row {
        cell: cell.name.clone(),
        client: cell.client.name(),
        codec: cell.client.codec(),
        launch: match cell.launch {
            Launch::Task => "LAUNCH",
            Launch::Group => "LAUNCH_GROUP",
        },
        image: cell.image_label(),
        share: cell.share_label(),
        uris: cell.uris_label(),
        outcome: cell.outcome.label(),
        states: states_col.join(" "),
        reason: reason_col.join(","),
        problems: problems.0,
    }
}

pub fn print_table(rows: &[Row]) {
    let header = [
        "cell",
        "client",
        "codec",
        "launch",
        "image",
        "share_cgroups",
        "uris",
        "outcome",
        "states seen",
        "reason",
        "result",
    ];
    let cols: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.cell.clone(),
                r.client.to_string(),
                r.codec.to_string(),
                r.launch.to_string(),
                r.image.clone(),
                r.share.to_string(),
                r.uris.to_string(),
                r.outcome.to_string(),
                r.states.clone(),
                r.reason.clone(),
                match (r.problems.is_empty(), r.failures().is_empty()) {
                    (true, _) => "OK".to_string(),
                    (false, true) => "KNOWN BUG".to_string(),
                    (false, false) => "FAIL".to_string(),
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cols.iter()
                .map(|c| c[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for c in cols {
        println!("{}", line(c));
    }
    for r in rows.iter().filter(|r| !r.problems.is_empty()) {
        println!("\n{}:", r.cell);
        for (p, known) in &r.problems {
            println!("  - [{}] {p}", known.unwrap_or("FAIL"));
        }
    }
}
