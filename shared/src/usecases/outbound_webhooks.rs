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
use crate::adapters::store::webhooks::{Delivery, DeliveryState, Endpoint, EndpointQueue};
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

impl WebhookReport {
    pub fn add(&mut self, other: &WebhookReport) {
        self.events += other.events;
        self.deliveries_created += other.deliveries_created;
        self.delivered += other.delivered;
        self.failed_attempts += other.failed_attempts;
        self.given_up += other.given_up;
    }
}

/// Endpoints served at once, across all companies (each endpoint one delivery at a time).
pub const CONCURRENCY: usize = 16;
/// Deliveries an answering endpoint is sent per look at its queue.
const PAGE: usize = 25;
/// Deliveries failed per turn of a disabled or deleted endpoint.
const DISABLED_PAGE: i32 = 100;
/// How long a run holds an endpoint's queue (past the job's timeout, so a stopped run's queue
/// comes back).
const LEASE: Duration = Duration::seconds(120);

/// The due queues, reordered so that every company's first comes before any company's second.
fn round_robin(queues: Vec<EndpointQueue>) -> Vec<EndpointQueue> {
    let mut by_company: Vec<std::collections::VecDeque<EndpointQueue>> = Vec::new();
    for q in queues {
        match by_company.iter_mut().find(|c| c.front().is_some_and(|f| f.company_id == q.company_id)) {
            Some(c) => c.push_back(q),
            None => by_company.push(std::collections::VecDeque::from([q])),
        }
    }
    let mut out = Vec::new();
    while by_company.iter().any(|c| !c.is_empty()) {
        out.extend(by_company.iter_mut().filter_map(std::collections::VecDeque::pop_front));
    }
    out
}

