//! The inspection aggregate: one item holding what a portal view needs (services, people,
//! release requirements, agreement, ledger), so a view is one batched read.
//!
//! Release requirements are snapshotted at creation from the company's settings, so changing a
//! setting later is never retroactive. With collect-after-publish, payment is forced on and
//! deferred payment forced off, and requests to change either are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use super::company::Company;
use super::document::{Document, NewDocument};
use super::settings::Addon;
use super::{optional_text, text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId, PersonId, ServiceId, TokenId};
use crate::foundation::money::{Cents, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    BuyerAgent,
    ListingAgent,
    Inspector,
    Additional,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::BuyerAgent => "buyer_agent",
            Role::ListingAgent => "listing_agent",
            Role::Inspector => "inspector",
            Role::Additional => "additional",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Base,
    Addon,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: Cents,
    pub kind: ServiceKind,
    /// For add-ons taken from the company's catalog: which catalog entry (one of each at most).
    #[serde(default)]
    pub catalog_id: Option<ServiceId>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub added_at: OffsetDateTime,
}

/// The link a person holds: its id (safe to audit) and the hash the token table is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    pub id: TokenId,
    pub hash: String,
    /// The one link "Get Full Access" keeps for this person (replaced by the next one; it never
    /// pushes out an emailed link).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_access: bool,
    /// The one link "all my inspections" (`/me`) keeps for this person (replaced by the next one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub me: bool,
    #[serde(
        default,
        with = "crate::foundation::clock::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub issued_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub role: Role,
    pub name: String,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The person's live links, oldest first. Every email carries a fresh one (only hashes are
    /// stored, so a link cannot be sent twice); at most [`MAX_LINKS_PER_PERSON`] stay live.
    #[serde(default)]
    pub tokens: Vec<TokenRef>,
    /// Staff revoked this person's links: no email, "Get Full Access" or other path gives them a
    /// new one until staff re-issue it.
    #[serde(default)]
    pub revoked: bool,
}

pub const MAX_LINKS_PER_PERSON: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    pub require_payment: bool,
    pub require_agreement: bool,
    pub allow_deferred_payment: bool,
    pub collect_payment_after_publish: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub person_id: PersonId,
    pub version: u32,
    pub typed_name: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub signed_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 of the exact agreement text signed.
    pub text_sha256: String,
}

/// Versioned agreement: a new version whenever the services change after someone signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub version: u32,
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// One movement of money, keyed in the ledger by its idempotency key (the provider's event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Positive: money received; negative: money returned (refund, lost dispute).
    pub amount_cents: i64,
    /// Money announced but not settled yet (a bank payment processing); not part of `paid`.
    #[serde(default)]
    pub pending_cents: i64,
    pub kind: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The provider's event time (Unix seconds) for ordering; 0 for entries staff recorded.
    #[serde(default)]
    pub event_created: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: InspectionId,
    pub company_id: CompanyId,
    pub address: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub scheduled_at: OffsetDateTime,
    #[serde(default)]
    pub cover_photo_url: Option<String>,
    pub currency: Currency,
    pub services: Vec<Service>,
    pub people: Vec<Person>,
    pub requirements: Requirements,
    pub agreement: Agreement,
    #[serde(default)]
    pub ledger: BTreeMap<String, LedgerEntry>,
    #[serde(default)]
    pub documents: Vec<Document>,
    #[serde(default)]
    pub offers_dismissed: bool,
    /// Quotes clients asked partners for, each with the consent they gave.
    #[serde(default)]
    pub quotes: Vec<QuoteRequest>,
    /// When the inspector submitted the inspection (its report is then generated, if the company
    /// auto-generates reports).
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub submitted_at: Option<OffsetDateTime>,
    /// Commercial inspections belong to a building: their published documents appear in its
    /// customer portal.
    #[serde(default)]
    pub building_id: Option<crate::foundation::ids::BuildingId>,
    /// The addresses (as key parts) whose "all my inspections" list holds this inspection as of
    /// the last save: the next save removes the entries of those no longer on it.
    #[serde(default)]
    pub me_listed: Vec<String>,
    /// What the last save looked like, for the outbound webhook events the next one makes.
    #[serde(default)]
    pub webhook_digest: WebhookDigest,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency counter: every save requires the revision it read.
    pub revision: u64,
}

