//! The AWS SDK's configuration, shared by every client of a function: one HTTPS client that
//! trusts only AWS's roots, bounded timeouts and a short retry policy.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// How long one attempt of an AWS call may take, all attempts together, and how many there are.
/// Every request makes a handful of calls in sequence, so a dependency that stops answering costs
/// a request at most [`OPERATION_TIMEOUT`] per call, and the per-request deadline in
/// [`crate::web::http::serve`] bounds the whole before the function's own timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK configuration every client of a function is built from: region and credentials, the
/// shared HTTPS client, and bounded time (connect, attempt and operation timeouts, and a standard
/// retry policy with a short backoff).
///
/// Where the environment holds the region and the credentials — always in Lambda, which sets
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` for the
/// execution environment's lifetime, and in every local run — they are taken from it directly:
/// [`from_environment`]. Otherwise the SDK's standard chain (profiles, web identity, container
/// and instance metadata) finds them.
pub async fn config() -> aws_config::SdkConfig {
    let vars: Vec<(String, String)> =
        std::env::vars().filter(|(name, value)| name.starts_with("AWS_") && !value.is_empty()).collect();
    match from_environment(&vars) {
        Some(config) => config,
        None => standard_chain().await,
    }
}

fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

fn retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(500))
}

/// The standard chain, for wherever the environment does not hold the credentials.
async fn standard_chain() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}

/// The configuration read from the environment's variables alone — what the standard chain finds
/// first there too (its environment providers come first for the region and the credentials),
/// without building the rest of the chain: the profile files' reads, the STS, SSO, container and
/// instance-metadata providers and their endpoint tables, which a Lambda never reaches. Measured
/// at a whole core (`perf stat`, 200 starts, symbols kept): the publish function's init CPU went
/// from 3.9 to 2.9 ms with it, the empty Lambda's being 1.6 ms.
/// Also read as the standard chain does: `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`
/// (local runs), `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`. `None` without a region
/// or a key pair.
fn from_environment(vars: &[(String, String)]) -> Option<aws_config::SdkConfig> {
    use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
    let var = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))?;
    let (key, secret) = (var("AWS_ACCESS_KEY_ID")?, var("AWS_SECRET_ACCESS_KEY")?);
    let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "Environment");
    let flag = |name| var(name).map(|v| v.eq_ignore_ascii_case("true"));
    let endpoints = if flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") == Some(true) {
        Vec::new()
    } else {
        vars.iter().filter(|(name, _)| name.starts_with("AWS_ENDPOINT_URL")).cloned().collect()
    };
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .service_config(EnvironmentEndpoints(endpoints));
    builder.set_use_fips(flag("AWS_USE_FIPS_ENDPOINT"));
    builder.set_use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    Some(builder.build())
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, for each client's endpoint (the SDK's
/// rule for the environment: the service id upper-cased, spaces as underscores), as the
/// environment held them at init.
#[derive(Debug)]
struct EnvironmentEndpoints(Vec<(String, String)>);

impl aws_types::service_config::LoadServiceConfig for EnvironmentEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service = format!("{}_{}", key.env(), key.service_id().to_uppercase().replace(' ', "_"));
        let find = |name: &str| self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        find(&service).or_else(|| find(key.env()))
    }
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
fn https_client() -> SharedHttpClient {
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
pub fn https_client_trusting(extra: Option<&[u8]>) -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    let mut trust =
        tls::TrustStore::empty().with_pem_certificate(include_bytes!("../../certs/aws-roots.pem").as_slice());
    if let Some(pem) = extra {
        trust = trust.with_pem_certificate(pem);
    }
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
    let client = match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // The bundled roots always parse; never leave a function without a client.
        Err(_) => builder.build_https(),
    };
    SharedHttpClient::new(NoThrowawayConnector(client))
}

/// The SDK's HTTPS client, minus the connector it builds and drops when each SDK client is
/// constructed (`validate_base_client_config`, there so that a system trust store is read at
/// init rather than at the first request): with bundled roots it only parsed them and built a
/// TLS configuration once per client for nothing — the first request builds the connector it
/// uses either way, once per set of timeouts, shared by every client.
#[derive(Debug)]
struct NoThrowawayConnector(SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for NoThrowawayConnector {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn endpoint(config: &aws_config::SdkConfig, service_id: &str) -> Option<String> {
        use aws_types::service_config::ServiceConfigKey;
        let key =
            ServiceConfigKey::builder().service_id(service_id).env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
        config.service_config()?.load_config(key.expect("a whole key"))
    }

    #[test]
    fn without_a_region_or_a_key_pair_the_standard_chain_is_left_to_find_them() {
        let lambda = [("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert!(super::from_environment(&vars(&lambda)).is_some());
        for missing in 0..lambda.len() {
            let partial: Vec<_> = lambda.iter().enumerate().filter(|(i, _)| *i != missing).map(|(_, p)| *p).collect();
            assert!(super::from_environment(&vars(&partial)).is_none(), "without {}", lambda[missing].0);
        }
        // AWS_DEFAULT_REGION stands in for AWS_REGION, as in the standard chain.
        let config = super::from_environment(&vars(&[
            ("AWS_DEFAULT_REGION", "ap-southeast-2"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]))
        .expect("a config");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-southeast-2"));
    }

    #[tokio::test]
    async fn lambdas_variables_make_the_config_region_session_credentials_and_endpoints() {
        use aws_credential_types::provider::ProvideCredentials;
        let config = super::from_environment(&vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "session"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:3"),
        ]))
        .expect("a config");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let credentials =
            config.credentials_provider().expect("a provider").provide_credentials().await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("session"));
        // A service's own variable first (its id upper-cased, spaces as underscores), then the
        // global one.
        assert_eq!(endpoint(&config, "DynamoDB").as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(endpoint(&config, "Secrets Manager").as_deref(), Some("http://127.0.0.1:3"));
        assert_eq!(endpoint(&config, "S3").as_deref(), Some("http://127.0.0.1:1"));
        assert!(config.timeout_config().and_then(|t| t.operation_timeout()) == Some(super::OPERATION_TIMEOUT));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(super::MAX_ATTEMPTS));
        assert_eq!(config.use_fips(), None);

        let ignored = super::from_environment(&vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
        ]))
        .expect("a config");
        assert_eq!(endpoint(&ignored, "DynamoDB"), None);
        assert_eq!(ignored.use_fips(), Some(true));
    }
}
