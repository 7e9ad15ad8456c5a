//! Documents (register, presigned PDF upload, verify, edit, download), offline payments, previews
//! of what a person sees, resending a PDF by email, and the audit trail.

use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::documents::DocumentPointer;
use portal_shared::adapters::store::outbox::{EmailRecord, STAFF_REPEAT_WINDOW_SECONDS};
use portal_shared::domain::audit::{AuditAction, AuditRecord, Outcome};
use portal_shared::domain::document::{object_key, DocumentPatch, NewDocument};
use portal_shared::domain::gate::{self, Access, Viewer};
use portal_shared::domain::inspection::{Inspection, LedgerEntry, Role};
use portal_shared::domain::portal::PortalView;
use portal_shared::foundation::ids::{DocumentId, InspectionId, PersonId};
use portal_shared::foundation::money::Cents;
use portal_shared::usecases::{outbox, publishing, uploads};
use portal_shared::web::auth::Staff;
use portal_shared::web::http::{json, json_body, page_limit, query_param, wants_json, ApiResult};
use portal_shared::web::{delivery, pages};
use portal_shared::ApiError;
use serde::Deserialize;
use serde_json::json;
use ulid::Ulid;

use crate::settings::company;
use crate::StaffApi;

fn inspection_id(id: &str) -> Result<InspectionId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

fn document_id(id: &str) -> Result<DocumentId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

/// A presigned POST for the document's PDF: S3 itself refuses anything but `application/pdf` of
/// at most [`uploads::MAX_PDF_BYTES`], for 15 minutes, at this document's key only.
async fn upload_form(app: &StaffApi, i: &Inspection, doc: DocumentId) -> Result<serde_json::Value, ApiError> {
    let post = app
        .blobs
        .presign_pdf_post(&object_key(i.company_id, i.id, doc), uploads::MAX_PDF_BYTES, uploads::UPLOAD_URL_TTL)
        .await
        .map_err(ApiError::internal)?;
    serde_json::to_value(post).map_err(ApiError::internal)
}

/// Registers a document; answers its id and a presigned POST for its PDF (`upload`: the form
/// fields S3 expects before the `file` part). The document and its pointer are written in one transaction.
pub async fn create(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: NewDocument = json_body(req)?;
    let (inspection, doc) = app
        .store
        .modify_inspection(staff.company_id, inspection_id(id)?, |company, i| {
            let doc = i.add_document(input.clone(), company, app.now())?.id;
            let schedule = publishing::schedule_write(i, i.document(doc).ok_or(ApiError::NotFound)?)?;
            Ok((doc, vec![DocumentPointer::write(staff.company_id, doc, i.id)?, schedule]))
        })
        .await?;
    let upload = upload_form(app, &inspection, doc).await?;
    let view = inspection.document(doc).ok_or(ApiError::NotFound)?.staff_view(inspection.id);
    json(StatusCode::CREATED, &json!({ "document_id": doc, "upload": upload, "document": view }))
}

pub async fn list(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let i = app.store.inspection(staff.company_id, inspection_id(id)?).await?.ok_or(ApiError::NotFound)?;
    let items: Vec<_> = i.documents.iter().map(|d| d.staff_view(i.id)).collect();
    json(StatusCode::OK, &json!({ "items": items }))
}

async fn load(app: &StaffApi, staff: &Staff, id: &str) -> Result<(Inspection, DocumentId), ApiError> {
    let doc = document_id(id)?;
    let pointer = app.store.document_pointer(staff.company_id, doc).await?.ok_or(ApiError::NotFound)?;
    let i = app.store.inspection(staff.company_id, pointer.inspection_id).await?.ok_or(ApiError::NotFound)?;
    i.document(doc).ok_or(ApiError::NotFound)?;
    Ok((i, doc))
}

fn view(i: &Inspection, doc: DocumentId) -> ApiResult {
    json(StatusCode::OK, &i.document(doc).ok_or(ApiError::NotFound)?.staff_view(i.id))
}

pub async fn get(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let (i, doc) = load(app, staff, id).await?;
    view(&i, doc)
}

pub async fn update(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let patch: DocumentPatch = portal_shared::web::http::json_patch_body(req, &["publish_at"])?;
    let doc = document_id(id)?;
    let (i, ()) = app
        .store
        .modify_document(staff.company_id, doc, |_, i| {
            let d = i.document_mut(doc).ok_or(ApiError::NotFound)?;
            d.apply(patch.clone())?;
            let schedule = publishing::schedule_write(i, i.document(doc).ok_or(ApiError::NotFound)?)?;
            i.updated_at = app.now();
            Ok(((), vec![schedule]))
        })
        .await?;
    view(&i, doc)
}

