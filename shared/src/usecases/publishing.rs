//! Publishing, wherever it is triggered (staff, upload completion, submit, the schedule): the
//! aggregate change plus, in the same transaction, one outbox email per recipient per published
//! file version (never twice, whatever retries or re-publishes) and the schedule item's removal.
//! The scheduled job, which publishes in bulk, queues the emails right after its transaction
//! instead (see [`publish_due_within`]).

use time::OffsetDateTime;

use crate::adapters::store::outbox::EmailRecord;
use crate::adapters::store::{keys, Record, ShardCursor, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::document::Document;
use crate::domain::gate::sees_documents;
use crate::domain::inspection::{Inspection, Role};
use crate::foundation::ids::DocumentId;
use crate::ApiError;

/// Who hears that a document was published: everyone with a link whose role sees documents
/// (clients and buyer's agents; listing agents and additional people when the company allows).
pub fn recipients(company: &Company, inspection: &Inspection) -> Vec<usize> {
    (0..inspection.people.len())
        .filter(|&n| {
            let role = inspection.people[n].role;
            role != Role::Inspector
                && sees_documents(role, company.settings.report_access)
                && inspection.emailable(n, company)
        })
        .collect()
}

/// The schedule item of a document: present (with the DUE index keys) while it waits for its
/// `publish_at`, deleted otherwise.
pub fn schedule_write(inspection: &Inspection, doc: &Document) -> Result<Write, StoreError> {
    let key = keys::schedule(inspection.company_id, inspection.id, doc.id);
    Ok(match (doc.publish_at, doc.published) {
        (Some(at), false) => {
            let due =
                keys::due_sort(&crate::foundation::clock::rfc3339(at), inspection.company_id, inspection.id, doc.id);
            let marker = serde_json::json!({ "document_id": doc.id });
            Write::Put(Record::new(key, "schedule", &marker)?.with_due(due))
        }
        _ => Write::Delete(key),
    })
}

/// Publishes `doc` on the aggregate; returns whether it changed and the writes that go with it,
/// for the aggregate's own transaction (outbox emails for a version not announced before, the
/// schedule item's removal).
pub fn publish(
    company: &Company,
    inspection: &mut Inspection,
    doc: DocumentId,
    now: OffsetDateTime,
) -> Result<(bool, Vec<Write>), ApiError> {
    let (changed, mut writes, emails) = publication(company, inspection, doc, now)?;
    for email in &emails {
        writes.push(email.create()?);
    }
    Ok((changed, writes))
}

/// [`publish`] with its emails apart (the scheduled job queues them after its transaction).
fn publication(
    company: &Company,
    inspection: &mut Inspection,
    doc: DocumentId,
    now: OffsetDateTime,
) -> Result<(bool, Vec<Write>, Vec<EmailRecord>), ApiError> {
    let was_scheduled = inspection.document(doc).is_some_and(|d| d.publish_at.is_some());
    if !inspection.publish_document(doc, now)? {
        return Ok((false, Vec::new(), Vec::new()));
    }
    let mut writes = Vec::new();
    if was_scheduled {
        writes.push(Write::Delete(keys::schedule(inspection.company_id, inspection.id, doc)));
    }
    if let (Some(b), true) = (inspection.building_id, company.settings.customer_portal_enabled) {
        let d = inspection.document(doc).ok_or(ApiError::NotFound)?;
        writes.push(crate::adapters::store::customers::BuildingDocument::put(
            inspection.company_id,
            b,
            inspection.id,
            d,
        )?);
    }
    let d = inspection.document_mut(doc).ok_or(ApiError::NotFound)?;
    if d.notified_versions.contains(&d.file_version) {
        return Ok((true, writes, Vec::new()));
    }
    d.notified_versions.push(d.file_version);
    Ok((true, writes, announcement(company, inspection, doc, now)))
}

/// The emails announcing `doc`'s current file version, one per recipient: their keys make each
/// once per version and person, whoever writes it.
fn announcement(company: &Company, inspection: &Inspection, doc: DocumentId, now: OffsetDateTime) -> Vec<EmailRecord> {
    let Some(d) = inspection.document(doc) else {
        return Vec::new();
    };
    let template = crate::domain::templates::published_template_key(d.kind);
    recipients(company, inspection)
        .into_iter()
        .map(|n| {
            let person = inspection.people[n].id;
            let dedupe = format!("published#{doc}#v{}#{person}", d.file_version);
            EmailRecord::new(inspection.company_id, inspection.id, person, template, Some(doc), dedupe, now)
        })
        .collect()
}

/// Unpublishes `doc`: hidden from the client portal and from its building's customer portal.
pub fn unpublish(
    inspection: &mut Inspection,
    doc: DocumentId,
    now: OffsetDateTime,
) -> Result<(bool, Vec<Write>), ApiError> {
    if !inspection.unpublish_document(doc, now)? {
        return Ok((false, Vec::new()));
    }
    let writes = inspection
        .building_id
        .map(|b| Write::Delete(keys::building_document(inspection.company_id, b, doc)))
        .into_iter()
        .collect();
    Ok((true, writes))
}

/// After a publish or unpublish of `doc` is saved: its deficiencies follow it into or out of the
/// customer feeds (idempotent; a failure is logged and healed by the next change). Only reports of
/// a building's inspections can have deficiencies, so nothing else costs a query.
pub async fn sync_deficiencies(store: &Store, inspection: &Inspection, doc: DocumentId) {
    let Some(d) = inspection.document(doc).filter(|d| d.kind.is_report() && inspection.building_id.is_some()) else {
        return;
    };
    if let Err(e) = store.sync_report_deficiencies(inspection.company_id, doc, d.published).await {
        tracing::error!(document_id = %doc, error = %e, "deficiency visibility not synced");
    }
}

/// What the scheduled job did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DueReport {
    /// Schedule keys the index returned (only due ones: its cost).
    pub due: usize,
    pub published: usize,
    /// Documents that could not be published and will be tried again later.
    pub failed: usize,
    /// Documents that failed [`MAX_SCHEDULE_ATTEMPTS`] times and left the due index.
    pub parked: usize,
    /// Documents the job could not read or write (a dependency failing): still due.
    pub errors: usize,
    /// Documents published by a run that stopped before it queued their emails (or before it
    /// took their schedule items off): their emails created now where missing.
    pub rechecked: usize,
    /// The run reached its deadline (or its maximum) with documents left: the next run continues.
    pub stopped_early: bool,
}

