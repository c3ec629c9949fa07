//! Validation of ACCEPT operations as Mesos's `master/validation.cpp` does
//! it: a task or task group that fails is answered with TASK_ERROR and a
//! message saying which rule it broke; its resources stay in the pool.

use std::collections::HashSet;

use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::executor_info::Type as ExecutorType;
use tepui_proto::v1::{ExecutorInfo, Resource, TaskInfo};

/// What validation needs to know about the framework and the agent.
pub struct Context<'a> {
    pub framework_id: &'a str,
    pub roles: &'a [String],
    pub agent_id: &'a str,
    /// Task ids the framework already uses (anywhere).
    pub known_tasks: &'a dyn Fn(&str) -> bool,
    /// Executors of this framework already on the agent.
    pub executors: &'a dyn Fn(&str) -> Option<ExecutorInfo>,
}

/// Ids become paths and cgroup names on the agent: Mesos's `validateID`
/// rules (`tepui_proto::ids`), with the offending field named.
fn check_id(field: &str, id: &str) -> Result<(), String> {
    tepui_proto::ids::check(field, id)
}

/// Parses resources as given, with the offer's allocation role filled in
/// where a non-MULTI_ROLE framework left it out.
pub fn task_resources(resources: &[Resource], role: Option<&str>) -> Result<Resources, String> {
    let mut r = Resources::try_from_resources(resources.iter().cloned())
        .map_err(|e| format!("invalid resources: {e}"))?;
    if let Some(role) = role
        && r.iter().any(|x| x.allocation_role().is_none())
    {
        let mut with = r.filter(|x| x.allocation_role().is_some());
        let mut without = r.filter(|x| x.allocation_role().is_none());
        without.allocate(role);
        with += without;
        r = with;
    }
    Ok(r)
}

fn share_cgroups(task: &TaskInfo) -> Option<bool> {
    task.container
        .as_ref()
        .and_then(|c| c.linux_info.as_ref())
        .and_then(|l| l.share_cgroups)
}

fn check_resource_roles(resources: &Resources, ctx: &Context<'_>) -> Result<(), String> {
    for r in resources.iter() {
        match r.allocation_role() {
            Some(role) if !ctx.roles.iter().any(|x| x == role) => {
                return Err(format!(
                    "resources are allocated to role '{role}', which the framework is not subscribed to"
                ));
            }
            _ => {}
        }
        if let Some(reserved) = r.reservation_role()
            && let Some(role) = r.allocation_role()
            && !r.is_allocatable_to(role)
        {
            return Err(format!(
                "resources reserved to '{reserved}' cannot be used by role '{role}'"
            ));
        }
    }
    Ok(())
}

/// Checks limits: only `cpus` and `mem`, never below what the task requests.
fn check_limits(task: &TaskInfo, resources: &Resources) -> Result<(), String> {
    for (name, limit) in &task.limits {
        if name != "cpus" && name != "mem" {
            return Err(format!(
                "limits may only be set for 'cpus' and 'mem', not '{name}'"
            ));
        }
        let request = resources.scalar(name).unwrap_or(0.0);
        if limit.value.is_nan() || limit.value < request {
            return Err(format!(
                "the '{name}' limit ({}) is below the task's '{name}' request ({request})",
                limit.value
            ));
        }
    }
    Ok(())
}

