//! Server-rendered HTML pages of the portal: no scripts, one inline stylesheet allowed by its hash,
//! every value escaped. Every page goes out with the security headers of [`html`].

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::StatusCode;
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};

use crate::domain::gate::LockReason;
use crate::domain::inspection::Role;
use crate::domain::portal::{DocumentCard, DocumentState, PaymentAction, PortalView, ShareView};
use crate::http::ApiResult;
use crate::money::{format as money, Currency};
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
.offer{border-top:1px solid #eef1f4;padding-top:8px}";

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
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
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

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, header: &str, sub: &str, nav: &str, main: &str) -> String {
    layout_refreshing(title, header, sub, nav, main, None)
}

/// [`layout`] that reloads itself every `refresh` seconds (no script needed).
fn layout_refreshing(title: &str, header: &str, sub: &str, nav: &str, main: &str, refresh: Option<u32>) -> String {
    let refresh = refresh.map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">")).unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{CSS}</style></head>\
         <body><header><h1>{}</h1><p>{}</p></header>{nav}<main>{main}</main></body></html>",
        escape(title),
        escape(header),
        escape(sub),
    )
}

/// A locked document: what is missing and what to do, with a way back to the portal.
pub fn locked(title: &str, steps: &[String], portal: Option<&str>) -> String {
    let mut m =
        format!("<section><h2>{} is locked</h2><p>It opens as soon as the following is done:</p><ul>", escape(title));
    for s in steps {
        let _ = write!(m, "<li>{}</li>", escape(s));
    }
    m.push_str("</ul>");
    if let Some(href) = portal {
        let _ = write!(m, "<p><a class=\"button\" href=\"{}\">Go to your portal to pay and sign</a></p>", escape(href));
    }
    m.push_str("</section>");
    layout(&format!("{title} is locked"), title, "Locked", "", &m)
}

/// The HTML part of an email whose text is `text`: escaped, line breaks kept, links clickable.
pub fn email_html(text: &str) -> String {
    let mut out = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>\n");
        }
        for (j, word) in line.split(' ').enumerate() {
            if j > 0 {
                out.push(' ');
            }
            if word.starts_with("https://") || word.starts_with("http://") {
                let w = escape(word);
                let _ = write!(out, "<a href=\"{w}\">{w}</a>");
            } else {
                out.push_str(&escape(word));
            }
        }
    }
    out.push_str("</body></html>");
    out
}

/// A simple page with one message (form results, errors people see).
pub fn message(title: &str, text: &str, back: Option<(&str, &str)>) -> String {
    let mut main = format!("<section><h2>{}</h2><p>{}</p>", escape(title), escape(text));
    if let Some((href, label)) = back {
        let _ = write!(main, "<p><a href=\"{}\">{}</a></p>", escape(href), escape(label));
    }
    main.push_str("</section>");
    layout(title, title, "", "", &main)
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
    crate::localtime::date_time_of(rfc3339, zone.as_deref())
}

