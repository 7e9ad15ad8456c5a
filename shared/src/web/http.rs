//! Request and response helpers every function uses: the per-request wrapper ([`serve`]) that
//! enforces the body limit, counts round trips, maps errors and logs without secrets; JSON body
//! parsing; and response builders.

use std::future::Future;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::adapters::roundtrips;
use crate::foundation::problem::ApiError;

pub type ApiResult = Result<Response<Body>, ApiError>;

/// Response header carrying the DynamoDB round trips the request made (read by tests and bench).
pub const ROUND_TRIPS_HEADER: &str = "x-dynamodb-round-trips";

/// Dispatches on the request method; anything else is a 405 listing the allowed methods.
///
/// ```text
/// by_method!(req; GET => get_settings(app, &req).await, PATCH => patch_settings(app, &req).await)
/// ```
#[macro_export]
macro_rules! by_method {
    ($req:expr; $($m:ident => $e:expr),+ $(,)?) => {{
        match $req.method().as_str() {
            $(stringify!($m) => $e,)+
            _ => Err($crate::ApiError::MethodNotAllowed { allow: &[$(stringify!($m)),+] }),
        }
    }};
}

/// API Gateway HTTP API gives up on an integration after 30 s, whatever the function's timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Time kept back from the deadline to answer `503` and write the log line before Lambda (or API
/// Gateway) cuts the request off.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

/// How long a request may run: until its invocation's deadline (or API Gateway's integration
/// timeout, if sooner), less [`DEADLINE_MARGIN`].
fn time_budget(req: &Request) -> Duration {
    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let left = req
        .lambda_context_ref()
        .map(|c| c.deadline)
        .filter(|d| *d > 0)
        .map_or(INTEGRATION_TIMEOUT, |d| Duration::from_millis(d.saturating_sub(now_ms)));
    left.min(INTEGRATION_TIMEOUT).saturating_sub(DEADLINE_MARGIN)
}

/// The ids this request's log lines carry.
fn invocation_ids(req: &Request) -> crate::foundation::logging::Invocation {
    let (request_id, trace_id) =
        req.lambda_context_ref().map(|c| (Some(c.request_id.clone()), c.xray_trace_id.clone())).unwrap_or_default();
    let apigw = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    crate::foundation::logging::Invocation::new(request_id, apigw, trace_id)
}

/// Wraps one request: body limit (413), a deadline before the function's timeout (503 with
/// `Retry-After` when a dependency keeps it from finishing), round-trip counting, error mapping and
/// one log line carrying the invocation's ids. The path is logged with tokens redacted; bodies,
/// headers and query strings are never logged.
pub async fn serve<F, Fut>(req: Request, config: &crate::Config, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    serve_with(req, config, None, handler).await
}

/// How an error becomes a page for a browser (the request's path given), for [`serve_with`].
pub type ErrorPage = fn(ApiError, &str) -> Response<Body>;

/// [`serve`], with errors answered by `error_page` when the request is a browser's
/// ([`wants_page`]); programs still get `problem+json`.
pub async fn serve_with<F, Fut>(
    req: Request,
    config: &crate::Config,
    error_page: Option<ErrorPage>,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let ids = invocation_ids(&req);
    let inner = serve_inner(req, config, error_page, handler);
    crate::foundation::logging::scope(ids, Box::pin(inner)).await
}

/// Whether an error for this request should be a page: the browser asked for HTML (or posted a
/// form) and did not ask for JSON.
pub fn wants_page(accept: Option<&str>, content_type: Option<&str>) -> bool {
    let accept = accept.unwrap_or_default();
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    !accept.contains("application/json") && (accept.contains("text/html") || form)
}

