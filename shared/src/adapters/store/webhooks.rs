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

use crate::foundation::money::Cents;
use time::OffsetDateTime;

use super::{keys, Key, Page, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::Inspection;
use crate::foundation::ids::CompanyId;

/// Event batches waiting to be fanned out (GSI1), by batch id.
pub const EVENTS_PENDING: keys::Queue = keys::Queue { base: "WEBHOOKEVENTS", shards: 8 };
/// Where pending deliveries of every endpoint waited, in one partition, before each endpoint had
/// its own queue; the job moves any it finds there into their endpoint's queue.
pub const LEGACY_DELIVERIES_PENDING: &str = "WEBHOOKOUT";
/// The sparse GSI1 partition of endpoint queues with deliveries waiting, by when each is due.
pub const ENDPOINTS_DUE: keys::Queue = keys::Queue { base: "WEBHOOKDUE", shards: 4 };
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

/// An endpoint's queue: what waits for it, and how it has been answering.
fn queue_key(c: CompanyId, endpoint: &str) -> Key {
    Key { pk: format!("COMPANY#{c}#WEBHOOK#{endpoint}"), sk: "QUEUE".into() }
}

/// The sparse GSI1 partition of one endpoint's pending deliveries, by when each is next due.
fn queued_deliveries_of(c: CompanyId, endpoint: &str) -> String {
    format!("WEBHOOKOUT#{c}#{endpoint}")
}

fn queue_due_sort(at: OffsetDateTime, c: CompanyId, endpoint: &str) -> String {
    format!("{}#{c}#{endpoint}", crate::foundation::clock::rfc3339(at))
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
            record.queued(&EVENTS_PENDING, &self.id, self.created_at)
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

/// The events an inspection's save makes that `company`'s endpoints want (one batch item), for
/// its transaction; keeps the digest to compare with next time. Called by every save of an
/// inspection.
/// The person an event's data names.
fn person_of(data: &serde_json::Value) -> crate::foundation::ids::PersonId {
    data["person_id"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| crate::foundation::ids::PersonId::from_ulid(ulid::Ulid::nil()))
}

pub(crate) fn inspection_event_writes(
    i: &mut Inspection,
    company: &Company,
    now: OffsetDateTime,
) -> Result<Vec<Write>, StoreError> {
    let (events, digest) = crate::domain::webhook_events::changes(i);
    i.webhook_digest = digest;
    // The same changes, for the staff who asked to hear of them by email.
    let mut writes = Vec::new();
    for (kind, data) in &events {
        let (alert, what) = match *kind {
            "agreement.signed" => ("agreement_signed", i.person(person_of(data)).map(|p| p.name.clone())),
            "payment.succeeded" => (
                "payment_received",
                data["amount_cents"].as_i64().map(|a| crate::foundation::money::format(Cents::signed(a), i.currency)),
            ),
            "quote.requested" => ("quote_requested", data["partner"].as_str().map(str::to_owned)),
            _ => continue,
        };
        let text = match what {
            Some(what) => format!("{} ({what})", i.address),
            None => i.address.clone(),
        };
        writes.extend(super::alerts::Alert::write(company, alert, &text, now)?);
    }
    let events = events
        .into_iter()
        .filter(|(kind, _)| company.hears(kind))
        .map(|(kind, data)| WebhookEvent::new(i.company_id, kind, data, now))
        .collect();
    writes.extend(EventBatch::of(events).map(|b| b.create()).transpose()?);
    Ok(writes)
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
                queued_deliveries_of(self.company_id, &self.endpoint_id),
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

/// An endpoint's queue (one item per endpoint, beside it): how many deliveries wait, and how
/// the endpoint has been answering. While anything waits it sits in the `WEBHOOKDUE` partition
/// of GSI1, sorted by when the endpoint is next due: the job finds one entry per endpoint
/// however many deliveries wait, so a dead endpoint with thousands waiting costs it one look
/// per backoff step.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointQueue {
    pub company_id: CompanyId,
    pub endpoint_id: String,
    /// Deliveries counted in and not yet counted off (never fewer than wait).
    #[serde(default)]
    pub pending: i64,
    /// Failed attempts since the endpoint last answered 2xx.
    #[serde(default)]
    pub failures: u32,
    /// The first of those failures.
    #[serde(default, with = "crate::foundation::clock::serde_rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub enqueued_at: OffsetDateTime,
    /// Its GSI1 sort key while due (`<when>#<company>#<endpoint>`).
    #[serde(rename = "GSI1SK", default)]
    pub due: Option<String>,
}

impl Store {
    /// One endpoint's change — created (`before` None), saved at the revision read, or deleted
    /// (`after` None) — with `company`'s list of the event types its enabled endpoints want
    /// (`all_after`: every endpoint as it will be), in one transaction conditional on both
    /// revisions: changes only write the events an endpoint wants, and an endpoint hears
    /// everything from its creation on.
    pub async fn save_endpoint_with_company(
        &self,
        company: &mut Company,
        before: Option<&Endpoint>,
        after: Option<&mut Endpoint>,
        all_after: &[Endpoint],
    ) -> Result<(), StoreError> {
        let mut types: Vec<String> =
            all_after.iter().filter(|e| e.enabled).flat_map(|e| e.events.iter().cloned()).collect();
        types.sort();
        types.dedup();
        if types.iter().any(|t| t == "*") {
            types = vec!["*".into()];
        }
        let change = match (before, after) {
            (None, Some(new)) => Write::Create(new.record()?),
            (Some(old), Some(new)) => {
                new.revision = old.revision + 1;
                Write::Replace { record: new.record()?, expected_revision: old.revision }
            }
            (Some(old), None) => Write::DeleteExisting(endpoint_key(old.company_id, &old.id)),
            (None, None) => return Ok(()),
        };
        let mut saved = company.clone();
        saved.webhook_events = Some(types);
        saved.revision += 1;
        let company_write = Write::Replace {
            record: Record::new(super::keys::company(company.id), "company", &saved)?,
            expected_revision: company.revision,
        };
        self.transact(vec![change, company_write]).await?;
        *company = saved;
        Ok(())
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

    /// Event batches waiting to be fanned out, oldest first.
    pub async fn pending_events(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<EventBatch>, StoreError> {
        self.waiting_in(&EVENTS_PENDING, now, limit).await
    }

    /// One delivery per endpoint subscribed to each event (and existing when it happened), with
    /// the batch's progress, in transactions of at most 100 items: a run that loses a race
    /// (the progress changed) stops, and whatever it did not do the next run does. Each
    /// endpoint's queue counts its deliveries before they are written (see [`Store::enqueue`]).
    /// Returns (events, deliveries) fanned out.
    pub async fn fan_out(&self, batch: &EventBatch, endpoints: &[Endpoint]) -> Result<(usize, usize), StoreError> {
        let mut batch = batch.clone();
        let (mut events, mut deliveries) = (0, 0);
        while batch.fanned < batch.events.len() {
            let mut writes = Vec::new();
            let mut per_endpoint: std::collections::BTreeMap<&str, usize> = Default::default();
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
                    *per_endpoint.entry(&e.id).or_default() += 1;
                }
                upto += 1;
            }
            for (endpoint, n) in per_endpoint {
                self.enqueue(batch.company_id, endpoint, n, batch.created_at, false).await?;
            }
            let n = writes.len();
            writes.insert(0, batch.advanced(upto)?);
            self.transact(writes).await?;
            (events, deliveries) = (events + upto - batch.fanned, deliveries + n);
            batch.fanned = upto;
        }
        Ok((events, deliveries))
    }

    /// Counts `n` more deliveries waiting for an endpoint and puts its queue in the due index:
    /// due `at` when `at_once` (staff asked: a test or a redelivery), otherwise when it was due
    /// already (an endpoint backing off keeps backing off) or `at` (when the deliveries are).
    /// Called *before* the deliveries are written, so the count is never short of what waits
    /// (a write that then fails leaves it over, which costs a look, never a delivery). One round
    /// trip, never contended by a transaction.
    pub async fn enqueue(
        &self,
        c: CompanyId,
        endpoint: &str,
        n: usize,
        at: OffsetDateTime,
        at_once: bool,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        let now = self.clock().now();
        let due = if at_once { ":sk" } else { "if_not_exists(GSI1SK, :sk)" };
        let key = queue_key(c, endpoint);
        self.client()
            .update_item()
            .table_name(self.table())
            .key(super::keys::PK, S(key.pk))
            .key(super::keys::SK, S(key.sk))
            .update_expression(format!(
                "SET company_id = :c, endpoint_id = :w, entity = :entity, enqueued_at = :now, \
                 GSI1PK = :due, GSI1SK = {due} ADD pending :n"
            ))
            .expression_attribute_values(":c", S(c.to_string()))
            .expression_attribute_values(":w", S(endpoint.to_owned()))
            .expression_attribute_values(":entity", S("webhook_queue".into()))
            .expression_attribute_values(":now", S(crate::foundation::clock::rfc3339(now)))
            .expression_attribute_values(":due", S(ENDPOINTS_DUE.shard(&format!("{c}#{endpoint}"))))
            .expression_attribute_values(":sk", S(queue_due_sort(at, c, endpoint)))
            .expression_attribute_values(":n", N(n.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::sdk(&e))
    }

    /// Endpoint queues due by `now`, soonest first (one item per endpoint, however much waits).
    pub async fn due_queues(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<EndpointQueue>, StoreError> {
        self.waiting_in(&ENDPOINTS_DUE, now, limit).await
    }

    /// Takes an endpoint's queue for one run: moves its due time to `until` if it is still the
    /// one `seen` (so one run serves an endpoint at a time; if the run stops, the queue is due
    /// again at `until`). None when another run took it first.
    pub async fn claim_queue(
        &self,
        seen: &EndpointQueue,
        until: OffsetDateTime,
    ) -> Result<Option<EndpointQueue>, StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        let key = queue_key(seen.company_id, &seen.endpoint_id);
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(super::keys::PK, S(key.pk))
            .key(super::keys::SK, S(key.sk))
            .update_expression("SET GSI1SK = :lease")
            .condition_expression("GSI1SK = :seen")
            .expression_attribute_values(":lease", S(queue_due_sort(until, seen.company_id, &seen.endpoint_id)))
            .expression_attribute_values(":seen", S(seen.due.clone().unwrap_or_default()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(serde_dynamo::from_item(out.attributes.unwrap_or_default())?)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(StoreError::sdk(&e)),
        }
    }

    /// Ends a run's hold on a queue it claimed: records how the endpoint answers, counts off the
    /// `done` deliveries (delivered or failed for good) and makes it due at `next`; with no
    /// `next` (nothing left that the run could see) it leaves the due index, unless more was
    /// counted in than the run saw (the index had not shown it yet: it looks again in 10 s). A
    /// count left over by writes that failed long ago (nothing queued for 10 minutes) is reset.
    /// A staff request that made the queue due meanwhile keeps its time.
    pub async fn release_queue(
        &self,
        q: &EndpointQueue,
        done: usize,
        next: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        let sk = |t: OffsetDateTime| S(queue_due_sort(t, q.company_id, &q.endpoint_id));
        let mut values = super::Item::from([
            (":f".to_owned(), N(q.failures.to_string())),
            (":minus".to_owned(), N(format!("-{done}"))),
            (":done".to_owned(), N(done.to_string())),
            (":zero".to_owned(), N("0".into())),
            (":lease".to_owned(), S(q.due.clone().unwrap_or_default())),
            (":seen".to_owned(), S(crate::foundation::clock::rfc3339(q.enqueued_at))),
            (":soon".to_owned(), sk(now + time::Duration::seconds(10))),
        ]);
        let (failing_set, failing_remove) = match q.failing_since {
            Some(t) => {
                values.insert(":fs".into(), S(crate::foundation::clock::rfc3339(t)));
                ("failures = :f, failing_since = :fs", "")
            }
            None => ("failures = :f", " REMOVE failing_since"),
        };
        let also_remove = failing_remove.replace(" REMOVE", ",");
        let due_at = |at: &str| format!("SET {failing_set}, GSI1SK = {at} ADD pending :minus{failing_remove}");
        // Most wanted first; each later one when the one before's condition failed.
        let mut attempts: Vec<(String, Option<&str>)> = Vec::new();
        match next {
            Some(t) => {
                values.insert(":next".into(), sk(t));
                attempts.push((due_at(":next"), Some("GSI1SK = :lease")));
            }
            None => {
                if now - q.enqueued_at > time::Duration::minutes(10) {
                    attempts.push((
                        format!("SET {failing_set}, pending = :zero REMOVE GSI1PK, GSI1SK{also_remove}"),
                        Some("GSI1SK = :lease AND enqueued_at = :seen"),
                    ));
                }
                attempts.push((
                    format!("SET {failing_set} ADD pending :minus REMOVE GSI1PK, GSI1SK{also_remove}"),
                    Some("GSI1SK = :lease AND pending <= :done"),
                ));
                attempts.push((due_at(":soon"), Some("GSI1SK = :lease")));
            }
        }
        attempts.push((format!("SET {failing_set} ADD pending :minus{failing_remove}"), None));
        let key = queue_key(q.company_id, &q.endpoint_id);
        for (expression, condition) in attempts {
            // Only the values this expression names (DynamoDB refuses unused ones).
            let named = |name: &str| {
                let used = |text: &str| {
                    text.match_indices(name).any(|(i, _)| {
                        !text[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
                };
                used(&expression) || condition.is_some_and(used)
            };
            let used: super::Item =
                values.iter().filter(|(name, _)| named(name)).map(|(k, v)| (k.clone(), v.clone())).collect();
            let out = self
                .client()
                .update_item()
                .table_name(self.table())
                .key(super::keys::PK, S(key.pk.clone()))
                .key(super::keys::SK, S(key.sk.clone()))
                .update_expression(&expression)
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(Some(used))
                .send()
                .await;
            match out {
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => continue,
                Err(e) => return Err(StoreError::sdk(&e)),
            }
        }
        Ok(())
    }

    /// An endpoint's pending deliveries, soonest due first.
    pub async fn queued_deliveries(
        &self,
        c: CompanyId,
        endpoint: &str,
        limit: i32,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(self.query_gsi1::<Delivery>(&queued_deliveries_of(c, endpoint), limit, None, false).await?.items)
    }

    /// Pending deliveries still in the one partition they all shared before endpoint queues.
    pub async fn legacy_pending_deliveries(&self, limit: i32) -> Result<Vec<Delivery>, StoreError> {
        Ok(self.query_gsi1::<Delivery>(LEGACY_DELIVERIES_PENDING, limit, None, false).await?.items)
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
