//! "All my inspections" (`/me/{company}`): asking for a sign-in link, confirming it, and the list
//! of every inspection where the address holds a link.

use maud::{html, Markup};

use super::{date, own_origin_layout, role_label};
use crate::domain::portal::DocumentState;
use crate::foundation::money::format as money;

/// The sign-in form: an address, and a link by email if it is on any inspection.
pub fn me_ask(
    brand: &crate::domain::company::Brand,
    form_action: &str,
    sent: bool,
    error: Option<&super::FieldError>,
) -> String {
    let company = brand.name.as_str();
    let main = html! {
        @if sent {
            div.notice { "If that email is on any of our inspections, a sign-in link is on its way to it. It works once, within 15 minutes." }
        }
        section {
            h2 { "All your inspections in one place" }
            p { "Enter your email to see all your inspections with " (company) ". We email you a sign-in link." }
            form method="post" action=(form_action) {
                (super::email_field(error))
                p { button type="submit" { "Email me a sign-in link" } }
            }
        }
    };
    own_origin_layout(
        &super::Chrome::of(brand),
        &format!("Your inspections \u{2014} {company}"),
        "Your inspections",
        company,
        main,
    )
}

/// The sign-in link's page: one button, so a mail scanner that opens links uses up nothing.
pub fn me_sign_in(brand: &crate::domain::company::Brand, form_action: &str) -> String {
    let company = brand.name.as_str();
    let main = html! {
        section {
            h2 { "Sign in" }
            p { "Continue to see all your inspections with " (company) "." }
            form method="post" action=(form_action) { button type="submit" { "Continue" } }
        }
    };
    own_origin_layout(
        &super::Chrome::of(brand),
        &format!("Sign in \u{2014} {company}"),
        "Your inspections",
        company,
        main,
    )
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
                form method="post" action=(i.portal_url) { button type="submit" { "Open" } }
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
        &super::Chrome::of(&v.brand),
        &format!("Your inspections \u{2014} {}", v.company_name),
        "Your inspections",
        &v.company_name,
        main,
    )
}