// ---- requests ----

/// What the last save of an inspection looked like, as far as outbound webhook events go: the
/// next save's events are the differences ([`super::webhook_events::changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookDigest {
    /// Set once the inspection's first save recorded `inspection.created`.
    pub created: bool,
    /// Address, date and services, as one string: a change is `inspection.updated`.
    pub details: String,
    pub published: Vec<DocumentId>,
    /// Published documents the client could open.
    pub unlocked: Vec<DocumentId>,
    pub signatures: usize,
    pub quotes: usize,
    /// Ledger entry → amount (refunds are cumulative per charge, so an amount can change).
    pub ledger: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub role: Role,
    pub name: String,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<String>,
    /// `false`: no confirmation email for this person (default: one is sent).
    #[serde(default)]
    pub notify: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInspection {
    pub address: String,
    pub scheduled_at: String,
    #[serde(default)]
    pub cover_photo_url: Option<String>,
    #[serde(default)]
    pub services: Vec<ServiceInput>,
    #[serde(default)]
    pub people: Vec<PersonInput>,
    pub require_payment: Option<bool>,
    pub require_agreement: Option<bool>,
    pub allow_deferred_payment: Option<bool>,
    /// `false`: no confirmation emails (default: each person with a link gets one).
    #[serde(default)]
    pub notify: Option<bool>,
}

/// A client asked a partner for a quote and agreed that their details go to it: who, when, from
/// where, and the exact consent text they were shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub offer_id: ServiceId,
    pub partner: String,
    pub offer_title: String,
    pub person_id: PersonId,
    pub person_name: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub consent_text: String,
    #[serde(default)]
    pub message: Option<String>,
    /// What was shared with the partner, exactly.
    pub shared: SharedDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDetails {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub address: String,
}

/// What a client is shown, and agrees to, before a quote request shares anything.
pub fn quote_consent_text(company: &str, partner: &str, offer: &str) -> String {
    format!(
        "I agree that {company} shares my name, email address, phone number and the property address with \
         {partner} so that {partner} can send me a quote for {offer}. Nothing else is shared."
    )
}

/// A change of date or address (`PATCH /staff/inspections/{id}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    pub address: Option<String>,
    pub scheduled_at: Option<String>,
    /// `false`: no update emails (default: each person with a link is told).
    #[serde(default)]
    pub notify: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsPatch {
    pub require_payment: Option<bool>,
    pub require_agreement: Option<bool>,
    pub allow_deferred_payment: Option<bool>,
}