impl DueReport {
    /// Whether the run must report failure (after doing what it could).
    pub fn is_failure(&self) -> bool {
        self.failed + self.parked + self.errors > 0
    }
}

/// How often the schedule tries a document that cannot be published before parking it.
pub const MAX_SCHEDULE_ATTEMPTS: u32 = 3;

/// Inspections published at once by the scheduled job (each inspection's documents one after
/// another: they share the aggregate).
pub const DUE_CONCURRENCY: usize = 32;

/// Schedule keys read per page of the `DUE` index.
const DUE_PAGE: i32 = 1000;

/// When a failed scheduled document is tried again: 2, 4, 8… minutes later (out of the way of the
/// documents due now).
fn schedule_retry_delay(attempts: u32) -> time::Duration {
    time::Duration::minutes(1 << attempts.min(6))
}

/// [`publish_due_within`] with no deadline.
pub async fn publish_due(store: &Store, now: OffsetDateTime, max: usize) -> Result<DueReport, StoreError> {
    publish_due_within(store, now, max, None).await
}

/// Publishes up to `max` documents whose `publish_at` has come. Reads only the sparse `DUE` index
/// (so its cost follows the number of due documents, not the table), a page at a time; then per
/// inspection one read and one transaction for as many of its due documents as fit (publishing
/// them), then their emails queued and their schedule items deleted, 25 a `BatchWriteItem`, up to
/// [`DUE_CONCURRENCY`] inspections at once. Two runs at once publish nothing twice: the loser's
/// transaction fails on the aggregate's revision, and on re-reading it finds the document
/// published. At `deadline` it stops taking documents (`stopped_early`): what is left stays due
/// and the next run continues.
///
/// The emails are not in the transaction (a transaction writes an item several times slower than
/// a batch; docs/data-model.md, "Scheduled publishing"), yet each is queued once: the transaction
/// records the announced version on the document (no later publish announces it again), the
/// emails' batch is written by this run alone and never sent twice (no SDK retry after a lost
/// answer), and the schedule item, deleted only after the emails, says a run may have stopped in
/// between. A later run that finds a published document's schedule item waits until
/// [`EMAIL_RECHECK_AFTER`] has passed since the publication (the run that published it is then
/// certainly stopped: Lambda ends every invocation within 15 minutes), then creates the emails
/// that are missing, each on the condition that it does not exist, and deletes the item.
///
/// A document that cannot be published (its PDF never arrived, say) is tried again later with a
/// growing delay and, after [`MAX_SCHEDULE_ATTEMPTS`], parked: it leaves the due index and staff see
/// why on the document (`schedule_problem`). One document failing never stops the others; a read
/// or write that fails is counted in `errors` and the job goes on.
pub async fn publish_due_within(
    store: &Store,
    now: OffsetDateTime,
    max: usize,
    deadline: Option<std::time::Instant>,
) -> Result<DueReport, StoreError> {
    use futures::stream::{self, StreamExt};
    let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
    let out_of_time = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
    let mut report = DueReport::default();
    let mut cursor = ShardCursor::new(&keys::DUE);
    loop {
        let want = i32::try_from(max - report.due).unwrap_or(i32::MAX).min(DUE_PAGE);
        let items = store.due_keys(&mut cursor, &upto, want).await?;
        report.due += items.len();
        // Each inspection's due documents, in the index's order.
        let mut groups: Vec<(
            (crate::foundation::ids::CompanyId, crate::foundation::ids::InspectionId),
            Vec<DocumentId>,
        )> = Vec::new();
        for item in &items {
            let Some((c, i, d)) = item.get(keys::DUE_SK).and_then(|v| v.as_s().ok()).and_then(|sk| parse_due(sk))
            else {
                continue;
            };
            match groups.iter_mut().find(|(k, _)| *k == (c, i)) {
                Some((_, docs)) => docs.push(d),
                None => groups.push(((c, i), vec![d])),
            }
        }
        let outcomes: Vec<Vec<Option<Result<Scheduled, StoreError>>>> = stream::iter(groups)
            .map(|((c, i), docs)| Box::pin(publish_inspection_due(store, c, i, docs, now, &out_of_time)))
            .buffer_unordered(DUE_CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                None => report.stopped_early = true,
                Some(Ok(Scheduled::Published)) => report.published += 1,
                Some(Ok(Scheduled::Failed)) => report.failed += 1,
                Some(Ok(Scheduled::Parked)) => report.parked += 1,
                Some(Ok(Scheduled::Rechecked)) => report.rechecked += 1,
                Some(Ok(Scheduled::Nothing)) => {}
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a scheduled document could not be processed");
                    report.errors += 1;
                }
            }
        }
        if !cursor.more() || report.stopped_early {
            break;
        }
        if report.due >= max || out_of_time() {
            report.stopped_early = true;
            break;
        }
    }
    crate::foundation::metrics::count(crate::foundation::metrics::Metric::DocumentsPublished, report.published as u64);
    crate::foundation::metrics::count(crate::foundation::metrics::Metric::DocumentsParked, report.parked as u64);
    Ok(report)
}

