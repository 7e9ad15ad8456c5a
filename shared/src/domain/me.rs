//! "All my inspections" (`/me/{company}`): the list one address sees across a company's
//! inspections, built on every request from the list's index entries and the gate.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::company::Company;
use super::document::DocumentKind;
use super::gate::{gate, Facts, Viewer};
use super::inspection::{Requirements, Role};
use super::portal::{DocumentCard, DocumentState};
use crate::foundation::ids::{CompanyId, InspectionId, PersonId};
use crate::foundation::money::{Cents, Currency};

/// One published document as the list needs it (the gate's inputs, not its answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeDocument {
    pub id: crate::foundation::ids::DocumentId,
    pub kind: DocumentKind,
    pub title: String,
    pub form_complete: bool,
}

/// One inspection on an address's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeEntry {
    pub inspection_id: InspectionId,
    pub person_id: PersonId,
    pub role: Role,
    pub address: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub scheduled_at: OffsetDateTime,
    pub currency: Currency,
    pub invoice_total_cents: Cents,
    pub balance_cents: Cents,
    pub requirements: Requirements,
    pub agreement_signed: bool,
    pub documents: Vec<MeDocument>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeView {
    pub company_id: CompanyId,
    pub company_name: String,
    #[serde(skip)]
    pub time_zone: Option<String>,
    #[serde(skip)]
    pub brand: super::company::Brand,
    pub email: String,
    /// Upcoming first (soonest first), then past (latest first).
    pub inspections: Vec<MeInspection>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeInspection {
    pub inspection_id: InspectionId,
    pub role: Role,
    pub address: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub scheduled_at: OffsetDateTime,
    pub upcoming: bool,
    /// Opens this inspection's own portal (a fresh link of this person's, through the gate).
    pub portal_url: String,
    pub payment: MePayment,
    pub agreement: MeAgreement,
    /// Published documents this person may know of, each as the gate decides now.
    pub reports: Vec<DocumentCard>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MePayment {
    /// `paid`, `due`, or `none` (nothing to pay).
    pub state: &'static str,
    pub currency: Currency,
    pub invoice_total_cents: Cents,
    pub balance_cents: Cents,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeAgreement {
    pub required: bool,
    pub signed: bool,
}

impl MeView {
    pub fn build(company: &Company, email: &str, entries: Vec<MeEntry>, base: &str, now: OffsetDateTime) -> MeView {
        let mut inspections: Vec<MeInspection> = entries
            .into_iter()
            .map(|e| {
                let reports = e
                    .documents
                    .iter()
                    .filter_map(|d| {
                        let facts = Facts {
                            kind: d.kind,
                            published: true,
                            form_complete: d.form_complete,
                            require_payment: e.requirements.require_payment,
                            allow_deferred_payment: e.requirements.allow_deferred_payment,
                            collect_payment_after_publish: e.requirements.collect_payment_after_publish,
                            require_agreement: e.requirements.require_agreement,
                            balance: e.balance_cents,
                            agreement_signed: e.agreement_signed,
                            report_access: company.settings.report_access,
                        };
                        let (state, lock_reasons) = match gate(&facts, Viewer::Person(e.role)) {
                            super::gate::Access::Hidden => return None,
                            super::gate::Access::Available => (DocumentState::Available, Vec::new()),
                            super::gate::Access::Locked(r) => (DocumentState::Locked, r),
                        };
                        Some(DocumentCard { id: d.id, kind: d.kind, title: d.title.clone(), state, lock_reasons })
                    })
                    .collect();
                let state = if e.invoice_total_cents <= Cents::ZERO {
                    "none"
                } else if e.balance_cents > Cents::ZERO {
                    "due"
                } else {
                    "paid"
                };
                MeInspection {
                    inspection_id: e.inspection_id,
                    role: e.role,
                    address: e.address,
                    scheduled_at: e.scheduled_at,
                    upcoming: e.scheduled_at >= now,
                    portal_url: format!("{base}/me/{}/inspections/{}", company.id, e.inspection_id),
                    payment: MePayment {
                        state,
                        currency: e.currency,
                        invoice_total_cents: e.invoice_total_cents,
                        balance_cents: e.balance_cents,
                    },
                    agreement: MeAgreement { required: e.requirements.require_agreement, signed: e.agreement_signed },
                    reports,
                }
            })
            .collect();
        inspections.sort_by(|a, b| match (a.upcoming, b.upcoming) {
            (true, true) => a.scheduled_at.cmp(&b.scheduled_at),
            (false, false) => b.scheduled_at.cmp(&a.scheduled_at),
            (up, _) => {
                if up {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            }
        });
        MeView {
            company_id: company.id,
            company_name: company.name.clone(),
            time_zone: company.settings.time_zone.clone(),
            brand: company.brand(),
            email: email.to_owned(),
            inspections,
        }
    }
}