/// A signature as the client gives it, with where it came from.
#[derive(Debug, Clone)]
pub struct SignatureInput {
    pub typed_name: String,
    pub version: Option<u32>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub const MAX_SERVICES: usize = 50;
pub const MAX_DOCUMENTS: usize = 100;
pub const MAX_PEOPLE: usize = 20;

fn service(input: ServiceInput, kind: ServiceKind, now: OffsetDateTime) -> Result<Service, DomainError> {
    Ok(Service {
        id: ServiceId::new(),
        name: text("services[].name", &input.name, 200)?,
        description: optional_text("services[].description", Some(&input.description), 5000)?.unwrap_or_default(),
        price_cents: Cents::price(input.price_cents)?,
        kind,
        catalog_id: None,
        added_at: now,
    })
}

/// A new person, refused if the same email already holds the same role.
fn person(existing: &[Person], p: PersonInput) -> Result<Person, DomainError> {
    if let Some(email) = &p.email {
        if existing.iter().any(|q| q.role == p.role && q.email.as_ref() == Some(email)) {
            return Err(DomainError::Invalid(format!("{email} is listed twice as {}", p.role.as_str())));
        }
    }
    Ok(Person {
        id: PersonId::new(),
        role: p.role,
        name: text("people[].name", &p.name, 200)?,
        email: p.email,
        phone: optional_text("people[].phone", p.phone.as_deref(), 40)?,
        tokens: Vec::new(),
        revoked: false,
    })
}

fn cover_photo(url: Option<&str>) -> Result<Option<String>, DomainError> {
    let url = optional_text("cover_photo_url", url, 2000)?;
    if let Some(u) = &url {
        if !u.starts_with("https://") {
            return Err(DomainError::Invalid("cover_photo_url must be an https:// URL".into()));
        }
    }
    Ok(url)
}

fn forced_requirements(
    collect_after_publish: bool,
    require_payment: Option<bool>,
    allow_deferred_payment: Option<bool>,
) -> Result<(), DomainError> {
    if !collect_after_publish {
        return Ok(());
    }
    if require_payment == Some(false) {
        return Err(DomainError::rule(
            "requirement-locked",
            "require_payment is forced on because the company collects payment after publishing",
        ));
    }
    if allow_deferred_payment == Some(true) {
        return Err(DomainError::rule(
            "requirement-locked",
            "allow_deferred_payment is blocked because the company collects payment after publishing",
        ));
    }
    Ok(())
}

impl Inspection {
    pub fn create(input: NewInspection, company: &Company, now: OffsetDateTime) -> Result<Inspection, DomainError> {
        let scheduled_at = crate::foundation::clock::parse_rfc3339(input.scheduled_at.trim()).ok_or_else(|| {
            DomainError::Invalid("scheduled_at must be an RFC 3339 date-time, e.g. 2026-05-01T09:00:00-05:00".into())
        })?;
        if input.services.len() > MAX_SERVICES {
            return Err(DomainError::Invalid(format!("at most {MAX_SERVICES} services")));
        }
        if input.people.len() > MAX_PEOPLE {
            return Err(DomainError::Invalid(format!("at most {MAX_PEOPLE} people")));
        }
        let settings = &company.settings;
        let collect = settings.collect_payment_after_publish;
        forced_requirements(collect, input.require_payment, input.allow_deferred_payment)?;
        let defaults = settings.release_defaults;
        let requirements = Requirements {
            require_payment: collect || input.require_payment.unwrap_or(defaults.require_payment),
            require_agreement: input.require_agreement.unwrap_or(defaults.require_agreement),
            allow_deferred_payment: !collect && input.allow_deferred_payment.unwrap_or(defaults.allow_deferred_payment),
            collect_payment_after_publish: collect,
        };
        let services =
            input.services.into_iter().map(|s| service(s, ServiceKind::Base, now)).collect::<Result<Vec<_>, _>>()?;
        let mut people: Vec<Person> = Vec::with_capacity(input.people.len());
        for p in input.people {
            people.push(person(&people, p)?);
        }
        Ok(Inspection {
            id: InspectionId::new(),
            company_id: company.id,
            address: text("address", &input.address, 500)?,
            scheduled_at,
            cover_photo_url: cover_photo(input.cover_photo_url.as_deref())?,
            currency: settings.currency,
            services,
            people,
            requirements,
            agreement: Agreement { version: 1, signatures: Vec::new() },
            ledger: BTreeMap::new(),
            documents: Vec::new(),
            offers_dismissed: false,
            quotes: Vec::new(),
            submitted_at: None,
            building_id: None,
            me_listed: Vec::new(),
            webhook_digest: Default::default(),
            created_at: now,
            updated_at: now,
            revision: 0,
        })
    }

    /// Positions in `people` of those who get a tokenized link: everyone with an email that is
    /// not a staff user's.
    pub fn people_needing_tokens(&self, company: &Company) -> Vec<usize> {
        (0..self.people.len()).filter(|&i| self.needs_token(i, company)).collect()
    }

