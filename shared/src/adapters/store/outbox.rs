//! Emails as records: one per recipient per reason (the dedupe key), created in the same
//! transaction as what caused them, and sent from the outbox (a sparse GSI1 partition holding only
//! unsent ones) by whoever claims them first.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{self, Key};
use super::{Page, Record, Store, StoreError, Write};
use crate::foundation::email::Email;
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId, PersonId};

/// The subject and text of an email written when it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    pub subject: String,
    pub text: String,
    /// Where replies go instead of the company (a partner's quote request: the client who asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Email>,
}

/// The template (and record kind) of "Get Full Access" emails.
pub const FULL_ACCESS: &str = "full_access";
/// A request for an "all my inspections" sign-in link (`/me/{company}`): company-wide, so it is
/// kept under the nil inspection id.
pub const ME_SIGN_IN: &str = "me_sign_in";
/// A building contact's invitation to the customer portal: company-wide (kept under the nil
/// inspection id), its link made when it is sent.
pub const CONTACT_INVITE: &str = "contact_invite";
/// A document's PDF sent again to a person, attached (read from S3 when it is sent).
pub const REPORT_RESEND: &str = "report_resend";
/// Repeats of the same staff request (an invitation, a resend) within this window are one email.
pub const STAFF_REPEAT_WINDOW_SECONDS: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    /// Waiting in the outbox (new, or a failed attempt to retry at `next_attempt_at`).
    Pending,
    /// Claimed by a sender until `next_attempt_at` (a lease); back to pending if it fails.
    Sending,
    Sent,
    /// Nobody to send to any more (person removed, or now a staff user).
    Abandoned,
    /// Not sent: staff revoked the person's links (no email may carry a new one).
    Skipped,
    /// Not sent: the address bounced for good or complained before ([`Suppression`]).
    Suppressed,
    /// Will never be delivered: SES rejected it, it bounced for good, its recipient complained,
    /// or it failed [`crate::usecases::outbox::MAX_ATTEMPTS`] times. `last_error` says which.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    pub dedupe: String,
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    /// The recipient; None for a "Get Full Access" request until the job matches its email.
    pub person_id: Option<PersonId>,
    /// A "Get Full Access" request: the address asked for, matched by the job (never by the
    /// request, so a match and a miss cost the requester the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_email: Option<Email>,
    /// An email to someone outside the inspection (a partner's quote request): sent to this
    /// address as prepared, with no portal link in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_to: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<Prepared>,
    /// A building contact's invitation: the contact (their address is read when it is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<crate::foundation::ids::ContactId>,
    pub template_key: String,
    #[serde(default)]
    pub document_id: Option<DocumentId>,
    /// The ledger entry a receipt or refund notice is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub state: EmailState,
    pub attempts: u32,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// SES's id of the sent message (its events name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When SES reported the message delivered to the recipient's mail server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::foundation::clock::serde_rfc3339::option"
    )]
    pub delivered_at: Option<OffsetDateTime>,
    pub revision: u64,
    /// When its stored body (`prepared`) was dropped under the company's retention setting.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::foundation::clock::serde_rfc3339::option"
    )]
    pub body_dropped_at: Option<OffsetDateTime>,
}

/// An address that must not be emailed again by this company, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub address: String,
    /// `bounce` or `complaint`.
    pub kind: String,
    pub reason: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub at: OffsetDateTime,
}

/// The `kind` of a suppression that stops only optional emails (the address used a one-click
/// unsubscribe); bounces and complaints stop everything.
pub const UNSUBSCRIBED: &str = "unsubscribe";

impl Suppression {
    /// Whether this suppression stops an email (`optional`: see [`crate::domain::mail::optional`]).
    pub fn blocks(&self, optional: bool) -> bool {
        optional || self.kind != UNSUBSCRIBED
    }
}

/// A one-click unsubscribe link (`UNSUBSCRIBE#<hash of its secret>`): the address and company it
/// stops optional emails of. Written with the email that carries it (in its claim's transaction).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnsubscribeLink {
    pub company_id: CompanyId,
    pub address: String,
}

