//! Reminders: when each is due for an inspection, to whom, and whether its cause still holds.
//!
//! A reminder has a cause (an unsigned agreement, a balance due, the inspection tomorrow) and an
//! instant (from the inspection's date or its first published report, and the company's
//! [`Reminders`](super::settings::Reminders) settings). The every-minute job queues those whose
//! instant has come (once: the inspection keeps the mark it queued up to, and each email's dedupe
//! key names the cause, the instant and the person); the outbox checks the cause again when it
//! sends, so a reminder never goes out after the client signed or paid, the inspection was
//! cancelled or the person's links were revoked.

use time::{Duration, OffsetDateTime};

use super::company::Company;
use super::inspection::{Inspection, Role};
use super::settings::MAX_PAYMENT_REMINDERS_AFTER_REPORT;
use crate::foundation::ids::PersonId;

/// The agreement is not signed yet (to each client who has not signed).
pub const AGREEMENT: &str = "reminder_agreement";
/// A balance is due before the inspection (to the clients).
pub const PAYMENT: &str = "reminder_payment";
/// A balance is still due after a report was published (to the clients).
pub const PAYMENT_AFTER_REPORT: &str = "reminder_payment_after_report";
/// The inspection is tomorrow (to everyone with a link).
pub const INSPECTION: &str = "reminder_inspection";

pub fn is_reminder(template_key: &str) -> bool {
    matches!(template_key, AGREEMENT | PAYMENT | PAYMENT_AFTER_REPORT | INSPECTION)
}

/// One reminder: its cause (the template key), its instant, its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub key: &'static str,
    pub at: OffsetDateTime,
    pub people: Vec<PersonId>,
}

impl Reminder {
    /// The outbox's dedupe key of this reminder to `person`: once per person, cause and instant.
    pub fn dedupe(&self, person: PersonId) -> String {
        format!("{}#{}#{person}", self.key, self.at.unix_timestamp())
    }
}

/// Who a reminder of `key` goes to now: the people its cause still concerns (never a revoked or
/// quiet person, nobody on a cancelled or quiet inspection).
pub fn recipients(key: &str, company: &Company, inspection: &Inspection) -> Vec<PersonId> {
    if inspection.is_cancelled() || inspection.quiet {
        return Vec::new();
    }
    let due = inspection.requirements.require_payment && inspection.balance().get() > 0;
    (0..inspection.people.len())
        .filter(|&n| inspection.needs_token(n, company) && !inspection.people[n].quiet)
        .map(|n| &inspection.people[n])
        .filter(|p| match key {
            AGREEMENT => {
                p.role == Role::Client && inspection.requirements.require_agreement && !inspection.signed_by(p.id)
            }
            PAYMENT | PAYMENT_AFTER_REPORT => p.role == Role::Client && due,
            INSPECTION => p.role != Role::Inspector,
            _ => false,
        })
        .map(|p| p.id)
        .collect()
}

/// Every reminder instant of the inspection under the company's settings, whatever its cause's
/// state (see [`recipients`] for that), earliest first.
fn instants(company: &Company, inspection: &Inspection) -> Vec<(&'static str, OffsetDateTime)> {
    let r = company.settings.reminders;
    let at = inspection.scheduled_at;
    let mut out = Vec::new();
    if r.agreement_unsigned {
        out.push((AGREEMENT, at - Duration::hours(i64::from(r.agreement_hours_before))));
    }
    if r.payment_due {
        out.push((PAYMENT, at - Duration::hours(i64::from(r.payment_hours_before))));
    }
    if r.inspection_day_before {
        out.push((INSPECTION, at - Duration::days(1)));
    }
    let first_report =
        inspection.documents.iter().filter(|d| d.kind.is_report() && d.published).filter_map(|d| d.published_at).min();
    if let (true, Some(published)) = (r.payment_after_report, first_report) {
        let first = published + Duration::days(i64::from(r.payment_days_after_report));
        for n in 0..MAX_PAYMENT_REMINDERS_AFTER_REPORT {
            out.push((PAYMENT_AFTER_REPORT, first + Duration::weeks(i64::from(n))));
        }
    }
    out.sort_by_key(|(_, at)| *at);
    out
}

/// Reminders before the inspection are about it: none once it has begun.
fn before_inspection(key: &str) -> bool {
    key != PAYMENT_AFTER_REPORT
}

/// Where the job's mark stands: reminders due after it are still to queue.
fn mark(inspection: &Inspection) -> OffsetDateTime {
    inspection.reminders_through.unwrap_or(inspection.created_at)
}

