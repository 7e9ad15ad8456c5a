//! Emailing staff alerts (run by the every-minute job, before the outbox sends): the alerts
//! waiting are read from their sparse index, and for each company one email per address that
//! hears of them (the alert itself, or a digest when one run finds several) is queued in the
//! same transaction that deletes them, so each alert is emailed once.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::adapters::store::alerts::Alert;
use crate::adapters::store::outbox::{EmailRecord, Prepared};
use crate::adapters::store::{keys, Store, StoreError, Write};
use crate::foundation::ids::{CompanyId, InspectionId, PersonId};

/// Alerts of one company taken per run (one transaction: they, and an email per address).
const PER_COMPANY: usize = 80;

/// The template key of staff alert emails (in the email history of the nil inspection).
pub const STAFF_ALERT: &str = "staff_alert";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertReport {
    pub alerts: usize,
    pub emails: usize,
    pub errors: usize,
}

fn label(event: &str) -> &'static str {
    match event {
        "addon_requested" => "Add-on requested",
        "agreement_signed" => "Agreement signed",
        "payment_received" => "Payment received",
        "payment_unmatched" => "Payment to review",
        "quote_requested" => "Quote requested",
        "email_bounced" => "Email not delivered",
        "webhook_disabled" => "Webhook endpoint disabled",
        "document_parked" => "Scheduled document not published",
        _ => "Update",
    }
}

/// One line of an alert: "Agreement signed: 12 Elm Street".
fn line(a: &Alert) -> String {
    format!("{}: {}", label(&a.event), a.text)
}

/// The email of `alerts` (oldest first) to one address: the alert itself, or a digest.
fn content(company: &crate::domain::company::Company, alerts: &[&Alert]) -> Prepared {
    let zone = company.settings.time_zone.as_deref();
    let subject = match alerts {
        [one] => line(one),
        many => format!("{} updates from your client portal", many.len()),
    };
    let subject: String = subject.chars().take(78).collect();
    let mut text = String::from("Hello,\n\n");
    for a in alerts {
        text.push_str(&format!("- {} ({})\n", line(a), crate::foundation::local_time::date_time(a.at, zone)));
    }
    text.push_str(&format!(
        "\nYou get these because your address is in {}'s staff alerts (settings: staff_alerts).\n\n{}",
        company.name, company.name
    ));
    Prepared { subject, text, reply_to: None }
}

/// Queues the emails of up to `max` waiting alerts.
pub async fn queue_due(store: &Store, now: OffsetDateTime, max: i32) -> Result<AlertReport, StoreError> {
    let mut report = AlertReport::default();
    let mut by_company: BTreeMap<CompanyId, Vec<Alert>> = BTreeMap::new();
    for a in store.due_alerts(now, max).await? {
        by_company.entry(a.company_id).or_default().push(a);
    }
    for (c, mut alerts) in by_company {
        alerts.truncate(PER_COMPANY);
        report.alerts += alerts.len();
        let company = store.company(c).await?;
        let mut writes: Vec<Write> = Vec::new();
        for staff in company.iter().flat_map(|c| c.settings.staff_alerts.iter()) {
            let mine: Vec<&Alert> = alerts.iter().filter(|a| staff.events.contains(&a.event)).collect();
            let (Some(company), Some(first)) = (&company, mine.first()) else { continue };
            let dedupe = format!("{STAFF_ALERT}#{}#{}", keys::email_part(&staff.email), first.id);
            let nil = (InspectionId::from_ulid(ulid::Ulid::nil()), PersonId::from_ulid(ulid::Ulid::nil()));
            let email = EmailRecord::prepared(
                c,
                nil.0,
                nil.1,
                STAFF_ALERT,
                dedupe,
                staff.email.clone(),
                content(company, &mine),
                now,
            );
            writes.push(email.create()?);
            report.emails += 1;
        }
        writes.extend(alerts.iter().map(Alert::delete));
        match store.transact(writes).await {
            Ok(()) => {}
            // Another run emailed them first.
            Err(e) if e.is_condition_failure() => {}
            Err(e) => {
                tracing::error!(error = %e, "staff alerts could not be queued");
                report.errors += 1;
            }
        }
    }
    Ok(report)
}
