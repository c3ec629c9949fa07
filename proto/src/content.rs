//! Content negotiation for Mesos's v1 HTTP APIs, on header strings so that
//! any HTTP stack can use it.
//!
//! Mesos's rules (`docs/*-http-api.md`, `docs/recordio.md`, the agent and
//! master `api` handlers):
//! - a request body is one message, `Content-Type: application/json` or
//!   `application/x-protobuf`; a streaming request (ATTACH_CONTAINER_INPUT)
//!   is `Content-Type: application/recordio` with the records' format in
//!   `Message-Content-Type`;
//! - a response's format comes from `Accept`, where a missing header,
//!   `*/*` or `application/*` mean JSON;
//! - a streaming response is always RecordIO-framed. With
//!   `Accept: application/json` (what scheduler and executor clients send on
//!   SUBSCRIBE) its Content-Type is the records' format; with
//!   `Accept: application/recordio` its Content-Type is
//!   `application/recordio` and `Message-Accept` picks the records' format,
//!   echoed in `Message-Content-Type`.
//!
//! Where Mesos is stricter than it needs to be (exact, case-sensitive header
//! comparison; the agent's 415/406 for a stray `Message-Content-Type` or
//! `Message-Accept` that the master silently ignores) this module is lenient:
//! every request Mesos accepts is accepted here, with the same result.

use bytes::BytesMut;
use prost::{Message, Name};

use crate::json::JsonError;
use crate::recordio;

pub const APPLICATION_JSON: &str = "application/json";
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";
pub const APPLICATION_RECORDIO: &str = "application/recordio";

pub const CONTENT_TYPE: &str = "Content-Type";
pub const ACCEPT: &str = "Accept";
pub const MESSAGE_CONTENT_TYPE: &str = "Message-Content-Type";
pub const MESSAGE_ACCEPT: &str = "Message-Accept";

/// Why a request's headers or body cannot be served; [`ContentError::status`]
/// gives the HTTP status Mesos answers with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContentError {
    #[error("missing Content-Type header: expected {APPLICATION_JSON} or {APPLICATION_PROTOBUF}")]
    MissingContentType,
    #[error(
        "missing {MESSAGE_CONTENT_TYPE} header: an {APPLICATION_RECORDIO} request must name its records' format ({APPLICATION_JSON} or {APPLICATION_PROTOBUF})"
    )]
    MissingMessageContentType,
    #[error("unsupported {header} '{value}': expected {expected}")]
    UnsupportedMediaType {
        header: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("not acceptable: {header} '{value}' allows none of {offered}")]
    NotAcceptable {
        header: &'static str,
        value: String,
        offered: &'static str,
    },
    #[error("invalid {format} body for {message_type}: {source}")]
    Decode {
        format: MessageFormat,
        message_type: String,
        #[source]
        source: JsonError,
    },
}

impl ContentError {
    /// The HTTP status for this error: 400, 406 or 415.
    pub fn status(&self) -> u16 {
        match self {
            ContentError::MissingContentType
            | ContentError::MissingMessageContentType
            | ContentError::Decode { .. } => 400,
            ContentError::NotAcceptable { .. } => 406,
            ContentError::UnsupportedMediaType { .. } => 415,
        }
    }
}

/// How one message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageFormat {
    Json,
    Protobuf,
}

impl MessageFormat {
    /// The media type naming this format in headers.
    pub const fn media_type(self) -> &'static str {
        match self {
            MessageFormat::Json => APPLICATION_JSON,
            MessageFormat::Protobuf => APPLICATION_PROTOBUF,
        }
    }

    /// Parses a `Content-Type` value such as `application/json; charset=utf-8`
    /// (case-insensitive, parameters ignored).
    pub fn from_content_type(value: &str) -> Result<Self, ContentError> {
        Self::from_header(CONTENT_TYPE, value)
    }

    fn from_header(header: &'static str, value: &str) -> Result<Self, ContentError> {
        match content_media_type(value).as_deref() {
            Some(APPLICATION_JSON) => Ok(MessageFormat::Json),
            Some(APPLICATION_PROTOBUF) => Ok(MessageFormat::Protobuf),
            _ => Err(ContentError::UnsupportedMediaType {
                header,
                value: value.to_string(),
                expected: "application/json or application/x-protobuf",
            }),
        }
    }
}

