//! Commercial customers (docs/product.md §7): buildings, contacts
//! with per-type view permissions and building associations, and deficiencies found in reports.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::document::DocumentKind;
pub use super::inspection::Severity;
use super::inspection::TokenRef;
use super::{optional_text, text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::{BuildingId, ContactId, DeficiencyId, DocumentId, InspectionId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Building {
    pub id: BuildingId,
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBuilding {
    pub name: String,
    #[serde(default)]
    pub address: String,
}

impl Building {
    pub fn create(input: NewBuilding, now: OffsetDateTime) -> Result<Building, DomainError> {
        Ok(Building {
            id: BuildingId::new(),
            name: text("name", &input.name, 200)?,
            address: optional_text("address", Some(&input.address), 500)?.unwrap_or_default(),
            created_at: now,
            revision: 0,
        })
    }
}

/// What a contact may see, per document type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Permissions {
    pub inspection_reports: bool,
    pub service_reports: bool,
    pub proposals: bool,
    pub invoices: bool,
    pub attachments: bool,
}

impl Permissions {
    pub fn allows(&self, kind: DocumentKind) -> bool {
        match kind {
            DocumentKind::InspectionReport | DocumentKind::WdiReport => self.inspection_reports,
            DocumentKind::ServiceReport => self.service_reports,
            DocumentKind::Proposal => self.proposals,
            DocumentKind::Invoice => self.invoices,
            DocumentKind::Attachment | DocumentKind::BuildingAttachment => self.attachments,
            DocumentKind::Agreement => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    NotEnrolled,
    Invited,
    Enrolled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub email: Email,
    pub permissions: Permissions,
    pub building_ids: Vec<BuildingId>,
    pub status: EnrollmentStatus,
    #[serde(default)]
    pub tokens: Vec<TokenRef>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: u64,
}

pub const MAX_BUILDINGS_PER_CONTACT: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub name: String,
    pub email: Email,
    #[serde(default)]
    pub permissions: Permissions,
    #[serde(default)]
    pub building_ids: Vec<BuildingId>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub permissions: Option<Permissions>,
    pub building_ids: Option<Vec<BuildingId>>,
}

fn buildings(mut ids: Vec<BuildingId>) -> Result<Vec<BuildingId>, DomainError> {
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_BUILDINGS_PER_CONTACT {
        return Err(DomainError::Invalid(format!("at most {MAX_BUILDINGS_PER_CONTACT} buildings per contact")));
    }
    Ok(ids)
}

impl Contact {
    pub fn create(input: ContactInput, now: OffsetDateTime) -> Result<Contact, DomainError> {
        Ok(Contact {
            id: ContactId::new(),
            name: text("name", &input.name, 200)?,
            email: input.email,
            permissions: input.permissions,
            building_ids: buildings(input.building_ids)?,
            status: EnrollmentStatus::NotEnrolled,
            tokens: Vec::new(),
            created_at: now,
            revision: 0,
        })
    }

    pub fn apply(&mut self, patch: ContactPatch) -> Result<(), DomainError> {
        if let Some(n) = patch.name {
            self.name = text("name", &n, 200)?;
        }
        if let Some(p) = patch.permissions {
            self.permissions = p;
        }
        if let Some(b) = patch.building_ids {
            self.building_ids = buildings(b)?;
        }
        Ok(())
    }

    pub fn associated(&self, building: BuildingId) -> bool {
        self.building_ids.binary_search(&building).is_ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeficiencyStatus {
    Unresolved,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deficiency {
    pub id: DeficiencyId,
    pub building_id: BuildingId,
    /// The report it was found in, and that report's inspection.
    pub report_id: DocumentId,
    pub inspection_id: InspectionId,
    pub description: String,
    pub severity: Severity,
    #[serde(default)]
    pub location: String,
    pub status: DeficiencyStatus,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Mirrors whether its report is published: only then is it in the feed index.
    pub visible: bool,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeficiency {
    pub report_id: DocumentId,
    pub description: String,
    pub severity: Severity,
    #[serde(default)]
    pub location: String,
}

impl Deficiency {
    pub fn create(
        building: BuildingId,
        inspection: InspectionId,
        input: NewDeficiency,
        report_published: bool,
        now: OffsetDateTime,
    ) -> Result<Deficiency, DomainError> {
        Ok(Deficiency {
            id: DeficiencyId::new_monotonic(),
            building_id: building,
            report_id: input.report_id,
            inspection_id: inspection,
            description: text("description", &input.description, 5000)?,
            severity: input.severity,
            location: optional_text("location", Some(&input.location), 500)?.unwrap_or_default(),
            status: DeficiencyStatus::Unresolved,
            resolved_at: None,
            visible: report_published,
            created_at: now,
            revision: 0,
        })
    }

    /// Resolve (`true`) or reopen (`false`); returns whether anything changed.
    pub fn set_resolved(&mut self, resolved: bool, now: OffsetDateTime) -> bool {
        let status = if resolved { DeficiencyStatus::Resolved } else { DeficiencyStatus::Unresolved };
        if self.status == status {
            return false;
        }
        self.status = status;
        self.resolved_at = resolved.then_some(now);
        true
    }
}
