//! `tepui status`, `tepui agents`, `tepui frameworks`: the cluster as its
//! master sees it (operator API v1: GET_MASTER, GET_AGENTS,
//! GET_FRAMEWORKS, GET_TASKS).

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::cli::{CliError, human_bytes, write_table};
use crate::cli_locate::{Master, TaskList, agent_address};

/// Sums the scalar resources of a Mesos JSON resource list by name.
fn scalars(resources: &Value) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for r in resources.as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (r["name"].as_str(), r["scalar"]["value"].as_f64()) {
            *sums.entry(name.to_string()).or_insert(0.0) += value;
        }
    }
    sums
}

/// `{name: {"used": u, "total": t}}` for cpus, mem, disk and gpus (and any
/// other scalar an agent has).
fn used_total(agents: &[Value]) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for a in agents {
        for (name, v) in scalars(&a["total_resources"]) {
            out.entry(name).or_default().1 += v;
        }
        for (name, v) in scalars(&a["allocated_resources"]) {
            out.entry(name).or_default().0 += v;
        }
    }
    out
}

fn resources_json(usage: &BTreeMap<String, (f64, f64)>) -> Value {
    usage
        .iter()
        .map(|(name, (used, total))| (name.clone(), json!({"used": used, "total": total})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `used/total` with mem and disk (MB in Mesos) in bytes units.
fn used_of(name: &str, used: f64, total: f64) -> String {
    match name {
        "mem" | "disk" => {
            let mb = |v: f64| human_bytes((v * 1024.0 * 1024.0) as u64);
            format!("{}/{}", mb(used), mb(total))
        }
        _ => format!("{}/{}", trim(used), trim(total)),
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn tasks_per_agent(tasks: &[(TaskList, tepui_proto::v1::Task)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (list, t) in tasks {
        if *list != TaskList::Completed {
            *out.entry(t.agent_id.value.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// `tepui status`: the leader, agents, frameworks, tasks by state and the
/// resources used (allocated) out of the total.
pub async fn status(master: &Master, json_output: bool) -> Result<(), CliError> {
    let info = master.call("GET_MASTER").await?;
    let agents = master.agents().await?;
    let frameworks = master.frameworks().await?;
    let tasks = master.tasks().await?;
    let leader = &info["get_master"]["master_info"];
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for (_, t) in &tasks {
        let state = tepui_proto::v1::TaskState::try_from(t.state)
            .map_or_else(|_| t.state.to_string(), |s| s.as_str_name().to_string());
        *by_state.entry(state).or_insert(0) += 1;
    }
    let active_agents = agents.iter().filter(|a| a["active"] == true).count();
    let completed = frameworks.iter().filter(|f| f["completed"] == true).count();
    let active_frameworks = frameworks
        .iter()
        .filter(|f| f["completed"] != true && f["active"] == true)
        .count();
    let usage = used_total(&agents);
    let summary = json!({
        "master": master.base(),
        "leader": {
            "id": leader["id"],
            "pid": leader["pid"],
            "hostname": leader["hostname"],
            "address": format!(
                "{}:{}",
                leader["address"]["ip"].as_str().or(leader["hostname"].as_str()).unwrap_or("?"),
                leader["port"].as_u64().unwrap_or(0)
            ),
            "version": leader["version"],
            "elected_time": info["get_master"]["elected_time"],
        },
        "agents": {"total": agents.len(), "active": active_agents},
        "frameworks": {
            "total": frameworks.len() - completed,
            "active": active_frameworks,
            "completed": completed,
        },
        "tasks": by_state,
        "resources": resources_json(&usage),
    });
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    writeln!(
        out,
        "leader:     {} ({}, version {})",
        summary["leader"]["address"].as_str().unwrap_or(""),
        leader["id"].as_str().unwrap_or(""),
        leader["version"].as_str().unwrap_or("?")
    )?;
    writeln!(out, "agents:     {} ({active_agents} active)", agents.len())?;
    writeln!(
        out,
        "frameworks: {} ({active_frameworks} active, {completed} completed)",
        frameworks.len() - completed
    )?;
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
    writeln!(
        out,
        "tasks:      {}",
        if states.is_empty() {
            "none".to_string()
        } else {
            states.join(", ")
        }
    )?;
    let resources: Vec<String> = usage
        .iter()
        .map(|(name, (used, total))| format!("{name} {}", used_of(name, *used, *total)))
        .collect();
    writeln!(out, "resources:  {} (used/total)", resources.join(", "))?;
    Ok(())
}

/// `tepui agents`: every agent the master knows.
pub async fn agents(master: &Master, json_output: bool) -> Result<(), CliError> {
    let agents = master.agents().await?;
    let running = tasks_per_agent(&master.tasks().await?);
    let rows: Vec<Value> = agents
        .iter()
        .map(|a| {
            let id = a["agent_info"]["id"]["value"].as_str().unwrap_or("");
            json!({
                "id": id,
                "hostname": a["agent_info"]["hostname"],
                "address": agent_address(a),
                "active": a["active"],
                "version": a["version"],
                "tasks": running.get(id).copied().unwrap_or(0),
                "resources": resources_json(&used_total(std::slice::from_ref(a))),
                "attributes": a["agent_info"]["attributes"],
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(out, "{}", Value::Array(rows))?;
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let res = |name: &str| {
                let used = r["resources"][name]["used"].as_f64().unwrap_or(0.0);
                let total = r["resources"][name]["total"].as_f64().unwrap_or(0.0);
                used_of(name, used, total)
            };
            vec![
                r["id"].as_str().unwrap_or("").to_string(),
                r["hostname"].as_str().unwrap_or("").to_string(),
                r["address"].as_str().unwrap_or("").to_string(),
                if r["active"] == true { "yes" } else { "no" }.to_string(),
                r["tasks"].to_string(),
                res("cpus"),
                res("mem"),
                res("disk"),
            ]
        })
        .collect();
    write_table(
        &mut out,
        &[
            "ID", "HOSTNAME", "ADDRESS", "ACTIVE", ">TASKS", ">CPUS", ">MEM", ">DISK",
        ],
        &cells,
    )?;
    Ok(())
}

/// `tepui frameworks`: registered frameworks, then completed ones.
pub async fn frameworks(master: &Master, json_output: bool) -> Result<(), CliError> {
    let frameworks = master.frameworks().await?;
    let mut running: BTreeMap<String, usize> = BTreeMap::new();
    for (list, t) in master.tasks().await? {
        if list != TaskList::Completed {
            *running.entry(t.framework_id.value).or_insert(0) += 1;
        }
    }
    let rows: Vec<Value> = frameworks
        .iter()
        .map(|f| {
            let info = &f["framework_info"];
            let id = info["id"]["value"].as_str().unwrap_or("");
            let roles = info["roles"]
                .as_array()
                .cloned()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| vec![info["role"].clone()]);
            json!({
                "id": id,
                "name": info["name"],
                "user": info["user"],
                "roles": roles,
                "active": f["active"] == true,
                "connected": f["connected"] == true,
                "completed": f["completed"] == true,
                "tasks": running.get(id).copied().unwrap_or(0),
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json_output {
        writeln!(out, "{}", Value::Array(rows))?;
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = if r["completed"] == true {
                "completed"
            } else if r["active"] == true {
                "active"
            } else {
                "inactive"
            };
            vec![
                r["id"].as_str().unwrap_or("").to_string(),
                r["name"].as_str().unwrap_or("").to_string(),
                r["user"].as_str().unwrap_or("").to_string(),
                r["roles"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                state.to_string(),
                r["tasks"].to_string(),
            ]
        })
        .collect();
    write_table(
        &mut out,
        &["ID", "NAME", "USER", "ROLES", "STATE", ">TASKS"],
        &cells,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_and_total_sum_over_agents_and_print_in_units() {
        let agent = json!({
            "total_resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 2048.0}}],
            "allocated_resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.3}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 96.0}}],
        });
        let usage = used_total(&[agent.clone(), agent]);
        assert_eq!(usage["cpus"], (0.6, 4.0));
        assert_eq!(used_of("cpus", 0.6, 4.0), "0.6/4");
        assert_eq!(used_of("mem", 96.0, 2048.0), "96.0MiB/2.0GiB");
    }
}
