//! The payment-webhook function: Stripe-compatible payment events applied to the ledger exactly once.
//!
//! Not built yet: every route of this function answers 501 problem+json (405 for a wrong
//! method), so integrators see the contract's shape; unknown paths get 404.

use lambda_http::{Body, Request, Response};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};

pub struct PaymentWebhook {
    config: Config,
}

impl PaymentWebhook {
    pub fn new(_sdk: &aws_config::SdkConfig, config: Config) -> Self {
        PaymentWebhook { config }
    }
}

fn route(req: &Request) -> ApiResult {
    let segs = segments(req);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["webhooks", "payments"] => by_method!(req; POST => Err(ApiError::NotImplemented("payment webhooks"))),
        _ => Err(ApiError::NotFound),
    }
}

impl HttpFunction for PaymentWebhook {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, self.config.max_body_bytes, |req| async move { route(&req) }).await
    }
}
