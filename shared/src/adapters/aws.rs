//! The AWS SDK's configuration, shared by every client of a function: one HTTPS client that
//! trusts only AWS's roots, bounded timeouts and a short retry policy.

use std::time::Duration;

/// How long one attempt of an AWS call may take, all attempts together, and how many there are.
/// Every request makes a handful of calls in sequence, so a dependency that stops answering costs
/// a request at most [`OPERATION_TIMEOUT`] per call, and the per-request deadline in
/// [`crate::web::http::serve`] bounds the whole before the function's own timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_ATTEMPTS: u32 = 3;

/// The standard AWS configuration chain (region, credentials and `AWS_ENDPOINT_URL*` from the
/// environment; local runs differ only in those variables) with bounded time: connect, attempt and
/// operation timeouts and a standard retry policy with a short backoff.
pub async fn config() -> aws_config::SdkConfig {
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

/// The HTTPS client every SDK client shares: rustls trusting the roots AWS endpoints chain to
/// (`shared/certs/aws-roots.pem`), plus the certificates of the PEM file `AWS_CA_BUNDLE` names
/// when it is set (the standard variable of AWS's tools, for whoever sits behind a TLS proxy; the
/// bench's TLS terminator in front of DynamoDB Local and moto). The default client reads and
/// parses the whole system trust store (~140 certificates) at every cold start, most of a
/// function's init time.
///
/// The cryptography is *ring*, not the SDK's default aws-lc: aws-lc seeds its random generator
/// from CPU-timing jitter at first use, which was 38 % of a cold start's CPU (init and the first
/// DynamoDB call, profiled at 1,024 MB's CPU share) and put the payment webhook's cold request at
/// 250 ms at 256 MB (58 ms with ring). What is lost: the post-quantum hybrid key exchange
/// (X25519MLKEM768) that aws-lc offers AWS endpoints; connections use X25519.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    let bundle = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()).and_then(|path| {
        let read = std::fs::read(&path);
        if read.is_err() {
            tracing::warn!(path = %std::path::Path::new(&path).display(), "AWS_CA_BUNDLE cannot be read; AWS's roots only");
        }
        read.ok()
    });
    https_client_trusting(bundle.as_deref())
}

/// [`https_client`] with `extra` PEM certificates trusted beside AWS's roots.
pub fn https_client_trusting(extra: Option<&[u8]>) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let mut trust =
        tls::TrustStore::empty().with_pem_certificate(include_bytes!("../../certs/aws-roots.pem").as_slice());
    if let Some(pem) = extra {
        trust = trust.with_pem_certificate(pem);
    }
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // The bundled roots always parse; never leave a function without a client.
        Err(_) => builder.build_https(),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn the_bundled_aws_roots_are_five_der_certificates() {
        let pem = include_str!("../../certs/aws-roots.pem");
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
