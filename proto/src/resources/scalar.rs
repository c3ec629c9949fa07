//! Scalar arithmetic with Mesos's fixed-point semantics.
//!
//! Mesos converts scalars to int64 thousandths before every sum, difference
//! and comparison (`values.cpp`), so that `0.1 + 0.2 == 0.3` and a framework
//! that sums offers never drifts from the master's books. Anything finer than
//! a thousandth is rounded away; we must do the same or the two sides of the
//! API would disagree on whether an offer covers a task.

use std::cmp::Ordering;
use std::fmt;

/// Thousandths per unit: three decimal digits of precision.
const SCALE: f64 = 1000.0;

/// The largest scalar whose fixed-point form fits in an `i64`. Mesos's
/// `llround` overflow is undefined behaviour; we refuse such values instead.
pub const MAX_FIXED: i64 = i64::MAX / 1000;

/// The fixed-point (thousandths) form of `value`, rounded half away from zero
/// as C's `llround`. Out-of-range values saturate and NaN becomes 0, so this
/// never panics; validation keeps such values out of `Resources`.
pub fn to_fixed(value: f64) -> i64 {
    // `as` saturates and maps NaN to 0, which is the panic-free behaviour we
    // want for inputs validation has not seen yet.
    (value * SCALE).round() as i64
}

/// The floating-point value of a fixed-point amount: the double nearest to
/// `fixed / 1000`. (Mesos adds quotient and remainder/1000 instead, which can
/// land one ulp away, e.g. 1.2349999999999999 for 1235; every comparison goes
/// through [`to_fixed`], so only the printed JSON differs, and the nearest
/// double prints as the decimal the operator expects.)
pub fn from_fixed(fixed: i64) -> f64 {
    fixed as f64 / SCALE
}

/// Rounds `value` to Mesos's precision.
pub fn round(value: f64) -> f64 {
    from_fixed(to_fixed(value))
}

/// `a + b` in fixed point.
pub fn add(a: f64, b: f64) -> f64 {
    from_fixed(to_fixed(a).saturating_add(to_fixed(b)))
}

/// `a - b` in fixed point (may be negative; callers decide what that means).
pub fn subtract(a: f64, b: f64) -> f64 {
    from_fixed(to_fixed(a).saturating_sub(to_fixed(b)))
}

/// Compares in fixed point, so values closer than half a thousandth are equal.
pub fn compare(a: f64, b: f64) -> Ordering {
    to_fixed(a).cmp(&to_fixed(b))
}

/// `a == b` at Mesos's precision.
pub fn equal(a: f64, b: f64) -> bool {
    compare(a, b) == Ordering::Equal
}

/// `a <= b` at Mesos's precision.
pub fn less_eq(a: f64, b: f64) -> bool {
    compare(a, b) != Ordering::Greater
}

/// `true` if `value` rounds to zero.
pub fn is_zero(value: f64) -> bool {
    to_fixed(value) == 0
}

/// Formats a scalar as Mesos's `operator<<` does: rounded to thousandths, then
/// printed like C++ streams with 15 significant digits (`%.15g`), so `24576`
/// prints as `24576`, `0.5` as `0.5` and `1e15` as `1e+15`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisplayScalar(pub f64);

impl fmt::Display for DisplayScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = round(self.0);
        if !self.0.is_finite() {
            // Not representable in fixed point; print what C++ would.
            return match self.0 {
                v if v.is_nan() => f.write_str("nan"),
                v if v > 0.0 => f.write_str("inf"),
                _ => f.write_str("-inf"),
            };
        }
        f.write_str(&format_g15(value))
    }
}

/// C's `%.15g`: fixed notation for exponents in [-5, 15), scientific
/// otherwise, trailing zeros removed in both.
fn format_g15(value: f64) -> String {
    const PRECISION: i32 = 15;
    if value == 0.0 {
        return "0".to_string();
    }
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = (PRECISION - 1 - exponent).max(0) as usize;
        trim_fraction(&format!("{value:.decimals$}")).to_string()
    }
}

fn trim_fraction(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_makes_decimal_sums_exact() {
        assert!(equal(add(0.1, 0.2), 0.3));
        assert_eq!(add(0.1, 0.2), 0.3);
        assert_eq!(subtract(0.3, 0.1), 0.2);
        assert_eq!(add(1.5, 2.25), 3.75);
    }

    #[test]
    fn precision_is_three_decimals() {
        assert!(equal(1.5123, 1.512));
        assert!(!equal(1.5125, 1.512));
        assert_eq!(round(1.0004), 1.0);
        assert_eq!(round(1.0005), 1.001);
        assert!(is_zero(0.0004));
        assert!(!is_zero(0.0005));
        assert!(less_eq(1.0001, 1.0));
        assert_eq!(compare(2.0, 1.0), Ordering::Greater);
    }

    #[test]
    fn negative_results_are_representable() {
        assert_eq!(subtract(1.0, 2.5), -1.5);
        assert_eq!(to_fixed(-1.5), -1500);
        assert_eq!(from_fixed(-1500), -1.5);
    }

    #[test]
    fn out_of_range_inputs_do_not_panic() {
        assert_eq!(to_fixed(f64::NAN), 0);
        assert_eq!(to_fixed(f64::INFINITY), i64::MAX);
        assert_eq!(to_fixed(f64::NEG_INFINITY), i64::MIN);
        let _ = add(f64::MAX, f64::MAX);
        let _ = subtract(f64::MIN, f64::MAX);
    }

    #[test]
    fn displays_like_cpp_streams() {
        let show = |v: f64| DisplayScalar(v).to_string();
        assert_eq!(show(4.0), "4");
        assert_eq!(show(24576.0), "24576");
        assert_eq!(show(0.5), "0.5");
        assert_eq!(show(0.1 + 0.2), "0.3");
        assert_eq!(show(1.2345), "1.235"); // rounded half away from zero
        assert_eq!(show(0.001), "0.001");
        assert_eq!(show(0.0004), "0");
        assert_eq!(show(123456789012.345), "123456789012.345");
        assert_eq!(show(1e15), "1e+15");
        assert_eq!(show(-2.5), "-2.5");
        assert_eq!(show(f64::NAN), "nan");
        assert_eq!(show(f64::INFINITY), "inf");
    }
}
