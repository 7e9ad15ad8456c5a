//! Tokenized links, stored by the SHA-256 of the token.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::{Inspection, Role, TokenRef, MAX_LINKS_PER_PERSON};
use crate::foundation::credentials::{Token, TokenScope};
use crate::foundation::ids::{CompanyId, ContactId, InspectionId, PersonId, TokenId};

/// What a token grants. Stored at `TOKEN#<sha256>`; deleting it revokes the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub token_id: TokenId,
    pub company_id: CompanyId,
    #[serde(default)]
    pub inspection_id: Option<InspectionId>,
    #[serde(default)]
    pub person_id: Option<PersonId>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// The stored hash, compared in constant time with the presented token's hash.
    pub token_hash: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
}

impl TokenRecord {
    pub fn write(&self) -> Result<Write, StoreError> {
        Ok(Write::Create(Record::new(keys::token_by_stored_hash(&self.token_hash), "token", self)?))
    }
}

/// A freshly issued link for a person of an inspection: the secret (to put in one URL, once),
/// the record to store, and the reference the aggregate keeps.
pub struct IssuedToken {
    pub token: Token,
    pub record: TokenRecord,
}

/// Which links a new one may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// Another live link (an email's): earlier ones stay, up to [`MAX_LINKS_PER_PERSON`] (the
    /// oldest emailed one is revoked beyond that).
    Add,
    /// The "Get Full Access" link: replaces the previous one of its kind only.
    FullAccess,
    /// A staff re-issue: every earlier link is revoked.
    ReplaceAll,
    /// The link "all my inspections" opens: replaces the previous one of its kind only.
    Me,
}

impl IssuedToken {
    /// Issues a new link to the person at `idx` and records it on the aggregate; returns the
    /// writes that store it and delete the links it replaces, for the same transaction as the
    /// aggregate.
    pub fn issue(
        inspection: &mut Inspection,
        idx: usize,
        now: OffsetDateTime,
        mode: Issue,
    ) -> Result<(Self, Vec<Write>), StoreError> {
        let token = Token::generate(inspection.company_id, TokenScope::Inspection(inspection.id));
        let person = &mut inspection.people[idx];
        let record = TokenRecord {
            token_id: TokenId::new(),
            company_id: inspection.company_id,
            inspection_id: Some(inspection.id),
            person_id: Some(person.id),
            role: Some(person.role),
            contact_id: None,
            token_hash: token.hash().as_str().to_owned(),
            created_at: now,
        };
        let mut writes = vec![record.write()?];
        writes.extend(place_link(&mut person.tokens, &record, mode));
        Ok((IssuedToken { token, record }, writes))
    }
}

/// A new link for a building contact: stored by hash, capped like a person's links (the oldest
/// goes), or, with [`Issue::ReplaceAll`], the only one (a staff re-issue). The token (shown or
/// emailed once, never stored) and the writes for the contact's save.
pub fn issue_contact_link(
    company: CompanyId,
    k: &mut crate::domain::customers::Contact,
    mode: Issue,
    now: OffsetDateTime,
) -> Result<(Token, Vec<Write>), StoreError> {
    let token = Token::generate(company, TokenScope::Contact(k.id));
    let record = TokenRecord {
        token_id: TokenId::new(),
        company_id: company,
        inspection_id: None,
        person_id: None,
        role: None,
        contact_id: Some(k.id),
        token_hash: token.hash().as_str().to_owned(),
        created_at: now,
    };
    let mut writes = vec![record.write()?];
    writes.extend(place_link(&mut k.tokens, &record, mode));
    Ok((token, writes))
}

/// Adds the link `record` to a holder's live links (a person's or a contact's) as `mode`
/// allows; returns the deletes of the links it replaces.
pub fn place_link(tokens: &mut Vec<TokenRef>, record: &TokenRecord, mode: Issue) -> Vec<Write> {
    let replaced: Vec<TokenRef> = match mode {
        Issue::ReplaceAll => std::mem::take(tokens),
        Issue::FullAccess => extract(tokens, |t| t.full_access, usize::MAX),
        Issue::Me => extract(tokens, |t| t.me, usize::MAX),
        Issue::Add => {
            let emailed = |t: &TokenRef| !t.full_access && !t.me;
            let n = tokens.iter().filter(|t| emailed(t)).count();
            extract(tokens, emailed, (n + 1).saturating_sub(MAX_LINKS_PER_PERSON))
        }
    };
    tokens.push(TokenRef {
        id: record.token_id,
        hash: record.token_hash.clone(),
        full_access: mode == Issue::FullAccess,
        me: mode == Issue::Me,
        issued_at: Some(record.created_at),
    });
    revoke(replaced.into_iter()).collect()
}

