//! The `build_date`, `build_time` and `build_user` both daemons report in
//! `/state` and `/version`, as Mesos's `build::DATE`/`TIME`/`USER`
//! (src/common/build.cpp). tepui embeds no build timestamp, so the time
//! the running binary was last written (its link time) stands for it; it
//! reads the executable's metadata, so it lives with the `server` feature.

use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

/// The build's facts, as Mesos's JSON writes them.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    /// Seconds since the epoch.
    pub time: f64,
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub date: String,
    pub user: &'static str,
}

pub fn build_info() -> &'static BuildInfo {
    static INFO: OnceLock<BuildInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        // `/proc/self/exe` still opens the running binary after an upgrade
        // replaced its file (its path then ends in " (deleted)").
        let secs = std::fs::metadata("/proc/self/exe")
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        BuildInfo {
            time: secs as f64,
            date: utc_date(secs),
            user: "tepui",
        }
    })
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (the proleptic Gregorian
/// calendar, days-from-civil inverted).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(super::utc_date(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(super::utc_date(1_796_665_274), "2026-12-07 17:41:14");
    }
}
