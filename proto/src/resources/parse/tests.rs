use super::*;
use crate::resources::ValidationError;
use crate::resources::error::RoleError;
use crate::resources::ranges;
use crate::resources::scalar::MAX_FIXED;

const DOCS_TEXT: &str =
    "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug_role):{a,b,c}";

const DOCS_JSON: &str = r#"[
  {"name":"cpus","type":"SCALAR","scalar":{"value":24}},
  {"name":"gpus","type":"SCALAR","scalar":{"value":2}},
  {"name":"mem","type":"SCALAR","scalar":{"value":24576}},
  {"name":"disk","type":"SCALAR","scalar":{"value":409600}},
  {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":21000,"end":24000},{"begin":30000,"end":34000}]}},
  {"name":"bugs","type":"SET","set":{"item":["a","b","c"]},"role":"debug_role"}
]"#;

fn ok(text: &str, role: &str) -> Resources {
    match parse_resources(text, role) {
        Ok(r) => r,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> ResourcesError {
    match parse_resources(text, "*") {
        Ok(r) => panic!("{text:?} parsed as {r}"),
        Err(e) => e,
    }
}

fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: Type::Scalar as i32,
        scalar: Some(Scalar { value }),
        ..Default::default()
    }
}

#[test]
fn docs_example_every_field() {
    let parsed = ok(DOCS_TEXT, "*").into_vec();
    assert_eq!(parsed.len(), 6);
    let names: Vec<&str> = parsed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cpus", "gpus", "mem", "disk", "ports", "bugs"]);
    for (r, value) in parsed[..4].iter().zip([24.0, 2.0, 24576.0, 409600.0]) {
        assert_eq!(*r, scalar(&r.name, value), "{}", r.name);
    }
    let ports = &parsed[4];
    assert_eq!(ports.r#type, Type::Ranges as i32);
    assert!(ports.scalar.is_none() && ports.set.is_none());
    assert_eq!(
        ports.ranges.as_ref().map(ranges::intervals),
        Some(vec![(21000, 24000), (30000, 34000)])
    );
    assert!(ports.reservations.is_empty());
    let bugs = &parsed[5];
    assert_eq!(bugs.r#type, Type::Set as i32);
    assert!(bugs.scalar.is_none() && bugs.ranges.is_none());
    assert_eq!(
        bugs.set.as_ref().map(|s| s.item.clone()),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(bugs.reservations, vec![static_reservation("debug_role")]);
    for r in &parsed {
        assert!(r.allocation_info.is_none() && r.disk.is_none() && r.revocable.is_none());
        assert!(r.shared.is_none() && r.provider_id.is_none());
        #[allow(deprecated)]
        let legacy = r.role.is_some() || r.reservation.is_some();
        assert!(!legacy);
    }
}

#[test]
fn roles_with_default_and_explicit() {
    let r = ok("cpus:4;mem:2048;cpus(baeldung):8;mem(baeldung):4096", "*");
    assert_eq!(
        r.as_slice(),
        &[
            scalar("cpus", 4.0),
            scalar("mem", 2048.0),
            Resource {
                reservations: vec![static_reservation("baeldung")],
                ..scalar("cpus", 8.0)
            },
            Resource {
                reservations: vec![static_reservation("baeldung")],
                ..scalar("mem", 4096.0)
            },
        ]
    );
    assert_eq!(r.cpus(), Some(12.0));
    assert_eq!(r.unreserved().mem(), Some(2048.0));
    assert_eq!(r.reserved(Some("baeldung")).mem(), Some(4096.0));

    let defaulted = ok("cpus:1;mem(*):2;disk(other):3", "eng/web");
    assert_eq!(
        defaulted.as_slice()[0].reservations,
        vec![static_reservation("eng/web")]
    );
    assert!(
        defaulted.as_slice()[1].reservations.is_empty(),
        "(*) is unreserved"
    );
    assert_eq!(
        defaulted.as_slice()[2].reservations,
        vec![static_reservation("other")]
    );
}

#[test]
fn whitespace_and_empty_entries_are_tolerated() {
    let spaced = ok(
        "  cpus ( eng ) : 4 ;\n mem: 1 024 ;; ports : [ 1 - 2 , 5-6 ] ; bugs:{ a , b } ; ",
        "*",
    );
    assert_eq!(
        spaced,
        ok("cpus(eng):4;mem:1024;ports:[1-2,5-6];bugs:{a,b}", "*")
    );
    assert!(ok("", "*").is_empty());
    assert!(ok(" ; ;", "*").is_empty());
}

#[test]
fn entries_are_summed_and_empties_dropped() {
    assert_eq!(
        ok("cpus:1;cpus:2.5", "*").as_slice(),
        &[scalar("cpus", 3.5)]
    );
    assert_eq!(
        ok("ports:[1-5];ports:[3-7,10-10]", "*")
            .ports()
            .map(|p| ranges::intervals(&p)),
        Some(vec![(1, 7), (10, 10)])
    );
    assert_eq!(
        ok("cpus:0;mem:1;bugs:{};ports:[]", "*").as_slice(),
        &[scalar("mem", 1.0)]
    );
    assert_eq!(ok("cpus:0.0001", "*").len(), 0, "rounds to zero");
    assert_eq!(ok("cpus:1.23456", "*").cpus(), Some(1.235));
    assert_eq!(
        ok("cpus:1e1;mem:0x10", "*").as_slice(),
        &[scalar("cpus", 10.0), scalar("mem", 16.0)]
    );
}

#[test]
fn entry_errors() {
    use ResourcesError::*;
    let cases: Vec<(&str, ResourcesError)> = vec![
        (
            "cpus",
            MissingColon {
                entry: "cpus".into(),
                offset: 0,
            },
        ),
        (
            "cpus:4; mem",
            MissingColon {
                entry: "mem".into(),
                offset: 8,
            },
        ),
        (
            "cpus:4:5",
            ExtraColon {
                entry: "cpus:4:5".into(),
                offset: 6,
            },
        ),
        (
            "cpus::4",
            ExtraColon {
                entry: "cpus::4".into(),
                offset: 5,
            },
        ),
        (
            ":4",
            EmptyName {
                entry: ":4".into(),
                offset: 0,
            },
        ),
        (
            "mem:1;  (eng):4",
            EmptyName {
                entry: "(eng):4".into(),
                offset: 8,
            },
        ),
        (
            "cpus(eng:4",
            UnbalancedParens {
                name: "cpus".into(),
                offset: 0,
            },
        ),
        (
            "cpus eng):4",
            UnbalancedParens {
                name: "cpus eng)".into(),
                offset: 0,
            },
        ),
        (
            "cpus((eng)):4",
            UnbalancedParens {
                name: "cpus".into(),
                offset: 0,
            },
        ),
        (
            "cp)us(eng):4",
            UnbalancedParens {
                name: "cp)us".into(),
                offset: 0,
            },
        ),
        (
            "cpus(eng) x:4",
            AfterRole {
                name: "cpus".into(),
                offset: 10,
                rest: "x".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(err(text), expected, "{text:?}");
    }
}

#[test]
fn role_errors() {
    let cases: Vec<(&str, usize, RoleError)> = vec![
        ("cpus():4", 5, RoleError::Empty),
        ("cpus( ):4", 6, RoleError::Empty),
        ("cpus(/a):4", 5, RoleError::LeadingSlash("/a".into())),
        ("cpus(a/):4", 5, RoleError::TrailingSlash("a/".into())),
        ("cpus(a//b):4", 5, RoleError::DoubleSlash("a//b".into())),
        ("cpus(-a):4", 5, RoleError::LeadingDash("-a".into())),
        (
            "cpus(a/..):4",
            5,
            RoleError::ReservedComponent {
                role: "a/..".into(),
                component: "..".into(),
            },
        ),
        (
            "cpus(a/*):4",
            5,
            RoleError::ReservedComponent {
                role: "a/*".into(),
                component: "*".into(),
            },
        ),
        (
            "mem:1;cpus( a b ):4",
            12,
            RoleError::InvalidCharacter {
                component: "a b".into(),
                what: "whitespace",
            },
        ),
    ];
    for (text, offset, source) in cases {
        assert_eq!(
            err(text),
            ResourcesError::InvalidRole {
                name: "cpus".into(),
                offset,
                source
            },
            "{text:?}"
        );
    }
    assert_eq!(
        parse_resources("cpus:1", ""),
        Err(ResourcesError::InvalidDefaultRole(RoleError::Empty))
    );
    assert_eq!(
        parse_resources("cpus:1", "a b"),
        Err(ResourcesError::InvalidDefaultRole(
            RoleError::InvalidCharacter {
                component: "a b".into(),
                what: "whitespace"
            }
        ))
    );
}

#[test]
fn value_errors() {
    use ValueError::*;
    let cases: Vec<(&str, &str, ValueError)> = vec![
        ("cpus:", "cpus", Empty { offset: 5 }),
        ("cpus:  ", "cpus", Empty { offset: 5 }),
        (
            "ports:[1-2",
            "ports",
            Unterminated {
                offset: 6,
                open: '[',
            },
        ),
        (
            "ports:[1-2,",
            "ports",
            Unterminated {
                offset: 6,
                open: '[',
            },
        ),
        (
            "bugs:{a,b",
            "bugs",
            Unterminated {
                offset: 5,
                open: '{',
            },
        ),
        (
            "ports:[5-1]",
            "ports",
            InvertedRange {
                offset: 7,
                begin: 5,
                end: 1,
            },
        ),
        (
            "ports:[1-5,3-7]",
            "ports",
            OverlappingRanges {
                offset: 11,
                begin: 3,
                end: 7,
                other_begin: 1,
                other_end: 5,
            },
        ),
        (
            "ports:[1-5,5-7]",
            "ports",
            OverlappingRanges {
                offset: 11,
                begin: 5,
                end: 7,
                other_begin: 1,
                other_end: 5,
            },
        ),
        (
            "ports:[a-b]",
            "ports",
            InvalidBound {
                offset: 7,
                token: "a".into(),
            },
        ),
        (
            "ports:[-1-5]",
            "ports",
            UnexpectedChar {
                offset: 7,
                found: '-',
                expected: "a range bound",
            },
        ),
        (
            "ports:[1-2-3]",
            "ports",
            UnexpectedChar {
                offset: 10,
                found: '-',
                expected: "',' or ']'",
            },
        ),
        (
            "ports:[1-2]]",
            "ports",
            Trailing {
                offset: 11,
                rest: "]".into(),
            },
        ),
        (
            "bugs:{a}x",
            "bugs",
            Trailing {
                offset: 8,
                rest: "x".into(),
            },
        ),
        (
            "bugs:{a,b,a}",
            "bugs",
            DuplicateSetItem {
                offset: 10,
                item: "a".into(),
            },
        ),
        (
            "cpus:-1",
            "cpus",
            Negative {
                offset: 5,
                token: "-1".into(),
            },
        ),
        (
            "cpus:-0.5",
            "cpus",
            Negative {
                offset: 5,
                token: "-0.5".into(),
            },
        ),
        (
            "cpus:nan",
            "cpus",
            NotFinite {
                offset: 5,
                token: "nan".into(),
            },
        ),
        (
            "cpus:NaN",
            "cpus",
            NotFinite {
                offset: 5,
                token: "NaN".into(),
            },
        ),
        (
            "cpus:inf",
            "cpus",
            NotFinite {
                offset: 5,
                token: "inf".into(),
            },
        ),
        (
            "cpus:-Infinity",
            "cpus",
            NotFinite {
                offset: 5,
                token: "-Infinity".into(),
            },
        ),
        (
            "cpus:1e999",
            "cpus",
            NotFinite {
                offset: 5,
                token: "1e999".into(),
            },
        ),
        (
            "cpus:1e-310",
            "cpus",
            Subnormal {
                offset: 5,
                token: "1e-310".into(),
            },
        ),
        (
            "cpus:1e300",
            "cpus",
            TooLarge {
                offset: 5,
                token: "1e300".into(),
                max: MAX_FIXED,
            },
        ),
        (
            "cpus:abc",
            "cpus",
            NotAResourceValue {
                offset: 5,
                token: "abc".into(),
            },
        ),
        (
            "cpus:4x",
            "cpus",
            NotAResourceValue {
                offset: 5,
                token: "4x".into(),
            },
        ),
        (
            "cpus:1,5",
            "cpus",
            NotAResourceValue {
                offset: 5,
                token: "1,5".into(),
            },
        ),
        (
            "cpus:4]",
            "cpus",
            UnbalancedBracket {
                offset: 6,
                bracket: ']',
            },
        ),
        (
            "cpus:a[1]",
            "cpus",
            UnexpectedChar {
                offset: 6,
                found: '[',
                expected: "no brackets inside a scalar or text",
            },
        ),
    ];
    for (text, name, source) in cases {
        assert_eq!(
            err(text),
            ResourcesError::Value {
                name: name.into(),
                offset: source.offset(),
                source
            },
            "{text:?}"
        );
    }
}

#[test]
fn messages_name_token_and_offset() {
    assert_eq!(
        err("gpus:1;cpus:-1").to_string(),
        "resource 'cpus' at offset 12: scalar value '-1' is negative"
    );
    assert_eq!(
        err("cpus:1;ports:[5-1]").to_string(),
        "resource 'ports' at offset 14: range [5-1] is inverted (begin > end)"
    );
    assert_eq!(
        err("cpus").to_string(),
        "entry 'cpus' at offset 0: missing ':' between name and value"
    );
    assert_eq!(
        err("cpus(a//b):1").to_string(),
        "resource 'cpus' at offset 5: invalid role: role 'a//b' cannot contain two adjacent slashes"
    );
}

#[test]
fn one_name_one_type() {
    assert_eq!(
        err("cpus:1;cpus:[1-2]"),
        ResourcesError::MixedTypes {
            name: "cpus".into(),
            at: Location::Offset(7),
            ty: "RANGES",
            earlier: "SCALAR",
        }
    );
    assert!(matches!(
        err("bugs(a):{x}; bugs:3"),
        ResourcesError::MixedTypes {
            at: Location::Offset(13),
            ..
        }
    ));
}

#[test]
fn json_docs_example_matches_text() {
    assert_eq!(ok(DOCS_JSON, "*").as_slice(), ok(DOCS_TEXT, "*").as_slice());
    assert_eq!(ok(&format!("  \n{DOCS_JSON}\n"), "*"), ok(DOCS_TEXT, "*"));
}

#[test]
fn json_roles_and_reservations() {
    // No role: the default role.
    let defaulted = ok(
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]"#,
        "eng",
    );
    assert_eq!(
        defaulted.as_slice()[0].reservations,
        vec![static_reservation("eng")]
    );
    // Explicit '*': unreserved, whatever the default.
    let star = ok(
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"*"}]"#,
        "eng",
    );
    assert!(star.as_slice()[0].reservations.is_empty());
    // Post-refinement format with a static reservation.
    let refined = ok(
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
             "reservations":[{"type":"STATIC","role":"a"}]}]"#,
        "*",
    );
    assert_eq!(
        refined.as_slice()[0].reservations,
        vec![static_reservation("a")]
    );
    // Endpoint format: both, consistent.
    let echoed = ok(
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"a",
             "reservations":[{"type":"STATIC","role":"a"}]}]"#,
        "*",
    );
    assert_eq!(echoed, refined);
}

