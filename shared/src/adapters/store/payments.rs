//! Payment records: applied events, checkouts this server created, money pointers (payment
//! intent or charge → inspection, and what waits for a payment not seen yet) and unmatched money.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Item, Page, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::Inspection;
use crate::domain::payments::{Checkout, MoneyEvent, UnmatchedPayment};
use crate::foundation::ids::{CompanyId, InspectionId};

/// `EVENT#<id>`: created in the same transaction as what the event changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: String,
    pub event_type: String,
    pub outcome: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub received_at: OffsetDateTime,
}

/// `MONEY#<pi_… | ch_…>`. Bound once, by the first payment applied for that intent (or its
/// charge), to one inspection, and never re-pointed. Until then it holds the refunds and disputes
/// that arrived before their payment (`parked`, each a serialized [`MoneyEvent`]); the payment
/// that binds it applies them in the same transaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MoneyPointer {
    pub provider_id: String,
    pub bound: bool,
    pub company_id: Option<CompanyId>,
    pub inspection_id: Option<InspectionId>,
    pub livemode: Option<bool>,
    #[serde(default)]
    pub parked: Vec<String>,
    /// How many events were ever parked here: each change is conditional on the count read.
    #[serde(default)]
    pub parked_count: u32,
}

impl MoneyPointer {
    pub fn target(&self) -> Option<(CompanyId, InspectionId)> {
        Some((self.company_id?, self.inspection_id?)).filter(|_| self.bound)
    }

    /// The events waiting here (ones that no longer parse are left for staff in the unmatched list).
    pub fn parked_events(&self) -> Vec<MoneyEvent> {
        self.parked.iter().filter_map(|p| serde_json::from_str(p).ok()).collect()
    }

    /// Replaces what was read (`read`, None if absent) only if nobody bound it or parked more
    /// since.
    fn write_over(&self, read: Option<&MoneyPointer>) -> Result<Write, StoreError> {
        let n = read.map_or(0, |p| p.parked_count);
        Ok(Write::PutIf {
            record: Record::new(keys::money_pointer(&self.provider_id), "money_pointer", self)?,
            condition: "attribute_not_exists(PK) OR (bound = :false AND parked_count = :n)",
            values: HashMap::from([
                (":false".to_owned(), AttributeValue::Bool(false)),
                (":n".to_owned(), AttributeValue::N(n.to_string())),
            ]),
        })
    }

    /// Binds the pointer to an inspection (its parked events go with this write).
    pub fn bind(
        read: Option<&MoneyPointer>,
        provider_id: &str,
        target: (CompanyId, InspectionId),
        livemode: Option<bool>,
    ) -> Result<Write, StoreError> {
        let bound = MoneyPointer {
            provider_id: provider_id.to_owned(),
            bound: true,
            company_id: Some(target.0),
            inspection_id: Some(target.1),
            livemode,
            parked: Vec::new(),
            parked_count: read.map_or(0, |p| p.parked_count),
        };
        bound.write_over(read)
    }

    /// Parks an event until its payment arrives.
    pub fn park(read: Option<&MoneyPointer>, provider_id: &str, e: &MoneyEvent) -> Result<Write, StoreError> {
        let mut next =
            read.cloned().unwrap_or_else(|| MoneyPointer { provider_id: provider_id.to_owned(), ..Default::default() });
        next.parked.push(serde_json::to_string(e).map_err(|err| StoreError::Sdk(err.to_string()))?);
        next.parked_count += 1;
        next.write_over(read)
    }
}

impl EventRecord {
    pub fn write(e: &MoneyEvent, outcome: &str, at: OffsetDateTime) -> Result<Write, StoreError> {
        let r = EventRecord {
            event_id: e.id.clone(),
            event_type: e.kind.clone(),
            outcome: outcome.to_owned(),
            received_at: at,
        };
        Ok(Write::Create(Record::new(keys::payment_event(&e.id), "payment_event", &r)?))
    }
}

/// Records the payment intent a checkout was paid with, once.
pub fn checkout_intent(c: &Checkout, intent: &str) -> Result<Write, StoreError> {
    let mut with = c.clone();
    with.payment_intent = Some(intent.to_owned());
    Ok(Write::PutIf {
        record: Record::new(keys::checkout(&c.checkout_id), "checkout", &with)?,
        condition: "attribute_not_exists(payment_intent) OR attribute_type(payment_intent, :null)",
        values: HashMap::from([(":null".to_owned(), AttributeValue::S("NULL".into()))]),
    })
}

