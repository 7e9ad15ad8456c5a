//! A local stand-in for API Gateway HTTP API: the template's route table, its route selection
//! (most specific route first, greedy `{proxy+}` after exact ones, `$default` last), its 10 MB
//! payload limit, and the payload 2.0 event/response conversion. Handlers run in-process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use portal_shared::web::apigw;
use serde_json::json;
use tokio::net::TcpListener;

use crate::functions::{Function, Functions};
use crate::mailbox::Mailbox;

/// API Gateway HTTP API's request payload limit.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// A route as the template declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
}

const fn r(method: &'static str, path: &'static str, function: Function) -> Route {
    Route { method, path, function }
}

/// The gateway's route table. `tests/` proves it equals the template's.
pub const ROUTES: &[Route] = &[
    r("ANY", "/p/{token}", Function::Link),
    r("ANY", "/p/{token}/{proxy+}", Function::Link),
    r("ANY", "/share/{inspection_id}", Function::Link),
    r("ANY", "/share/{inspection_id}/{proxy+}", Function::Link),
    r("ANY", "/me/{company_id}", Function::Link),
    r("ANY", "/me/{company_id}/{proxy+}", Function::Link),
    r("GET", "/checkout/return", Function::Link),
    r("GET", "/preview/{secret}", Function::Link),
    r("ANY", "/u/{secret}", Function::Link),
    r("ANY", "$default", Function::Link),
    r("ANY", "/p/{token}/documents/{id}", Function::Gate),
    r("ANY", "/c/{token}/documents/{id}", Function::Gate),
    r("GET", "/brand/{company_id}/logo", Function::Gate),
    r("GET", "/p/{token}/cover", Function::Gate),
    r("ANY", "/webhooks/payments", Function::PaymentWebhook),
    r("ANY", "/staff/documents/{id}/publish", Function::Publish),
    r("ANY", "/staff/documents/{id}/unpublish", Function::Publish),
    r("ANY", "/staff/documents/publish", Function::Publish),
    r("ANY", "/staff/documents/unpublish", Function::Publish),
    r("ANY", "/staff/inspections/{id}/submit", Function::Publish),
    r("ANY", "/c/{token}", Function::DeficiencyFeed),
    r("ANY", "/c/{token}/{proxy+}", Function::DeficiencyFeed),
    r("ANY", "/staff/{proxy+}", Function::StaffApi),
    r("ANY", "/admin/{proxy+}", Function::StaffApi),
];

/// The route API Gateway would pick, with its path parameters.
pub fn select_route(method: &str, path: &str) -> Option<(&'static Route, HashMap<String, String>)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(Vec<u8>, &'static Route, HashMap<String, String>)> = None;
    for route in ROUTES {
        if route.method != "ANY" && !route.method.eq_ignore_ascii_case(method) {
            continue;
        }
        let Some((score, params)) = match_path(route.path, &segs) else { continue };
        let mut score = score;
        score.push(u8::from(route.method != "ANY"));
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, route, params));
        }
    }
    best.map(|(_, r, p)| (r, p))
}

/// Specificity: exact-length routes beat greedy ones, then literal segments beat variables, left
/// to right; `$default` matches anything with the lowest score.
fn match_path(pattern: &str, segs: &[&str]) -> Option<(Vec<u8>, HashMap<String, String>)> {
    if pattern == "$default" {
        return Some((vec![0], HashMap::new()));
    }
    let pats: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let mut params = HashMap::new();
    let mut score = vec![2];
    for (i, p) in pats.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            if i >= segs.len() || segs[i..].iter().all(|s| s.is_empty()) {
                return None;
            }
            params.insert(name.to_owned(), segs[i..].join("/"));
            score[0] = 1;
            return Some((score, params));
        }
        let seg = segs.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            let decoded = percent_decode(seg);
            params.insert(name.to_owned(), decoded);
            score.push(1);
        } else if p == seg {
            score.push(2);
        } else {
            return None;
        }
    }
    (pats.len() == segs.len()).then_some((score, params))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_text(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("text/")
                || ct.contains("json")
                || ct.contains("xml")
                || ct.contains("x-www-form-urlencoded")
                || ct.contains("javascript")
        }
    }
}