/// `<publish_at>#<c>#<i>#<d>` → its ids.
fn parse_due(
    sk: &str,
) -> Option<(crate::foundation::ids::CompanyId, crate::foundation::ids::InspectionId, DocumentId)> {
    let parts: Vec<&str> = sk.rsplitn(4, '#').collect();
    Some((parts.get(2)?.parse().ok()?, parts.get(1)?.parse().ok()?, parts.first()?.parse().ok()?))
}

enum Scheduled {
    Published,
    Failed,
    Parked,
    Rechecked,
    Nothing,
}

/// How long after a scheduled publication a run may create its missing emails: Lambda's longest
/// timeout (15 minutes, whatever the template says) and a minute, so the run that published the
/// document, the only writer of its emails until then, has certainly stopped.
pub const EMAIL_RECHECK_AFTER: time::Duration = time::Duration::minutes(16);

/// What one due document comes to: its outcome, the writes for the aggregate's transaction, and
/// its emails (for `Published`, queued after the transaction; for `Rechecked`, created where
/// missing).
struct Step {
    outcome: Scheduled,
    writes: Vec<Write>,
    emails: Vec<EmailRecord>,
}

impl Step {
    fn new(outcome: Scheduled, writes: Vec<Write>) -> Self {
        Step { outcome, writes, emails: Vec::new() }
    }
}

