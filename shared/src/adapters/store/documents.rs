//! Document pointers (document id → inspection) and the audit trail.

use serde::{Deserialize, Serialize};

use super::{keys, Page, Record, Store, StoreError, Write};
use crate::domain::audit::AuditRecord;
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPointer {
    pub document_id: DocumentId,
    pub inspection_id: InspectionId,
}

impl DocumentPointer {
    /// The write that records it, for the transaction that adds the document to its inspection.
    pub fn write(
        company: CompanyId,
        document_id: DocumentId,
        inspection_id: InspectionId,
    ) -> Result<Write, StoreError> {
        let p = DocumentPointer { document_id, inspection_id };
        Ok(Write::Create(Record::new(keys::document_pointer(company, document_id), "document_pointer", &p)?))
    }
}

impl AuditRecord {
    /// Its write, expiring (DynamoDB TTL) after the company's `retention.audit_days`.
    pub fn write(&self, company: &crate::domain::company::Company) -> Result<Write, StoreError> {
        let until = self.at + time::Duration::days(i64::from(company.settings.retention.audit_days));
        let record = Record::new(keys::audit(company.id, self.inspection_id, self.id), "audit", self)?;
        Ok(Write::Create(record.expires_at(until.unix_timestamp())))
    }
}

impl Store {
    pub async fn document_pointer(
        &self,
        company: CompanyId,
        id: DocumentId,
    ) -> Result<Option<DocumentPointer>, StoreError> {
        self.get(&keys::document_pointer(company, id)).await
    }

    /// Like [`Store::modify_inspection`] for the inspection holding document `id` (404 when the
    /// company has no such document).
    pub async fn modify_document<T>(
        &self,
        company: CompanyId,
        id: DocumentId,
        mut change: impl FnMut(
            &crate::domain::company::Company,
            &mut crate::domain::inspection::Inspection,
        ) -> Result<(T, Vec<Write>), crate::ApiError>,
    ) -> Result<(crate::domain::inspection::Inspection, T), crate::ApiError> {
        let pointer = self.document_pointer(company, id).await?.ok_or(crate::ApiError::NotFound)?;
        self.modify_inspection(company, pointer.inspection_id, |c, i| {
            if i.document(id).is_none() {
                return Err(crate::ApiError::NotFound);
            }
            change(c, i)
        })
        .await
    }

    /// Records an audit entry.
    pub async fn record_audit(
        &self,
        company: &crate::domain::company::Company,
        record: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.write(record.write(company)?).await
    }

    /// Records what a person did through the portal; a document they opened also makes a
    /// `document.opened` webhook event (when an endpoint of `company` wants it), in the same
    /// transaction (staff previews are not openings).
    pub async fn record_person_audit(
        &self,
        company: &crate::domain::company::Company,
        record: &AuditRecord,
    ) -> Result<(), StoreError> {
        use crate::domain::audit::{Actor, AuditAction, Outcome};
        match (&record.action, &record.outcome, &record.actor, record.document_id) {
            (AuditAction::DocumentOpen, Outcome::Allowed, Actor::Person { person_id, role, .. }, Some(d))
                if company.hears("document.opened") =>
            {
                let data = serde_json::json!({ "inspection_id": record.inspection_id, "document_id": d,
                    "person_id": person_id, "role": role });
                let event = super::webhooks::WebhookEvent::new(company.id, "document.opened", data, record.at);
                self.transact(vec![record.write(company)?, event.create()?]).await
            }
            _ => self.write(record.write(company)?).await,
        }
    }

    /// An inspection's audit trail, newest first. One round trip per page.
    pub async fn audit_trail(
        &self,
        company: CompanyId,
        inspection: InspectionId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let pk = keys::inspection(company, inspection).pk;
        self.query_prefix(&pk, keys::AUDIT_PREFIX, limit, cursor, true).await
    }
}
