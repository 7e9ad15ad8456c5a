//! Companies and staff API keys.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::ids::{CompanyId, KeyId};
use crate::secrets::SecretHash;

/// What a staff API key's hash resolves to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaffKeyRecord {
    pub key_id: KeyId,
    pub company_id: CompanyId,
    #[serde(with = "crate::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Creates a company and its first staff key atomically.
    pub async fn create_company(
        &self,
        company: &Company,
        key_hash: &SecretHash,
        key: &StaffKeyRecord,
    ) -> Result<(), StoreError> {
        self.transact(vec![
            Write::Create(Record::new(keys::company(company.id), "company", company)?),
            Write::Create(Record::new(keys::staff_key(key_hash), "staff_key", key)?),
        ])
        .await
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
}
