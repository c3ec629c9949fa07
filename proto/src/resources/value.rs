//! The value grammar shared by `--resources` and `--attributes`
//! (Mesos's `values::parse`):
//!
//! ```text
//! value  := ranges | set | token
//! ranges := "[" ( range ( "," range )* )? "]"      range := u64 "-" u64
//! set    := "{" ( item? ( "," item? )* )? "}"      item  := any but , { } [ ]
//! token  := a number (scalar) or any other text without brackets
//! ```
//!
//! As in Mesos, whitespace is insignificant *anywhere* in a value (`1 000` is
//! `1000`, `{a b}` is `{ab}`): Mesos strips it before parsing, and attribute
//! text compared by frameworks must come out the same. Unlike Mesos, which
//! coalesces `[1-5,3-7]` silently and accepts `[5-1]` or `[1-2-3-4]`, ranges
//! must be well formed: inverted or overlapping ranges are almost always a
//! typo in an agent's configuration, and we would rather say so at startup.
//! Adjacent ranges (`[1-2,3-4]`) are fine and merged.
//!
//! Whether a number is a scalar (`4`), text (`-1` as an attribute) or an
//! error (`-1` as a resource) depends on the caller, so numbers are returned
//! raw and classified by [`resource_scalar`] or [`attribute_scalar`].

use std::num::FpCategory;

use super::error::ValueError;
use super::ranges;
use super::scalar::MAX_FIXED;
use crate::v1::value::{Ranges, Set};

/// A parsed value before the caller decides what numbers mean.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue {
    /// Anything `f64` parses (including negatives, NaN and infinities).
    Number {
        value: f64,
        token: String,
        offset: usize,
    },
    /// Normalized; no inverted or overlapping input ranges.
    Ranges(Ranges),
    /// No duplicates; empty items (`{a,,b}`) skipped as Mesos does.
    Set(Set),
    /// A token that is not a number.
    Text { text: String, offset: usize },
}

/// Parses `text`, whose first byte is at byte `base` of the whole input (so
/// errors can point into the flag value, not just into this value).
pub(crate) fn parse(text: &str, base: usize) -> Result<RawValue, ValueError> {
    let chars: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(i, c)| (base + i, c))
        .collect();
    let mut cursor = Cursor {
        chars: &chars,
        pos: 0,
        end_offset: base + text.len(),
    };
    let value = match cursor.peek() {
        None => return Err(ValueError::Empty { offset: base }),
        Some((_, '[')) => RawValue::Ranges(cursor.ranges()?),
        Some((_, '{')) => RawValue::Set(cursor.set()?),
        Some(_) => return token(&chars),
    };
    cursor.finish()?;
    Ok(value)
}

/// Classifies a number as a resource quantity: only finite, non-negative,
/// non-subnormal values within Mesos's fixed-point range are quantities.
pub(crate) fn resource_scalar(value: f64, token: &str, offset: usize) -> Result<f64, ValueError> {
    let token = token.to_string();
    match value.classify() {
        FpCategory::Nan | FpCategory::Infinite => Err(ValueError::NotFinite { offset, token }),
        FpCategory::Subnormal => Err(ValueError::Subnormal { offset, token }),
        _ if value < 0.0 => Err(ValueError::Negative { offset, token }),
        _ if value > MAX_FIXED as f64 => Err(ValueError::TooLarge {
            offset,
            token,
            max: MAX_FIXED,
        }),
        // `+ 0.0` turns -0 into 0.
        _ => Ok(value + 0.0),
    }
}

/// Classifies a number as an attribute value, as Mesos does: a finite,
/// non-negative number is a scalar, a negative or non-finite one is text
/// (`level:-1` is the text "-1"), and a subnormal one is an error.
pub(crate) fn attribute_scalar(
    value: f64,
    token: &str,
    offset: usize,
) -> Result<Option<f64>, ValueError> {
    match value.classify() {
        FpCategory::Nan | FpCategory::Infinite => Ok(None),
        FpCategory::Subnormal => Err(ValueError::Subnormal {
            offset,
            token: token.to_string(),
        }),
        _ if value < 0.0 => Ok(None),
        _ => Ok(Some(value + 0.0)),
    }
}

