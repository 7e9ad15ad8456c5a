//! Counts DynamoDB round trips, per request and per process, with an SDK interceptor: every
//! attempt the SDK puts on the wire (retries included) counts once. SPEC §6 budgets are asserted
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
