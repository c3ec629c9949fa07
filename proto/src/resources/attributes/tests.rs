use super::*;
use crate::v1::value::Ranges;

fn ok(text: &str) -> Attributes {
    match parse_attributes(text) {
        Ok(a) => a,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> AttributesError {
    match parse_attributes(text) {
        Ok(a) => panic!("{text:?} parsed as {a}"),
        Err(e) => e,
    }
}

fn text(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: Type::Text as i32,
        text: Some(Text {
            value: value.into(),
        }),
        ..Default::default()
    }
}

fn scalar(name: &str, value: f64) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: Type::Scalar as i32,
        scalar: Some(Scalar { value }),
        ..Default::default()
    }
}

fn ranges_of(name: &str, pairs: &[(u64, u64)]) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: Type::Ranges as i32,
        ranges: Some(ranges::from_intervals(pairs.iter().copied())),
        ..Default::default()
    }
}

#[test]
fn docs_example_every_field() {
    let parsed = ok("rack:abc;zone:west;os:centos5;level:10;keys:[1000-1500]");
    assert_eq!(
        parsed.as_slice(),
        &[
            text("rack", "abc"),
            text("zone", "west"),
            text("os", "centos5"),
            scalar("level", 10.0),
            ranges_of("keys", &[(1000, 1500)]),
        ]
    );
    for a in &parsed {
        let fields = [
            a.scalar.is_some(),
            a.ranges.is_some(),
            a.set.is_some(),
            a.text.is_some(),
        ];
        assert_eq!(fields.iter().filter(|f| **f).count(), 1, "{a:?}");
    }
    assert_eq!(
        parsed.to_string(),
        "rack=abc; zone=west; os=centos5; level=10; keys=[1000-1500]"
    );
}

#[test]
fn types_as_mesos_decides() {
    let parsed = ok("a:1.5;b:-1;c:inf;d:nan;e:0;f:0x1f;g:1e3;h:[1-2,4-5];i:x86_64;j:[]");
    assert_eq!(
        parsed.as_slice(),
        &[
            scalar("a", 1.5),
            text("b", "-1"),
            text("c", "inf"),
            text("d", "nan"),
            scalar("e", 0.0),
            scalar("f", 31.0),
            scalar("g", 1000.0),
            ranges_of("h", &[(1, 2), (4, 5)]),
            text("i", "x86_64"),
            Attribute {
                name: "j".into(),
                r#type: Type::Ranges as i32,
                ranges: Some(Ranges::default()),
                ..Default::default()
            },
        ]
    );
}

#[test]
fn separators_whitespace_and_colons() {
    assert_eq!(
        ok(" rack : abc \n zone:west;;\n").as_slice(),
        &[text("rack", "abc"), text("zone", "west")]
    );
    assert_eq!(ok("os:centos 5").as_slice(), &[text("os", "centos5")]);
    assert_eq!(
        ok("url:http://example.com:80/x").as_slice(),
        &[text("url", "http://example.com:80/x")]
    );
    assert_eq!(ok("cpu:intel(r)").as_slice(), &[text("cpu", "intel(r)")]);
    assert!(ok("").is_empty());
    // Repeated names are allowed, as in Mesos.
    assert_eq!(ok("a:1;a:x").len(), 2);
}

#[test]
fn errors() {
    use AttributesError::*;
    let cases: Vec<(&str, AttributesError)> = vec![
        (
            "rack",
            MissingColon {
                entry: "rack".into(),
                offset: 0,
            },
        ),
        (
            "a:1; rack",
            MissingColon {
                entry: "rack".into(),
                offset: 5,
            },
        ),
        (
            ":abc",
            EmptyName {
                entry: ":abc".into(),
                offset: 0,
            },
        ),
        (
            "a:1\n :abc",
            EmptyName {
                entry: ":abc".into(),
                offset: 5,
            },
        ),
        (
            "rack:",
            EmptyValue {
                name: "rack".into(),
                offset: 5,
            },
        ),
        (
            "rack:  ;a:1",
            EmptyValue {
                name: "rack".into(),
                offset: 5,
            },
        ),
        (
            "tags:{a,b}",
            SetUnsupported {
                name: "tags".into(),
                offset: 5,
            },
        ),
        (
            "tags: {}",
            SetUnsupported {
                name: "tags".into(),
                offset: 6,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(err(input), expected, "{input:?}");
    }
}

#[test]
fn value_errors() {
    use ValueError::*;
    let cases: Vec<(&str, &str, ValueError)> = vec![
        (
            "keys:[1-2",
            "keys",
            Unterminated {
                offset: 5,
                open: '[',
            },
        ),
        (
            "keys:[2-1]",
            "keys",
            InvertedRange {
                offset: 6,
                begin: 2,
                end: 1,
            },
        ),
        (
            "keys:[1-5,2-3]",
            "keys",
            OverlappingRanges {
                offset: 10,
                begin: 2,
                end: 3,
                other_begin: 1,
                other_end: 5,
            },
        ),
        (
            "keys:[x-1]",
            "keys",
            InvalidBound {
                offset: 6,
                token: "x".into(),
            },
        ),
        (
            "keys:[1-2]z",
            "keys",
            Trailing {
                offset: 10,
                rest: "z".into(),
            },
        ),
        (
            "tags:{a,a}",
            "tags",
            DuplicateSetItem {
                offset: 8,
                item: "a".into(),
            },
        ),
        (
            "tags:{a",
            "tags",
            Unterminated {
                offset: 5,
                open: '{',
            },
        ),
        (
            "os:linux]",
            "os",
            UnbalancedBracket {
                offset: 8,
                bracket: ']',
            },
        ),
        (
            "os:a{b}",
            "os",
            UnexpectedChar {
                offset: 4,
                found: '{',
                expected: "no brackets inside a scalar or text",
            },
        ),
        (
            "os:lin(ux",
            "os",
            UnbalancedBracket {
                offset: 6,
                bracket: '(',
            },
        ),
        (
            "tiny:1e-310",
            "tiny",
            Subnormal {
                offset: 5,
                token: "1e-310".into(),
            },
        ),
    ];
    for (input, name, source) in cases {
        assert_eq!(
            err(input),
            AttributesError::Value {
                name: name.into(),
                offset: source.offset(),
                source
            },
            "{input:?}"
        );
    }
    assert_eq!(
        err("a:1;keys:[2-1]").to_string(),
        "attribute 'keys' at offset 10: range [2-1] is inverted (begin > end)"
    );
}

#[test]
fn lookup_and_containment() {
    let parsed = ok("rack:abc;level:10;keys:[1-5]");
    assert_eq!(parsed.get("level"), Some(&scalar("level", 10.0)));
    assert_eq!(parsed.get("nope"), None);
    assert!(
        parsed.contains(&scalar("level", 10.0004)),
        "fixed-point equality"
    );
    assert!(!parsed.contains(&scalar("level", 11.0)));
    assert!(parsed.contains(&ranges_of("keys", &[(1, 2), (3, 5)])));
    assert!(parsed.contains(&text("rack", "abc")));
    assert!(!parsed.contains(&text("level", "10")), "types must match");
    let v: Vec<Attribute> = parsed.clone().into();
    assert_eq!(Attributes::from(v.clone()), parsed);
    assert_eq!(v.into_iter().collect::<Attributes>().len(), 3);
}
