//! The inspection aggregate: one item holding what a portal view needs (services, people,
//! release requirements, agreement, ledger), so a view is one batched read.
//!
//! Release requirements are snapshotted at creation from the company's settings, so changing a
//! setting later is never retroactive. With collect-after-publish, payment is forced on and
//! deferred payment forced off, and requests to change either are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod agreement;
mod documents;
mod findings;
mod people;
mod quotes;
mod services;

pub use agreement::{Agreement, Signature, SignatureInput};
pub use documents::MAX_DOCUMENTS;
pub use findings::{Finding, FindingInput, Severity, MAX_FINDINGS};
pub use people::{Person, PersonInput, TokenRef, MAX_LINKS_PER_PERSON, MAX_PEOPLE};
pub use quotes::{quote_consent_text, QuoteRequest, SharedDetails};
pub use services::{LedgerEntry, Service, ServiceInput, ServiceKind, MAX_SERVICES};

use super::company::Company;
use super::document::Document;
use super::{optional_text, text, DomainError};
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId, PersonId, TokenId};
use crate::foundation::money::Currency;

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
pub struct Requirements {
    pub require_payment: bool,
    pub require_agreement: bool,
    pub allow_deferred_payment: bool,
    pub collect_payment_after_publish: bool,
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
    /// A cover photo uploaded with the inspection (its key under [`Inspection::photo_prefix`]):
    /// shown instead of `cover_photo_url`, served to link holders from the portal's origin.
    #[serde(default)]
    pub cover_photo: Option<String>,
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
    /// What the inspector found, for the report; `None` until someone records findings (or says
    /// there are none with an empty list).
    #[serde(default)]
    pub findings: Option<Vec<Finding>>,
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
    /// The (address, person) pairs already in the privacy index (`<address part>#<person>`):
    /// a save adds only new ones; none is ever removed.
    #[serde(default)]
    pub privacy_listed: Vec<String>,
    /// What the last save looked like, for the outbound webhook events the next one makes.
    #[serde(default)]
    pub webhook_digest: WebhookDigest,
    /// Staff cancelled the inspection (`POST …/cancel`): no reminders, publishing or Pay Now
    /// until it is reinstated.
    #[serde(
        default,
        with = "crate::foundation::clock::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cancelled_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Created with `"notify": false`: no automated emails (confirmation, reminders).
    #[serde(default)]
    pub quiet: bool,
    /// The calendar invitation's `SEQUENCE`: one more with each change of date, address or
    /// status, so calendars update their one event.
    #[serde(default)]
    pub calendar_sequence: u32,
    /// Reminders due up to this instant have been queued (the job's mark; the creation time
    /// until its first run).
    #[serde(
        default,
        with = "crate::foundation::clock::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub reminders_through: Option<OffsetDateTime>,
    /// When the next reminder is due, as of the last save (its schedule item says the same).
    #[serde(
        default,
        with = "crate::foundation::clock::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub reminder_due: Option<OffsetDateTime>,
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
        let services = input
            .services
            .into_iter()
            .map(|s| services::service(s, ServiceKind::Base, now))
            .collect::<Result<Vec<_>, _>>()?;
        let mut people: Vec<Person> = Vec::with_capacity(input.people.len());
        for p in input.people {
            people.push(people::person(&people, p)?);
        }
        Ok(Inspection {
            id: InspectionId::new(),
            company_id: company.id,
            address: text("address", &input.address, 500)?,
            scheduled_at,
            cover_photo_url: cover_photo(input.cover_photo_url.as_deref())?,
            cover_photo: None,
            currency: settings.currency,
            services,
            people,
            requirements,
            agreement: Agreement { version: 1, signatures: Vec::new() },
            ledger: BTreeMap::new(),
            documents: Vec::new(),
            offers_dismissed: false,
            quotes: Vec::new(),
            findings: None,
            submitted_at: None,
            building_id: None,
            me_listed: Vec::new(),
            privacy_listed: Vec::new(),
            webhook_digest: Default::default(),
            cancelled_at: None,
            cancel_reason: None,
            quiet: input.notify == Some(false),
            calendar_sequence: 0,
            reminders_through: None,
            reminder_due: None,
            created_at: now,
            updated_at: now,
            revision: 0,
        })
    }

    /// Cancels the inspection (staff): returns whether it changed (cancelling a cancelled one
    /// keeps the first time and reason).
    pub fn cancel(&mut self, reason: Option<&str>, now: OffsetDateTime) -> Result<bool, DomainError> {
        let reason = optional_text("reason", reason, 500)?;
        if self.cancelled_at.is_some() {
            return Ok(false);
        }
        self.cancelled_at = Some(now);
        self.cancel_reason = reason;
        self.calendar_sequence += 1;
        self.updated_at = now;
        Ok(true)
    }

    /// Undoes a cancellation; returns whether it changed.
    pub fn reinstate(&mut self, now: OffsetDateTime) -> bool {
        if self.cancelled_at.take().is_none() {
            return false;
        }
        self.cancel_reason = None;
        self.calendar_sequence += 1;
        // Reminders whose time passed while it was cancelled stay unsent.
        self.reminders_through = Some(now);
        self.updated_at = now;
        true
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled_at.is_some()
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
            self.calendar_sequence += 1;
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

    pub fn person(&self, id: PersonId) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::company::NewCompany;
    use crate::domain::settings::SettingsPatch;
    use crate::foundation::email::Email;

    pub(crate) fn company(patch: &str) -> Company {
        let mut c = Company::create(
            NewCompany { name: "Acme".into(), staff_emails: vec![Email::parse("inspector@acme.test").unwrap()] },
            crate::foundation::clock::now(),
        )
        .unwrap();
        c.settings = c.settings.apply(serde_json::from_str::<SettingsPatch>(patch).unwrap()).unwrap();
        c
    }

    /// An inspection on a deliberately historic date: these rules do not depend on when it is.
    pub(crate) fn new_inspection(extra: &str) -> NewInspection {
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
                card: None,
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
                card: None,
            },
        );
        assert_eq!(i.balance().get(), 10000);
    }
}
