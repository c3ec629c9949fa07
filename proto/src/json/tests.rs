//! Edge cases of the mapping: what Mesos clients send that proto3 JSON would
//! treat differently, and every class of bad input.

use bytes::Bytes;
use serde_json::json;

use super::{JsonError, from_protobuf, from_str, from_value, to_value};
use crate::v1::scheduler::{Call, call};
use crate::v1::{CommandInfo, Offer, Resource, TaskStatus, TimeInfo, value};

fn field_err<T: prost::Message + prost::Name + Default + std::fmt::Debug>(
    j: serde_json::Value,
) -> (String, String) {
    match from_value::<T>(&j) {
        Err(JsonError::Field { path, message }) => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn int64_accepts_numbers_and_numeric_strings_and_emits_numbers() {
    let t: TimeInfo = from_value(&json!({"nanoseconds": "-1700000000000000000"})).unwrap();
    assert_eq!(t.nanoseconds, -1_700_000_000_000_000_000);
    let t: TimeInfo = from_value(&json!({"nanoseconds": 9_007_199_254_740_993_i64})).unwrap();
    assert_eq!(
        t.nanoseconds, 9_007_199_254_740_993,
        "no precision lost above 2^53"
    );
    assert_eq!(
        to_value(&t),
        json!({"nanoseconds": 9_007_199_254_740_993_i64})
    );
    let r: value::Range = from_value(&json!({"begin": "0", "end": u64::MAX})).unwrap();
    assert_eq!(r.end, u64::MAX);
    let r: value::Range = from_value(&json!({"begin": 1e3, "end": 2000})).unwrap();
    assert_eq!(r.begin, 1000, "an integral float is an integer");
}

#[test]
fn integers_out_of_range_or_fractional_name_the_field() {
    let (path, msg) = field_err::<value::Range>(json!({"begin": -1, "end": 2}));
    assert_eq!(path, "begin");
    assert!(msg.contains("unsigned"), "{msg}");
    let (path, _) = field_err::<value::Range>(json!({"begin": 1, "end": 2.5}));
    assert_eq!(path, "end");
    let (path, msg) =
        field_err::<crate::v1::scheduler::event::Failure>(json!({"status": 4_294_967_296_i64}));
    assert_eq!(path, "status");
    assert!(msg.contains("32-bit"), "{msg}");
    let (_, msg) = field_err::<TimeInfo>(json!({"nanoseconds": "12abc"}));
    assert!(msg.contains("12abc"), "{msg}");
}

#[test]
fn doubles_accept_infinity_and_nan_spellings() {
    for (text, expect) in [
        ("Infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("inf", f64::INFINITY),
        ("2.5", 2.5),
    ] {
        let s: value::Scalar = from_value(&json!({"value": text})).unwrap();
        assert_eq!(s.value, expect, "{text}");
    }
    let s: value::Scalar = from_value(&json!({"value": "NaN"})).unwrap();
    assert!(s.value.is_nan());
    assert_eq!(to_value(&s), json!({"value": "NaN"}));
    let (path, _) = field_err::<value::Scalar>(json!({"value": "lots"}));
    assert_eq!(path, "value");
}

#[test]
fn unknown_fields_are_ignored_and_camel_case_is_accepted() {
    let c: Call = from_value(&json!({
        "type": "DECLINE",
        "frameworkId": {"value": "fw"},
        "some_future_field": {"nested": [1, 2, 3]},
    }))
    .unwrap();
    assert_eq!(c.r#type(), call::Type::Decline);
    assert_eq!(c.framework_id.map(|f| f.value), Some("fw".to_string()));
}

#[test]
fn unknown_enum_names_are_dropped_on_optional_fields_and_fatal_on_required() {
    let c: Call = from_value(&json!({"type": "SOMETHING_NEW"})).unwrap();
    assert_eq!(c.r#type, None);

    let (path, msg) = field_err::<Resource>(json!({"name": "cpus", "type": "SCALER"}));
    assert_eq!(path, "type");
    assert!(
        msg.contains("\"SCALER\"") && msg.contains("SCALAR"),
        "{msg}"
    );

    let (path, _) =
        field_err::<TaskStatus>(json!({"task_id": {"value": "t"}, "state": "TASK_RUNNNING"}));
    assert_eq!(path, "state");
}

#[test]
fn wrong_types_name_the_full_path() {
    let (path, msg) = field_err::<Call>(json!({
        "type": "ACCEPT",
        "accept": {"offer_ids": [{"value": "o1"}, {"value": 7}]}
    }));
    assert_eq!(path, "accept.offer_ids[1].value");
    assert_eq!(msg, "expected a string, found a number");

    let (path, msg) = field_err::<Call>(json!({"accept": {"offer_ids": {"value": "o1"}}}));
    assert_eq!(path, "accept.offer_ids");
    assert!(msg.contains("array"), "{msg}");

    let (path, _) = field_err::<Call>(json!({"accept": []}));
    assert_eq!(path, "accept");

    let (path, _) = field_err::<CommandInfo>(json!({"shell": "yes"}));
    assert_eq!(path, "shell");

    let err = from_value::<Call>(&json!([1, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "message: expected an object for mesos.v1.scheduler.Call, found an array"
    );
}

#[test]
fn missing_required_fields_are_reported_with_their_path() {
    let (path, msg) = field_err::<Resource>(json!({"type": "SCALAR"}));
    assert_eq!(
        (path.as_str(), msg.as_str()),
        ("name", "required field is missing")
    );

    let (path, _) = field_err::<Call>(json!({
        "type": "ACCEPT",
        "accept": {"offer_ids": [{"value": "o1"}, {}]}
    }));
    assert_eq!(path, "accept.offer_ids[1].value");

    let (path, _) = field_err::<crate::v1::TaskInfo>(json!({
        "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
        "limits": {"cpus": {}}
    }));
    assert_eq!(path, "limits.cpus.value");
}

#[test]
fn bytes_are_base64_and_bad_base64_is_an_error() {
    let s: TaskStatus = from_value(&json!({
        "task_id": {"value": "t"}, "state": "TASK_RUNNING", "data": "aGk"
    }))
    .unwrap();
    assert_eq!(
        s.data,
        Some(Bytes::from_static(b"hi")),
        "unpadded base64 accepted"
    );
    let (path, _) = field_err::<TaskStatus>(json!({
        "task_id": {"value": "t"}, "state": "TASK_RUNNING", "data": "!!!"
    }));
    assert_eq!(path, "data");
}

#[test]
fn nulls_mean_absent_except_inside_arrays_and_maps() {
    let c: Call = from_value(&json!({"type": null, "framework_id": null})).unwrap();
    assert_eq!(c, Call::default());
    let (path, _) = field_err::<Call>(json!({"accept": {"offer_ids": [null]}}));
    assert_eq!(path, "accept.offer_ids[0]");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = from_str::<Call>("{\n  \"type\": \"ACCEPT\"\n  \"x\": 1\n}").unwrap_err();
    assert_eq!(
        err,
        JsonError::Syntax {
            line: 3,
            column: 3,
            message: "expected `,` or `}`".into()
        }
    );
    assert!(matches!(
        from_str::<Call>(""),
        Err(JsonError::Syntax { .. })
    ));
    assert!(matches!(
        from_str::<Call>("{} trailing"),
        Err(JsonError::Syntax { .. })
    ));
}

#[test]
fn protobuf_decoding_checks_required_fields_and_reports_garbage() {
    let offer = Offer::default();
    let err = from_protobuf::<Resource>(&[]).unwrap_err();
    assert_eq!(err.path(), Some("name"));
    let bytes = prost::Message::encode_to_vec(&offer);
    let back: Offer = from_protobuf(&bytes).unwrap();
    assert_eq!(back, offer);
    let err = from_protobuf::<Call>(&[0x0a, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, JsonError::Protobuf { .. }), "{err}");
    assert!(err.to_string().contains("mesos.v1.scheduler.Call"), "{err}");
}

#[test]
fn doubles_survive_text_exactly() {
    // serde_json's default float parser is off by one ulp on some inputs; the
    // round-trip property test found 7.444429718811675e143.
    for v in [
        7.444_429_718_811_675e143,
        0.1,
        1.0 / 3.0,
        f64::MAX,
        f64::MIN_POSITIVE,
    ] {
        let s = value::Scalar { value: v };
        let text = super::to_string(&s);
        let back: value::Scalar = from_str(&text).unwrap();
        assert_eq!(back.value.to_bits(), v.to_bits(), "{text}");
    }
}
