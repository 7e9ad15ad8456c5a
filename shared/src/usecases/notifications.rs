//! Composing an email to one person of an inspection from the company's template, with that
//! person's own fresh portal link (only hashes are stored, so every email carries a new link).
//! Links go to portal routes (a report link through the gate), never to S3.

use crate::adapters::store::outbox::EmailRecord;
use crate::domain::company::Company;
use crate::domain::document::Document;
use crate::domain::inspection::{Inspection, Person};
use crate::domain::mail::Outgoing;
use crate::domain::templates;
use crate::foundation::credentials::Token;
use crate::foundation::money::Cents;

/// The email `rec` asks for `person` (None when they have no email address): its template, the
/// document it announces and the payment it is a receipt of, when it names them.
pub fn compose(
    public_base_url: &str,
    company: &Company,
    inspection: &Inspection,
    person: &Person,
    token: &Token,
    rec: &EmailRecord,
) -> Option<Outgoing> {
    let to = person.email.clone()?;
    let portal = format!("{public_base_url}/p/{}", token.reveal());
    let report: Option<&Document> = rec.document_id.and_then(|d| inspection.document(d));
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
    // A report's email says whether it opens for this person now, and if not what it waits for.
    if let Some(d) = report {
        use crate::domain::gate::{decide, Access, Viewer};
        let status = match decide(d, inspection, company, Viewer::Person(person.role)) {
            Access::Locked(reasons) => {
                let needed: Vec<String> = reasons.iter().map(|r| r.describe(inspection.currency)).collect();
                format!("It opens once this is done: {}.", needed.join("; "))
            }
            _ => "It is open to you now.".to_owned(),
        };
        vars.insert("report_status", status);
    }
    if let Some((id, entry)) = rec.payment_id.as_ref().and_then(|id| Some((id, inspection.ledger.get(id)?))) {
        let zone = company.settings.time_zone.as_deref();
        vars.insert(
            "amount",
            crate::foundation::money::format(Cents::signed(entry.amount_cents.abs()), inspection.currency),
        );
        vars.insert("payment_date", crate::foundation::local_time::date_time(entry.recorded_at, zone));
        vars.insert("payment_method", crate::domain::portal::payment_method(entry));
        vars.insert("receipt_link", format!("{portal}/receipts/{id}"));
    }
    let rendered = templates::render_email(&company.settings, &rec.template_key, &vars);
    let mail = Outgoing::from_company(company, public_base_url, to, &rendered.subject, rendered.text);
    // The property's photo: an uploaded one through this person's link (served from the portal's
    // origin to link holders), or the address staff gave.
    let cover = match (&inspection.cover_photo, &inspection.cover_photo_url) {
        (Some(_), _) => Some(format!("{portal}/cover")),
        (None, Some(url)) => Some(url.clone()),
        _ => None,
    };
    Some(match cover {
        Some(url) => mail.with_cover(company, public_base_url, &url),
        None => mail,
    })
}
