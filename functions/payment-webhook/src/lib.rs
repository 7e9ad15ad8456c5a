//! The payment-webhook function: Stripe-compatible payment events applied to the ledger exactly
//! once.
//!
//! `POST /webhooks/payments`: the `Stripe-Signature` is verified first (400 and nothing written
//! otherwise), then the event is parsed (400 if malformed; unknown types are acknowledged and
//! ignored). One `BatchGetItem` reads the event record, the company and the inspection; one
//! transaction writes the event record, the ledger change (with the revision read), the payment
//! intent pointer and, when the payment releases a published report, one outbox email per client and
//! buyer's agent. Redeliveries find the event record (or lose the transaction to it) and change
//! nothing. Money that names no known inspection is kept for staff review. Always 200 once verified.

use std::collections::BTreeSet;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::domain::company::Company;
use portal_shared::domain::gate::{self, Access, Viewer};
use portal_shared::domain::inspection::{Inspection, Role};
use portal_shared::domain::payments::{self, Applied, Mismatch, MoneyEvent, Movement, ParsedEvent};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{body_bytes, json, segments, serve, ApiResult};
use portal_shared::ids::DocumentId;
use portal_shared::store::outbox::EmailRecord;
use portal_shared::store::payments::{EventRecord, IntentPointer, WebhookContext};
use portal_shared::store::{Store, StoreError};
use portal_shared::webhook::{self, TOLERANCE_SECONDS};
use portal_shared::{by_method, clock, ApiError, Config};
use serde_json::json;

pub struct PaymentWebhook {
    config: Config,
    store: Store,
}

impl PaymentWebhook {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        PaymentWebhook { store: Store::new(sdk, config.table_name.clone()), config }
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
        let now = clock::now();
        webhook::verify(header, body, &self.config.payment_webhook_secrets, now.unix_timestamp(), TOLERANCE_SECONDS)
            .map_err(|e| ApiError::bad_request(format!("webhook signature refused: {e}")))?;
        let event = match payments::parse(body).map_err(|e| ApiError::bad_request(e.to_string()))? {
            ParsedEvent::Ignored { id, kind } => {
                tracing::info!(event_id = %id, event_type = %kind, "webhook event type ignored");
                return ack("ignored");
            }
            ParsedEvent::Money(m) => m,
        };
        let status = self.apply(&event).await?;
        tracing::info!(event_id = %event.id, event_type = %event.kind, status, "webhook event");
        ack(status)
    }

    async fn apply(&self, event: &MoneyEvent) -> Result<&'static str, ApiError> {
        let now = clock::now();
        for _attempt in 0..5 {
            let (company, mut inspection) = match self.store.webhook_context(event).await? {
                WebhookContext::Duplicate => return Ok("duplicate"),
                WebhookContext::Unknown => return self.unmatched(event, "no known inspection is named").await,
                WebhookContext::Found(found) => *found,
            };
            let before = released(&company, &inspection);
            match inspection.apply_money(event, now) {
                Err(Mismatch::Currency { event: got, inspection: want }) => {
                    return self
                        .unmatched(event, &format!("currency {got} does not match the inspection's {want}"))
                        .await
                }
                Ok(Applied::AlreadyKnown) => {
                    self.store.record_event_only(event, "already_known", now).await?;
                    return Ok("already_known");
                }
                Ok(Applied::Changed) => {}
            }
            let mut writes = vec![EventRecord::write(event, "applied", now)?];
            if let Movement::Succeeded { intent, .. } | Movement::Processing { intent, .. } = &event.movement {
                writes.push(IntentPointer::write(intent, company.id, inspection.id)?);
            }
            let newly: Vec<DocumentId> = released(&company, &inspection).difference(&before).copied().collect();
            if let Some(doc) = newly.first() {
                // One "your report is ready" email per client and buyer's agent for this event.
                for (n, p) in inspection.people.iter().enumerate() {
                    if matches!(p.role, Role::Client | Role::BuyerAgent) && inspection.needs_token(n, &company) {
                        let dedupe = format!("report_ready#{}#{}", event.id, p.id);
                        let email =
                            EmailRecord::new(company.id, inspection.id, p.id, "report_ready", Some(*doc), dedupe, now);
                        writes.push(email.create()?);
                    }
                }
            }
            match self.store.save_inspection_with(&mut inspection, writes).await {
                Ok(()) => return Ok("applied"),
                // The second write is the event record: losing on it means a concurrent delivery of
                // this very event won. Losing only on the revision means something else changed the
                // inspection: read again and re-apply.
                Err(StoreError::TransactionCanceled(reasons))
                    if reasons.get(1).is_some_and(|r| r == "ConditionalCheckFailed") =>
                {
                    return Ok("duplicate")
                }
                Err(e)
                    if e.is_condition_failure()
                        || matches!(&e, StoreError::TransactionCanceled(r) if r.iter().any(|r| r == "TransactionConflict")) =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict("busy", "the inspection kept changing; the provider will retry this delivery"))
    }

    async fn unmatched(&self, event: &MoneyEvent, reason: &str) -> Result<&'static str, ApiError> {
        let record = event.unmatched(reason, clock::now());
        Ok(if self.store.keep_unmatched(event, &record).await? { "unmatched" } else { "duplicate" })
    }
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
        serve(req, self.config.max_body_bytes, |req| self.route(req)).await
    }
}
