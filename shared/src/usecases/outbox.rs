//! Sending what waits in the outbox. Each email is claimed with a conditional write (together with
//! the fresh portal link it will carry), so two senders never both send it; a failed send goes back
//! to the outbox with a backoff instead of being lost. A sender that dies between sending and
//! recording "sent" leaves a lease that expires, after which the email is sent again: at least once,
//! and exactly once unless a process dies in that window.

use time::{Duration, OffsetDateTime};

use crate::adapters::s3::Blobs;
use crate::adapters::ses::Mailer;
use crate::adapters::store::outbox::{
    EmailRecord, EmailState, UnsubscribeLink, CONTACT_INVITE, FULL_ACCESS, ME_SIGN_IN, REPORT_RESEND,
};
use crate::adapters::store::tokens::{issue_contact_link, Issue, IssuedToken};
use crate::adapters::store::{Store, StoreError};
use crate::domain::inspection::Inspection;
use crate::domain::inspection::Role;
use crate::domain::{calendar, reminders};
use crate::usecases::notifications;

/// How long a claim holds before another sender may take the email over.
const LEASE: Duration = Duration::minutes(5);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub sent: usize,
    /// Failed this time; tried again later.
    pub failed: usize,
    /// Failed for good: SES refused it or it ran out of attempts (state `failed`).
    pub failed_permanently: usize,
    pub skipped: usize,
}

/// Sending attempts before an email fails for good: with [`backoff`] the last one is about 2.3
/// hours after the first.
pub const MAX_ATTEMPTS: u32 = 8;

/// The wait before attempt `attempts + 1`: 1, 4, 9, 16 … minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::minutes(i64::from(attempts.min(10)).pow(2).max(1))
}

/// The record after a failed send: back to the outbox with a backoff, or failed for good when SES
/// refused it for good or the attempts are spent. Counts it in `report` and the metrics.
fn after_failure(
    next: &mut EmailRecord,
    e: &crate::adapters::ses::MailError,
    now: OffsetDateTime,
    report: &mut DrainReport,
) {
    next.last_error = Some(e.to_string());
    if e.is_permanent() || next.attempts >= MAX_ATTEMPTS {
        tracing::error!(error = %e, attempts = next.attempts, email = %next.dedupe, "email failed for good");
        next.state = EmailState::Failed;
        report.failed_permanently += 1;
        crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsFailedPermanently, 1);
    } else {
        tracing::warn!(error = %e, attempts = next.attempts, email = %next.dedupe, "send failed; will retry");
        next.state = EmailState::Pending;
        next.next_attempt_at = now + backoff(next.attempts);
        report.failed += 1;
        crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsFailed, 1);
    }
}

/// The record after SES accepted it at `sent_at`.
fn after_send(
    next: &mut EmailRecord,
    mail: &crate::domain::mail::Outgoing,
    message_id: String,
    sent_at: OffsetDateTime,
    report: &mut DrainReport,
) {
    next.state = EmailState::Sent;
    next.sent_at = Some(sent_at);
    next.to = Some(mail.to.to_string());
    next.subject = Some(mail.subject.clone());
    next.message_id = Some(message_id);
    next.last_error = None;
    report.sent += 1;
    crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsSent, 1);
}

struct Claimed {
    claimed: EmailRecord,
    inspection: Inspection,
    company: crate::domain::company::Company,
    issued: IssuedToken,
    /// An optional email's one-click unsubscribe secret (its link was stored with the claim).
    unsubscribe: Option<crate::foundation::credentials::MeSecret>,
}

enum Claim {
    Claimed(Box<Claimed>),
    /// The recipient is no longer on the inspection (or has no address, or is staff now).
    Gone,
    /// Staff revoked the recipient's links: no email may carry a new one.
    Revoked,
    /// The address bounced for good or complained before.
    Suppressed(String),
    /// A reminder whose cause is gone (signed, paid, cancelled, the inspection begun).
    NoLongerNeeded,
    Lost,
}