/// When the job should next look at the inspection: the earliest reminder after its mark whose
/// cause holds now (a cause that comes back later, say a new balance, is seen at that save).
pub fn next_due(company: &Company, inspection: &Inspection) -> Option<OffsetDateTime> {
    let mark = mark(inspection);
    instants(company, inspection)
        .into_iter()
        .filter(|(key, at)| *at > mark && !(before_inspection(key) && *at >= inspection.scheduled_at))
        .find(|(key, _)| !recipients(key, company, inspection).is_empty())
        .map(|(_, at)| at)
}

/// The reminders to queue at `now`: those due since the job's mark whose cause holds, one per
/// cause (the latest, when a late run finds several of a series), none about an inspection that
/// has begun.
pub fn due(company: &Company, inspection: &Inspection, now: OffsetDateTime) -> Vec<Reminder> {
    let mark = mark(inspection);
    let mut out: Vec<Reminder> = Vec::new();
    for (key, at) in instants(company, inspection) {
        if at <= mark || at > now || (before_inspection(key) && now >= inspection.scheduled_at) {
            continue;
        }
        let people = recipients(key, company, inspection);
        if people.is_empty() {
            continue;
        }
        out.retain(|r| r.key != key);
        out.push(Reminder { key, at, people });
    }
    out
}

/// Whether a queued reminder of `key` should still go to `person` (the outbox asks just before
/// sending).
pub fn still_due(key: &str, company: &Company, inspection: &Inspection, person: PersonId, now: OffsetDateTime) -> bool {
    (!before_inspection(key) || now < inspection.scheduled_at) && recipients(key, company, inspection).contains(&person)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::document::{Document, DocumentKind, NewDocument};
    use crate::domain::inspection::tests::{company, new_inspection};

    /// An inspection (a client, a buyer's agent, the company's inspector) created at `created`
    /// for `scheduled`, with a balance due and the agreement unsigned.
    fn inspection_at(created: OffsetDateTime, scheduled: OffsetDateTime) -> (Company, Inspection) {
        let c = company("{}");
        let mut i = Inspection::create(new_inspection(""), &c, created).unwrap();
        i.scheduled_at = scheduled;
        (c, i)
    }

    fn published_report(at: OffsetDateTime) -> Document {
        let input = NewDocument {
            kind: DocumentKind::InspectionReport,
            title: "Report".into(),
            template_name: None,
            publish_at: None,
        };
        let mut d = Document::create(input, at).unwrap();
        d.published = true;
        d.published_at = Some(at);
        d
    }

    fn at(i: &Inspection, hours_before: i64) -> OffsetDateTime {
        i.scheduled_at - Duration::hours(hours_before)
    }

    #[test]
    fn each_reminder_falls_due_once_at_its_time_and_only_while_its_cause_holds() {
        let now = OffsetDateTime::now_utc();
        let (c, mut i) = inspection_at(now, now + Duration::days(5));
        assert_eq!(next_due(&c, &i), Some(at(&i, 48)), "the agreement reminder first");
        assert!(due(&c, &i, at(&i, 49)).is_empty());
        let d = due(&c, &i, at(&i, 47));
        assert_eq!(d.iter().map(|r| r.key).collect::<Vec<_>>(), vec![AGREEMENT]);
        i.reminders_through = Some(at(&i, 47));
        assert!(due(&c, &i, at(&i, 47)).is_empty(), "queued once");
        assert_eq!(next_due(&c, &i), Some(at(&i, 24)));
        // At 24 h before: the payment and the day-before reminders.
        let keys: Vec<_> = due(&c, &i, at(&i, 23)).into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![PAYMENT, INSPECTION]);
        // Nothing once the inspection has begun, nothing when cancelled.
        assert!(due(&c, &i, i.scheduled_at + Duration::minutes(1)).is_empty());
        i.cancel(None, now).unwrap();
        assert!(due(&c, &i, at(&i, 23)).is_empty() && next_due(&c, &i).is_none());
    }

    #[test]
    fn a_late_run_sends_the_latest_of_a_series_only() {
        let now = OffsetDateTime::now_utc();
        let (c, mut i) = inspection_at(now, now + Duration::days(1));
        i.reminders_through = Some(i.scheduled_at);
        i.documents.push(published_report(i.scheduled_at));
        let published = i.scheduled_at;
        assert_eq!(next_due(&c, &i), Some(published + Duration::days(3)));
        let d = due(&c, &i, published + Duration::days(11));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].key, d[0].at), (PAYMENT_AFTER_REPORT, published + Duration::days(10)));
        i.reminders_through = Some(published + Duration::days(17));
        assert!(next_due(&c, &i).is_none(), "three at most");
    }
}
