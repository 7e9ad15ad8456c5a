//! Outbound webhooks in the table: endpoints, events and deliveries.
//!
//! - The **events** of one change (`COMPANY#<c>#EVENT#<first evt>`, one item per change) are
//!   written in the transaction of the change they report, each with its exact JSON body, and
//!   wait in the sparse `WEBHOOKEVENTS` partition of GSI1 until the job fans them out.
//! - Fan-out creates one **delivery** per endpoint subscribed to an event's type
//!   (`COMPANY#<c>#WEBHOOK#<w>` / `DELIVERY#<evt>`: one per event and endpoint, whatever
//!   happens) and records its progress on the batch, in the same transaction; the batch leaves
//!   the partition when all are done. Deliveries wait in the sparse `WEBHOOKOUT` partition until
//!   delivered or given up.
//! - An **endpoint** (`COMPANY#<c>#WEBHOOK#<w>` / `WEBHOOK`, listed under
//!   `COMPANY#<c>#WEBHOOKS`) keeps its signing secret (and the previous one for 24 hours after a
//!   rotation): it must sign with it, so it cannot be a hash. It is never returned after creation
//!   or rotation and never logged.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Key, Page, Record, Store, StoreError, Write};
use crate::domain::inspection::Inspection;
use crate::foundation::ids::CompanyId;

pub const EVENTS_PENDING: &str = "WEBHOOKEVENTS";
pub const DELIVERIES_PENDING: &str = "WEBHOOKOUT";
/// How long the previous secret keeps signing after a rotation.
pub const PREVIOUS_SECRET_LIFETIME: time::Duration = time::Duration::hours(24);

fn event_key(c: CompanyId, id: &str) -> Key {
    Key { pk: format!("COMPANY#{c}#EVENT#{id}"), sk: "EVENT".into() }
}

pub fn endpoint_key(c: CompanyId, id: &str) -> Key {
    Key { pk: format!("COMPANY#{c}#WEBHOOK#{id}"), sk: "WEBHOOK".into() }
}

fn endpoints_of(c: CompanyId) -> String {
    format!("COMPANY#{c}#WEBHOOKS")
}

pub fn delivery_key(c: CompanyId, endpoint: &str, event: &str) -> Key {
    Key { pk: format!("COMPANY#{c}#WEBHOOK#{endpoint}"), sk: format!("DELIVERY#{event}") }
}

/// One event, with the exact body every endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    pub event_type: String,
    pub company_id: CompanyId,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub body: String,
}

impl WebhookEvent {
    pub fn new(company: CompanyId, event_type: &str, data: serde_json::Value, now: OffsetDateTime) -> Self {
        let id = format!("evt_{}", ulid::Ulid::new());
        let body = serde_json::json!({
            "id": id, "type": event_type, "created": now.unix_timestamp(), "company_id": company, "data": data,
        })
        .to_string();
        WebhookEvent { id, event_type: event_type.to_owned(), company_id: company, created_at: now, body }
    }

    /// The write that records this event alone (a batch of one).
    pub fn create(&self) -> Result<Write, StoreError> {
        EventBatch::single(self.clone()).create()
    }
}

/// The events one change made, stored as one item (a save of an inspection may make dozens:
/// one item keeps its transaction small). Fan-out goes through them in order, recording how
/// many it has done, so a batch too big for one transaction of deliveries takes several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    pub id: String,
    pub company_id: CompanyId,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub events: Vec<WebhookEvent>,
    /// How many of `events` are fanned out.
    #[serde(default)]
    pub fanned: usize,
}

impl EventBatch {
    /// The batch of `events` (None when there are none).
    pub fn of(events: Vec<WebhookEvent>) -> Option<EventBatch> {
        let first = events.first()?;
        Some(EventBatch {
            id: first.id.clone(),
            company_id: first.company_id,
            created_at: first.created_at,
            fanned: 0,
            events,
        })
    }

    pub fn single(event: WebhookEvent) -> EventBatch {
        EventBatch {
            id: event.id.clone(),
            company_id: event.company_id,
            created_at: event.created_at,
            fanned: 0,
            events: vec![event],
        }
    }