fn document_rows(out: &mut String, docs: &[DocumentCard], base: &str, currency: Currency) {
    if docs.is_empty() {
        out.push_str("<p class=\"muted\">Nothing here yet.</p>");
        return;
    }
    out.push_str("<table>");
    for d in docs {
        let _ = write!(out, "<tr><td>{}</td><td>", escape(&d.title));
        match d.state {
            DocumentState::Available => {
                let _ = write!(out, "<a class=\"button\" href=\"{base}/documents/{}\">View</a>", d.id);
            }
            DocumentState::Locked => {
                out.push_str("<span class=\"locked\">Locked</span><ul>");
                for r in &d.lock_reasons {
                    let _ = write!(out, "<li>{}</li>", escape(&lock_reason_text(r, currency)));
                }
                out.push_str("</ul>");
            }
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
}

/// A note at the top of the portal, e.g. after returning from the payment provider; with
/// `refresh_seconds` the page reloads itself until the note is no longer needed.
pub struct Notice<'a> {
    pub text: &'a str,
    pub refresh_seconds: Option<u32>,
}

/// The client portal. `base` is the page's own path (`/p/<token>`); forms post under it. With
/// `read_only` (staff previews), no forms are rendered.
pub fn portal(v: &PortalView, base: &str, read_only: bool, notice: Option<Notice>) -> String {
    let cur = v.payment.currency;
    let act = v.can_act && !read_only;
    let base = escape(base);
    let mut nav = String::from(
        "<nav><a href=\"#dashboard\">Dashboard</a><a href=\"#order\">Order Details</a>\
         <a href=\"#documents\">Documents</a>",
    );
    if v.contractors.is_some() {
        nav.push_str("<a href=\"#contractors\">Contractors</a>");
    }
    nav.push_str("<a href=\"#offers\">Special Offers</a><a href=\"#contact\">Contact Us</a></nav>");

    let mut m = String::new();
    if let Some(n) = &notice {
        let _ = write!(m, "<div class=\"notice\" role=\"status\">{}</div>", escape(n.text));
    }
    if read_only {
        let _ = write!(
            m,
            "<div class=\"notice\">Staff preview: exactly what {} ({}) sees. Read-only.</div>",
            escape(&v.viewer.name),
            role_label(v.viewer.role)
        );
    }
    // Dashboard
    m.push_str("<section id=\"dashboard\">");
    if let Some(url) = &v.cover_photo_url {
        let _ = write!(m, "<img class=\"cover\" src=\"{}\" alt=\"Property photo\">", escape(url));
    }
    let _ = write!(m, "<h2>{}</h2><p>{}</p>", escape(&v.address), escape(&date(&v.scheduled_at, &v.company.time_zone)));
    if !v.addon_offers.is_empty() && act {
        let _ = write!(m, "<h2>Add-on services</h2><form method=\"post\" action=\"{base}/addons\"><table>");
        for a in &v.addon_offers {
            let _ = write!(
                m,
                "<tr><td><label><input type=\"checkbox\" name=\"addon_ids\" value=\"{}\"> <strong>{}</strong></label>\
                 <br><span class=\"muted\">{}</span></td><td>{}</td></tr>",
                a.id,
                escape(&a.name),
                escape(&a.description),
                escape(&money(a.price_cents, cur))
            );
        }
        let _ = write!(
            m,
            "</table><p><button type=\"submit\">Add selected services</button></p></form>\
             <form method=\"post\" action=\"{base}/offers/dismiss\"><button class=\"secondary\" type=\"submit\">\
             No thanks</button></form>"
        );
    }
    // Payment panel
    let p = &v.payment;
    let class = match p.state {
        crate::domain::portal::PaymentState::Paid | crate::domain::portal::PaymentState::None => "ok",
        crate::domain::portal::PaymentState::Due => "due",
        _ => "muted",
    };
    let _ = write!(m, "<h2>Payment</h2><p class=\"{class}\">{}</p>", escape(&p.message));
    match p.action {
        Some(PaymentAction::PayNow) if act => {
            let _ = write!(
                m,
                "<form method=\"post\" action=\"{base}/pay\"><button type=\"submit\">Pay Now</button></form>"
            );
        }
        Some(PaymentAction::LearnMore) => {
            m.push_str(
                "<p><a href=\"#contact\" class=\"button\">Learn More</a></p>\
                 <p class=\"muted\">Online payment is not available; contact the inspection company to pay.</p>",
            );
        }
        _ => {}
    }
    // Agreement panel
    let a = &v.agreement;
    let _ = write!(m, "<h2>Inspection agreement (version {})</h2>", a.version);
    if a.state == crate::domain::portal::AgreementState::Signed {
        m.push_str("<p class=\"ok\">Signed by every client</p>");
    } else if a.signed_by_you {
        m.push_str("<p class=\"muted\">You signed; waiting for the other client(s).</p>");
    } else {
        m.push_str("<p class=\"due\">Not signed yet</p>");
    }
    if a.can_sign && act {
        let _ = write!(
            m,
            "<pre>{}</pre><form method=\"post\" action=\"{base}/agreement\">\
             <input type=\"hidden\" name=\"version\" value=\"{}\">\
             <label>Type your full name to sign: <input type=\"text\" name=\"typed_name\" required \
             maxlength=\"200\" autocomplete=\"name\"></label> <button type=\"submit\">Sign</button></form>",
            escape(&a.text),
            a.version
        );
    }
    m.push_str("<h2>Steps</h2><ul class=\"steps\">");
    for s in &v.steps {
        let _ = write!(m, "<li>{} {}</li>", if s.done { "&#10003;" } else { "&#9675;" }, escape(s.label));
    }
    m.push_str("</ul><h2>Reports</h2>");
    document_rows(&mut m, &v.reports, &base, cur);
    m.push_str("</section>");

    // Order details
    m.push_str("<section id=\"order\"><h2>Order details</h2>");
    let _ = write!(
        m,
        "<p><strong>Address:</strong> {}<br><strong>Date and time:</strong> {}</p><h2>Services</h2><table>",
        escape(&v.address),
        escape(&date(&v.scheduled_at, &v.company.time_zone))
    );
    for s in &v.services {
        let kind = if s.kind == crate::domain::inspection::ServiceKind::Addon { " (add-on)" } else { "" };
        let _ = write!(
            m,
            "<tr><td><strong>{}</strong>{kind}<br><span class=\"muted\">{}</span></td><td>{}</td></tr>",
            escape(&s.name),
            escape(&s.description),
            escape(&money(s.price_cents, cur))
        );
    }
    let _ = write!(
        m,
        "<tr><th>Total</th><th>{}</th></tr></table><h2>People</h2><table>",
        escape(&money(p.invoice_total_cents, cur))
    );
    for person in &v.people {
        let _ = write!(
            m,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&person.name),
            role_label(person.role),
            escape(person.email.as_ref().map(|e| e.as_str()).unwrap_or(""))
        );
    }
    m.push_str("</table></section>");

    // Documents
    m.push_str("<section id=\"documents\"><h2>Documents</h2>");
    document_rows(&mut m, &v.documents, &base, cur);
    m.push_str("</section>");

    if let Some(list) = &v.contractors {
        m.push_str("<section id=\"contractors\"><h2>Recommended contractors</h2><table>");
        for c in list {
            let _ = write!(
                m,
                "<tr><td><strong>{}</strong><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td></tr>",
                escape(&c.name),
                escape(c.trade.as_deref().unwrap_or("")),
                escape(c.phone.as_deref().unwrap_or("")),
                escape(c.email.as_ref().map(|e| e.as_str()).unwrap_or(""))
            );
        }
        m.push_str("</table></section>");
    }

    m.push_str("<section id=\"offers\"><h2>Special offers</h2>");
    if v.special_offers.is_empty() {
        m.push_str("<p class=\"muted\">No offers right now.</p>");
    }
    for o in &v.special_offers {
        let _ = write!(
            m,
            "<div class=\"offer\"><p><strong>{}</strong> from {}<br><span class=\"muted\">{}</span></p>",
            escape(&o.title),
            escape(&o.partner),
            escape(&o.description)
        );
        if o.quote_requested {
            let _ = write!(m, "<p class=\"ok\">Quote requested: {} will contact you.</p>", escape(&o.partner));
        } else if o.can_request_quote && act {
            let _ = write!(
                m,
                "<form method=\"post\" action=\"{base}/offers/{id}/quote\">\
                 <p><label><input type=\"checkbox\" name=\"consent\" value=\"on\" required> {consent}</label></p>\
                 <p><label>Message (optional):<br><textarea name=\"message\" maxlength=\"2000\" rows=\"2\"></textarea>\
                 </label></p><p><button type=\"submit\">Ask {partner} for a quote</button></p></form>",
                id = o.id,
                consent = escape(&o.consent_text),
                partner = escape(&o.partner),
            );
        }
        m.push_str("</div>");
    }
    m.push_str(
        "<p class=\"muted\">Nothing about you is shared with a partner unless you ask them for a quote.</p></section>",
    );

    m.push_str("<section id=\"contact\"><h2>Contact us</h2>");
    for i in &v.inspectors {
        let _ = write!(
            m,
            "<p><strong>{}</strong> (inspector)<br>{} {}</p>",
            escape(&i.name),
            escape(i.email.as_ref().map(|e| e.as_str()).unwrap_or("")),
            escape(i.phone.as_deref().unwrap_or(""))
        );
    }
    let c = &v.company.contact;
    let _ = write!(
        m,
        "<p><strong>{}</strong><br>{}<br>{}<br>{}<br>{}</p></section>",
        escape(&v.company.name),
        escape(c.phone.as_deref().unwrap_or("")),
        escape(c.email.as_ref().map(|e| e.as_str()).unwrap_or("")),
        escape(c.website.as_deref().unwrap_or("")),
        escape(c.address.as_deref().unwrap_or(""))
    );
    let sub = format!("{} \u{2014} {}", v.company.name, role_label(v.viewer.role));
    let refresh = notice.and_then(|n| n.refresh_seconds);
    layout_refreshing(&format!("{} \u{2014} {}", v.address, v.company.name), &v.address, &sub, &nav, &m, refresh)
}