/// Everything a delivery needs, read in one `BatchGetItem`.
pub struct WebhookRead {
    /// This event id was recorded before.
    pub duplicate: bool,
    pub checkout: Option<Checkout>,
    /// The company and inspection the metadata or the checkout names, when both exist.
    pub found: Option<(Company, Inspection)>,
    /// The pointers of the event's payment intent and charge, as read (None: absent).
    pub pointers: Vec<(String, Option<MoneyPointer>)>,
}

fn from<T: serde::de::DeserializeOwned>(item: Option<Item>) -> Result<Option<T>, StoreError> {
    item.map(serde_dynamo::from_item).transpose().map_err(StoreError::from)
}

impl Store {
    /// The event record, the checkout its metadata names, the company and inspection its
    /// metadata names, and the pointers of its payment intent and charge: one round trip.
    pub async fn webhook_read(&self, e: &MoneyEvent) -> Result<WebhookRead, StoreError> {
        let ids: Vec<&String> = e.payment_intent.iter().chain(e.charge.iter()).collect();
        let mut wanted = vec![keys::payment_event(&e.id)];
        wanted.extend(ids.iter().map(|id| keys::money_pointer(id)));
        let checkout_at = e.checkout_id.as_ref().map(|c| {
            wanted.push(keys::checkout(c));
            wanted.len() - 1
        });
        let target_at = e.target.map(|(c, i)| {
            wanted.extend([keys::company(c), keys::inspection(c, i)]);
            wanted.len() - 2
        });
        let mut found = self.batch_get(&wanted).await?;
        let mut take = |at: usize| found.get_mut(at).and_then(Option::take);
        let duplicate = take(0).is_some();
        let pointers = ids
            .iter()
            .enumerate()
            .map(|(n, id)| Ok(((*id).clone(), from(take(1 + n))?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let checkout = checkout_at.map(&mut take).and_then(|i| i).map(serde_dynamo::from_item).transpose()?;
        let found = match target_at.map(|at| (take(at), take(at + 1))) {
            Some((Some(c), Some(i))) => Some((serde_dynamo::from_item(c)?, serde_dynamo::from_item(i)?)),
            _ => None,
        };
        Ok(WebhookRead { duplicate, checkout, found, pointers })
    }

    /// Keeps money that matched nothing for staff review, with its event record, atomically.
    /// Returns false when the event was recorded before (a duplicate).
    pub async fn keep_unmatched(&self, e: &MoneyEvent, u: &UnmatchedPayment) -> Result<bool, StoreError> {
        let mut writes = vec![EventRecord::write(e, "unmatched", u.received_at)?, unmatched_write(u)?];
        // The staff of the company the metadata names (if any, and if they asked) hear of it.
        if let Some((c, _)) = e.target {
            let what = format!("{} ({})", e.kind, e.id);
            writes.push(super::alerts::Alert::unchecked(c, "payment_unmatched", &what, u.received_at)?);
        }
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(err) if err.is_condition_failure() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Records an event that changed nothing (already known), so redeliveries stop at one read.
    pub async fn record_event_only(&self, e: &MoneyEvent, outcome: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        match self.write(EventRecord::write(e, outcome, at)?).await {
            Err(err) if !err.is_condition_failure() => Err(err),
            _ => Ok(()),
        }
    }

    /// Records a checkout session Pay Now created (the same request twice records the same one).
    pub async fn record_checkout(&self, c: &Checkout) -> Result<(), StoreError> {
        self.write(Write::Put(Record::new(keys::checkout(&c.checkout_id), "checkout", c)?)).await
    }

    pub async fn checkout(&self, checkout_id: &str) -> Result<Option<Checkout>, StoreError> {
        self.get(&keys::checkout(checkout_id)).await
    }

    pub async fn unmatched_payments(
        &self,
        company: Option<CompanyId>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<UnmatchedPayment>, StoreError> {
        self.query_prefix(&keys::unmatched_partition(company), keys::UNMATCHED_PREFIX, limit, cursor, true).await
    }
}

/// The unmatched-money record of `u`.
pub fn unmatched_write(u: &UnmatchedPayment) -> Result<Write, StoreError> {
    Ok(Write::Create(Record::new(keys::unmatched_payment(u.company_id, &u.event_id), "unmatched_payment", u)?))
}

/// Removes the unmatched record of a parked event once it is applied.
pub fn unmatched_resolved(e: &MoneyEvent) -> Write {
    Write::Delete(keys::unmatched_payment(e.target.map(|t| t.0), &e.id))
}