fn check_executor(executor: &ExecutorInfo, ctx: &Context<'_>) -> Result<Resources, String> {
    check_id("executor.executor_id", &executor.executor_id.value)?;
    if let Some(fid) = &executor.framework_id
        && fid.value != ctx.framework_id
    {
        return Err(format!(
            "executor has framework id {} but the framework is {}",
            fid.value, ctx.framework_id
        ));
    }
    let resources = task_resources(&executor.resources, ctx.roles.first().map(String::as_str))?;
    if executor.r#type != Some(ExecutorType::Default as i32) && executor.command.is_none() {
        return Err("a CUSTOM executor needs a 'command'".to_string());
    }
    if let Some(existing) = (ctx.executors)(&executor.executor_id.value) {
        let mut a = existing.clone();
        let mut b = executor.clone();
        a.framework_id = None;
        b.framework_id = None;
        // The running executor's resources carry the allocation info the
        // master added; Mesos injects it into the new operation before
        // comparing (src/master/master.cpp, `injectAllocationInfo`), so it
        // is no difference.
        for r in a.resources.iter_mut().chain(b.resources.iter_mut()) {
            r.allocation_info = None;
        }
        if a != b {
            return Err(format!(
                "executor '{}' is already running with a different ExecutorInfo",
                executor.executor_id.value
            ));
        }
    }
    check_resource_roles(&resources, ctx)?;
    Ok(resources)
}

/// What one task consumes from the offer: its resources plus those of a new
/// executor.
pub struct Checked {
    pub consumed: Resources,
    pub task_resources: Resources,
}

/// Validates a LAUNCH task against the offered resources still unused.
pub fn validate_task(
    task: &TaskInfo,
    remaining: &Resources,
    role: Option<&str>,
    seen: &mut HashSet<String>,
    ctx: &Context<'_>,
) -> Result<Checked, String> {
    check_id("task_id", &task.task_id.value)?;
    if (ctx.known_tasks)(&task.task_id.value) || !seen.insert(task.task_id.value.clone()) {
        return Err(format!(
            "task id '{}' is already in use",
            task.task_id.value
        ));
    }
    if task.agent_id.value != ctx.agent_id {
        return Err(format!(
            "task uses agent {} but the offers are for agent {}",
            task.agent_id.value, ctx.agent_id
        ));
    }
    match (&task.executor, &task.command) {
        (Some(_), Some(_)) => {
            return Err("a task must set exactly one of 'executor' and 'command', not both".into());
        }
        (None, None) => {
            return Err("a task must set exactly one of 'executor' and 'command'".into());
        }
        _ => {}
    }
    let resources = task_resources(&task.resources, role)?;
    if resources.is_empty() {
        return Err("a task must use some resources".to_string());
    }
    check_resource_roles(&resources, ctx)?;
    check_limits(task, &resources)?;
    let mut consumed = resources.clone();
    match &task.executor {
        None => {
            if share_cgroups(task) == Some(false) {
                return Err(
                    "'container.linux_info.share_cgroups' is false, but a command task (LAUNCH \
                     without an executor) always shares its command executor's cgroups: only \
                     tasks in a task group (LAUNCH_GROUP) may set share_cgroups=false; drop the \
                     field or launch the task with LAUNCH_GROUP"
                        .to_string(),
                );
            }
        }
        Some(executor) => {
            if executor.r#type == Some(ExecutorType::Default as i32) {
                return Err("LAUNCH cannot use the DEFAULT executor; use LAUNCH_GROUP".into());
            }
            let executor_resources = check_executor(executor, ctx)?;
            if (ctx.executors)(&executor.executor_id.value).is_none() {
                consumed += executor_resources;
            }
        }
    }
    if !remaining.contains(&consumed) {
        return Err(format!(
            "task uses more resources ({}) than the offers have left ({})",
            display(&consumed),
            display(remaining)
        ));
    }
    Ok(Checked {
        consumed,
        task_resources: resources,
    })
}

