//! "All my inspections" (`/me/{company}`): one list per address and company, sign-in codes and
//! sessions.
//!
//! The list is an index kept by the inspection's own saves: every save of an inspection writes,
//! in the same transaction, one entry per address that holds a live link on it (role, address,
//! date, requirements, balance, agreement, published documents: what the list shows and the gate
//! needs) and deletes the entries of addresses that no longer do (removed, revoked, changed). So
//! the list is one query, never stale, and revoking a person takes the inspection off their list
//! at once. What a document's state is stays a decision of the gate, made on every read.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::inspection::Inspection;
pub use crate::domain::me::{MeDocument, MeEntry};
use crate::foundation::credentials::MeSecret;
use crate::foundation::email::Email;
use crate::foundation::ids::{CompanyId, InspectionId};

/// A sign-in link is good for this long, once.
pub const SIGN_IN_LIFETIME: time::Duration = time::Duration::minutes(15);
/// A session ends after this long without use…
pub const SESSION_IDLE: time::Duration = time::Duration::days(7);
/// …and this long after it started, whatever.
pub const SESSION_LIFETIME: time::Duration = time::Duration::days(30);
/// How stale `last_seen_at` may be before a read refreshes it (a write per hour, not per view).
const SEEN_GRANULARITY: time::Duration = time::Duration::hours(1);

/// The list entries an inspection's save writes, and the deletes of entries it no longer has;
/// updates `me_listed` to match. Called by every save of an inspection, before its record is
/// built.
pub(crate) fn person_index_writes(i: &mut Inspection) -> Result<Vec<Write>, StoreError> {
    let documents: Vec<MeDocument> = i
        .documents
        .iter()
        .filter(|d| d.published)
        .map(|d| MeDocument { id: d.id, kind: d.kind, title: d.display_name(), form_complete: d.form_complete })
        .collect();
    let mut writes = Vec::new();
    let mut listed = Vec::new();
    for p in i.people.iter().filter(|p| !p.revoked && !p.tokens.is_empty()) {
        let Some(email) = &p.email else { continue };
        let part = keys::email_part(email);
        if listed.contains(&part) {
            continue; // one entry per address: the first person with it
        }
        let entry = MeEntry {
            inspection_id: i.id,
            person_id: p.id,
            role: p.role,
            address: i.address.clone(),
            scheduled_at: i.scheduled_at,
            currency: i.currency,
            invoice_total_cents: i.invoice_total(),
            balance_cents: i.balance(),
            requirements: i.requirements,
            agreement_signed: i.agreement_signed(),
            documents: documents.clone(),
        };
        writes.push(Write::Put(Record::new(
            keys::person_inspection(i.company_id, &part, i.id),
            "person_inspection",
            &entry,
        )?));
        listed.push(part);
    }
    for gone in i.me_listed.iter().filter(|p| !listed.contains(p)) {
        writes.push(Write::Delete(keys::person_inspection(i.company_id, gone, i.id)));
    }
    i.me_listed = listed;
    Ok(writes)
}

/// A sign-in link's record, at `MESIGNIN#<sha256>`; gone (TTL) a day after it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignIn {
    pub company_id: CompanyId,
    /// Whom it signs in; dropped when it is used (the used record only stops a second use, and
    /// keeps no address nothing could find again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The code's hash (the key), so staff can end it by address.
    #[serde(default)]
    pub code_hash: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub valid_until: OffsetDateTime,
    #[serde(default)]
    pub used: bool,
}

/// A session, at `MESESSION#<sha256>`, listed under its address for staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub company_id: CompanyId,
    pub email: Email,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// The stored hash (the key), so staff can end it from the listing.
    pub session_hash: String,
}

impl Session {
    pub fn live(&self, now: OffsetDateTime) -> bool {
        now - self.last_seen_at < SESSION_IDLE && now - self.created_at < SESSION_LIFETIME
    }

    fn record(&self) -> Result<Record, StoreError> {
        let part = keys::email_part(&self.email);
        Ok(Record::new(keys::me_session_by_stored_hash(&self.session_hash), "me_session", self)?
            .with_gsi1(keys::me_sessions_of(self.company_id, &part), crate::foundation::clock::rfc3339(self.created_at))
            .expires_at((self.created_at + SESSION_LIFETIME).unix_timestamp()))
    }
}

impl Store {
    /// Every inspection of `company` where `email` holds a live link (one query; at most 500).
    pub async fn my_inspections(&self, company: CompanyId, email: &Email) -> Result<Vec<MeEntry>, StoreError> {
        let pk = keys::person_inspections(company, &keys::email_part(email));
        Ok(self.query_prefix::<MeEntry>(&pk, "INSPECTION#", 500, None, false).await?.items)
    }

    /// The list entry of one inspection for `email` (one read).
    pub async fn my_inspection(
        &self,
        company: CompanyId,
        email: &Email,
        inspection: InspectionId,
    ) -> Result<Option<MeEntry>, StoreError> {
        self.get(&keys::person_inspection(company, &keys::email_part(email), inspection)).await
    }

    /// Records a sign-in code for `email` (the code itself goes only into the email).
    pub async fn create_sign_in(
        &self,
        company: CompanyId,
        email: &Email,
        now: OffsetDateTime,
    ) -> Result<MeSecret, StoreError> {
        let code = MeSecret::generate(MeSecret::SIGN_IN);
        let record = SignIn {
            company_id: company,
            email: Some(email.clone()),
            code_hash: code.hash().as_str().to_owned(),
            valid_until: now + SIGN_IN_LIFETIME,
            used: false,
        };
        // Listed by address until used (the use rewrites it without the index keys).
        let by_address = keys::me_sign_ins_of(company, &keys::email_part(email));
        let record = Record::new(keys::me_sign_in(&code.hash()), "me_sign_in", &record)?
            .with_gsi1(by_address, crate::foundation::clock::rfc3339(now))
            .expires_at((now + SIGN_IN_LIFETIME + time::Duration::days(1)).unix_timestamp());
        self.write(Write::Create(record)).await?;
        Ok(code)
    }