impl std::fmt::Display for MessageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.media_type())
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// The body is one message.
    Single(MessageFormat),
    /// The body is a RecordIO stream of messages.
    Stream(MessageFormat),
}

impl RequestFormat {
    /// Reads a request's `Content-Type` and `Message-Content-Type` headers
    /// (`None` when absent).
    pub fn from_headers(
        content_type: Option<&str>,
        message_content_type: Option<&str>,
    ) -> Result<Self, ContentError> {
        let value = present(content_type).ok_or(ContentError::MissingContentType)?;
        match content_media_type(value).as_deref() {
            Some(APPLICATION_JSON) => Ok(RequestFormat::Single(MessageFormat::Json)),
            Some(APPLICATION_PROTOBUF) => Ok(RequestFormat::Single(MessageFormat::Protobuf)),
            Some(APPLICATION_RECORDIO) => {
                let inner =
                    present(message_content_type).ok_or(ContentError::MissingMessageContentType)?;
                MessageFormat::from_header(MESSAGE_CONTENT_TYPE, inner).map(RequestFormat::Stream)
            }
            _ => Err(ContentError::UnsupportedMediaType {
                header: CONTENT_TYPE,
                value: value.to_string(),
                expected: "application/json, application/x-protobuf or application/recordio",
            }),
        }
    }

    /// The format of each message in the body.
    pub fn message_format(self) -> MessageFormat {
        match self {
            RequestFormat::Single(f) | RequestFormat::Stream(f) => f,
        }
    }

    /// Whether the body is RecordIO-framed.
    pub fn is_recordio(self) -> bool {
        matches!(self, RequestFormat::Stream(_))
    }
}

/// What a response carries and the headers that say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFormat {
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// Whether the body is RecordIO-framed.
    pub recordio: bool,
    /// The format of each message.
    pub message_format: MessageFormat,
    /// The `Message-Content-Type` header value, when there is one to send.
    pub message_content_type: Option<&'static str>,
}

impl ResponseFormat {
    fn plain(format: MessageFormat, recordio: bool) -> Self {
        ResponseFormat {
            content_type: format.media_type(),
            recordio,
            message_format: format,
            message_content_type: None,
        }
    }

    fn recordio(format: MessageFormat) -> Self {
        ResponseFormat {
            content_type: APPLICATION_RECORDIO,
            recordio: true,
            message_format: format,
            message_content_type: Some(format.media_type()),
        }
    }

    /// For clients: reads a response's `Content-Type` and
    /// `Message-Content-Type`. `streaming` says whether the call has a
    /// streaming response, which is RecordIO-framed even when its
    /// Content-Type is a message format.
    pub fn from_headers(
        content_type: Option<&str>,
        message_content_type: Option<&str>,
        streaming: bool,
    ) -> Result<Self, ContentError> {
        Ok(
            match RequestFormat::from_headers(content_type, message_content_type)? {
                RequestFormat::Single(format) => Self::plain(format, streaming),
                RequestFormat::Stream(format) => Self::recordio(format),
            },
        )
    }
}

