//! What every `bootstrap` binary does once per cold start: logging, AWS configuration, and the
//! Lambda loop. Kept here so each `main.rs` is three lines of wiring.

use std::future::Future;
use std::time::Duration;

use lambda_http::{service_fn, Body, Request, Response};

/// An HTTP function: built once per cold start, then called for every request.
pub trait HttpFunction: Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// JSON logs with the invocation's ids when Lambda asks for JSON, plain text otherwise
/// ([`crate::logging`]).
pub fn init_tracing() {
    crate::logging::init();
}

/// How long one attempt of an AWS call may take, all attempts together, and how many there are.
/// Every request makes a handful of calls in sequence, so a dependency that stops answering costs
/// a request at most [`OPERATION_TIMEOUT`] per call, and the per-request deadline in
/// [`crate::http::serve`] bounds the whole before the function's own timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_ATTEMPTS: u32 = 3;

/// The standard AWS configuration chain (region, credentials and `AWS_ENDPOINT_URL*` from the
/// environment; local runs differ only in those variables) with bounded time: connect, attempt and
/// operation timeouts and a standard retry policy with a short backoff.
pub async fn aws_config() -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(500)),
        )
        .load()
        .await
}

/// The HTTPS client every SDK client shares: rustls trusting only the roots AWS endpoints chain to
/// (`shared/certs/aws-roots.pem`). The default client reads and parses the whole system trust
/// store (~140 certificates) at every cold start, most of a function's init time.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_pem_certificate(include_bytes!("../certs/aws-roots.pem").as_slice());
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // The bundled roots always parse; never leave a function without a client.
        Err(_) => builder.build_https(),
    }
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
    lambda_http::run(service_fn(move |req: Request| async move { as_lambda_result(function.handle(req).await) })).await
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn the_bundled_aws_roots_are_five_der_certificates() {
        let pem = include_str!("../certs/aws-roots.pem");
        let ders: Vec<Vec<u8>> = pem
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body = block.split("-----END CERTIFICATE-----").next().unwrap();
                let b64: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")
            })
            .collect();
        assert_eq!(ders.len(), 5, "Amazon Root CA 1-4 and Starfield Services Root G2");
        // X.509 certificates are DER SEQUENCEs with a long-form length.
        assert!(ders.iter().all(|d| d.len() > 400 && d[0] == 0x30 && d[1] == 0x82));
        // The HTTPS client builds with them.
        let _ = super::https_client();
    }
}
