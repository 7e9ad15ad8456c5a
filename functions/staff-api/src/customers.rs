//! Commercial customers: buildings (and their inspections and deficiencies), contacts with
//! permissions and building associations, invites, and "login as customer" previews.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::domain::audit::{AuditAction, ContactAudit, Outcome};
use portal_shared::domain::customers::{
    Building, Contact, ContactInput, ContactPatch, Deficiency, EnrollmentStatus, NewBuilding, NewDeficiency,
};
use portal_shared::usecases::customer_portal;
use portal_shared::web::auth::Staff;

use portal_shared::adapters::store::outbox::{EmailRecord, STAFF_REPEAT_WINDOW_SECONDS};
use portal_shared::adapters::store::tokens::{issue_contact_link, revoke_links, Issue};
use portal_shared::adapters::store::webhooks::WebhookEvent;
use portal_shared::foundation::ids::{BuildingId, ContactId, DeficiencyId};
use portal_shared::web::http::{json, json_body, page_limit, query_param, wants_json, ApiResult};
use portal_shared::{foundation::clock, web::pages, ApiError};
use serde_json::json;

use crate::settings::company;
use crate::StaffApi;

fn building_id(id: &str) -> Result<BuildingId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

fn contact_id(id: &str) -> Result<ContactId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

pub async fn create_building(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let b = Building::create(json_body::<NewBuilding>(req)?, app.now())?;
    app.store.create_building(staff.company_id, &b).await?;
    json(StatusCode::CREATED, &b)
}

