//! What every `bootstrap` binary does once per cold start: logging, AWS configuration, and the
//! Lambda loop. Kept here so each `main.rs` is three lines of wiring.

use std::convert::Infallible;
use std::future::Future;

use lambda_http::{service_fn, Body, Request, Response};

/// An HTTP function: built once per cold start, then called for every request.
pub trait HttpFunction: Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text otherwise.
/// Level from `RUST_LOG`, then `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter)).with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().with_current_span(false).without_time().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// The standard AWS configuration chain: region, credentials and `AWS_ENDPOINT_URL*` from the
/// environment. Local runs differ only in those variables.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// Runs an HTTP function under the Lambda runtime.
pub async fn run_http<F: HttpFunction>(function: F) -> Result<(), lambda_http::Error> {
    let function: &'static F = Box::leak(Box::new(function));
    lambda_http::run(service_fn(move |req: Request| async move { Ok::<_, Infallible>(function.handle(req).await) }))
        .await
}