/// The customer portal: the contact's buildings, their documents (opened through the gate), and
/// the open deficiencies' first page when visible. `base` is the page's path (`/c/<token>`).
pub fn customer(
    v: &crate::customer_portal::CustomerView,
    deficiencies: &[serde_json::Value],
    base: Option<&str>,
) -> String {
    let mut m = String::new();
    if base.is_none() {
        m.push_str("<div class=\"notice\">Staff preview: exactly what this contact sees. Read-only.</div>");
    }
    for b in &v.buildings {
        let _ = write!(m, "<section><h2>{}</h2><p class=\"muted\">{}</p>", escape(&b.name), escape(&b.address));
        if b.documents.is_empty() {
            m.push_str("<p class=\"muted\">No published documents yet.</p>");
        } else {
            m.push_str("<table>");
            for d in &b.documents {
                let _ = write!(m, "<tr><td>{}</td><td>", escape(&d.title));
                if let Some(base) = base {
                    let _ =
                        write!(m, "<a class=\"button\" href=\"{}/documents/{}\">View</a>", escape(base), d.document_id);
                }
                m.push_str("</td></tr>");
            }
            m.push_str("</table>");
        }
        m.push_str("</section>");
    }
    if v.deficiencies_visible {
        m.push_str("<section><h2>Open deficiencies</h2>");
        if deficiencies.is_empty() {
            m.push_str("<p class=\"muted\">None.</p>");
        } else {
            m.push_str("<table><tr><th>Building</th><th>Severity</th><th>Description</th><th>Location</th></tr>");
            for d in deficiencies {
                let building = v
                    .buildings
                    .iter()
                    .find(|b| Some(b.id.to_string().as_str()) == d["building_id"].as_str())
                    .map(|b| b.name.as_str())
                    .unwrap_or("");
                let _ = write!(
                    m,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(building),
                    escape(d["severity"].as_str().unwrap_or("")),
                    escape(d["description"].as_str().unwrap_or("")),
                    escape(d["location"].as_str().unwrap_or(""))
                );
            }
            m.push_str("</table>");
        }
        m.push_str("</section>");
    }
    let name = v.contact["name"].as_str().unwrap_or("");
    let company = v.company["name"].as_str().unwrap_or("");
    layout(&format!("{company} \u{2014} customer portal"), company, &format!("Customer portal of {name}"), "", &m)
}

