//! What a person sees in the client portal, computed from the company and the inspection alone
//! (docs/product.md §2). The link function renders it as HTML or JSON; staff previews render
//! the same value, so a preview is exactly what that person sees.

use serde::Serialize;

use super::company::Company;
use super::document::{Document, DocumentKind};
use super::gate::{self, Access, LockReason, Viewer};
use super::inspection::{Inspection, Person, Role, ServiceKind};
use super::settings::{ContactDetails, Contractor, PaymentsMode, SpecialOffer};
use crate::foundation::email::Email;
use crate::foundation::ids::{DocumentId, InspectionId, PersonId, ServiceId};
use crate::foundation::money::{Cents, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Nothing to pay.
    None,
    Due,
    /// A bank (ACH) payment is on its way; not paid yet.
    Processing,
    Paid,
    /// Collect-after-publish and nothing published yet: no button.
    CollectAfterPublish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentAction {
    PayNow,
    LearnMore,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentPanel {
    pub state: PaymentState,
    pub balance_cents: Cents,
    pub invoice_total_cents: Cents,
    pub paid_cents: Cents,
    pub currency: Currency,
    pub action: Option<PaymentAction>,
    pub message: String,
    /// One per payment received, for the people who pay (clients); empty for others.
    pub receipts: Vec<Receipt>,
}

/// A payment's receipt: `receipt_url` opens its printable page.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub payment_id: String,
    pub amount_cents: i64,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub paid_at: time::OffsetDateTime,
    /// Set by whoever knows the portal's address (the link function): `/p/<token>/receipts/<id>`.
    pub receipt_url: String,
}

/// How a ledger entry's money came or went, in words ("Visa ending in 4242" when the provider
/// named the card).
pub fn payment_method(entry: &crate::domain::inspection::LedgerEntry) -> String {
    if let Some(card) = &entry.card {
        return card.describe();
    }
    match entry.kind.as_str() {
        "payment" => "Online payment (card or bank)".into(),
        "refund" => "Refund".into(),
        "dispute_lost" => "Disputed payment returned".into(),
        other => match other.strip_prefix("offline_payment_").or_else(|| other.strip_prefix("offline_refund_")) {
            Some(method) => {
                let method = method.replace('_', " ");
                let mut m = method.chars();
                let method = m.next().map(|c| c.to_uppercase().chain(m).collect::<String>()).unwrap_or_default();
                if other.starts_with("offline_refund_") {
                    format!("Refund ({method})")
                } else {
                    method
                }
            }
            None => other.replace('_', " "),
        },
    }
}

/// The payments of an inspection that have receipts (money received, oldest first).
pub fn receipts(inspection: &Inspection) -> Vec<Receipt> {
    let mut out: Vec<Receipt> = inspection
        .ledger
        .iter()
        .filter(|(_, e)| e.amount_cents > 0 && (e.kind == "payment" || e.kind.starts_with("offline_payment_")))
        .map(|(id, e)| Receipt {
            payment_id: id.clone(),
            amount_cents: e.amount_cents,
            paid_at: e.recorded_at,
            receipt_url: String::new(),
        })
        .collect();
    out.sort_by_key(|r| r.paid_at);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementState {
    Signed,
    Unsigned,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementPanel {
    pub state: AgreementState,
    pub version: u32,
    pub required: bool,
    /// Whether the viewer signed the current version.
    pub signed_by_you: bool,
    pub can_sign: bool,
    /// The exact text the current version asks clients to sign.
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub key: &'static str,
    pub label: &'static str,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceLine {
    pub id: ServiceId,
    pub name: String,
    pub description: String,
    pub price_cents: Cents,
    pub kind: ServiceKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonLine {
    pub role: Role,
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
}

impl From<&Person> for PersonLine {
    fn from(p: &Person) -> Self {
        PersonLine { role: p.role, name: p.name.clone(), email: p.email.clone(), phone: p.phone.clone() }
    }
}

impl PersonLine {
    /// `p` as `viewer` may see them: a client sees everyone's contact details; anyone else sees
    /// their own and the inspector's, and other participants' only where the company shows them.
    fn seen_by(p: &Person, viewer: &Person, show_contacts: bool) -> PersonLine {
        let line = PersonLine::from(p);
        if viewer.role == Role::Client || show_contacts || p.id == viewer.id || p.role == Role::Inspector {
            return line;
        }
        PersonLine { email: None, phone: None, ..line }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    Available,
    Locked,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentCard {
    pub id: DocumentId,
    pub kind: DocumentKind,
    /// What the portal calls it ("Residential Inspection Report").
    pub title: String,
    pub state: DocumentState,
    pub lock_reasons: Vec<LockReason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddonOffer {
    pub id: ServiceId,
    pub name: String,
    pub description: String,
    pub price_cents: Cents,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompanyCard {
    pub name: String,
    pub contact: ContactDetails,
    /// The IANA zone pages show times in (null: UTC). Times in JSON stay UTC.
    pub time_zone: Option<String>,
    /// What frames the pages (language, colours, logo).
    #[serde(skip)]
    pub brand: super::company::Brand,
}

impl CompanyCard {
    fn of(company: &Company) -> CompanyCard {
        CompanyCard {
            name: company.name.clone(),
            contact: company.settings.contact.clone(),
            time_zone: company.settings.time_zone.clone(),
            brand: company.brand(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewerCard {
    pub person_id: PersonId,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortalView {
    pub inspection_id: InspectionId,
    pub viewer: ViewerCard,
    /// Clients may sign, request add-ons and pay; other roles only look.
    pub can_act: bool,
    /// Staff cancelled the inspection: the portal says so, and shows how to reach the company.
    pub cancelled: bool,
    pub company: CompanyCard,
    pub address: String,
    pub scheduled_at: String,
    pub cover_photo_url: Option<String>,
    /// Add-on offers on the dashboard (clients only, until dismissed).
    pub addon_offers: Vec<AddonOffer>,
    pub offers_dismissed: bool,
    pub payment: PaymentPanel,
    pub agreement: AgreementPanel,
    pub steps: Vec<Step>,
    /// Published reports for the dashboard (also listed in `documents`).
    pub reports: Vec<DocumentCard>,
    pub services: Vec<ServiceLine>,
    pub people: Vec<PersonLine>,
    /// Everything this viewer may know of: published documents, each available or locked.
    pub documents: Vec<DocumentCard>,
    /// Present only when the company enabled recommended contractors.
    pub contractors: Option<Vec<Contractor>>,
    /// Partner products; always reachable, whether or not the dashboard offers were dismissed.
    pub special_offers: Vec<OfferCard>,
    pub inspectors: Vec<PersonLine>,
}

/// The payment panel. `can_act`: the viewer may pay (a client); `online`: a payment provider is
/// configured, so Pay Now can work (otherwise the panel says how to pay offline).
/// A special offer as the viewer sees it: whether they may ask for a quote, the exact consent
/// text they would agree to, and whether they already asked.
#[derive(Debug, Clone, Serialize)]
pub struct OfferCard {
    pub id: ServiceId,
    pub partner: String,
    pub title: String,
    pub description: String,
    pub can_request_quote: bool,
    pub quote_requested: bool,
    pub consent_text: String,
}

impl OfferCard {
    fn of(o: &SpecialOffer, company: &Company, inspection: &Inspection, person: &Person, can_act: bool) -> Self {
        OfferCard {
            id: o.id,
            partner: o.partner.clone(),
            title: o.title.clone(),
            description: o.description.clone(),
            can_request_quote: can_act && o.partner_email.is_some(),
            quote_requested: inspection.quotes.iter().any(|q| q.offer_id == o.id && q.person_id == person.id),
            consent_text: super::inspection::quote_consent_text(&company.name, &o.partner, &o.title),
        }
    }
}

pub fn payment_panel(company: &Company, inspection: &Inspection, can_act: bool, online: bool) -> PaymentPanel {
    let total = inspection.invoice_total();
    let balance = inspection.balance();
    let pending = inspection.pending();
    let collect_first = inspection.requirements.collect_payment_after_publish && !inspection.report_published();
    let state = if total == Cents::ZERO {
        PaymentState::None
    } else if balance == Cents::ZERO {
        PaymentState::Paid
    } else if pending >= balance {
        PaymentState::Processing
    } else if collect_first {
        PaymentState::CollectAfterPublish
    } else {
        PaymentState::Due
    };
    let action = match (state, company.settings.payments) {
        // A cancelled inspection takes no payment (staff settle any money with the client).
        _ if inspection.is_cancelled() => None,
        (PaymentState::Due, PaymentsMode::Native) if can_act && online => Some(PaymentAction::PayNow),
        (PaymentState::Due, PaymentsMode::Native) if !online => Some(PaymentAction::LearnMore),
        (PaymentState::Due, PaymentsMode::Disabled) => Some(PaymentAction::LearnMore),
        _ => None,
    };
    let amount = crate::foundation::money::format(balance, inspection.currency);
    let message = match state {
        PaymentState::None => "No payment is due".to_owned(),
        PaymentState::Paid => "Paid".to_owned(),
        PaymentState::Processing => format!("Payment processing: {amount} is on its way from your bank"),
        PaymentState::CollectAfterPublish => "Payment to be collected after inspection is published".to_owned(),
        PaymentState::Due if inspection.is_cancelled() => {
            "No payment is taken for a cancelled inspection; contact us about money already paid".to_owned()
        }
        PaymentState::Due => format!("Payment due: {amount}"),
    };
    PaymentPanel {
        state,
        balance_cents: balance,
        invoice_total_cents: total,
        paid_cents: inspection.paid(),
        currency: inspection.currency,
        action,
        message,
        receipts: if can_act { receipts(inspection) } else { Vec::new() },
    }
}

fn card(d: &Document, access: Access) -> Option<DocumentCard> {
    let (state, lock_reasons) = match access {
        Access::Hidden => return None,
        Access::Available => (DocumentState::Available, Vec::new()),
        Access::Locked(r) => (DocumentState::Locked, r),
    };
    Some(DocumentCard { id: d.id, kind: d.kind, title: d.display_name(), state, lock_reasons })
}

impl PortalView {
    /// The portal as `person` sees it.
    /// `online`: whether Pay Now can work (a payment provider is configured).
    /// Payments were received and are being applied (the inspection was busy): a balance still
    /// due shows as processing, without a button to pay again.
    pub fn payments_arriving(mut self) -> PortalView {
        if self.payment.state == PaymentState::Due {
            self.payment.state = PaymentState::Processing;
            self.payment.action = None;
            self.payment.message =
                "Payment processing: we received a payment and are applying it; this takes about a minute".to_owned();
        }
        self
    }

    pub fn build(company: &Company, inspection: &Inspection, person: &Person, online: bool) -> PortalView {
        let can_act = person.role == Role::Client;
        let viewer = Viewer::Person(person.role);
        let documents: Vec<DocumentCard> = inspection
            .documents
            .iter()
            .filter(|d| d.kind != DocumentKind::BuildingAttachment)
            .filter_map(|d| card(d, gate::decide(d, inspection, company, viewer)))
            .collect();
        let reports: Vec<DocumentCard> = documents.iter().filter(|d| d.kind.is_report()).cloned().collect();
        let payment = payment_panel(company, inspection, can_act, online);
        let agreement_signed = inspection.agreement_signed();
        let agreement = AgreementPanel {
            state: if agreement_signed { AgreementState::Signed } else { AgreementState::Unsigned },
            version: inspection.agreement.version,
            required: inspection.requirements.require_agreement,
            signed_by_you: inspection.signed_by(person.id),
            can_sign: can_act && !inspection.signed_by(person.id),
            text: inspection.agreement_text(company),
        };
        // Where things stand, for the people who get the report; the seller's side (order details
        // only) has no steps.
        let mut steps = Vec::new();
        if person.role != Role::ListingAgent {
            if agreement.required {
                steps.push(Step { key: "agreement", label: "Sign the agreement", done: agreement_signed });
            }
            if payment.state != PaymentState::None {
                steps.push(Step {
                    key: "payment",
                    label: "Pay for the inspection",
                    done: payment.state == PaymentState::Paid,
                });
            }
            // Done when the gate opens a report to this person, never merely because one is published
            // (a locked report beside a tick would say the opposite of the page).
            let report_open = reports.iter().any(|d| d.state == DocumentState::Available);
            steps.push(Step { key: "report", label: "Open your report", done: report_open });
        }
        let settings = &company.settings;
        let addon_offers = if can_act && !inspection.offers_dismissed {
            inspection
                .addon_offers(&settings.addon_catalog)
                .into_iter()
                .map(|a| AddonOffer {
                    id: a.id,
                    name: a.name.clone(),
                    description: a.description.clone(),
                    price_cents: a.price_cents,
                })
                .collect()
        } else {
            Vec::new()
        };
        PortalView {
            inspection_id: inspection.id,
            viewer: ViewerCard { person_id: person.id, name: person.name.clone(), role: person.role },
            can_act,
            cancelled: inspection.is_cancelled(),
            company: CompanyCard::of(company),
            address: inspection.address.clone(),
            scheduled_at: crate::foundation::clock::rfc3339(inspection.scheduled_at),
            cover_photo_url: inspection.cover_photo_url.clone(),
            addon_offers,
            offers_dismissed: inspection.offers_dismissed,
            payment,
            agreement,
            steps,
            reports,
            services: inspection
                .services
                .iter()
                .map(|s| ServiceLine {
                    id: s.id,
                    name: s.name.clone(),
                    description: s.description.clone(),
                    price_cents: s.price_cents,
                    kind: s.kind,
                })
                .collect(),
            people: inspection
                .people
                .iter()
                .map(|p| PersonLine::seen_by(p, person, settings.show_participant_contacts))
                .collect(),
            documents,
            contractors: settings.recommended_contractors_enabled.then(|| settings.recommended_contractors.clone()),
            special_offers: settings
                .special_offers
                .iter()
                .map(|o| OfferCard::of(o, company, inspection, person, can_act))
                .collect(),
            inspectors: inspection.people.iter().filter(|p| p.role == Role::Inspector).map(PersonLine::from).collect(),
        }
    }
}

/// What someone holding only the share link (no token) sees: basic details, nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct ShareView {
    pub inspection_id: InspectionId,
    pub unknown_user: bool,
    pub notice: &'static str,
    pub company: CompanyCard,
    pub address: String,
    pub scheduled_at: String,
    pub cover_photo_url: Option<String>,
}

pub const UNKNOWN_USER_NOTICE: &str = "Unknown user: you opened this inspection without a personal link, so \
     documents, add-ons, payment and signing are not available. Use \u{201c}Get Full Access\u{201d} to receive \
     your personal link by email.";

impl ShareView {
    pub fn build(company: &Company, inspection: &Inspection) -> ShareView {
        ShareView {
            inspection_id: inspection.id,
            unknown_user: true,
            notice: UNKNOWN_USER_NOTICE,
            company: CompanyCard::of(company),
            address: inspection.address.clone(),
            scheduled_at: crate::foundation::clock::rfc3339(inspection.scheduled_at),
            cover_photo_url: inspection.cover_photo_url.clone(),
        }
    }
}