    /// Whether the person at `idx` is someone the portal emails: an address that is not a staff
    /// user's. A revoked person still is (their emails are created and then skipped, so staff
    /// see what they did not get).
    pub fn emailable(&self, idx: usize, company: &Company) -> bool {
        self.people.get(idx).and_then(|p| p.email.as_ref()).is_some_and(|e| !company.is_staff_email(e))
    }

    /// Whether the person at `idx` may hold a tokenized link.
    pub fn needs_token(&self, idx: usize, company: &Company) -> bool {
        self.people
            .get(idx)
            .filter(|p| !p.revoked)
            .and_then(|p| p.email.as_ref())
            .is_some_and(|e| !company.is_staff_email(e))
    }

    /// Removes the person at `idx` (an index from [`Inspection::person_index`]); their links die
    /// with the writes the caller adds. Signatures they gave stay on the agreement as evidence.
    pub fn remove_person(&mut self, idx: usize, now: OffsetDateTime) -> Person {
        self.updated_at = now;
        self.people.remove(idx)
    }

    /// A client asks for a quote on a special offer, consenting to share their details with the
    /// partner. Returns the request and whether it is new (asking again changes nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn request_quote(
        &mut self,
        company: &Company,
        person: PersonId,
        offer: ServiceId,
        consent: bool,
        message: Option<&str>,
        from: (Option<String>, Option<String>),
        now: OffsetDateTime,
    ) -> Result<(QuoteRequest, bool), DomainError> {
        let o = company
            .settings
            .special_offers
            .iter()
            .find(|o| o.id == offer)
            .ok_or_else(|| DomainError::rule("no-such-offer", "this inspection has no such offer"))?;
        if o.partner_email.is_none() {
            return Err(DomainError::rule("quotes-unavailable", "this partner does not take quote requests here"));
        }
        if !consent {
            return Err(DomainError::Invalid(
                "consent must be true: nothing is shared with a partner without the client's consent".into(),
            ));
        }
        if let Some(existing) = self.quotes.iter().find(|q| q.offer_id == offer && q.person_id == person) {
            return Ok((existing.clone(), false));
        }
        let message = optional_text("message", message, 2000)?;
        let p = self.person(person).ok_or_else(|| DomainError::Invalid("unknown person".into()))?;
        let q = QuoteRequest {
            offer_id: offer,
            partner: o.partner.clone(),
            offer_title: o.title.clone(),
            person_id: person,
            person_name: p.name.clone(),
            requested_at: now,
            ip: from.0,
            user_agent: from.1,
            consent_text: quote_consent_text(&company.name, &o.partner, &o.title),
            message,
            shared: SharedDetails {
                name: p.name.clone(),
                email: p.email.clone(),
                phone: p.phone.clone(),
                address: self.address.clone(),
            },
        };
        self.quotes.push(q.clone());
        self.updated_at = now;
        Ok((q, true))
    }

    /// Changes the date and/or address; returns whether anything changed.
    pub fn reschedule(&mut self, patch: &SchedulePatch, now: OffsetDateTime) -> Result<bool, DomainError> {
        let mut changed = false;
        if let Some(a) = &patch.address {
            let a = a.trim();
            if a.is_empty() || a.len() > 300 {
                return Err(DomainError::Invalid("address must be 1 to 300 characters".into()));
            }
            changed |= a != self.address;
            self.address = a.to_owned();
        }
        if let Some(at) = &patch.scheduled_at {
            let at = crate::foundation::clock::parse_rfc3339(at.trim()).ok_or_else(|| {
                DomainError::Invalid(
                    "scheduled_at must be an RFC 3339 date-time, e.g. 2026-05-01T09:00:00-05:00".into(),
                )
            })?;
            changed |= at != self.scheduled_at;
            self.scheduled_at = at;
        }
        if changed {
            self.updated_at = now;
        }
        Ok(changed)
    }