/// What a due document becomes on the in-memory aggregate, and the writes that go with it.
fn schedule_one(
    company: &Company,
    inspection: &mut Inspection,
    d: DocumentId,
    now: OffsetDateTime,
) -> Result<Step, StoreError> {
    let (c, i) = (inspection.company_id, inspection.id);
    let Some(doc) = inspection.document(d) else {
        return Ok(Step::new(Scheduled::Nothing, vec![Write::Delete(keys::schedule(c, i, d))]));
    };
    if doc.published {
        // Published with its schedule item still there: by a run that may have stopped before it
        // queued the emails. Until that run is certainly over, the item is left to it.
        if doc.published_at.is_some_and(|at| now < at + EMAIL_RECHECK_AFTER) {
            return Ok(Step::new(Scheduled::Nothing, Vec::new()));
        }
        let emails = if doc.notified_versions.contains(&doc.file_version) {
            announcement(company, inspection, d, now)
        } else {
            Vec::new()
        };
        return Ok(Step {
            outcome: Scheduled::Rechecked,
            writes: vec![Write::Delete(keys::schedule(c, i, d))],
            emails,
        });
    }
    if doc.publish_at.is_none_or(|at| at > now) {
        // Recalled or moved meanwhile: the schedule item is stale.
        return Ok(Step::new(Scheduled::Nothing, vec![schedule_write(inspection, doc)?]));
    }
    match publication(company, inspection, d, now) {
        Ok((true, writes, emails)) => Ok(Step { outcome: Scheduled::Published, writes, emails }),
        Ok((false, _, _)) => Ok(Step::new(Scheduled::Nothing, Vec::new())),
        Err(e) => {
            let doc = inspection.document_mut(d).expect("found above");
            let attempts = doc.schedule_problem.as_ref().map_or(0, |p| p.attempts) + 1;
            let parked = attempts >= MAX_SCHEDULE_ATTEMPTS;
            tracing::warn!(document_id = %d, attempts, parked, error = %e, "a scheduled document could not be published");
            doc.schedule_problem = Some(crate::domain::document::ScheduleProblem {
                reason: e.problem().detail,
                attempts,
                parked,
                last_attempt_at: now,
            });
            let key = keys::schedule(c, i, d);
            let title = doc.title.clone();
            let write = if parked {
                let what = format!("{title} ({}): {}", inspection.address, e.problem().detail);
                if let Some(alert) =
                    crate::adapters::store::alerts::Alert::write(company, "document_parked", &what, now)?
                {
                    return Ok(Step::new(Scheduled::Parked, vec![Write::Delete(key), alert]));
                }
                Write::Delete(key)
            } else {
                let retry_at = crate::foundation::clock::rfc3339(now + schedule_retry_delay(attempts));
                let marker = serde_json::json!({ "document_id": d });
                Write::Put(Record::new(key, "schedule", &marker)?.with_due(keys::due_sort(&retry_at, c, i, d)))
            };
            Ok(Step::new(if parked { Scheduled::Parked } else { Scheduled::Failed }, vec![write]))
        }
    }
}

/// Items one transaction may hold (DynamoDB's limit), less the aggregate itself.
const MAX_TRANSACTION_WRITES: usize = 99;

