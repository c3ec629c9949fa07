//! Golden tests of the JSON encoding: each message is built in Rust, encoded,
//! and compared with the exact JSON Mesos emits; the golden also decodes back
//! into the same message.

use prost::{Message, Name};
use serde_json::{Value as Json, json};
use tepui_proto::json;
use tepui_proto::v1::scheduler::{Event, event};
use tepui_proto::v1::{
    AgentId, ContainerId, ExecutorId, FrameworkId, MasterInfo, Offer, OfferId, OperationState,
    OperationStatus, Resource, TaskId, TaskState, TaskStatus, Value, resource, task_status, value,
};

fn assert_golden<T: Message + Name + Default + PartialEq + std::fmt::Debug>(msg: &T, golden: Json) {
    assert_eq!(
        json::to_value(msg),
        golden,
        "encoding of {}",
        T::full_name()
    );
    let decoded: T = json::from_value(&golden).expect("golden decodes");
    assert_eq!(&decoded, msg, "decoding of the {} golden", T::full_name());
}

fn scalar_resource(name: &str, v: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    }
}

fn framework_id() -> FrameworkId {
    FrameworkId {
        value: "fw-1".into(),
    }
}

fn agent_id() -> AgentId {
    AgentId {
        value: "agent-1".into(),
    }
}

#[test]
fn resource_with_a_reservation_stack() {
    let mut r = scalar_resource("cpus", 8.0);
    r.reservations = vec![
        resource::ReservationInfo {
            r#type: Some(resource::reservation_info::Type::Static as i32),
            role: Some("eng".into()),
            ..Default::default()
        },
        resource::ReservationInfo {
            r#type: Some(resource::reservation_info::Type::Dynamic as i32),
            role: Some("eng/backend".into()),
            principal: Some("ops".into()),
            labels: Some(tepui_proto::v1::Labels {
                labels: vec![tepui_proto::v1::Label {
                    key: "owner".into(),
                    value: Some("alice".into()),
                }],
            }),
        },
    ];
    r.allocation_info = Some(resource::AllocationInfo {
        role: Some("eng/backend".into()),
    });
    assert_golden(
        &r,
        json!({
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 8.0},
            "allocation_info": {"role": "eng/backend"},
            "reservations": [
                {"type": "STATIC", "role": "eng"},
                {"type": "DYNAMIC", "role": "eng/backend", "principal": "ops",
                 "labels": {"labels": [{"key": "owner", "value": "alice"}]}}
            ]
        }),
    );
}

fn task_status() -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: "task-1".into(),
        },
        state: TaskState::TaskRunning as i32,
        message: Some("started".into()),
        source: Some(task_status::Source::Executor as i32),
        agent_id: Some(agent_id()),
        executor_id: Some(ExecutorId {
            value: "exec-1".into(),
        }),
        timestamp: Some(1_700_000_000.25),
        uuid: Some(bytes::Bytes::from_static(&[
            0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
            0x10, 0x20,
        ])),
        healthy: Some(true),
        ..Default::default()
    }
}

fn task_status_golden() -> Json {
    json!({
        "task_id": {"value": "task-1"},
        "state": "TASK_RUNNING",
        "message": "started",
        "source": "SOURCE_EXECUTOR",
        "agent_id": {"value": "agent-1"},
        "executor_id": {"value": "exec-1"},
        "timestamp": 1700000000.25,
        "uuid": "3q2+7wABAgP6+/z9/v8QIA==",
        "healthy": true
    })
}

#[test]
fn task_status_uuid_is_base64() {
    assert_golden(&task_status(), task_status_golden());
}