/// Removes (oldest first) at most `n` of `tokens` that match `which`.
fn extract(tokens: &mut Vec<TokenRef>, which: impl Fn(&TokenRef) -> bool, n: usize) -> Vec<TokenRef> {
    let mut out = Vec::new();
    tokens.retain(|t| {
        if out.len() < n && which(t) {
            out.push(t.clone());
            false
        } else {
            true
        }
    });
    out
}

/// Revokes every link of the person at `idx`; returns the deletes for the aggregate's transaction.
pub fn revoke_all(inspection: &mut Inspection, idx: usize) -> Vec<Write> {
    revoke_links(&mut inspection.people[idx].tokens)
}

/// Revokes the link "all my inspections" gave the person at `idx` (never an emailed one);
/// returns the deletes (none when there is no such link).
pub fn revoke_me_link(inspection: &mut Inspection, idx: usize) -> Vec<Write> {
    let tokens = &mut inspection.people[idx].tokens;
    let (me, kept): (Vec<TokenRef>, Vec<TokenRef>) = tokens.drain(..).partition(|t| t.me);
    *tokens = kept;
    revoke(me.into_iter()).collect()
}

/// Revokes every link in `tokens` (a person's or a contact's); returns the deletes.
pub fn revoke_links(tokens: &mut Vec<TokenRef>) -> Vec<Write> {
    revoke(tokens.drain(..)).collect()
}

fn revoke(refs: impl Iterator<Item = TokenRef>) -> impl Iterator<Item = Write> {
    refs.map(|t| Write::Delete(keys::token_by_stored_hash(&t.hash))).collect::<Vec<_>>().into_iter()
}

/// Everything a portal request needs, read with its token.
pub struct PortalContext {
    pub token: TokenRecord,
    pub company: Company,
    pub inspection: Inspection,
    /// Payment events of this inspection received and not applied yet (a busy moment: the job
    /// applies them within a minute); the portal shows the payment as processing.
    pub payments_queued: bool,
}

impl PortalContext {
    /// Position of the token's holder in `inspection.people`.
    pub fn person_index(&self) -> usize {
        self.token.person_id.and_then(|p| self.inspection.person_index(p)).expect("checked by Store::portal")
    }

    pub fn person(&self) -> &crate::domain::inspection::Person {
        &self.inspection.people[self.person_index()]
    }
}

impl Store {
    /// The context of a `/p/<token>` request, or the one 404 every bad token gets (unknown,
    /// revoked, re-issued, malformed). A malformed token costs no read.
    pub async fn resolve_portal(&self, raw: &str) -> Result<(Token, PortalContext), crate::ApiError> {
        let token = Token::parse(raw).ok_or(crate::ApiError::NotFound)?;
        let ctx = self.portal(&token).await?.ok_or(crate::ApiError::NotFound)?;
        Ok((token, ctx))
    }

