//! The audit trail: every document open (allowed or refused), staff preview and resend, with who
//! did it and through which token id (never the token).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::gate::{Access, LockReason};
use super::inspection::Role;
use crate::foundation::ids::{AuditId, ContactId, DocumentId, InspectionId, KeyId, PersonId, TokenId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A client or agent through their tokenized link.
    Person { person_id: PersonId, role: Role, token_id: TokenId },
    /// Staff, by API key (and the person the key was made for); `as_person` when previewing what
    /// that person sees.
    Staff {
        key_id: KeyId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_name: Option<String>,
        as_person: Option<PersonId>,
    },
    /// A building contact through their customer-portal link.
    Contact { contact_id: ContactId, token_id: TokenId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    DocumentOpen,
    PortalPreview,
    DocumentPreview,
    DocumentResend,
    CustomerPreview,
    PersonRemoved,
    LinkRevoked,
    LinkReissued,
    QuoteRequested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Locked,
    NotFound,
    Sent,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: AuditId,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub at: OffsetDateTime,
    pub inspection_id: InspectionId,
    pub action: AuditAction,
    #[serde(default)]
    pub document_id: Option<DocumentId>,
    pub outcome: Outcome,
    /// Lock reason codes when the outcome is `locked`.
    #[serde(default)]
    pub lock_reasons: Vec<String>,
    pub actor: Actor,
}

impl AuditRecord {
    pub fn new(
        inspection_id: InspectionId,
        action: AuditAction,
        actor: Actor,
        outcome: Outcome,
        at: OffsetDateTime,
    ) -> Self {
        AuditRecord {
            id: AuditId::new_monotonic(),
            at,
            inspection_id,
            action,
            document_id: None,
            outcome,
            lock_reasons: Vec::new(),
            actor,
        }
    }

    /// A document open (or preview) and what the gate said.
    pub fn document(
        inspection_id: InspectionId,
        action: AuditAction,
        actor: Actor,
        document_id: DocumentId,
        access: &Access,
        at: OffsetDateTime,
    ) -> Self {
        let (outcome, reasons): (Outcome, &[LockReason]) = match access {
            Access::Available => (Outcome::Allowed, &[]),
            Access::Locked(r) => (Outcome::Locked, r),
            Access::Hidden => (Outcome::NotFound, &[]),
        };
        AuditRecord {
            document_id: Some(document_id),
            lock_reasons: reasons.iter().map(|r| r.code().to_owned()).collect(),
            ..AuditRecord::new(inspection_id, action, actor, outcome, at)
        }
    }
}

/// An audit entry of a customer contact's portal (opens of building documents, staff previews).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactAudit {
    pub id: AuditId,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub at: OffsetDateTime,
    pub contact_id: ContactId,
    pub action: AuditAction,
    #[serde(default)]
    pub document_id: Option<DocumentId>,
    pub outcome: Outcome,
    pub actor: Actor,
}

impl ContactAudit {
    pub fn new(
        contact_id: ContactId,
        action: AuditAction,
        actor: Actor,
        document_id: Option<DocumentId>,
        outcome: Outcome,
        at: OffsetDateTime,
    ) -> Self {
        ContactAudit { id: AuditId::new_monotonic(), at, contact_id, action, document_id, outcome, actor }
    }
}