/// Chooses a response's format from the request's `Accept` and
/// `Message-Accept` headers (`None` when absent; several headers of one name
/// must be joined with `,`). `streaming` says whether the call answers with
/// a stream of messages.
///
/// The most specific matching media range gives each offered type its
/// weight, and the heaviest wins; ties go to JSON, then protobuf, then
/// RecordIO, which is Mesos's order. `Message-Accept` only counts when
/// `Accept` chose RecordIO.
pub fn negotiate(
    accept: Option<&str>,
    message_accept: Option<&str>,
    streaming: bool,
) -> Result<ResponseFormat, ContentError> {
    use MessageFormat::{Json, Protobuf};
    const SINGLE: &[(&str, Body)] = &[
        (APPLICATION_JSON, Body::Plain(Json)),
        (APPLICATION_PROTOBUF, Body::Plain(Protobuf)),
    ];
    const STREAM: &[(&str, Body)] = &[
        (APPLICATION_JSON, Body::Plain(Json)),
        (APPLICATION_PROTOBUF, Body::Plain(Protobuf)),
        (APPLICATION_RECORDIO, Body::RecordIo),
    ];
    const MESSAGES: &[(&str, MessageFormat)] =
        &[(APPLICATION_JSON, Json), (APPLICATION_PROTOBUF, Protobuf)];

    let not_acceptable = |header, value: Option<&str>, offered| ContentError::NotAcceptable {
        header,
        value: value.unwrap_or_default().to_string(),
        offered,
    };
    let offered = if streaming { STREAM } else { SINGLE };
    match best_match(accept, offered) {
        Some(Body::Plain(format)) => Ok(ResponseFormat::plain(format, streaming)),
        Some(Body::RecordIo) => best_match(message_accept, MESSAGES)
            .map(ResponseFormat::recordio)
            .ok_or_else(|| {
                not_acceptable(
                    MESSAGE_ACCEPT,
                    message_accept,
                    "application/json, application/x-protobuf",
                )
            }),
        None if streaming => Err(not_acceptable(
            ACCEPT,
            accept,
            "application/json, application/x-protobuf, application/recordio",
        )),
        None => Err(not_acceptable(
            ACCEPT,
            accept,
            "application/json, application/x-protobuf (this call does not stream)",
        )),
    }
}

/// What `Accept` can choose.
#[derive(Clone, Copy)]
enum Body {
    Plain(MessageFormat),
    RecordIo,
}

/// Decodes one message body.
///
/// Protobuf bodies go through [`crate::json::from_protobuf`] rather than
/// bare prost so that, like Mesos's C++ parser, a message missing a
/// required field is rejected instead of filled with defaults.
pub fn decode_message<T: Message + Name + Default>(
    format: MessageFormat,
    body: &[u8],
) -> Result<T, ContentError> {
    let result = match format {
        MessageFormat::Json => crate::json::from_slice::<T>(body),
        MessageFormat::Protobuf => crate::json::from_protobuf::<T>(body),
    };
    result.map_err(|source| ContentError::Decode {
        format,
        message_type: T::full_name(),
        source,
    })
}

/// Encodes one message body.
pub fn encode_message<T: Message + Name>(format: MessageFormat, message: &T) -> Vec<u8> {
    match format {
        MessageFormat::Json => crate::json::to_vec(message),
        MessageFormat::Protobuf => message.encode_to_vec(),
    }
}

/// Encodes one message and appends it to `dst` as a RecordIO record.
pub fn encode_record<T: Message + Name>(format: MessageFormat, message: &T, dst: &mut BytesMut) {
    recordio::encode(&encode_message(format, message), dst);
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// The `type/subtype` of a Content-Type value, lowercased, without
/// parameters; `None` if it is not a media type.
fn content_media_type(value: &str) -> Option<String> {
    let essence = split_unquoted(value, b';').into_iter().next()?;
    let (kind, subtype) = parse_media_type(essence)?;
    Some(format!("{kind}/{subtype}"))
}

fn parse_media_type(s: &str) -> Option<(String, String)> {
    let (kind, subtype) = s.split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    (is_token(kind) && is_token(subtype))
        .then(|| (kind.to_ascii_lowercase(), subtype.to_ascii_lowercase()))
}

/// RFC 9110 `token`: what a type, subtype or parameter name may be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits on `sep` outside double-quoted strings, so a quoted parameter
/// value cannot break an element apart.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            // `sep` is ASCII, so `i` is a char boundary.
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// One element of an `Accept`-style header.
struct MediaRange {
    kind: String,
    subtype: String,
    q: f64,
}

/// Parses an `Accept`-style list. Elements that are not media ranges are
/// skipped rather than failing the header, as Mesos does.
fn parse_accept(value: &str) -> Vec<MediaRange> {
    split_unquoted(value, b',')
        .into_iter()
        .filter_map(|element| {
            let mut parts = split_unquoted(element, b';').into_iter();
            let (kind, subtype) = parse_media_type(parts.next()?)?;
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| parse_q(v));
            Some(MediaRange { kind, subtype, q })
        })
        .collect()
}

