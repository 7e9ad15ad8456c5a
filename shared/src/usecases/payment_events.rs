//! Applying a verified payment event (Stripe's) to the ledger exactly once: the logic of the
//! payment-webhook function, shared with the every-minute job, which applies the events a
//! delivery queued when its inspection was too busy to apply them in time (see [`queue`]).
//!
//! A payment is applied only when it matches a checkout this server created (Pay Now), or, for
//! payments made elsewhere, when its metadata names the inspection with a currency and the mode this
//! deployment expects ([`payments::bind_payment`]); anything else is kept as unmatched money for
//! staff. The first payment applied binds its payment intent (and charge) to the inspection, for
//! good; refunds and disputes, which carry no metadata, are found through that binding, and those
//! that arrive before their payment wait on it and are applied by the payment that binds it.
//!
//! Round trips: one `BatchGetItem` (event record, checkout, company, inspection, pointers) and one
//! transaction for a payment; a refund or dispute of a known payment needs one more read (its
//! inspection, found through the pointer): 3 at worst. Contention on a busy inspection is retried
//! with jittered exponential backoff within the caller's budget.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::adapters::store::outbox::EmailRecord;
use crate::adapters::store::payments::{self as records, EventRecord, MoneyPointer, WebhookRead};
use crate::adapters::store::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::gate::{self, Access, Viewer};
use crate::domain::inspection::{Inspection, Role};
use crate::domain::payments::{self, Applied, Mismatch, MoneyEvent};
use crate::foundation::ids::{CompanyId, DocumentId, InspectionId};
use crate::ApiError;

/// One attempt's result: done with this status, or lost a race (read again).
enum Step {
    Done(&'static str),
    Retry,
}

/// Applies events with one store, in this deployment's payment mode.
pub struct Applier<'a> {
    pub store: &'a Store,
    /// Whether payments made outside Pay Now must be live money (`PAYMENT_LIVEMODE`).
    pub livemode: bool,
}