impl UnsubscribeLink {
    /// A new link for `address`; its secret (for the email only) and the write that stores it
    /// (kept for a link's lifetime, then expired).
    pub fn issue(
        company_id: CompanyId,
        address: &str,
        now: OffsetDateTime,
    ) -> Result<(crate::foundation::credentials::MeSecret, Write), StoreError> {
        use crate::foundation::credentials::MeSecret;
        let secret = MeSecret::generate(MeSecret::UNSUBSCRIBE);
        let link = UnsubscribeLink { company_id, address: address.to_ascii_lowercase() };
        // Listed by address (GSI1), so erasing the person finds and deletes them.
        let email = crate::foundation::email::Email::parse(&link.address).ok();
        let by_address = email.map(|e| keys::unsubscribes_of(company_id, &keys::email_part(&e)));
        let mut record = Record::new(keys::unsubscribe(secret.hash().as_str()), "unsubscribe_link", &link)?
            .expires_at(now.unix_timestamp() + 400 * 86_400);
        if let Some(pk) = by_address {
            record = record.with_gsi1(pk, secret.hash().as_str().to_owned());
        }
        Ok((secret, Write::Put(record)))
    }
}

impl EmailRecord {
    pub fn new(
        company_id: CompanyId,
        inspection_id: InspectionId,
        person_id: PersonId,
        template_key: &str,
        document_id: Option<DocumentId>,
        dedupe: String,
        now: OffsetDateTime,
    ) -> Self {
        EmailRecord {
            dedupe,
            company_id,
            inspection_id,
            person_id: Some(person_id),
            request_email: None,
            send_to: None,
            prepared: None,
            contact_id: None,
            template_key: template_key.to_owned(),
            document_id,
            payment_id: None,
            state: EmailState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            to: None,
            subject: None,
            created_at: now,
            sent_at: None,
            message_id: None,
            delivered_at: None,
            revision: 0,
            body_dropped_at: None,
        }
    }

    /// The receipts and refund notices a ledger change owes (see
    /// [`crate::domain::payments::money_notices`]): one email per notice per client who hears from
    /// the company, once (its dedupe key names the entry, and a refund's total).
    pub fn money_notices(
        company: &crate::domain::company::Company,
        before: &std::collections::BTreeMap<String, crate::domain::inspection::LedgerEntry>,
        inspection: &crate::domain::inspection::Inspection,
        now: OffsetDateTime,
    ) -> Result<Vec<Write>, StoreError> {
        let mut writes = Vec::new();
        if inspection.quiet {
            return Ok(writes); // created with "notify": false: no automated emails
        }
        for notice in crate::domain::payments::money_notices(before, inspection) {
            for n in (0..inspection.people.len()).filter(|&n| {
                let p = &inspection.people[n];
                p.role == crate::domain::inspection::Role::Client && inspection.needs_token(n, company) && !p.quiet
            }) {
                let p = inspection.people[n].id;
                let dedupe = format!("{}#{}#{}#{p}", notice.template_key, notice.entry, notice.amount_cents);
                let mut rec =
                    EmailRecord::new(inspection.company_id, inspection.id, p, notice.template_key, None, dedupe, now);
                rec.payment_id = Some(notice.entry.clone());
                writes.push(rec.create()?);
            }
        }
        Ok(writes)
    }

    /// A "Get Full Access" request for `email`, to be matched and answered by the outbox job.
    pub fn full_access_request(
        company_id: CompanyId,
        inspection_id: InspectionId,
        email: Email,
        now: OffsetDateTime,
    ) -> Self {
        // Repeats within a few minutes of this one are this request (one email at most), whoever
        // sends them: see [`Store::request_email`].
        let dedupe = format!("full_access#{}#{}", keys::email_part(&email), now.unix_timestamp());
        let mut r = EmailRecord::new(company_id, inspection_id, PersonId::new(), FULL_ACCESS, None, dedupe, now);
        r.person_id = None;
        r.request_email = Some(email);
        r
    }

    /// A request for an "all my inspections" sign-in link for `email`: the job looks the address
    /// up and sends a link only when some inspection of the company lists it (the request costs
    /// the same either way).
    pub fn me_sign_in_request(company_id: CompanyId, email: Email, now: OffsetDateTime) -> Self {
        let dedupe = format!("me_sign_in#{}#{}", keys::email_part(&email), now.unix_timestamp());
        let nil = InspectionId::from_ulid(ulid::Ulid::nil());
        let mut r = EmailRecord::new(company_id, nil, PersonId::new(), ME_SIGN_IN, None, dedupe, now);
        r.person_id = None;
        r.request_email = Some(email);
        r
    }

