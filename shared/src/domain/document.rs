//! Documents of an inspection (reports, invoice, agreement, attachments). Their metadata lives in
//! the inspection aggregate, so the portal view and the gate read it with everything else in one
//! item; the PDFs live in S3.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::DocumentId;

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
    #[serde(default, with = "crate::clock::serde_rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    /// WDI reports: the state form is complete (a WDI report stays locked until it is).
    #[serde(default)]
    pub form_complete: bool,
    /// The PDF was uploaded and verified.
    #[serde(default)]
    pub uploaded: bool,
    #[serde(with = "crate::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Document {
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
        Document {
            id: DocumentId::new(),
            kind: DocumentKind::InspectionReport,
            title: title.into(),
            template_name: template.map(str::to_owned),
            published: false,
            published_at: None,
            form_complete: false,
            uploaded: false,
            created_at: crate::clock::now(),
        }
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
