//! Mesos's duration syntax, used by flags (`--executor_registration_timeout=1mins`)
//! and by environment variables executors read (`MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs`):
//! a decimal number followed by `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days` or `weeks`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration '{value}': {reason} (expected a number and a unit: ns, us, ms, secs, mins, hrs, days, weeks, e.g. '5secs')"
)]
pub struct DurationError {
    pub value: String,
    pub reason: &'static str,
}

const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("secs", 1.0),
    ("mins", 60.0),
    ("hrs", 3600.0),
    ("days", 86_400.0),
    ("weeks", 604_800.0),
];

/// Parses `5secs`, `1.5mins`, `100ms`. Negative values are refused.
pub fn parse_duration(value: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        value: value.to_string(),
        reason,
    };
    let text = value.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| err("no unit"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().map_err(|_| err("not a number"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(err("must be a finite number >= 0"));
    }
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(|| err("unknown unit"))?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| err("out of range"))
}

/// Formats like Mesos's `Duration` output: the largest unit that keeps the
/// value at least 1 (`5secs`, `1.5mins`, `100ms`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs == 0.0 {
        return "0ns".to_string();
    }
    let (unit, scale) = UNITS
        .iter()
        .rev()
        .find(|(_, scale)| secs >= *scale)
        .copied()
        .unwrap_or(("ns", 1e-9));
    let value = secs / scale;
    let rounded = (value * 1e6).round() / 1e6;
    format!("{rounded}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("5secs").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5mins").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("2hrs").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("1days").unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_duration("1weeks").unwrap(),
            Duration::from_secs(604_800)
        );
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
    }

    #[test]
    fn refuses_what_mesos_refuses() {
        for bad in ["5", "secs", "-1secs", "5seconds", "1.2.3secs", ""] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn formats_in_the_largest_unit() {
        assert_eq!(format_duration(Duration::from_secs(5)), "5secs");
        assert_eq!(format_duration(Duration::from_secs(90)), "1.5mins");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_secs(900)), "15mins");
        assert_eq!(format_duration(Duration::ZERO), "0ns");
        for d in ["5secs", "1.5mins", "100ms", "2hrs", "3days"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }
}