    /// A contact's invitation to the customer portal; repeats within
    /// [`STAFF_REPEAT_WINDOW_SECONDS`] of it are it (see [`EmailRecord::gate`]).
    pub fn contact_invite(
        company_id: CompanyId,
        contact: crate::foundation::ids::ContactId,
        now: OffsetDateTime,
    ) -> Self {
        let nil = InspectionId::from_ulid(ulid::Ulid::nil());
        let mut r = EmailRecord::new(
            company_id,
            nil,
            PersonId::from_ulid(ulid::Ulid::nil()),
            CONTACT_INVITE,
            None,
            format!("{CONTACT_INVITE}#{contact}#{}", now.unix_timestamp()),
            now,
        );
        r.person_id = None;
        r.contact_id = Some(contact);
        r
    }

    /// A document's PDF again, to one person of the inspection; repeats within
    /// [`STAFF_REPEAT_WINDOW_SECONDS`] of it are it (see [`EmailRecord::gate`]).
    pub fn resend(
        company_id: CompanyId,
        inspection_id: InspectionId,
        person: PersonId,
        document: DocumentId,
        now: OffsetDateTime,
    ) -> Self {
        let dedupe = format!("{REPORT_RESEND}#{document}#{person}#{}", now.unix_timestamp());
        EmailRecord::new(company_id, inspection_id, person, REPORT_RESEND, Some(document), dedupe, now)
    }

    /// An email to `to`, outside the inspection, written now and sent by the outbox as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn prepared(
        company_id: CompanyId,
        inspection_id: InspectionId,
        about: PersonId,
        template_key: &str,
        dedupe: String,
        to: Email,
        content: Prepared,
        now: OffsetDateTime,
    ) -> Self {
        let mut r = EmailRecord::new(company_id, inspection_id, about, template_key, None, dedupe, now);
        r.send_to = Some(to);
        r.prepared = Some(content);
        r
    }

    fn record(&self) -> Result<Record, StoreError> {
        let r = Record::new(keys::email(self.company_id, self.inspection_id, &self.dedupe), "email", self)?;
        Ok(match self.state {
            EmailState::Pending | EmailState::Sending => r.with_gsi1(
                keys::OUTBOX.shard(&self.dedupe),
                format!(
                    "{}#{}#{}#{}",
                    crate::foundation::clock::rfc3339(self.next_attempt_at),
                    self.company_id,
                    self.inspection_id,
                    self.dedupe
                ),
            ),
            // A sent email's stored body waits in the retention queue (the job drops it after the
            // company's `retention.email_bodies_days`; see `usecases::privacy::drop_email_bodies`).
            EmailState::Sent if self.prepared.is_some() => {
                let sent = self.sent_at.unwrap_or(self.created_at);
                r.with_due_in(&keys::RETAIN, format!("{}#{}", crate::foundation::clock::rfc3339(sent), self.dedupe))
            }
            EmailState::Sent
            | EmailState::Abandoned
            | EmailState::Skipped
            | EmailState::Suppressed
            | EmailState::Failed => r,
        })
    }

    /// Creates it; fails if an email with the same dedupe key exists (that is the point).
    pub fn create(&self) -> Result<Write, StoreError> {
        Ok(Write::Create(self.record()?))
    }

    /// The tags an email carries through SES (its events come back with them): which record it is.
    /// Tag values allow letters, digits, `_` and `-`, so the dedupe key travels base64url-encoded.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        use base64::Engine;
        vec![
            ("company_id", self.company_id.to_string()),
            ("inspection_id", self.inspection_id.to_string()),
            ("email", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.dedupe.as_bytes())),
        ]
    }

    /// The record a set of SES tags names (see [`EmailRecord::tags`]).
    pub fn from_tags(company: &str, inspection: &str, email: &str) -> Option<(CompanyId, InspectionId, String)> {
        use base64::Engine;
        let dedupe = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(email).ok()?;
        Some((company.parse().ok()?, inspection.parse().ok()?, String::from_utf8(dedupe).ok()?))
    }

    /// Saves the next state of a record read at `self.revision - 1`.
    pub fn replace(&self) -> Result<Write, StoreError> {
        Ok(Write::Replace { record: self.record()?, expected_revision: self.revision - 1 })
    }

    /// The same record one revision on (what [`EmailRecord::replace`] then saves).
    pub fn next(&self) -> EmailRecord {
        EmailRecord { revision: self.revision + 1, ..self.clone() }
    }
}