/// The unknown-user page: basic details, the notice, and the "Get Full Access" form.
pub fn share(v: &ShareView, form_action: &str) -> String {
    let mut m = String::new();
    let _ = write!(m, "<div class=\"notice\"><strong>Unknown user.</strong> {}</div>", escape(v.notice));
    m.push_str("<section>");
    if let Some(url) = &v.cover_photo_url {
        let _ = write!(m, "<img class=\"cover\" src=\"{}\" alt=\"Property photo\">", escape(url));
    }
    let _ = write!(
        m,
        "<h2>{}</h2><p>{}</p><p>Inspection by {}</p></section>\
         <section><h2>Get Full Access</h2><p>Enter your email as it is on the inspection. If it matches, we \
         email you your personal link.</p><form method=\"post\" action=\"{}\"><input type=\"email\" \
         name=\"email\" required maxlength=\"254\" autocomplete=\"email\"> <button type=\"submit\">Get Full \
         Access</button></form></section>",
        escape(&v.address),
        escape(&date(&v.scheduled_at, &v.company.time_zone)),
        escape(&v.company.name),
        escape(form_action)
    );
    layout(&format!("{} \u{2014} {}", v.address, v.company.name), &v.address, &v.company.name, "", &m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_csp_allows_exactly_the_page_stylesheet() {
        let resp = html(StatusCode::OK, message("t", "x", None)).unwrap();
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe"));
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
        assert_eq!(resp.headers()["cache-control"], "no-store");
    }
}