/// Validates a LAUNCH_GROUP; the error applies to every task in the group.
pub fn validate_task_group(
    executor: &ExecutorInfo,
    tasks: &[TaskInfo],
    remaining: &Resources,
    role: Option<&str>,
    seen: &mut HashSet<String>,
    ctx: &Context<'_>,
) -> Result<(Resources, Vec<Resources>), String> {
    if executor.r#type != Some(ExecutorType::Default as i32) {
        return Err("LAUNCH_GROUP needs an executor of type DEFAULT".to_string());
    }
    if tasks.is_empty() {
        return Err("a task group must have at least one task".to_string());
    }
    let executor_resources = check_executor(executor, ctx)?;
    let existing = (ctx.executors)(&executor.executor_id.value).is_some();
    let mut consumed = if existing {
        Resources::new()
    } else {
        if executor_resources.is_empty() {
            return Err("a new DEFAULT executor needs resources".to_string());
        }
        executor_resources
    };
    let mut share: Option<bool> = None;
    let mut per_task = Vec::with_capacity(tasks.len());
    for task in tasks {
        check_id("task_id", &task.task_id.value)?;
        if (ctx.known_tasks)(&task.task_id.value) || !seen.insert(task.task_id.value.clone()) {
            return Err(format!(
                "task id '{}' is already in use",
                task.task_id.value
            ));
        }
        if task.agent_id.value != ctx.agent_id {
            return Err(format!(
                "task '{}' uses agent {} but the offers are for agent {}",
                task.task_id.value, task.agent_id.value, ctx.agent_id
            ));
        }
        if task.executor.is_some() {
            return Err(format!(
                "task '{}' in a task group must not set 'executor'",
                task.task_id.value
            ));
        }
        let resources = task_resources(&task.resources, role)?;
        if resources.is_empty() {
            return Err(format!("task '{}' uses no resources", task.task_id.value));
        }
        check_resource_roles(&resources, ctx)?;
        check_limits(task, &resources)?;
        let value = share_cgroups(task).unwrap_or(true);
        if !task.limits.is_empty() && value {
            return Err(format!(
                "task '{}' sets resource limits, which in a task group need \
                 'container.linux_info.share_cgroups' to be false (its own cgroups)",
                task.task_id.value
            ));
        }
        match share {
            Some(prev) if prev != value => {
                return Err(
                    "all tasks of one executor must use the same 'share_cgroups' value".into(),
                );
            }
            _ => share = Some(value),
        }
        consumed += resources.clone();
        per_task.push(resources);
    }
    if !remaining.contains(&consumed) {
        return Err(format!(
            "task group uses more resources ({}) than the offers have left ({})",
            display(&consumed),
            display(remaining)
        ));
    }
    Ok((consumed, per_task))
}

pub fn display(resources: &Resources) -> String {
    resources
        .iter()
        .map(|r| tepui_proto::resources::DisplayResource(r).to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks what ACCEPT's operations are before any offer is used: each needs
/// a type this master applies, and an operation id must be a valid id.
/// Mesos's JSON parsing refuses a type it does not know (400) and its
/// `Master::accept` ignores `UNKNOWN`; tepui refuses both, and the types it
/// does not implement, so that a framework never has its offer consumed by
/// an operation that silently did nothing.
pub fn check_operations(ops: &[tepui_proto::v1::offer::Operation]) -> Result<(), String> {
    use tepui_proto::v1::offer::operation::Type as OpType;
    for (i, op) in ops.iter().enumerate() {
        let field = format!("accept.operations[{i}].type");
        let kind = match op.r#type {
            None => return Err(format!("'{field}' must be present")),
            Some(t) => OpType::try_from(t).map_err(|_| format!("'{field}' {t} is not known"))?,
        };
        match kind {
            OpType::Launch
            | OpType::LaunchGroup
            | OpType::Reserve
            | OpType::Unreserve
            | OpType::Create
            | OpType::Destroy
            | OpType::GrowVolume
            | OpType::ShrinkVolume => {}
            OpType::Unknown => return Err(format!("'{field}' must not be UNKNOWN")),
            other => {
                return Err(format!(
                    "'{field}' {} is not supported by this master",
                    other.as_str_name()
                ));
            }
        }
        if let Some(id) = &op.id {
            check_id(&format!("accept.operations[{i}].id"), &id.value)?;
        }
    }
    Ok(())
}
