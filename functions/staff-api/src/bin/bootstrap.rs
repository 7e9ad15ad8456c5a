use portal_shared::{web::entry, Config};
use portal_staff_api::StaffApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    entry::init_tracing();
    let config = Config::from_env()?;
    let sdk = entry::aws_config().await;
    entry::run_http(StaffApi::new(&sdk, config)).await
}
