//! `/admin/companies/{id}/…`: a company leaving the platform — its whole export, then its
//! deletion (`portal_shared::usecases::offboarding`; the job does both).

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::offboarding::{CompanyExport, Tombstone};
use portal_shared::adapters::store::Write;
use portal_shared::foundation::clock::rfc3339;
use portal_shared::foundation::ids::CompanyId;
use portal_shared::usecases::offboarding;
use portal_shared::web::http::{json, json_body, ApiResult};
use portal_shared::ApiError;
use serde_json::json;

use crate::StaffApi;

/// How long an export's download link works.
const LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `POST /admin/companies/{id}/export` → `202 {"id", "state": "pending"}`; the job makes it.
pub async fn request_export(app: &StaffApi, id: &str) -> ApiResult {
    let company = crate::companies::load(app, id).await?;
    let export = CompanyExport {
        id: ulid::Ulid::new().to_string().to_lowercase(),
        company_id: company.id,
        state: "pending".into(),
        requested_at: app.store.clock().now(),
        ready_at: None,
        zip_key: None,
        items: 0,
        documents: 0,
        failure: None,
    };
    app.store.write(Write::Create(export.record()?)).await?;
    tracing::info!(company_id = %company.id, export = %export.id, "company export requested");
    json(StatusCode::ACCEPTED, &json!({ "id": export.id, "state": "pending" }))
}

/// `GET /admin/companies/{id}/exports/{export}` → state, counts and (once ready) `url`: the ZIP,
/// presigned for 15 minutes.
pub async fn export(app: &StaffApi, id: &str, export: &str) -> ApiResult {
    let company = crate::companies::load(app, id).await?;
    let e = app.store.company_export(company.id, export).await?.ok_or(ApiError::NotFound)?;
    let url = match (&e.zip_key, e.state.as_str()) {
        (Some(key), "ready") => Some(
            app.blobs
                .presign_download(key, None, "application/zip", "company-export.zip", LINK_LIFETIME)
                .await
                .map_err(ApiError::internal)?,
        ),
        _ => None,
    };
    json(
        StatusCode::OK,
        &json!({
            "id": e.id,
            "state": e.state,
            "requested_at": rfc3339(e.requested_at),
            "ready_at": e.ready_at.map(rfc3339),
            "items": e.items,
            "documents": e.documents,
            "failure": e.failure,
            "url": url,
        }),
    )
}

/// `DELETE /admin/companies/{id}` with `{"export_id"}` (a ready export of the last 7 days) or
/// `{"confirm": "<the company's name>"}` → `202` and the deletion's state; from now on the
/// company's keys, links and routes answer 404.
pub async fn delete(app: &StaffApi, req: &Request, id: &str) -> ApiResult {
    let company = crate::companies::load(app, id).await?;
    let confirmation: offboarding::Confirmation = json_body(req)?;
    let t = offboarding::request_deletion(&app.store, &company, &confirmation, app.store.clock().now()).await?;
    json(StatusCode::ACCEPTED, &view(&t))
}

/// `GET /admin/companies/{id}/deletion` → the tombstone: state, progress, dates.
pub async fn deletion(app: &StaffApi, id: &str) -> ApiResult {
    let c: CompanyId = id.parse().map_err(|_| ApiError::NotFound)?;
    let t = app.store.tombstone(c).await?.ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &view(&t))
}

fn view(t: &Tombstone) -> serde_json::Value {
    json!({
        "company_id": t.company_id,
        "state": t.state,
        "requested_at": rfc3339(t.requested_at),
        "deleted_at": t.deleted_at.map(rfc3339),
        "confirmed_by": t.confirmed_by,
        "items_deleted": t.items_deleted,
        "objects_deleted": t.objects_deleted,
    })
}
