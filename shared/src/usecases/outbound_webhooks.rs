//! Delivering outbound webhooks (run by the every-minute job, after the email outbox).
//!
//! Each run fans out the events written since the last one (one delivery per subscribed
//! endpoint, in one transaction with the event), then sends the deliveries that are due: `POST`
//! of the event's JSON with `Portal-Signature: t=…,v1=…` (HMAC-SHA256 over `"{t}.{body}"`, the
//! scheme Stripe uses and the payment webhook verifies; during a day after a rotation a second
//! `v1` from the previous secret) and `Portal-Event-Id`. Any 2xx within 10 s is delivered;
//! anything else is tried again with exponential backoff and full jitter (30 s doubling, capped
//! at 6 h) until three days after the first attempt, when the delivery fails, the endpoint is
//! disabled and the company's staff are emailed. Redirects are not followed. In the cloud, only
//! `https://` targets whose every address is public are called, and the connection goes to the
//! address checked (no DNS rebinding between check and call).

use std::net::SocketAddr;
use std::time::Instant;

use time::{Duration, OffsetDateTime};

use crate::adapters::store::outbox::{EmailRecord, Prepared};
use crate::adapters::store::webhooks::{Delivery, DeliveryState, Endpoint};
use crate::adapters::store::{Store, StoreError, Write};
pub use crate::domain::webhook_targets::{is_public, Targets};

pub const GIVE_UP_AFTER: Duration = Duration::days(3);
const FIRST_RETRY: Duration = Duration::seconds(30);
const MAX_RETRY: Duration = Duration::hours(6);
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const RESPONSE_KEPT: usize = 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WebhookReport {
    pub events: usize,
    pub deliveries_created: usize,
    pub delivered: usize,
    pub failed_attempts: usize,
    pub given_up: usize,
}

/// The next try after `attempts` failures: 30 s doubling, at most 6 h, with full jitter.
pub fn backoff(attempts: u32) -> Duration {
    use rand::Rng;
    let cap = (FIRST_RETRY * 2i32.saturating_pow(attempts.saturating_sub(1).min(20))).min(MAX_RETRY);
    let millis = cap.whole_milliseconds().max(1) as u64;
    Duration::milliseconds(rand::thread_rng().gen_range(millis / 2..=millis) as i64)
}

/// `Portal-Signature` for `body` at `t`: one `v1` per secret that signs now.
pub fn signature(secrets: &[&str], t: i64, body: &str) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(&format!(",v1={}", crate::adapters::stripe::signature::sign(s, t, body.as_bytes())));
    }
    out
}

pub struct Deliverer {
    targets: Targets,
}

enum Outcome {
    Delivered { status: u16, latency_ms: u64, body: String },
    Failed { status: Option<u16>, latency_ms: u64, body: Option<String>, error: String },
}

impl Deliverer {
    pub fn new(targets: Targets) -> Self {
        Deliverer { targets }
    }

    /// Fans out pending events, then sends due deliveries, until `deadline`.
    pub async fn run(
        &self,
        store: &Store,
        now: OffsetDateTime,
        limit: i32,
        deadline: Instant,
    ) -> Result<WebhookReport, StoreError> {
        let mut report = WebhookReport::default();
        for event in store.pending_events(now, limit).await? {
            if Instant::now() >= deadline {
                return Ok(report);
            }
            let endpoints = store.endpoints(event.company_id).await?;
            match store.fan_out(&event, &endpoints).await {
                Ok((events, deliveries)) => {
                    report.events += events;
                    report.deliveries_created += deliveries;
                }
                Err(e) if e.is_condition_failure() => {} // another run did it
                Err(e) => return Err(e),
            }
        }
        for d in store.due_deliveries(now, limit).await? {
            if Instant::now() >= deadline {
                break;
            }
            Box::pin(self.deliver(store, d, now, &mut report)).await?;
        }
        Ok(report)
    }