/// One inspection's due documents: one read of the aggregate, then as many documents per
/// transaction as fit (a document's writes: its schedule item, its building copy), then their
/// emails queued and their schedule items deleted, in batches. A transaction that loses to
/// another writer is re-read and retried a few times. One result per document, in order; `None`
/// for those left because the run is out of time.
async fn publish_inspection_due(
    store: &Store,
    c: crate::foundation::ids::CompanyId,
    i: crate::foundation::ids::InspectionId,
    docs: Vec<DocumentId>,
    now: OffsetDateTime,
    out_of_time: &(dyn Fn() -> bool + Sync),
) -> Vec<Option<Result<Scheduled, StoreError>>> {
    let mut results = Vec::with_capacity(docs.len());
    let mut remaining: std::collections::VecDeque<DocumentId> = docs.into();
    let mut current = None;
    let mut conflicts = 0;
    while !remaining.is_empty() {
        if out_of_time() {
            results.extend(remaining.drain(..).map(|_| None));
            break;
        }
        let (company, mut inspection) = match current.take() {
            Some(read) => read,
            None => match store.company_and_inspection(c, i).await {
                Ok(Some(read)) => read,
                Ok(None) => {
                    results.extend(remaining.drain(..).map(|_| Some(Ok(Scheduled::Nothing))));
                    break;
                }
                Err(e) => {
                    let why = e.to_string();
                    results.extend(remaining.drain(..).map(|_| Some(Err(StoreError::Sdk(why.clone())))));
                    break;
                }
            },
        };
        let (mut writes, mut taken_off, mut queued, mut rechecked) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut chunk = Vec::new();
        // What the save itself adds: the "all my inspections" entries (one per address, and
        // deletes of those no longer listed) and its webhook events (one item).
        let fixed = inspection.people.len()
            + inspection.me_listed.len()
            + crate::adapters::store::privacy::privacy_index_pending(&inspection)
            + 1;
        while let Some(&d) = remaining.front() {
            // At most: a new schedule item and the building copy.
            if !chunk.is_empty() && fixed + writes.len() + 2 > MAX_TRANSACTION_WRITES {
                break;
            }
            remaining.pop_front();
            match schedule_one(&company, &mut inspection, d, now) {
                Ok(step) => {
                    let schedule = keys::schedule(c, i, d);
                    for write in step.writes {
                        match write {
                            // Taken off after the save and the emails, 25 a batch: a schedule
                            // item a failure leaves behind is found by a later run (see
                            // `schedule_one`).
                            Write::Delete(k) if k == schedule => taken_off.push(k),
                            other => writes.push(other),
                        }
                    }
                    match step.outcome {
                        Scheduled::Published => queued.extend(step.emails),
                        _ => rechecked.extend(step.emails),
                    }
                    chunk.push((d, step.outcome));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if chunk.is_empty() {
            continue;
        }
        // Nothing to save when every document only needed its emails checked or its stale item
        // taken off.
        let changed = !writes.is_empty()
            || chunk.iter().any(|(_, o)| matches!(o, Scheduled::Published | Scheduled::Failed | Scheduled::Parked));
        let saved = if changed { store.save_inspection_with(&mut inspection, &company, writes).await } else { Ok(()) };
        match saved {
            Ok(()) => {
                match queue_and_recheck(store, &queued, &rechecked).await {
                    Ok(()) => {
                        if let Err(e) = store.delete_batch(&taken_off).await {
                            tracing::warn!(error = %e, "published documents' schedule items stay until a later run");
                        }
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "published documents' emails not all queued: a run after EMAIL_RECHECK_AFTER queues those missing"
                    ),
                }
                for (d, outcome) in chunk {
                    if matches!(outcome, Scheduled::Published) {
                        sync_deficiencies(store, &inspection, d).await;
                    }
                    results.push(Some(Ok(outcome)));
                }
                current = Some((company, inspection));
                conflicts = 0;
            }
            Err(e) if e.is_condition_failure() && conflicts < 5 => {
                // Someone else saved the inspection (another run, staff): read it again.
                conflicts += 1;
                for (d, _) in chunk.into_iter().rev() {
                    remaining.push_front(d);
                }
            }
            Err(e) => {
                let why = e.to_string();
                results.extend(chunk.into_iter().map(|_| Some(Err(StoreError::Sdk(why.clone())))));
            }
        }
    }
    results
}

/// After the save: the emails of the documents just published, queued in batches (this run is
/// their only writer), and those of documents a stopped run published, each created unless it
/// exists (queued or sent by then).
async fn queue_and_recheck(store: &Store, queued: &[EmailRecord], rechecked: &[EmailRecord]) -> Result<(), StoreError> {
    store.queue_new_emails(queued).await?;
    for email in rechecked {
        match store.write(email.create()?).await {
            Err(e) if !e.is_condition_failure() => return Err(e),
            Ok(()) | Err(_) => {}
        }
    }
    Ok(())
}

/// Upload completion, from the staff API, the bucket's object-created event or a publish that
/// finds the PDF not yet completed: verifies the object version now at the key, and, only if it is
/// a version not verified before, records it (the one served from now on), bumps the file version,
/// and publishes it when it auto-publishes (or was already published: the new version replaces
/// the old one for everyone). The same version again changes nothing and sends nothing; a version
/// that fails the check changes nothing either (the verified one keeps being served).
#[cfg(feature = "s3")]
pub async fn complete_upload(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    company: crate::foundation::ids::CompanyId,
    doc: DocumentId,
) -> Result<Inspection, ApiError> {
    let pointer = store.document_pointer(company, doc).await?.ok_or(ApiError::NotFound)?;
    let key = crate::domain::document::object_key(company, pointer.inspection_id, doc);
    let Some(info) = crate::usecases::uploads::current(blobs, &key).await? else {
        return Err(ApiError::conflict(
            "upload-rejected",
            crate::usecases::uploads::UploadProblem::Missing.to_string(),
        ));
    };
    let version = info.version_id.clone();
    if let Err(problem) = crate::usecases::uploads::verify_upload(blobs, &key, info).await? {
        return Err(ApiError::conflict("upload-rejected", problem.to_string()));
    }
    let (inspection, changed) = store
        .modify_inspection(company, pointer.inspection_id, |owner, i| {
            let now = store.clock().now();
            let d = i.document_mut(doc).ok_or(ApiError::NotFound)?;
            if d.uploaded && version.is_some() && d.verified_version == version {
                return Ok((false, Vec::new()));
            }
            d.uploaded = true;
            d.verified_version = version.clone();
            d.file_version += 1;
            let auto = d.auto_publish && !d.published && d.publish_at.is_none();
            let republish = d.published;
            i.updated_at = now;
            let mut writes = if auto { publish(owner, i, doc, now)?.1 } else { Vec::new() };
            // Already published: its building's contacts are served the new version too.
            if let (true, Some(b), true) = (republish, i.building_id, owner.settings.customer_portal_enabled) {
                let d = i.document(doc).ok_or(ApiError::NotFound)?;
                writes.push(crate::adapters::store::customers::BuildingDocument::put(i.company_id, b, i.id, d)?);
            }
            Ok((true, writes))
        })
        .await?;
    if changed && inspection.document(doc).is_some_and(|d| d.published) {
        sync_deficiencies(store, &inspection, doc).await;
    }
    Ok(inspection)
}

/// The photo bytes one generated report embeds at most.
#[cfg(feature = "s3")]
const MAX_PHOTO_BYTES: usize = 24 * 1024 * 1024;

/// Renders a generated report from the inspection's stored data and stores its PDF (and the JSON
/// payload beside it) where the portal serves the document from; returns the PDF's S3 version,
/// which the caller records as verified (so the object-created event of this very write is a
/// repeat, not a new upload).
#[cfg(feature = "s3")]
pub async fn render_and_store(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    company: &Company,
    inspection: &Inspection,
    doc: &Document,
) -> Result<Option<String>, ApiError> {
    use futures::StreamExt;
    let findings = store.report_deficiencies(company.id, doc.id, 2000).await?;
    let payload = crate::adapters::pdf::payload(company, inspection, doc, &findings);
    // The photos stored with the inspection, read a few at a time, at most MAX_PHOTO_BYTES in
    // all (a 128 MB function renders the report): past that, or unreadable, they are listed.
    let keys = crate::adapters::pdf::stored_photo_keys(&payload, &inspection.photo_prefix());
    let read: Vec<(String, Option<Vec<u8>>)> = futures::stream::iter(keys)
        .map(|key| async move {
            let bytes =
                blobs.read(&key, None).await.inspect_err(|e| tracing::warn!(error = %e, "a photo could not be read"));
            (key, bytes.ok())
        })
        .buffered(4)
        .collect()
        .await;
    // Rendering is CPU work on plain data: off the request's task, on a thread of its own.
    let (payload, pdf) = tokio::task::spawn_blocking(move || {
        let mut photos = std::collections::HashMap::new();
        let mut total = 0;
        for (key, bytes) in read {
            let Some(bytes) = bytes.filter(|b| total + b.len() <= MAX_PHOTO_BYTES) else { continue };
            total += bytes.len();
            match crate::adapters::pdf::Photo::decode(bytes) {
                Ok(photo) => {
                    photos.insert(key, photo);
                }
                Err(why) => tracing::warn!(why, "a photo could not be embedded"),
            }
        }
        let pdf = crate::adapters::pdf::pdf(&payload, &photos);
        (payload.to_string(), pdf)
    })
    .await
    .map_err(ApiError::internal)?;
    let key = crate::domain::document::object_key(inspection.company_id, inspection.id, doc.id);
    let json_key = format!("{}.json", key.trim_end_matches(".pdf"));
    blobs.put(&json_key, payload.into_bytes(), "application/json").await.map_err(ApiError::internal)?;
    blobs.put(&key, pdf, "application/pdf").await.map_err(ApiError::internal)
}
