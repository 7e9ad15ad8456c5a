//! One Lambda, three event sources: HTTP API (payload 2.0), EventBridge Scheduler, S3 — all
//! dispatched by [`portal_publish::Publish::dispatch`].

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use portal_publish::Publish;
use portal_shared::{web::entry, Config};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::init_tracing();
    let config = Config::from_env()?;
    let sdk = entry::aws_config().await;
    let app: &'static Publish = Box::leak(Box::new(Publish::new(&sdk, config)));
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| async move {
        app.dispatch(e.payload, Some(e.context)).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
