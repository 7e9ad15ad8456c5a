//! The link function: tokenized link resolution, the client portal view and client actions, the unknown-user share page. It also answers the API's catch-all route with 404.
//!
//! Not built yet: every route of this function answers 501 problem+json (405 for a wrong
//! method), so integrators see the contract's shape; unknown paths get 404.

use lambda_http::{Body, Request, Response};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};

pub struct Link {
    config: Config,
}

impl Link {
    pub fn new(_sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Link { config }
    }
}

fn route(req: &Request) -> ApiResult {
    let segs = segments(req);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["p", _] => by_method!(req; GET => Err(ApiError::NotImplemented("the portal view"))),
        ["p", _, "agreement"] => by_method!(req; POST => Err(ApiError::NotImplemented("agreement signing"))),
        ["p", _, "addons"] => by_method!(req; POST => Err(ApiError::NotImplemented("add-on requests"))),
        ["p", _, "offers", "dismiss"] => by_method!(req; POST => Err(ApiError::NotImplemented("dismissing offers"))),
        ["p", _, "pay"] => by_method!(req; POST => Err(ApiError::NotImplemented("Pay Now"))),
        ["share", _] => by_method!(req; GET => Err(ApiError::NotImplemented("the unknown-user view"))),
        ["share", _, "full-access"] => by_method!(req; POST => Err(ApiError::NotImplemented("Get Full Access"))),
        _ => Err(ApiError::NotFound),
    }
}

impl HttpFunction for Link {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, self.config.max_body_bytes, |req| async move { route(&req) }).await
    }
}
