//! Business metrics in CloudWatch embedded metric format (EMF): one JSON line on stdout per
//! metric, which Lambda's log pipeline turns into a CloudWatch metric with no SDK call and no
//! extra round trip. Namespace `InspectionPortal`, one dimension `Stage` (the template's `STAGE`),
//! so the alarms of two stages in one account stay apart.
//!
//! Lines are written only on Lambda (or with `METRICS_EMF=true`); every count is also kept in this
//! process ([`snapshot`]) so the local stack can show them, and in the [`Recorder`] of the scope it
//! was made in, so a test reads exactly the counts its own app made while others run beside it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub const NAMESPACE: &str = "InspectionPortal";

/// The metrics the code emits (the template's alarms and `docs/operations.md` name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    PaymentsApplied,
    PaymentsParked,
    EmailsSent,
    EmailsFailed,
    EmailsFailedPermanently,
    EmailsSuppressed,
    DocumentsPublished,
    DocumentsParked,
    GateAllowed,
    GateLocked,
    ServerErrors,
    DependencyUnavailable,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::PaymentsApplied => "PaymentsApplied",
            Metric::PaymentsParked => "PaymentsParked",
            Metric::EmailsSent => "EmailsSent",
            Metric::EmailsFailed => "EmailsFailed",
            Metric::EmailsFailedPermanently => "EmailsFailedPermanently",
            Metric::EmailsSuppressed => "EmailsSuppressed",
            Metric::DocumentsPublished => "DocumentsPublished",
            Metric::DocumentsParked => "DocumentsParked",
            Metric::GateAllowed => "GateAllowed",
            Metric::GateLocked => "GateLocked",
            Metric::ServerErrors => "ServerErrors",
            Metric::DependencyUnavailable => "DependencyUnavailable",
        }
    }
}

static COUNTS: Mutex<BTreeMap<Metric, u64>> = Mutex::new(BTreeMap::new());

/// The counts made inside its [`scope`](Recorder::scope)s (one app's requests and jobs), apart from
/// everything else the process counts. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<BTreeMap<Metric, u64>>>);

tokio::task_local! {
    static RECORDER: Recorder;
}

impl Recorder {
    /// Runs `fut` with the counts it makes also kept here.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        RECORDER.scope(self.clone(), fut).await
    }

    /// How many of `metric` were counted in this recorder's scopes so far.
    pub fn total(&self, metric: Metric) -> u64 {
        self.0.lock().map(|c| c.get(&metric).copied().unwrap_or(0)).unwrap_or(0)
    }

    fn add(&self, metric: Metric, n: u64) {
        if let Ok(mut c) = self.0.lock() {
            *c.entry(metric).or_default() += n;
        }
    }
}

/// Where the lines go, read once per process: `Some((stage, level))` when they are written.
fn emf_target() -> Option<(&'static str, &'static str)> {
    static TARGET: std::sync::OnceLock<Option<(String, &'static str)>> = std::sync::OnceLock::new();
    TARGET
        .get_or_init(|| {
            let on = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
                || std::env::var("METRICS_EMF").is_ok_and(|v| v == "true");
            let level = line_level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref());
            on.then(|| (std::env::var("STAGE").unwrap_or_else(|_| "local".into()), level))
        })
        .as_ref()
        .map(|(stage, level)| (stage.as_str(), *level))
}