/// A fresh presigned POST (to upload again, e.g. a corrected PDF).
pub async fn new_upload_url(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let (i, doc) = load(app, staff, id).await?;
    json(StatusCode::OK, &json!({ "document_id": doc, "upload": upload_form(app, &i, doc).await? }))
}

/// Verifies the uploaded object (present, `application/pdf`, sane size, `%PDF-` signature), marks
/// the document uploaded with a new file version, and publishes it if it auto-publishes.
pub async fn complete_upload(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let doc = document_id(id)?;
    let i = publishing::complete_upload(&app.store, &app.blobs, staff.company_id, doc).await?;
    view(&i, doc)
}

/// The payload rebuild (full sync): renders a report again from the inspection's current stored
/// data (its findings included) and replaces its PDF with a new version; the portal serves it at
/// once. Works for any report whose payload the system holds (generated reports, and any report
/// with a payload stored beside its PDF); other uploads are replaced by uploading a new PDF.
pub async fn rebuild(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let (i, doc) = load(app, staff, id).await?;
    let company = company(app, staff).await?;
    let d = i.document(doc).ok_or(ApiError::NotFound)?;
    let key = object_key(i.company_id, i.id, doc);
    let payload_key = format!("{}.json", key.trim_end_matches(".pdf"));
    let holds_payload = d.generated
        || (d.kind.is_report() && app.blobs.head(&payload_key).await.map_err(ApiError::internal)?.is_some());
    if !holds_payload {
        return Err(ApiError::conflict(
            "not-generated",
            "no payload is held for this document: upload a new PDF to replace it",
        ));
    }
    let version = publishing::render_and_store(&app.store, &app.blobs, &company, &i, d).await?;
    let (i, ()) = app
        .store
        .modify_document(staff.company_id, doc, |_, i| {
            let d = i.document_mut(doc).ok_or(ApiError::NotFound)?;
            d.file_version += 1;
            d.verified_version = version.clone();
            // A rebuild corrects the rendering of what was announced: it sends no new email.
            let v = d.file_version;
            d.notified_versions.push(v);
            i.updated_at = app.now();
            Ok(((), vec![]))
        })
        .await?;
    tracing::info!(document_id = %doc, inspection_id = %i.id, "payload rebuilt");
    view(&i, doc)
}

/// Staff always pass the gate: a `303` to the PDF, whatever its state.
pub async fn download(app: &StaffApi, staff: &Staff, id: &str) -> ApiResult {
    let (i, doc) = load(app, staff, id).await?;
    let d = i.document(doc).ok_or(ApiError::NotFound)?;
    if !d.uploaded {
        return Err(ApiError::conflict("not-uploaded", "this document has no PDF yet"));
    }
    let actor = staff.actor(None);
    let audit = AuditRecord::document(i.id, AuditAction::DocumentOpen, actor, doc, &Access::Available, app.now());
    // (The company: its audit retention.)
    let company = app.store.company(staff.company_id).await?.ok_or(ApiError::NotFound)?;
    app.store.record_audit(&company, &audit).await?;
    delivery::redirect(&app.blobs, &i, d).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflinePayment {
    amount_cents: i64,
    /// cash, check, card_terminal, other
    method: String,
    #[serde(default)]
    reference: Option<String>,
    /// A refund given back offline.
    #[serde(default)]
    refund: bool,
}

/// Records money received (or refunded) outside the portal in the same ledger as webhooks.
pub async fn record_payment(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: OfflinePayment = json_body(req)?;
    let amount = Cents::price(input.amount_cents).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if amount == Cents::ZERO {
        return Err(ApiError::bad_request("amount_cents must be positive"));
    }
    if !["cash", "check", "card_terminal", "other"].contains(&input.method.as_str()) {
        return Err(ApiError::bad_request("method must be cash, check, card_terminal or other"));
    }
    if input.reference.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::bad_request("reference must be at most 200 characters"));
    }
    let key = format!("offline_{}", Ulid::new());
    let (i, ()) = app
        .store
        .modify_inspection(staff.company_id, inspection_id(id)?, |company, i| {
            let before = i.ledger.clone();
            let signed = if input.refund { -amount.get() } else { amount.get() };
            let kind = format!("offline_{}_{}", if input.refund { "refund" } else { "payment" }, input.method);
            i.ledger.insert(
                key.clone(),
                LedgerEntry {
                    amount_cents: signed,
                    pending_cents: 0,
                    kind,
                    recorded_at: app.now(),
                    event_created: 0,
                    card: None,
                },
            );
            i.updated_at = app.now();
            Ok(((), EmailRecord::money_notices(company, &before, i, app.now())?))
        })
        .await?;
    tracing::info!(inspection_id = %i.id, entry = %key, "offline payment recorded");
    json(
        StatusCode::CREATED,
        &json!({ "entry_id": key, "paid_cents": i.paid(), "balance_cents": i.balance(), "reference": input.reference }),
    )
}

