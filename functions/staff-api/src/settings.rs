//! Company settings and staff users, as staff see and change them.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::domain::company::Company;
use portal_shared::domain::settings::SettingsPatch;
use portal_shared::email::Email;
use portal_shared::http::{json, json_body, ApiResult};
use portal_shared::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::StaffApi;
use portal_shared::auth::Staff;

pub async fn company(app: &StaffApi, staff: &Staff) -> Result<Company, ApiError> {
    // A key whose company vanished is as good as no key.
    app.store.company(staff.company_id).await?.ok_or(ApiError::Unauthorized)
}

fn view(c: &Company) -> serde_json::Value {
    json!({
        "company_id": c.id,
        "name": c.name,
        "deficiency_visibility": c.deficiency_visibility,
        "settings": c.settings,
    })
}

pub async fn get(app: &StaffApi, staff: &Staff) -> ApiResult {
    json(StatusCode::OK, &view(&company(app, staff).await?))
}

pub async fn update(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let patch: SettingsPatch = json_body(req)?;
    let mut company = company(app, staff).await?;
    company.settings = company.settings.apply(patch)?;
    app.store.save_company(&mut company).await?;
    tracing::info!(company_id = %company.id, "settings updated");
    json(StatusCode::OK, &view(&company))
}

pub async fn list_users(app: &StaffApi, staff: &Staff) -> ApiResult {
    let company = company(app, staff).await?;
    json(StatusCode::OK, &json!({ "staff_emails": company.staff_emails }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStaffUser {
    email: Email,
}

pub async fn add_user(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let input: NewStaffUser = json_body(req)?;
    let mut company = company(app, staff).await?;
    let added = company.add_staff_email(input.email)?;
    if added {
        app.store.save_company(&mut company).await?;
    }
    json(if added { StatusCode::CREATED } else { StatusCode::OK }, &json!({ "staff_emails": company.staff_emails }))
}