    /// Resolves a client/agent token: its record, company and inspection in one `BatchGetItem`
    /// (the ids come from the token itself). `None` for any token that does not open this
    /// inspection now: unknown, revoked, replaced by a re-issue, or naming another scope.
    pub async fn portal(&self, token: &Token) -> Result<Option<PortalContext>, StoreError> {
        let (company_id, inspection_id) = (token.company_id(), token.inspection_id());
        let hash = token.hash();
        let found = self
            .batch_get(&[
                keys::token(&hash),
                keys::company(company_id),
                keys::inspection(company_id, inspection_id),
                keys::payments_queued(company_id, inspection_id),
            ])
            .await?;
        let [Some(t), Some(c), Some(i), queued] =
            <[_; 4]>::try_from(found).map_err(|_| StoreError::Sdk("batch".into()))?
        else {
            return Ok(None);
        };
        let payments_queued =
            queued.is_some_and(|q| q.get("events").is_some_and(|e| e.as_ss().is_ok_and(|s| !s.is_empty())));
        let record: TokenRecord = serde_dynamo::from_item(t)?;
        let inspection: Inspection = serde_dynamo::from_item(i)?;
        let company: Company = serde_dynamo::from_item(c)?;
        // Every link has an absolute lifetime, whatever else happens to it.
        let alive = record.created_at + company.settings.link_lifetime() > self.clock.now();
        let valid = hash.matches(&record.token_hash)
            && alive
            && record.company_id == company_id
            && record.inspection_id == Some(inspection_id)
            && record.person_id.is_some_and(|p| inspection.token_holder(p, record.token_id).is_some());
        if !valid {
            return Ok(None);
        }
        Ok(Some(PortalContext { token: record, company, inspection, payments_queued }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::company::{Company, NewCompany};
    use crate::domain::inspection::NewInspection;

    /// An inspection on a deliberately historic date: nothing here depends on when it is.
    fn inspection() -> Inspection {
        let c =
            Company::create(NewCompany { name: "Acme".into(), staff_emails: vec![] }, crate::foundation::clock::now())
                .unwrap();
        let input: NewInspection = serde_json::from_str(
            r#"{"address": "1 A St", "scheduled_at": "2026-05-01T09:00:00Z",
                "people": [{"role": "client", "name": "Jane", "email": "jane@example.com"}]}"#,
        )
        .unwrap();
        Inspection::create(input, &c, crate::foundation::clock::now()).unwrap()
    }

    fn deletes(writes: &[Write]) -> Vec<String> {
        writes.iter().filter_map(|w| if let Write::Delete(k) = w { Some(k.pk.clone()) } else { None }).collect()
    }

    #[test]
    fn links_accumulate_up_to_the_cap_and_a_reissue_revokes_them_all() {
        let mut i = inspection();
        let now = crate::foundation::clock::now();
        let mut first = None;
        for n in 0..MAX_LINKS_PER_PERSON {
            let (t, w) = IssuedToken::issue(&mut i, 0, now, Issue::Add).unwrap();
            assert!(deletes(&w).is_empty(), "link {n} revokes nothing");
            first.get_or_insert(t.record.token_hash);
        }
        let (_, w) = IssuedToken::issue(&mut i, 0, now, Issue::Add).unwrap();
        assert_eq!(deletes(&w), vec![format!("TOKEN#{}", first.unwrap())], "the oldest goes beyond the cap");
        assert_eq!(i.people[0].tokens.len(), MAX_LINKS_PER_PERSON);
        let (t, w) = IssuedToken::issue(&mut i, 0, now, Issue::ReplaceAll).unwrap();
        assert_eq!(deletes(&w).len(), MAX_LINKS_PER_PERSON);
        assert_eq!(i.people[0].tokens.len(), 1);
        assert!(i.token_holder(i.people[0].id, t.record.token_id).is_some());
        assert_eq!(revoke_all(&mut i, 0).len(), 1);
        assert!(i.people[0].tokens.is_empty());
    }

    #[test]
    fn full_access_links_replace_only_each_other_and_push_out_no_emailed_link() {
        let mut i = inspection();
        let now = crate::foundation::clock::now();
        let (emailed, _) = IssuedToken::issue(&mut i, 0, now, Issue::Add).unwrap();
        let (first, w) = IssuedToken::issue(&mut i, 0, now, Issue::FullAccess).unwrap();
        assert!(deletes(&w).is_empty());
        for _ in 0..30 {
            let (_, w) = IssuedToken::issue(&mut i, 0, now, Issue::FullAccess).unwrap();
            assert_eq!(deletes(&w).len(), 1, "each replaces the previous full-access link only");
        }
        assert_eq!(i.people[0].tokens.len(), 2);
        assert!(i.token_holder(i.people[0].id, emailed.record.token_id).is_some(), "the emailed link survives");
        assert!(i.token_holder(i.people[0].id, first.record.token_id).is_none());
        // Emails fill their own window; the full-access link is not pushed out either.
        for _ in 0..MAX_LINKS_PER_PERSON + 5 {
            IssuedToken::issue(&mut i, 0, now, Issue::Add).unwrap();
        }
        assert_eq!(i.people[0].tokens.iter().filter(|t| !t.full_access).count(), MAX_LINKS_PER_PERSON);
        assert_eq!(i.people[0].tokens.iter().filter(|t| t.full_access).count(), 1);
    }
}

/// How long a staff preview link works (once).
pub const PREVIEW_LIFETIME: time::Duration = time::Duration::minutes(10);

/// A staff preview link: whose portal it shows, and who asked (for the audit trail).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewLink {
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    pub person_id: PersonId,
    pub key_id: crate::foundation::ids::KeyId,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub valid_until: OffsetDateTime,
}

impl Store {
    /// A single-use preview link for `link` (stored by its hash; gone after 10 minutes).
    pub async fn create_preview_link(
        &self,
        link: &PreviewLink,
    ) -> Result<crate::foundation::credentials::MeSecret, StoreError> {
        use crate::foundation::credentials::MeSecret;
        let secret = MeSecret::generate(MeSecret::PREVIEW);
        let record = Record::new(keys::staff_preview(&secret.hash()), "staff_preview", link)?
            .expires_at((link.valid_until + time::Duration::days(1)).unix_timestamp());
        self.write(Write::Create(record)).await?;
        Ok(secret)
    }

    /// Uses a preview link: deleted in the same request that reads it (a second use, or one
    /// after its 10 minutes, finds nothing).
    pub async fn take_preview_link(
        &self,
        secret: &crate::foundation::credentials::MeSecret,
        now: OffsetDateTime,
    ) -> Result<Option<PreviewLink>, StoreError> {
        let key = keys::staff_preview(&secret.hash());
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(super::records::key_attrs(&key)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        let Some(item) = out.attributes else { return Ok(None) };
        let link: PreviewLink = serde_dynamo::from_item(item)?;
        Ok((link.valid_until > now).then_some(link))
    }
}
