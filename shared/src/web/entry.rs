//! What every `bootstrap` binary does once per cold start: logging, AWS configuration
//! ([`crate::adapters::aws`]), and the Lambda loop. Kept here so each `main.rs` is three lines of
//! wiring.

use std::future::Future;

use lambda_http::{service_fn, Body, Request, Response};

/// An HTTP function: built once per cold start, then called for every request.
pub trait HttpFunction: Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;

    /// Opens, during init, the connections the first request will need (one cheap call per
    /// client on the hot path), so its TLS handshakes are not paid by a waiting person.
    fn warm_up(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How long warming the connections may add to init at most: the first request would pay the
/// same handshakes anyway; a dependency that does not answer only loses the head start.
pub const WARM_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `warm_up` within [`WARM_UP_TIMEOUT`], never failing init (unless `WARM_CONNECTIONS=false`,
/// which the bench sets to measure the difference).
pub async fn warm_up(warm_up: impl Future<Output = ()>) {
    if std::env::var("WARM_CONNECTIONS").as_deref() == Ok("false") {
        return;
    }
    let _ = tokio::time::timeout(WARM_UP_TIMEOUT, warm_up).await;
}

/// JSON logs with the invocation's ids when Lambda asks for JSON, plain text otherwise
/// ([`crate::foundation::logging`]).
pub fn init_tracing() {
    crate::foundation::logging::init();
}

/// Lambda counts an invocation as an error only when the function returns one: a `500` (a bug or
/// an unexpected failure, already logged) is returned as an error so the `Errors` metric and its
/// alarm see it; API Gateway then answers `500 {"message":"Internal Server Error"}` itself.
/// Everything else, `503` with `Retry-After` included, is a response.
pub fn as_lambda_result(response: Response<Body>) -> Result<Response<Body>, lambda_http::Error> {
    if response.status() == http::StatusCode::INTERNAL_SERVER_ERROR {
        return Err("the handler answered 500 (see the log line before this one)".into());
    }
    Ok(response)
}

/// Runs an HTTP function under the Lambda runtime.
pub async fn run_http<F: HttpFunction>(function: F) -> Result<(), lambda_http::Error> {
    let function: &'static F = Box::leak(Box::new(function));
    warm_up(function.warm_up()).await;
    lambda_http::run(service_fn(move |req: Request| async move { as_lambda_result(function.handle(req).await) })).await
}

/// The AWS configuration every function builds once per cold start ([`crate::adapters::aws`]).
pub async fn aws_config() -> aws_config::SdkConfig {
    crate::adapters::aws::config().await
}
