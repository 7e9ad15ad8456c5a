//! Composing an email to one person of an inspection from the company's template, with that
//! person's own fresh portal link (only hashes are stored, so every email carries a new link).
//! Links go to portal routes (a report link through the gate), never to S3.

use crate::domain::company::Company;
use crate::domain::document::Document;
use crate::domain::inspection::{Inspection, Person};
use crate::domain::mail::Outgoing;
use crate::domain::templates;
use crate::foundation::credentials::Token;

/// The email `template_key` for `person` (None when they have no email address).
pub fn compose(
    public_base_url: &str,
    company: &Company,
    inspection: &Inspection,
    person: &Person,
    token: &Token,
    template_key: &str,
    report: Option<&Document>,
) -> Option<Outgoing> {
    let to = person.email.clone()?;
    let portal = format!("{public_base_url}/p/{}", token.reveal());
    let report_link = report.map(|d| (d.display_name(), format!("{portal}/documents/{}", d.id)));
    let mut vars = templates::inspection_vars(
        company,
        inspection,
        person,
        &portal,
        report_link.as_ref().map(|(name, link)| (name.as_str(), link.as_str())),
    );
    // The sign-in page of "all my inspections", never a live session.
    vars.insert("my_inspections_link", format!("{public_base_url}/me/{}", company.id));
    let rendered = templates::render_email(&company.settings, template_key, &vars);
    Some(Outgoing::from_company(company, public_base_url, to, &rendered.subject, rendered.text))
}