impl Applier<'_> {
    fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    /// Attempts until one wins or `budget` is spent, backing off with full jitter: the status
    /// (`applied`, `duplicate`, `already_known`, `parked`, `unmatched`), or `None` when the
    /// inspection kept changing under it the whole time.
    pub async fn apply(&self, event: &MoneyEvent, budget: Duration) -> Result<Option<&'static str>, ApiError> {
        let deadline = Instant::now() + budget;
        for attempt in 0u32.. {
            if let Step::Done(status) = self.attempt(event).await? {
                return Ok(Some(status));
            }
            // Full jitter, the cap doubling from 20 ms to 1.28 s: many writers of one inspection
            // spread out instead of colliding again.
            let cap = Duration::from_millis(20 << attempt.min(6));
            let pause = cap.mul_f64(rand::thread_rng().gen::<f64>());
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Ok(None)
    }

    async fn attempt(&self, e: &MoneyEvent) -> Result<Step, ApiError> {
        let now = self.now();
        let read = self.store.webhook_read(e).await?;
        if read.duplicate {
            return Ok(Step::Done("duplicate"));
        }
        let bound = read.pointers.iter().find_map(|(_, p)| p.as_ref().and_then(|p| p.target().map(|t| (t, p))));
        let target = if e.movement.is_payment() {
            match (payments::bind_payment(e, read.checkout.as_ref(), self.livemode), bound) {
                (Ok(t), Some((b, _))) if b != t => {
                    return self.unmatched(e, "its payment intent already paid another inspection").await
                }
                (Ok(t), _) => t,
                // A payment event without metadata about an intent already bound (a late failure).
                (Err(_), Some((b, p))) if e.target.is_none() && e.checkout_id.is_none() && p.livemode == e.livemode => {
                    b
                }
                (Err(reason), _) => return self.unmatched(e, &reason).await,
            }
        } else {
            match bound {
                Some((b, p)) if p.livemode == e.livemode => b,
                Some(_) => return self.unmatched(e, "its livemode does not match its payment's").await,
                None => match payments::bind_payment(e, None, self.livemode) {
                    Ok(t) => t,
                    Err(_) if !read.pointers.is_empty() => return self.park(e, &read).await,
                    Err(reason) => return self.unmatched(e, &reason).await,
                },
            }
        };
        let found = match read.found {
            Some((c, i)) if (c.id, i.id) == target => Some((c, i)),
            // The batch read already looked for the inspection the metadata names.
            _ if e.target == Some(target) => None,
            _ => self.store.company_and_inspection(target.0, target.1).await?,
        };
        let Some((company, mut inspection)) = found else {
            return self.unmatched(e, "no known inspection is named").await;
        };
        let before = released(&company, &inspection);
        let ledger_before = inspection.ledger.clone();
        let mut changed = match inspection.apply_money(e, now) {
            Err(Mismatch::Currency { event: got, inspection: want }) => {
                let reason = format!("currency {got} does not match the inspection's {want}");
                return self.unmatched(e, &reason).await;
            }
            Ok(applied) => applied == Applied::Changed,
        };
        // A payment binds its intent and charge to the inspection, applying what waited for it.
        let mut also = Vec::new();
        if e.movement.is_payment() {
            for (id, pointer) in &read.pointers {
                if pointer.as_ref().is_some_and(|p| p.bound) {
                    continue;
                }
                also.push(MoneyPointer::bind(pointer.as_ref(), id, target, e.livemode)?);
                for parked in pointer.iter().flat_map(MoneyPointer::parked_events) {
                    match inspection.apply_money(&parked, now) {
                        Ok(applied) => changed |= applied == Applied::Changed,
                        // Not this inspection's currency: it stays in the unmatched list for staff.
                        Err(Mismatch::Currency { .. }) => continue,
                    }
                    // Applied (or already known): no longer waiting for staff.
                    also.push(records::unmatched_resolved(&parked));
                }
            }
            if let (Some(c), Some(pi)) = (&read.checkout, &e.payment_intent) {
                if c.payment_intent.is_none() {
                    also.push(records::checkout_intent(c, pi)?);
                }
            }
        }
        if !changed && also.is_empty() {
            self.store.record_event_only(e, "already_known", now).await?;
            return Ok(Step::Done("already_known"));
        }
        let outcome = if changed { "applied" } else { "already_known" };
        let mut writes = vec![EventRecord::write(e, outcome, now)?];
        writes.extend(also);
        if changed {
            writes.extend(report_ready_emails(&company, &inspection, &before, e, now)?);
            // A receipt per payment settled, a notice per refund (once each, whatever redelivers).
            writes.extend(EmailRecord::money_notices(&company, &ledger_before, &inspection, now)?);
        }
        let result = if changed {
            self.store.save_inspection_with(&mut inspection, &company, writes).await
        } else {
            self.store.transact(writes).await
        };
        settle(result, outcome)
    }

    /// A refund or dispute whose payment has not arrived: it waits on the payment's pointer.
    async fn park(&self, e: &MoneyEvent, read: &WebhookRead) -> Result<Step, ApiError> {
        let Some((id, pointer)) = read.pointers.first() else { return Ok(Step::Retry) };
        let now = self.now();
        let record = e.unmatched(format!("waiting for its payment {id}; applied when it arrives"), now);
        let writes = vec![
            EventRecord::write(e, "parked", now)?,
            MoneyPointer::park(pointer.as_ref(), id, e)?,
            records::unmatched_write(&record)?,
        ];
        settle(self.store.transact(writes).await, "parked")
    }

    async fn unmatched(&self, event: &MoneyEvent, reason: &str) -> Result<Step, ApiError> {
        let record = event.unmatched(reason, self.now());
        tracing::warn!(event_id = %event.id, event_type = %event.kind, reason, "payment kept as unmatched");
        Ok(Step::Done(if self.store.keep_unmatched(event, &record).await? { "unmatched" } else { "duplicate" }))
    }
}

/// A transaction's result: lost races are retried (a duplicate shows on the next read).
fn settle(result: Result<(), StoreError>, outcome: &'static str) -> Result<Step, ApiError> {
    match result {
        Ok(()) => Ok(Step::Done(outcome)),
        Err(e) if e.is_condition_failure() || is_conflict(&e) => Ok(Step::Retry),
        Err(e) => Err(e.into()),
    }
}

fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::TransactionCanceled(r) if r.iter().any(|r| r == "TransactionConflict"))
}

/// One "your report is ready" email per client and buyer's agent, when this event released a
/// published report.
fn report_ready_emails(
    company: &Company,
    inspection: &Inspection,
    before: &BTreeSet<DocumentId>,
    e: &MoneyEvent,
    now: time::OffsetDateTime,
) -> Result<Vec<Write>, ApiError> {
    let Some(doc) = released(company, inspection).difference(before).next().copied() else { return Ok(Vec::new()) };
    let ids: (CompanyId, InspectionId) = (company.id, inspection.id);
    let mut writes = Vec::new();
    for (n, p) in inspection.people.iter().enumerate() {
        if matches!(p.role, Role::Client | Role::BuyerAgent) && inspection.emailable(n, company) {
            let dedupe = format!("report_ready#{}#{}", e.id, p.id);
            writes.push(EmailRecord::new(ids.0, ids.1, p.id, "report_ready", Some(doc), dedupe, now).create()?);
        }
    }
    Ok(writes)
}

