//! The payment-webhook function: Stripe payment events applied to the ledger exactly once.
//!
//! `POST /webhooks/payments`: the `Stripe-Signature` is verified first (400 and nothing written
//! otherwise), then the event is parsed (400 if malformed; types it does not act on are
//! acknowledged and ignored). Checkout Session events and payment-intent events about the same
//! money count once: the ledger is keyed by the payment intent.
//!
//! Applying an event is [`portal_shared::usecases::payment_events`] (shared with the job): one
//! `BatchGetItem` and one transaction for a payment, 3 round trips at worst. A busy inspection's
//! contention is retried with jittered backoff for [`INLINE_BUDGET`]; an event still not applied
//! then is stored (durably received: a transaction of the event and its inspection's mark) and
//! acknowledged `{"status": "queued"}`, and the every-minute job applies it in the order received
//! while the portal shows the payment as processing — so a storm on one inspection is
//! acknowledged within a second, never refused (Stripe's advice: answer 2xx quickly, process
//! asynchronously). Always 200 once verified and applied, queued, parked or known.

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::adapters::store::Store;
use portal_shared::adapters::stripe::signature::{self, TOLERANCE_SECONDS};
use portal_shared::domain::payments::{self, ParsedEvent};
use portal_shared::foundation::metrics::{self, Metric};
use portal_shared::usecases::payment_events::{self, Applier};
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{body_bytes, json, segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};
use serde_json::json;

/// How long a delivery may keep retrying contention before it stores the event for the job and
/// acknowledges it (Stripe's advice: answer 2xx quickly, process asynchronously). Within a
/// second whatever the inspection's load.
pub const INLINE_BUDGET: Duration = Duration::from_millis(400);

pub struct PaymentWebhook {
    config: Config,
    store: Store,
    secrets: portal_shared::adapters::secrets_manager::Secrets,
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
        let applier = Applier { store: &self.store, livemode: self.config.payment_livemode };
        let status = match applier.apply(&event, INLINE_BUDGET).await? {
            Some(status) => status,
            // Durably received: the job applies it (the portal shows the payment as processing).
            None => {
                payment_events::queue(&self.store, &event, body).await?;
                "queued"
            }
        };
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