fn person_idx(i: &Inspection, person: &str) -> Result<usize, ApiError> {
    person.parse::<PersonId>().ok().and_then(|p| i.person_index(p)).ok_or(ApiError::NotFound)
}

/// The portal exactly as `person` sees it: read-only HTML, or the same JSON. Audited.
pub async fn preview_portal(app: &StaffApi, staff: &Staff, req: &Request, id: &str, person: &str) -> ApiResult {
    let (company, i) =
        app.store.company_and_inspection(staff.company_id, inspection_id(id)?).await?.ok_or(ApiError::NotFound)?;
    let p = &i.people[person_idx(&i, person)?];
    let actor = staff.actor(Some(p.id));
    app.store
        .record_audit(&company, &AuditRecord::new(i.id, AuditAction::PortalPreview, actor, Outcome::Allowed, app.now()))
        .await?;
    let view = PortalView::build(&company, &i, p, app.config.stripe.is_some());
    if wants_json(req) {
        json(StatusCode::OK, &view)
    } else {
        let base = format!("/staff/inspections/{}/preview/{}", i.id, p.id);
        pages::html(StatusCode::OK, pages::portal(&view, &base, true, None))
    }
}

/// A link staff open in a browser to see `person`'s portal as they see it, read-only: single
/// use, for 10 minutes (`201 {"url", "expires_at"}`). Opening it is audited as this key's
/// preview.
pub async fn preview_link(app: &StaffApi, staff: &Staff, id: &str, person: &str) -> ApiResult {
    use portal_shared::adapters::store::tokens::{PreviewLink, PREVIEW_LIFETIME};
    let i = app.store.inspection(staff.company_id, inspection_id(id)?).await?.ok_or(ApiError::NotFound)?;
    let p = &i.people[person_idx(&i, person)?];
    let link = PreviewLink {
        company_id: staff.company_id,
        inspection_id: i.id,
        person_id: p.id,
        key_id: staff.key_id,
        key_name: staff.key_name.clone(),
        valid_until: app.now() + PREVIEW_LIFETIME,
    };
    let secret = app.store.create_preview_link(&link).await?;
    let url = format!("{}/preview/{}", app.config.public_base_url, secret.reveal());
    json(
        StatusCode::CREATED,
        &json!({ "url": url, "expires_at": portal_shared::foundation::clock::rfc3339(link.valid_until) }),
    )
}

