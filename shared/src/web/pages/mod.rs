//! Server-rendered HTML pages of the portal, from compile-time `maud` templates: every value is
//! escaped by construction, one layout, one function per panel. No scripts; one inline
//! stylesheet allowed by its hash. Every page goes out with the security headers of [`html`].

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::StatusCode;
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};

use crate::domain::inspection::Role;
use crate::web::http::ApiResult;
use crate::ApiError;

mod customer;
mod errors;
mod me;
mod portal;
mod share;
mod unsubscribe;

pub use customer::customer;
pub use errors::dead_portal_link;
pub use errors::{error_page, serve_pages};
pub use me::{me_ask, me_list, me_sign_in};
pub use portal::{portal, receipt, FieldError, Notice};
pub use share::share;
pub use unsubscribe::unsubscribe;

const CSS: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}\
header{background:#17324d;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}\
header p{margin:4px 0 0;opacity:.85}nav{background:#fff;border-bottom:1px solid #dde3ea;padding:0 24px}\
nav a{display:inline-block;padding:12px 10px;color:#17324d;text-decoration:none;font-weight:600}\
main{max-width:880px;margin:0 auto;padding:16px 24px}section{background:#fff;border:1px solid #dde3ea;\
border-radius:8px;padding:16px 20px;margin:16px 0}h2{font-size:18px;margin:0 0 12px}\
.notice{background:#fff5d6;border:1px solid #e8c75a;border-radius:8px;padding:12px 16px;margin:16px 0}\
.ok{color:#1a7f37;font-weight:600}.due{color:#b42318;font-weight:600}.muted{color:#5b6b7b}\
.locked{color:#b42318}table{width:100%;border-collapse:collapse;margin-bottom:12px}td,th{text-align:left;padding:6px 4px;\
border-bottom:1px solid #eef1f4}button,.button{background:#1565c0;color:#fff;border:0;border-radius:6px;\
padding:8px 14px;font-size:15px;cursor:pointer;text-decoration:none;display:inline-block}\
button.secondary{background:#e8edf3;color:#17324d}input[type=text],input[type=email]{padding:8px;\
font-size:15px;border:1px solid #6b7b8c;border-radius:6px;min-width:240px}\
pre{white-space:pre-wrap;background:#f7f9fb;border:1px solid #eef1f4;padding:12px;border-radius:6px;\
max-height:320px;overflow:auto}img.cover{width:100%;max-height:280px;object-fit:cover;border-radius:8px}\
ol.progress{display:flex;flex-wrap:wrap;gap:8px;list-style:none;padding:0;margin:12px 0}\
ol.progress li{flex:1;min-width:120px;border-top:4px solid #8a97a5;padding-top:6px}ol.progress li.done{border-color:#1a7f37}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
a.button.primary{font-weight:600}.receipt td{overflow-wrap:anywhere}\
textarea{width:100%;box-sizing:border-box;padding:8px;font:inherit;border:1px solid #6b7b8c;border-radius:6px}\
.offer{border-top:1px solid #eef1f4;padding-top:8px}td.email{overflow-wrap:anywhere}td.money{white-space:nowrap}\
header img.logo{display:block;max-height:48px;max-width:180px;margin-bottom:8px;background:#fff;padding:4px;\
border-radius:4px}a{color:#0b57a6}:focus-visible{outline:3px solid #b45309;outline-offset:2px}\
button,.button,input[type=text],input[type=email],nav a{min-height:44px;box-sizing:border-box}\
button,.button{display:inline-flex;align-items:center}nav a{display:inline-flex;align-items:center}\
input[type=checkbox]{width:22px;height:22px;vertical-align:middle}label{display:inline-block;min-height:44px;\
padding:10px 0;box-sizing:border-box}\
@media (max-width:480px){main{padding:8px 12px}section{padding:12px 14px}header{padding:12px 16px}}\
@media print{body{background:#fff}header{background:#fff;color:#000;border-bottom:2px solid #000}nav,.noprint{display:none}\
section{border:0;padding:0}a{color:#000;text-decoration:none}}";

/// The pages' CSP: `style-src` allows exactly the stylesheets the page carries (the one above and
/// a company's brand colours), by their hashes; images from this origin (a company's logo), any
/// https origin (a cover photo) and data. Forms post to the page's own origin only, plus
/// `form_to` when given: browsers apply `form-action` to the redirect a form post answers, so Pay
/// Now's `303` to a payment provider's checkout on another origin needs that origin here.
fn csp(body: &str, form_to: Option<&str>) -> String {
    let extra = form_to.map(|o| format!(" {o}")).unwrap_or_default();
    let styles: Vec<String> = body
        .split("<style>")
        .skip(1)
        .filter_map(|s| s.split("</style>").next())
        .map(|css| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(css.as_bytes()))))
        .collect();
    let styles = if styles.is_empty() { "'none'".to_owned() } else { styles.join(" ") };
    format!(
        "default-src 'none'; style-src {styles}; img-src 'self' https: data:; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// What frames a page: its language, and the company's brand (accent colour, logo) when known.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub lang: String,
    /// `#rrggbb`, checked for contrast when saved.
    pub accent: Option<String>,
    /// The logo's URL on this origin, and its text alternative.
    pub logo: Option<(String, String)>,
}

impl Chrome {
    /// A page that knows no company: English, the portal's own colours.
    pub fn plain() -> Chrome {
        Chrome { lang: "en".into(), ..Chrome::default() }
    }

    pub fn of(brand: &crate::domain::company::Brand) -> Chrome {
        Chrome {
            lang: brand.language.clone(),
            accent: brand.accent_color.clone(),
            logo: brand.logo_url.clone().map(|url| (url, format!("{} logo", brand.name))),
        }
    }

    /// The stylesheet of the brand colour, if any.
    fn css(&self) -> Option<String> {
        self.accent.as_ref().map(|c| format!("header{{background:{c}}}button,.button{{background:{c}}}a{{color:{c}}}"))
    }
}

/// An HTML response with the headers every page carries: no referrer (URLs hold tokens), no
/// caching, a restrictive CSP, no framing, no sniffing.
pub fn html(status: StatusCode, body: String) -> ApiResult {
    html_posting_to(status, body, None)
}

/// [`html`] for a page whose forms may end on another origin (`form_to`, e.g. Pay Now's checkout).
pub fn html_posting_to(status: StatusCode, body: String, form_to: Option<&str>) -> ApiResult {
    page_response(status, body, form_to, "no-referrer")
}

/// [`html`] for pages whose form posts are checked for our own `Origin` ("all my inspections"):
/// under `no-referrer` a browser sends `Origin: null` even to the page's own origin, so these
/// pages keep the referrer for their own origin only (their URLs hold nothing another site sees).
pub fn html_own_origin(status: StatusCode, body: String) -> ApiResult {
    page_response(status, body, None, "same-origin")
}

fn page_response(status: StatusCode, body: String, form_to: Option<&str>, referrer: &str) -> ApiResult {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", referrer)
        .header("content-security-policy", csp(&body, form_to))
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

/// `303 See Other` back to a page after a form post.
pub fn see_other(location: &str) -> ApiResult {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("location", location)
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .body(Body::Empty)
        .map_err(ApiError::internal)
}

/// Text escaped for HTML (maud escapes every value by itself; this is for the rare string built
/// outside a template).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let _ = maud::Escaper::new(&mut out).write_str(s);
    out
}

/// One layout for every page: the stylesheet the CSP allows by its hash, the header, an optional
/// tab bar, the content. (No page reloads itself.)
fn layout(chrome: &Chrome, title: &str, header: &str, sub: &str, nav: Option<Markup>, main: Markup) -> String {
    layout_with("no-referrer", chrome, title, header, sub, nav, main)
}

/// [`layout`] for the pages sent with [`html_own_origin`] (the same referrer policy in the page).
fn own_origin_layout(chrome: &Chrome, title: &str, header: &str, sub: &str, main: Markup) -> String {
    layout_with("same-origin", chrome, title, header, sub, None, main)
}

fn layout_with(
    referrer: &str,
    chrome: &Chrome,
    title: &str,
    header: &str,
    sub: &str,
    nav: Option<Markup>,
    main: Markup,
) -> String {
    html! {
        (DOCTYPE)
        html lang=(chrome.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="referrer" content=(referrer);
                title { (title) }
                style { (PreEscaped(CSS)) }
                @if let Some(css) = chrome.css() { style { (PreEscaped(css)) } }
            }
            body {
                header {
                    @if let Some((src, alt)) = &chrome.logo { img.logo src=(src) alt=(alt); }
                    h1 { (header) }
                    p { (sub) }
                }
                @if let Some(nav) = nav { (nav) }
                main { (main) }
            }
        }
    }
    .into_string()
}

/// A locked document: what is missing and what to do, with a way back to the portal.
pub fn locked(title: &str, steps: &[String], portal: Option<&str>) -> String {
    let main = html! {
        section {
            h2 { (title) " is locked" }
            p { "It opens as soon as the following is done:" }
            ul { @for s in steps { li { (s) } } }
            @if let Some(href) = portal { p { a.button href=(href) { "Go to your portal to pay and sign" } } }
        }
    };
    layout(&Chrome::plain(), &format!("{title} is locked"), title, "Locked", None, main)
}

/// A simple page with one message (form results, errors people see).
pub fn message(title: &str, text: &str, back: Option<(&str, &str)>) -> String {
    let main = html! {
        section {
            h2 { (title) }
            p { (text) }
            @if let Some((href, label)) = back { p { a href=(href) { (label) } } }
        }
    };
    layout(&Chrome::plain(), title, title, "", None, main)
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Client => "Client",
        Role::BuyerAgent => "Buyer's agent",
        Role::ListingAgent => "Listing agent",
        Role::Inspector => "Inspector",
        Role::Additional => "Additional person",
    }
}

/// "Pay the balance of $450.00" etc.: what a lock reason asks the person to do.
fn date(rfc3339: &str, zone: &Option<String>) -> String {
    crate::foundation::local_time::date_time_of(rfc3339, zone.as_deref())
}

/// The email address field of the forms that take one (Get Full Access, a new link, `/me`), with
/// its visible label; with `error` (a form sent back), the message tied to the field
/// (`aria-describedby`, announced) and what was typed kept.
fn email_field(error: Option<&FieldError>) -> Markup {
    let error = error.filter(|e| e.field == "email");
    html! {
        p {
            label for="email" { "Your email address" }
            br;
            @if let Some(e) = error {
                input #email type="email" name="email" required maxlength="254" autocomplete="email"
                    value=(e.value) aria-invalid="true" aria-describedby="email-error";
                br;
                span #email-error.due role="alert" { (e.message) }
            } @else {
                input #email type="email" name="email" required maxlength="254" autocomplete="email";
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("<script>\"x\" & 'y'</script>"), "&lt;script&gt;&quot;x&quot; &amp; 'y'&lt;/script&gt;");
        let page = message("<b>t</b>", "\"><script>alert(1)</script>", Some(("javascript:x\"", "<i>")));
        assert!(!page.contains("<script>") && !page.contains("<b>t</b>") && !page.contains("<i>"), "{page}");
    }

    #[test]
    fn the_csp_allows_exactly_the_page_stylesheet() {
        let resp = html(StatusCode::OK, message("t", "x", None)).unwrap();
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe"));
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body = match resp.body() {
            Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        let css = body.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).unwrap();
        assert_eq!(css, CSS, "the page carries exactly the stylesheet whose hash the CSP allows");
    }
}
