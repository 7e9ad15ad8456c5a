//! Documents of an inspection (reports, invoice, agreement, attachments). Their metadata lives in
//! the inspection aggregate, so the portal view and the gate read it with everything else in one
//! item; the PDFs live in S3.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{optional_text, text, DomainError};
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId};

/// What staff send to register a document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    pub kind: DocumentKind,
    pub title: String,
    #[serde(default)]
    pub template_name: Option<String>,
    /// Schedule: publish automatically at this time (RFC 3339).
    #[serde(default)]
    pub publish_at: Option<String>,
}

/// What staff may change on a document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatch {
    pub title: Option<String>,
    pub template_name: Option<String>,
    /// WDI reports only.
    pub form_complete: Option<bool>,
    /// Schedule (RFC 3339), or `null` to recall a scheduled publication.
    #[serde(default, deserialize_with = "present")]
    pub publish_at: Option<Option<String>>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Parses a `publish_at`.
pub fn publish_time(value: &str) -> Result<OffsetDateTime, DomainError> {
    crate::foundation::clock::parse_rfc3339(value.trim())
        .ok_or_else(|| DomainError::Invalid("publish_at must be an RFC 3339 date-time".into()))
}

impl DocumentKind {
    /// Whether the company's auto-publish setting covers this kind (attachments never).
    pub fn auto_publishes(self, auto: &super::settings::AutoPublish) -> bool {
        match self {
            DocumentKind::InspectionReport | DocumentKind::WdiReport => auto.inspection_reports,
            DocumentKind::ServiceReport => auto.service_reports,
            DocumentKind::Proposal => auto.proposals,
            DocumentKind::Invoice => auto.invoices,
            DocumentKind::Agreement | DocumentKind::Attachment | DocumentKind::BuildingAttachment => false,
        }
    }
}

/// Where a document's PDF lives in the bucket.
pub fn object_key(company: CompanyId, inspection: InspectionId, document: DocumentId) -> String {
    format!("companies/{company}/inspections/{inspection}/documents/{document}.pdf")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    InspectionReport,
    WdiReport,
    ServiceReport,
    Proposal,
    Invoice,
    Agreement,
    Attachment,
    BuildingAttachment,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 8] = [
        DocumentKind::InspectionReport,
        DocumentKind::WdiReport,
        DocumentKind::ServiceReport,
        DocumentKind::Proposal,
        DocumentKind::Invoice,
        DocumentKind::Agreement,
        DocumentKind::Attachment,
        DocumentKind::BuildingAttachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::InspectionReport => "inspection_report",
            DocumentKind::WdiReport => "wdi_report",
            DocumentKind::ServiceReport => "service_report",
            DocumentKind::Proposal => "proposal",
            DocumentKind::Invoice => "invoice",
            DocumentKind::Agreement => "agreement",
            DocumentKind::Attachment => "attachment",
            DocumentKind::BuildingAttachment => "building_attachment",
        }
    }

    /// Reports: what "the inspection is published" means for collect-after-publish.
    pub fn is_report(self) -> bool {
        matches!(self, DocumentKind::InspectionReport | DocumentKind::WdiReport | DocumentKind::ServiceReport)
    }

    /// What the release requirements (payment, agreement) hold back: the reports and their
    /// attachments. The invoice, the agreement and proposals are what a client needs in order to
    /// pay and sign, so they are never locked behind paying and signing.
    pub fn is_gated_deliverable(self) -> bool {
        self.is_report() || matches!(self, DocumentKind::Attachment | DocumentKind::BuildingAttachment)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub kind: DocumentKind,
    pub title: String,
    /// Inspection reports: the report template's name ("Residential Inspection").
    #[serde(default)]
    pub template_name: Option<String>,
    #[serde(default)]
    pub published: bool,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    /// WDI reports: the state form is complete (a WDI report stays locked until it is).
    #[serde(default)]
    pub form_complete: bool,
    /// The PDF was uploaded and verified.
    #[serde(default)]
    pub uploaded: bool,
    /// Bumped each time a new PDF is verified (upload, rebuild): what "a published version" means.
    #[serde(default)]
    pub file_version: u32,
    /// The S3 version of the PDF that was verified: the one served, whatever is uploaded after.
    /// A completion of the same version again (S3 event, `/uploaded`, publish) changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_version: Option<String>,
    /// Publish as soon as the PDF is in (the company's auto-publish setting for this kind, taken
    /// when the document was registered).
    #[serde(default)]
    pub auto_publish: bool,
    /// Publish automatically at this time (scheduled publishing, or a hold window after submit).
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub publish_at: Option<OffsetDateTime>,
    /// File versions whose publication was already announced by email (never twice).
    #[serde(default)]
    pub notified_versions: Vec<u32>,
    /// Rendered by the product from the inspection's stored data (can be rebuilt), not uploaded.
    #[serde(default)]
    pub generated: bool,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    /// Why the scheduled publication keeps failing, and whether the schedule gave up on it
    /// (`parked`: it left the due index; a new `publish_at` or a manual publish re-arms it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_problem: Option<ScheduleProblem>,
}