/// Moves deliveries left pending in the shared partition of earlier versions into their
/// endpoint's queue (a page per run; none once they are moved).
async fn requeue_legacy(store: &Store) -> Result<(), StoreError> {
    for mut d in store.legacy_pending_deliveries(100).await? {
        store.enqueue(d.company_id, &d.endpoint_id, 1, d.next_attempt_at, false).await?;
        match store.save_delivery(&mut d).await {
            Err(e) if !e.is_condition_failure() => return Err(e),
            _ => {}
        }
    }
    Ok(())
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

/// An endpoint and the ports its company allows besides 443.
struct Target {
    endpoint: Endpoint,
    ports: Vec<u16>,
}

/// What one attempt came to.
enum Attempt {
    /// Another run took it first.
    Lost,
    Delivered,
    /// Not delivered; `gave_up` when it has failed for good (its own three days are over).
    Failed {
        delivery: Box<Delivery>,
        gave_up: bool,
    },
}

enum Outcome {
    Delivered { status: u16, latency_ms: u64, body: String },
    Failed { status: Option<u16>, latency_ms: u64, body: Option<String>, error: String },
}

impl Deliverer {
    pub fn new(targets: Targets) -> Self {
        Deliverer { targets }
    }

    /// Fans out pending events, then serves the endpoints that are due, until `deadline`:
    /// round-robin across companies (each company's soonest-due endpoint first, then each
    /// one's second, …), at most [`CONCURRENCY`] at once. `limit` bounds the events and the
    /// endpoints one run takes.
    pub async fn run(
        &self,
        store: &Store,
        now: OffsetDateTime,
        limit: i32,
        deadline: Instant,
    ) -> Result<WebhookReport, StoreError> {
        use futures::StreamExt;
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
                Err(e) if e.is_condition_failure() || e.is_conflict() => {} // another run is at it
                Err(e) => return Err(e),
            }
        }
        requeue_legacy(store).await?;
        let queues = round_robin(store.due_queues(now, limit).await?);
        let served: Vec<Result<WebhookReport, StoreError>> = futures::stream::iter(queues)
            .map(|q| self.serve(store, q, now, deadline))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut first_error = None;
        for r in served {
            match r {
                Ok(r) => report.add(&r),
                Err(e) => {
                    tracing::error!(error = %e, "serving a webhook endpoint failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(report), Err)
    }

    /// One endpoint's turn in a run: its due deliveries in order, one at a time (an endpoint
    /// never has two of ours open). While it answers, up to the run's deadline; once it fails,
    /// it waits out a backoff step (30 s doubling to 6 h, for the endpoint, not per delivery)
    /// and then is tried with one delivery. Three days without a 2xx disable it. What waits
    /// for a disabled or deleted endpoint fails.
    async fn serve(
        &self,
        store: &Store,
        seen: EndpointQueue,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<WebhookReport, StoreError> {
        let mut report = WebhookReport::default();
        let Some(mut q) = store.claim_queue(&seen, now + LEASE).await? else {
            return Ok(report); // another run has it
        };
        let mut done = 0;
        let (endpoint, company) =
            tokio::try_join!(store.endpoint(q.company_id, &q.endpoint_id), store.company(q.company_id))?;
        // The ports the company allows besides 443, as they are now.
        let ports = company.map(|c| c.settings.webhook_ports).unwrap_or_default();
        let next = match endpoint.filter(|e| e.enabled) {
            None => {
                let waiting = store.queued_deliveries(q.company_id, &q.endpoint_id, DISABLED_PAGE).await?;
                for mut d in waiting.iter().cloned() {
                    d.state = DeliveryState::Failed;
                    d.last_error = Some("the endpoint is disabled or deleted".into());
                    match store.save_delivery(&mut d).await {
                        Ok(()) => done += 1,
                        Err(e) if e.is_condition_failure() => {}
                        Err(e) => return Err(e),
                    }
                }
                (waiting.len() == DISABLED_PAGE as usize).then_some(now)
            }
            Some(endpoint) => {
                let target = Target { endpoint, ports };
                self.drain(store, &mut q, target, now, deadline, &mut done, &mut report).await?
            }
        };
        store.release_queue(&q, done, next, now).await?;
        Ok(report)
    }

    /// Sends an enabled endpoint's due deliveries; returns when the queue is next due (None:
    /// nothing waits).
    #[allow(clippy::too_many_arguments)]
    async fn drain(
        &self,
        store: &Store,
        q: &mut EndpointQueue,
        target: Target,
        now: OffsetDateTime,
        deadline: Instant,
        done: &mut usize,
        report: &mut WebhookReport,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        loop {
            // Answering: a page at a time. Failing: one, to see whether it is back.
            let take = if q.failures == 0 { PAGE } else { 1 };
            let waiting = store.queued_deliveries(q.company_id, &q.endpoint_id, take as i32 + 1).await?;
            let due: Vec<Delivery> = waiting.iter().filter(|d| d.next_attempt_at <= now).take(take).cloned().collect();
            if due.is_empty() {
                return Ok(waiting.first().map(|d| d.next_attempt_at));
            }
            let full = due.len() == take;
            for d in due {
                if Instant::now() >= deadline {
                    return Ok(Some(now));
                }
                match Box::pin(self.deliver(store, d, &target, now)).await? {
                    Attempt::Lost => {}
                    Attempt::Delivered => {
                        report.delivered += 1;
                        *done += 1;
                        (q.failures, q.failing_since) = (0, None);
                    }
                    Attempt::Failed { delivery, gave_up } => {
                        report.failed_attempts += 1;
                        *done += usize::from(gave_up);
                        q.failures += 1;
                        let since = *q.failing_since.get_or_insert(now);
                        if now - since >= GIVE_UP_AFTER {
                            report.given_up += 1;
                            Box::pin(give_up(store, *delivery, target.endpoint, now)).await?;
                            *done += usize::from(!gave_up);
                            (q.failures, q.failing_since) = (0, None);
                            return Ok(Some(now)); // what else waits fails, in the next turns
                        }
                        return Ok(Some(now + backoff(q.failures)));
                    }
                }
            }
            if !full {
                return Ok(Some(now)); // look again: what is left (if anything) says when
            }
        }
    }

    /// One attempt at one delivery.
    async fn deliver(
        &self,
        store: &Store,
        mut d: Delivery,
        target: &Target,
        now: OffsetDateTime,
    ) -> Result<Attempt, StoreError> {
        // Claim it: push its next attempt past this one's timeout, conditional on its revision, and
        // count the attempt now, so one that never finishes (the function stopped mid-POST) still
        // counts toward giving up.
        let first_attempt = d.retry_from.unwrap_or(d.created_at);
        d.next_attempt_at = now + Duration::seconds(60);
        d.attempts += 1;
        if let Err(e) = store.save_delivery(&mut d).await {
            return if e.is_condition_failure() { Ok(Attempt::Lost) } else { Err(e) };
        }
        match self.post(target, &d, now).await {
            Outcome::Delivered { status, latency_ms, body } => {
                d.state = DeliveryState::Delivered;
                d.delivered_at = Some(now);
                (d.response_status, d.latency_ms, d.response_body, d.last_error) =
                    (Some(status), Some(latency_ms), Some(body), None);
                store.save_delivery(&mut d).await?;
                Ok(Attempt::Delivered)
            }
            Outcome::Failed { status, latency_ms, body, error } => {
                (d.response_status, d.latency_ms, d.response_body, d.last_error) =
                    (status, Some(latency_ms), body, Some(error));
                // Three days of tries for this one (an endpoint answering others but never this).
                let gave_up = now - first_attempt >= GIVE_UP_AFTER;
                if gave_up {
                    d.state = DeliveryState::Failed;
                } else {
                    d.next_attempt_at = now + backoff(d.attempts);
                }
                store.save_delivery(&mut d).await?;
                Ok(Attempt::Failed { delivery: Box::new(d), gave_up })
            }
        }
    }

    async fn post(&self, target: &Target, d: &Delivery, now: OffsetDateTime) -> Outcome {
        let endpoint = &target.endpoint;
        let started = Instant::now();
        let failed = |error: String| Outcome::Failed { status: None, latency_ms: 0, body: None, error };
        let client = match self.client_for(&endpoint.url, &target.ports).await {
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
    async fn client_for(&self, url: &str, ports: &[u16]) -> Result<reqwest::Client, String> {
        self.targets.check_url(url, ports)?;
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
                reply_to: None,
            };
            let dedupe = format!("webhook_disabled#{}#{}", endpoint.id, d.event_id);
            let about = crate::foundation::ids::PersonId::new();
            let email =
                EmailRecord::prepared(d.company_id, nil, about, "webhook_disabled", dedupe, to.clone(), content, now);
            writes.push(email.create()?);
        }
        let what = format!("{} (3 days of failed deliveries)", endpoint.url);
        writes.extend(crate::adapters::store::alerts::Alert::write(&company, "webhook_disabled", &what, now)?);
    }
    match store.transact(writes).await {
        Err(e) if e.is_condition_failure() => Ok(()),
        other => other,
    }
}
