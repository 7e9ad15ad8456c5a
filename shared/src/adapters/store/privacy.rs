//! Personal data by address: the privacy index (every inspection and person an address ever
//! appeared as, per company, add-only: what was sent to them and recorded about them stays after
//! they leave an inspection) and the requests staff make about an address (exports).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::inspection::{Inspection, Role};
use crate::foundation::ids::{CompanyId, InspectionId, PersonId};

/// One (address, person) of an inspection: `COMPANY#<c>#PRIVACY#<sha256(address)[..16]>` /
/// `INSPECTION#<i>#<person>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivacyEntry {
    pub inspection_id: InspectionId,
    pub person_id: PersonId,
    pub role: Role,
}

/// The index entries an inspection's save adds: one per (address, person) not indexed before
/// (`privacy_listed` on the aggregate remembers which; never removed). Usually none.
pub(crate) fn privacy_index_writes(i: &mut Inspection) -> Result<Vec<Write>, StoreError> {
    let mut writes = Vec::new();
    for p in &i.people {
        let Some(email) = &p.email else { continue };
        let part = keys::email_part(email);
        let listed = format!("{part}#{}", p.id);
        if i.privacy_listed.contains(&listed) {
            continue;
        }
        let entry = PrivacyEntry { inspection_id: i.id, person_id: p.id, role: p.role };
        writes.push(Write::Put(Record::new(
            keys::privacy_entry(i.company_id, &part, i.id, p.id),
            "privacy_entry",
            &entry,
        )?));
        i.privacy_listed.push(listed);
    }
    Ok(writes)
}

/// How many entries [`privacy_index_writes`] would add (a transaction's budget).
pub fn privacy_index_pending(i: &Inspection) -> usize {
    i.people
        .iter()
        .filter_map(|p| Some(format!("{}#{}", keys::email_part(p.email.as_ref()?), p.id)))
        .filter(|l| !i.privacy_listed.contains(l))
        .count()
}

/// A staff request for a copy of what the company holds about an address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivacyExport {
    pub id: String,
    pub company_id: CompanyId,
    /// The address asked about, until the export is made (then only in the files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<crate::foundation::email::Email>,
    /// `pending`, `ready` or `failed`.
    pub state: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    /// The S3 keys of the JSON document and its readable summary.
    #[serde(default)]
    pub json_key: Option<String>,
    #[serde(default)]
    pub html_key: Option<String>,
    /// Which staff key asked.
    pub requested_by: String,
    #[serde(default)]
    pub failure: Option<String>,
}

/// Exports waiting to be made (GSI1), by export id.
pub const EXPORTS: keys::Queue = keys::Queue { base: "PRIVACYEXPORT", shards: 2 };

impl PrivacyExport {
    pub fn record(&self) -> Result<Record, StoreError> {
        Ok(Record::new(keys::privacy_export(self.company_id, &self.id), "privacy_export", self)?.export_request(
            &EXPORTS,
            &self.id,
            &self.state,
            self.requested_at,
        ))
    }
}

impl Store {
    /// Every (inspection, person) an address appeared as in the company. One query per page.
    pub async fn privacy_entries(
        &self,
        c: CompanyId,
        email: &crate::foundation::email::Email,
    ) -> Result<Vec<PrivacyEntry>, StoreError> {
        let pk = keys::privacy_entries(c, &keys::email_part(email));
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.query_prefix::<PrivacyEntry>(&pk, "", 100, cursor.as_deref(), false).await?;
            out.extend(page.items);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(out);
            }
        }
    }

    pub async fn privacy_export(&self, c: CompanyId, id: &str) -> Result<Option<PrivacyExport>, StoreError> {
        self.get(&keys::privacy_export(c, id)).await
    }

    /// Exports waiting to be made, oldest first.
    pub async fn pending_exports(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<PrivacyExport>, StoreError> {
        self.waiting_in(&EXPORTS, now, limit).await
    }
}

/// A staff request to erase what the company holds about an address, done by the job in bounded
/// steps (`phase`, and where in it); `changed` counts what it changed, by kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivacyErasure {
    pub id: String,
    pub company_id: CompanyId,
    /// The address, until the erasure is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<crate::foundation::email::Email>,
    /// The pseudonym that replaces the name and address (`erased-<hash prefix>`).
    pub pseudonym: String,
    pub reason: String,
    /// `pending` until done, then `done`.
    pub state: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub done_at: Option<OffsetDateTime>,
    pub requested_by: String,
    #[serde(default)]
    pub phase: u8,
    /// What the person's name and phone were (kept only while the erasure runs: the later
    /// phases look for them in texts), and the IPs recorded for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needles: Vec<String>,
    #[serde(default)]
    pub changed: std::collections::BTreeMap<String, usize>,
    pub revision: u64,
}

/// Erasures to do (GSI1), by id.
pub const ERASURES: keys::Queue = keys::Queue { base: "PRIVACYERASE", shards: 2 };

impl PrivacyErasure {
    pub fn record(&self) -> Result<Record, StoreError> {
        let r = Record::new(keys::privacy_erasure(self.company_id, &self.id), "privacy_erasure", self)?;
        Ok(if self.state == "pending" { r.queued(&ERASURES, &self.id, self.requested_at) } else { r })
    }
}

impl Store {
    pub async fn privacy_erasure(&self, c: CompanyId, id: &str) -> Result<Option<PrivacyErasure>, StoreError> {
        self.get(&keys::privacy_erasure(c, id)).await
    }

    pub async fn pending_erasures(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<PrivacyErasure>, StoreError> {
        self.waiting_in(&ERASURES, now, limit).await
    }
}
