//! API Gateway HTTP API (payload format 2.0) events ⇄ `lambda_http` requests and responses.
//!
//! The Lambda runtime does this conversion inside `lambda_http::run`; the local gateway and the
//! multi-event `publish` function use these two functions so they convert exactly as Lambda does.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::SET_COOKIE;
use http::HeaderMap;
use lambda_http::aws_lambda_events;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};

/// The request Lambda hands a `lambda_http` handler for this event.
pub fn request_from_event(event: ApiGatewayV2httpRequest) -> Request {
    LambdaRequest::ApiGatewayV2(event).into()
}

/// The payload-2.0 response API Gateway receives for this handler response: `Set-Cookie` moves to
/// `cookies`, repeated headers are comma-joined, binary bodies are base64.
pub fn response_to_event(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
    headers.remove(SET_COOKIE);
    let (is_base64_encoded, body) = match body {
        Body::Empty => (false, None),
        Body::Text(t) => (false, Some(Body::Text(t))),
        Body::Binary(b) => (true, Some(Body::Binary(b))),
        _ => (false, None),
    };
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = parts.status.as_u16() as i64;
    out.headers = headers;
    out.multi_value_headers = HeaderMap::new();
    out.body = body;
    out.is_base64_encoded = is_base64_encoded;
    out.cookies = cookies;
    out
}

/// The bytes a client receives for a payload-2.0 response body.
pub fn response_body_bytes(resp: &ApiGatewayV2httpResponse) -> Vec<u8> {
    match &resp.body {
        None | Some(Body::Empty) => Vec::new(),
        Some(Body::Text(t)) if resp.is_base64_encoded => STANDARD.decode(t).unwrap_or_default(),
        Some(Body::Text(t)) => t.as_bytes().to_vec(),
        Some(Body::Binary(b)) => b.clone(),
        Some(_) => Vec::new(),
    }
}
