//! Inspections: create (issuing each person's tokenized link), read, list, change release
//! requirements, add services.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::clock;
use portal_shared::domain::company::Company;
use portal_shared::domain::inspection::{
    Inspection, NewInspection, Person, PersonInput, RequirementsPatch, ServiceInput, ServiceKind,
};
use portal_shared::http::{json, json_body, page_limit, query_param, ApiResult};
use portal_shared::ids::{BuildingId, InspectionId, PersonId};
use portal_shared::store::tokens::{revoke_all, IssuedToken};
use portal_shared::store::Write;
use portal_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::settings::company;
use crate::StaffApi;
use portal_shared::auth::Staff;

fn share_url(app: &StaffApi, id: InspectionId) -> String {
    format!("{}/share/{id}", app.config.public_base_url)
}

fn view(app: &StaffApi, i: &Inspection) -> serde_json::Value {
    let people: Vec<_> = i
        .people
        .iter()
        .map(|p| {
            json!({
                "person_id": p.id,
                "role": p.role,
                "name": p.name,
                "email": p.email,
                "phone": p.phone,
                "live_links": p.tokens.len(),
            })
        })
        .collect();
    json!({
        "inspection_id": i.id,
        "address": i.address,
        "scheduled_at": clock::rfc3339(i.scheduled_at),
        "cover_photo_url": i.cover_photo_url,
        "currency": i.currency,
        "services": i.services,
        "people": people,
        "requirements": i.requirements,
        "building_id": i.building_id,
        "agreement": { "version": i.agreement.version, "signed": i.agreement_signed() },
        "invoice_total_cents": i.invoice_total().get(),
        "paid_cents": i.paid().get(),
        "balance_cents": i.balance().get(),
        "share_url": share_url(app, i.id),
        "created_at": clock::rfc3339(i.created_at),
        "updated_at": clock::rfc3339(i.updated_at),
    })
}

#[derive(Serialize)]
struct Link {
    person_id: String,
    role: &'static str,
    url: String,
}

/// The person's portal URL: the one place a token is revealed, in the response to staff.
fn link(app: &StaffApi, person: &Person, issued: &IssuedToken) -> Link {
    Link {
        person_id: person.id.to_string(),
        role: person.role.as_str(),
        url: format!("{}/p/{}", app.config.public_base_url, issued.token.reveal()),
    }
}

/// Creates an inspection; `building` makes it a commercial inspection of that building.
pub async fn create(app: &StaffApi, staff: &Staff, req: &Request, building: Option<BuildingId>) -> ApiResult {
    let input: NewInspection = json_body(req)?;
    let company = company(app, staff).await?;
    if let Some(b) = building {
        app.store.building(company.id, b).await?.ok_or(ApiError::NotFound)?;
    }
    let now = clock::now();
    let mut inspection = Inspection::create(input, &company, now)?;
    inspection.building_id = building;

    // One token per person and role, none for staff users' emails (they use the staff side).
    let holders = inspection.people_needing_tokens(&company);
    let mut writes = Vec::with_capacity(holders.len());
    let mut links = Vec::with_capacity(holders.len());
    for idx in holders {
        let (issued, w) = IssuedToken::issue(&mut inspection, idx, now, false)?;
        writes.extend(w);
        links.push(link(app, &inspection.people[idx], &issued));
    }
    app.store.create_inspection(&inspection, writes).await?;
    tracing::info!(company_id = %company.id, inspection_id = %inspection.id, links = links.len(), "inspection created");
    let body = json!({
        "inspection_id": inspection.id,
        "share_url": share_url(app, inspection.id),
        "links": links,
        "inspection": view(app, &inspection),
    });
    let mut resp = json(StatusCode::CREATED, &body)?;
    if let Ok(loc) = format!("/staff/inspections/{}", inspection.id).parse() {
        resp.headers_mut().insert(http::header::LOCATION, loc);
    }
    Ok(resp)
}

async fn load(app: &StaffApi, staff: &Staff, id: &str) -> Result<Inspection, ApiError> {
    let id: InspectionId = id.parse().map_err(|_| ApiError::NotFound)?;
    app.store.inspection(staff.company_id, id).await?.ok_or(ApiError::NotFound)
}

