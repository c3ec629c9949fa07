//! Property tests over every message type of the schema: random messages are
//! generated from the descriptors, so new fields are covered without new code.
//!
//! - protobuf -> JSON -> protobuf gives the same message;
//! - JSON -> protobuf -> JSON gives the same document;
//! - arbitrary bytes and arbitrary JSON never make a decoder panic.

use proptest::prelude::*;
use prost::Message;
use prost_reflect::{
    Cardinality, DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use tepui_proto::DESCRIPTOR_POOL;
use tepui_proto::json::{self, decode_dynamic, encode_dynamic};

/// Deterministic generator state: proptest supplies the seed, so a failure is
/// reproducible from the seed proptest prints.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*: tiny and good enough to pick fields and values.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn string(&mut self) -> String {
        const PIECES: [&str; 10] = ["a", "Z", "9", " ", "\"", "\\", "é", "ß", "🚀", "\n"];
        (0..self.below(8))
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn double(&mut self) -> f64 {
        match self.below(10) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => 0.0,
            3 => (self.next() % 100_000) as f64 / 1000.0,
            _ => {
                let f = f64::from_bits(self.next());
                if f.is_finite() { f } else { 1.5 }
            }
        }
    }
}

fn message_names() -> Vec<String> {
    DESCRIPTOR_POOL
        .all_messages()
        .filter(|m| !m.is_map_entry())
        .filter(|m| m.full_name().starts_with("mesos.") || m.full_name().starts_with("tepui."))
        .map(|m| m.full_name().to_string())
        .collect()
}

fn scalar_value(g: &mut Gen, kind: &Kind, depth: u32) -> Value {
    match kind {
        Kind::Double => Value::F64(g.double()),
        Kind::Float => Value::F32({
            let f = g.double() as f32;
            if f.is_nan() { 0.5 } else { f }
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(g.next() as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(g.next() as i64),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(g.next() as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(g.next()),
        Kind::Bool => Value::Bool(g.chance(50)),
        Kind::String => Value::String(g.string()),
        Kind::Bytes => Value::Bytes((0..g.below(12)).map(|_| g.next() as u8).collect()),
        Kind::Enum(e) => {
            let values: Vec<_> = e.values().collect();
            Value::EnumNumber(values[g.below(values.len() as u64) as usize].number())
        }
        Kind::Message(m) => Value::Message(message(g, m.clone(), depth + 1)),
    }
}

fn map_key(g: &mut Gen, kind: &Kind) -> MapKey {
    match scalar_value(g, kind, 0) {
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(n) => MapKey::I32(n),
        Value::I64(n) => MapKey::I64(n),
        Value::U32(n) => MapKey::U32(n),
        Value::U64(n) => MapKey::U64(n),
        Value::String(s) => MapKey::String(s),
        _ => MapKey::String(String::new()),
    }
}

/// A random message: required fields always set (so it is valid), optional
/// ones half the time, less as depth grows, so recursion ends.
fn message(g: &mut Gen, desc: MessageDescriptor, depth: u32) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let required = field.cardinality() == Cardinality::Required;
        let odds = if depth > 3 {
            0
        } else {
            50 - 10 * u64::from(depth)
        };
        if !required && !g.chance(odds) {
            continue;
        }
        if field.containing_oneof().is_some() && !required && g.chance(50) {
            continue;
        }
        let kind = field.kind();
        let value = if field.is_map() {
            let Kind::Message(entry) = &kind else {
                continue;
            };
            let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let entries = (0..1 + g.below(3))
                .map(|_| (map_key(g, &kf.kind()), scalar_value(g, &vf.kind(), depth)))
                .collect();
            Value::Map(entries)
        } else if field.is_list() {
            Value::List(
                (0..1 + g.below(3))
                    .map(|_| scalar_value(g, &kind, depth))
                    .collect(),
            )
        } else {
            scalar_value(g, &kind, depth)
        };
        msg.set_field(&field, value);
    }
    msg
}

fn generated() -> impl Strategy<Value = DynamicMessage> {
    let names = message_names();
    (0..names.len(), any::<u64>()).prop_map(move |(idx, seed)| {
        let desc = DESCRIPTOR_POOL
            .get_message_by_name(&names[idx])
            .expect("listed message exists");
        message(&mut Gen(seed | 1), desc, 0)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn protobuf_to_json_to_protobuf(msg in generated()) {
        let bytes = msg.encode_to_vec();
        let from_bytes = DynamicMessage::decode(msg.descriptor(), bytes.as_slice()).unwrap();
        let text = encode_dynamic(&from_bytes).to_string();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let back = decode_dynamic(&parsed, msg.descriptor())
            .map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
        // Compared as messages: map entries have no defined wire order.
        prop_assert_eq!(back, from_bytes, "{}", text);
    }

    #[test]
    fn json_to_protobuf_to_json(msg in generated()) {
        let json1 = encode_dynamic(&msg);
        let decoded = decode_dynamic(&json1, msg.descriptor()).unwrap();
        let bytes = decoded.encode_to_vec();
        let again = DynamicMessage::decode(msg.descriptor(), bytes.as_slice()).unwrap();
        prop_assert_eq!(encode_dynamic(&again), json1);
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        use tepui_proto::v1::{scheduler, executor, agent, master, TaskInfo, Resource};
        let _ = json::from_slice::<scheduler::Call>(&bytes);
        let _ = json::from_slice::<executor::Call>(&bytes);
        let _ = json::from_slice::<agent::Call>(&bytes);
        let _ = json::from_slice::<master::Call>(&bytes);
        let _ = json::from_protobuf::<scheduler::Call>(&bytes);
        let _ = json::from_protobuf::<scheduler::Event>(&bytes);
        let _ = json::from_protobuf::<TaskInfo>(&bytes);
        let _ = json::from_protobuf::<Resource>(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_the_decoder(doc in arbitrary_json(), idx in any::<prop::sample::Index>()) {
        let names = message_names();
        let desc = DESCRIPTOR_POOL.get_message_by_name(&names[idx.index(names.len())]).unwrap();
        let _ = decode_dynamic(&doc, desc);
    }
}

/// JSON documents whose keys are mostly real field names, so the decoder's
/// type checks (not just its unknown-field skipping) see garbage.
fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let keys = prop::sample::select(vec![
        "type",
        "value",
        "name",
        "scalar",
        "ranges",
        "range",
        "begin",
        "end",
        "set",
        "item",
        "resources",
        "limits",
        "task_id",
        "state",
        "uuid",
        "data",
        "accept",
        "operations",
        "launch_group",
        "executor",
        "tasks",
        "command",
        "uris",
        "shell",
        "arguments",
        "nanoseconds",
        "refuse_seconds",
        "labels",
        "reservations",
        "role",
        "cpus",
        "mem",
    ]);
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(J::Null, J::Number)),
        ".{0,12}".prop_map(J::String),
        Just(J::String("Infinity".into())),
        Just(J::String("SCALAR".into())),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                J::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}
