//! `/staff/webhooks`: the company's outbound webhook endpoints, their signing secrets (shown
//! once, at creation and rotation), test events, and each endpoint's delivery log.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::webhooks::{
    new_endpoint_id, new_secret, Delivery, DeliveryState, Endpoint, WebhookEvent, PREVIOUS_SECRET_LIFETIME,
};
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

fn check_url(app: &StaffApi, url: &str) -> Result<(), ApiError> {
    if url.len() > 2000 {
        return Err(ApiError::bad_request("url: at most 2000 characters"));
    }
    Targets::for_base_url(&app.config.public_base_url)
        .check_url(url)
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
    check_url(app, &body.url)?;
    check_events(&body.events)?;
    check_description(&body.description)?;
    if app.store.endpoints(staff.company_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::conflict("too-many-endpoints", format!("at most {MAX_ENDPOINTS} endpoints")));
    }
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
    app.store.create_endpoint(&endpoint).await?;
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
    let mut e = load(app, staff, id).await?;
    if let Some(url) = patch.url {
        check_url(app, &url)?;
        e.url = url;
    }
    if let Some(events) = patch.events {
        check_events(&events)?;
        e.events = events;
    }
    if patch.description.is_some() {
        check_description(&patch.description)?;
        e.description = patch.description;
    }
    if let Some(enabled) = patch.enabled {
        e.enabled = enabled;
        if enabled {
            e.disabled_reason = None;
        }
    }
    app.store.save_endpoint(&mut e).await.map_err(conflict)?;
    json(StatusCode::OK, &view(&e, app.now()))
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
    app.store.delete_endpoint(staff.company_id, id).await.map_err(|e| {
        if e.is_condition_failure() {
            ApiError::NotFound
        } else {
            e.into()
        }
    })?;
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

/// A `webhook.test` event for this endpoint only, delivered by the next run like any other.
pub async fn test(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let e = load(app, staff, id).await?;
    let now = app.now();
    let event = WebhookEvent::new(staff.company_id, "webhook.test", json!({ "endpoint_id": e.id }), now);
    let delivery = Delivery::new(&event, &e.id, now);
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
    d.state = DeliveryState::Pending;
    d.next_attempt_at = now;
    // A fresh three days to succeed in.
    d.retry_from = Some(now);
    app.store.save_delivery(&mut d).await.map_err(conflict)?;
    json(StatusCode::ACCEPTED, &delivery_view(&d))
}
