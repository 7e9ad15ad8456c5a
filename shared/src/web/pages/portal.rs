//! The client portal of one inspection (`/p/{token}`): dashboard, order details, documents,
//! contractors, special offers, contact — one function per panel.

use maud::{html, Markup};

use super::{date, layout, role_label, Chrome};
use crate::domain::inspection::ServiceKind;
use crate::domain::portal::{
    AgreementPanel, AgreementState, DocumentCard, DocumentState, PaymentAction, PaymentPanel, PaymentState, PortalView,
};
use crate::foundation::money::{format as money, Cents, Currency};

/// An email address people can tap to write to.
fn mailto(address: &str) -> Markup {
    html! { a href={ "mailto:" (address) } { (address) } }
}

/// A phone number people can tap to call (the link keeps only `+` and digits).
fn tel(number: &str) -> Markup {
    let dial: String = number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    html! { @if dial.is_empty() { (number) } @else { a href={ "tel:" (dial) } { (number) } } }
}

/// A locked document's reasons, in words; while a payment is being applied (the panel says
/// processing) the payment reason says so instead of asking for the money again.
fn lock_text(r: &crate::domain::gate::LockReason, currency: Currency, processing: bool) -> String {
    match r {
        crate::domain::gate::LockReason::PaymentRequired { .. } if processing => {
            "Payment processing: it opens once your payment is applied".to_owned()
        }
        _ => r.describe(currency),
    }
}

