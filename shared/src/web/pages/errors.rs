//! The page a person's browser gets for an error (programs keep `problem+json`): a short human
//! sentence, what to do next, and a way back. A portal link that does not work — never issued,
//! revoked, expired or mistyped: the page is the same for all of them, so it tells nobody which —
//! offers "Email me a new link", which is Get Full Access for the inspection the link names.

use http::StatusCode;
use lambda_http::{Body, Response};
use maud::html;

use super::layout;
use crate::ApiError;

/// What the path is: a client's portal link (its token segment), a contact's, or anything else.
enum Place<'a> {
    Portal(&'a str),
    Contact,
    Other,
}

fn place(path: &str) -> Place<'_> {
    let mut segs = path.trim_start_matches('/').split('/');
    match (segs.next(), segs.next()) {
        (Some("p"), Some(token)) if !token.is_empty() => Place::Portal(token),
        (Some("c"), Some(token)) if !token.is_empty() => Place::Contact,
        _ => Place::Other,
    }
}

/// [`crate::web::http::serve`] for the functions people open in a browser: an error answers a
/// page ([`error_page`]) when the browser asked for HTML or posted a form; programs still get
/// `problem+json`.
pub async fn serve_pages<F, Fut>(req: lambda_http::Request, config: &crate::Config, handler: F) -> Response<Body>
where
    F: FnOnce(lambda_http::Request) -> Fut,
    Fut: std::future::Future<Output = crate::web::http::ApiResult>,
{
    crate::web::http::serve_with(req, config, Some(error_page), handler).await
}

/// The error as a page for `path` (the request's, tokens included: the page is sent with no
/// referrer and no caching, like the portal itself). Keeps the status and the headers that
/// matter (`Retry-After`, `Allow`).
pub fn error_page(e: ApiError, path: &str) -> Response<Body> {
    let status = e.status();
    let detail = sentence(e.problem().detail);
    let problem = e.into_response(); // logs an internal error once, and carries its headers
    let portal = match place(path) {
        Place::Portal(token) => Some(token),
        _ => None,
    };
    let dead_link = matches!(status, StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::GONE);
    let body = match (place(path), dead_link) {
        (Place::Portal(token), true) => dead_portal_link(token, None),
        (Place::Contact, true) => page(
            "This link does not work",
            "Links stop working when they expire or are replaced. Ask the inspection company that sent it for a new \
             invitation: it will come by email.",
            None,
        ),
        _ => {
            let back = portal.map(|t| format!("/p/{t}"));
            let (title, text) = match status {
                StatusCode::NOT_FOUND => ("Not found", "This page does not exist, or is not yours to see.".to_owned()),
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                    ("That did not work", format!("{detail} Go back, correct it and try again."))
                }
                StatusCode::CONFLICT => {
                    ("That could not be done", format!("{detail} Go back to see where things stand."))
                }
                StatusCode::FORBIDDEN => ("Not available to you", detail),
                StatusCode::TOO_MANY_REQUESTS => (
                    "Too many requests",
                    format!(
                        "Too many requests came from here. Please try again in {}.",
                        minutes(problem.headers().get("retry-after"))
                    ),
                ),
                StatusCode::SERVICE_UNAVAILABLE => (
                    "Please try again",
                    "We could not finish this just now. Nothing was lost: please try again in a few seconds.".into(),
                ),
                s if s.is_server_error() => {
                    ("Something went wrong", "Something went wrong on our side. Please try again in a moment.".into())
                }
                _ => ("That did not work", detail),
            };
            page(title, &text, back.as_deref().map(|b| (b, "Back to your portal")))
        }
    };
    let mut resp = super::html(status, body).unwrap_or_else(|e| e.into_response());
    for name in ["retry-after", "allow"] {
        if let Some(v) = problem.headers().get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp
}

/// A problem's `detail` as a sentence (a full stop at the end).
fn sentence(detail: String) -> String {
    let mut detail = detail.trim().to_owned();
    if !detail.is_empty() && !detail.ends_with('.') {
        detail.push('.');
    }
    detail
}

fn minutes(retry_after: Option<&http::HeaderValue>) -> String {
    let seconds: i64 = retry_after.and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(60);
    match (seconds + 59) / 60 {
        1 => "a minute".into(),
        n => format!("{n} minutes"),
    }
}

fn page(title: &str, text: &str, back: Option<(&str, &str)>) -> String {
    let main = html! {
        section {
            h2 { (title) }
            p { (text) }
            @if let Some((href, label)) = back { p { a href=(href) { (label) } } }
        }
    };
    layout(&super::Chrome::plain(), title, title, "", None, main)
}

/// The same page for every portal link that does not work, with a form for a new one (`error`:
/// that form sent back).
pub fn dead_portal_link(token: &str, error: Option<&super::FieldError>) -> String {
    let action = format!("/p/{token}/new-link");
    let main = html! {
        section {
            h2 { "This link does not work any more" }
            p {
                "Portal links stop working when they expire or when the inspection company replaces them. "
                "Enter your email address: if it is on the inspection, we will email you a new personal link."
            }
            form method="post" action=(action) {
                (super::email_field(error))
                p { button type="submit" { "Email me a new link" } }
            }
        }
    };
    layout(&super::Chrome::plain(), "This link does not work", "Your inspection portal", "", None, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(resp: &Response<Body>) -> String {
        match resp.body() {
            Body::Text(t) => t.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn browsers_get_pages_programs_keep_problems() {
        use crate::web::http::wants_page;
        assert!(wants_page(Some("text/html,application/xhtml+xml,*/*;q=0.8"), None));
        assert!(wants_page(None, Some("application/x-www-form-urlencoded")));
        assert!(!wants_page(Some("application/json"), None));
        assert!(!wants_page(Some("*/*"), Some("application/json")));
        assert!(!wants_page(None, None));
    }

    #[test]
    fn every_dead_portal_link_gets_the_same_page_with_a_form() {
        let a = error_page(ApiError::NotFound, "/p/aaaa");
        let b = error_page(ApiError::NotFound, "/p/bbbb");
        assert_eq!(a.status(), 404);
        assert_eq!(text(&a).replace("aaaa", "X"), text(&b).replace("bbbb", "X"), "nothing tells them apart");
        assert!(text(&a).contains("action=\"/p/aaaa/new-link\"") && text(&a).contains("<label for=\"email\">"));
        assert_eq!(a.headers()["content-type"], "text/html; charset=utf-8");
    }

    #[test]
    fn a_busy_answer_keeps_its_retry_after_and_says_when() {
        let r = error_page(ApiError::TooManyRequests { retry_after_seconds: 600 }, "/share/x/full-access");
        assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (429, "600"));
        assert!(text(&r).contains("10 minutes"), "{}", text(&r));
        let r = error_page(ApiError::bad_request("typed_name: type your full name"), "/p/tok/agreement");
        assert!(text(&r).contains("typed_name: type your full name. Go back") && text(&r).contains("href=\"/p/tok\""));
        assert!(!text(&r).contains("new-link"), "a form error is not a dead link");
    }
}