/// The payload 2.0 event API Gateway sends for this request.
/// The API Gateway (payload 2.0) event a request would become, and the function it routes to:
/// what the benchmark feeds to bootstrap binaries and handlers.
pub fn api_event(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(Function, serde_json::Value)> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (parts, ()) = b.body(()).ok()?.into_parts();
    let (route, params) = select_route(method, parts.uri.path())?;
    Some((route.function, build_event(route, params, &parts, body, "127.0.0.1")))
}

pub fn build_event(
    route: &Route,
    path_params: HashMap<String, String>,
    parts: &http::request::Parts,
    body: &[u8],
    source_ip: &str,
) -> serde_json::Value {
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(v.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let query = parts.uri.query().unwrap_or("");
    let mut qs: HashMap<String, String> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")));
        qs.entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let route_key =
        if route.path == "$default" { "$default".to_owned() } else { format!("{} {}", route.method, route.path) };
    let host = headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into());
    let text = is_text(headers.get("content-type").map(String::as_str)) && std::str::from_utf8(body).is_ok();
    let (body, b64) = match (body.is_empty(), text) {
        (true, _) => (None, false),
        (false, true) => (Some(String::from_utf8_lossy(body).into_owned()), false),
        (false, false) => (Some(STANDARD.encode(body)), true),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "isBase64Encoded": b64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !qs.is_empty() {
        event["queryStringParameters"] = json!(qs);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = json!(path_params);
    }
    if let Some(b) = body {
        event["body"] = json!(b);
    }
    event
}

type Resp = hyper::Response<Full<Bytes>>;

/// A Lambda-style request id (a UUID's shape, from a ULID's bits).
fn uuid_like() -> String {
    let h = format!("{:032x}", u128::from(ulid::Ulid::new()));
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn plain(status: u16, message: &str) -> Resp {
    // API Gateway's own errors (not the functions'): {"message": "..."}.
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "message": message }).to_string())))
        .unwrap_or_default()
}

pub struct Gateway {
    pub functions: Arc<Functions>,
    pub mailbox: Option<Mailbox>,
    /// Each function's `Timeout` from the template.
    pub timeouts: HashMap<Function, Duration>,
}

impl Gateway {
    /// A gateway for `functions` with the timeouts `template` gives them.
    pub fn new(functions: Arc<Functions>, mailbox: Option<Mailbox>, template: &crate::template::Template) -> Self {
        let timeouts = Function::ALL
            .iter()
            .map(|f| (*f, Duration::from_secs(template.function_timeout(f.logical_id()))))
            .collect();
        Gateway { functions, mailbox, timeouts }
    }