/// Opening a document as `person` would: `303`, `403` with the reasons, or `404`. Audited.
pub async fn preview_document(
    app: &StaffApi,
    staff: &Staff,
    req: &Request,
    id: &str,
    person: &str,
    doc: &str,
) -> ApiResult {
    let (company, i) =
        app.store.company_and_inspection(staff.company_id, inspection_id(id)?).await?.ok_or(ApiError::NotFound)?;
    let p = &i.people[person_idx(&i, person)?];
    let doc = document_id(doc)?;
    let d = i.document(doc);
    let access = d.map(|d| gate::decide(d, &i, &company, Viewer::Person(p.role))).unwrap_or(Access::Hidden);
    let actor = staff.actor(Some(p.id));
    app.store
        .record_audit(
            &company,
            &AuditRecord::document(i.id, AuditAction::DocumentPreview, actor, doc, &access, app.now()),
        )
        .await?;
    match (access, d) {
        (Access::Available, Some(d)) => delivery::redirect(&app.blobs, &i, d).await,
        (Access::Locked(reasons), Some(d)) => delivery::locked(req, &i, d, &reasons, None),
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    /// One person; by default every client with an email.
    #[serde(default)]
    person_id: Option<PersonId>,
}

/// Queues the PDF itself for the client(s), an explicit staff action (it bypasses the gate, as
/// staff may): one outbox email per recipient — deduplicated (repeats within 10 minutes are one
/// email), retried, suppressed, with history — carrying the PDF, read when it is sent, and the
/// recipient's own fresh portal link, made then. Audited per recipient. `202`.
pub async fn resend(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let input: Resend =
        if portal_shared::web::http::body_bytes(req).is_empty() { Resend::default() } else { json_body(req)? };
    let doc = document_id(id)?;
    let now = app.now();
    let (company, i) = app
        .store
        .company_and_inspection(
            staff.company_id,
            app.store.document_pointer(staff.company_id, doc).await?.ok_or(ApiError::NotFound)?.inspection_id,
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let d = i.document(doc).ok_or(ApiError::NotFound)?;
    if !d.uploaded {
        return Err(ApiError::conflict("not-uploaded", "this document has no PDF yet"));
    }
    // Said now rather than found by the job: a PDF too large to attach.
    let key = object_key(i.company_id, i.id, doc);
    let info = app.blobs.head(&key).await.map_err(ApiError::internal)?;
    if info.is_none_or(|o| o.size > outbox::MAX_ATTACHMENT_BYTES) {
        return Err(ApiError::conflict("too-large-to-email", "the PDF is missing or too large to attach (7 MiB)"));
    }
    let targets: Vec<usize> = match input.person_id {
        Some(p) => vec![i.person_index(p).ok_or_else(|| ApiError::bad_request("no such person"))?],
        None => (0..i.people.len()).filter(|&n| i.people[n].role == Role::Client).collect(),
    };
    let targets: Vec<usize> = targets.into_iter().filter(|&n| i.needs_token(n, &company)).collect();
    if targets.is_empty() {
        return Err(ApiError::conflict("no-recipient", "nobody to send to: no client with an email address"));
    }
    let (mut queued, mut suppressed, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    for n in targets {
        let p = &i.people[n];
        let Some(address) = &p.email else { continue };
        if let Some(s) = app.store.suppression(company.id, address.as_str()).await?.filter(|s| s.blocks(false)) {
            suppressed.push(json!({ "person_id": p.id, "email": p.email, "reason": s.reason }));
            continue;
        }
        let email = EmailRecord::resend(company.id, i.id, p.id, doc, now);
        // A repeat of a request minutes ago is that request.
        let (gate, open_gate) = email.gate(STAFF_REPEAT_WINDOW_SECONDS)?;
        if app.store.open_gate(&gate, now).await?.is_none() {
            writes.push(open_gate);
            writes.push(email.create()?);
            let mut audit =
                AuditRecord::new(i.id, AuditAction::DocumentResend, staff.actor(Some(p.id)), Outcome::Sent, now);
            audit.document_id = Some(doc);
            writes.push(audit.write(&company)?);
        }
        queued.push(json!({ "person_id": p.id, "email": p.email }));
    }
    match if writes.is_empty() { Ok(()) } else { app.store.transact(writes).await } {
        Ok(()) => {}
        Err(e) if e.is_condition_failure() => {
            return Err(ApiError::conflict("already-queued", "the same resend was just queued"));
        }
        Err(e) => return Err(e.into()),
    }
    json(StatusCode::ACCEPTED, &json!({ "queued": queued, "suppressed": suppressed }))
}

/// The inspection's audit trail, newest first, paginated.
pub async fn audit(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let id = inspection_id(id)?;
    app.store.inspection(staff.company_id, id).await?.ok_or(ApiError::NotFound)?;
    let page = app.store.audit_trail(staff.company_id, id, limit, cursor.as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

/// Money that matched no inspection of this company, newest first, for staff review.
pub async fn unmatched(app: &StaffApi, staff: &Staff, req: &Request) -> ApiResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let page = app.store.unmatched_payments(Some(staff.company_id), limit, cursor.as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

/// The platform admin's view of money that named no company at all.
pub async fn unmatched_unknown(app: &StaffApi, req: &Request) -> ApiResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let page = app.store.unmatched_payments(None, limit, cursor.as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}

/// The inspection's emails (sent, waiting, abandoned), newest first.
pub async fn emails(app: &StaffApi, staff: &Staff, req: &Request, id: &str) -> ApiResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let id = inspection_id(id)?;
    app.store.inspection(staff.company_id, id).await?.ok_or(ApiError::NotFound)?;
    let page = app.store.email_history(staff.company_id, id, limit, cursor.as_deref()).await?;
    json(StatusCode::OK, &json!({ "items": page.items, "next_cursor": page.next_cursor }))
}