/// A weight in (0, 1], or 0 for "not acceptable". Mesos treats an
/// unparseable weight as not acceptable, so that is what garbage means here.
fn parse_q(value: &str) -> f64 {
    match value.trim().parse::<f64>() {
        Ok(q) if q.is_finite() && q > 0.0 => q.min(1.0),
        _ => 0.0,
    }
}

/// The weight `ranges` give `kind/subtype`: the most specific matching
/// range decides (RFC 9110 §12.5.1), so `application/json;q=0, */*` refuses
/// JSON and nothing else. Among equally specific ranges the first counts,
/// as in Mesos.
fn weight(ranges: &[MediaRange], kind: &str, subtype: &str) -> f64 {
    let mut best: Option<(u8, f64)> = None;
    for range in ranges {
        let specificity = match (range.kind.as_str(), range.subtype.as_str()) {
            (k, s) if k == kind && s == subtype => 2,
            (k, "*") if k == kind => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, range.q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The heaviest of `offered` (media type, choice) under the header, earlier
/// offers winning ties; an absent or blank header accepts everything.
fn best_match<T: Copy>(header: Option<&str>, offered: &[(&str, T)]) -> Option<T> {
    let Some(value) = present(header) else {
        return offered.first().map(|&(_, choice)| choice);
    };
    let ranges = parse_accept(value);
    let mut best = None;
    let mut best_q = 0.0;
    for &(media, choice) in offered {
        let (kind, subtype) = media.split_once('/')?;
        let q = weight(&ranges, kind, subtype);
        if q > best_q {
            best = Some(choice);
            best_q = q;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::{Call, call};
    use crate::v1::{FrameworkId, FrameworkInfo};

    use MessageFormat::{Json, Protobuf};

    fn single(accept: Option<&str>) -> Result<ResponseFormat, ContentError> {
        negotiate(accept, None, false)
    }

    fn stream(accept: Option<&str>, message_accept: Option<&str>) -> ResponseFormat {
        match negotiate(accept, message_accept, true) {
            Ok(f) => f,
            Err(e) => panic!("{accept:?} / {message_accept:?}: {e}"),
        }
    }

    fn format_of(accept: &str) -> MessageFormat {
        match single(Some(accept)) {
            Ok(f) => f.message_format,
            Err(e) => panic!("{accept:?}: {e}"),
        }
    }

    fn not_acceptable(result: Result<ResponseFormat, ContentError>) -> (&'static str, String) {
        match result {
            Err(ContentError::NotAcceptable { header, value, .. }) => (header, value),
            other => panic!("expected NotAcceptable, got {other:?}"),
        }
    }

    #[test]
    fn content_type_parsing_is_case_insensitive_and_ignores_parameters() {
        for value in [
            "application/json",
            "Application/JSON",
            "  application/json  ",
            "application/json; charset=utf-8",
            "application/json;charset=\"utf-8; really\"",
            "application / json",
        ] {
            assert_eq!(
                MessageFormat::from_content_type(value).unwrap(),
                Json,
                "{value}"
            );
        }
        for value in [
            "application/x-protobuf",
            "APPLICATION/X-PROTOBUF;proto=mesos.v1.Call",
        ] {
            assert_eq!(
                MessageFormat::from_content_type(value).unwrap(),
                Protobuf,
                "{value}"
            );
        }
        assert_eq!(Json.to_string(), "application/json");
        assert_eq!(Protobuf.media_type(), "application/x-protobuf");
    }

    #[test]
    fn bad_content_types_are_415_naming_the_value() {
        for value in [
            "",
            "text/plain",
            "application/recordio",
            "application/*",
            "json",
            "application/json/x",
            "application/json, application/x-protobuf",
            "application/jsonx",
        ] {
            let err = MessageFormat::from_content_type(value).unwrap_err();
            assert_eq!(err.status(), 415, "{value}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("'{value}'")), "{msg}");
            assert!(msg.contains("Content-Type"), "{msg}");
        }
    }

    #[test]
    fn request_with_a_single_message() {
        assert_eq!(
            RequestFormat::from_headers(Some("application/json"), None).unwrap(),
            RequestFormat::Single(Json)
        );
        let f = RequestFormat::from_headers(Some("application/x-protobuf"), None).unwrap();
        assert_eq!(f, RequestFormat::Single(Protobuf));
        assert!(!f.is_recordio());
        // Content-Type decides; the agent's 415 for a stray
        // Message-Content-Type is not kept (the master ignores it).
        assert_eq!(
            RequestFormat::from_headers(Some("application/json"), Some("application/x-protobuf"))
                .unwrap(),
            RequestFormat::Single(Json)
        );
    }

    #[test]
    fn streaming_request_takes_its_format_from_message_content_type() {
        let f = RequestFormat::from_headers(
            Some("application/recordio"),
            Some("application/x-protobuf"),
        )
        .unwrap();
        assert_eq!(f, RequestFormat::Stream(Protobuf));
        assert!(f.is_recordio());
        assert_eq!(f.message_format(), Protobuf);
        assert_eq!(
            RequestFormat::from_headers(Some("Application/RecordIO"), Some("application/json"))
                .unwrap(),
            RequestFormat::Stream(Json)
        );
    }

    #[test]
    fn bad_request_headers() {
        for ct in [None, Some(""), Some("   ")] {
            let err = RequestFormat::from_headers(ct, None).unwrap_err();
            assert!(matches!(err, ContentError::MissingContentType), "{ct:?}");
            assert_eq!(err.status(), 400);
        }
        let err = RequestFormat::from_headers(Some("application/recordio"), None).unwrap_err();
        assert!(matches!(err, ContentError::MissingMessageContentType));
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("Message-Content-Type"));

        let err = RequestFormat::from_headers(Some("text/html"), None).unwrap_err();
        assert_eq!(err.status(), 415);
        assert!(err.to_string().contains("'text/html'"), "{err}");

        for inner in ["application/recordio", "text/plain"] {
            let err =
                RequestFormat::from_headers(Some("application/recordio"), Some(inner)).unwrap_err();
            assert_eq!(err.status(), 415);
            let msg = err.to_string();
            assert!(
                msg.contains("Message-Content-Type") && msg.contains(inner),
                "{msg}"
            );
        }
    }

    #[test]
    fn missing_or_wildcard_accept_means_json() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/*"),
            Some("APPLICATION/*;q=0.3"),
            Some("text/html, */*;q=0.1"),
        ] {
            let f = single(accept).unwrap();
            assert_eq!(f, ResponseFormat::plain(Json, false), "{accept:?}");
            assert_eq!(f.content_type, "application/json");
            assert_eq!(f.message_content_type, None);
        }
    }

    #[test]
    fn explicit_types_spacing_and_case() {
        assert_eq!(format_of("application/x-protobuf"), Protobuf);
        assert_eq!(format_of("  Application/X-Protobuf  "), Protobuf);
        assert_eq!(format_of("text/html,application/x-protobuf"), Protobuf);
        assert_eq!(
            format_of("text/html ,\t application/x-protobuf ; level=1"),
            Protobuf
        );
        assert_eq!(format_of("application/json;charset=utf-8"), Json);
        // Empty list elements are allowed by the list syntax.
        assert_eq!(format_of(",, application/x-protobuf ,"), Protobuf);
        // A quoted parameter may hold the separators.
        assert_eq!(
            format_of("application/x-protobuf;x=\"a,b;c\", text/html"),
            Protobuf
        );
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(
            format_of("application/json;q=0.5, application/x-protobuf"),
            Protobuf
        );
        assert_eq!(
            format_of("application/json;q=0.5, application/x-protobuf;q=0.4"),
            Json
        );
        assert_eq!(
            format_of("application/json ; Q = 0.2 , application/x-protobuf;q=0.3"),
            Protobuf
        );
        // Ties go to JSON, whatever the order.
        assert_eq!(format_of("application/x-protobuf, application/json"), Json);
        assert_eq!(
            format_of("application/x-protobuf;q=0.5, application/json;q=0.5"),
            Json
        );
        // q=0 refuses; the most specific range decides.
        assert_eq!(format_of("application/json;q=0, */*"), Protobuf);
        assert_eq!(format_of("application/json;q=0.0, application/*"), Protobuf);
        assert_eq!(
            format_of("*/*;q=0.1, application/*;q=0, application/json"),
            Json
        );
        // Weights above 1 count as 1; garbage weights refuse, as in Mesos.
        assert_eq!(
            format_of("application/json;q=1, application/x-protobuf;q=7"),
            Json
        );
        assert_eq!(
            format_of("application/json;q=high, application/x-protobuf"),
            Protobuf
        );
        assert_eq!(
            format_of("application/json;q=NaN, application/x-protobuf;q=0.1"),
            Protobuf
        );
    }

    #[test]
    fn unsupported_accept_is_406_naming_what_was_asked() {
        for accept in [
            "text/html",
            "application/json;q=0",
            "application/*;q=0",
            "*/*;q=0",
            "application/json;q=0, application/x-protobuf;q=0, */*",
            "text/*",
            "garbage",
            "*/json",
            ";;;,,,",
        ] {
            let (header, value) = not_acceptable(single(Some(accept)));
            assert_eq!((header, value.as_str()), ("Accept", accept));
        }
        assert_eq!(single(Some("text/html")).unwrap_err().status(), 406);
        let err = single(Some("text/html")).unwrap_err().to_string();
        assert!(
            err.contains("'text/html'") && err.contains("application/json"),
            "{err}"
        );
    }

    #[test]
    fn recordio_is_not_offered_for_a_single_message() {
        let (header, _) = not_acceptable(single(Some("application/recordio")));
        assert_eq!(header, "Accept");
        assert_eq!(
            single(Some("application/recordio, application/json;q=0.1"))
                .unwrap()
                .message_format,
            Json
        );
    }

    #[test]
    fn message_accept_is_ignored_for_a_single_message() {
        assert_eq!(
            negotiate(None, Some("text/plain"), false).unwrap(),
            ResponseFormat::plain(Json, false)
        );
    }

    #[test]
    fn subscribe_with_accept_json_streams_recordio_under_a_json_content_type() {
        let f = stream(Some("application/json"), None);
        assert_eq!(
            f,
            ResponseFormat {
                content_type: "application/json",
                recordio: true,
                message_format: Json,
                message_content_type: None,
            }
        );
        let f = stream(Some("application/x-protobuf"), None);
        assert_eq!(f.content_type, "application/x-protobuf");
        assert!(f.recordio);
        // No Accept at all: JSON, for backwards compatibility, as Mesos.
        assert_eq!(stream(None, None), ResponseFormat::plain(Json, true));
        assert_eq!(stream(Some("*/*"), None), ResponseFormat::plain(Json, true));
        // Message-Accept only matters under Accept: application/recordio.
        assert_eq!(
            stream(Some("application/json"), Some("application/x-protobuf")),
            ResponseFormat::plain(Json, true)
        );
    }

    #[test]
    fn accept_recordio_uses_message_accept() {
        let f = stream(Some("application/recordio"), Some("application/x-protobuf"));
        assert_eq!(
            f,
            ResponseFormat {
                content_type: "application/recordio",
                recordio: true,
                message_format: Protobuf,
                message_content_type: Some("application/x-protobuf"),
            }
        );
        for message_accept in [None, Some("application/json"), Some("*/*"), Some("")] {
            let f = stream(Some("Application/RecordIO"), message_accept);
            assert_eq!(f, ResponseFormat::recordio(Json), "{message_accept:?}");
            assert_eq!(f.message_content_type, Some("application/json"));
        }
        assert_eq!(
            stream(
                Some("application/recordio"),
                Some("application/json;q=0.2, application/x-protobuf;q=0.9")
            ),
            ResponseFormat::recordio(Protobuf)
        );
        // RecordIO wins when weighted above JSON, and loses a tie to it.
        assert_eq!(
            stream(Some("application/json;q=0.5, application/recordio"), None),
            ResponseFormat::recordio(Json)
        );
        assert_eq!(
            stream(Some("application/recordio, application/json"), None),
            ResponseFormat::plain(Json, true)
        );
    }

    #[test]
    fn bad_message_accept_is_406_naming_it() {
        for message_accept in ["text/plain", "application/recordio", "application/json;q=0"] {
            let (header, value) = not_acceptable(negotiate(
                Some("application/recordio"),
                Some(message_accept),
                true,
            ));
            assert_eq!((header, value.as_str()), ("Message-Accept", message_accept));
        }
        let (header, value) = not_acceptable(negotiate(Some("text/event-stream"), None, true));
        assert_eq!((header, value.as_str()), ("Accept", "text/event-stream"));
    }

    #[test]
    fn clients_read_response_headers() {
        assert_eq!(
            ResponseFormat::from_headers(Some("application/json"), None, true).unwrap(),
            ResponseFormat::plain(Json, true)
        );
        assert_eq!(
            ResponseFormat::from_headers(Some("application/x-protobuf"), None, false).unwrap(),
            ResponseFormat::plain(Protobuf, false)
        );
        assert_eq!(
            ResponseFormat::from_headers(
                Some("application/recordio"),
                Some("application/x-protobuf"),
                true
            )
            .unwrap(),
            ResponseFormat::recordio(Protobuf)
        );
        assert!(ResponseFormat::from_headers(Some("text/html"), None, false).is_err());
    }

    fn subscribe_call() -> Call {
        Call {
            framework_id: Some(FrameworkId {
                value: "fw-1".into(),
            }),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: FrameworkInfo {
                    user: "root".into(),
                    name: "test".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn message_bodies_round_trip_in_both_formats() {
        let call = subscribe_call();
        for format in [Json, Protobuf] {
            let body = encode_message(format, &call);
            assert_eq!(
                decode_message::<Call>(format, &body).unwrap(),
                call,
                "{format}"
            );
        }
        let json = String::from_utf8(encode_message(Json, &call)).unwrap();
        assert!(json.contains("\"type\":\"SUBSCRIBE\""), "{json}");
        assert_eq!(encode_message(Protobuf, &call), call.encode_to_vec());
    }

    #[test]
    fn bad_bodies_name_the_format_the_type_and_the_cause() {
        let err = decode_message::<Call>(Json, b"{\"type\": ").unwrap_err();
        assert_eq!(err.status(), 400);
        let msg = err.to_string();
        assert!(
            msg.contains("application/json") && msg.contains("mesos.v1.scheduler.Call"),
            "{msg}"
        );
        assert!(matches!(
            err,
            ContentError::Decode {
                format: Json,
                source: JsonError::Syntax { .. },
                ..
            }
        ));

        let err =
            decode_message::<Call>(Json, br#"{"type": "SUBSCRIBE", "subscribe": {}}"#).unwrap_err();
        assert!(err.to_string().contains("framework_info"), "{err}");

        let err = decode_message::<Call>(Protobuf, &[0xff, 0xff, 0xff]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("application/x-protobuf"), "{msg}");
        assert!(std::error::Error::source(&err).is_some());

        // Like Mesos, a protobuf body missing a required field is refused:
        // a FrameworkInfo with only `name` (field 2) set lacks `user`.
        let err = decode_message::<FrameworkInfo>(Protobuf, &[0x12, 1, b'x']).unwrap_err();
        assert!(err.to_string().contains("user"), "{err}");
    }

    #[test]
    fn records_frame_encoded_messages() {
        let call = subscribe_call();
        let mut buf = BytesMut::new();
        encode_record(Json, &call, &mut buf);
        encode_record(Protobuf, &call, &mut buf);
        let json = encode_message(Json, &call);
        assert!(buf.starts_with(format!("{}\n", json.len()).as_bytes()));

        let mut decoder = recordio::Decoder::new();
        let records = decoder.feed(&buf).unwrap();
        decoder.finish().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(decode_message::<Call>(Json, &records[0]).unwrap(), call);
        assert_eq!(decode_message::<Call>(Protobuf, &records[1]).unwrap(), call);
    }
}
