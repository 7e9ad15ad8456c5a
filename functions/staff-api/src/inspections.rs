//! Inspections: create (issuing each person's tokenized link), read, list, change release
//! requirements, add services.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::outbox::EmailRecord;
use portal_shared::adapters::store::tokens::{revoke_all, Issue, IssuedToken};
use portal_shared::adapters::store::Write;
use portal_shared::domain::audit::{AuditAction, AuditRecord, Outcome};
use portal_shared::domain::company::Company;
use portal_shared::domain::inspection::{
    FindingInput, Inspection, NewInspection, Person, PersonInput, RequirementsPatch, SchedulePatch, ServiceInput,
    ServiceKind,
};
use portal_shared::foundation::clock;
use portal_shared::foundation::ids::{BuildingId, FindingId, InspectionId, PersonId};
use portal_shared::web::http::{json, json_body, page_limit, query_param, ApiResult};
use portal_shared::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::settings::company;
use crate::StaffApi;
use portal_shared::web::auth::Staff;

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
                "revoked": p.revoked,
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
        "status": if i.is_cancelled() { "cancelled" } else { "active" },
        "cancelled_at": i.cancelled_at.map(clock::rfc3339),
        "cancel_reason": i.cancel_reason,
        "next_reminder_at": i.reminder_due.map(clock::rfc3339),
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
    let notify = input.notify;
    let person_notify: Vec<Option<bool>> = input.people.iter().map(|p| p.notify).collect();
    let company = company(app, staff).await?;
    if let Some(b) = building {
        app.store.building(company.id, b).await?.ok_or(ApiError::NotFound)?;
    }
    let now = app.now();
    let mut inspection = Inspection::create(input, &company, now)?;
    inspection.building_id = building;

    // One token per person and role, none for staff users' emails (they use the staff side).
    let holders = inspection.people_needing_tokens(&company);
    let mut writes = Vec::with_capacity(holders.len() * 2);
    let mut links = Vec::with_capacity(holders.len());
    for &idx in &holders {
        let (issued, w) = IssuedToken::issue(&mut inspection, idx, now, Issue::Add)?;
        writes.extend(w);
        links.push(link(app, &inspection.people[idx], &issued));
    }
    // Each token holder's confirmation email ("Sign & Pay"), through the outbox, once.
    if notify != Some(false) {
        let wanted: Vec<usize> =
            holders.into_iter().filter(|&n| person_notify.get(n).copied().flatten() != Some(false)).collect();
        writes.extend(confirmations(&inspection, &wanted, now)?);
    }
    app.store.create_inspection(&mut inspection, &company, writes).await?;
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

/// Read, change, save with the revision read (see [`portal_shared::adapters::store::Store::modify_inspection`]).
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
    let patch: RequirementsPatch = portal_shared::web::http::json_patch_body(req, &[])?;
    let (inspection, ()) =
        modify(app, staff, id, |_, i| Ok((i.change_requirements(patch, app.now())?, vec![]))).await?;
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
        Ok((i.add_service(s, input.kind, app.now())?.clone(), vec![]))
    })
    .await?;
    json(StatusCode::CREATED, &json!({ "service": service, "inspection": view(app, &inspection) }))
}

/// The confirmation email of each person at `people` (an `inspection_scheduled` per person per
/// inspection: the dedupe key makes a second one impossible).
fn confirmations(i: &Inspection, people: &[usize], now: time::OffsetDateTime) -> Result<Vec<Write>, ApiError> {
    let mut writes = Vec::with_capacity(people.len());
    for &n in people {
        let p = i.people[n].id;
        let email =
            EmailRecord::new(i.company_id, i.id, p, "inspection_scheduled", None, format!("scheduled#{p}"), now);
        writes.push(email.create()?);
    }
    Ok(writes)
}

