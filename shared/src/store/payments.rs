//! Payment webhook records: applied events, payment-intent pointers and unmatched money.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Page, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::Inspection;
use crate::domain::payments::{MoneyEvent, UnmatchedPayment};
use crate::ids::{CompanyId, InspectionId};

/// `EVENT#<id>`: created in the same transaction as what the event changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: String,
    pub event_type: String,
    pub outcome: String,
    #[serde(with = "crate::clock::serde_rfc3339")]
    pub received_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentPointer {
    pub payment_intent: String,
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
}

/// What a delivery finds in one read.
pub enum WebhookContext {
    /// This event id was applied before.
    Duplicate,
    /// Nothing names a known inspection.
    Unknown,
    Found(Box<(Company, Inspection)>),
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

impl IntentPointer {
    pub fn write(intent: &str, company_id: CompanyId, inspection_id: InspectionId) -> Result<Write, StoreError> {
        let p = IntentPointer { payment_intent: intent.to_owned(), company_id, inspection_id };
        Ok(Write::Put(Record::new(keys::payment_intent(intent), "payment_intent", &p)?))
    }
}

impl Store {
    /// The event record and the inspection the event names, in one `BatchGetItem`. Events whose
    /// object has no metadata (disputes) are found through the payment-intent pointer, one more
    /// read.
    pub async fn webhook_context(&self, e: &MoneyEvent) -> Result<WebhookContext, StoreError> {
        let mut keys = vec![keys::payment_event(&e.id)];
        match (e.target, &e.payment_intent) {
            (Some((c, i)), _) => keys.extend([keys::company(c), keys::inspection(c, i)]),
            (None, Some(pi)) => keys.push(keys::payment_intent(pi)),
            (None, None) => {}
        }
        let found = self.batch_get(&keys).await?;
        if found[0].is_some() {
            return Ok(WebhookContext::Duplicate);
        }
        let (company, inspection) = match (e.target, found.get(1).cloned().flatten()) {
            (Some(_), Some(c)) => match found.get(2).cloned().flatten() {
                Some(i) => (serde_dynamo::from_item(c)?, serde_dynamo::from_item(i)?),
                None => return Ok(WebhookContext::Unknown),
            },
            (None, Some(pointer)) => {
                let p: IntentPointer = serde_dynamo::from_item(pointer)?;
                match self.company_and_inspection(p.company_id, p.inspection_id).await? {
                    Some(found) => found,
                    None => return Ok(WebhookContext::Unknown),
                }
            }
            _ => return Ok(WebhookContext::Unknown),
        };
        Ok(WebhookContext::Found(Box::new((company, inspection))))
    }

    /// Keeps money that matched nothing for staff review, with its event record, atomically.
    /// Returns false when the event was recorded before (a duplicate).
    pub async fn keep_unmatched(&self, e: &MoneyEvent, u: &UnmatchedPayment) -> Result<bool, StoreError> {
        let writes = vec![
            EventRecord::write(e, "unmatched", u.received_at)?,
            Write::Create(Record::new(keys::unmatched_payment(u.company_id, &u.event_id), "unmatched_payment", u)?),
        ];
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

    pub async fn unmatched_payments(
        &self,
        company: Option<CompanyId>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<UnmatchedPayment>, StoreError> {
        self.query_prefix(&keys::unmatched_partition(company), keys::UNMATCHED_PREFIX, limit, cursor, true).await
    }
}
