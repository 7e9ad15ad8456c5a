//! One Lambda, three event sources: HTTP API (payload 2.0), EventBridge Scheduler, S3.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use portal_publish::Publish;
use portal_shared::entry::HttpFunction;
use portal_shared::{apigw, entry, Config};
use serde_json::Value;

async fn dispatch(app: &Publish, event: Value) -> Result<Value, lambda_runtime::Error> {
    if event.get("requestContext").is_some() && event.get("routeKey").is_some() {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(event)?;
        let response = app.handle(apigw::request_from_event(request)).await;
        return Ok(serde_json::to_value(apigw::response_to_event(response))?);
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return Ok(serde_json::to_value(app.uploads_completed(records.len()).await)?);
    }
    Ok(serde_json::to_value(app.publish_due().await)?)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::init_tracing();
    let config = Config::from_env()?;
    let sdk = entry::aws_config().await;
    let app: &'static Publish = Box::leak(Box::new(Publish::new(&sdk, config)));
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| dispatch(app, e.payload))).await
}