/// The open window of repeats of one email: which email opened it, and when it closes.
#[derive(Deserialize)]
struct Gate {
    dedupe: String,
    closes_at: i64,
}

/// How long requests for the same address collapse into one (Get Full Access, a /me sign-in):
/// asking again within it of the first request sends nothing more, and nobody else's asking locks
/// the person out.
pub const REPEAT_WINDOW_SECONDS: i64 = 300;

impl EmailRecord {
    /// The gate that makes repeats of this email within `seconds` of it this email: its key
    /// (`GATE#<dedupe without its time>`, beside the email) and the write that opens it, to go in
    /// the same transaction as the email's creation; the write fails while a window is open. The
    /// window opens at the first email, not at a clock boundary: two clicks a second apart are
    /// always one email.
    pub fn gate(&self, seconds: i64) -> Result<(Key, Write), StoreError> {
        let topic = self.dedupe.rsplit_once('#').map_or(self.dedupe.as_str(), |(topic, _)| topic);
        let key = keys::email_gate(self.company_id, self.inspection_id, topic);
        let closes_at = self.created_at.unix_timestamp() + seconds;
        let record = Record::new(
            key.clone(),
            "email_gate",
            &serde_json::json!({ "dedupe": self.dedupe, "closes_at": closes_at }),
        )?
        .expires_at(closes_at + seconds);
        let now = AttributeValue::N(self.created_at.unix_timestamp().to_string());
        let write = Write::PutIf {
            record,
            condition: "attribute_not_exists(PK) OR closes_at <= :now",
            values: HashMap::from([(":now".to_owned(), now)]),
        };
        Ok((key, write))
    }
}

impl Store {
    /// The email whose window (see [`EmailRecord::gate`]) is open at `now` at `gate`, if any: a
    /// repeat of it is it. One round trip.
    pub async fn open_gate(&self, gate: &Key, now: OffsetDateTime) -> Result<Option<String>, StoreError> {
        let found: Option<Gate> = self.get(gate).await?;
        Ok(found.filter(|g| g.closes_at > now.unix_timestamp()).map(|g| g.dedupe))
    }

    /// Writes a Get Full Access or sign-in request. A request opens a window (its gate, written
    /// in one transaction with it, see [`EmailRecord::gate`]). A repeat within the window is the
    /// first request (one email at most), unless that one was settled without an email (the
    /// address was on no inspection then, or the person's links were revoked): then it is asked
    /// again. A repeat costs the same three round trips whatever became of the first request (the
    /// transaction, which DynamoDB fails handing back the gate; the first request's read; then
    /// either the renewed request or a marker of the repeat), so the time it takes says nothing
    /// about the address.
    pub async fn request_email(&self, request: &EmailRecord) -> Result<(), StoreError> {
        let (gate_key, open_gate) = request.gate(REPEAT_WINDOW_SECONDS)?;
        let first: Gate = match self.transact_or_first_blocker(vec![open_gate, request.create()?]).await? {
            None => return Ok(()),
            Some(Some(gate)) => serde_dynamo::from_item(gate)?,
            // Another request for the address is being written right now: read what it opened.
            Some(None) => self
                .get(&gate_key)
                .await?
                .ok_or_else(|| StoreError::TransactionCanceled(vec!["TransactionConflict".into()]))?,
        };
        let existing = self.email(request.company_id, request.inspection_id, &first.dedupe).await?;
        let write = match existing {
            Some(first) if !matches!(first.state, EmailState::Pending | EmailState::Sending | EmailState::Sent) => {
                EmailRecord { revision: first.revision + 1, dedupe: first.dedupe.clone(), ..request.clone() }
                    .replace()?
            }
            _ => {
                let key = keys::email_repeat(request.company_id, request.inspection_id, &first.dedupe);
                let at = serde_json::json!({ "at": crate::foundation::clock::rfc3339(request.created_at) });
                Write::Put(Record::new(key, "repeat", &at)?.expires_at(request.created_at.unix_timestamp() + 3600))
            }
        };
        match self.write(write).await {
            Err(e) if e.is_condition_failure() => Ok(()), // another repeat renewed it first
            other => other,
        }
    }

    /// Drops a sent email's stored body (its retention queue entry with it), while the entry is
    /// still `seen` (a resend or an SES event rewrites it); whether it did.
    pub async fn drop_email_body(&self, key: &keys::Key, seen: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.retention_update(
            key,
            seen,
            "REMOVE prepared, DuePK, DueSK SET body_dropped_at = :v",
            crate::foundation::clock::rfc3339(now),
        )
        .await
    }