struct Cursor<'a> {
    chars: &'a [(usize, char)],
    pos: usize,
    /// Offset just past the value, for errors at its end.
    end_offset: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<(usize, char)> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let next = self.peek();
        self.pos += usize::from(next.is_some());
        next
    }

    /// The characters up to (not including) one in `stops`, with the offset
    /// of the first (or of the end, if there are none).
    fn take_until(&mut self, stops: &[char]) -> (usize, &'a [(usize, char)]) {
        let offset = self.peek().map_or(self.end_offset, |(o, _)| o);
        let start = self.pos;
        while self.peek().is_some_and(|(_, c)| !stops.contains(&c)) {
            self.pos += 1;
        }
        (offset, self.chars.get(start..self.pos).unwrap_or_default())
    }

    fn unterminated(open: (usize, char)) -> ValueError {
        ValueError::Unterminated {
            offset: open.0,
            open: open.1,
        }
    }

    fn ranges(&mut self) -> Result<Ranges, ValueError> {
        let Some(open) = self.bump() else {
            return Err(ValueError::Empty {
                offset: self.end_offset,
            });
        };
        let mut seen: Vec<(usize, u64, u64)> = Vec::new();
        if matches!(self.peek(), Some((_, ']'))) {
            self.pos += 1;
            return Ok(Ranges::default());
        }
        loop {
            let (offset, begin) = self.bound(open)?;
            match self.bump() {
                Some((_, '-')) => {}
                Some((at, found)) => {
                    return Err(ValueError::UnexpectedChar {
                        offset: at,
                        found,
                        expected: "'-' between range bounds",
                    });
                }
                None => return Err(Self::unterminated(open)),
            }
            let (_, end) = self.bound(open)?;
            if begin > end {
                return Err(ValueError::InvertedRange { offset, begin, end });
            }
            seen.push((offset, begin, end));
            match self.bump() {
                Some((_, ',')) => {}
                Some((_, ']')) => break,
                Some((at, found)) => {
                    return Err(ValueError::UnexpectedChar {
                        offset: at,
                        found,
                        expected: "',' or ']'",
                    });
                }
                None => return Err(Self::unterminated(open)),
            }
        }
        check_overlaps(&mut seen)?;
        Ok(ranges::from_intervals(
            seen.into_iter().map(|(_, b, e)| (b, e)),
        ))
    }

    fn bound(&mut self, open: (usize, char)) -> Result<(usize, u64), ValueError> {
        let (offset, chars) = self.take_until(&['-', ',', '[', ']', '{', '}']);
        let token = collect(chars);
        if token.is_empty() {
            return match self.peek() {
                None => Err(Self::unterminated(open)),
                Some((at, found)) => Err(ValueError::UnexpectedChar {
                    offset: at,
                    found,
                    expected: "a range bound",
                }),
            };
        }
        parse_u64(&token)
            .map(|value| (offset, value))
            .ok_or(ValueError::InvalidBound { offset, token })
    }

    fn set(&mut self) -> Result<Set, ValueError> {
        let Some(open) = self.bump() else {
            return Err(ValueError::Empty {
                offset: self.end_offset,
            });
        };
        let mut items: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let (offset, chars) = self.take_until(&[',', '{', '}', '[', ']']);
            check_parens(chars)?;
            let item = collect(chars);
            if !item.is_empty() {
                if !seen.insert(item.clone()) {
                    return Err(ValueError::DuplicateSetItem { offset, item });
                }
                items.push(item);
            }
            match self.bump() {
                Some((_, ',')) => {}
                Some((_, '}')) => break,
                Some((at, found)) => {
                    return Err(ValueError::UnexpectedChar {
                        offset: at,
                        found,
                        expected: "',' or '}'",
                    });
                }
                None => return Err(Self::unterminated(open)),
            }
        }
        Ok(Set { item: items })
    }

    fn finish(&self) -> Result<(), ValueError> {
        match self.chars.get(self.pos..) {
            Some(rest @ [(offset, _), ..]) => Err(ValueError::Trailing {
                offset: *offset,
                rest: collect(rest),
            }),
            _ => Ok(()),
        }
    }
}