    pub async fn sign_in(&self, code: &MeSecret) -> Result<Option<SignIn>, StoreError> {
        self.get(&keys::me_sign_in(&code.hash())).await
    }

    /// Uses a sign-in code and starts a session, in one transaction: a code used or used up by
    /// a concurrent request starts nothing (condition failure).
    pub async fn start_session(
        &self,
        code: &MeSecret,
        sign_in: &SignIn,
        now: OffsetDateTime,
    ) -> Result<MeSecret, StoreError> {
        let secret = MeSecret::generate(MeSecret::SESSION);
        let email = sign_in.email.clone().ok_or(StoreError::ConditionFailed)?;
        let session = Session {
            company_id: sign_in.company_id,
            email,
            created_at: now,
            last_seen_at: now,
            session_hash: secret.hash().as_str().to_owned(),
        };
        let used = SignIn { used: true, email: None, ..sign_in.clone() };
        let used = Record::new(keys::me_sign_in(&code.hash()), "me_sign_in", &used)?
            .expires_at((sign_in.valid_until + time::Duration::days(1)).unix_timestamp());
        let unused = super::Item::from([
            (":no".to_owned(), aws_sdk_dynamodb::types::AttributeValue::Bool(false)),
            (":now".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(crate::foundation::clock::rfc3339(now))),
        ]);
        self.transact(vec![
            Write::PutIf { record: used, condition: "used = :no AND valid_until > :now", values: unused },
            Write::Create(session.record()?),
        ])
        .await?;
        Ok(secret)
    }

    /// The company and the live session a cookie names (if any), in one batched read.
    pub async fn company_and_session(
        &self,
        company: CompanyId,
        secret: Option<&MeSecret>,
        now: OffsetDateTime,
    ) -> Result<(Option<crate::domain::company::Company>, Option<Session>), StoreError> {
        let Some(secret) = secret else {
            return Ok((self.company(company).await?, None));
        };
        let mut found = self.batch_get(&[keys::company(company), keys::me_session(&secret.hash())]).await?.into_iter();
        let company = found.next().flatten().map(serde_dynamo::from_item).transpose()?;
        let session = found.next().flatten().map(serde_dynamo::from_item).transpose()?;
        Ok((company, self.live_session(session, now).await?))
    }

    /// The session if live, refreshing `last_seen_at` at most hourly; None when ended or expired.
    async fn live_session(&self, found: Option<Session>, now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
        let Some(mut s) = found.filter(|s| s.live(now)) else {
            return Ok(None);
        };
        if now - s.last_seen_at >= SEEN_GRANULARITY {
            s.last_seen_at = now;
            // Ended meanwhile? Then the refresh must not bring it back.
            let values = super::Item::new();
            match self.write(Write::PutIf { record: s.record()?, condition: "attribute_exists(PK)", values }).await {
                Err(e) if e.is_condition_failure() => return Ok(None),
                other => other?,
            }
        }
        Ok(Some(s))
    }

    pub async fn end_session(&self, secret: &MeSecret) -> Result<(), StoreError> {
        self.write(Write::Delete(keys::me_session(&secret.hash()))).await
    }

    /// Ends every session of `email` with `company` and every sign-in link it has not used yet;
    /// how many of each there were.
    pub async fn end_sessions(&self, company: CompanyId, email: &Email) -> Result<(usize, usize), StoreError> {
        let part = keys::email_part(email);
        let sessions = self
            .delete_listed::<Session>(&keys::me_sessions_of(company, &part), |s| {
                keys::me_session_by_stored_hash(&s.session_hash)
            })
            .await?;
        let codes = self
            .delete_listed::<SignIn>(&keys::me_sign_ins_of(company, &part), |s| {
                keys::me_sign_in_by_stored_hash(&s.code_hash)
            })
            .await?;
        Ok((sessions, codes))
    }

    /// Deletes every item a GSI1 partition lists (by the key `key` names); how many.
    async fn delete_listed<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        key: impl Fn(&T) -> keys::Key,
    ) -> Result<usize, StoreError> {
        let (mut deleted, mut cursor) = (0, None);
        loop {
            let page = self.query_gsi1::<T>(pk, 100, cursor.as_deref(), false).await?;
            for item in &page.items {
                self.write(Write::Delete(key(item))).await?;
                deleted += 1;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(deleted),
            }
        }
    }

    /// Revokes the portal links "all my inspections" gave `email` on each of its inspections
    /// (emailed links stay); how many.
    pub async fn revoke_me_links(&self, company: CompanyId, email: &Email) -> Result<usize, crate::ApiError> {
        let mut revoked = 0;
        for entry in self.my_inspections(company, email).await? {
            let result = self
                .modify_inspection(company, entry.inspection_id, |_, i| {
                    let idx = i.people.iter().position(|p| p.id == entry.person_id && p.email.as_ref() == Some(email));
                    let writes = idx.map(|idx| super::tokens::revoke_me_link(i, idx)).unwrap_or_default();
                    Ok::<_, crate::ApiError>((writes.len(), writes))
                })
                .await;
            match result {
                Ok((_, n)) => revoked += n,
                Err(crate::ApiError::NotFound) => {} // the inspection is gone
                Err(e) => return Err(e),
            }
        }
        Ok(revoked)
    }
}