    /// Moves a sent email's retention queue entry to `at` (when its body is due to go).
    pub async fn move_retention(&self, key: &keys::Key, seen: &str, at: &str) -> Result<bool, StoreError> {
        self.retention_update(key, seen, "SET DueSK = :v", at.to_owned()).await
    }

    async fn retention_update(
        &self,
        key: &keys::Key,
        seen: &str,
        expression: &str,
        value: String,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, AttributeValue::S(key.pk.clone()))
            .key(keys::SK, AttributeValue::S(key.sk.clone()))
            .condition_expression("DueSK = :seen")
            .update_expression(expression)
            .expression_attribute_values(":seen", AttributeValue::S(seen.to_owned()))
            .expression_attribute_values(":v", AttributeValue::S(value))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(StoreError::sdk(&e)),
        }
    }

    /// Queues emails in `BatchWriteItem`s, without the condition a create has: only for emails
    /// whose cause was saved just before by the caller, which nobody else writes until the
    /// caller has certainly stopped (the scheduled job's; see
    /// [`crate::usecases::publishing::publish_due`]). Each request is sent once.
    pub async fn queue_new_emails(&self, emails: &[EmailRecord]) -> Result<(), StoreError> {
        let records = emails.iter().map(EmailRecord::record).collect::<Result<Vec<_>, _>>()?;
        self.put_batch_once(records).await
    }

    /// Emails due now, oldest first: every outbox shard queried at once (reads only unsent emails).
    pub async fn due_emails(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<EmailRecord>, StoreError> {
        let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
        self.query_gsi1_upto(&keys::OUTBOX, &upto, limit).await
    }

    pub async fn email(&self, c: CompanyId, i: InspectionId, dedupe: &str) -> Result<Option<EmailRecord>, StoreError> {
        self.get(&keys::email(c, i, dedupe)).await
    }

    /// Whether (and why) the company may not email `address` any more.
    /// (And an erased person's address, kept only as a salted hash: both read in one round trip.)
    pub async fn suppression(&self, c: CompanyId, address: &str) -> Result<Option<Suppression>, StoreError> {
        let found = self.batch_get(&[keys::suppression(c, address), keys::suppression_erased(c, address)]).await?;
        Ok(found.into_iter().flatten().next().map(serde_dynamo::from_item).transpose()?)
    }

    /// Stops the company's email to `address` (the first reason is kept, except that a bounce or
    /// a complaint replaces an unsubscribe: it stops more).
    pub async fn suppress(&self, c: CompanyId, s: &Suppression) -> Result<(), StoreError> {
        let record = Record::new(keys::suppression(c, &s.address), "suppression", s)?;
        let write = if s.kind == UNSUBSCRIBED {
            Write::Create(record)
        } else {
            Write::PutIf {
                record,
                condition: "attribute_not_exists(PK) OR kind = :weaker",
                values: HashMap::from([(":weaker".to_owned(), AttributeValue::S(UNSUBSCRIBED.into()))]),
            }
        };
        match self.write(write).await {
            Err(e) if e.is_condition_failure() => Ok(()),
            other => other,
        }
    }

    /// The company's suppressed addresses (bounces, complaints, unsubscribes), by address.
    pub async fn suppressions(
        &self,
        c: CompanyId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Suppression>, StoreError> {
        self.query_prefix(&keys::suppression(c, "").pk, "", limit, cursor, false).await
    }

    /// Lets the company email `address` again (staff's decision); true when it was suppressed.
    pub async fn unsuppress(&self, c: CompanyId, address: &str) -> Result<bool, StoreError> {
        match self.write(Write::DeleteExisting(keys::suppression(c, address))).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_condition_failure() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What a one-click unsubscribe link stands for, if it exists.
    pub async fn unsubscribe_link(
        &self,
        secret: &crate::foundation::credentials::MeSecret,
    ) -> Result<Option<UnsubscribeLink>, StoreError> {
        self.get(&keys::unsubscribe(secret.hash().as_str())).await
    }

    /// An inspection's emails (sent, waiting, abandoned), newest first.
    pub async fn email_history(
        &self,
        c: CompanyId,
        i: InspectionId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<EmailRecord>, StoreError> {
        self.query_prefix(&keys::inspection(c, i).pk, keys::EMAIL_PREFIX, limit, cursor, true).await
    }
}
