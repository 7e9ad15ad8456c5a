//! Hello world on the same runtime crate, tokio runtime and release profile as the functions: the
//! floor their cold start is measured against (`scripts/bench`). It answers every event with `{}`.

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(Value::Object(Default::default()))
    }))
    .await
}
