//! Server-rendered HTML pages of the portal, from compile-time `maud` templates: every value is
//! escaped by construction, one layout, one function per panel. No scripts; one inline
//! stylesheet allowed by its hash. Every page goes out with the security headers of [`html`].

use std::fmt::Write as _;
use std::sync::LazyLock;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::StatusCode;
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};

use crate::domain::gate::LockReason;
use crate::domain::inspection::Role;
use crate::domain::inspection::ServiceKind;
use crate::domain::portal::{
    AgreementPanel, AgreementState, DocumentCard, DocumentState, PaymentAction, PaymentPanel, PaymentState, PortalView,
    ShareView,
};
use crate::foundation::money::{format as money, Currency};
use crate::web::http::ApiResult;
use crate::ApiError;

const CSS: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}\
header{background:#17324d;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}\
header p{margin:4px 0 0;opacity:.85}nav{background:#fff;border-bottom:1px solid #dde3ea;padding:0 24px}\
nav a{display:inline-block;padding:12px 10px;color:#17324d;text-decoration:none;font-weight:600}\
main{max-width:880px;margin:0 auto;padding:16px 24px}section{background:#fff;border:1px solid #dde3ea;\
border-radius:8px;padding:16px 20px;margin:16px 0}h2{font-size:18px;margin:0 0 12px}\
.notice{background:#fff5d6;border:1px solid #e8c75a;border-radius:8px;padding:12px 16px;margin:16px 0}\
.ok{color:#1a7f37;font-weight:600}.due{color:#b42318;font-weight:600}.muted{color:#5b6b7b}\
.locked{color:#b42318}table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:6px 4px;\
border-bottom:1px solid #eef1f4}button,.button{background:#1565c0;color:#fff;border:0;border-radius:6px;\
padding:8px 14px;font-size:15px;cursor:pointer;text-decoration:none;display:inline-block}\
button.secondary{background:#e8edf3;color:#17324d}input[type=text],input[type=email]{padding:8px;\
font-size:15px;border:1px solid #b8c4d0;border-radius:6px;min-width:240px}\
pre{white-space:pre-wrap;background:#f7f9fb;border:1px solid #eef1f4;padding:12px;border-radius:6px;\
max-height:320px;overflow:auto}img.cover{width:100%;max-height:280px;object-fit:cover;border-radius:8px}\
ul.steps{list-style:none;padding:0}ul.steps li{padding:4px 0}\
textarea{width:100%;box-sizing:border-box;padding:8px;font:inherit;border:1px solid #b8c4d0;border-radius:6px}\
.offer{border-top:1px solid #eef1f4;padding-top:8px}td.email{overflow-wrap:anywhere}td.money{white-space:nowrap}\
@media (max-width:480px){main{padding:8px 12px}section{padding:12px 14px}header{padding:12px 16px}}";

/// `style-src` allows exactly the stylesheet above, nothing inline from anywhere else.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| STANDARD.encode(Sha256::digest(CSS.as_bytes())));

/// The pages' CSP. Forms post to the page's own origin only, plus `form_to` when given: browsers
/// apply `form-action` to the redirect a form post answers, so Pay Now's `303` to a payment
/// provider's checkout on another origin needs that origin here.
fn csp(form_to: Option<&str>) -> String {
    let extra = form_to.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src https: data:; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH
    )
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
        .header("content-security-policy", csp(form_to))
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
/// tab bar, the content; with `refresh`, the page reloads itself (no script needed).
fn layout(title: &str, header: &str, sub: &str, nav: Option<Markup>, main: Markup, refresh: Option<&str>) -> String {
    layout_with("no-referrer", title, header, sub, nav, main, refresh)
}

/// [`layout`] for the pages sent with [`html_own_origin`] (the same referrer policy in the page).
fn own_origin_layout(title: &str, header: &str, sub: &str, main: Markup) -> String {
    layout_with("same-origin", title, header, sub, None, main, None)
}

fn layout_with(
    referrer: &str,
    title: &str,
    header: &str,
    sub: &str,
    nav: Option<Markup>,
    main: Markup,
    refresh: Option<&str>,
) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                @if let Some(r) = refresh { meta http-equiv="refresh" content=(r); }
                meta name="referrer" content=(referrer);
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { h1 { (header) } p { (sub) } }
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
    layout(&format!("{title} is locked"), title, "Locked", None, main, None)
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
    layout(title, title, "", None, main, None)
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
pub fn lock_reason_text(r: &LockReason, currency: Currency) -> String {
    match r {
        LockReason::PaymentRequired { amount_due_cents } => {
            format!("Payment required: pay the balance of {}", money(*amount_due_cents, currency))
        }
        LockReason::AgreementUnsigned => "Agreement unsigned: every client must sign the current agreement".into(),
        LockReason::FormIncomplete => "The inspector has not completed the WDI form yet".into(),
    }
}

fn date(rfc3339: &str, zone: &Option<String>) -> String {
    crate::foundation::local_time::date_time_of(rfc3339, zone.as_deref())
}

fn document_rows(docs: &[DocumentCard], base: &str, currency: Currency) -> Markup {
    html! {
        @if docs.is_empty() {
            p.muted { "Nothing here yet." }
        } @else {
            table {
                @for d in docs {
                    tr {
                        td { (d.title) }
                        td {
                            @match d.state {
                                DocumentState::Available => {
                                    a.button href={ (base) "/documents/" (d.id) } { "View" }
                                }
                                DocumentState::Locked => {
                                    span.locked { "Locked" }
                                    ul { @for r in &d.lock_reasons { li { (lock_reason_text(r, currency)) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A note at the top of the portal, e.g. after returning from the payment provider; with
/// `refresh` (a meta refresh value such as `3;url=?checkout=success&n=2`) the page reloads itself.
pub struct Notice<'a> {
    pub text: &'a str,
    pub refresh: Option<String>,
}

fn portal_nav(v: &PortalView) -> Markup {
    html! {
        nav {
            a href="#dashboard" { "Dashboard" }
            a href="#order" { "Order Details" }
            a href="#documents" { "Documents" }
            @if v.contractors.is_some() { a href="#contractors" { "Contractors" } }
            a href="#offers" { "Special Offers" }
            a href="#contact" { "Contact Us" }
        }
    }
}

fn addons_panel(v: &PortalView, base: &str) -> Markup {
    let cur = v.payment.currency;
    html! {
        h2 { "Add-on services" }
        form method="post" action={ (base) "/addons" } {
            table {
                @for a in &v.addon_offers {
                    tr {
                        td {
                            label { input type="checkbox" name="addon_ids" value=(a.id); " " strong { (a.name) } }
                            br;
                            span.muted { (a.description) }
                        }
                        td.money { (money(a.price_cents, cur)) }
                    }
                }
            }
            p { button type="submit" { "Add selected services" } }
        }
        form method="post" action={ (base) "/offers/dismiss" } { button.secondary type="submit" { "No thanks" } }
    }
}

fn payment_panel(p: &PaymentPanel, base: &str, act: bool) -> Markup {
    let class = match p.state {
        PaymentState::Paid | PaymentState::None => "ok",
        PaymentState::Due => "due",
        _ => "muted",
    };
    html! {
        h2 { "Payment" }
        p class=(class) { (p.message) }
        @match p.action {
            Some(PaymentAction::PayNow) if act => {
                form method="post" action={ (base) "/pay" } { button type="submit" { "Pay Now" } }
            }
            Some(PaymentAction::LearnMore) => {
                p { a.button href="#contact" { "Learn More" } }
                p.muted { "Online payment is not available; contact the inspection company to pay." }
            }
            _ => {}
        }
    }
}

fn agreement_panel(a: &AgreementPanel, base: &str, act: bool) -> Markup {
    html! {
        h2 { "Inspection agreement (version " (a.version) ")" }
        @if a.state == AgreementState::Signed {
            p.ok { "Signed by every client" }
        } @else if a.signed_by_you {
            p.muted { "You signed; waiting for the other client(s)." }
        } @else {
            p.due { "Not signed yet" }
        }
        @if a.can_sign && act {
            pre { (a.text) }
            form method="post" action={ (base) "/agreement" } {
                input type="hidden" name="version" value=(a.version);
                label {
                    "Type your full name to sign: "
                    input type="text" name="typed_name" required maxlength="200" autocomplete="name";
                }
                " "
                button type="submit" { "Sign" }
            }
        }
    }
}

fn order_panel(v: &PortalView) -> Markup {
    let cur = v.payment.currency;
    html! {
        section #order {
            h2 { "Order details" }
            p {
                strong { "Address:" } " " (v.address) br;
                strong { "Date and time:" } " " (date(&v.scheduled_at, &v.company.time_zone))
            }
            h2 { "Services" }
            table {
                @for s in &v.services {
                    tr {
                        td {
                            strong { (s.name) }
                            @if s.kind == ServiceKind::Addon { " (add-on)" }
                            br;
                            span.muted { (s.description) }
                        }
                        td.money { (money(s.price_cents, cur)) }
                    }
                }
                tr { th { "Total" } th { (money(v.payment.invoice_total_cents, cur)) } }
            }
            h2 { "People" }
            table.people {
                @for person in &v.people {
                    tr {
                        td { (person.name) }
                        td { (role_label(person.role)) }
                        td.email { (person.email.as_ref().map(|e| e.as_str()).unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn offers_panel(v: &PortalView, base: &str, act: bool) -> Markup {
    html! {
        section #offers {
            h2 { "Special offers" }
            @if v.special_offers.is_empty() { p.muted { "No offers right now." } }
            @for o in &v.special_offers {
                div.offer {
                    p { strong { (o.title) } " from " (o.partner) br; span.muted { (o.description) } }
                    @if o.quote_requested {
                        p.ok { "Quote requested: " (o.partner) " will contact you." }
                    } @else if o.can_request_quote && act {
                        form method="post" action={ (base) "/offers/" (o.id) "/quote" } {
                            p { label { input type="checkbox" name="consent" value="on" required; " " (o.consent_text) } }
                            p { label { "Message (optional):" br; textarea name="message" maxlength="2000" rows="2" {} } }
                            p { button type="submit" { "Ask " (o.partner) " for a quote" } }
                        }
                    }
                }
            }
            p.muted { "Nothing about you is shared with a partner unless you ask them for a quote." }
        }
    }
}

fn contact_panel(v: &PortalView) -> Markup {
    let c = &v.company.contact;
    html! {
        section #contact {
            h2 { "Contact us" }
            @for i in &v.inspectors {
                p {
                    strong { (i.name) } " (inspector)" br;
                    (i.email.as_ref().map(|e| e.as_str()).unwrap_or("")) " " (i.phone.as_deref().unwrap_or(""))
                }
            }
            p {
                strong { (v.company.name) } br;
                (c.phone.as_deref().unwrap_or("")) br;
                (c.email.as_ref().map(|e| e.as_str()).unwrap_or("")) br;
                (c.website.as_deref().unwrap_or("")) br;
                (c.address.as_deref().unwrap_or(""))
            }
        }
    }
}

/// The client portal. `base` is the page's own path (`/p/<token>`); forms post under it. With
/// `read_only` (staff previews), no forms are rendered.
pub fn portal(v: &PortalView, base: &str, read_only: bool, notice: Option<Notice>) -> String {
    let cur = v.payment.currency;
    let act = v.can_act && !read_only;
    let main = html! {
        @if let Some(n) = &notice { div.notice role="status" { (n.text) } }
        @if read_only {
            div.notice { "Staff preview: exactly what " (v.viewer.name) " (" (role_label(v.viewer.role)) ") sees. Read-only." }
        }
        section #dashboard {
            @if let Some(url) = &v.cover_photo_url { img.cover src=(url) alt="Property photo"; }
            h2 { (v.address) }
            p { (date(&v.scheduled_at, &v.company.time_zone)) }
            @if !v.addon_offers.is_empty() && act { (addons_panel(v, base)) }
            (payment_panel(&v.payment, base, act))
            (agreement_panel(&v.agreement, base, act))
            h2 { "Steps" }
            ul.steps { @for s in &v.steps { li { (if s.done { "\u{2713}" } else { "\u{25cb}" }) " " (s.label) } } }
            h2 { "Reports" }
            (document_rows(&v.reports, base, cur))
        }
        (order_panel(v))
        section #documents { h2 { "Documents" } (document_rows(&v.documents, base, cur)) }
        @if let Some(list) = &v.contractors {
            section #contractors {
                h2 { "Recommended contractors" }
                table {
                    @for c in list {
                        tr {
                            td { strong { (c.name) } br; span.muted { (c.trade.as_deref().unwrap_or("")) } }
                            td { (c.phone.as_deref().unwrap_or("")) }
                            td.email { (c.email.as_ref().map(|e| e.as_str()).unwrap_or("")) }
                        }
                    }
                }
            }
        }
        (offers_panel(v, base, act))
        (contact_panel(v))
    };
    let sub = format!("{} \u{2014} {}", v.company.name, role_label(v.viewer.role));
    let refresh = notice.and_then(|n| n.refresh);
    let title = format!("{} \u{2014} {}", v.address, v.company.name);
    layout(&title, &v.address, &sub, Some(portal_nav(v)), main, refresh.as_deref())
}

/// The customer portal: the contact's buildings, their documents (opened through the gate), and
/// the open deficiencies' first page when visible. `base` is the page's path (`/c/<token>`).
pub fn customer(
    v: &crate::usecases::customer_portal::CustomerView,
    deficiencies: &[serde_json::Value],
    base: Option<&str>,
) -> String {
    let building_name = |d: &serde_json::Value| {
        v.buildings
            .iter()
            .find(|b| Some(b.id.to_string().as_str()) == d["building_id"].as_str())
            .map(|b| b.name.as_str())
            .unwrap_or("")
    };
    let text = |d: &serde_json::Value, k: &str| d[k].as_str().unwrap_or("").to_owned();
    let main = html! {
        @if base.is_none() { div.notice { "Staff preview: exactly what this contact sees. Read-only." } }
        @for b in &v.buildings {
            section {
                h2 { (b.name) }
                p.muted { (b.address) }
                @if b.documents.is_empty() {
                    p.muted { "No published documents yet." }
                } @else {
                    table {
                        @for d in &b.documents {
                            tr {
                                td { (d.title) }
                                td { @if let Some(base) = base { a.button href={ (base) "/documents/" (d.document_id) } { "View" } } }
                            }
                        }
                    }
                }
            }
        }
        @if v.deficiencies_visible {
            section {
                h2 { "Open deficiencies" }
                @if deficiencies.is_empty() {
                    p.muted { "None." }
                } @else {
                    table {
                        tr { th { "Building" } th { "Severity" } th { "Description" } th { "Location" } }
                        @for d in deficiencies {
                            tr {
                                td { (building_name(d)) }
                                td { (text(d, "severity")) }
                                td { (text(d, "description")) }
                                td { (text(d, "location")) }
                            }
                        }
                    }
                }
            }
        }
    };
    let name = v.contact["name"].as_str().unwrap_or("");
    let company = v.company["name"].as_str().unwrap_or("");
    layout(
        &format!("{company} \u{2014} customer portal"),
        company,
        &format!("Customer portal of {name}"),
        None,
        main,
        None,
    )
}

/// The unknown-user page: basic details, the notice, and the "Get Full Access" form.
pub fn share(v: &ShareView, form_action: &str) -> String {
    let main = html! {
        div.notice { strong { "Unknown user." } " " (v.notice) }
        section {
            @if let Some(url) = &v.cover_photo_url { img.cover src=(url) alt="Property photo"; }
            h2 { (v.address) }
            p { (date(&v.scheduled_at, &v.company.time_zone)) }
            p { "Inspection by " (v.company.name) }
        }
        section {
            h2 { "Get Full Access" }
            p { "Enter your email as it is on the inspection. If it matches, we email you your personal link." }
            form method="post" action=(form_action) {
                input type="email" name="email" required maxlength="254" autocomplete="email";
                " "
                button type="submit" { "Get Full Access" }
            }
        }
    };
    layout(&format!("{} \u{2014} {}", v.address, v.company.name), &v.address, &v.company.name, None, main, None)
}

// ---- "all my inspections" (/me) ----

/// The sign-in form: an address, and a link by email if it is on any inspection.
pub fn me_ask(company: &str, form_action: &str, sent: bool) -> String {
    let main = html! {
        @if sent {
            div.notice { "If that email is on any of our inspections, a sign-in link is on its way to it. It works once, within 15 minutes." }
        }
        section {
            h2 { "All your inspections in one place" }
            p { "Enter your email to see all your inspections with " (company) ". We email you a sign-in link." }
            form method="post" action=(form_action) {
                input type="email" name="email" required maxlength="254" autocomplete="email" aria-label="Your email";
                " "
                button type="submit" { "Email me a sign-in link" }
            }
        }
    };
    own_origin_layout(&format!("Your inspections \u{2014} {company}"), "Your inspections", company, main)
}

/// The sign-in link's page: one button, so a mail scanner that opens links uses up nothing.
pub fn me_sign_in(company: &str, form_action: &str) -> String {
    let main = html! {
        section {
            h2 { "Sign in" }
            p { "Continue to see all your inspections with " (company) "." }
            form method="post" action=(form_action) { button type="submit" { "Continue" } }
        }
    };
    own_origin_layout(&format!("Sign in \u{2014} {company}"), "Your inspections", company, main)
}

/// Every inspection where this address has a link, each opening its own portal.
pub fn me_list(v: &crate::domain::me::MeView, logout_action: &str) -> String {
    let payment = |p: &crate::domain::me::MePayment| -> Markup {
        html! {
            @match p.state {
                "due" => span.due { "Payment due: " (money(p.balance_cents, p.currency)) },
                "paid" => span.ok { "Paid" },
                _ => span.muted { "Nothing to pay" },
            }
        }
    };
    let card = |i: &crate::domain::me::MeInspection| -> Markup {
        html! {
            section {
                h2 { (i.address) }
                p { (date(&crate::foundation::clock::rfc3339(i.scheduled_at), &v.time_zone)) " \u{b7} " (role_label(i.role)) }
                p {
                    (payment(&i.payment))
                    @if i.agreement.required {
                        " \u{b7} "
                        @if i.agreement.signed { span.ok { "Agreement signed" } } @else { span.due { "Agreement to sign" } }
                    }
                }
                @if !i.reports.is_empty() {
                    ul {
                        @for r in &i.reports {
                            li {
                                (r.title) ": "
                                @match r.state {
                                    DocumentState::Available => span.ok { "ready" },
                                    DocumentState::Locked => span.locked { "locked" },
                                }
                            }
                        }
                    }
                }
                p { a.button href=(i.portal_url) { "Open" } }
            }
        }
    };
    let (upcoming, past): (Vec<_>, Vec<_>) = v.inspections.iter().partition(|i| i.upcoming);
    let main = html! {
        p.muted { "Signed in as " (v.email) "." }
        @if v.inspections.is_empty() {
            section { p { "No inspection lists this email any more." } }
        }
        @if !upcoming.is_empty() { h2 { "Upcoming" } @for i in &upcoming { (card(i)) } }
        @if !past.is_empty() { h2 { "Past" } @for i in &past { (card(i)) } }
        form method="post" action=(logout_action) { button.secondary type="submit" { "Sign out" } }
    };
    own_origin_layout(
        &format!("Your inspections \u{2014} {}", v.company_name),
        "Your inspections",
        &v.company_name,
        main,
    )
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