/// Published reports a client may open now.
fn released(company: &Company, inspection: &Inspection) -> BTreeSet<DocumentId> {
    inspection
        .documents
        .iter()
        .filter(|d| d.kind.is_report())
        .filter(|d| gate::decide(d, inspection, company, Viewer::Person(Role::Client)) == Access::Available)
        .map(|d| d.id)
        .collect()
}

// ---- events received but not applied yet ----

/// Verified events a delivery could not apply within its budget (its inspection kept changing
/// under it): acknowledged to the provider once stored here, applied by the every-minute job in
/// the order received. GSI1 partitions `PAYQUEUE#n`, by event id.
pub const QUEUE: keys::Queue = keys::Queue { base: "PAYQUEUE", shards: 4 };

/// How long the job gives one queued event (its inspection is a busy one).
pub const QUEUED_BUDGET: Duration = Duration::from_secs(5);

/// A received event waiting to be applied: its verified body as delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    pub event_id: String,
    pub body: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub received_at: time::OffsetDateTime,
    /// The inspection its metadata names, when it names one (its portal shows the payment as
    /// processing until it is applied).
    #[serde(default)]
    pub target: Option<(CompanyId, InspectionId)>,
}

impl Queued {
    fn record(&self) -> Result<Record, StoreError> {
        let sort = format!("{}#{}", crate::foundation::clock::rfc3339(self.received_at), self.event_id);
        Ok(Record::new(keys::queued_payment(&self.event_id), "payment_queued", self)?
            .with_gsi1(QUEUE.shard(&self.event_id), sort))
    }

    fn marker(&self, add: bool) -> Option<Write> {
        let (c, i) = self.target?;
        Some(Write::Update {
            key: keys::payments_queued(c, i),
            expression: if add { "ADD events :e" } else { "DELETE events :e" },
            condition: "attribute_exists(PK) OR attribute_not_exists(PK)",
            values: std::collections::HashMap::from([(
                ":e".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::Ss(vec![self.event_id.clone()]),
            )]),
        })
    }
}

/// Stores a verified event for the job to apply (one transaction: the event, and the mark its
/// inspection's portal reads). A copy already waiting is not stored twice.
pub async fn queue(store: &Store, event: &MoneyEvent, body: &[u8]) -> Result<(), ApiError> {
    let queued = Queued {
        event_id: event.id.clone(),
        body: String::from_utf8_lossy(body).into_owned(),
        received_at: store.clock().now(),
        target: event.target,
    };
    let mut writes = vec![Write::Create(queued.record()?)];
    writes.extend(queued.marker(true));
    match store.transact(writes).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_condition_failure() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What one run of [`apply_queued`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct QueueReport {
    pub applied: usize,
    /// Still contended (or failed): left for the next run.
    pub left: usize,
}

/// Applies up to `max` queued events, oldest first, one at a time (their inspections are the
/// busy ones), each with `budget`; an applied event leaves the queue with its portal mark.
pub async fn apply_queued(
    applier: &Applier<'_>,
    now: time::OffsetDateTime,
    max: i32,
    budget: Duration,
    deadline: Option<Instant>,
) -> Result<QueueReport, StoreError> {
    let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
    let waiting: Vec<Queued> = applier.store.query_gsi1_upto(&QUEUE, &upto, max).await?;
    let mut report = QueueReport::default();
    for queued in waiting {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            report.left += 1;
            continue;
        }
        let outcome = match payments::parse(queued.body.as_bytes()) {
            Ok(payments::ParsedEvent::Money(event)) => applier.apply(&event, budget).await.map(|s| s.is_some()),
            // It parsed when it was received; a body that no longer does is dropped with a log.
            _ => {
                tracing::error!(event_id = %queued.event_id, "a queued payment event no longer parses");
                Ok(true)
            }
        };
        match outcome {
            Ok(true) => {
                let mut writes = vec![Write::Delete(keys::queued_payment(&queued.event_id))];
                writes.extend(queued.marker(false));
                applier.store.transact(writes).await?;
                report.applied += 1;
            }
            Ok(false) => report.left += 1,
            Err(e) => {
                tracing::error!(event_id = %queued.event_id, error = %e.problem().detail, "a queued payment event could not be applied");
                report.left += 1;
            }
        }
    }
    Ok(report)
}