/// A bare token: a number, or text without brackets.
fn token(chars: &[(usize, char)]) -> Result<RawValue, ValueError> {
    let offset = chars.first().map_or(0, |(o, _)| *o);
    for &(at, c) in chars {
        match c {
            '[' | '{' => {
                return Err(ValueError::UnexpectedChar {
                    offset: at,
                    found: c,
                    expected: "no brackets inside a scalar or text",
                });
            }
            ']' | '}' => {
                return Err(ValueError::UnbalancedBracket {
                    offset: at,
                    bracket: c,
                });
            }
            _ => {}
        }
    }
    check_parens(chars)?;
    let text = collect(chars);
    Ok(match parse_f64(&text) {
        Some(value) => RawValue::Number {
            value,
            token: text,
            offset,
        },
        None => RawValue::Text { text, offset },
    })
}

/// Rejects input ranges that share an integer, naming the later one. Sorting
/// keeps this O(n log n) however many ranges a flag lists: once sorted, any
/// overlap shows up between neighbours.
fn check_overlaps(ranges: &mut [(usize, u64, u64)]) -> Result<(), ValueError> {
    ranges.sort_unstable_by_key(|&(_, begin, end)| (begin, end));
    for pair in ranges.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if second.1 <= first.2 {
            let (later, earlier) = if first.0 > second.0 {
                (first, second)
            } else {
                (second, first)
            };
            return Err(ValueError::OverlappingRanges {
                offset: later.0,
                begin: later.1,
                end: later.2,
                other_begin: earlier.1,
                other_end: earlier.2,
            });
        }
    }
    Ok(())
}

fn collect(chars: &[(usize, char)]) -> String {
    chars.iter().map(|(_, c)| c).collect()
}

/// Mesos requires parentheses in a value to balance.
fn check_parens(chars: &[(usize, char)]) -> Result<(), ValueError> {
    let mut open = Vec::new();
    for &(offset, c) in chars {
        match c {
            '(' => open.push(offset),
            ')' if open.pop().is_none() => {
                return Err(ValueError::UnbalancedBracket {
                    offset,
                    bracket: ')',
                });
            }
            _ => {}
        }
    }
    match open.first() {
        Some(&offset) => Err(ValueError::UnbalancedBracket {
            offset,
            bracket: '(',
        }),
        None => Ok(()),
    }
}

/// A non-negative integer, decimal or `0x` hexadecimal (Mesos's `numify`).
fn parse_u64(token: &str) -> Option<u64> {
    match token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if token.bytes().all(|b| b.is_ascii_digit()) => token.parse().ok(),
        None => None,
    }
}