#[test]
fn json_command_line_restrictions() {
    let at = Location::Index(1);
    let name = "cpus".to_string();
    let dynamic = format!(
        "[{},{}]",
        r#"{"name":"mem","type":"SCALAR","scalar":{"value":1}}"#,
        r#"{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"a","reservation":{"principal":"p"}}"#
    );
    assert_eq!(
        err(&dynamic),
        ResourcesError::DynamicReservationOnCommandLine {
            name: name.clone(),
            at
        }
    );
    let revocable = format!(
        "[{},{}]",
        r#"{"name":"mem","type":"SCALAR","scalar":{"value":1}}"#,
        r#"{"name":"cpus","type":"SCALAR","scalar":{"value":1},"revocable":{}}"#
    );
    assert_eq!(
        err(&revocable),
        ResourcesError::RevocableOnCommandLine { name, at }
    );
    let volume = r#"[{"name":"disk","type":"SCALAR","scalar":{"value":1},"role":"a",
        "disk":{"persistence":{"id":"v"}}}]"#;
    assert_eq!(
        err(volume),
        ResourcesError::PersistentVolumeOnCommandLine {
            name: "disk".into(),
            at: Location::Index(0)
        }
    );
}

#[test]
fn json_errors() {
    assert_eq!(
        err(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]"#),
        ResourcesError::Invalid {
            name: "cpus".into(),
            at: Location::Index(0),
            source: ValidationError::NegativeScalar(-1.0),
        }
    );
    assert_eq!(
        err(
            r#"[{"name":"p","type":"RANGES","ranges":{"range":[{"begin":1,"end":5},{"begin":3,"end":9}]}}]"#
        ),
        ResourcesError::Invalid {
            name: "p".into(),
            at: Location::Index(0),
            source: ValidationError::OverlappingRanges {
                index: 1,
                begin: 3,
                end: 9,
                other_index: 0,
                other_begin: 1,
                other_end: 5,
            },
        }
    );
    assert!(matches!(
        err(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"a b"}]"#),
        ResourcesError::Invalid {
            source: ValidationError::InvalidRole { .. },
            ..
        }
    ));
    assert!(matches!(
        err(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1}},{"name":"cpus","type":"SET","set":{"item":[]}}]"#
        ),
        ResourcesError::MixedTypes {
            at: Location::Index(1),
            ..
        }
    ));
    assert!(matches!(err("[{"), ResourcesError::JsonSyntax(_)));
    assert!(matches!(err("[1-2]"), ResourcesError::JsonSyntax(_)));
    assert!(matches!(err("[1]"), ResourcesError::Json { index: 0, .. }));
    assert!(matches!(
        err(r#"[{"name":"cpus","type":"SCALAR"},{"name":"x","type":"BOGUS"}]"#),
        ResourcesError::Invalid {
            at: Location::Index(0),
            ..
        } | ResourcesError::Json { .. }
    ));
    assert!(matches!(
        err(r#"[{"name":"x","type":"BOGUS","scalar":{"value":1}}]"#),
        ResourcesError::Json { index: 0, .. }
    ));
}

#[test]
fn json_refined_reservations_are_dynamic() {
    // A refined stack's top is DYNAMIC, so it is a dynamic reservation.
    let stacked = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
        "reservations":[{"type":"STATIC","role":"a"},{"type":"DYNAMIC","role":"a/b"}]}]"#;
    assert!(matches!(
        err(stacked),
        ResourcesError::DynamicReservationOnCommandLine { .. }
    ));
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tepui-resources-{}-{name}", std::process::id()));
    if let Err(e) = std::fs::write(&path, contents) {
        panic!("cannot write {}: {e}", path.display());
    }
    path
}

