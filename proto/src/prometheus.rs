//! Prometheus text exposition (format 0.0.4) of Mesos-named metrics, one
//! scheme for both daemons: `master/tasks_running` is
//! `mesos_master_tasks_running`, every family has `# HELP` and `# TYPE`,
//! and Mesos's counters (docs/monitoring.md, "Type: Counter") are typed
//! `counter`, everything else `gauge`.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric family: its Mesos key and its samples (labels, value).
#[derive(Clone, Debug)]
pub struct Family {
    pub key: String,
    pub kind: Kind,
    pub help: String,
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    /// An unlabelled metric of a Mesos key.
    pub fn single(key: &str, kind: Kind, value: f64) -> Family {
        Family {
            key: key.to_string(),
            kind,
            help: format!("Mesos metric {key}"),
            samples: vec![(Vec::new(), value)],
        }
    }
}

/// `mesos_` + the key with every character a metric name cannot hold
/// replaced by `_`.
pub fn metric_name(key: &str) -> String {
    let mut name = String::from("mesos_");
    for c in key.chars() {
        name.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    name
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The exposition of `families`; a name given twice is written once (the
/// first wins), as a scrape must not repeat a family.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for f in families {
        let name = metric_name(&f.key);
        if !seen.insert(name.clone()) {
            continue;
        }
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in &f.samples {
            out.push_str(&name);
            if !labels.is_empty() {
                let inner: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", inner.join(","));
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
    out
}

/// Whether Mesos documents `key` as a counter (docs/monitoring.md): its
/// terminal task counts, message, call and status-update counts,
/// registrations and removals, allocation runs, gc results, and tepui's
/// own `*_total` keys. Everything else is a gauge.
pub fn kind_of(key: &str) -> Kind {
    const TERMINAL: [&str; 7] = [
        "tasks_error",
        "tasks_failed",
        "tasks_finished",
        "tasks_killed",
        "tasks_lost",
        "tasks_dropped",
        "tasks_gone",
    ];
    let leaf = key.rsplit('/').next().unwrap_or(key);
    let counter = key.ends_with("_total")
        || ((key.starts_with("master/") || key.starts_with("slave/"))
            && (TERMINAL.contains(&leaf)
                || leaf.starts_with("messages_")
                || leaf.starts_with("valid_")
                || leaf.starts_with("invalid_")
                || leaf.starts_with("offers_")
                || leaf == "scheduler_calls"
                || leaf == "dropped_messages"
                || leaf == "executors_terminated"
                || leaf == "executors_preempted"
                || leaf == "container_launch_errors"
                || leaf == "slave_registrations"
                || leaf == "slave_reregistrations"
                || leaf == "slave_removals"
                || leaf == "recovery_slave_removals"))
        || key.starts_with("master/task_lost/")
        || key.starts_with("master/slave_removals/")
        || key.ends_with("allocation_runs")
        || key.starts_with("gc/path_removals_")
        || key.starts_with("containerizer/fetcher/task_fetches_")
        || key == "containerizer/mesos/container_destroy_errors";
    if counter { Kind::Counter } else { Kind::Gauge }
}

/// Families of unlabelled Mesos keys, typed by [`kind_of`].
pub fn families(values: impl IntoIterator<Item = (String, f64)>) -> Vec<Family> {
    values
        .into_iter()
        .map(|(key, value)| Family::single(&key, kind_of(&key), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_escaped_labels() {
        let mut f = Family::single("slave/tasks_finished", Kind::Counter, 3.0);
        f.samples
            .push((vec![("task_id".into(), "a\"b\\c".into())], 1.5));
        let text = render(&[f, Family::single("slave/tasks_finished", Kind::Gauge, 0.0)]);
        assert_eq!(
            text,
            "# HELP mesos_slave_tasks_finished Mesos metric slave/tasks_finished\n\
             # TYPE mesos_slave_tasks_finished counter\n\
             mesos_slave_tasks_finished 3\n\
             mesos_slave_tasks_finished{task_id=\"a\\\"b\\\\c\"} 1.5\n"
        );
        assert_eq!(
            metric_name("allocator/mesos/event_queue-x"),
            "mesos_allocator_mesos_event_queue_x"
        );
    }
}
