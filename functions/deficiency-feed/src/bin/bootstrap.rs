use portal_shared::{web::entry, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    entry::init_tracing();
    let config = Config::from_env()?;
    let sdk = entry::aws_config().await;
    entry::run_http(portal_deficiency_feed::DeficiencyFeed::new(&sdk, config)).await
}
