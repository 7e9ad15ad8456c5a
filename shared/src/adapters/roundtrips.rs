//! Counts DynamoDB round trips, per request and per process, with an SDK interceptor: every
//! attempt the SDK puts on the wire (retries included) counts once. The budgets of docs/product.md §8 are asserted
//! on these numbers by the tests and reported by the benchmark.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

static TOTAL: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static CURRENT: Arc<AtomicU64>;
}

/// All round trips this process has made.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Runs `fut` with its own counter and returns its output with the round trips it made.
pub async fn measure<F: Future>(fut: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = CURRENT.scope(counter.clone(), fut).await;
    (out, counter.load(Ordering::Relaxed))
}

fn record() {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let _ = CURRENT.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
}

/// Attach to the DynamoDB client: `config::Builder::interceptor(RoundTripCounter)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundTripCounter;

impl Intercept for RoundTripCounter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        record();
        Ok(())
    }
}

// ---- which AWS operations each function calls (for the IAM test) ----

tokio::task_local! {
    static FUNCTION: &'static str;
}

static CALLS: std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Runs `fut` as the function `name` (its template logical id): the AWS operations it calls are
/// recorded under that name.
pub async fn as_function<F: Future>(name: &'static str, fut: F) -> F::Output {
    FUNCTION.scope(name, fut).await
}

/// Every (function, service, operation) recorded in this process ("unknown" outside
/// [`as_function`]). A small set: one entry per distinct call site kind.
pub fn calls() -> Vec<(String, String, String)> {
    CALLS.lock().map(|c| c.iter().cloned().collect()).unwrap_or_default()
}

/// Records a call made without a request of its own: a presigned URL is used with the function's
/// credentials, so it needs the permission of the operation it signs.
pub fn record_call(service: &str, operation: &str) {
    let function = FUNCTION.try_with(|f| *f).unwrap_or("unknown");
    if let Ok(mut calls) = CALLS.lock() {
        calls.insert((function.to_owned(), service.to_owned(), operation.to_owned()));
    }
}

/// Attach to every SDK client: records the operation names each function calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct OperationRecorder;

impl Intercept for OperationRecorder {
    fn name(&self) -> &'static str {
        "OperationRecorder"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            record_call(m.service(), m.name());
        }
        Ok(())
    }
}
