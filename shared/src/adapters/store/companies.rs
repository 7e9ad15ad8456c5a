//! Companies and staff API keys.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::foundation::credentials::SecretHash;
use crate::foundation::ids::{CompanyId, KeyId};

/// What a staff API key's hash resolves to. A second item under the company
/// (`COMPANY#<c>#STAFFKEY#<id>`, on GSI1 for the list) holds the same record, so a key can be
/// listed and revoked by its id; the key itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaffKeyRecord {
    pub key_id: KeyId,
    pub company_id: CompanyId,
    /// Whom the key was made for.
    #[serde(default)]
    pub name: Option<String>,
    /// The SHA-256 the key is looked up by (hex), to revoke it by id.
    #[serde(default)]
    pub key_hash: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Its company was deleted (the key answers 404 until the deletion takes the item away).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub company_deleted: bool,
}

impl StaffKeyRecord {
    /// The key item and its listing item, both created (in one transaction with whatever else).
    pub fn create(&self, hash: &SecretHash) -> Result<Vec<Write>, StoreError> {
        Ok(vec![Write::Create(Record::new(keys::staff_key(hash), "staff_key", self)?), Write::Create(self.listing()?)])
    }

    fn listing(&self) -> Result<Record, StoreError> {
        Ok(Record::new(keys::staff_key_listing(self.company_id, self.key_id), "staff_key_listing", self)?
            .with_gsi1(keys::staff_keys_of(self.company_id), self.key_id.to_string()))
    }

    /// Whether this is a key made before keys were listed (its record knows no hash and no
    /// listing item exists): unlisted, so nobody could see or revoke it.
    pub fn is_unlisted(&self) -> bool {
        self.key_hash.is_empty()
    }
}

/// The counter of a company's staff keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyCount {
    n: i64,
}

/// What revoking a key came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    /// It is the company's last key: kept (nobody could get back in).
    LastKey,
    /// Revoked already (by another request).
    Gone,
}

/// One key more (the counter must exist: see [`Store::ensure_key_count`]) or one fewer (another
/// must be left), for the transaction that creates or revokes it.
fn count_keys(c: CompanyId, more: bool) -> Write {
    use aws_sdk_dynamodb::types::AttributeValue::N;
    let values = super::Item::from([(":one".to_owned(), N("1".into())), (":minus".to_owned(), N("-1".into()))]);
    let (expression, condition) =
        if more { ("ADD n :one", "attribute_exists(n) AND n >= :one") } else { ("ADD n :minus", "n > :one") };
    let values =
        values.into_iter().filter(|(k, _)| expression.contains(k.as_str()) || condition.contains(k.as_str())).collect();
    Write::Update { key: keys::staff_key_count(c), expression, condition, values }
}

