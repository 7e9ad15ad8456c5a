//! Log lines CloudWatch can search: on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`) every line is one JSON
//! object whose top level carries `service`, `cold_start`, `request_id` (Lambda's), `apigw_request_id`
//! (API Gateway's), `trace_id` (X-Ray's) next to the event's own fields, so a query for one request
//! or trace finds every line of it. Locally the lines are plain text.
//!
//! The level comes from Lambda's `AWS_LAMBDA_LOG_LEVEL` (the template's `ApplicationLogLevel`), then
//! `RUST_LOG`, else `info`.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The ids of the invocation being served.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub request_id: Option<String>,
    pub apigw_request_id: Option<String>,
    pub trace_id: Option<String>,
    pub cold_start: bool,
}

tokio::task_local! {
    static INVOCATION: Invocation;
}

static FIRST: AtomicBool = AtomicBool::new(true);
static SERVICE: OnceLock<String> = OnceLock::new();

/// This process's service name: the Lambda function's name, else the binary's.
pub fn service() -> &'static str {
    SERVICE.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
            std::env::args()
                .next()
                .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "portal".into())
        })
    })
}

impl Invocation {
    /// The ids of a Lambda invocation (the first one of a process is the cold start).
    pub fn new(request_id: Option<String>, apigw_request_id: Option<String>, trace_id: Option<String>) -> Self {
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Invocation {
            request_id: non_empty(request_id),
            apigw_request_id: non_empty(apigw_request_id),
            // `Root=1-…;Parent=…;Sampled=1` → `1-…`, the id X-Ray and CloudWatch search by.
            trace_id: non_empty(trace_id)
                .map(|t| t.split(';').find_map(|p| p.strip_prefix("Root=")).map(str::to_owned).unwrap_or(t)),
            cold_start: FIRST.swap(false, Ordering::Relaxed),
        }
    }
}

/// Runs `fut` with these ids on every log line it writes. An invocation inside another one (the
/// publish function's HTTP events) keeps the outer ids.
pub async fn scope<F: Future>(ids: Invocation, fut: F) -> F::Output {
    if INVOCATION.try_with(|_| ()).is_ok() {
        return fut.await;
    }
    INVOCATION.scope(ids, fut).await
}

/// Sets up logging once per process (later calls do nothing).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| match l.to_ascii_lowercase().as_str() {
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        })
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter)).with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json { builder.event_format(LambdaJson).try_init() } else { builder.with_ansi(false).try_init() };
}

/// One JSON object per event, with the invocation's ids at the top level.
pub struct LambdaJson;

impl<S, N> FormatEvent<S, N> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        writeln!(writer, "{}", line(event))
    }
}

fn line(event: &Event<'_>) -> Value {
    let mut fields = Map::new();
    event.record(&mut Fields(&mut fields));
    let mut out = Map::new();
    let now = time::OffsetDateTime::now_utc();
    out.insert("timestamp".into(), Value::String(crate::foundation::clock::rfc3339(now)));
    out.insert("level".into(), Value::String(event.metadata().level().as_str().to_owned()));
    out.insert("message".into(), fields.remove("message").unwrap_or(Value::String(String::new())));
    out.insert("service".into(), Value::String(service().to_owned()));
    let ids = INVOCATION.try_with(Clone::clone).ok();
    if let Some(ids) = ids {
        out.insert("cold_start".into(), Value::Bool(ids.cold_start));
        for (k, v) in
            [("request_id", ids.request_id), ("apigw_request_id", ids.apigw_request_id), ("trace_id", ids.trace_id)]
        {
            if let Some(v) = v {
                out.insert(k.into(), Value::String(v));
            }
        }
    }
    for (k, v) in fields {
        // The event's own fields never overwrite the ids.
        out.entry(k).or_insert(v);
    }
    Value::Object(out)
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), Value::String(crate::foundation::problem::error_chain(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn lines_carry_the_invocation_ids_at_the_top_level() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt().event_format(LambdaJson).with_writer(move || out.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let ids = Invocation::new(
            Some("req-1".into()),
            Some("apigw-1".into()),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into()),
        );
        scope(ids, async {
            tracing::info!(status = 200, request_id = "spoofed", "request");
        })
        .await;
        tracing::warn!("outside");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let l = &lines[0];
        assert_eq!(l["message"], "request");
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["status"], 200);
        assert_eq!(l["request_id"], "req-1", "an event field cannot overwrite the id");
        assert_eq!(l["apigw_request_id"], "apigw-1");
        assert_eq!(l["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert!(l["cold_start"].is_boolean() && l["service"].is_string());
        assert!(lines[1].get("request_id").is_none(), "no ids outside an invocation");
    }
}
