//! The page an unknown user meets on a share link (`/share/{id}`): what the inspection is, and
//! "Get Full Access" by email.

use maud::html;

use super::{date, email_field, layout, FieldError};
use crate::domain::portal::ShareView;

/// The unknown-user page: basic details, the notice, and the "Get Full Access" form.
pub fn share(v: &ShareView, form_action: &str, error: Option<&FieldError>) -> String {
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
                (email_field(error))
                p { button type="submit" { "Get Full Access" } }
            }
        }
    };
    let title = format!("{} \u{2014} {}", v.address, v.company.name);
    layout(&super::Chrome::of(&v.company.brand), &title, &v.address, &v.company.name, None, main)
}
