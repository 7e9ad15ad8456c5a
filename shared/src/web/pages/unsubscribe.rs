//! The one-click unsubscribe page (`/u/{secret}`, RFC 8058): opening it changes nothing (mail
//! scanners open links); the button, or a mail client's one-click POST, does.

use maud::html;

use super::{layout, Chrome};
use crate::domain::company::Brand;

/// The page: what the button stops (optional emails of one company, never what the person asks
/// for or pays for), or that it is done.
pub fn unsubscribe(brand: &Brand, form_action: &str, done: bool) -> String {
    let company = brand.name.as_str();
    let main = html! {
        section {
            @if done {
                h2 { "You are unsubscribed" }
                p {
                    "You will no longer receive reminders or copies from " (company) ". Emails you ask for (a link, a "
                    "report) and receipts for your payments still come."
                }
            } @else {
                h2 { "Stop reminders and copies from " (company) "?" }
                p {
                    "This stops the optional emails " (company) " sends to your address: reminders and copies of "
                    "inspection updates. Emails you ask for and receipts for your payments still come."
                }
                form method="post" action=(form_action) {
                    input type="hidden" name="List-Unsubscribe" value="One-Click";
                    p { button type="submit" { "Unsubscribe" } }
                }
            }
        }
    };
    let title = if done { "Unsubscribed" } else { "Unsubscribe" };
    layout(&Chrome::of(brand), title, title, company, None, main)
}
