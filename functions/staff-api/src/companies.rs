//! Platform admin: create companies (returning their first staff key once) and set the
//! deficiency visibility flag.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::companies::StaffKeyRecord;
use portal_shared::domain::company::{Company, NewCompany};
use portal_shared::foundation::clock;
use portal_shared::foundation::credentials::StaffKey;
use portal_shared::foundation::ids::{CompanyId, KeyId};
use portal_shared::web::http::{json, json_body, ApiResult};
use portal_shared::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::StaffApi;

pub async fn create(app: &StaffApi, req: &Request) -> ApiResult {
    let input: NewCompany = json_body(req)?;
    let now = app.now();
    let company = Company::create(input, now)?;
    let key = StaffKey::generate();
    let record = StaffKeyRecord {
        key_id: KeyId::new(),
        company_id: company.id,
        name: Some("First key".into()),
        key_hash: key.hash().as_str().to_owned(),
        created_at: now,
        last_used_at: None,
        company_deleted: false,
    };
    app.store.create_company(&company, &key.hash(), &record).await?;
    tracing::info!(company_id = %company.id, key_id = %record.key_id, "company created");
    json(
        StatusCode::CREATED,
        &json!({
            "company_id": company.id,
            "name": company.name,
            "staff_api_key": key.reveal(),
            "key_id": record.key_id,
        }),
    )
}

fn view(c: &Company) -> serde_json::Value {
    json!({
        "company_id": c.id,
        "name": c.name,
        "deficiency_visibility": c.deficiency_visibility,
        "created_at": clock::rfc3339(c.created_at),
    })
}

pub async fn load(app: &StaffApi, id: &str) -> Result<Company, ApiError> {
    let id: CompanyId = id.parse().map_err(|_| ApiError::NotFound)?;
    app.store.company(id).await?.ok_or(ApiError::NotFound)
}

/// The id of an existing company (404 otherwise).
pub async fn existing(app: &StaffApi, id: &str) -> Result<portal_shared::foundation::ids::CompanyId, ApiError> {
    Ok(load(app, id).await?.id)
}

pub async fn get(app: &StaffApi, id: &str) -> ApiResult {
    json(StatusCode::OK, &view(&load(app, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyPatch {
    deficiency_visibility: Option<bool>,
}

pub async fn update(app: &StaffApi, req: &Request, id: &str) -> ApiResult {
    let patch: CompanyPatch = portal_shared::web::http::json_patch_body(req, &[])?;
    let mut company = load(app, id).await?;
    if let Some(v) = patch.deficiency_visibility {
        company.deficiency_visibility = v;
    }
    app.store.save_company(&mut company).await?;
    tracing::info!(company_id = %company.id, deficiency_visibility = company.deficiency_visibility, "company updated by admin");
    json(StatusCode::OK, &view(&company))
}
