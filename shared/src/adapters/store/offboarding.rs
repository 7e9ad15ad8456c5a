//! A company leaving the platform: the export of everything the table holds for it, and the
//! record of its deletion (the tombstone, which is also the deletion's progress).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Item, Key, Record, Store, StoreError};
use crate::foundation::ids::CompanyId;

/// A platform admin's request for a company's whole export (`POST /admin/companies/{id}/export`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompanyExport {
    pub id: String,
    pub company_id: CompanyId,
    /// `pending`, `ready` or `failed`.
    pub state: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    /// The ZIP's S3 key, once made.
    #[serde(default)]
    pub zip_key: Option<String>,
    /// Items and PDFs in it.
    #[serde(default)]
    pub items: usize,
    #[serde(default)]
    pub documents: usize,
    #[serde(default)]
    pub failure: Option<String>,
}

/// Company exports waiting to be made (GSI1), by export id.
pub const COMPANY_EXPORTS: keys::Queue = keys::Queue { base: "COMPANYEXPORT", shards: 2 };

impl CompanyExport {
    pub fn record(&self) -> Result<Record, StoreError> {
        Ok(Record::new(keys::company_export(self.company_id, &self.id), "company_export", self)?.export_request(
            &COMPANY_EXPORTS,
            &self.id,
            &self.state,
            self.requested_at,
        ))
    }
}

/// What stays of a deleted company (`COMPANY#<c>` / `TOMBSTONE`): when the deletion was asked and
/// done, how it was confirmed, and — while it runs — where the job is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub company_id: CompanyId,
    /// `deleting`, then `deleted`.
    pub state: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// `export <id>` or `name`.
    pub confirmed_by: String,
    /// `items` (scanning the table), then `objects` (the bucket), then done.
    pub phase: String,
    /// Where the table scan goes on (its last evaluated key).
    #[serde(default)]
    pub cursor: Option<(String, String)>,
    #[serde(default)]
    pub items_deleted: usize,
    #[serde(default)]
    pub objects_deleted: usize,
    #[serde(default)]
    pub steps: usize,
    pub revision: u64,
}

/// Deletions in progress (GSI1), by company.
pub const DELETIONS: keys::Queue = keys::Queue { base: "OFFBOARD", shards: 2 };

impl Tombstone {
    pub fn record(&self) -> Result<Record, StoreError> {
        let r = Record::new(keys::tombstone(self.company_id), "company_tombstone", self)?;
        Ok(if self.state == "deleting" {
            r.queued(&DELETIONS, &self.company_id.to_string(), self.requested_at)
        } else {
            r
        })
    }
}

/// Whether `item` belongs to company `c`: its partition is the company's, or any string in it
/// (at any depth) names the company — the items keyed by a secret's hash (staff keys, links,
/// sessions, sign-in codes), by a provider's id (payment events, checkouts) or by an inspection
/// (its pointer) all record their company.
pub fn mentions(item: &Item, c: &str) -> bool {
    fn any(v: &AttributeValue, c: &str) -> bool {
        match v {
            AttributeValue::S(s) => s.contains(c),
            AttributeValue::Ss(ss) => ss.iter().any(|s| s.contains(c)),
            AttributeValue::L(l) => l.iter().any(|v| any(v, c)),
            AttributeValue::M(m) => m.iter().any(|(k, v)| k.contains(c) || any(v, c)),
            _ => false,
        }
    }
    item.values().any(|v| any(v, c))
}

impl Store {
    pub async fn company_export(&self, c: CompanyId, id: &str) -> Result<Option<CompanyExport>, StoreError> {
        self.get(&keys::company_export(c, id)).await
    }

    pub async fn pending_company_exports(
        &self,
        now: OffsetDateTime,
        limit: i32,
    ) -> Result<Vec<CompanyExport>, StoreError> {
        self.waiting_in(&COMPANY_EXPORTS, now, limit).await
    }

    pub async fn tombstone(&self, c: CompanyId) -> Result<Option<Tombstone>, StoreError> {
        self.get(&keys::tombstone(c)).await
    }

    pub async fn deletions(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<Tombstone>, StoreError> {
        self.waiting_in(&DELETIONS, now, limit).await
    }

    /// One page of a scan of the whole table (eventually consistent: half a read unit per 4 KB),
    /// from `start`; returns the items and where the next page starts (`None`: the end).
    pub async fn scan_page(
        &self,
        start: Option<&(String, String)>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<(String, String)>), StoreError> {
        let start = start.map(|(pk, sk)| super::key_attrs(&Key { pk: pk.clone(), sk: sk.clone() }));
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| Some((k.get(keys::PK)?.as_s().ok()?.clone(), k.get(keys::SK)?.as_s().ok()?.clone())));
        Ok((out.items.unwrap_or_default(), next))
    }
}