/// Adds a person; they get their own link unless their email is a staff user's (or they have
/// none), and a confirmation email unless `"notify": false`.
pub async fn add_person(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: PersonInput = json_body(req)?;
    let now = app.now();
    let (inspection, (idx, issued)) = modify(app, staff, id, |company, i| {
        let idx = i.add_person(input.clone(), now)?;
        if !i.needs_token(idx, company) {
            return Ok(((idx, None), vec![]));
        }
        let (issued, mut writes) = IssuedToken::issue(i, idx, now, Issue::Add)?;
        if input.notify != Some(false) {
            writes.extend(confirmations(i, &[idx], now)?);
        }
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

/// Changes the date or address; each person with a link is told (`inspection_rescheduled`,
/// once per change) unless `"notify": false`.
pub async fn reschedule(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let patch: SchedulePatch = portal_shared::web::http::json_patch_body(req, &[])?;
    let now = app.now();
    let (inspection, changed) = modify(app, staff, id, |company, i| {
        if !i.reschedule(&patch, now)? || patch.notify == Some(false) {
            return Ok((false, vec![]));
        }
        // The revision this change saves names it: one update per person per change.
        let change = i.revision + 1;
        let mut writes = Vec::new();
        for n in (0..i.people.len()).filter(|&n| i.emailable(n, company)) {
            let p = i.people[n].id;
            let dedupe = format!("rescheduled#{change}#{p}");
            writes.push(EmailRecord::new(i.company_id, i.id, p, "inspection_rescheduled", None, dedupe, now).create()?);
        }
        Ok((true, writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, notified = changed, "inspection rescheduled");
    json(StatusCode::OK, &view(app, &inspection))
}

/// Cancels the inspection (`{"reason"?, "notify"?}`): no reminders, publishing or Pay Now from
/// now on; money already paid is not touched (staff refund with the provider; the refund's event
/// applies as usual). Each person with a link is told (`inspection_cancelled`, once per
/// cancellation) unless `"notify": false`. Cancelling a cancelled inspection changes nothing.
pub async fn cancel(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Cancel {
        reason: Option<String>,
        notify: Option<bool>,
    }
    let input: Cancel = optional_body(req)?;
    let now = app.now();
    let (inspection, changed) = modify(app, staff, id, |company, i| {
        if !i.cancel(input.reason.as_deref(), now)? {
            return Ok((false, vec![]));
        }
        let writes =
            if input.notify == Some(false) { vec![] } else { tell_everyone(company, i, "inspection_cancelled", now)? };
        Ok((true, writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, changed, "inspection cancelled");
    json(StatusCode::OK, &view(app, &inspection))
}

/// Undoes a cancellation (`{"notify"?}`); each person with a link is told it is back on
/// (`inspection_reinstated`) unless `"notify": false`.
pub async fn reinstate(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Reinstate {
        notify: Option<bool>,
    }
    let input: Reinstate = optional_body(req)?;
    let now = app.now();
    let (inspection, changed) = modify(app, staff, id, |company, i| {
        if !i.reinstate(now) {
            return Ok((false, vec![]));
        }
        let writes =
            if input.notify == Some(false) { vec![] } else { tell_everyone(company, i, "inspection_reinstated", now)? };
        Ok((true, writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, changed, "inspection reinstated");
    json(StatusCode::OK, &view(app, &inspection))
}

/// A body that may be left out (its defaults then).
fn optional_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    if portal_shared::web::http::body_bytes(req).iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        portal_shared::web::http::json_patch_body(req, &[])
    }
}

/// One `template_key` email to each person with a link who hears from the company, named by the
/// revision this change saves (one per person per change).
fn tell_everyone(
    company: &portal_shared::domain::company::Company,
    i: &Inspection,
    template_key: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<portal_shared::adapters::store::Write>, ApiError> {
    let change = i.revision + 1;
    (0..i.people.len())
        .filter(|&n| i.needs_token(n, company) && !i.people[n].quiet)
        .map(|n| {
            let p = i.people[n].id;
            let dedupe = format!("{template_key}#{change}#{p}");
            Ok(EmailRecord::new(i.company_id, i.id, p, template_key, None, dedupe, now).create()?)
        })
        .collect()
}

/// Removes a person: every link of theirs dies in the same transaction, and it is audited.
pub async fn remove_person(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    let now = app.now();
    let (inspection, removed) = modify(app, staff, id, |company, i| {
        let idx = person_index(i, person)?;
        let mut writes = revoke_all(i, idx);
        let removed = i.remove_person(idx, now);
        writes.push(audit(staff, company, i.id, removed.id, AuditAction::PersonRemoved, now)?);
        Ok((removed, writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, person_id = %removed.id, "person removed");
    no_content()
}

fn audit(
    staff: &Staff,
    company: &portal_shared::domain::company::Company,
    inspection: InspectionId,
    person: PersonId,
    action: AuditAction,
    now: OffsetDateTime,
) -> Result<Write, ApiError> {
    let actor = staff.actor(Some(person));
    Ok(AuditRecord::new(inspection, action, actor, Outcome::Done, now).write(company)?)
}

fn no_content() -> ApiResult {
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// The findings recorded for the report: `recorded` false while nobody recorded any (nor said
/// there are none).
pub async fn findings(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let i = load(app, staff, id).await?;
    json(StatusCode::OK, &json!({ "recorded": i.findings.is_some(), "items": i.findings.unwrap_or_default() }))
}

/// Largest photo accepted (S3 itself refuses more).
pub const MAX_PHOTO_BYTES: i64 = 10 * 1024 * 1024;

/// A place for one photo of the inspection (`{"content_type": "image/jpeg" | "image/png"}`):
/// its key under the inspection's prefix — what a finding's `photos` names, so the generated
/// report embeds it — and a presigned POST that lets S3 take exactly that type, at most 10 MiB,
/// for 15 minutes, at that key only.
pub async fn photo_upload(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let i = load(app, staff, id).await?;
    image_upload_form(app, req, &format!("{}photos/", i.photo_prefix()), MAX_PHOTO_BYTES, "").await
}

/// Makes an uploaded photo (`{"key"}` from `POST …/photos`) the inspection's cover: checked to be
/// there and a JPEG or PNG by its bytes; the portal shows it to link holders.
pub async fn set_cover_photo(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cover {
        key: String,
    }
    let input: Cover = json_body(req)?;
    let i = load(app, staff, id).await?;
    if !input.key.starts_with(&format!("{}photos/", i.photo_prefix())) || input.key.contains("..") {
        return Err(ApiError::bad_request("key: the key POST /staff/inspections/{id}/photos gave"));
    }
    match app.blobs.head(&input.key).await.map_err(ApiError::internal)? {
        Some(o) if o.size <= MAX_PHOTO_BYTES => {}
        _ => return Err(ApiError::bad_request("key: nothing (or too much) was uploaded there")),
    }
    let bytes = app.blobs.read(&input.key, None).await.map_err(ApiError::internal)?;
    if !(bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF])) {
        return Err(ApiError::bad_request("key: the upload is not a JPEG or PNG"));
    }
    let (i, ()) = modify(app, staff, id, |_, i| {
        i.cover_photo = Some(input.key.clone());
        Ok(((), vec![]))
    })
    .await?;
    json(StatusCode::OK, &json!({ "cover_photo": i.cover_photo }))
}

/// Back to no uploaded cover (the `cover_photo_url`, if any, shows again).
pub async fn remove_cover_photo(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    modify(app, staff, id, |_, i| {
        i.cover_photo = None;
        Ok(((), vec![]))
    })
    .await?;
    http::Response::builder().status(StatusCode::NO_CONTENT).body(lambda_http::Body::Empty).map_err(ApiError::internal)
}

/// `{"content_type": "image/jpeg" | "image/png"}` → `201 {"key", "upload"}`: a new key under
/// `prefix` and a presigned POST of exactly that type, at most `max_bytes`, for 15 minutes.
pub async fn image_upload_form(
    app: &StaffApi,
    req: &Request,
    prefix: &str,
    max_bytes: i64,
    why_not_svg: &str,
) -> ApiResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewImage {
        content_type: String,
    }
    let input: NewImage = json_body(req)?;
    let extension = match input.content_type.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => return Err(ApiError::bad_request(format!("content_type: image/jpeg or image/png{why_not_svg}"))),
    };
    let key = format!("{prefix}{}.{extension}", ulid::Ulid::new());
    let upload = app
        .blobs
        .presign_post(&key, &input.content_type, max_bytes, portal_shared::usecases::uploads::UPLOAD_URL_TTL)
        .await
        .map_err(ApiError::internal)?;
    json(StatusCode::CREATED, &json!({ "key": key, "upload": upload }))
}

/// Records one finding for the report.
pub async fn record_finding(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: FindingInput = json_body(req)?;
    let (_, finding) =
        modify(app, staff, id, |_, i| Ok((i.record_finding(input.clone(), app.now())?.clone(), vec![]))).await?;
    json(StatusCode::CREATED, &finding)
}

/// Removes a recorded finding (a report already rendered keeps what it showed until rebuilt).
pub async fn remove_finding(app: &StaffApi, staff: &Staff, id: &str, finding: &str) -> ApiResult {
    let finding: FindingId = finding.parse().map_err(|_| ApiError::NotFound)?;
    let (_, removed) = modify(app, staff, id, |_, i| Ok((i.remove_finding(finding, app.now()), vec![]))).await?;
    if !removed {
        return Err(ApiError::NotFound);
    }
    no_content()
}

/// The quotes clients asked partners for, each with the consent it was given with.
pub async fn quotes(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let i = load(app, staff, id).await?;
    json(StatusCode::OK, &json!({ "items": i.quotes }))
}

/// Re-issues a person's link: the new one works at once and every earlier one never again (in one
/// transaction). It also lifts a revocation.
pub async fn reissue_token(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    let now = app.now();
    let (inspection, (idx, issued)) = modify(app, staff, id, |company, i| {
        let idx = person_index(i, person)?;
        i.people[idx].revoked = false;
        if !i.needs_token(idx, company) {
            return Err(ApiError::conflict(
                "no-link-for-person",
                "this person gets no portal link: they have no email, or it belongs to a staff user",
            ));
        }
        let (issued, mut writes) = IssuedToken::issue(i, idx, now, Issue::ReplaceAll)?;
        writes.push(audit(staff, company, i.id, i.people[idx].id, AuditAction::LinkReissued, now)?);
        Ok(((idx, issued), writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, person_id = %inspection.people[idx].id, "link re-issued");
    json(StatusCode::CREATED, &link(app, &inspection.people[idx], &issued))
}

/// Revokes every link of a person, for good: no email or "Get Full Access" gives them a new one
/// until staff re-issue it. Revoking what is already revoked is fine.
pub async fn revoke_token(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    let now = app.now();
    let (inspection, idx) = modify(app, staff, id, |company, i| {
        let idx = person_index(i, person)?;
        i.people[idx].revoked = true;
        let mut writes = revoke_all(i, idx);
        writes.push(audit(staff, company, i.id, i.people[idx].id, AuditAction::LinkRevoked, now)?);
        Ok((idx, writes))
    })
    .await?;
    tracing::info!(inspection_id = %inspection.id, person_id = %inspection.people[idx].id, "link revoked");
    no_content()
}
