//! Every call to AWS starts with TLS. The lab puts a TLS terminator (`portal_infra::tls_proxy`)
//! in front of DynamoDB Local; the functions trust its CA only when `AWS_CA_BUNDLE` names it, as
//! AWS's own tools do behind a TLS proxy, and otherwise only AWS's roots. In a binary of its own:
//! it sets a process-wide variable.

use portal_infra::tls_proxy::{self, Certificates};

async fn list_tables(sdk: &aws_config::SdkConfig, endpoint: &str) -> Result<(), String> {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk).endpoint_url(endpoint).build();
    aws_sdk_dynamodb::Client::from_conf(config)
        .list_tables()
        .limit(1)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

#[tokio::test]
async fn the_functions_reach_dynamodb_through_tls_trusting_aws_ca_bundle_and_nothing_else() {
    let plain = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("the local stack (scripts/test starts it)");
    let upstream = tls_proxy::upstream_of(&plain).expect("a local http endpoint");
    let certificates = Certificates::generate().unwrap();
    let (addr, proxy) = tls_proxy::serve(&certificates, upstream).await.unwrap();
    let endpoint = format!("https://127.0.0.1:{}", addr.port());

    // Without the bundle: only AWS's roots, so the lab's certificate is refused.
    let sdk = portal_shared::web::entry::aws_config().await;
    let refused = list_tables(&sdk, &endpoint).await.expect_err("an unknown CA is not trusted");
    assert!(refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"), "{refused}");

    // With AWS_CA_BUNDLE naming the lab's CA: the handshake succeeds and DynamoDB answers.
    let dir = std::env::temp_dir().join(format!("portal-tls-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, &certificates.ca_pem).unwrap();
    std::env::set_var("AWS_CA_BUNDLE", &bundle);
    let sdk = portal_shared::web::entry::aws_config().await;
    list_tables(&sdk, &endpoint).await.expect("trusted through AWS_CA_BUNDLE");

    // A bundle that cannot be read leaves AWS's roots only (and init does not fail).
    std::env::set_var("AWS_CA_BUNDLE", dir.join("missing.pem"));
    let sdk = portal_shared::web::entry::aws_config().await;
    assert!(list_tables(&sdk, &endpoint).await.is_err());
    std::env::remove_var("AWS_CA_BUNDLE");
    proxy.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