pub async fn list_buildings(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let page =
        app.store.list_buildings(staff.company_id, page_limit(req)?, query_param(req, "cursor").as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

pub async fn get_building(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    json(StatusCode::OK, &app.store.building(staff.company_id, building_id(id)?).await?.ok_or(ApiError::NotFound)?)
}

/// Records a deficiency found in a report of one of this building's inspections. It shows in
/// the customer feeds only while that report is published.
pub async fn create_deficiency(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let b = building_id(id)?;
    let input: NewDeficiency = json_body(req)?;
    app.store.building(staff.company_id, b).await?.ok_or(ApiError::NotFound)?;
    let pointer = app
        .store
        .document_pointer(staff.company_id, input.report_id)
        .await?
        .ok_or_else(|| ApiError::bad_request("report_id names no document of this company"))?;
    let inspection = app.store.inspection(staff.company_id, pointer.inspection_id).await?.ok_or(ApiError::NotFound)?;
    let report = inspection.document(input.report_id).ok_or(ApiError::NotFound)?;
    if inspection.building_id != Some(b) || !report.kind.is_report() {
        return Err(ApiError::bad_request("report_id must be a report of an inspection of this building"));
    }
    let d = Deficiency::create(b, inspection.id, input.clone(), report.published, app.now())?;
    app.store.create_deficiency(staff.company_id, &d).await?;
    json(StatusCode::CREATED, &d)
}

pub async fn list_deficiencies(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let b = building_id(id)?;
    app.store.building(staff.company_id, b).await?.ok_or(ApiError::NotFound)?;
    let page = app
        .store
        .building_deficiencies(staff.company_id, b, page_limit(req)?, query_param(req, "cursor").as_deref())
        .await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

pub async fn resolve_deficiency(app: &StaffApi, staff: &Staff, b: &str, f: &str, resolved: bool) -> ApiResult {
    let f: DeficiencyId = f.parse().map_err(|_| ApiError::NotFound)?;
    let now = app.now();
    let d = app
        .store
        .modify_deficiency(staff.company_id, building_id(b)?, f, |d| d.set_resolved(resolved, now))
        .await?
        .ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &d)
}

async fn check_buildings(app: &StaffApi, staff: &Staff, ids: &[BuildingId]) -> Result<(), ApiError> {
    let found = app.store.buildings(staff.company_id, ids).await?;
    if found.len() != ids.len() {
        return Err(ApiError::bad_request("building_ids names a building this company does not have"));
    }
    Ok(())
}

fn contact_view(k: &Contact) -> serde_json::Value {
    json!({
        "contact_id": k.id,
        "name": k.name,
        "email": k.email,
        "permissions": k.permissions,
        "building_ids": k.building_ids,
        "status": k.status,
        "live_links": k.tokens.len(),
        "created_at": clock::rfc3339(k.created_at),
    })
}

pub async fn create_contact(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let k = Contact::create(json_body::<ContactInput>(req)?, app.now())?;
    check_buildings(app, staff, &k.building_ids).await?;
    app.store.create_contact(staff.company_id, &k).await?;
    json(StatusCode::CREATED, &contact_view(&k))
}

pub async fn list_contacts(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let page =
        app.store.list_contacts(staff.company_id, page_limit(req)?, query_param(req, "cursor").as_deref()).await?;
    let items: Vec<_> = page.items.iter().map(contact_view).collect();
    json(StatusCode::OK, &json!({ "items": items, "next_cursor": page.next_cursor }))
}

async fn load_contact(app: &StaffApi, staff: &Staff, id: &str) -> Result<Contact, ApiError> {
    app.store.contact(staff.company_id, contact_id(id)?).await?.ok_or(ApiError::NotFound)
}

pub async fn get_contact(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    json(StatusCode::OK, &contact_view(&load_contact(app, staff, id).await?))
}

pub async fn update_contact(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let patch: ContactPatch = portal_shared::web::http::json_patch_body(req, &[])?;
    let mut k = load_contact(app, staff, id).await?;
    k.apply(patch)?;
    check_buildings(app, staff, &k.building_ids).await?;
    app.store.save_contact(staff.company_id, &mut k, vec![]).await?;
    json(StatusCode::OK, &contact_view(&k))
}

/// Queues the contact's invitation to the customer portal (sent by the outbox like every
/// email: deduplicated — repeats within 10 minutes are one email —, retried, suppressed, with
/// history; its link is made when it is sent) and marks them invited, with the
/// `contact.invited` event, in one transaction. `202`: the email is on its way.
pub async fn invite(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let company = company(app, staff).await?;
    if !company.settings.customer_portal_enabled {
        return Err(ApiError::conflict(
            "customer-portal-off",
            "turn customer_portal_enabled on before inviting contacts",
        ));
    }
    let mut k = load_contact(app, staff, id).await?;
    // An address that bounced or complained gets nothing: said now, not found later.
    if let Some(s) = app.store.suppression(company.id, k.email.as_str()).await?.filter(|s| s.blocks(false)) {
        return Err(ApiError::conflict(
            "address-suppressed",
            format!("{} gets no more email from this company: {}", k.email, s.reason),
        ));
    }
    let now = app.now();
    let email = EmailRecord::contact_invite(company.id, k.id, now);
    let (gate, open_gate) = email.gate(STAFF_REPEAT_WINDOW_SECONDS)?;
    if app.store.open_gate(&gate, now).await?.is_some() {
        let view = json!({ "contact": contact_view(&k), "email": { "status": "already_queued" } });
        return json(StatusCode::ACCEPTED, &view);
    }
    if k.status == EnrollmentStatus::NotEnrolled {
        k.status = EnrollmentStatus::Invited;
    }
    let mut writes = vec![open_gate, email.create()?];
    if company.hears("contact.invited") {
        let data = serde_json::json!({ "contact_id": k.id, "building_ids": k.building_ids });
        writes.push(WebhookEvent::new(company.id, "contact.invited", data, now).create()?);
    }
    match app.store.save_contact(company.id, &mut k, writes).await {
        Ok(()) => {}
        Err(e) if e.is_condition_failure() => {
            return Err(ApiError::conflict("changed", "the contact changed or was just invited; try again"))
        }
        Err(e) => return Err(e.into()),
    }
    json(StatusCode::ACCEPTED, &json!({ "contact": contact_view(&k), "email": { "status": "queued" } }))
}

/// Re-issues a contact's link: every earlier one stops working in the same write.
pub async fn reissue_contact_link(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let company = company(app, staff).await?;
    let mut k = load_contact(app, staff, id).await?;
    let (token, writes) = issue_contact_link(company.id, &mut k, Issue::ReplaceAll, app.now())?;
    app.store.save_contact(company.id, &mut k, writes).await?;
    tracing::info!(contact_id = %k.id, "contact link re-issued");
    json(StatusCode::CREATED, &json!({ "url": format!("{}/c/{}", app.config.public_base_url, token.reveal()) }))
}

/// Revokes every link of a contact (idempotent).
pub async fn revoke_contact_links(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let mut k = load_contact(app, staff, id).await?;
    let writes = revoke_links(&mut k.tokens);
    app.store.save_contact(staff.company_id, &mut k, writes).await?;
    tracing::info!(contact_id = %k.id, "contact links revoked");
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// "Login as customer": exactly what the contact sees, read-only, audited.
pub async fn preview(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let company = company(app, staff).await?;
    let k = load_contact(app, staff, id).await?;
    let actor = staff.actor(None);
    app.store
        .record_contact_audit(
            company.id,
            &ContactAudit::new(k.id, AuditAction::CustomerPreview, actor, None, Outcome::Allowed, app.now()),
        )
        .await?;
    let view = customer_portal::view(&app.store, &company, &k).await?;
    let feed = customer_portal::home_feed(&app.store, &company, &k, 20, None).await?;
    if wants_json(req) {
        let mut body = serde_json::to_value(&view).map_err(ApiError::internal)?;
        body["deficiencies"] = serde_json::to_value(&feed).map_err(ApiError::internal)?;
        json(StatusCode::OK, &body)
    } else {
        pages::html(StatusCode::OK, pages::customer(&view, &feed.items, None))
    }
}

pub async fn contact_audit(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let k = load_contact(app, staff, id).await?;
    let page = app
        .store
        .contact_audit_trail(staff.company_id, k.id, page_limit(req)?, query_param(req, "cursor").as_deref())
        .await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}