fn offer() -> Offer {
    Offer {
        id: OfferId {
            value: "offer-1".into(),
        },
        framework_id: framework_id(),
        agent_id: agent_id(),
        hostname: "host-1".into(),
        resources: vec![
            scalar_resource("cpus", 24.0),
            scalar_resource("mem", 24576.0),
            Resource {
                name: "ports".into(),
                r#type: value::Type::Ranges as i32,
                ranges: Some(value::Ranges {
                    range: vec![
                        value::Range {
                            begin: 21000,
                            end: 24000,
                        },
                        value::Range {
                            begin: 30000,
                            end: 34000,
                        },
                    ],
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn offer_golden() -> Json {
    json!({
        "id": {"value": "offer-1"},
        "framework_id": {"value": "fw-1"},
        "agent_id": {"value": "agent-1"},
        "hostname": "host-1",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 24.0}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 24576.0}},
            {"name": "ports", "type": "RANGES",
             "ranges": {"range": [{"begin": 21000, "end": 24000}, {"begin": 30000, "end": 34000}]}}
        ]
    })
}

#[test]
fn offer_port_ranges_are_numbers() {
    assert_golden(&offer(), offer_golden());
    // The range bounds are uint64: numbers on output, never strings.
    let encoded = json::to_value(&offer());
    assert!(encoded["resources"][2]["ranges"]["range"][0]["begin"].is_u64());
}

#[test]
fn container_id_with_parents() {
    let id = ContainerId {
        value: "task-c".into(),
        parent: Some(Box::new(ContainerId {
            value: "executor-b".into(),
            parent: Some(Box::new(ContainerId {
                value: "root-a".into(),
                parent: None,
            })),
        })),
    };
    assert_golden(
        &id,
        json!({"value": "task-c", "parent": {"value": "executor-b", "parent": {"value": "root-a"}}}),
    );
}

fn event(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

#[test]
fn one_scheduler_event_of_each_type() {
    let mut cases: Vec<(Event, Json)> = Vec::new();

    let mut e = event(event::Type::Subscribed);
    e.subscribed = Some(event::Subscribed {
        framework_id: framework_id(),
        heartbeat_interval_seconds: Some(15.0),
        master_info: Some(MasterInfo {
            id: "master-1".into(),
            ip: 16_777_343,
            port: 5050,
            hostname: Some("localhost".into()),
            version: Some("1.11.0".into()),
            ..Default::default()
        }),
    });
    cases.push((
        e,
        json!({"type": "SUBSCRIBED", "subscribed": {
            "framework_id": {"value": "fw-1"},
            "heartbeat_interval_seconds": 15.0,
            "master_info": {"id": "master-1", "ip": 16777343, "port": 5050,
                            "hostname": "localhost", "version": "1.11.0"}}}),
    ));

    let mut e = event(event::Type::Offers);
    e.offers = Some(event::Offers {
        offers: vec![offer()],
    });
    cases.push((
        e,
        json!({"type": "OFFERS", "offers": {"offers": [offer_golden()]}}),
    ));

    let mut e = event(event::Type::InverseOffers);
    e.inverse_offers = Some(event::InverseOffers {
        inverse_offers: vec![tepui_proto::v1::InverseOffer {
            id: OfferId {
                value: "inverse-1".into(),
            },
            framework_id: framework_id(),
            agent_id: Some(agent_id()),
            unavailability: tepui_proto::v1::Unavailability {
                start: tepui_proto::v1::TimeInfo {
                    nanoseconds: 1_700_000_000_000_000_000,
                },
                duration: Some(tepui_proto::v1::DurationInfo {
                    nanoseconds: 3_600_000_000_000,
                }),
            },
            ..Default::default()
        }],
    });
    cases.push((
        e,
        json!({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [{
            "id": {"value": "inverse-1"},
            "agent_id": {"value": "agent-1"},
            "framework_id": {"value": "fw-1"},
            "unavailability": {"start": {"nanoseconds": 1700000000000000000_i64},
                               "duration": {"nanoseconds": 3600000000000_i64}}}]}}),
    ));

    let mut e = event(event::Type::Rescind);
    e.rescind = Some(event::Rescind {
        offer_id: OfferId {
            value: "offer-1".into(),
        },
    });
    cases.push((
        e,
        json!({"type": "RESCIND", "rescind": {"offer_id": {"value": "offer-1"}}}),
    ));

    let mut e = event(event::Type::RescindInverseOffer);
    e.rescind_inverse_offer = Some(event::RescindInverseOffer {
        inverse_offer_id: OfferId {
            value: "inverse-1".into(),
        },
    });
    cases.push((
        e,
        json!({"type": "RESCIND_INVERSE_OFFER",
               "rescind_inverse_offer": {"inverse_offer_id": {"value": "inverse-1"}}}),
    ));

    let mut e = event(event::Type::Update);
    e.update = Some(event::Update {
        status: task_status(),
    });
    cases.push((
        e,
        json!({"type": "UPDATE", "update": {"status": task_status_golden()}}),
    ));

    let mut e = event(event::Type::UpdateOperationStatus);
    e.update_operation_status = Some(event::UpdateOperationStatus {
        status: OperationStatus {
            operation_id: Some(tepui_proto::v1::OperationId {
                value: "op-1".into(),
            }),
            state: OperationState::OperationFinished as i32,
            agent_id: Some(agent_id()),
            ..Default::default()
        },
    });
    cases.push((
        e,
        json!({"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {
            "operation_id": {"value": "op-1"}, "state": "OPERATION_FINISHED",
            "agent_id": {"value": "agent-1"}}}}),
    ));

    let mut e = event(event::Type::Message);
    e.message = Some(event::Message {
        agent_id: agent_id(),
        executor_id: ExecutorId {
            value: "exec-1".into(),
        },
        data: bytes::Bytes::from_static(b"hello"),
    });
    cases.push((
        e,
        json!({"type": "MESSAGE", "message": {"agent_id": {"value": "agent-1"},
               "executor_id": {"value": "exec-1"}, "data": "aGVsbG8="}}),
    ));

    let mut e = event(event::Type::Failure);
    e.failure = Some(event::Failure {
        agent_id: Some(agent_id()),
        executor_id: Some(ExecutorId {
            value: "exec-1".into(),
        }),
        status: Some(137),
    });
    cases.push((
        e,
        json!({"type": "FAILURE", "failure": {"agent_id": {"value": "agent-1"},
               "executor_id": {"value": "exec-1"}, "status": 137}}),
    ));

    let mut e = event(event::Type::Error);
    e.error = Some(event::Error {
        message: "Framework has been removed".into(),
    });
    cases.push((
        e,
        json!({"type": "ERROR", "error": {"message": "Framework has been removed"}}),
    ));

    cases.push((event(event::Type::Heartbeat), json!({"type": "HEARTBEAT"})));

    // Every event type but UNKNOWN is covered exactly once.
    let mut covered: Vec<i32> = cases.iter().map(|(e, _)| e.r#type.unwrap_or(0)).collect();
    covered.sort_unstable();
    let mut all: Vec<i32> = (1..=11).collect();
    all.sort_unstable();
    assert_eq!(covered, all);

    for (msg, golden) in cases {
        assert_golden(&msg, golden);
    }
}

#[test]
fn scalar_shorthand_is_accepted_everywhere_a_scalar_is_expected() {
    let r: Resource = json::from_value(&json!({"name": "mem", "type": "SCALAR", "scalar": 512}))
        .expect("decodes");
    assert_eq!(r.scalar, Some(value::Scalar { value: 512.0 }));
    let v: Value =
        json::from_value(&json!({"type": "SCALAR", "scalar": "Infinity"})).expect("decodes");
    assert_eq!(v.scalar.map(|s| s.value), Some(f64::INFINITY));
}
