//! The agent's own memory: idle, and with 100 running command tasks (each
//! with its command executor and supervisor). Prints the agent's RSS and,
//! for scale, what one task costs in executor and supervisor memory.
//!
//! Run as root: `cargo bench --bench agent_memory` (TASKS=N instead of 100).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/fake_master.rs"]
mod fake_master;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_master::{FakeMaster, command_task, framework};
use tepui_proto::v1::TaskState;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Pids whose command line contains `needle`.
fn pids(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the agent memory benchmark needs root (real containers)");
        return;
    }
    let tasks: usize = std::env::var("TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let master = FakeMaster::start().await;
        let dir = tempfile::tempdir().unwrap().keep();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cgroup_root = format!("tepui-bench-{}", std::process::id());
        let mut agent = Command::new(env!("CARGO_BIN_EXE_tepui"))
            .args(["agent", "--master", &master.address, "--ip", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", dir.join("work").display()))
            .arg(format!("--runtime_dir={}", dir.join("run").display()))
            .arg(format!("--cgroups_root={cgroup_root}"))
            .args(["--resources", "cpus:64;mem:65536"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        master
            .wait_for("the agent", Duration::from_secs(30), |m| {
                (m.subscribes() > 0).then_some(())
            })
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = rss_kb(agent.id());

        let fw = framework("bench", true);
        let started = Instant::now();
        for i in 0..tasks {
            master.run_task(&fw, command_task(&format!("t{i}"), "sleep 600"), None);
        }
        let mut acked = 0;
        master
            .wait_for("every task to run", Duration::from_secs(600), |m| {
                let updates = m.updates();
                for u in &updates[acked..] {
                    m.acknowledge(u);
                }
                acked = updates.len();
                let running = updates
                    .iter()
                    .filter(|u| u.status.state == TaskState::TaskRunning as i32)
                    .count();
                (running >= tasks).then_some(())
            })
            .await;
        let launch = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let busy = rss_kb(agent.id());
        let run_dir = dir.join("run").display().to_string();
        let supervisors = pids(&format!("--runtime_dir {run_dir}"));
        let executors = pids("executor command");
        let sup_kb: u64 = supervisors.iter().map(|p| rss_kb(*p)).sum();
        let ex_kb: u64 = executors.iter().map(|p| rss_kb(*p)).sum();

        println!("\nagent memory (RSS), {tasks} command tasks running `sleep 600`");
        println!("{:<40} {:>12}", "what", "kB");
        println!("{:<40} {:>12}", "agent idle", idle);
        println!(
            "{:<40} {:>12}",
            format!("agent with {tasks} running tasks"),
            busy
        );
        println!(
            "{:<40} {:>12}",
            "per task: command executor process",
            ex_kb / executors.len().max(1) as u64
        );
        println!(
            "{:<40} {:>12}",
            "per task: supervisor process",
            sup_kb / supervisors.len().max(1) as u64
        );
        println!(
            "launching {tasks} tasks to RUNNING took {:.2} s",
            launch.as_secs_f64()
        );

        for i in 0..tasks {
            master.kill_task(&fw, &format!("t{i}"));
        }
        master
            .wait_for("every executor to exit", Duration::from_secs(600), |m| {
                let updates = m.updates();
                for u in &updates[acked..] {
                    m.acknowledge(u);
                }
                acked = updates.len();
                (m.exits().len() >= tasks).then_some(())
            })
            .await;
        let _ = agent.kill();
        let _ = agent.wait();
        for controller in [
            "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "blkio", "cpuset", "systemd",
        ] {
            let _ = std::fs::remove_dir(
                std::path::Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join(&cgroup_root),
            );
        }
        let _ = tepui_containerizer::safe_remove::remove_tree(&dir);
    });
}