impl Store {
    /// Makes sure a company's key counter exists: companies from before it was kept count their
    /// listed keys once (through the listing index, which may lag a moment: a key created in that
    /// moment is counted by its own creation, which waits for the counter).
    async fn ensure_key_count(&self, c: CompanyId) -> Result<(), StoreError> {
        if self.get::<KeyCount>(&keys::staff_key_count(c)).await?.is_some() {
            return Ok(());
        }
        let n = self.staff_keys(c).await?.len() as i64;
        let values = super::Item::new();
        let record = Record::new(keys::staff_key_count(c), "staff_key_count", &KeyCount { n })?;
        match self.write(Write::PutIf { record, condition: "attribute_not_exists(n)", values }).await {
            Err(e) if !e.is_condition_failure() => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates a staff key (its item and listing item) and counts it, in one transaction.
    pub async fn add_staff_key(&self, hash: &SecretHash, k: &StaffKeyRecord) -> Result<(), StoreError> {
        self.ensure_key_count(k.company_id).await?;
        let mut writes = k.create(hash)?;
        writes.push(count_keys(k.company_id, true));
        self.transact(writes).await
    }

    /// Creates a company and its first staff key atomically.
    pub async fn create_company(
        &self,
        company: &Company,
        key_hash: &SecretHash,
        key: &StaffKeyRecord,
    ) -> Result<(), StoreError> {
        let mut writes = vec![Write::Create(Record::new(keys::company(company.id), "company", company)?)];
        writes.extend(key.create(key_hash)?);
        writes.push(Write::Create(Record::new(
            keys::staff_key_count(company.id),
            "staff_key_count",
            &KeyCount { n: 1 },
        )?));
        self.transact(writes).await
    }

    pub async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        self.get(&keys::company(id)).await
    }

    /// Saves a company read at `company.revision`, bumping it; fails if someone saved in between.
    pub async fn save_company(&self, company: &mut Company) -> Result<(), StoreError> {
        let expected = company.revision;
        company.revision += 1;
        let result = self
            .write(Write::Replace {
                record: Record::new(keys::company(company.id), "company", &*company)?,
                expected_revision: expected,
            })
            .await;
        if result.is_err() {
            company.revision = expected;
        }
        result
    }

    pub async fn staff_key(&self, hash: &SecretHash) -> Result<Option<StaffKeyRecord>, StoreError> {
        self.get(&keys::staff_key(hash)).await
    }

    /// Records that a key was used (at most once per [`crate::web::auth::LAST_USED_RESOLUTION`]); a
    /// key revoked meanwhile is not brought back.
    pub async fn touch_staff_key(&self, hash: &SecretHash, at: OffsetDateTime) -> Result<(), StoreError> {
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, aws_sdk_dynamodb::types::AttributeValue::S(keys::staff_key(hash).pk))
            .key(keys::SK, aws_sdk_dynamodb::types::AttributeValue::S(keys::staff_key(hash).sk))
            .update_expression("SET last_used_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(
                ":at",
                aws_sdk_dynamodb::types::AttributeValue::S(crate::foundation::clock::rfc3339(at)),
            )
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(StoreError::Sdk(crate::foundation::problem::error_chain(&e))),
        }
    }

    /// All of a company's keys (listing items, every page; `last_used_at` comes from the key
    /// items, batch reads of at most 100 keys each).
    pub async fn staff_keys(&self, company: CompanyId) -> Result<Vec<StaffKeyRecord>, StoreError> {
        let (mut keys_found, mut cursor) = (Vec::new(), None);
        let listing = keys::staff_keys_of(company);
        loop {
            let page = self.query_gsi1::<StaffKeyRecord>(&listing, 100, cursor.as_deref(), false).await?;
            let wanted: Vec<super::Key> =
                page.items.iter().map(|k| keys::staff_key_by_stored_hash(&k.key_hash)).collect();
            if !wanted.is_empty() {
                let found = self.batch_get(&wanted).await?;
                for item in found.into_iter().flatten() {
                    keys_found.push(serde_dynamo::from_item::<_, StaffKeyRecord>(item)?);
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(keys_found),
            }
        }
    }

    /// The listing item of one key (strongly consistent).
    pub async fn staff_key_by_id(&self, company: CompanyId, id: KeyId) -> Result<Option<StaffKeyRecord>, StoreError> {
        self.get(&keys::staff_key_listing(company, id)).await
    }

    /// Lists a key made before keys were listed, at its first use: the key item learns its hash
    /// and the listing item is written, in one transaction that holds only while the key item is
    /// still the unlisted one (a revocation or another migration in between wins). From then on
    /// staff see the key in `GET /staff/keys` and can revoke it; idempotent.
    pub async fn list_unlisted_staff_key(&self, hash: &SecretHash, k: &StaffKeyRecord) -> Result<(), StoreError> {
        let listed = StaffKeyRecord { key_hash: hash.as_str().to_owned(), ..k.clone() };
        let values =
            super::Item::from([(":none".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(String::new()))]);
        // Counted once listed (a company that keeps no counter yet counts it with the others).
        let counted = self.get::<KeyCount>(&keys::staff_key_count(k.company_id)).await?.is_some();
        let mut writes = vec![
            Write::PutIf {
                record: Record::new(keys::staff_key(hash), "staff_key", &listed)?,
                condition: "attribute_exists(PK) AND (attribute_not_exists(key_hash) OR key_hash = :none)",
                values,
            },
            Write::Put(listed.listing()?),
        ];
        if counted {
            writes.push(count_keys(k.company_id, true));
        }
        let result = self.transact(writes).await;
        match result {
            Err(e) if e.is_condition_failure() => Ok(()),
            other => other,
        }
    }

    /// Revokes a key at once: both its items go in one transaction.
    /// (Both its items and one off the company's count, conditional on the listing item being
    /// there and another key being left: two revocations at once cannot take the last two.)
    pub async fn revoke_staff_key(&self, k: &StaffKeyRecord) -> Result<Revoked, StoreError> {
        self.ensure_key_count(k.company_id).await?;
        let result = self
            .transact(vec![
                Write::Delete(keys::staff_key_by_stored_hash(&k.key_hash)),
                Write::DeleteExisting(keys::staff_key_listing(k.company_id, k.key_id)),
                count_keys(k.company_id, false),
            ])
            .await;
        match result {
            Ok(()) => Ok(Revoked::Revoked),
            Err(StoreError::TransactionCanceled(reasons))
                if reasons.get(1).is_some_and(|r| r == "ConditionalCheckFailed") =>
            {
                Ok(Revoked::Gone)
            }
            Err(StoreError::TransactionCanceled(reasons))
                if reasons.get(2).is_some_and(|r| r == "ConditionalCheckFailed") =>
            {
                Ok(Revoked::LastKey)
            }
            Err(e) => Err(e),
        }
    }
}
