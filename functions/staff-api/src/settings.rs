//! Company settings and staff users, as staff see and change them.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::domain::company::Company;
use portal_shared::domain::settings::SettingsPatch;
use portal_shared::foundation::email::Email;
use portal_shared::foundation::ids::CompanyId;
use portal_shared::web::http::{json, json_body, ApiResult};
use portal_shared::{foundation::clock, ApiError};
use serde::Deserialize;
use serde_json::json;

use crate::StaffApi;
use portal_shared::web::auth::Staff;

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
    let mut patch: SettingsPatch = portal_shared::web::http::json_patch_body(req, &[])?;
    let logo = patch.logo.take();
    let mut company = company(app, staff).await?;
    let was_enabled = company.settings.customer_portal_enabled;
    company.settings = company.settings.apply(patch)?;
    if let Some(key) = logo {
        check_logo(app, company.id, &key).await?;
        company.settings.logo = Some(key);
    }
    app.store.save_company(&mut company).await?;
    tracing::info!(company_id = %company.id, "settings updated");
    if company.settings.customer_portal_enabled && !was_enabled {
        let n = app.store.backfill_building_documents(company.id).await?;
        tracing::info!(company_id = %company.id, documents = n, "customer portal enabled: published documents backfilled");
    }
    json(StatusCode::OK, &view(&company))
}

/// Largest logo (the portal serves it on every page).
pub const MAX_LOGO_BYTES: i64 = 1024 * 1024;

/// Where a company's brand images live in the bucket.
fn brand_prefix(c: CompanyId) -> String {
    format!("companies/{c}/brand/")
}

/// A place for the company's logo (`{"content_type": "image/png" | "image/jpeg"}`): a key and a
/// presigned POST of exactly that type, at most 1 MiB. Then `PATCH /staff/settings {"logo": key}`
/// checks what arrived and shows it. (SVG is refused: it can carry script.)
pub async fn logo_upload(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let prefix = format!("{}logo-", brand_prefix(staff.company_id));
    crate::inspections::image_upload_form(app, req, &prefix, MAX_LOGO_BYTES, " (SVG is not accepted)").await
}

/// The logo that arrived at `key`: the company's, at most 1 MiB, a PNG or JPEG by its bytes.
async fn check_logo(app: &StaffApi, c: CompanyId, key: &str) -> Result<(), ApiError> {
    if !key.starts_with(&brand_prefix(c)) || key.contains("..") {
        return Err(ApiError::bad_request("logo: the key an upload form of POST /staff/settings/logo gave"));
    }
    match app.blobs.head(key).await.map_err(ApiError::internal)? {
        None => return Err(ApiError::bad_request("logo: nothing was uploaded at that key")),
        Some(o) if o.size > MAX_LOGO_BYTES => return Err(ApiError::bad_request("logo: at most 1 MiB")),
        Some(_) => {}
    }
    let bytes = app.blobs.read(key, None).await.map_err(ApiError::internal)?;
    if !(bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF])) {
        return Err(ApiError::bad_request("logo: the upload is not a PNG or JPEG"));
    }
    Ok(())
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

/// Staff keys, one per person: `POST /staff/keys {"name"}` answers the key once. `by` names who
/// asked, for the log (a key id, or the platform admin).
pub async fn create_key(app: &StaffApi, company_id: CompanyId, by: &str, req: &Request) -> ApiResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewKey {
        name: String,
    }
    let input: NewKey = json_body(req)?;
    let name = input.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("name must be 1 to 100 characters"));
    }
    let key = portal_shared::foundation::credentials::StaffKey::generate();
    let record = portal_shared::adapters::store::companies::StaffKeyRecord {
        key_id: portal_shared::foundation::ids::KeyId::new(),
        company_id,
        name: Some(name.to_owned()),
        key_hash: key.hash().as_str().to_owned(),
        created_at: app.now(),
        last_used_at: None,
        company_deleted: false,
    };
    app.store.add_staff_key(&key.hash(), &record).await?;
    tracing::info!(company_id = %company_id, key_id = %record.key_id, by, "staff key created");
    json(StatusCode::CREATED, &serde_json::json!({ "id": record.key_id, "name": record.name, "key": key.reveal() }))
}

fn key_view(k: &portal_shared::adapters::store::companies::StaffKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "id": k.key_id,
        "name": k.name,
        "created_at": clock::rfc3339(k.created_at),
        "last_used_at": k.last_used_at.map(clock::rfc3339),
    })
}

pub async fn list_keys(app: &StaffApi, company_id: CompanyId) -> ApiResult {
    let mut keys = app.store.staff_keys(company_id).await?;
    keys.sort_by_key(|k| k.created_at);
    json(StatusCode::OK, &serde_json::json!({ "items": keys.iter().map(key_view).collect::<Vec<_>>() }))
}

/// Revokes a key at once. The company's last key cannot be revoked (nobody could get back in):
/// checked in the revocation's own transaction, against a counter, not a listing that may lag.
pub async fn revoke_key(app: &StaffApi, company_id: CompanyId, by: &str, id: &str) -> ApiResult {
    use portal_shared::adapters::store::companies::Revoked;
    let id: portal_shared::foundation::ids::KeyId = id.parse().map_err(|_| ApiError::NotFound)?;
    let key = app.store.staff_key_by_id(company_id, id).await?.ok_or(ApiError::NotFound)?;
    match app.store.revoke_staff_key(&key).await? {
        Revoked::Revoked => {}
        Revoked::Gone => return Err(ApiError::NotFound),
        Revoked::LastKey => {
            return Err(ApiError::conflict(
                "last-key",
                "this is the company's last staff key; create another one first",
            ))
        }
    }
    tracing::info!(company_id = %company_id, key_id = %id, by, "staff key revoked");
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// Ends every "all my inspections" session an address has with the company (a lost phone, a
/// shared computer), the sign-in links it has not used yet, and the portal links `/me` gave it
/// (the ones emailed to it stay): `{"ended", "sign_in_links_ended", "links_revoked"}`.
pub async fn end_me_sessions(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct End {
        email: String,
    }
    let body: End = json_body(req)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (ended, codes) = app.store.end_sessions(staff.company_id, &email).await?;
    let links = app.store.revoke_me_links(staff.company_id, &email).await?;
    tracing::info!(company_id = %staff.company_id, ended, codes, links, by = %staff.key_id, "me sessions ended");
    json(StatusCode::OK, &json!({ "ended": ended, "sign_in_links_ended": codes, "links_revoked": links }))
}

/// The company's suppressed addresses: hard bounces, complaints and one-click unsubscribes
/// (`kind`: `bounce`, `complaint`, `unsubscribe`), with why and when.
pub async fn suppressions(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let limit = portal_shared::web::http::page_limit(req)?;
    let cursor = portal_shared::web::http::query_param(req, "cursor");
    let page = app.store.suppressions(staff.company_id, limit, cursor.as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

/// Lets the company email an address again (staff's decision: the person asked to hear again,
/// or the mailbox works now). 204, or 404 when it was not suppressed.
pub async fn unsuppress(app: &StaffApi, staff: &Staff, address: &str) -> ApiResult {
    let address = percent_decode(address);
    let email = Email::parse(&address).map_err(|_| ApiError::NotFound)?;
    if !app.store.unsuppress(staff.company_id, email.as_str()).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(company_id = %staff.company_id, "a suppressed address was lifted by staff");
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// A path segment as sent (`jane%40example.com` → `jane@example.com`); a broken escape is kept
/// as it is (and then fails as an address).
fn percent_decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