    /// One invocation as Lambda and API Gateway run it: the handler gets a context whose deadline
    /// is the function's `Timeout` from now (or API Gateway's 30 s integration timeout, if sooner).
    /// When the function runs past its timeout Lambda stops it mid-work and API Gateway answers
    /// `500 {"message":"Internal Server Error"}` (past 30 s: `503 Service Unavailable`); a function
    /// that answers 500 is a Lambda error and gets the same bare answer.
    async fn invoke(
        &self,
        function: Function,
        req: lambda_http::Request,
    ) -> Result<lambda_http::Response<lambda_http::Body>, Resp> {
        use lambda_http::RequestExt;
        let timeout = self.timeouts.get(&function).copied().unwrap_or(Duration::from_secs(3));
        let limit = timeout.min(portal_shared::web::http::INTEGRATION_TIMEOUT);
        let deadline = time::OffsetDateTime::now_utc() + limit;
        let mut context = lambda_http::lambda_runtime::Context::default();
        context.request_id = uuid_like();
        context.deadline = u64::try_from(deadline.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        context.xray_trace_id =
            Some(format!("Root=1-{:08x}-{}", deadline.unix_timestamp(), &uuid_like().replace('-', "")[..24]));
        let req = req.with_lambda_context(context);
        match tokio::time::timeout(limit, self.functions.call(function, req)).await {
            Err(_) if limit < timeout => Err(plain(503, "Service Unavailable")),
            Err(_) => {
                tracing::error!(function = function.logical_id(), timeout_s = timeout.as_secs(), "Task timed out");
                Err(plain(500, "Internal Server Error"))
            }
            Ok(resp) => {
                portal_shared::web::entry::as_lambda_result(resp).map_err(|_| plain(500, "Internal Server Error"))
            }
        }
    }

    async fn handle(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> Resp {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(413, "Request Entity Too Large"),
        };
        if parts.uri.path() == "/_dev/run-jobs" && parts.method == http::Method::POST {
            // What the every-minute schedule does (publish what is due, send the outbox), now.
            let report = self.functions.publish.publish_due().await;
            let from_form = parts
                .headers
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
            if from_form {
                return hyper::Response::builder()
                    .status(303)
                    .header("location", "/_dev/mailbox")
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| plain(500, "Internal Server Error"));
            }
            return hyper::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&report).unwrap_or_default())))
                .unwrap_or_else(|_| plain(500, "Internal Server Error"));
        }
        if parts.uri.path().starts_with("/_dev/") {
            return match &self.mailbox {
                Some(m) => m.serve(parts.uri.path(), parts.uri.query()).await,
                None => plain(404, "Not Found"),
            };
        }
        let Some((route, params)) = select_route(parts.method.as_str(), parts.uri.path()) else {
            return plain(404, "Not Found");
        };
        let event = build_event(route, params, &parts, &body, &peer.ip().to_string());
        let event: ApiGatewayV2httpRequest = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "gateway built an event lambda_http cannot read");
                return plain(500, "Internal Server Error");
            }
        };
        let response = match self.invoke(route.function, apigw::request_from_event(event)).await {
            Ok(r) => r,
            Err(bare) => return bare,
        };
        let out = apigw::response_to_event(response);
        let mut builder = hyper::Response::builder().status(out.status_code as u16);
        for (name, value) in &out.headers {
            builder = builder.header(name, value);
        }
        for cookie in &out.cookies {
            builder = builder.header(http::header::SET_COOKIE, cookie);
        }
        builder
            .body(Full::new(Bytes::from(apigw::response_body_bytes(&out))))
            .unwrap_or_else(|_| plain(502, "Bad Gateway"))
    }

    /// Serves connections from `listener` until the returned task is aborted.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else { continue };
                let gw = self.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let gw = gw.clone();
                        async move { Ok::<_, Infallible>(gw.handle(req, peer).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(method: &str, path: &str) -> (Function, &'static str) {
        let (r, _) = select_route(method, path).expect("a route");
        (r.function, r.path)
    }

    #[test]
    fn the_most_specific_route_wins() {
        assert_eq!(pick("GET", "/p/tok"), (Function::Link, "/p/{token}"));
        assert_eq!(pick("POST", "/p/tok/agreement"), (Function::Link, "/p/{token}/{proxy+}"));
        assert_eq!(pick("GET", "/p/tok/documents/d1"), (Function::Gate, "/p/{token}/documents/{id}"));
        assert_eq!(pick("GET", "/p/tok/documents/d1/x"), (Function::Link, "/p/{token}/{proxy+}"));
        assert_eq!(pick("POST", "/staff/documents/d1/publish"), (Function::Publish, "/staff/documents/{id}/publish"));
        assert_eq!(pick("POST", "/staff/documents/publish"), (Function::Publish, "/staff/documents/publish"));
        assert_eq!(pick("GET", "/staff/documents/d1"), (Function::StaffApi, "/staff/{proxy+}"));
        assert_eq!(pick("GET", "/c/tok/buildings/b/deficiencies"), (Function::DeficiencyFeed, "/c/{token}/{proxy+}"));
        assert_eq!(pick("GET", "/nothing/here"), (Function::Link, "$default"));
        assert_eq!(pick("GET", "/"), (Function::Link, "$default"));
        assert_eq!(pick("GET", "/staff"), (Function::Link, "$default"), "a greedy variable needs at least one segment");
    }

    #[test]
    fn path_parameters_are_extracted() {
        let (_, p) = select_route("GET", "/p/abc/documents/d%201").unwrap();
        assert_eq!(p["token"], "abc");
        assert_eq!(p["id"], "d 1");
        let (_, p) = select_route("GET", "/staff/inspections/x/services").unwrap();
        assert_eq!(p["proxy"], "inspections/x/services");
    }
}
