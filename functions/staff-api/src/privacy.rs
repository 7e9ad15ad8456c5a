//! `/staff/privacy/…`: a copy of everything the company holds about a person, by address (made
//! by the every-minute job; see `portal_shared::usecases::privacy`).

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::keys;
use portal_shared::adapters::store::privacy::PrivacyExport;
use portal_shared::foundation::email::Email;
use portal_shared::usecases::privacy;
use portal_shared::web::auth::Staff;
use portal_shared::web::http::{json, json_body, ApiResult};
use portal_shared::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::StaffApi;

/// How long an export's download links work.
const LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `POST /staff/privacy/exports {"email"}` → `202 {"id", "state": "pending"}`; the job makes it
/// within a minute. Audited (who asked, the address's key part, never the address).
pub async fn request_export(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        email: String,
    }
    let body: Ask = json_body(req)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::bad_request(format!("email: {e}")))?;
    let now = app.store.clock().now();
    let request = PrivacyExport {
        id: ulid::Ulid::new().to_string().to_lowercase(),
        company_id: staff.company_id,
        email: Some(email.clone()),
        state: "pending".into(),
        requested_at: now,
        ready_at: None,
        json_key: None,
        html_key: None,
        requested_by: staff.key_id.to_string(),
        failure: None,
    };
    let audit = privacy::audit_write(
        staff.company_id,
        "export_requested",
        &staff.key_id.to_string(),
        &keys::email_part(&email),
        &request.id,
        now,
    )?;
    app.store.transact(vec![portal_shared::adapters::store::Write::Create(request.record()?), audit]).await?;
    tracing::info!(company_id = %staff.company_id, export = %request.id, by = %staff.key_id, "privacy export requested");
    json(StatusCode::ACCEPTED, &json!({ "id": request.id, "state": "pending" }))
}

/// `GET /staff/privacy/exports/{id}` → `{"id", "state", "requested_at", "ready_at", "url",
/// "summary_url"}` (the links, presigned for 15 minutes, once ready).
pub async fn export(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let request = app.store.privacy_export(staff.company_id, id).await?.ok_or(ApiError::NotFound)?;
    let ready = request.state == "ready";
    let link = |key: Option<String>, content_type: &'static str, name: &'static str| async move {
        match key {
            Some(k) if ready => app
                .blobs
                .presign_download(&k, None, content_type, name, LINK_LIFETIME)
                .await
                .map(Some)
                .map_err(ApiError::internal),
            _ => Ok(None),
        }
    };
    let url = link(request.json_key.clone(), "application/json", "personal-data.json").await?;
    let summary = link(request.html_key.clone(), "text/html; charset=utf-8", "personal-data.html").await?;
    json(
        StatusCode::OK,
        &json!({
            "id": request.id,
            "state": request.state,
            "requested_at": portal_shared::foundation::clock::rfc3339(request.requested_at),
            "ready_at": request.ready_at.map(portal_shared::foundation::clock::rfc3339),
            "url": url,
            "summary_url": summary,
            "failure": request.failure,
        }),
    )
}

/// `POST /staff/privacy/erasures {"email", "reason"}` → `202 {"id", "state": "pending"}`: the
/// job erases the person in bounded steps. Audited (the address's key part, never the address).
pub async fn request_erasure(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        email: String,
        reason: String,
    }
    let body: Ask = json_body(req)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::bad_request(format!("email: {e}")))?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::bad_request("reason: say why (at most 500 characters), e.g. \"the person asked\""));
    }
    let now = app.store.clock().now();
    let erasure = portal_shared::adapters::store::privacy::PrivacyErasure {
        id: ulid::Ulid::new().to_string().to_lowercase(),
        company_id: staff.company_id,
        pseudonym: privacy::pseudonym(staff.company_id, &email),
        email: Some(email.clone()),
        reason: reason.to_owned(),
        state: "pending".into(),
        requested_at: now,
        done_at: None,
        requested_by: staff.key_id.to_string(),
        phase: 0,
        needles: Vec::new(),
        changed: Default::default(),
        revision: 0,
    };
    let audit = privacy::audit_write(
        staff.company_id,
        "erasure_requested",
        &staff.key_id.to_string(),
        &keys::email_part(&email),
        &erasure.id,
        now,
    )?;
    app.store.transact(vec![portal_shared::adapters::store::Write::Create(erasure.record()?), audit]).await?;
    tracing::info!(company_id = %staff.company_id, erasure = %erasure.id, by = %staff.key_id, "privacy erasure requested");
    json(StatusCode::ACCEPTED, &json!({ "id": erasure.id, "state": "pending" }))
}

/// `GET /staff/privacy/erasures/{id}` → `{"id", "state", "pseudonym", "requested_at", "done_at",
/// "changed": {kind: count}}`.
pub async fn erasure(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let e = app.store.privacy_erasure(staff.company_id, id).await?.ok_or(ApiError::NotFound)?;
    json(
        StatusCode::OK,
        &json!({
            "id": e.id,
            "state": e.state,
            "pseudonym": e.pseudonym,
            "reason": e.reason,
            "requested_at": portal_shared::foundation::clock::rfc3339(e.requested_at),
            "done_at": e.done_at.map(portal_shared::foundation::clock::rfc3339),
            "changed": e.changed,
        }),
    )
}
