//! `/staff/webhooks`: the company's outbound webhook endpoints, their signing secrets (shown
//! once, at creation and rotation), test events, and each endpoint's delivery log.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::webhooks::{
    new_endpoint_id, new_secret, Delivery, DeliveryState, Endpoint, WebhookEvent, PREVIOUS_SECRET_LIFETIME,
};
use portal_shared::domain::company::Company;
use portal_shared::domain::webhook_events::EVENT_TYPES;
use portal_shared::domain::webhook_targets::Targets;
use portal_shared::web::auth::Staff;
use portal_shared::web::http::{json, json_patch_body, page_limit, query_param, ApiResult};
use portal_shared::{foundation::clock, ApiError};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::StaffApi;

/// Endpoints per company.
const MAX_ENDPOINTS: usize = 20;

fn view(e: &Endpoint, now: OffsetDateTime) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "created_at": clock::rfc3339(e.created_at),
        "previous_secret_valid_until": e.previous_until.filter(|u| *u > now).map(clock::rfc3339),
    })
}

fn delivery_view(d: &Delivery) -> Value {
    json!({
        "id": d.event_id,
        "event_type": d.event_type,
        "status": d.state,
        "attempts": d.attempts,
        "created_at": clock::rfc3339(d.created_at),
        "next_attempt_at": (d.state == DeliveryState::Pending).then(|| clock::rfc3339(d.next_attempt_at)),
        "delivered_at": d.delivered_at.map(clock::rfc3339),
        "response_status": d.response_status,
        "latency_ms": d.latency_ms,
        "response_body": d.response_body,
        "last_error": d.last_error,
    })
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(ApiError::bad_request("events: name at least one event type"));
    }
    match events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str()) && e.as_str() != "*") {
        Some(bad) => Err(ApiError::bad_request(format!(
            "events: unknown event type {bad:?}; known: {} (or \"*\" for all)",
            EVENT_TYPES.join(", ")
        ))),
        None => Ok(()),
    }
}

/// An endpoint's URL as the company's settings allow (its `webhook_ports`).
fn check_url(app: &StaffApi, company: &Company, url: &str) -> Result<(), ApiError> {
    if url.len() > 2000 {
        return Err(ApiError::bad_request("url: at most 2000 characters"));
    }
    Targets::for_base_url(&app.config.public_base_url)
        .check_url(url, &company.settings.webhook_ports)
        .map_err(|e| ApiError::bad_request(format!("url: {e}")))
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > 500 => Err(ApiError::bad_request("description: at most 500 characters")),
        _ => Ok(()),
    }
}

async fn load(app: &StaffApi, staff: &Staff, id: &str) -> Result<Endpoint, ApiError> {
    if !id.starts_with("we_") || id.len() != 29 {
        return Err(ApiError::NotFound);
    }
    app.store.endpoint(staff.company_id, id).await?.ok_or(ApiError::NotFound)
}

