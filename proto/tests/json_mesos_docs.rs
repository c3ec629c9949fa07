//! The ACCEPT payloads of Mesos's "Running Workloads" document decode as
//! written (with the document's missing comma fixed), field by field.

use tepui_proto::json::{self, JsonError};
use tepui_proto::v1::scheduler::{Call, call};
use tepui_proto::v1::{
    ContainerInfo, Resource, TaskInfo, container_info, executor_info, offer::operation, value,
};

const LAUNCH_GROUP: &str = include_str!("fixtures/accept_launch_group.json");
const LAUNCH: &str = include_str!("fixtures/accept_launch.json");
const LAUNCH_GROUP_AS_DOCUMENTED: &str =
    include_str!("fixtures/accept_launch_group.as_documented.json");
const LAUNCH_AS_DOCUMENTED: &str = include_str!("fixtures/accept_launch.as_documented.json");

fn scalar(resources: &[Resource], name: &str) -> f64 {
    let matching: Vec<_> = resources.iter().filter(|r| r.name == name).collect();
    assert_eq!(matching.len(), 1, "exactly one {name} resource");
    let r = matching[0];
    assert_eq!(r.r#type(), value::Type::Scalar);
    r.scalar.expect("scalar value").value
}

/// Checks everything both documents share about the one task.
fn check_task(task: &TaskInfo, share_cgroups: bool) {
    assert_eq!(task.name, "Name of the task");
    assert_eq!(task.task_id.value, "task-000001");
    assert_eq!(task.agent_id.value, "83J792-S8FH-W397K-2861-S01");
    assert_eq!(task.resources.len(), 3);
    assert_eq!(scalar(&task.resources, "cpus"), 1.0);
    assert_eq!(scalar(&task.resources, "mem"), 512.0);
    assert_eq!(scalar(&task.resources, "disk"), 1024.0);

    assert_eq!(task.limits.len(), 2);
    let cpus = task.limits["cpus"].value;
    assert!(
        cpus.is_infinite() && cpus.is_sign_positive(),
        "cpu limit {cpus}"
    );
    assert_eq!(task.limits["mem"].value, 4096.0);

    let command = task.command.as_ref().expect("command");
    assert_eq!(command.value(), "./my-artifact/run.sh");
    assert_eq!(
        command.shell, None,
        "shell is unset (Mesos defaults it to true)"
    );
    assert_eq!(command.uris.len(), 1);

    let container: &ContainerInfo = task.container.as_ref().expect("container");
    assert_eq!(container.r#type(), container_info::Type::Mesos);
    let linux = container.linux_info.as_ref().expect("linux_info");
    assert_eq!(linux.share_cgroups, Some(share_cgroups));
}

fn check_accept(call: &Call) -> &tepui_proto::v1::scheduler::call::Accept {
    assert_eq!(
        call.framework_id.as_ref().map(|f| f.value.as_str()),
        Some("12220-3440-12532-2345")
    );
    assert_eq!(call.r#type(), call::Type::Accept);
    let accept = call.accept.as_ref().expect("accept");
    let offer_ids: Vec<_> = accept.offer_ids.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(offer_ids, ["12220-3440-12532-O12"]);
    let filters = accept.filters.as_ref().expect("filters");
    assert_eq!(filters.refuse_seconds, Some(5.0));
    assert_eq!(accept.operations.len(), 1);
    accept
}

#[test]
fn launch_group_payload_decodes_field_by_field() {
    let call: Call = json::from_str(LAUNCH_GROUP).expect("decodes");
    let accept = check_accept(&call);
    let op = &accept.operations[0];
    assert_eq!(op.r#type(), operation::Type::LaunchGroup);
    let launch_group = op.launch_group.as_ref().expect("launch_group");

    let executor = &launch_group.executor;
    assert_eq!(executor.r#type(), executor_info::Type::Default);
    assert_eq!(executor.executor_id.value, "28649-27G5-291H9-3816-04");
    assert_eq!(
        executor.framework_id.as_ref().map(|f| f.value.as_str()),
        Some("12220-3440-12532-2345")
    );
    assert_eq!(executor.resources.len(), 3);
    assert_eq!(scalar(&executor.resources, "cpus"), 0.1);
    assert_eq!(scalar(&executor.resources, "mem"), 32.0);
    assert_eq!(scalar(&executor.resources, "disk"), 32.0);

    assert_eq!(launch_group.task_group.tasks.len(), 1);
    let task = &launch_group.task_group.tasks[0];
    check_task(task, false);
    let uri = &task.command.as_ref().expect("command").uris[0];
    assert_eq!(uri.value, "https://my-server.com/my-artifact.tar.gz");
    assert_eq!(uri.extract, None, "extract unset (defaults to true)");
}

#[test]
fn launch_payload_decodes_field_by_field() {
    let call: Call = json::from_str(LAUNCH).expect("decodes");
    let accept = check_accept(&call);
    let op = &accept.operations[0];
    assert_eq!(op.r#type(), operation::Type::Launch);
    let launch = op.launch.as_ref().expect("launch");
    assert_eq!(launch.task_infos.len(), 1);
    check_task(&launch.task_infos[0], false);
    assert_eq!(
        launch.task_infos[0].command.as_ref().expect("command").uris[0].value,
        "https://my-server.com/my-artifact.tar.gz"
    );
}

#[test]
fn documented_text_with_missing_comma_is_rejected_with_line_and_column() {
    for (text, line) in [(LAUNCH_GROUP_AS_DOCUMENTED, 55), (LAUNCH_AS_DOCUMENTED, 34)] {
        let err = json::from_str::<Call>(text).expect_err("missing comma");
        match &err {
            JsonError::Syntax {
                line: l, column, ..
            } => {
                assert_eq!(*l, line, "{err}");
                // The fault is the `"command"` key that follows the limits object.
                let bad_line = text.lines().nth(line - 1).expect("line exists");
                assert_eq!(bad_line.find('"').map(|i| i + 1), Some(*column), "{err}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let shown = err.to_string();
        assert!(shown.contains(&format!("line {line}")), "{shown}");
        assert!(shown.contains("column"), "{shown}");
    }
}

#[test]
fn limits_are_emitted_in_canonical_form_and_decode_again() {
    let call: Call = json::from_str(LAUNCH_GROUP).expect("decodes");
    let encoded = json::to_value(&call);
    let limits =
        &encoded["accept"]["operations"][0]["launch_group"]["task_group"]["tasks"][0]["limits"];
    assert_eq!(
        limits,
        &serde_json::json!({"cpus": {"value": "Infinity"}, "mem": {"value": 4096.0}})
    );
    let again: Call = json::from_value(&encoded).expect("canonical form decodes");
    assert_eq!(again, call);
}
