//! The deficiency-feed function: the customer portal of building contacts and its deficiency feed.
//!
//! Not built yet: every route of this function answers 501 problem+json (405 for a wrong
//! method), so integrators see the contract's shape; unknown paths get 404.

use lambda_http::{Body, Request, Response};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};

pub struct DeficiencyFeed {
    config: Config,
}

impl DeficiencyFeed {
    pub fn new(_sdk: &aws_config::SdkConfig, config: Config) -> Self {
        DeficiencyFeed { config }
    }
}

fn route(req: &Request) -> ApiResult {
    let segs = segments(req);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["c", _] => by_method!(req; GET => Err(ApiError::NotImplemented("the customer portal"))),
        ["c", _, "deficiencies"] => by_method!(req; GET => Err(ApiError::NotImplemented("the deficiency feed"))),
        ["c", _, "buildings", _] => by_method!(req; GET => Err(ApiError::NotImplemented("the customer portal"))),
        ["c", _, "buildings", _, "deficiencies"] => {
            by_method!(req; GET => Err(ApiError::NotImplemented("the deficiency feed")))
        }
        _ => Err(ApiError::NotFound),
    }
}

impl HttpFunction for DeficiencyFeed {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, self.config.max_body_bytes, |req| async move { route(&req) }).await
    }
}