    fn record(&self) -> Result<Record, StoreError> {
        let record = Record::new(event_key(self.company_id, &self.id), "webhook_events", self)?;
        Ok(if self.fanned < self.events.len() {
            record.with_gsi1(
                EVENTS_PENDING.into(),
                format!("{}#{}", crate::foundation::clock::rfc3339(self.created_at), self.id),
            )
        } else {
            record.expires_at((self.created_at + time::Duration::days(30)).unix_timestamp())
        })
    }

    pub fn create(&self) -> Result<Write, StoreError> {
        Ok(Write::Create(self.record()?))
    }

    /// This batch with `upto` events fanned out, conditional on the count read.
    fn advanced(&self, upto: usize) -> Result<Write, StoreError> {
        let next = EventBatch { fanned: upto, ..self.clone() };
        let values =
            super::Item::from([(":n".to_owned(), aws_sdk_dynamodb::types::AttributeValue::N(self.fanned.to_string()))]);
        Ok(Write::PutIf { record: next.record()?, condition: "fanned = :n", values })
    }
}

/// The events an inspection's save makes (one batch item), for its transaction; keeps the digest
/// to compare with next time. Called by every save of an inspection.
pub(crate) fn inspection_event_writes(i: &mut Inspection, now: OffsetDateTime) -> Result<Vec<Write>, StoreError> {
    let (events, digest) = crate::domain::webhook_events::changes(i);
    i.webhook_digest = digest;
    let events = events.into_iter().map(|(kind, data)| WebhookEvent::new(i.company_id, kind, data, now)).collect();
    EventBatch::of(events).map(|b| b.create()).into_iter().collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub company_id: CompanyId,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    /// Why it was disabled, when the portal disabled it (3 days of failed deliveries).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub secret: String,
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub previous_until: Option<OffsetDateTime>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: u64,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.events.iter().any(|e| e == event_type || e == "*")
    }

    /// The secrets that sign a delivery now: the current one, and the previous one for a day
    /// after a rotation.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_until) {
            if now < until {
                out.push(old);
            }
        }
        out
    }

    pub(crate) fn record(&self) -> Result<Record, StoreError> {
        Ok(Record::new(endpoint_key(self.company_id, &self.id), "webhook_endpoint", self)?
            .with_gsi1(endpoints_of(self.company_id), self.id.clone()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after three days of failures (the endpoint was disabled), or the endpoint is gone.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub company_id: CompanyId,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub response_status: Option<u16>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The first 1 KB of the endpoint's last answer.
    #[serde(default)]
    pub response_body: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the current three days of retries began (creation, or the last redelivery).
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub retry_from: Option<OffsetDateTime>,
    pub revision: u64,
}

impl Delivery {
    /// A new delivery of `event` to `endpoint`, due at once.
    pub fn new(event: &WebhookEvent, endpoint: &str, now: OffsetDateTime) -> Delivery {
        Delivery {
            company_id: event.company_id,
            endpoint_id: endpoint.to_owned(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            body: event.body.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            delivered_at: None,
            response_status: None,
            latency_ms: None,
            response_body: None,
            last_error: None,
            retry_from: None,
            revision: 0,
        }
    }

    pub fn create(&self) -> Result<Write, StoreError> {
        Ok(Write::Create(self.record()?))
    }
    fn record(&self) -> Result<Record, StoreError> {
        let record =
            Record::new(delivery_key(self.company_id, &self.endpoint_id, &self.event_id), "webhook_delivery", self)?;
        Ok(match self.state {
            DeliveryState::Pending => record.with_gsi1(
                DELIVERIES_PENDING.into(),
                format!(
                    "{}#{}#{}",
                    crate::foundation::clock::rfc3339(self.next_attempt_at),
                    self.endpoint_id,
                    self.event_id
                ),
            ),
            _ => record,
        })
    }

    /// The write that replaces this delivery as read (its revision), bumping it.
    pub fn replace(&mut self) -> Result<Write, StoreError> {
        let expected = self.revision;
        self.revision += 1;
        Ok(Write::Replace { record: self.record()?, expected_revision: expected })
    }
}

impl Store {
    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<(), StoreError> {
        self.write(Write::Create(e.record()?)).await
    }

    pub async fn endpoint(&self, c: CompanyId, id: &str) -> Result<Option<Endpoint>, StoreError> {
        self.get(&endpoint_key(c, id)).await
    }

    pub async fn endpoints(&self, c: CompanyId) -> Result<Vec<Endpoint>, StoreError> {
        Ok(self.query_gsi1::<Endpoint>(&endpoints_of(c), 100, None, false).await?.items)
    }

    /// Saves an endpoint read at its revision (fails on a concurrent change).
    pub async fn save_endpoint(&self, e: &mut Endpoint) -> Result<(), StoreError> {
        let expected = e.revision;
        e.revision += 1;
        let result = self.write(Write::Replace { record: e.record()?, expected_revision: expected }).await;
        if result.is_err() {
            e.revision = expected;
        }
        result
    }

    pub async fn delete_endpoint(&self, c: CompanyId, id: &str) -> Result<(), StoreError> {
        self.write(Write::DeleteExisting(endpoint_key(c, id))).await
    }

    /// Event batches waiting to be fanned out, oldest first.
    pub async fn pending_events(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<EventBatch>, StoreError> {
        self.query_gsi1_upto(EVENTS_PENDING, &format!("{}~", crate::foundation::clock::rfc3339(now)), limit).await
    }

    /// One delivery per endpoint subscribed to each event (and existing when it happened), with
    /// the batch's progress, in transactions of at most 100 items: a run that loses a race
    /// (the progress changed) stops, and whatever it did not do the next run does. Returns
    /// (events, deliveries) fanned out.
    pub async fn fan_out(&self, batch: &EventBatch, endpoints: &[Endpoint]) -> Result<(usize, usize), StoreError> {
        let mut batch = batch.clone();
        let (mut events, mut deliveries) = (0, 0);
        while batch.fanned < batch.events.len() {
            let mut writes = Vec::new();
            let mut upto = batch.fanned;
            for event in &batch.events[batch.fanned..] {
                // Endpoints hear what happens from their creation on, not what happened before.
                let to: Vec<&Endpoint> = endpoints
                    .iter()
                    .filter(|e| e.wants(&event.event_type) && e.created_at <= event.created_at)
                    .collect();
                if !writes.is_empty() && writes.len() + to.len() > 99 {
                    break;
                }
                for e in to {
                    writes.push(Delivery::new(event, &e.id, event.created_at).create()?);
                }
                upto += 1;
            }
            let n = writes.len();
            writes.insert(0, batch.advanced(upto)?);
            self.transact(writes).await?;
            (events, deliveries) = (events + upto - batch.fanned, deliveries + n);
            batch.fanned = upto;
        }
        Ok((events, deliveries))
    }

    pub async fn due_deliveries(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<Delivery>, StoreError> {
        self.query_gsi1_upto(DELIVERIES_PENDING, &format!("{}~", crate::foundation::clock::rfc3339(now)), limit).await
    }

    pub async fn delivery(&self, c: CompanyId, endpoint: &str, event: &str) -> Result<Option<Delivery>, StoreError> {
        self.get(&delivery_key(c, endpoint, event)).await
    }

    /// An endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        c: CompanyId,
        endpoint: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Delivery>, StoreError> {
        let pk = endpoint_key(c, endpoint).pk;
        self.query_prefix(&pk, "DELIVERY#", limit, cursor, true).await
    }

    pub async fn save_delivery(&self, d: &mut Delivery) -> Result<(), StoreError> {
        self.write(d.replace()?).await
    }
}

/// A new endpoint id.
pub fn new_endpoint_id() -> String {
    format!("we_{}", ulid::Ulid::new())
}

/// A new signing secret (`whsec_` + 256 random bits, base64url).
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("whsec_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}
