//! The publish function: manual, automatic, scheduled and event-driven publishing and the notifications they send. One Lambda receives three kinds of events: HTTP API requests (staff publishing), the every-minute schedule, and S3 object-created events.
//!
//! Not built yet: every route of this function answers 501 problem+json (405 for a wrong
//! method), so integrators see the contract's shape; unknown paths get 404.

use lambda_http::{Body, Request, Response};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};

pub struct Publish {
    config: Config,
}

impl Publish {
    pub fn new(_sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Publish { config }
    }
}

fn route(req: &Request) -> ApiResult {
    let segs = segments(req);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["staff", "documents", _, "publish" | "unpublish"] | ["staff", "documents", "publish" | "unpublish"] => {
            by_method!(req; POST => Err(ApiError::NotImplemented("publishing")))
        }
        ["staff", "inspections", _, "submit"] => {
            by_method!(req; POST => Err(ApiError::NotImplemented("submitting inspections")))
        }
        _ => Err(ApiError::NotFound),
    }
}

impl HttpFunction for Publish {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, self.config.max_body_bytes, |req| async move { route(&req) }).await
    }
}

/// What the scheduled job and the upload event report back.
#[derive(Debug, Default, serde::Serialize)]
pub struct JobReport {
    pub published: usize,
    pub status: &'static str,
}

impl Publish {
    /// The every-minute scheduled job. Not built yet: it publishes nothing and says so.
    pub async fn publish_due(&self) -> JobReport {
        tracing::warn!("scheduled publishing is not built yet");
        JobReport { published: 0, status: "not_implemented" }
    }

    /// S3 object-created records. Not built yet.
    pub async fn uploads_completed(&self, records: usize) -> JobReport {
        tracing::warn!(records, "upload completion is not built yet");
        JobReport { published: 0, status: "not_implemented" }
    }
}