pub async fn create(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct New {
        url: String,
        events: Vec<String>,
        #[serde(default)]
        description: Option<String>,
    }
    // No member may be null (leave `description` out for none).
    let body: New = json_patch_body(req, &[])?;
    check_events(&body.events)?;
    check_description(&body.description)?;
    let endpoint = Endpoint {
        id: new_endpoint_id(),
        company_id: staff.company_id,
        url: body.url,
        events: body.events,
        description: body.description,
        enabled: true,
        disabled_reason: None,
        secret: new_secret(),
        previous_secret: None,
        previous_until: None,
        created_at: app.now(),
        revision: 0,
    };
    let endpoint = commit(app, staff, None, |company, _, all| {
        check_url(app, company, &endpoint.url)?;
        if all.len() >= MAX_ENDPOINTS {
            return Err(ApiError::conflict("too-many-endpoints", format!("at most {MAX_ENDPOINTS} endpoints")));
        }
        Ok(Some(endpoint.clone()))
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    tracing::info!(company_id = %staff.company_id, endpoint = %endpoint.id, "webhook endpoint created");
    let mut out = view(&endpoint, app.now());
    out["secret"] = json!(endpoint.secret);
    json(StatusCode::CREATED, &out)
}

pub async fn list(app: &StaffApi, staff: &Staff) -> ApiResult {
    let items: Vec<Value> = app.store.endpoints(staff.company_id).await?.iter().map(|e| view(e, app.now())).collect();
    json(StatusCode::OK, &json!({ "items": items }))
}

pub async fn get(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    json(StatusCode::OK, &view(&load(app, staff, id).await?, app.now()))
}

pub async fn update(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        url: Option<String>,
        events: Option<Vec<String>>,
        enabled: Option<bool>,
        description: Option<String>,
    }
    let patch: Patch = json_patch_body(req, &[])?;
    if let Some(events) = &patch.events {
        check_events(events)?;
    }
    if patch.description.is_some() {
        check_description(&patch.description)?;
    }
    let e = commit(app, staff, Some(id), |company, e, _| {
        let mut e = e.ok_or(ApiError::NotFound)?;
        if let Some(url) = &patch.url {
            check_url(app, company, url)?;
            e.url = url.clone();
        }
        if let Some(events) = &patch.events {
            e.events = events.clone();
        }
        if patch.description.is_some() {
            e.description = patch.description.clone();
        }
        if let Some(enabled) = patch.enabled {
            e.enabled = enabled;
            if enabled {
                e.disabled_reason = None;
            }
        }
        Ok(Some(e))
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &view(&e, app.now()))
}

/// Changes one endpoint (`id`; None: a new one) with the company's list of the event types its
/// endpoints want, in one transaction (see `Store::save_endpoint_with_company`): `change` gets
/// the company (its settings check the URL), the endpoint as stored (None if there is none) and
/// all of the company's, and returns it as it should be (None: deleted). Everything is read again and the change made again when the
/// company or the endpoint changed meanwhile; the endpoint as saved.
async fn commit(
    app: &StaffApi,
    staff: &Staff,
    id: Option<&str>,
    mut change: impl FnMut(&Company, Option<Endpoint>, &[Endpoint]) -> Result<Option<Endpoint>, ApiError>,
) -> Result<Option<Endpoint>, ApiError> {
    let c = staff.company_id;
    for attempt in 0..3 {
        let (company, all, current) = tokio::try_join!(app.store.company(c), app.store.endpoints(c), async {
            match id {
                Some(id) => app.store.endpoint(c, id).await,
                None => Ok(None),
            }
        })?;
        let mut company = company.ok_or(ApiError::NotFound)?;
        if id.is_some() && current.is_none() {
            return Err(ApiError::NotFound);
        }
        let mut after = change(&company, current.clone(), &all)?;
        let mut all_after: Vec<Endpoint> = all
            .into_iter()
            .filter(|e| Some(e.id.as_str()) != id && after.as_ref().is_none_or(|a| a.id != e.id))
            .collect();
        all_after.extend(after.clone());
        match app.store.save_endpoint_with_company(&mut company, current.as_ref(), after.as_mut(), &all_after).await {
            Ok(()) => return Ok(after),
            Err(e) if e.is_condition_failure() && attempt < 2 => continue,
            Err(e) => return Err(conflict(e)),
        }
    }
    Err(ApiError::conflict("changed", "the endpoint changed meanwhile; read it again"))
}

fn conflict(e: portal_shared::adapters::store::StoreError) -> ApiError {
    if e.is_condition_failure() {
        ApiError::conflict("changed", "the endpoint changed meanwhile; read it again")
    } else {
        e.into()
    }
}

pub async fn delete(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    load(app, staff, id).await?;
    commit(app, staff, Some(id), |_, _, _| Ok(None)).await?;
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// A new signing secret (shown once); the previous one keeps signing for 24 hours.
pub async fn rotate(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let mut e = load(app, staff, id).await?;
    let now = app.now();
    e.previous_secret = Some(std::mem::replace(&mut e.secret, new_secret()));
    e.previous_until = Some(now + PREVIOUS_SECRET_LIFETIME);
    app.store.save_endpoint(&mut e).await.map_err(conflict)?;
    tracing::info!(company_id = %staff.company_id, endpoint = %e.id, "webhook secret rotated");
    let mut out = view(&e, app.now());
    out["secret"] = json!(e.secret);
    json(StatusCode::OK, &out)
}

/// Tests an endpoint may be sent per window ([`STAFF_WINDOW_SECONDS`]).
pub const TESTS_PER_WINDOW: u32 = 10;
/// Redeliveries an endpoint may be sent per window (enough to redeliver an outage's backlog by
/// hand, not to flood the endpoint or the job).
pub const REDELIVERIES_PER_WINDOW: u32 = 300;
pub const STAFF_WINDOW_SECONDS: i64 = 600;

/// A `webhook.test` event for this endpoint only, delivered by the next run before the
/// endpoint's other waiting deliveries' backoff (staff are checking it is fixed).
pub async fn test(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let e = load(app, staff, id).await?;
    let now = app.now();
    app.store.within_window(&format!("webhook-test#{}", e.id), TESTS_PER_WINDOW, STAFF_WINDOW_SECONDS, now).await?;
    let event = WebhookEvent::new(staff.company_id, "webhook.test", json!({ "endpoint_id": e.id }), now);
    let delivery = Delivery::new(&event, &e.id, now);
    app.store.enqueue(staff.company_id, &e.id, 1, now, true).await?;
    app.store.write(delivery.create()?).await?;
    json(StatusCode::ACCEPTED, &json!({ "event_id": event.id, "status": "queued" }))
}

pub async fn deliveries(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let e = load(app, staff, id).await?;
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let page = app.store.deliveries(staff.company_id, &e.id, limit, cursor.as_deref()).await?;
    let items: Vec<Value> = page.items.iter().map(delivery_view).collect();
    json(StatusCode::OK, &json!({ "items": items, "next_cursor": page.next_cursor }))
}

/// Sends a delivery again at the next run (the endpoint must be enabled to receive it).
pub async fn redeliver(app: &StaffApi, staff: &Staff, id: &str, event: &str) -> ApiResult {
    let e = load(app, staff, id).await?;
    let mut d = app.store.delivery(staff.company_id, &e.id, event).await?.ok_or(ApiError::NotFound)?;
    let now = app.now();
    let what = format!("webhook-redeliver#{}", e.id);
    app.store.within_window(&what, REDELIVERIES_PER_WINDOW, STAFF_WINDOW_SECONDS, now).await?;
    let was_pending = d.state == DeliveryState::Pending;
    d.state = DeliveryState::Pending;
    d.next_attempt_at = now;
    // A fresh three days to succeed in.
    d.retry_from = Some(now);
    // Counted into the queue (unless it still waits there) and due at the next run.
    app.store.enqueue(staff.company_id, &e.id, usize::from(!was_pending), now, true).await?;
    app.store.save_delivery(&mut d).await.map_err(conflict)?;
    json(StatusCode::ACCEPTED, &delivery_view(&d))
}