/// The `level` a metric line carries. With the JSON log format Lambda filters application lines
/// by their `level` (a line without one counts as INFO), so at an application log level of WARN or
/// ERROR a plain metric line would be dropped and its alarm go blind. Metrics are not application
/// logs: each line carries exactly the configured level, the least severe one that still passes.
fn line_level(configured: Option<&str>) -> &'static str {
    match configured.map(str::to_ascii_uppercase).as_deref() {
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

/// Counts `n` occurrences of `metric` (nothing is written for 0).
pub fn count(metric: Metric, n: u64) {
    if n == 0 {
        return;
    }
    if let Ok(mut c) = COUNTS.lock() {
        *c.entry(metric).or_default() += n;
    }
    let _ = RECORDER.try_with(|r| r.add(metric, n));
    if let Some((stage, level)) = emf_target() {
        let mut line =
            emf_line(metric, n, stage, crate::foundation::logging::service(), time::OffsetDateTime::now_utc());
        line["level"] = json!(level);
        println!("{line}");
    }
}

/// Every count this process made so far.
pub fn snapshot() -> BTreeMap<Metric, u64> {
    COUNTS.lock().map(|c| c.clone()).unwrap_or_default()
}

/// How many of `metric` this process counted so far.
pub fn total(metric: Metric) -> u64 {
    snapshot().get(&metric).copied().unwrap_or(0)
}

fn emf_line(metric: Metric, n: u64, stage: &str, service: &str, at: time::OffsetDateTime) -> Value {
    let mut line = json!({
        "_aws": {
            "Timestamp": (at.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Stage"]],
                "Metrics": [{ "Name": metric.name(), "Unit": "Count" }],
            }],
        },
        "Stage": stage,
        "service": service,
    });
    line[metric.name()] = json!(n);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        // A pinned instant: the line's timestamp is its epoch milliseconds, whatever the date.
        let at = time::macros::datetime!(2026-11-23 12:00 UTC);
        let l = emf_line(Metric::DocumentsParked, 3, "prod", "publish", at);
        let directive = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(l["_aws"]["Timestamp"], 1_795_435_200_000_i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        // Every dimension and metric named in the directive is a top-level member of the line.
        for d in directive["Dimensions"][0].as_array().unwrap() {
            assert!(l[d.as_str().unwrap()].is_string());
        }
        assert_eq!(directive["Metrics"][0]["Name"], "DocumentsParked");
        assert_eq!(l["DocumentsParked"], 3);
        assert_eq!(l["Stage"], "prod");
    }

    /// Lambda's application log-level filter, as documented: a JSON line is sent when its `level`
    /// (INFO when missing or unknown) is at least as severe as the configured one.
    fn lambda_sends(line: &Value, configured: &str) -> bool {
        const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let rank = |l: &str| ORDER.iter().position(|o| o.eq_ignore_ascii_case(l));
        let level = line["level"].as_str().and_then(rank).unwrap_or(2);
        level >= rank(configured).unwrap()
    }

    #[test]
    fn no_application_log_level_silences_a_metric_line() {
        let at = time::macros::datetime!(2026-11-23 12:00 UTC);
        let plain = emf_line(Metric::PaymentsApplied, 1, "prod", "payment-webhook", at);
        assert!(!lambda_sends(&plain, "WARN"), "without a level, the line counts as INFO and is dropped");
        for configured in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "warn"] {
            let mut line = plain.clone();
            line["level"] = json!(line_level(Some(configured)));
            assert!(lambda_sends(&line, configured), "dropped at {configured}: {line}");
        }
        assert_eq!(line_level(None), "INFO", "no filter configured: an ordinary INFO line");
    }

    #[tokio::test]
    async fn counts_are_kept_in_process_and_in_the_recorder_of_their_scope() {
        let (mine, other) = (Recorder::default(), Recorder::default());
        let before = total(Metric::GateLocked);
        mine.scope(async {
            count(Metric::GateLocked, 2);
            count(Metric::GateLocked, 0);
        })
        .await;
        other.scope(async { count(Metric::GateLocked, 5) }).await;
        count(Metric::GateLocked, 7);
        assert_eq!((mine.total(Metric::GateLocked), other.total(Metric::GateLocked)), (2, 5), "each its own");
        assert_eq!(mine.total(Metric::EmailsSent), 0);
        // Other tests of this process count too: the process-wide total only grows.
        assert!(total(Metric::GateLocked) >= before + 14);
    }
}
