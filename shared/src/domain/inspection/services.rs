//! What is inspected and what it costs: services and catalog add-ons, the invoice total, and the
//! ledger of money received (the balance is derived from it, never stored).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Inspection;
use crate::domain::settings::Addon;
use crate::domain::{optional_text, text, DomainError};
use crate::foundation::ids::ServiceId;
use crate::foundation::money::Cents;

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
    /// The card that paid, when the provider said (receipts name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<crate::domain::payments::Card>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: i64,
}

pub const MAX_SERVICES: usize = 50;

pub(super) fn service(input: ServiceInput, kind: ServiceKind, now: OffsetDateTime) -> Result<Service, DomainError> {
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

impl Inspection {
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

    /// The set of services changed: once anyone signed the current agreement, a new version is
    /// needed (and nobody has signed it yet).
    fn services_changed(&mut self, now: OffsetDateTime) {
        if self.agreement.signatures.iter().any(|s| s.version == self.agreement.version) {
            self.agreement.version += 1;
        }
        self.updated_at = now;
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
}