/// A floating-point number as Mesos's `numify<double>` reads it: decimal with
/// optional sign and exponent, `inf`/`nan`, or an integer in `0x` hex.
fn parse_f64(token: &str) -> Option<f64> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    if unsigned.starts_with("0x") || unsigned.starts_with("0X") {
        let magnitude = parse_u64(unsigned)? as f64;
        return Some(if negative { -magnitude } else { magnitude });
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::value::Range;

    fn ranges_of(pairs: &[(u64, u64)]) -> RawValue {
        RawValue::Ranges(Ranges {
            range: pairs
                .iter()
                .map(|&(begin, end)| Range { begin, end })
                .collect(),
        })
    }

    fn set_of(items: &[&str]) -> RawValue {
        RawValue::Set(Set {
            item: items.iter().map(|i| i.to_string()).collect(),
        })
    }

    fn number(value: f64, token: &str, offset: usize) -> RawValue {
        RawValue::Number {
            value,
            token: token.into(),
            offset,
        }
    }

    #[test]
    fn scalars_and_text() {
        assert_eq!(parse("24", 0), Ok(number(24.0, "24", 0)));
        assert_eq!(parse("  1.5 ", 10), Ok(number(1.5, "1.5", 12)));
        assert_eq!(parse("1e3", 0), Ok(number(1000.0, "1e3", 0)));
        assert_eq!(parse("0x10", 0), Ok(number(16.0, "0x10", 0)));
        assert_eq!(parse("-0x10", 0), Ok(number(-16.0, "-0x10", 0)));
        assert_eq!(parse("1 000", 0), Ok(number(1000.0, "1000", 0)));
        assert_eq!(parse("-1", 0), Ok(number(-1.0, "-1", 0)));
        assert!(matches!(parse("nan", 0), Ok(RawValue::Number { value, .. }) if value.is_nan()));
        assert_eq!(parse("inf", 0), Ok(number(f64::INFINITY, "inf", 0)));
        assert_eq!(
            parse("centos 5", 3),
            Ok(RawValue::Text {
                text: "centos5".into(),
                offset: 3
            })
        );
        assert_eq!(
            parse("0x", 0),
            Ok(RawValue::Text {
                text: "0x".into(),
                offset: 0
            })
        );
        assert_eq!(
            parse("linux(x86)", 0),
            Ok(RawValue::Text {
                text: "linux(x86)".into(),
                offset: 0
            })
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse("[1-2]", 0), Ok(ranges_of(&[(1, 2)])));
        assert_eq!(
            parse("[21000-24000,30000-34000]", 0),
            Ok(ranges_of(&[(21000, 24000), (30000, 34000)]))
        );
        assert_eq!(parse(" [ 3 - 4 , 1-2 ] ", 0), Ok(ranges_of(&[(1, 4)])));
        assert_eq!(parse("[]", 0), Ok(ranges_of(&[])));
        assert_eq!(parse("[0x10-0x1f]", 0), Ok(ranges_of(&[(16, 31)])));
        assert_eq!(
            parse("[0-18446744073709551615]", 0),
            Ok(ranges_of(&[(0, u64::MAX)]))
        );
    }

    #[test]
    fn many_ranges() {
        let text = format!(
            "[{}]",
            (0..20_000u64)
                .rev()
                .map(|i| format!("{}-{}", i * 10, i * 10 + 4))
                .collect::<Vec<_>>()
                .join(",")
        );
        let Ok(RawValue::Ranges(parsed)) = parse(&text, 0) else {
            panic!("20000 ranges did not parse");
        };
        assert_eq!(parsed.range.len(), 20_000);
        assert_eq!(parsed.range.first().map(|r| (r.begin, r.end)), Some((0, 4)));
    }

    #[test]
    fn sets() {
        assert_eq!(parse("{a,b,c}", 0), Ok(set_of(&["a", "b", "c"])));
        assert_eq!(parse("{ a , b }", 0), Ok(set_of(&["a", "b"])));
        assert_eq!(parse("{}", 0), Ok(set_of(&[])));
        assert_eq!(parse("{a,,b,}", 0), Ok(set_of(&["a", "b"])));
        assert_eq!(
            parse("{gpu(0),gpu(1)}", 0),
            Ok(set_of(&["gpu(0)", "gpu(1)"]))
        );
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        use ValueError::*;
        let cases: Vec<(&str, ValueError)> = vec![
            ("", Empty { offset: 100 }),
            ("   ", Empty { offset: 100 }),
            (
                "[1-2",
                Unterminated {
                    offset: 100,
                    open: '[',
                },
            ),
            (
                "[1-",
                Unterminated {
                    offset: 100,
                    open: '[',
                },
            ),
            (
                "[1",
                Unterminated {
                    offset: 100,
                    open: '[',
                },
            ),
            (
                "[",
                Unterminated {
                    offset: 100,
                    open: '[',
                },
            ),
            (
                "{a,b",
                Unterminated {
                    offset: 100,
                    open: '{',
                },
            ),
            (
                "{",
                Unterminated {
                    offset: 100,
                    open: '{',
                },
            ),
            (
                "[1-2]]",
                Trailing {
                    offset: 105,
                    rest: "]".into(),
                },
            ),
            (
                "[1-2]x",
                Trailing {
                    offset: 105,
                    rest: "x".into(),
                },
            ),
            (
                "{a}b",
                Trailing {
                    offset: 103,
                    rest: "b".into(),
                },
            ),
            (
                "[1-2-3]",
                UnexpectedChar {
                    offset: 104,
                    found: '-',
                    expected: "',' or ']'",
                },
            ),
            (
                "[1,2]",
                UnexpectedChar {
                    offset: 102,
                    found: ',',
                    expected: "'-' between range bounds",
                },
            ),
            (
                "[-2]",
                UnexpectedChar {
                    offset: 101,
                    found: '-',
                    expected: "a range bound",
                },
            ),
            (
                "[1-2,]",
                UnexpectedChar {
                    offset: 105,
                    found: ']',
                    expected: "a range bound",
                },
            ),
            (
                "[a-2]",
                InvalidBound {
                    offset: 101,
                    token: "a".into(),
                },
            ),
            (
                "[1-99999999999999999999]",
                InvalidBound {
                    offset: 103,
                    token: "99999999999999999999".into(),
                },
            ),
            (
                "[1.5-2]",
                InvalidBound {
                    offset: 101,
                    token: "1.5".into(),
                },
            ),
            (
                "[5-1]",
                InvertedRange {
                    offset: 101,
                    begin: 5,
                    end: 1,
                },
            ),
            (
                "[1-5, 3-7]",
                OverlappingRanges {
                    offset: 106,
                    begin: 3,
                    end: 7,
                    other_begin: 1,
                    other_end: 5,
                },
            ),
            (
                "[3-7,1-3]",
                OverlappingRanges {
                    offset: 105,
                    begin: 1,
                    end: 3,
                    other_begin: 3,
                    other_end: 7,
                },
            ),
            (
                "[1-10,20-30,5-6]",
                OverlappingRanges {
                    offset: 112,
                    begin: 5,
                    end: 6,
                    other_begin: 1,
                    other_end: 10,
                },
            ),
            (
                "{a,b,a}",
                DuplicateSetItem {
                    offset: 105,
                    item: "a".into(),
                },
            ),
            (
                "{a[b}",
                UnexpectedChar {
                    offset: 102,
                    found: '[',
                    expected: "',' or '}'",
                },
            ),
            (
                "{a(}",
                UnbalancedBracket {
                    offset: 102,
                    bracket: '(',
                },
            ),
            (
                "a]",
                UnbalancedBracket {
                    offset: 101,
                    bracket: ']',
                },
            ),
            (
                "a}",
                UnbalancedBracket {
                    offset: 101,
                    bracket: '}',
                },
            ),
            (
                "a[1]",
                UnexpectedChar {
                    offset: 101,
                    found: '[',
                    expected: "no brackets inside a scalar or text",
                },
            ),
            (
                "a)(",
                UnbalancedBracket {
                    offset: 101,
                    bracket: ')',
                },
            ),
            (
                "((a)",
                UnbalancedBracket {
                    offset: 100,
                    bracket: '(',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text, 100), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn resource_scalars() {
        assert_eq!(resource_scalar(4.0, "4", 0), Ok(4.0));
        assert_eq!(resource_scalar(0.0, "0", 0), Ok(0.0));
        assert!(resource_scalar(-0.0, "-0", 0).is_ok_and(|v| v.is_sign_positive()));
        assert_eq!(
            resource_scalar(-1.0, "-1", 7),
            Err(ValueError::Negative {
                offset: 7,
                token: "-1".into()
            })
        );
        assert_eq!(
            resource_scalar(f64::NAN, "nan", 7),
            Err(ValueError::NotFinite {
                offset: 7,
                token: "nan".into()
            })
        );
        assert_eq!(
            resource_scalar(f64::NEG_INFINITY, "-inf", 7),
            Err(ValueError::NotFinite {
                offset: 7,
                token: "-inf".into()
            })
        );
        assert_eq!(
            resource_scalar(1e-310, "1e-310", 7),
            Err(ValueError::Subnormal {
                offset: 7,
                token: "1e-310".into()
            })
        );
        assert_eq!(
            resource_scalar(1e300, "1e300", 7),
            Err(ValueError::TooLarge {
                offset: 7,
                token: "1e300".into(),
                max: MAX_FIXED
            })
        );
    }

    #[test]
    fn attribute_scalars() {
        assert_eq!(attribute_scalar(10.0, "10", 0), Ok(Some(10.0)));
        assert_eq!(attribute_scalar(-1.0, "-1", 0), Ok(None));
        assert_eq!(attribute_scalar(f64::INFINITY, "inf", 0), Ok(None));
        assert_eq!(attribute_scalar(f64::NAN, "nan", 0), Ok(None));
        assert!(attribute_scalar(-1e-310, "-1e-310", 0).is_err());
    }

    #[test]
    fn number_syntax() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0xff"), Some(255));
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("+1"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_f64("0x1.8"), None);
        assert_eq!(parse_f64(".5"), Some(0.5));
        assert_eq!(parse_f64("5."), Some(5.0));
        assert_eq!(parse_f64("1.2.3"), None);
        assert_eq!(parse_f64("abc"), None);
    }
}