async fn serve_inner<F, Fut>(
    req: Request,
    config: &crate::Config,
    error_page: Option<ErrorPage>,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let (max_body, round_trips_header) = (config.max_body_bytes, config.round_trips_header);
    let started = Instant::now();
    let method = req.method().clone();
    let header = |name: http::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let page_for = error_page
        .filter(|_| wants_page(header(http::header::ACCEPT), header(http::header::CONTENT_TYPE)))
        .map(|page| (page, req.uri().path().to_owned()));
    let path = redact_path(req.uri().path());
    let body_len = body_bytes(&req).len();
    let budget = time_budget(&req);
    let (result, trips) = roundtrips::measure(async {
        if body_len > max_body {
            return Err(ApiError::PayloadTooLarge { limit: max_body });
        }
        // No time left: start nothing (a zero timeout still lets a fast handler run to the
        // timer's next tick, so the answer would depend on the machine's speed).
        if budget.is_zero() {
            tracing::warn!("request arrived with no time left");
            return Err(ApiError::unavailable());
        }
        match tokio::time::timeout(budget, handler(req)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(budget_ms = budget.as_millis() as u64, "request ran out of time");
                Err(ApiError::unavailable())
            }
        }
    })
    .await;
    let mut resp = result.unwrap_or_else(|e| match &page_for {
        Some((page, path)) => page(e, path),
        None => e.into_response(),
    });
    if round_trips_header {
        resp.headers_mut().insert(ROUND_TRIPS_HEADER, HeaderValue::from(trips));
    }
    match resp.status() {
        StatusCode::SERVICE_UNAVAILABLE => {
            crate::foundation::metrics::count(crate::foundation::metrics::Metric::DependencyUnavailable, 1)
        }
        s if s.is_server_error() => {
            crate::foundation::metrics::count(crate::foundation::metrics::Metric::ServerErrors, 1)
        }
        _ => {}
    }
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        round_trips = trips,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// `/p/<token>/documents/x` → `/p/{token}/documents/x`: tokens never reach a log line. Segments
/// are judged percent-decoded (`/%70/<token>` is `/p/<token>`), empty ones are skipped when
/// deciding (`//p/<token>`), and any token-shaped segment (a long run of letters and digits,
/// wherever it stands) is redacted too.
pub fn redact_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    // Which non-empty segment this is, and whether the first one was a link prefix (`p`, `c`).
    let (mut n, mut link_prefix) = (0, false);
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        if decoded.is_empty() {
            continue;
        }
        n += 1;
        // Link tokens (base32) and /me sign-in codes (`msi_` + base64url) alike.
        let token_shaped =
            decoded.len() >= 32 && decoded.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if (n == 2 && link_prefix) || token_shaped {
            out.push_str("{token}");
        } else {
            out.push_str(seg);
        }
        link_prefix = n == 1 && matches!(decoded.as_ref(), "p" | "c" | "preview");
    }
    out
}