    pub fn person_index(&self, id: PersonId) -> Option<usize> {
        self.people.iter().position(|p| p.id == id)
    }

    /// The person a token record names, provided it is still that person's current link (a
    /// re-issued or revoked link no longer matches).
    pub fn token_holder(&self, person: PersonId, token: TokenId) -> Option<&Person> {
        self.person(person).filter(|p| p.tokens.iter().any(|t| t.id == token))
    }

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
        let publish_at = input.publish_at.as_deref().map(super::document::publish_time).transpose()?;
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
        let doc = self.document_mut(id).ok_or_else(|| DomainError::Invalid("no such document".into()))?;
        if doc.published {
            return Ok(false);
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

    /// Catalog add-ons this inspection does not have yet.
    pub fn addon_offers<'a>(&self, catalog: &'a [Addon]) -> Vec<&'a Addon> {
        catalog.iter().filter(|a| !self.services.iter().any(|s| s.catalog_id == Some(a.id))).collect()
    }

    /// Adds the requested catalog add-ons at once (ones already added are skipped, so a repeated
    /// request changes nothing). Returns what was added.
    pub fn request_addons(
        &mut self,
        catalog: &[Addon],
        ids: &[ServiceId],
        now: OffsetDateTime,
    ) -> Result<Vec<Service>, DomainError> {
        if ids.is_empty() {
            return Err(DomainError::Invalid("addon_ids must name at least one add-on".into()));
        }
        let mut chosen: Vec<&Addon> = Vec::new();
        for id in ids {
            let addon = catalog
                .iter()
                .find(|a| a.id == *id)
                .ok_or_else(|| DomainError::Invalid(format!("{id} is not an add-on this company offers")))?;
            if !chosen.iter().any(|a| a.id == addon.id) {
                chosen.push(addon);
            }
        }
        let added: Vec<Service> = self
            .addon_offers(catalog)
            .into_iter()
            .filter(|a| chosen.iter().any(|c| c.id == a.id))
            .map(|a| Service {
                id: ServiceId::new(),
                name: a.name.clone(),
                description: a.description.clone(),
                price_cents: a.price_cents,
                kind: ServiceKind::Addon,
                catalog_id: Some(a.id),
                added_at: now,
            })
            .collect();
        if self.services.len() + added.len() > MAX_SERVICES {
            return Err(DomainError::Invalid(format!("at most {MAX_SERVICES} services")));
        }
        if !added.is_empty() {
            self.services.extend(added.iter().cloned());
            self.services_changed(now);
        }
        Ok(added)
    }

    /// The exact agreement text of the current version: the company's terms and what this
    /// inspection is (property, date, clients, services, total). Its SHA-256 is kept with every
    /// signature, so what was signed can always be proven.
    pub fn agreement_text(&self, company: &Company) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(t, "INSPECTION AGREEMENT (version {})", self.agreement.version);
        let _ = writeln!(t, "Inspection company: {}", company.name);
        let _ = writeln!(t, "Property: {}", self.address);
        let _ = writeln!(
            t,
            "Scheduled: {}",
            crate::foundation::local_time::date_time(self.scheduled_at, company.settings.time_zone.as_deref())
        );
        let clients: Vec<&str> =
            self.people.iter().filter(|p| p.role == Role::Client).map(|p| p.name.as_str()).collect();
        let _ = writeln!(t, "Client(s): {}", clients.join(", "));
        let _ = writeln!(t, "Services:");
        for s in &self.services {
            let _ = writeln!(t, "  - {}: {}", s.name, crate::foundation::money::format(s.price_cents, self.currency));
        }
        let _ = writeln!(t, "Total: {}", crate::foundation::money::format(self.invoice_total(), self.currency));
        let _ = writeln!(t);
        t.push_str(company.settings.agreement_terms());
        t
    }

    /// A client signs the current agreement version. `seen_version`, when given, must be the
    /// current one (the services may have changed since the client read the text). Signing a
    /// version already signed changes nothing and returns false.
    pub fn sign_agreement(
        &mut self,
        company: &Company,
        signer: PersonId,
        input: SignatureInput,
        now: OffsetDateTime,
    ) -> Result<bool, DomainError> {
        let person = self.person(signer).ok_or_else(|| DomainError::Invalid("unknown signer".into()))?;
        if person.role != Role::Client {
            return Err(DomainError::Forbidden("only a client can sign the agreement".into()));
        }
        let typed_name = text("typed_name", &input.typed_name, 200)?;
        if let Some(v) = input.version {
            if v != self.agreement.version {
                return Err(DomainError::rule(
                    "agreement-changed",
                    format!(
                        "the agreement is now version {} (the services changed); read it again before signing",
                        self.agreement.version
                    ),
                ));
            }
        }
        let version = self.agreement.version;
        if self.agreement.signatures.iter().any(|s| s.person_id == signer && s.version == version) {
            return Ok(false);
        }
        let text_sha256 = hex::encode(sha2::Sha256::digest(self.agreement_text(company).as_bytes()));
        self.agreement.signatures.push(Signature {
            person_id: signer,
            version,
            typed_name,
            signed_at: now,
            ip: input.ip,
            user_agent: input.user_agent.map(|ua| ua.chars().take(512).collect()),
            text_sha256,
        });
        self.updated_at = now;
        Ok(true)
    }

    pub fn signed_by(&self, person: PersonId) -> bool {
        self.agreement.signatures.iter().any(|s| s.person_id == person && s.version == self.agreement.version)
    }

    /// Adds a person; returns their position. Whether they get a link is
    /// [`Inspection::needs_token`].
    pub fn add_person(&mut self, input: PersonInput, now: OffsetDateTime) -> Result<usize, DomainError> {
        if self.people.len() >= MAX_PEOPLE {
            return Err(DomainError::Invalid(format!("at most {MAX_PEOPLE} people")));
        }
        let p = person(&self.people, input)?;
        self.people.push(p);
        self.updated_at = now;
        Ok(self.people.len() - 1)
    }

    pub fn add_service(
        &mut self,
        input: ServiceInput,
        kind: ServiceKind,
        now: OffsetDateTime,
    ) -> Result<&Service, DomainError> {
        if self.services.len() >= MAX_SERVICES {
            return Err(DomainError::Invalid(format!("at most {MAX_SERVICES} services")));
        }
        let s = service(input, kind, now)?;
        self.services.push(s);
        self.services_changed(now);
        Ok(self.services.last().expect("just pushed"))
    }

    /// The set of services changed: once anyone signed the current agreement, a new version is
    /// needed (and nobody has signed it yet).
    fn services_changed(&mut self, now: OffsetDateTime) {
        if self.agreement.signatures.iter().any(|s| s.version == self.agreement.version) {
            self.agreement.version += 1;
        }
        self.updated_at = now;
    }

    pub fn change_requirements(&mut self, patch: RequirementsPatch, now: OffsetDateTime) -> Result<(), DomainError> {
        forced_requirements(
            self.requirements.collect_payment_after_publish,
            patch.require_payment,
            patch.allow_deferred_payment,
        )?;
        let r = &mut self.requirements;
        if let Some(v) = patch.require_payment {
            r.require_payment = v;
        }
        if let Some(v) = patch.require_agreement {
            r.require_agreement = v;
        }
        if let Some(v) = patch.allow_deferred_payment {
            r.allow_deferred_payment = v;
        }
        self.updated_at = now;
        Ok(())
    }

    pub fn invoice_total(&self) -> Cents {
        self.services.iter().map(|s| s.price_cents).sum()
    }

    /// Net money received, derived from the ledger (never stored).
    pub fn paid(&self) -> Cents {
        self.ledger.values().map(|e| Cents::signed(e.amount_cents)).sum()
    }

    /// Money on its way (bank payments processing), derived from the ledger.
    pub fn pending(&self) -> Cents {
        self.ledger.values().map(|e| Cents::signed(e.pending_cents)).sum()
    }

    /// What is still owed (never negative; overpayment shows as 0 due).
    pub fn balance(&self) -> Cents {
        Cents::signed(self.invoice_total().saturating_sub(self.paid()).get().max(0))
    }

    /// Signed means every client signed the current version.
    pub fn agreement_signed(&self) -> bool {
        let mut clients = self.people.iter().filter(|p| p.role == Role::Client).peekable();
        clients.peek().is_some() && clients.all(|c| self.signed_by(c.id))
    }

    pub fn person(&self, id: PersonId) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::company::NewCompany;
    use crate::domain::settings::SettingsPatch;

    fn company(patch: &str) -> Company {
        let mut c = Company::create(
            NewCompany { name: "Acme".into(), staff_emails: vec![Email::parse("inspector@acme.test").unwrap()] },
            crate::foundation::clock::now(),
        )
        .unwrap();
        c.settings = c.settings.apply(serde_json::from_str::<SettingsPatch>(patch).unwrap()).unwrap();
        c
    }

    /// An inspection on a deliberately historic date: these rules do not depend on when it is.
    fn new_inspection(extra: &str) -> NewInspection {
        serde_json::from_str(&format!(
            r#"{{"address": "12 Elm St", "scheduled_at": "2026-05-01T09:00:00-05:00",
                "services": [{{"name": "Home inspection", "price_cents": 45000}}],
                "people": [{{"role": "client", "name": "Jane", "email": "jane@example.com"}},
                           {{"role": "buyer_agent", "name": "Bob", "email": "bob@realty.test"}},
                           {{"role": "inspector", "name": "Ivan", "email": "Inspector@acme.test"}},
                           {{"role": "additional", "name": "Uncle"}}]{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn requirements_come_from_company_defaults_unless_given() {
        let c = company(r#"{"release_defaults": {"require_agreement": false, "allow_deferred_payment": true}}"#);
        let i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        assert_eq!(
            i.requirements,
            Requirements {
                require_payment: true,
                require_agreement: false,
                allow_deferred_payment: true,
                collect_payment_after_publish: false
            }
        );
        let i =
            Inspection::create(new_inspection(r#", "require_payment": false"#), &c, crate::foundation::clock::now())
                .unwrap();
        assert!(!i.requirements.require_payment);
    }

    #[test]
    fn collect_after_publish_forces_payment_and_blocks_deferral() {
        let c = company(r#"{"payments": "native", "collect_payment_after_publish": true}"#);
        let i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        assert!(i.requirements.collect_payment_after_publish && i.requirements.require_payment);
        assert!(!i.requirements.allow_deferred_payment);
        for bad in [r#", "require_payment": false"#, r#", "allow_deferred_payment": true"#] {
            let err = Inspection::create(new_inspection(bad), &c, crate::foundation::clock::now()).unwrap_err();
            assert!(matches!(err, DomainError::Rule { code: "requirement-locked", .. }), "{bad}: {err:?}");
        }
        // Saying what is forced anyway is fine.
        assert!(Inspection::create(
            new_inspection(r#", "require_payment": true, "allow_deferred_payment": false"#),
            &c,
            crate::foundation::clock::now()
        )
        .is_ok());
    }

    #[test]
    fn locked_requirements_cannot_be_changed_later_but_others_can() {
        let c = company(r#"{"collect_payment_after_publish": true}"#);
        let mut i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        let now = crate::foundation::clock::now();
        assert!(i
            .change_requirements(RequirementsPatch { require_payment: Some(false), ..Default::default() }, now)
            .is_err());
        assert!(i
            .change_requirements(RequirementsPatch { allow_deferred_payment: Some(true), ..Default::default() }, now)
            .is_err());
        assert!(i
            .change_requirements(RequirementsPatch { require_agreement: Some(false), ..Default::default() }, now)
            .is_ok());
        assert!(!i.requirements.require_agreement);

        let plain = company("{}");
        let mut j = Inspection::create(new_inspection(""), &plain, crate::foundation::clock::now()).unwrap();
        j.change_requirements(RequirementsPatch { allow_deferred_payment: Some(true), ..Default::default() }, now)
            .unwrap();
        assert!(j.requirements.allow_deferred_payment);
    }

    #[test]
    fn staff_and_people_without_email_get_no_token() {
        let c = company("{}");
        let i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        let roles: Vec<Role> = i.people_needing_tokens(&c).into_iter().map(|n| i.people[n].role).collect();
        assert_eq!(roles, vec![Role::Client, Role::BuyerAgent]);
    }

    #[test]
    fn invalid_input_is_refused() {
        let c = company("{}");
        for (extra, what) in [
            (r#", "services": [{"name": "", "price_cents": 1}]"#, "empty service name"),
            (r#", "services": [{"name": "x", "price_cents": -1}]"#, "negative price"),
            (r#", "cover_photo_url": "http://insecure.test/x.jpg""#, "http cover photo"),
        ] {
            // A historic date: only the invalid part matters.
            let input: NewInspection = serde_json::from_str(&format!(
                r#"{{"address": "1 A St", "scheduled_at": "2026-05-01T09:00:00Z"{extra}}}"#
            ))
            .unwrap();
            assert!(Inspection::create(input, &c, crate::foundation::clock::now()).is_err(), "{what}");
        }
        let mut bad_date = new_inspection("");
        bad_date.scheduled_at = "next tuesday".into();
        assert!(Inspection::create(bad_date, &c, crate::foundation::clock::now()).is_err());
        assert!(serde_json::from_str::<NewInspection>(
            r#"{"address": "x", "scheduled_at": "2026-05-01T09:00:00Z", "people": [{"role": "landlord", "name": "x"}]}"#
        )
        .is_err());
    }

    #[test]
    fn a_service_added_after_signing_needs_a_new_agreement_version() {
        let c = company("{}");
        let mut i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        let now = crate::foundation::clock::now();
        i.add_service(
            ServiceInput { name: "Radon".into(), description: String::new(), price_cents: 15000 },
            ServiceKind::Addon,
            now,
        )
        .unwrap();
        assert_eq!(i.agreement.version, 1, "nobody signed yet: same version");
        let client = i.people[0].id;
        i.agreement.signatures.push(Signature {
            person_id: client,
            version: 1,
            typed_name: "Jane".into(),
            signed_at: now,
            ip: None,
            user_agent: None,
            text_sha256: "x".into(),
        });
        assert!(i.agreement_signed());
        i.add_service(
            ServiceInput { name: "Sewer scope".into(), description: String::new(), price_cents: 20000 },
            ServiceKind::Base,
            now,
        )
        .unwrap();
        assert_eq!(i.agreement.version, 2);
        assert!(!i.agreement_signed());
        assert_eq!(i.invoice_total().get(), 45000 + 15000 + 20000);
    }

    #[test]
    fn balance_derives_from_the_ledger() {
        let c = company("{}");
        let mut i = Inspection::create(new_inspection(""), &c, crate::foundation::clock::now()).unwrap();
        assert_eq!(i.balance().get(), 45000);
        let now = crate::foundation::clock::now();
        i.ledger.insert(
            "evt_1".into(),
            LedgerEntry {
                amount_cents: 45000,
                pending_cents: 0,
                kind: "payment".into(),
                recorded_at: now,
                event_created: 0,
            },
        );
        assert_eq!(i.balance().get(), 0);
        i.ledger.insert(
            "evt_2".into(),
            LedgerEntry {
                amount_cents: -10000,
                pending_cents: 0,
                kind: "refund".into(),
                recorded_at: now,
                event_created: 0,
            },
        );
        assert_eq!(i.balance().get(), 10000);
    }
}