#[test]
fn flag_reads_files() {
    let text = temp_file("text", "cpus:4;\nmem:2048\n");
    let json = temp_file("json", DOCS_JSON);
    let bad = temp_file("bad", "cpus:4;mem:-1");
    let flag = |p: &std::path::Path| format!("file://{}", p.display());

    assert_eq!(
        parse_resources_flag(&flag(&text), "*"),
        Ok(ok("cpus:4;mem:2048", "*"))
    );
    assert_eq!(
        parse_resources_flag(&flag(&json), "*"),
        Ok(ok(DOCS_TEXT, "*"))
    );
    assert_eq!(parse_resources_flag("cpus:1", "*"), Ok(ok("cpus:1", "*")));
    let in_file = parse_resources_flag(&flag(&bad), "*");
    assert!(
        matches!(&in_file, Err(ResourcesError::InFile { source, .. })
            if matches!(**source, ResourcesError::Value { offset: 11, .. })),
        "{in_file:?}"
    );
    let missing = parse_resources_flag("file:///nonexistent/tepui/resources", "*");
    assert!(matches!(
        missing,
        Err(ResourcesError::ReadFile { ref path, .. }) if path == "/nonexistent/tepui/resources"
    ));
    for path in [text, json, bad] {
        let _ = std::fs::remove_file(path);
    }
}
