//! The payment-webhook function: Stripe payment events applied to the ledger exactly once.
//!
//! `POST /webhooks/payments`: the `Stripe-Signature` is verified first (400 and nothing written
//! otherwise), then the event is parsed (400 if malformed; types it does not act on are
//! acknowledged and ignored). Checkout Session events and payment-intent events about the same
//! money count once: the ledger is keyed by the payment intent.
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
//! with jittered exponential backoff inside the request's time budget (8 s of the 10 s timeout),
//! so concurrent deliveries are not refused. Always 200 once verified and applied, parked or known.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::adapters::store::outbox::EmailRecord;
use portal_shared::adapters::store::payments::{self as records, EventRecord, MoneyPointer, WebhookRead};
use portal_shared::adapters::store::{Store, StoreError, Write};
use portal_shared::adapters::stripe::signature::{self, TOLERANCE_SECONDS};
use portal_shared::domain::company::Company;
use portal_shared::domain::gate::{self, Access, Viewer};
use portal_shared::domain::inspection::{Inspection, Role};
use portal_shared::domain::payments::{self, Applied, Mismatch, MoneyEvent, ParsedEvent};
use portal_shared::foundation::ids::{CompanyId, DocumentId, InspectionId};
use portal_shared::foundation::metrics::{self, Metric};
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{body_bytes, json, segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};
use rand::Rng;
use serde_json::json;

/// How long a delivery may keep retrying contention before answering 503 (the function's
/// timeout is 10 s; the provider retries a 503 later).
pub const RETRY_BUDGET: Duration = Duration::from_secs(8);

pub struct PaymentWebhook {
    config: Config,
    store: Store,
    secrets: portal_shared::adapters::secrets_manager::Secrets,
}

/// One attempt's result: done with this status, or lost a race (read again).
enum Step {
    Done(&'static str),
    Retry,
}

impl PaymentWebhook {
    /// Now, by this function's clock (the system clock on Lambda; a test's own in tests).
    fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        PaymentWebhook {
            store: Store::for_config(sdk, &config),
            secrets: portal_shared::adapters::secrets_manager::Secrets::new(sdk, config.secrets_cache),
            config,
        }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["webhooks", "payments"] => by_method!(req; POST => self.deliver(&req).await),
            _ => Err(ApiError::NotFound),
        }
    }

    async fn deliver(&self, req: &Request) -> ApiResult {
        let body = body_bytes(req);
        let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
        let now = self.now();
        // A delivery without a signature is refused before the secret is read.
        let secrets = match (&self.config.payment_webhook_secrets, header) {
            (Some(id), Some(_)) => self.secrets.values(id).await?,
            _ => Default::default(),
        };
        signature::verify(header, body, &secrets, now.unix_timestamp(), TOLERANCE_SECONDS)
            .map_err(|e| ApiError::bad_request(format!("webhook signature refused: {e}")))?;
        let event = match payments::parse(body).map_err(|e| ApiError::bad_request(e.to_string()))? {
            ParsedEvent::Ignored { id, kind } => {
                tracing::info!(event_id = %id, event_type = %kind, "webhook event type ignored");
                return ack("ignored");
            }
            ParsedEvent::Money(m) => *m,
        };
        let status = self.apply(&event).await?;
        tracing::info!(event_id = %event.id, event_type = %event.kind, status, "webhook event");
        match status {
            "applied" => metrics::count(Metric::PaymentsApplied, 1),
            // Money that matches nothing this portal asked for (or is in the other mode): kept for
            // staff. ("parked" is a refund or dispute waiting for its payment: applied on arrival.)
            "unmatched" => metrics::count(Metric::PaymentsParked, 1),
            _ => {}
        }
        ack(status)
    }

    /// Attempts until one wins or the time budget is spent, backing off with full jitter.
    async fn apply(&self, event: &MoneyEvent) -> Result<&'static str, ApiError> {
        let deadline = Instant::now() + RETRY_BUDGET;
        for attempt in 0u32.. {
            if let Step::Done(status) = self.attempt(event).await? {
                return Ok(status);
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
        tracing::warn!(event_id = %event.id, "webhook delivery gave up on contention");
        Err(ApiError::Unavailable {
            detail: "the inspection kept changing; the provider will retry this delivery".into(),
            retry_after_seconds: 5,
        })
    }

    async fn attempt(&self, e: &MoneyEvent) -> Result<Step, ApiError> {
        let now = self.now();
        let read = self.store.webhook_read(e).await?;
        if read.duplicate {
            return Ok(Step::Done("duplicate"));
        }
        let bound = read.pointers.iter().find_map(|(_, p)| p.as_ref().and_then(|p| p.target().map(|t| (t, p))));
        let target = if e.movement.is_payment() {
            match (payments::bind_payment(e, read.checkout.as_ref(), self.config.payment_livemode), bound) {
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
                None => match payments::bind_payment(e, None, self.config.payment_livemode) {
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

fn ack(status: &str) -> ApiResult {
    json(StatusCode::OK, &json!({ "received": true, "status": status }))
}

impl HttpFunction for PaymentWebhook {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, &self.config, |req| self.route(req)).await
    }

    /// Both calls of a delivery: the signing secrets (read and cached) and DynamoDB, at once.
    async fn warm_up(&self) {
        let secrets = async {
            if let Some(id) = &self.config.payment_webhook_secrets {
                self.secrets.warm_up(id).await;
            }
        };
        tokio::join!(secrets, self.store.warm_up());
    }
}