    async fn deliver(
        &self,
        store: &Store,
        mut d: Delivery,
        now: OffsetDateTime,
        report: &mut WebhookReport,
    ) -> Result<(), StoreError> {
        // Claim it: push its next attempt past this one's timeout, conditional on its revision, and
        // count the attempt now, so one that never finishes (the function stopped mid-POST) still
        // counts toward giving up.
        let first_attempt = d.retry_from.unwrap_or(d.created_at);
        d.next_attempt_at = now + Duration::seconds(60);
        d.attempts += 1;
        if let Err(e) = store.save_delivery(&mut d).await {
            return if e.is_condition_failure() { Ok(()) } else { Err(e) };
        }
        let endpoint = store.endpoint(d.company_id, &d.endpoint_id).await?;
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
            d.state = DeliveryState::Failed;
            d.last_error = Some("the endpoint is disabled or deleted".into());
            return store.save_delivery(&mut d).await;
        };
        match self.post(&endpoint, &d, now).await {
            Outcome::Delivered { status, latency_ms, body } => {
                d.state = DeliveryState::Delivered;
                d.delivered_at = Some(now);
                (d.response_status, d.latency_ms, d.response_body, d.last_error) =
                    (Some(status), Some(latency_ms), Some(body), None);
                report.delivered += 1;
                store.save_delivery(&mut d).await
            }
            Outcome::Failed { status, latency_ms, body, error } => {
                (d.response_status, d.latency_ms, d.response_body, d.last_error) =
                    (status, Some(latency_ms), body, Some(error));
                report.failed_attempts += 1;
                if now - first_attempt >= GIVE_UP_AFTER {
                    report.given_up += 1;
                    return Box::pin(give_up(store, d, endpoint, now)).await;
                }
                d.next_attempt_at = now + backoff(d.attempts);
                store.save_delivery(&mut d).await
            }
        }
    }

    async fn post(&self, endpoint: &Endpoint, d: &Delivery, now: OffsetDateTime) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome::Failed { status: None, latency_ms: 0, body: None, error };
        let client = match self.client_for(&endpoint.url).await {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let t = now.unix_timestamp();
        let sent = client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("user-agent", "InspectionPortal-Webhooks/1")
            .header("portal-event-id", &d.event_id)
            .header("portal-signature", signature(&endpoint.signing_secrets(now), t, &d.body))
            .body(d.body.clone())
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match sent {
            Err(e) => Outcome::Failed {
                status: None,
                latency_ms,
                body: None,
                error: if e.is_timeout() { "timed out after 10 s".into() } else { "could not connect".into() },
            },
            Ok(resp) => {
                let status = resp.status();
                let body = first_bytes(resp, RESPONSE_KEPT).await;
                if status.is_success() {
                    Outcome::Delivered { status: status.as_u16(), latency_ms, body }
                } else {
                    let error = format!("answered {status}");
                    Outcome::Failed { status: Some(status.as_u16()), latency_ms, body: Some(body), error }
                }
            }
        }
    }

    /// A client for one delivery: no redirects, 10 s, and (in the cloud) pinned to an address
    /// checked to be public.
    async fn client_for(&self, url: &str) -> Result<reqwest::Client, String> {
        self.targets.check_url(url)?;
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(TIMEOUT);
        let builder = match self.targets {
            Targets::Local => builder,
            Targets::Cloud => {
                let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_owned())?;
                let host = parsed.host_str().unwrap_or_default().to_owned();
                let port = parsed.port_or_known_default().unwrap_or(443);
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|_| format!("{host} does not resolve"))?
                    .collect();
                if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                    return Err(format!("{host} resolves to a private, loopback or link-local address"));
                }
                builder.resolve(&host, addrs[0])
            }
        };
        builder.build().map_err(|_| "could not build the HTTP client".into())
    }
}

/// The first `limit` bytes of an answer, as text; the rest is never read (the connection is
/// dropped), so an endpoint streaming without end costs a kilobyte, not the function's memory.
async fn first_bytes(mut resp: reqwest::Response, limit: usize) -> String {
    let mut kept = Vec::with_capacity(limit);
    while kept.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(limit - kept.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Three days of failures: the delivery fails, the endpoint is disabled and the company's staff
/// are told by email — all in one transaction, so it happens once.
async fn give_up(
    store: &Store,
    mut d: Delivery,
    mut endpoint: Endpoint,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    d.state = DeliveryState::Failed;
    endpoint.enabled = false;
    endpoint.disabled_reason =
        Some(format!("deliveries failed for 3 days (last: {})", d.last_error.clone().unwrap_or_default()));
    let company = store.company(d.company_id).await?;
    let mut writes = vec![d.replace()?];
    let expected = endpoint.revision;
    endpoint.revision += 1;
    writes.push(Write::Replace { record: endpoint.record()?, expected_revision: expected });
    if let Some(company) = company {
        let nil = crate::foundation::ids::InspectionId::from_ulid(ulid::Ulid::nil());
        for to in &company.staff_emails {
            let content = Prepared {
                subject: format!("Webhook endpoint disabled: {}", endpoint.url),
                text: format!(
                    "Deliveries to your webhook endpoint {url} ({id}) have failed for three days, so it is now \
                     disabled and receives nothing. Last error: {error}.\n\nFix the endpoint, then enable it again \
                     (PATCH /staff/webhooks/{id} {{\"enabled\": true}}) and redeliver what it missed \
                     (POST /staff/webhooks/{id}/deliveries/<event id>/redeliver).\n\n{company}",
                    url = endpoint.url,
                    id = endpoint.id,
                    error = d.last_error.clone().unwrap_or_default(),
                    company = company.name,
                ),
            };
            let dedupe = format!("webhook_disabled#{}#{}", endpoint.id, d.event_id);
            let about = crate::foundation::ids::PersonId::new();
            let email =
                EmailRecord::prepared(d.company_id, nil, about, "webhook_disabled", dedupe, to.clone(), content, now);
            writes.push(email.create()?);
        }
    }
    match store.transact(writes).await {
        Err(e) if e.is_condition_failure() => Ok(()),
        other => other,
    }
}
