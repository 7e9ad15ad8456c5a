//! Sending what waits in the outbox. Each email is claimed with a conditional write (together with
//! the fresh portal link it will carry), so two senders never both send it; a failed send goes back
//! to the outbox with a backoff instead of being lost. A sender that dies between sending and
//! recording "sent" leaves a lease that expires, after which the email is sent again: at least once,
//! and exactly once unless a process dies in that window.

use time::{Duration, OffsetDateTime};

use crate::domain::inspection::Inspection;
use crate::mailer::Mailer;
use crate::notify;
use crate::store::outbox::{EmailRecord, EmailState};
use crate::store::tokens::IssuedToken;
use crate::store::{Store, StoreError};

/// How long a claim holds before another sender may take the email over.
const LEASE: Duration = Duration::minutes(5);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
}

fn backoff(attempts: u32) -> Duration {
    Duration::minutes(i64::from(attempts.min(10)).pow(2).max(1))
}

struct Claimed {
    claimed: EmailRecord,
    inspection: Inspection,
    company: crate::domain::company::Company,
    issued: IssuedToken,
}

enum Claim {
    Claimed(Box<Claimed>),
    Gone,
    Lost,
}

async fn claim(store: &Store, rec: &EmailRecord, now: OffsetDateTime) -> Result<Claim, StoreError> {
    for _ in 0..3 {
        let Some((company, mut inspection)) = store.company_and_inspection(rec.company_id, rec.inspection_id).await?
        else {
            return Ok(Claim::Gone);
        };
        let idx = match inspection.person_index(rec.person_id) {
            Some(idx) if inspection.needs_token(idx, &company) => idx,
            _ => return Ok(Claim::Gone),
        };
        let (issued, mut writes) = IssuedToken::issue(&mut inspection, idx, now, false)?;
        let mut claimed = rec.next();
        claimed.state = EmailState::Sending;
        claimed.attempts += 1;
        claimed.next_attempt_at = now + LEASE;
        writes.push(claimed.replace()?);
        match store.save_inspection_with(&mut inspection, writes).await {
            Ok(()) => return Ok(Claim::Claimed(Box::new(Claimed { claimed, inspection, company, issued }))),
            Err(e) if e.is_condition_failure() => {
                // Someone else claimed it (its revision moved), or the inspection changed: retry.
                match store.email(rec.company_id, rec.inspection_id, &rec.dedupe).await? {
                    Some(now_stored) if now_stored.revision == rec.revision => continue,
                    _ => return Ok(Claim::Lost),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Claim::Lost)
}

/// Sends up to `limit` due emails.
pub async fn drain(
    store: &Store,
    mailer: &Mailer,
    public_base_url: &str,
    now: OffsetDateTime,
    limit: i32,
) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    for rec in store.due_emails(now, limit).await? {
        if rec.state == EmailState::Sending && rec.next_attempt_at > now {
            report.skipped += 1;
            continue;
        }
        match claim(store, &rec, now).await? {
            Claim::Lost => report.skipped += 1,
            Claim::Gone => {
                let mut done = rec.next();
                done.state = EmailState::Abandoned;
                done.last_error = Some("the recipient is no longer on the inspection or has no link".into());
                let _ = store.write(done.replace()?).await;
                report.skipped += 1;
            }
            Claim::Claimed(c) => {
                let Claimed { claimed, inspection, company, issued } = *c;
                let person = inspection.person(claimed.person_id).expect("claimed for a present person");
                let doc = claimed.document_id.and_then(|d| inspection.document(d));
                let mail = notify::compose(
                    public_base_url,
                    &company,
                    &inspection,
                    person,
                    &issued.token,
                    &claimed.template_key,
                    doc,
                );
                let mut next = claimed.next();
                match mail {
                    None => next.state = EmailState::Abandoned,
                    Some(mail) => match mailer.send(&mail).await {
                        Ok(_) => {
                            next.state = EmailState::Sent;
                            next.sent_at = Some(crate::clock::now());
                            next.to = Some(mail.to.to_string());
                            next.subject = Some(mail.subject.clone());
                            next.last_error = None;
                            report.sent += 1;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, email = %claimed.dedupe, "send failed; will retry");
                            next.state = EmailState::Pending;
                            next.next_attempt_at = now + backoff(claimed.attempts);
                            next.last_error = Some(e.to_string());
                            report.failed += 1;
                        }
                    },
                }
                store.write(next.replace()?).await?;
            }
        }
    }
    Ok(report)
}
