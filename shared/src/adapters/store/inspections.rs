//! Inspections: the aggregate item, its tokens, and the per-company listing on GSI1.

use serde::{Deserialize, Serialize};

use super::{keys, Page, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::Inspection;
use crate::foundation::ids::{CompanyId, InspectionId};

fn inspection_record(i: &Inspection) -> Result<Record, StoreError> {
    Ok(Record::new(keys::inspection(i.company_id, i.id), "inspection", i)?.with_gsi1(
        keys::inspections_of(i.company_id),
        keys::inspection_sort(&crate::foundation::clock::rfc3339(i.scheduled_at), i.id),
    ))
}

/// The inspection's reminder schedule item (`REMINDER`, in the sparse `DUE` index's `REMIND`
/// partition at the next reminder's instant), when that instant changed since the last save: the
/// job finds the inspections with a reminder due through that index, never by a scan. Records the
/// new instant on the aggregate.
fn reminder_writes(inspection: &mut Inspection, company: &Company) -> Result<Vec<Write>, StoreError> {
    let next = crate::domain::reminders::next_due(company, inspection);
    if next == inspection.reminder_due {
        return Ok(Vec::new());
    }
    inspection.reminder_due = next;
    let key = keys::reminder(inspection.company_id, inspection.id);
    Ok(vec![match next {
        Some(at) => {
            let sk = keys::reminder_sort(&crate::foundation::clock::rfc3339(at), inspection.company_id, inspection.id);
            Write::Put(Record::new(key, "reminder_schedule", &serde_json::json!({}))?.with_due_in(&keys::REMIND, sk))
        }
        None => Write::Delete(key),
    }])
}

/// `INSPECTION#<id>` → its company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionPointer {
    pub inspection_id: InspectionId,
    pub company_id: CompanyId,
}

/// One row of a company's inspection list (projected from the aggregate).
#[derive(Debug, Clone, Deserialize)]
pub struct InspectionSummary {
    pub id: InspectionId,
    pub address: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub scheduled_at: time::OffsetDateTime,
}

impl Store {
    /// Creates an inspection, its pointer and its people's tokens (`also`) in one transaction.
    /// (The list entries and events it makes are written with it, and recorded on `inspection`.)
    pub async fn create_inspection(
        &self,
        inspection: &mut Inspection,
        company: &Company,
        also: Vec<Write>,
    ) -> Result<(), StoreError> {
        let pointer = InspectionPointer { inspection_id: inspection.id, company_id: inspection.company_id };
        let mut listed = super::me::person_index_writes(inspection)?;
        listed.extend(super::privacy::privacy_index_writes(inspection)?);
        listed.extend(super::webhooks::inspection_event_writes(inspection, company, self.clock().now())?);
        listed.extend(reminder_writes(inspection, company)?);
        let mut writes = vec![
            Write::Create(inspection_record(inspection)?),
            Write::Create(Record::new(keys::inspection_pointer(inspection.id), "inspection_pointer", &pointer)?),
        ];
        writes.extend(listed);
        writes.extend(also);
        self.transact(writes).await
    }

    pub async fn inspection_pointer(&self, id: InspectionId) -> Result<Option<InspectionPointer>, StoreError> {
        self.get(&keys::inspection_pointer(id)).await
    }

    pub async fn inspection(&self, company: CompanyId, id: InspectionId) -> Result<Option<Inspection>, StoreError> {
        self.get(&keys::inspection(company, id)).await
    }

    /// Saves an inspection read at `inspection.revision`, bumping it; fails if someone saved in
    /// between (the caller re-reads and retries, or reports a conflict).
    pub async fn save_inspection(&self, inspection: &mut Inspection, company: &Company) -> Result<(), StoreError> {
        self.save_inspection_with(inspection, company, Vec::new()).await
    }

    /// Saves the inspection and `also` in one transaction (all or nothing), with the webhook
    /// events it makes that `company`'s endpoints want.
    pub async fn save_inspection_with(
        &self,
        inspection: &mut Inspection,
        company: &Company,
        also: Vec<Write>,
    ) -> Result<(), StoreError> {
        let expected = inspection.revision;
        let (listed_before, digest_before) = (inspection.me_listed.clone(), inspection.webhook_digest.clone());
        let privacy_before = inspection.privacy_listed.clone();
        let reminder_before = inspection.reminder_due;
        inspection.revision += 1;
        let derived = super::me::person_index_writes(inspection).and_then(|mut writes| {
            writes.extend(super::privacy::privacy_index_writes(inspection)?);
            writes.extend(super::webhooks::inspection_event_writes(inspection, company, self.clock().now())?);
            writes.extend(reminder_writes(inspection, company)?);
            Ok((inspection_record(inspection)?, writes))
        });
        let result = match derived {
            Ok((record, listed)) => {
                let mut writes = vec![Write::Replace { record, expected_revision: expected }];
                writes.extend(listed);
                writes.extend(also);
                self.transact(writes).await
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            inspection.revision = expected;
            inspection.me_listed = listed_before;
            inspection.privacy_listed = privacy_before;
            inspection.webhook_digest = digest_before;
            inspection.reminder_due = reminder_before;
        }
        result
    }

    /// Read (the inspection with its company, one batched read), change, save with the revision
    /// read (plus the change's other writes, in the same transaction); if someone saved in between,
    /// re-read and retry (a few times, then 409).
    pub async fn modify_inspection<T>(
        &self,
        company: CompanyId,
        id: InspectionId,
        mut change: impl FnMut(&Company, &mut Inspection) -> Result<(T, Vec<Write>), crate::ApiError>,
    ) -> Result<(Inspection, T), crate::ApiError> {
        let mut attempts = 0;
        loop {
            // The company comes in the same round trip: most changes need its settings.
            let (owner, mut inspection) =
                self.company_and_inspection(company, id).await?.ok_or(crate::ApiError::NotFound)?;
            let (out, also) = change(&owner, &mut inspection)?;
            match self.save_inspection_with(&mut inspection, &owner, also).await {
                Ok(()) => return Ok((inspection, out)),
                Err(e) if e.is_condition_failure() && attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The company and the inspection together, in one round trip.
    pub async fn company_and_inspection(
        &self,
        company: CompanyId,
        id: InspectionId,
    ) -> Result<Option<(Company, Inspection)>, StoreError> {
        let mut found = self.batch_get(&[keys::company(company), keys::inspection(company, id)]).await?.into_iter();
        match (found.next().flatten(), found.next().flatten()) {
            (Some(c), Some(i)) => Ok(Some((serde_dynamo::from_item(c)?, serde_dynamo::from_item(i)?))),
            _ => Ok(None),
        }
    }

    /// A company's inspections, soonest first. One round trip per page.
    pub async fn list_inspections(
        &self,
        company: CompanyId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<InspectionSummary>, StoreError> {
        self.query_gsi1(&keys::inspections_of(company), limit, cursor, false).await
    }
}
