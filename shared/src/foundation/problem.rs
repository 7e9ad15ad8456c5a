//! The one place errors become HTTP: every failure a handler can return is an [`ApiError`], and
//! [`ApiError::into_response`] maps it to a status and an RFC 9457 `application/problem+json`
//! body. 5xx bodies say nothing internal; the cause chain goes to the log instead.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON or an invalid field. Nothing was written.
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static [&'static str] },
    /// The request is well-formed but conflicts with a rule or the current state.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("expected a JSON body (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// A document the viewer may know of but not open yet, with every reason (403).
    #[error("{detail}")]
    Locked { detail: String, lock_reasons: serde_json::Value },
    #[error("too many requests; try again in {retry_after_seconds} seconds")]
    TooManyRequests { retry_after_seconds: i64 },
    /// Temporarily unable to finish (contention or a slow dependency): retry after a while.
    #[error("{detail}")]
    Unavailable { detail: String, retry_after_seconds: i64 },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Extension members (RFC 9457 §3.2), e.g. `lock_reasons`.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest(detail.into())
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Conflict { code, detail: detail.into() }
    }

    /// A failure of ours or of a dependency. A dependency that did not answer in time, refused
    /// the connection or throttled us (a [`Transient`] error) becomes `503` with `Retry-After`:
    /// the client may retry; anything else is a `500`.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        let transient = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| e.source())
            .any(|e| e.is::<Transient>());
        if transient {
            tracing::warn!(error = %error_chain(&e), "a dependency is unavailable");
            return ApiError::unavailable();
        }
        ApiError::Internal(Box::new(e))
    }

    /// A dependency did not answer in time: nothing may be assumed done; retry shortly.
    pub fn unavailable() -> Self {
        ApiError::Unavailable {
            detail: "A service this request depends on did not answer in time. Please try again shortly.".into(),
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Locked { .. } => StatusCode::FORBIDDEN,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("invalid-request", "Invalid request"),
            ApiError::Unauthorized => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { code, .. } => (code, "Conflict"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            ApiError::Locked { .. } => ("document-locked", "Document locked"),
            ApiError::Unavailable { .. } => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (code, title) = self.code_and_title();
        let detail = match self {
            ApiError::NotFound => "No such resource.".to_owned(),
            ApiError::Internal(_) => "Something went wrong on our side. Please try again.".to_owned(),
            other => other.to_string(),
        };
        let mut extensions = serde_json::Map::new();
        if let ApiError::Locked { lock_reasons, .. } = self {
            extensions.insert("lock_reasons".into(), lock_reasons.clone());
        }
        Problem {
            kind: format!("/problems/{code}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            extensions,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        if let ApiError::Internal(source) = &self {
            tracing::error!(error = %error_chain(source.as_ref()), "request failed");
        }
        let problem = self.problem();
        let mut builder = Response::builder()
            .status(self.status())
            .header("content-type", "application/problem+json")
            .header("cache-control", "no-store")
            .header("referrer-policy", "no-referrer");
        match &self {
            ApiError::MethodNotAllowed { allow } => builder = builder.header("allow", allow.join(", ")),
            ApiError::Unauthorized => builder = builder.header("www-authenticate", "Bearer"),
            ApiError::TooManyRequests { retry_after_seconds } | ApiError::Unavailable { retry_after_seconds, .. } => {
                builder = builder.header("retry-after", (*retry_after_seconds).max(1).to_string())
            }
            _ => {}
        }
        let body = serde_json::to_string(&problem).unwrap_or_default();
        builder.body(Body::Text(body)).unwrap_or_default()
    }
}

/// What `Retry-After` says when a dependency is unavailable.
pub const RETRY_AFTER_SECONDS: i64 = 5;

/// A dependency failure that a later retry may not meet: no answer in time, no connection,
/// throttling, or a 5xx from the service. Adapters wrap such SDK errors in it (as the source of
/// their own error) so that [`ApiError::internal`] answers `503` instead of `500`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// Throttling codes across DynamoDB, S3 and SES.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServerError",
];

/// Whether an SDK call failed in a way a retry later may fix (see [`Transient`]).
pub fn is_transient<E>(e: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            s.raw().status().is_server_error() || s.err().code().is_some_and(|c| THROTTLING.contains(&c))
        }
        _ => false,
    }
}

type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// "outer: inner: innermost", for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("table secret-table-name unreachable")]
    struct Leaky;

    #[derive(Debug, thiserror::Error)]
    #[error("DynamoDB unavailable")]
    struct Wrapped(#[source] Transient);

    #[test]
    fn a_dependency_that_did_not_answer_is_503_with_retry_after() {
        let r = ApiError::internal(Wrapped(Transient("dispatch failure: timeout".into()))).into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], RETRY_AFTER_SECONDS.to_string().as_str());
        assert_eq!(ApiError::internal(Leaky).status(), 500, "anything else is ours");
    }

    #[test]
    fn internal_errors_reveal_nothing() {
        let r = ApiError::internal(Leaky).into_response();
        assert_eq!(r.status(), 500);
        let Body::Text(b) = r.body() else { panic!("text body") };
        assert!(!b.contains("secret-table-name"));
        let p: Problem = serde_json::from_str(b).unwrap();
        assert_eq!(p.status, 500);
    }

    #[test]
    fn every_error_is_problem_json_with_matching_status() {
        let errors = [
            ApiError::bad_request("x"),
            ApiError::Unauthorized,
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: &["GET", "PATCH"] },
            ApiError::conflict("settings-conflict", "no"),
            ApiError::PayloadTooLarge { limit: 10 },
        ];
        for e in errors {
            let status = e.status();
            let r = e.into_response();
            assert_eq!(r.status(), status);
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let Body::Text(b) = r.body() else { panic!("text body") };
            let p: Problem = serde_json::from_str(b).unwrap();
            assert_eq!(p.status, status.as_u16());
            assert!(p.kind.starts_with("/problems/"));
        }
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let r = ApiError::MethodNotAllowed { allow: &["GET", "PATCH"] }.into_response();
        assert_eq!(r.headers()["allow"], "GET, PATCH");
    }
}
