//! Report gating: whether a viewer may open a document, as a pure function of state, evaluated
//! on every request and never stored (docs/product.md §4).
//!
//! - Staff always pass.
//! - Listing agents and additional people see order details only (no documents) unless the company
//!   allows them reports; clients, buyer's agents and the inspector see documents.
//! - Unpublished documents are hidden (a 404, never a "locked").
//! - A WDI report is locked until its form is complete.
//! - Reports and attachments (see [`DocumentKind::is_gated_deliverable`]) are locked while the
//!   payment requirement is unmet (balance > 0, unless deferred payment is allowed and the company
//!   does not collect after publishing) and while the agreement requirement is unmet (the current
//!   version not signed by every client). A locked document carries every reason that applies.

use serde::Serialize;

use super::company::Company;
use super::document::{Document, DocumentKind};
use super::inspection::{Inspection, Role};
use super::settings::ReportAccess;
use crate::foundation::money::Cents;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Staff,
    Person(Role),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum LockReason {
    PaymentRequired { amount_due_cents: Cents },
    AgreementUnsigned,
    FormIncomplete,
}

impl LockReason {
    /// What the person must do (or wait for), in words: "Payment required: pay the balance of
    /// $450.00".
    pub fn describe(&self, currency: crate::foundation::money::Currency) -> String {
        match self {
            LockReason::PaymentRequired { amount_due_cents } => {
                format!(
                    "Payment required: pay the balance of {}",
                    crate::foundation::money::format(*amount_due_cents, currency)
                )
            }
            LockReason::AgreementUnsigned => "Agreement unsigned: every client must sign the current agreement".into(),
            LockReason::FormIncomplete => "The inspector has not completed the WDI form yet".into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            LockReason::PaymentRequired { .. } => "payment_required",
            LockReason::AgreementUnsigned => "agreement_unsigned",
            LockReason::FormIncomplete => "form_incomplete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Not for this viewer to know about: unpublished, or the role sees no documents (404).
    Hidden,
    Available,
    /// Listed, but cannot be opened yet, for these reasons (403).
    Locked(Vec<LockReason>),
}

/// Everything the gate depends on, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub kind: DocumentKind,
    pub published: bool,
    pub form_complete: bool,
    pub require_payment: bool,
    pub allow_deferred_payment: bool,
    pub collect_payment_after_publish: bool,
    pub require_agreement: bool,
    pub balance: Cents,
    pub agreement_signed: bool,
    pub report_access: ReportAccess,
}

impl Facts {
    pub fn of(document: &Document, inspection: &Inspection, company: &Company) -> Facts {
        let r = inspection.requirements;
        Facts {
            kind: document.kind,
            published: document.published,
            form_complete: document.form_complete,
            require_payment: r.require_payment,
            allow_deferred_payment: r.allow_deferred_payment,
            collect_payment_after_publish: r.collect_payment_after_publish,
            require_agreement: r.require_agreement,
            balance: inspection.balance(),
            agreement_signed: inspection.agreement_signed(),
            report_access: company.settings.report_access,
        }
    }
}

/// Whether a role sees documents at all.
pub fn sees_documents(role: Role, access: ReportAccess) -> bool {
    match role {
        Role::Client | Role::BuyerAgent | Role::Inspector => true,
        Role::ListingAgent => access.listing_agent,
        Role::Additional => access.additional,
    }
}

pub fn gate(f: &Facts, viewer: Viewer) -> Access {
    let role = match viewer {
        Viewer::Staff => return Access::Available,
        Viewer::Person(role) => role,
    };
    if !sees_documents(role, f.report_access) || !f.published {
        return Access::Hidden;
    }
    let mut reasons = Vec::new();
    if f.kind == DocumentKind::WdiReport && !f.form_complete {
        reasons.push(LockReason::FormIncomplete);
    }
    if f.kind.is_gated_deliverable() {
        // Collect-after-publish forces payment and rules out deferral, whatever else was stored.
        let payment_required = f.require_payment || f.collect_payment_after_publish;
        let deferred = f.allow_deferred_payment && !f.collect_payment_after_publish;
        if payment_required && f.balance > Cents::ZERO && !deferred {
            reasons.push(LockReason::PaymentRequired { amount_due_cents: f.balance });
        }
        if f.require_agreement && !f.agreement_signed {
            reasons.push(LockReason::AgreementUnsigned);
        }
    }
    if reasons.is_empty() {
        Access::Available
    } else {
        Access::Locked(reasons)
    }
}

/// The gate for one document of an inspection.
pub fn decide(document: &Document, inspection: &Inspection, company: &Company, viewer: Viewer) -> Access {
    gate(&Facts::of(document, inspection, company), viewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 5] = [Role::Client, Role::BuyerAgent, Role::ListingAgent, Role::Inspector, Role::Additional];

    fn all_facts() -> Vec<Facts> {
        let mut out = Vec::new();
        for kind in DocumentKind::ALL {
            for bits in 0u32..(1 << 10) {
                let b = |n: u32| bits & (1 << n) != 0;
                out.push(Facts {
                    kind,
                    published: b(0),
                    form_complete: b(1),
                    require_payment: b(2),
                    allow_deferred_payment: b(3),
                    collect_payment_after_publish: b(4),
                    require_agreement: b(5),
                    balance: Cents::signed(if b(6) { 12_345 } else { 0 }),
                    agreement_signed: b(7),
                    report_access: ReportAccess { listing_agent: b(8), additional: b(9) },
                });
            }
        }
        out
    }

    /// The full truth table: 8 kinds × 2^10 states × 6 viewers, each rule checked on its own.
    #[test]
    fn every_combination_of_inputs() {
        let mut counts = [0usize; 3];
        for f in all_facts() {
            assert_eq!(gate(&f, Viewer::Staff), Access::Available, "staff always pass: {f:?}");
            for role in ROLES {
                let access = gate(&f, Viewer::Person(role));
                let role_sees = match role {
                    Role::ListingAgent => f.report_access.listing_agent,
                    Role::Additional => f.report_access.additional,
                    _ => true,
                };
                if !f.published || !role_sees {
                    assert_eq!(access, Access::Hidden, "{role:?} {f:?}");
                    counts[0] += 1;
                    continue;
                }
                let reasons = match &access {
                    Access::Available => {
                        counts[1] += 1;
                        vec![]
                    }
                    Access::Locked(r) => {
                        counts[2] += 1;
                        assert!(!r.is_empty());
                        r.clone()
                    }
                    Access::Hidden => panic!("published document hidden from {role:?}: {f:?}"),
                };
                let gated = matches!(
                    f.kind,
                    DocumentKind::InspectionReport
                        | DocumentKind::WdiReport
                        | DocumentKind::ServiceReport
                        | DocumentKind::Attachment
                        | DocumentKind::BuildingAttachment
                );
                let owes = f.balance.get() > 0;
                let may_defer = f.allow_deferred_payment && !f.collect_payment_after_publish;
                let expect_payment =
                    gated && owes && (f.require_payment || f.collect_payment_after_publish) && !may_defer;
                let expect_agreement = gated && f.require_agreement && !f.agreement_signed;
                let expect_form = f.kind == DocumentKind::WdiReport && !f.form_complete;
                assert_eq!(
                    reasons.contains(&LockReason::PaymentRequired { amount_due_cents: f.balance }),
                    expect_payment,
                    "payment, {role:?} {f:?}"
                );
                assert_eq!(reasons.contains(&LockReason::AgreementUnsigned), expect_agreement, "agreement {f:?}");
                assert_eq!(reasons.contains(&LockReason::FormIncomplete), expect_form, "form {f:?}");
                assert_eq!(
                    reasons.len(),
                    usize::from(expect_payment) + usize::from(expect_agreement) + usize::from(expect_form)
                );
            }
        }
        assert!(counts.iter().all(|&c| c > 1000), "every outcome is exercised: {counts:?}");
    }

    /// Cases written out one by one from docs/product.md §4 (and, for which kinds are
    /// gated, the product rule that an invoice, a proposal or the agreement itself must stay
    /// readable so the client can act on it). Each row: what changes from "a published inspection
    /// report, everything required and met, opened by the client" and what must come out.
    #[test]
    fn hand_written_cases_from_the_spec() {
        use DocumentKind::*;
        use LockReason::*;
        const OWED: i64 = 45_000;
        let base = Facts {
            kind: InspectionReport,
            published: true,
            form_complete: true,
            require_payment: true,
            allow_deferred_payment: false,
            collect_payment_after_publish: false,
            require_agreement: true,
            balance: Cents::ZERO,
            agreement_signed: true,
            report_access: ReportAccess { listing_agent: false, additional: false },
        };
        let owes = Facts { balance: Cents::signed(OWED), ..base };
        let due = PaymentRequired { amount_due_cents: Cents::signed(OWED) };
        let client = Viewer::Person(Role::Client);
        let cases: Vec<(&str, Facts, Viewer, Access)> = vec![
            ("paid and signed: the client opens it", base, client, Access::Available),
            ("the buyer's agent too", base, Viewer::Person(Role::BuyerAgent), Access::Available),
            ("the inspector too", base, Viewer::Person(Role::Inspector), Access::Available),
            ("unpublished: hidden, not locked", Facts { published: false, ..owes }, client, Access::Hidden),
            ("a balance due locks it, with the amount", owes, client, Access::Locked(vec![due])),
            (
                "the agreement unsigned locks it",
                Facts { agreement_signed: false, ..base },
                client,
                Access::Locked(vec![AgreementUnsigned]),
            ),
            (
                "both: every reason",
                Facts { agreement_signed: false, ..owes },
                client,
                Access::Locked(vec![due, AgreementUnsigned]),
            ),
            (
                "payment not required: a balance does not lock",
                Facts { require_payment: false, ..owes },
                client,
                Access::Available,
            ),
            (
                "deferred payment allowed: a balance does not lock",
                Facts { allow_deferred_payment: true, ..owes },
                client,
                Access::Available,
            ),
            (
                "collect after publish overrides deferral",
                Facts { allow_deferred_payment: true, collect_payment_after_publish: true, ..owes },
                client,
                Access::Locked(vec![due]),
            ),
            (
                "collect after publish requires payment even if not required",
                Facts { require_payment: false, collect_payment_after_publish: true, ..owes },
                client,
                Access::Locked(vec![due]),
            ),
            (
                "agreement not required: unsigned does not lock",
                Facts { require_agreement: false, agreement_signed: false, ..base },
                client,
                Access::Available,
            ),
            (
                "a refund reopened a balance: locked again",
                Facts { balance: Cents::signed(5_000), ..base },
                client,
                Access::Locked(vec![PaymentRequired { amount_due_cents: Cents::signed(5_000) }]),
            ),
            (
                "a credit (negative balance) owes nothing",
                Facts { balance: Cents::signed(-100), ..base },
                client,
                Access::Available,
            ),
            (
                "a WDI report waits for its form",
                Facts { kind: WdiReport, form_complete: false, ..base },
                client,
                Access::Locked(vec![FormIncomplete]),
            ),
            (
                "a WDI report with its form, paid and signed",
                Facts { kind: WdiReport, ..base },
                client,
                Access::Available,
            ),
            (
                "a WDI report: form, payment and agreement all reported",
                Facts { kind: WdiReport, form_complete: false, agreement_signed: false, ..owes },
                client,
                Access::Locked(vec![FormIncomplete, due, AgreementUnsigned]),
            ),
            (
                "a service report is gated like a report",
                Facts { kind: ServiceReport, ..owes },
                client,
                Access::Locked(vec![due]),
            ),
            (
                "an attachment is gated like a report",
                Facts { kind: Attachment, ..owes },
                client,
                Access::Locked(vec![due]),
            ),
            (
                "an invoice stays readable while owed",
                Facts { kind: Invoice, agreement_signed: false, ..owes },
                client,
                Access::Available,
            ),
            (
                "a proposal stays readable while owed",
                Facts { kind: Proposal, agreement_signed: false, ..owes },
                client,
                Access::Available,
            ),
            (
                "the agreement itself stays readable unsigned",
                Facts { kind: Agreement, agreement_signed: false, ..owes },
                client,
                Access::Available,
            ),
            ("a listing agent sees order details only", base, Viewer::Person(Role::ListingAgent), Access::Hidden),
            ("an additional person sees order details only", base, Viewer::Person(Role::Additional), Access::Hidden),
            (
                "unless the company allows listing agents reports",
                Facts { report_access: ReportAccess { listing_agent: true, additional: false }, ..owes },
                Viewer::Person(Role::ListingAgent),
                Access::Locked(vec![due]),
            ),
            (
                "or additional people",
                Facts { report_access: ReportAccess { listing_agent: false, additional: true }, ..base },
                Viewer::Person(Role::Additional),
                Access::Available,
            ),
            (
                "staff always pass",
                Facts { published: false, agreement_signed: false, ..owes },
                Viewer::Staff,
                Access::Available,
            ),
        ];
        for (why, facts, viewer, expected) in cases {
            assert_eq!(gate(&facts, viewer), expected, "{why}");
        }
    }

    #[test]
    fn lock_reasons_serialize_with_their_codes() {
        let r = [LockReason::PaymentRequired { amount_due_cents: Cents::signed(500) }, LockReason::AgreementUnsigned];
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!([{"code": "payment_required", "amount_due_cents": 500}, {"code": "agreement_unsigned"}])
        );
        assert_eq!(r[0].code(), "payment_required");
    }
}