pub async fn get(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    json(StatusCode::OK, &view(app, &load(app, staff, id).await?))
}

pub async fn list(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let page = app.store.list_inspections(staff.company_id, limit, cursor.as_deref()).await?;
    let items: Vec<_> = page
        .items
        .iter()
        .map(|s| json!({ "inspection_id": s.id, "address": s.address, "scheduled_at": clock::rfc3339(s.scheduled_at) }))
        .collect();
    json(StatusCode::OK, &json!({ "items": items, "next_cursor": page.next_cursor }))
}

/// Read, change, save with the revision read (see [`portal_shared::store::Store::modify_inspection`]).
async fn modify<T>(
    app: &StaffApi,
    staff: &Staff,
    id: &str,
    change: impl FnMut(&Company, &mut Inspection) -> Result<(T, Vec<Write>), ApiError>,
) -> Result<(Inspection, T), ApiError> {
    let id: InspectionId = id.parse().map_err(|_| ApiError::NotFound)?;
    app.store.modify_inspection(staff.company_id, id, change).await
}

pub async fn change_requirements(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let patch: RequirementsPatch = json_body(req)?;
    let (inspection, ()) =
        modify(app, staff, id, |_, i| Ok((i.change_requirements(patch, clock::now())?, vec![]))).await?;
    json(StatusCode::OK, &view(app, &inspection))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewService {
    name: String,
    #[serde(default)]
    description: String,
    price_cents: i64,
    #[serde(default = "base")]
    kind: ServiceKind,
}

fn base() -> ServiceKind {
    ServiceKind::Base
}

pub async fn add_service(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: NewService = json_body(req)?;
    let (inspection, service) = modify(app, staff, id, |_, i| {
        let s = ServiceInput {
            name: input.name.clone(),
            description: input.description.clone(),
            price_cents: input.price_cents,
        };
        Ok((i.add_service(s, input.kind, clock::now())?.clone(), vec![]))
    })
    .await?;
    json(StatusCode::CREATED, &json!({ "service": service, "inspection": view(app, &inspection) }))
}

/// Adds a person; they get their own link unless their email is a staff user's (or they have none).
pub async fn add_person(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: PersonInput = json_body(req)?;
    let now = clock::now();
    let (inspection, (idx, issued)) = modify(app, staff, id, |company, i| {
        let idx = i.add_person(input.clone(), now)?;
        if !i.needs_token(idx, company) {
            return Ok(((idx, None), vec![]));
        }
        let (issued, writes) = IssuedToken::issue(i, idx, now, false)?;
        Ok(((idx, Some(issued)), writes))
    })
    .await?;
    let person = &inspection.people[idx];
    let body = json!({
        "person_id": person.id,
        "role": person.role,
        "link": issued.as_ref().map(|t| link(app, person, t)),
        "inspection": view(app, &inspection),
    });
    json(StatusCode::CREATED, &body)
}

fn person_index(i: &Inspection, person: &str) -> Result<usize, ApiError> {
    person.parse::<PersonId>().ok().and_then(|p| i.person_index(p)).ok_or(ApiError::NotFound)
}

/// Re-issues a person's link: the new one works at once and every earlier one never again (in one
/// transaction).
pub async fn reissue_token(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    let now = clock::now();
    let (inspection, (idx, issued)) = modify(app, staff, id, |company, i| {
        let idx = person_index(i, person)?;
        if !i.needs_token(idx, company) {
            return Err(ApiError::conflict(
                "no-link-for-person",
                "this person gets no portal link: they have no email, or it belongs to a staff user",
            ));
        }
        let (issued, writes) = IssuedToken::issue(i, idx, now, true)?;
        Ok(((idx, issued), writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, person_id = %inspection.people[idx].id, "link re-issued");
    json(StatusCode::CREATED, &link(app, &inspection.people[idx], &issued))
}

/// Revokes every link of a person. Revoking what is already revoked is fine.
pub async fn revoke_token(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    let (inspection, idx) = modify(app, staff, id, |_, i| {
        let idx = person_index(i, person)?;
        Ok((idx, revoke_all(i, idx)))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, person_id = %inspection.people[idx].id, "link revoked");
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}
