//! The documents of an inspection: adding, publishing and unpublishing them.

use time::OffsetDateTime;

use super::Inspection;
use crate::domain::company::Company;
use crate::domain::document::{Document, NewDocument};
use crate::domain::DomainError;
use crate::foundation::ids::DocumentId;

pub const MAX_DOCUMENTS: usize = 100;

impl Inspection {
    /// Whether any report has been published ("the inspection is published").
    pub fn report_published(&self) -> bool {
        self.documents.iter().any(|d| d.published && d.kind.is_report())
    }

    pub fn document(&self, id: DocumentId) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == id)
    }

    pub fn document_mut(&mut self, id: DocumentId) -> Option<&mut Document> {
        self.documents.iter_mut().find(|d| d.id == id)
    }

    pub fn add_document(
        &mut self,
        input: NewDocument,
        company: &Company,
        now: OffsetDateTime,
    ) -> Result<&Document, DomainError> {
        if self.documents.len() >= MAX_DOCUMENTS {
            return Err(DomainError::Invalid(format!("at most {MAX_DOCUMENTS} documents per inspection")));
        }
        let publish_at = input.publish_at.as_deref().map(crate::domain::document::publish_time).transpose()?;
        let mut doc = Document::create(input, now)?;
        doc.auto_publish = doc.kind.auto_publishes(&company.settings.auto_publish);
        doc.publish_at = publish_at;
        self.documents.push(doc);
        self.updated_at = now;
        Ok(self.documents.last().expect("just pushed"))
    }

    /// Publishes a document. Its PDF must be uploaded first. Publishing what is published changes
    /// nothing and returns false.
    pub fn publish_document(&mut self, id: DocumentId, now: OffsetDateTime) -> Result<bool, DomainError> {
        let cancelled = self.is_cancelled();
        let doc = self.document_mut(id).ok_or_else(|| DomainError::Invalid("no such document".into()))?;
        if doc.published {
            return Ok(false);
        }
        if cancelled {
            return Err(DomainError::rule("cancelled", "the inspection is cancelled: reinstate it before publishing"));
        }
        if !doc.uploaded {
            return Err(DomainError::rule("not-uploaded", "upload the document's PDF before publishing it"));
        }
        doc.published = true;
        doc.published_at = Some(now);
        doc.publish_at = None;
        doc.schedule_problem = None;
        self.updated_at = now;
        Ok(true)
    }

    /// Unpublishes a document (it is hidden again at once). Returns false if it was not published.
    pub fn unpublish_document(&mut self, id: DocumentId, now: OffsetDateTime) -> Result<bool, DomainError> {
        let doc = self.document_mut(id).ok_or_else(|| DomainError::Invalid("no such document".into()))?;
        if !doc.published {
            return Ok(false);
        }
        doc.published = false;
        doc.published_at = None;
        self.updated_at = now;
        Ok(true)
    }
}
