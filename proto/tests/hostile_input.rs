//! Every decoder a daemon runs on what a client sent, fed arbitrary input:
//! it answers with an error, never a panic. (Message decoders also get
//! inputs that start out valid and are then mangled, to get past the first
//! byte.)

use proptest::prelude::*;
use prost::{Message, Name};
use tepui_proto::content::{self, MessageFormat, RequestFormat, ResponseFormat};
use tepui_proto::recordio::{Decoder, RecordIoCodec};
use tepui_proto::v1;

/// Both body formats of every Call a server decodes.
fn decode_all(bytes: &[u8]) {
    fn both<T: Message + Name + Default>(bytes: &[u8]) {
        let _ = content::decode_message::<T>(MessageFormat::Json, bytes);
        let _ = content::decode_message::<T>(MessageFormat::Protobuf, bytes);
        let _ = T::decode(bytes);
    }
    both::<v1::scheduler::Call>(bytes);
    both::<v1::executor::Call>(bytes);
    both::<v1::agent::Call>(bytes);
    both::<v1::master::Call>(bytes);
    both::<tepui_proto::link::AgentCall>(bytes);
}

/// JSON-ish text: brackets, quotes, field names and values a Call has, so
/// the generator reaches the decoder's deeper paths.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"type\"".to_string()),
        Just("\"SUBSCRIBE\"".to_string()),
        Just("\"LAUNCH_NESTED_CONTAINER\"".to_string()),
        Just("\"subscribe\"".to_string()),
        Just("\"framework_info\"".to_string()),
        Just("\"resources\"".to_string()),
        Just("\"scalar\"".to_string()),
        Just("\"value\"".to_string()),
        Just("\"container_id\"".to_string()),
        Just("\"parent\"".to_string()),
        Just("\"data\"".to_string()),
        Just("\"AAAA\"".to_string()),
        Just("\"@@\"".to_string()),
        Just("1e999".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("0.5".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        "\"[a-z_]{0,12}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn call_decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn call_decoders_never_panic_on_jsonish_text(text in jsonish()) {
        decode_all(text.as_bytes());
    }

    #[test]
    fn call_decoders_never_panic_on_mangled_valid_calls(
        at in any::<prop::sample::Index>(),
        with in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let call = v1::scheduler::Call {
            r#type: Some(v1::scheduler::call::Type::Subscribe as i32),
            subscribe: Some(v1::scheduler::call::Subscribe {
                framework_info: v1::FrameworkInfo {
                    user: "root".into(),
                    name: "x".into(),
                    roles: vec!["a/b".into()],
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        for format in [MessageFormat::Json, MessageFormat::Protobuf] {
            let mut bytes = content::encode_message(format, &call);
            let i = at.index(bytes.len());
            bytes[i] = with;
            decode_all(&bytes);
            bytes.truncate(cut.index(bytes.len() + 1));
            decode_all(&bytes);
        }
    }

    #[test]
    fn recordio_never_panics(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        digits in "[0-9]{0,30}\n[\\x00-\\xff]{0,40}",
    ) {
        let mut decoder = Decoder::with_max_record_size(1024);
        for chunk in &chunks {
            if decoder.feed(chunk).is_err() {
                break;
            }
        }
        let _ = decoder.finish();
        let mut decoder = Decoder::with_max_record_size(1024);
        let _ = decoder.feed(digits.as_bytes());
        let _ = decoder.finish();
        use tokio_util::codec::Decoder as _;
        let mut codec = RecordIoCodec::with_max_record_size(1024);
        let mut buf = bytes::BytesMut::from(digits.as_bytes());
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        let _ = codec.decode_eof(&mut buf);
    }

    #[test]
    fn content_negotiation_never_panics(
        a in "[ -~]{0,80}",
        b in "[ -~]{0,80}",
        media in "(application/(json|x-protobuf|recordio|\\*)|\\*/\\*|text/plain)(;q=[0-9.]{0,5})?(, ?)?",
        streaming in any::<bool>(),
    ) {
        let _ = RequestFormat::from_headers(Some(&a), Some(&b));
        let _ = RequestFormat::from_headers(Some(&media), None);
        let _ = MessageFormat::from_content_type(&a);
        let _ = ResponseFormat::from_headers(Some(&media), Some(&a), streaming);
        let _ = content::negotiate(Some(&a), Some(&b), streaming);
        let _ = content::negotiate(Some(&format!("{media}{a}")), Some(&media), streaming);
    }

    #[test]
    fn text_parsers_never_panic(text in "[ -~]{0,80}", numeric in "[0-9.eE+-]{0,30}(ns|us|ms|secs|mins|hrs|days|weeks)?") {
        let _ = tepui_proto::duration::parse_duration(&text);
        let _ = tepui_proto::duration::parse_duration(&numeric);
        let _ = tepui_proto::resources::parse_resources(&text, "*");
        let _ = tepui_proto::resources::parse_resources(&format!("cpus:{numeric};ports:[{numeric}]"), "*");
        let _ = tepui_proto::resources::parse_attributes(&text);
        let _ = tepui_proto::resources::role::parse_list(&text);
        let _ = tepui_proto::auth::parse_credentials(&text);
        let _ = tepui_proto::auth::parse_credential(&text);
        let _ = tepui_proto::auth::parse_basic(&text);
        let _ = tepui_proto::auth::acls::Acls::parse(&text);
        let _ = tepui_proto::auth::jwt::verify(&text, b"key", 0);
    }

    #[test]
    fn authentication_never_panics(header in "(Basic |Bearer )?[A-Za-z0-9+/=._-]{0,120}") {
        let auth = tepui_proto::auth::Authenticator {
            credentials: vec![tepui_proto::auth::Credential {
                principal: "p".into(),
                secret: "s".into(),
            }],
            jwt_keys: vec![b"key".to_vec()],
        };
        let _ = auth.authenticate(Some(&header), 0);
        let _ = tepui_proto::auth::jwt::verify(&header, b"key", u64::MAX);
    }
}