/// A scheduled publication that failed (see [`crate::usecases::publishing::publish_due`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleProblem {
    pub reason: String,
    pub attempts: u32,
    pub parked: bool,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub last_attempt_at: OffsetDateTime,
}

impl Document {
    pub fn create(input: NewDocument, now: OffsetDateTime) -> Result<Document, DomainError> {
        Ok(Document {
            id: DocumentId::new(),
            kind: input.kind,
            title: text("title", &input.title, 200)?,
            template_name: optional_text("template_name", input.template_name.as_deref(), 200)?,
            published: false,
            published_at: None,
            form_complete: false,
            uploaded: false,
            file_version: 0,
            verified_version: None,
            auto_publish: false,
            publish_at: None,
            notified_versions: Vec::new(),
            generated: false,
            created_at: now,
            schedule_problem: None,
        })
    }

    pub fn apply(&mut self, patch: DocumentPatch) -> Result<(), DomainError> {
        if let Some(at) = &patch.publish_at {
            self.publish_at = at.as_deref().map(publish_time).transpose()?;
            self.schedule_problem = None;
        }
        if let Some(t) = patch.title {
            self.title = text("title", &t, 200)?;
        }
        if let Some(t) = patch.template_name {
            self.template_name = optional_text("template_name", Some(&t), 200)?;
        }
        if let Some(f) = patch.form_complete {
            if self.kind != DocumentKind::WdiReport {
                return Err(DomainError::Invalid("form_complete applies to WDI reports only".into()));
            }
            self.form_complete = f;
        }
        Ok(())
    }

    /// How the staff API shows a document.
    pub fn staff_view(&self, inspection: InspectionId) -> serde_json::Value {
        serde_json::json!({
            "document_id": self.id,
            "inspection_id": inspection,
            "kind": self.kind,
            "title": self.title,
            "display_name": self.display_name(),
            "template_name": self.template_name,
            "published": self.published,
            "published_at": self.published_at.map(crate::foundation::clock::rfc3339),
            "form_complete": self.form_complete,
            "uploaded": self.uploaded,
            "file_version": self.file_version,
            "auto_publish": self.auto_publish,
            "publish_at": self.publish_at.map(crate::foundation::clock::rfc3339),
            "generated": self.generated,
            "created_at": crate::foundation::clock::rfc3339(self.created_at),
            "schedule_problem": self.schedule_problem.as_ref().map(|p| serde_json::json!({
                "reason": p.reason,
                "attempts": p.attempts,
                "parked": p.parked,
                "last_attempt_at": crate::foundation::clock::rfc3339(p.last_attempt_at),
            })),
        })
    }

    /// The download's file name: what the portal calls it, as a PDF.
    pub fn file_name(&self) -> String {
        format!("{}.pdf", self.display_name())
    }

    /// What the portal calls it: an inspection report is "<template> Report", without doubling
    /// "Report" when the template name already ends with it.
    pub fn display_name(&self) -> String {
        match (self.kind, &self.template_name) {
            (DocumentKind::InspectionReport, Some(template)) => with_report_suffix(template),
            (DocumentKind::InspectionReport, None) => with_report_suffix(&self.title),
            _ => self.title.clone(),
        }
    }
}

fn with_report_suffix(name: &str) -> String {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    // "… Report" already says it; "Nonreport" is a different word.
    let says_report =
        lower.strip_suffix("report").is_some_and(|head| !head.chars().next_back().is_some_and(char::is_alphanumeric));
    if says_report {
        name.to_owned()
    } else {
        format!("{name} Report")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(template: Option<&str>, title: &str) -> Document {
        let input = NewDocument {
            kind: DocumentKind::InspectionReport,
            title: title.into(),
            template_name: template.map(str::to_owned),
            publish_at: None,
        };
        Document::create(input, crate::foundation::clock::now()).unwrap()
    }

    #[test]
    fn report_names_get_report_once() {
        assert_eq!(report(Some("Residential Inspection"), "x").display_name(), "Residential Inspection Report");
        assert_eq!(report(Some("Residential Inspection Report"), "x").display_name(), "Residential Inspection Report");
        assert_eq!(report(Some("Pre-listing REPORT"), "x").display_name(), "Pre-listing REPORT");
        assert_eq!(report(Some("Report"), "x").display_name(), "Report");
        assert_eq!(report(Some("Sewer Scope"), "x").display_name(), "Sewer Scope Report");
        assert_eq!(report(None, "Commercial Walkthrough").display_name(), "Commercial Walkthrough Report");
        assert_eq!(report(Some("Çé report"), "x").display_name(), "Çé report");
        assert_eq!(report(Some("Annual Nonreport"), "x").display_name(), "Annual Nonreport Report");
        let mut invoice = report(None, "Invoice #12");
        invoice.kind = DocumentKind::Invoice;
        assert_eq!(invoice.display_name(), "Invoice #12");
    }
}