/// Path segments, percent-decoded, without empty ones.
pub fn segments(req: &Request) -> Vec<String> {
    req.uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON body. A non-JSON content type is 415; malformed JSON, unknown fields and invalid
/// values are 400 with serde's description of what is wrong.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let bytes = body_bytes(req);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON body is required"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // Every body is an object: serde would otherwise read a struct from an array of its fields.
    if !value.is_object() {
        return Err(ApiError::bad_request("the JSON body must be an object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A partial update's JSON body: as [`json_body`], and a member set to `null` is refused (400)
/// unless it is one of `nullable` (where null means something, e.g. recalling a schedule). Leaving
/// a member out is how it stays as it is; a `null` that silently changed nothing would mislead a
/// client that meant "clear it".
pub fn json_patch_body<T: DeserializeOwned>(req: &Request, nullable: &[&str]) -> Result<T, ApiError> {
    let value: serde_json::Value = json_body(req)?;
    if let Some((k, _)) =
        value.as_object().into_iter().flatten().find(|(k, v)| v.is_null() && !nullable.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!("{k} may not be null; leave it out to keep it as it is")));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Whether the body is an HTML form post (`application/x-www-form-urlencoded`).
pub fn is_form(req: &Request) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The fields of a form post, in order (repeated names repeat).
pub fn form_fields(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(body_bytes(req)).into_owned().collect()
}

/// A body that may come from an HTML form or as JSON: forms are turned into a JSON object first
/// (fields named in `lists` collect every value into an array), then parsed like any JSON body.
pub fn form_or_json_body<T: DeserializeOwned>(req: &Request, lists: &[&str]) -> Result<T, ApiError> {
    if !is_form(req) {
        return json_body(req);
    }
    let mut obj = serde_json::Map::new();
    for list in lists {
        obj.insert((*list).to_owned(), serde_json::Value::Array(Vec::new()));
    }
    for (k, v) in form_fields(req) {
        match obj.get_mut(&k) {
            Some(serde_json::Value::Array(a)) if lists.contains(&k.as_str()) => a.push(v.into()),
            _ => {
                obj.insert(k, v.into());
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| ApiError::bad_request(format!("invalid form: {e}")))
}

/// `?limit=` of a list: 1 to 200, 50 when absent.
pub fn page_limit(req: &Request) -> Result<i32, ApiError> {
    match query_param(req, "limit") {
        None => Ok(50),
        Some(l) => l
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| ApiError::bad_request("limit must be a number from 1 to 200")),
    }
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

/// `Authorization: Bearer <secret>` (scheme case-insensitive).
pub fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|s| !s.is_empty())
}

/// Pages answer HTML unless the client asks for JSON.
pub fn wants_json(req: &Request) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// Caller's IP and user agent as API Gateway saw them (kept with agreement signatures).
pub fn client_info(req: &Request) -> (Option<String>, Option<String>) {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (ctx.http.source_ip.clone(), ctx.http.user_agent.clone()),
        _ => (None, req.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned)),
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> ApiResult {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_from_logged_paths() {
        assert_eq!(redact_path("/p/abc123/documents/01H"), "/p/{token}/documents/01H");
        assert_eq!(redact_path("/c/abc123"), "/c/{token}");
        assert_eq!(redact_path("/preview/spv_abc"), "/preview/{token}");
        assert_eq!(redact_path("/staff/inspections/01H"), "/staff/inspections/01H");
        assert_eq!(redact_path("/share/01H/p/x"), "/share/01H/p/x");
        let code =
            crate::foundation::credentials::MeSecret::generate(crate::foundation::credentials::MeSecret::SIGN_IN);
        let path = format!("/me/01ARZ3NDEKTSV4RRFFQ69G5FAV/signin/{}", code.reveal());
        assert_eq!(redact_path(&path), "/me/01ARZ3NDEKTSV4RRFFQ69G5FAV/signin/{token}");
        let token = "01m8410514z35f9az16ysgthxy01m84105ax3521sst410xxqxsr6x1c7v54h7nq078bkb8sjq93jw";
        for path in [
            format!("/%70/{token}"),
            format!("//p/{token}"),
            format!("/x/y/{token}/z"),
            format!("/p/{}", token.replace('0', "%30")),
        ] {
            let logged = redact_path(&path);
            assert!(!logged.contains(token) && !logged.contains("sst410"), "{path} -> {logged}");
        }
        assert_eq!(
            redact_path("/staff/inspections/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            "/staff/inspections/01ARZ3NDEKTSV4RRFFQ69G5FAV"
        );
    }

    fn req_with(body: &str, ct: Option<&str>) -> Request {
        let mut b = http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::Text(body.to_owned())).unwrap()
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Named {
        name: String,
    }

    #[test]
    fn json_bodies_are_checked() {
        assert!(json_body::<Named>(&req_with(r#"{"name":"a"}"#, Some("application/json; charset=utf-8"))).is_ok());
        assert!(json_body::<Named>(&req_with(r#"{"name":"a"}"#, None)).is_ok());
        assert!(matches!(json_body::<Named>(&req_with("{", Some("application/json"))), Err(ApiError::BadRequest(_))));
        assert!(matches!(json_body::<Named>(&req_with("", None)), Err(ApiError::BadRequest(_))));
        assert!(matches!(json_body::<Named>(&req_with(r#"{"name":"a","x":1}"#, None)), Err(ApiError::BadRequest(_))));
        assert!(
            matches!(json_body::<Named>(&req_with(r#"["a"]"#, None)), Err(ApiError::BadRequest(_))),
            "not an object"
        );
        assert!(matches!(
            json_body::<Named>(&req_with("name=a", Some("application/x-www-form-urlencoded"))),
            Err(ApiError::UnsupportedMediaType)
        ));
    }

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patch {
        name: Option<String>,
        publish_at: Option<Option<String>>,
    }

    #[test]
    fn a_null_in_a_partial_update_is_refused_unless_it_means_something() {
        let r = req_with(r#"{"name": null}"#, Some("application/json"));
        match json_patch_body::<Patch>(&r, &["publish_at"]) {
            Err(ApiError::BadRequest(m)) => assert!(m.contains("name may not be null"), "{m}"),
            other => panic!("{other:?}"),
        }
        let r = req_with(r#"{"publish_at": null, "name": "x"}"#, Some("application/json"));
        assert!(json_patch_body::<Patch>(&r, &["publish_at"]).is_ok());
        let r = req_with(r#"{"name": "x", "extra": 1}"#, Some("application/json"));
        assert!(
            matches!(json_patch_body::<Patch>(&r, &[]), Err(ApiError::BadRequest(_))),
            "unknown fields still refused"
        );
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Picks {
        ids: Vec<String>,
        note: String,
    }

    #[test]
    fn form_posts_parse_like_json() {
        let form = req_with("ids=a&note=hi+there&ids=b", Some("application/x-www-form-urlencoded"));
        assert_eq!(
            form_or_json_body::<Picks>(&form, &["ids"]).unwrap(),
            Picks { ids: vec!["a".into(), "b".into()], note: "hi there".into() }
        );
        let json = req_with(r#"{"ids": ["a"], "note": "x"}"#, Some("application/json"));
        assert_eq!(form_or_json_body::<Picks>(&json, &["ids"]).unwrap().ids, vec!["a".to_owned()]);
        let bad = req_with("note=x&other=1", Some("application/x-www-form-urlencoded"));
        assert!(matches!(form_or_json_body::<Picks>(&bad, &["ids"]), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn bearer_tokens_are_extracted() {
        let r = http::Request::builder().header("authorization", "bearer  isk_x ").body(Body::Empty).unwrap();
        assert_eq!(bearer(&r), Some("isk_x"));
        let r = http::Request::builder().header("authorization", "Basic abc").body(Body::Empty).unwrap();
        assert_eq!(bearer(&r), None);
    }

    fn config(vars: &[(&str, &str)]) -> crate::Config {
        crate::Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap()
    }

    #[tokio::test]
    async fn oversized_bodies_get_413_without_running_the_handler() {
        let c = config(&[("TABLE_NAME", "t"), ("MAX_BODY_BYTES", "100"), ("ROUND_TRIPS_HEADER", "true")]);
        let resp = serve(req_with(&"x".repeat(101), None), &c, |_| async { panic!("handler must not run") }).await;
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.headers()[ROUND_TRIPS_HEADER], "0");
    }

    #[tokio::test]
    async fn the_round_trip_header_is_sent_only_where_the_deployment_asks_for_it() {
        let ok = || async { Ok(http::Response::builder().status(204).body(Body::Empty).unwrap()) };
        let aws = config(&[("TABLE_NAME", "t")]);
        let resp = serve(req_with("", None), &aws, |_| ok()).await;
        assert_eq!(resp.status(), 204);
        assert!(resp.headers().get(ROUND_TRIPS_HEADER).is_none(), "off by default (AWS)");
        let local = config(&[("TABLE_NAME", "t"), ("ROUND_TRIPS_HEADER", "true")]);
        assert_eq!(serve(req_with("", None), &local, |_| ok()).await.headers()[ROUND_TRIPS_HEADER], "0");
    }
}