async fn claim(store: &Store, rec: &EmailRecord, now: OffsetDateTime) -> Result<Claim, StoreError> {
    for _ in 0..3 {
        let Some((company, mut inspection)) = store.company_and_inspection(rec.company_id, rec.inspection_id).await?
        else {
            return Ok(Claim::Gone);
        };
        let idx = match rec.person_id.and_then(|p| inspection.person_index(p)) {
            Some(idx) if inspection.needs_token(idx, &company) => idx,
            Some(idx) if inspection.people[idx].revoked => return Ok(Claim::Revoked),
            _ => return Ok(Claim::Gone),
        };
        let person = inspection.people[idx].id;
        if reminders::is_reminder(&rec.template_key)
            && !reminders::still_due(&rec.template_key, &company, &inspection, person, now)
        {
            return Ok(Claim::NoLongerNeeded);
        }
        let optional = crate::domain::mail::optional(&rec.template_key, inspection.people[idx].role);
        if let Some(address) = &inspection.people[idx].email {
            if let Some(s) = store.suppression(company.id, address.as_str()).await?.filter(|s| s.blocks(optional)) {
                return Ok(Claim::Suppressed(s.reason));
            }
        }
        let mode = if rec.template_key == FULL_ACCESS { Issue::FullAccess } else { Issue::Add };
        let (issued, mut writes) = IssuedToken::issue(&mut inspection, idx, now, mode)?;
        let unsubscribe = match (&inspection.people[idx].email, optional) {
            (Some(address), true) => {
                let (secret, write) = UnsubscribeLink::issue(company.id, address.as_str(), now)?;
                writes.push(write);
                Some(secret)
            }
            _ => None,
        };
        let mut claimed = rec.next();
        claimed.state = EmailState::Sending;
        claimed.attempts += 1;
        claimed.next_attempt_at = now + LEASE;
        writes.push(claimed.replace()?);
        match store.save_inspection_with(&mut inspection, &company, writes).await {
            Ok(()) => {
                return Ok(Claim::Claimed(Box::new(Claimed { claimed, inspection, company, issued, unsubscribe })))
            }
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

/// How often "Get Full Access" may give one person a new link.
pub const FULL_ACCESS_INTERVAL: Duration = Duration::minutes(10);

/// Matches a "Get Full Access" request to the client or agent with that address: the record to
/// send, or None when there is nobody to send to (recorded on the request, for staff).
async fn match_request(
    store: &Store,
    rec: EmailRecord,
    now: OffsetDateTime,
) -> Result<Option<EmailRecord>, StoreError> {
    let Some((company, inspection)) = store.company_and_inspection(rec.company_id, rec.inspection_id).await? else {
        settle_unsent(store, &rec, EmailState::Abandoned, "the inspection is gone").await?;
        return Ok(None);
    };
    let wanted = rec.request_email.as_ref();
    let found = inspection.people.iter().enumerate().find(|(_, p)| {
        matches!(p.role, Role::Client | Role::BuyerAgent | Role::ListingAgent) && p.email.as_ref() == wanted
    });
    let (idx, person) = match found {
        Some(found) => found,
        None => {
            settle_unsent(store, &rec, EmailState::Abandoned, "no client or agent on the inspection has this address")
                .await?;
            return Ok(None);
        }
    };
    if person.revoked {
        settle_unsent(store, &rec, EmailState::Skipped, "the recipient's links are revoked").await?;
        return Ok(None);
    }
    if !inspection.needs_token(idx, &company) {
        settle_unsent(store, &rec, EmailState::Abandoned, "this address gets no portal link").await?;
        return Ok(None);
    }
    let recent =
        person.tokens.iter().any(|t| t.full_access && t.issued_at.is_some_and(|at| now - at < FULL_ACCESS_INTERVAL));
    if recent {
        settle_unsent(store, &rec, EmailState::Skipped, "a full-access link was sent to this person minutes ago")
            .await?;
        return Ok(None);
    }
    Ok(Some(EmailRecord { person_id: Some(person.id), ..rec }))
}

/// Sends an email written when it was queued (to someone outside the inspection: no link in
/// it). Claimed by its revision like the others. Some(sent?), or None when another sender has it.
async fn send_prepared(
    store: &Store,
    mailer: &Mailer,
    public_base_url: &str,
    rec: &EmailRecord,
    now: OffsetDateTime,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let (Some(to), Some(content)) = (rec.send_to.clone(), rec.prepared.clone()) else {
        return Ok(());
    };
    if suppressed(store, rec, &to, report).await? {
        return Ok(());
    }
    let Some(claimed) = lease(store, rec, now, report).await? else {
        return Ok(());
    };
    // Only the company's name and sender: the email may be about no inspection at all (staff
    // told a webhook endpoint was disabled).
    let Some(company) = store.company(rec.company_id).await? else {
        report.skipped += 1;
        return Ok(());
    };
    let mut mail = crate::domain::mail::Outgoing::from_company(
        &company,
        public_base_url,
        to.clone(),
        &content.subject,
        content.text,
    );
    // A partner's quote request: replies go to the client who asked.
    if let Some(reply_to) = content.reply_to {
        mail.reply_to = Some(reply_to);
    }
    send_and_record(store, mailer, &claimed, &mail, now, report).await
}

/// Answers an "all my inspections" sign-in request: when an inspection of the company lists the
/// address, a fresh single-use link (its code is made now and stored hashed, so a retry sends a
/// new one); otherwise nothing, recorded.
async fn send_sign_in(
    store: &Store,
    mailer: &Mailer,
    public_base_url: &str,
    rec: &EmailRecord,
    now: OffsetDateTime,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let Some(to) = rec.request_email.clone() else {
        settle_unsent(store, rec, EmailState::Abandoned, "no address").await?;
        report.skipped += 1;
        return Ok(());
    };
    if suppressed(store, rec, &to, report).await? {
        return Ok(());
    }
    let (company, listed) = match store.company(rec.company_id).await? {
        Some(company) => {
            let listed = !store.my_inspections(rec.company_id, &to).await?.is_empty();
            (company, listed)
        }
        None => {
            settle_unsent(store, rec, EmailState::Abandoned, "the company is gone").await?;
            report.skipped += 1;
            return Ok(());
        }
    };
    if !listed {
        settle_unsent(store, rec, EmailState::Abandoned, "no inspection of the company lists this address").await?;
        report.skipped += 1;
        return Ok(());
    }
    let Some(claimed) = lease(store, rec, now, report).await? else {
        return Ok(());
    };
    let code = store.create_sign_in(rec.company_id, &to, now).await?;
    let link = format!("{public_base_url}/me/{}/signin/{}", rec.company_id, code.reveal());
    let subject = format!("Your sign-in link: all your inspections with {}", company.name);
    let text = format!(
        "Hello,\n\nSomeone (hopefully you) asked to see all their inspections with {name} in one place. \
         This link signs you in; it works once, within 15 minutes:\n\n{link}\n\n\
         If you did not ask for it, you can ignore this email.\n\n{name}",
        name = company.name
    );
    let mail = crate::domain::mail::Outgoing::from_company(&company, public_base_url, to, &subject, text);
    send_and_record(store, mailer, &claimed, &mail, now, report).await
}

/// Sends a building contact's invitation with a link made now: stored hashed in the same
/// transaction as the claim and the contact (a retry makes another; none is kept in the clear).
async fn send_contact_invite(
    store: &Store,
    mailer: &Mailer,
    public_base_url: &str,
    rec: &EmailRecord,
    now: OffsetDateTime,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let contact = match rec.contact_id {
        Some(k) => store.contact(rec.company_id, k).await?,
        None => None,
    };
    let (Some(company), Some(mut contact)) = (store.company(rec.company_id).await?, contact) else {
        settle_unsent(store, rec, EmailState::Abandoned, "the contact is gone").await?;
        report.skipped += 1;
        return Ok(());
    };
    if !company.settings.customer_portal_enabled {
        settle_unsent(store, rec, EmailState::Abandoned, "the customer portal is off").await?;
        report.skipped += 1;
        return Ok(());
    }
    if suppressed(store, rec, &contact.email, report).await? {
        return Ok(());
    }
    let mut claimed = rec.next();
    claimed.state = EmailState::Sending;
    claimed.attempts += 1;
    claimed.next_attempt_at = now + LEASE;
    let (token, mut writes) = issue_contact_link(company.id, &mut contact, Issue::Add, now)?;
    writes.push(claimed.replace()?);
    match store.save_contact(company.id, &mut contact, writes).await {
        // Another sender has it, or the contact changed: the next run looks again.
        Err(e) if e.is_condition_failure() => {
            report.skipped += 1;
            return Ok(());
        }
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let url = format!("{public_base_url}/c/{}", token.reveal());
    let vars = std::collections::BTreeMap::from([
        ("recipient_name", contact.name.clone()),
        ("company_name", company.name.clone()),
        ("inspection_details_link", url),
    ]);
    let rendered = crate::domain::templates::render_email(&company.settings, CONTACT_INVITE, &vars);
    let mail = crate::domain::mail::Outgoing::from_company(
        &company,
        public_base_url,
        contact.email,
        &rendered.subject,
        rendered.text,
    );
    send_and_record(store, mailer, &claimed, &mail, now, report).await
}

/// Largest PDF sent as an attachment (SES messages are at most 10 MB after base64).
pub const MAX_ATTACHMENT_BYTES: i64 = 7 * 1024 * 1024;

/// A document's PDF (the verified version) to attach, or why it cannot be.
pub async fn attachment(
    blobs: &Blobs,
    inspection: &Inspection,
    doc: &crate::domain::document::Document,
) -> Result<(String, Vec<u8>), String> {
    let key = crate::domain::document::object_key(inspection.company_id, inspection.id, doc.id);
    match blobs.head(&key).await {
        Ok(Some(o)) if o.size <= MAX_ATTACHMENT_BYTES => {}
        Ok(_) => return Err("the PDF is missing or too large to attach (7 MiB)".into()),
        Err(e) => return Err(format!("could not read the PDF: {e}")),
    }
    let bytes =
        blobs.read(&key, doc.verified_version.as_deref()).await.map_err(|e| format!("could not read the PDF: {e}"))?;
    Ok((doc.file_name(), bytes))
}

/// The calendar invitation an email of `template_key` carries, if any.
fn calendar_method(template_key: &str) -> Option<calendar::Method> {
    match template_key {
        "inspection_scheduled" | "inspection_rescheduled" | "inspection_reinstated" => Some(calendar::Method::Request),
        "inspection_cancelled" => Some(calendar::Method::Cancel),
        _ => None,
    }
}

/// The host of the portal's public URL (`https://portal.example.com/…` → `portal.example.com`).
fn host(public_base_url: &str) -> &str {
    let rest = public_base_url.split_once("://").map_or(public_base_url, |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

/// Whether the company may no longer email `to` (recorded on the email, counted).
async fn suppressed(
    store: &Store,
    rec: &EmailRecord,
    to: &crate::foundation::email::Email,
    report: &mut DrainReport,
) -> Result<bool, StoreError> {
    // Only bounces and complaints: an unsubscribe stops optional emails, and these are not.
    let Some(s) = store.suppression(rec.company_id, to.as_str()).await?.filter(|s| s.blocks(false)) else {
        return Ok(false);
    };
    settle_unsent(store, rec, EmailState::Suppressed, &s.reason).await?;
    report.skipped += 1;
    crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsSuppressed, 1);
    Ok(true)
}

/// Claims an email written without an inspection's link (its revision, a lease); None when
/// another sender has it.
async fn lease(
    store: &Store,
    rec: &EmailRecord,
    now: OffsetDateTime,
    report: &mut DrainReport,
) -> Result<Option<EmailRecord>, StoreError> {
    let mut claimed = rec.next();
    claimed.state = EmailState::Sending;
    claimed.attempts += 1;
    claimed.next_attempt_at = now + LEASE;
    match store.write(claimed.replace()?).await {
        Err(e) if e.is_condition_failure() => {
            report.skipped += 1;
            Ok(None)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(Some(claimed)),
    }
}

/// Sends a claimed email and records how it went.
async fn send_and_record(
    store: &Store,
    mailer: &Mailer,
    claimed: &EmailRecord,
    mail: &crate::domain::mail::Outgoing,
    now: OffsetDateTime,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let mut next = claimed.next();
    match mailer.send_tagged(mail, &claimed.tags()).await {
        Ok(id) => after_send(&mut next, mail, id, store.clock().now(), report),
        Err(e) => after_failure(&mut next, &e, now, report),
    }
    store.write(next.replace()?).await
}

/// Records why an email will never be sent (a race with another sender is harmless: it lost).
async fn settle_unsent(store: &Store, rec: &EmailRecord, state: EmailState, why: &str) -> Result<(), StoreError> {
    let mut done = rec.next();
    done.state = state;
    done.last_error = Some(why.into());
    match store.write(done.replace()?).await {
        Err(e) if !e.is_condition_failure() => Err(e),
        _ => Ok(()),
    }
}

/// Sends up to `limit` due emails, one after another (SES's sending rate is the limit, not ours),
/// stopping at `deadline`: what is left waits for the next run.
pub async fn drain(
    store: &Store,
    mailer: &Mailer,
    blobs: &Blobs,
    public_base_url: &str,
    now: OffsetDateTime,
    limit: i32,
    deadline: Option<std::time::Instant>,
) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    for rec in store.due_emails(now, limit).await? {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        if rec.state == EmailState::Sending && rec.next_attempt_at > now {
            report.skipped += 1;
            continue;
        }
        if rec.template_key == ME_SIGN_IN {
            Box::pin(send_sign_in(store, mailer, public_base_url, &rec, now, &mut report)).await?;
            continue;
        }
        if rec.template_key == CONTACT_INVITE {
            Box::pin(send_contact_invite(store, mailer, public_base_url, &rec, now, &mut report)).await?;
            continue;
        }
        if rec.send_to.is_some() && rec.prepared.is_some() {
            Box::pin(send_prepared(store, mailer, public_base_url, &rec, now, &mut report)).await?;
            continue;
        }
        let rec = match rec.person_id {
            Some(_) => rec,
            None => match Box::pin(match_request(store, rec, now)).await? {
                Some(rec) => rec,
                None => {
                    report.skipped += 1;
                    continue;
                }
            },
        };
        match Box::pin(claim(store, &rec, now)).await? {
            Claim::Lost => report.skipped += 1,
            Claim::Gone => {
                settle_unsent(
                    store,
                    &rec,
                    EmailState::Abandoned,
                    "the recipient is no longer on the inspection or has no link",
                )
                .await?;
                report.skipped += 1;
            }
            Claim::Revoked => {
                settle_unsent(store, &rec, EmailState::Skipped, "the recipient's links are revoked").await?;
                report.skipped += 1;
            }
            Claim::NoLongerNeeded => {
                settle_unsent(store, &rec, EmailState::Skipped, "a reminder no longer needed: its cause is gone")
                    .await?;
                report.skipped += 1;
            }
            Claim::Suppressed(reason) => {
                settle_unsent(store, &rec, EmailState::Suppressed, &reason).await?;
                report.skipped += 1;
                crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsSuppressed, 1);
            }
            Claim::Claimed(c) => {
                let Claimed { claimed, inspection, company, issued, unsubscribe } = *c;
                let person =
                    claimed.person_id.and_then(|p| inspection.person(p)).expect("claimed for a present person");
                let doc = claimed.document_id.and_then(|d| inspection.document(d));
                let mail =
                    notifications::compose(public_base_url, &company, &inspection, person, &issued.token, &claimed)
                        .map(|m| match &unsubscribe {
                            Some(s) => m.unsubscribable(format!("{public_base_url}/u/{}", s.reveal())),
                            None => m,
                        });
                let mut next = claimed.next();
                // A resend carries the PDF itself, read now; a confirmation, a change and a
                // cancellation carry a calendar invitation.
                let attached = match (claimed.template_key == REPORT_RESEND, doc) {
                    (false, _) => Ok(calendar_method(&claimed.template_key).map(|method| {
                        let link = format!("{public_base_url}/p/{}", issued.token.reveal());
                        let organizer = company.settings.reply_to.as_ref().unwrap_or(mailer.sender());
                        let how = calendar::Sending {
                            method,
                            host: host(public_base_url),
                            organizer: organizer.as_str(),
                            link: &link,
                            now,
                        };
                        let ics = calendar::invitation(&company, &inspection, person, &how);
                        let kind = if method == calendar::Method::Cancel { "CANCEL" } else { "REQUEST" };
                        (
                            "invite.ics".to_owned(),
                            format!("text/calendar; charset=UTF-8; method={kind}"),
                            ics.into_bytes(),
                        )
                    })),
                    (true, Some(d)) => attachment(blobs, &inspection, d)
                        .await
                        .map(|(name, pdf)| Some((name, "application/pdf".into(), pdf))),
                    (true, None) => Err("the document is gone".to_owned()),
                };
                match (mail, attached) {
                    (None, _) => next.state = EmailState::Abandoned,
                    (Some(_), Err(why)) => {
                        next.state = EmailState::Failed;
                        next.last_error = Some(why);
                        report.failed_permanently += 1;
                    }
                    (Some(mail), Ok(attached)) => {
                        let sent = match &attached {
                            Some((name, content_type, bytes)) => {
                                Box::pin(mailer.send_with_attachment(&mail, name, content_type, bytes, &claimed.tags()))
                                    .await
                            }
                            None => Box::pin(mailer.send_tagged(&mail, &claimed.tags())).await,
                        };
                        match sent {
                            Ok(id) => after_send(&mut next, &mail, id, store.clock().now(), &mut report),
                            Err(e) => after_failure(&mut next, &e, now, &mut report),
                        }
                    }
                }
                store.write(next.replace()?).await?;
            }
        }
    }
    Ok(report)
}