fn document_rows(docs: &[DocumentCard], base: &str, currency: Currency, processing: bool) -> Markup {
    html! {
        @if docs.is_empty() {
            p.muted { "Nothing here yet." }
        } @else {
            table {
                tr { th scope="col" { "Document" } th scope="col" { "State" } }
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
                                    ul { @for r in &d.lock_reasons { li { (lock_text(r, currency, processing)) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A note at the top of the portal, e.g. after returning from the payment provider, announced to
/// screen readers (`role="status"`); with `check_again`, a link that loads the page anew (pages
/// never reload themselves: WCAG 2.2.1); with `field_error`, a form sent back with its error beside
/// the field.
pub struct Notice<'a> {
    pub text: &'a str,
    pub check_again: Option<String>,
    pub field_error: Option<FieldError>,
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

fn addons_panel(v: &PortalView, base: &str, error: Option<&FieldError>) -> Markup {
    let cur = v.payment.currency;
    let error = error.filter(|e| e.field == "addon_ids");
    let chosen: Vec<&str> = error.map(|e| e.value.split(',').collect()).unwrap_or_default();
    html! {
        h2 { "Add-on services" }
        form method="post" action={ (base) "/addons" } {
            table {
                tr { th scope="col" { "Service" } th scope="col" { "Price" } }
                @for a in &v.addon_offers {
                    tr {
                        td {
                            label {
                                input type="checkbox" name="addon_ids" value=(a.id)
                                    checked[chosen.contains(&a.id.to_string().as_str())]
                                    aria-describedby=[error.map(|_| "addon_ids-error")];
                                " " strong { (a.name) }
                            }
                            br;
                            span.muted { (a.description) }
                        }
                        td.money { (money(a.price_cents, cur)) }
                    }
                }
            }
            @if let Some(e) = error { p #addon_ids-error.due role="alert" { (e.message) } }
            p { button type="submit" { "Add selected services" } }
        }
        form method="post" action={ (base) "/offers/dismiss" } { button.secondary type="submit" { "No thanks" } }
    }
}

fn payment_panel(p: &PaymentPanel, base: &str, act: bool, zone: Option<&str>) -> Markup {
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
        @if !p.receipts.is_empty() {
            ul {
                @for r in &p.receipts {
                    li {
                        (money(Cents::signed(r.amount_cents), p.currency)) " received "
                        (crate::foundation::local_time::date_time(r.paid_at, zone)) " \u{b7} "
                        a href={ (base) "/receipts/" (r.payment_id) } { "Receipt" }
                    }
                }
            }
        }
    }
}

/// A payment's printable receipt: the company, the property, the amount and how it was paid,
/// when (in the company's zone), and any money returned since.
pub fn receipt(
    company: &crate::domain::company::Company,
    inspection: &crate::domain::inspection::Inspection,
    payment_id: &str,
    entry: &crate::domain::inspection::LedgerEntry,
    back: &str,
) -> String {
    use crate::domain::portal::payment_method;
    let zone = company.settings.time_zone.as_deref();
    let cur = inspection.currency;
    let refunds: Vec<(&String, &crate::domain::inspection::LedgerEntry)> =
        inspection.ledger.iter().filter(|(_, e)| e.amount_cents < 0).collect();
    let c = &company.settings.contact;
    let main = html! {
        section.receipt {
            h2 { "Payment receipt" }
            table {
                tr { th scope="row" { "Received from" } td { (inspection.people.iter().filter(|p| p.role == crate::domain::inspection::Role::Client).map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")) } }
                tr { th scope="row" { "For" } td { "Inspection at " (inspection.address) } }
                tr { th scope="row" { "Amount" } td { strong { (money(Cents::signed(entry.amount_cents), cur)) } " (" (cur.as_str().to_uppercase()) ")" } }
                tr { th scope="row" { "Paid on" } td { (crate::foundation::local_time::date_time(entry.recorded_at, zone)) } }
                tr { th scope="row" { "Method" } td { (payment_method(entry)) } }
                tr { th scope="row" { "Reference" } td { (payment_id) } }
            }
            @if !refunds.is_empty() {
                h2 { "Money returned since" }
                table {
                    tr { th scope="col" { "Date" } th scope="col" { "What" } th scope="col" { "Amount" } }
                    @for (_, e) in &refunds {
                        tr {
                            td { (crate::foundation::local_time::date_time(e.recorded_at, zone)) }
                            td { (payment_method(e)) }
                            td.money { (money(Cents::signed(-e.amount_cents), cur)) }
                        }
                    }
                }
            }
            p { "Paid in all: " strong { (money(inspection.paid(), cur)) } " of " (money(inspection.invoice_total(), cur)) "." }
            p {
                strong { (company.name) }
                @if let Some(a) = &c.address { br; (a) }
                @if let Some(p) = &c.phone { br; (tel(p)) }
                @if let Some(e) = &c.email { br; (mailto(e.as_str())) }
            }
            p.noprint { "To keep it, print this page or save it as a PDF from your browser's Print menu. " a href=(back) { "Back to your portal" } }
        }
    };
    let title = format!("Receipt \u{2014} {}", inspection.address);
    layout(&Chrome::of(&company.brand()), &title, &company.name, "Payment receipt", None, main)
}

/// A form field's error, shown beside the field it is about, with what the person typed kept.
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub value: String,
}

fn agreement_panel(a: &AgreementPanel, base: &str, act: bool, error: Option<&FieldError>) -> Markup {
    let error = error.filter(|e| e.field == "typed_name");
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
            // Scrolls when long: reachable and scrollable by keyboard, named for screen readers.
            pre tabindex="0" role="region" aria-label="Agreement text" { (a.text) }
            form method="post" action={ (base) "/agreement" } {
                input type="hidden" name="version" value=(a.version);
                label {
                    "Type your full name to sign: "
                    @if let Some(e) = error {
                        input type="text" name="typed_name" required maxlength="200" autocomplete="name"
                            value=(e.value) aria-invalid="true" aria-describedby="typed_name-error";
                    } @else {
                        input type="text" name="typed_name" required maxlength="200" autocomplete="name";
                    }
                }
                @if let Some(e) = error { p #typed_name-error.due role="alert" { (e.message) } }
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
                tr { th scope="col" { "Service" } th scope="col" { "Price" } }
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
                tr { th scope="row" { "Total" } td.money { strong { (money(v.payment.invoice_total_cents, cur)) } } }
            }
            h2 { "People" }
            table.people {
                tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Email" } }
                @for person in &v.people {
                    tr {
                        td { (person.name) }
                        td { (role_label(person.role)) }
                        td.email { @if let Some(e) = &person.email { (mailto(e.as_str())) } }
                    }
                }
            }
        }
    }
}

/// The one next thing this person can do, if any: sign, pay, or open the report.
fn next_action(v: &PortalView, base: &str, act: bool) -> Option<(String, &'static str)> {
    if act && v.agreement.required && v.agreement.can_sign {
        return Some(("#agreement".into(), "Next: sign the agreement"));
    }
    if act && v.payment.action == Some(PaymentAction::PayNow) {
        return Some(("#payment".into(), "Next: pay for the inspection"));
    }
    v.reports
        .iter()
        .find(|d| d.state == DocumentState::Available)
        .map(|d| (format!("{base}/documents/{}", d.id), "Open your report"))
}

fn offers_panel(v: &PortalView, base: &str, act: bool, error: Option<&FieldError>) -> Markup {
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
                        @let field = format!("consent-{}", o.id);
                        @let error = error.filter(|e| e.field == field);
                        form method="post" action={ (base) "/offers/" (o.id) "/quote" } {
                            p {
                                label {
                                    input type="checkbox" name="consent" value="on" required
                                        aria-invalid=[error.map(|_| "true")]
                                        aria-describedby=[error.map(|_| format!("{field}-error"))];
                                    " " (o.consent_text)
                                }
                            }
                            @if let Some(e) = error { p.due id={ (field) "-error" } role="alert" { (e.message) } }
                            p {
                                label {
                                    "Message (optional):" br;
                                    textarea name="message" maxlength="2000" rows="2" { (error.map_or("", |e| e.value.as_str())) }
                                }
                            }
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
                    strong { (i.name) } " (inspector)"
                    @if let Some(e) = &i.email { br; (mailto(e.as_str())) }
                    @if let Some(p) = &i.phone { br; (tel(p)) }
                }
            }
            p {
                strong { (v.company.name) }
                @if let Some(p) = &c.phone { br; (tel(p)) }
                @if let Some(e) = &c.email { br; (mailto(e.as_str())) }
                @if let Some(w) = &c.website {
                    br;
                    @if w.starts_with("https://") || w.starts_with("http://") { a href=(w) { (w) } } @else { (w) }
                }
                @if let Some(a) = &c.address { br; (a) }
            }
        }
    }
}

/// The client portal. `base` is the page's own path (`/p/<token>`); forms post under it. With
/// `read_only` (staff previews), no forms are rendered.
pub fn portal(v: &PortalView, base: &str, read_only: bool, notice: Option<Notice>) -> String {
    let cur = v.payment.currency;
    let processing = v.payment.state == PaymentState::Processing;
    let act = v.can_act && !read_only && !v.cancelled;
    let field_error = notice.as_ref().and_then(|n| n.field_error.as_ref());
    let main = html! {
        @if let Some(n) = &notice {
            div.notice role="status" {
                (n.text)
                @if let Some(href) = &n.check_again { " " a.button href=(href) { "Check again" } }
            }
        }
        @if v.cancelled {
            div.notice role="status" {
                strong { "This inspection was cancelled." }
                " If you have questions, or paid already, please "
                a href="#contact" { "contact " (v.company.name) }
                "."
            }
        }
        @if read_only {
            div.notice { "Staff preview: exactly what " (v.viewer.name) " (" (role_label(v.viewer.role)) ") sees. Read-only." }
        }
        // In the order the anchors use: the property, where things stand, the one next thing to
        // do, then the details.
        section #dashboard {
            @if let Some(url) = &v.cover_photo_url { img.cover src=(url) alt="Property photo"; }
            h2 { (v.address) }
            p { (date(&v.scheduled_at, &v.company.time_zone)) }
            @if !v.steps.is_empty() {
                ol.progress aria-label="Progress" {
                    @for s in &v.steps {
                        li class=(if s.done { "done" } else { "todo" }) {
                            span aria-hidden="true" { (if s.done { "\u{2713} " } else { "\u{25cb} " }) }
                            (s.label)
                            span.visually-hidden { (if s.done { " (done)" } else { " (to do)" }) }
                        }
                    }
                }
            }
            @if let Some((href, label)) = next_action(v, base, act) { p { a.button.primary href=(href) { (label) } } }
            @if !v.addon_offers.is_empty() && act { (addons_panel(v, base, field_error)) }
            div #payment { (payment_panel(&v.payment, base, act, v.company.time_zone.as_deref())) }
            @if v.agreement.required {
                div #agreement { (agreement_panel(&v.agreement, base, act, field_error)) }
            }
            h2 { "Reports" }
            (document_rows(&v.reports, base, cur, processing))
        }
        (order_panel(v))
        section #documents { h2 { "Documents" } (document_rows(&v.documents, base, cur, processing)) }
        @if let Some(list) = &v.contractors {
            section #contractors {
                h2 { "Recommended contractors" }
                table {
                    tr { th scope="col" { "Contractor" } th scope="col" { "Phone" } th scope="col" { "Email" } }
                    @for c in list {
                        tr {
                            td { strong { (c.name) } br; span.muted { (c.trade.as_deref().unwrap_or("")) } }
                            td { @if let Some(p) = &c.phone { (tel(p)) } }
                            td.email { @if let Some(e) = &c.email { (mailto(e.as_str())) } }
                        }
                    }
                }
            }
        }
        (offers_panel(v, base, act, field_error))
        (contact_panel(v))
    };
    let sub = format!("{} \u{2014} {}", v.company.name, role_label(v.viewer.role));
    let title = format!("{} \u{2014} {}", v.address, v.company.name);
    layout(&Chrome::of(&v.company.brand), &title, &v.address, &sub, Some(portal_nav(v)), main)
}
