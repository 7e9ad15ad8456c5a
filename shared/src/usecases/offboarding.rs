//! A company leaving the platform (docs/privacy.md, "A company leaving"): the export of everything
//! the platform holds for it — a ZIP in S3 of its items as JSON, by kind, and every document's
//! verified PDF — and then the deletion of every item and object version, in bounded, resumable
//! steps of the job, leaving a tombstone. The company's keys and links stop at the request.

use serde_json::Value;
use time::OffsetDateTime;

use crate::adapters::store::offboarding::{mentions, Tombstone};
use crate::adapters::store::{keys, Item, Key, Store, StoreError, Write};
use crate::adapters::zip::Zip;
use crate::domain::company::Company;
use crate::foundation::ids::CompanyId;
use crate::ApiError;

/// How long a ready export confirms a deletion.
pub const EXPORT_CONFIRMS_FOR: time::Duration = time::Duration::days(7);
/// Items scanned per step (a page of the table scan; at most 1 MB is read whatever the limit).
pub const SCAN_PAGE: i32 = 500;
/// Object versions deleted per step.
pub const OBJECT_PAGE: i32 = 500;

/// What confirms a deletion: a recent export of the company, or its exact name.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    #[serde(default)]
    pub export_id: Option<String>,
    #[serde(default)]
    pub confirm: Option<String>,
}

/// The S3 prefixes that hold a company's objects: its documents and exports, and its people's
/// privacy exports.
fn prefixes(c: CompanyId) -> [String; 2] {
    [format!("companies/{c}/"), format!("privacy/{c}/")]
}

/// Deletes the company: at once, the company item goes (every link, portal and staff route of
/// it answers 404 from now: they all read it) and its staff keys are marked (they answer 404
/// too); a tombstone queues the rest for the job. Refused unless confirmed by a ready export of
/// the last [`EXPORT_CONFIRMS_FOR`] or the company's exact name.
pub async fn request_deletion(
    store: &Store,
    company: &Company,
    confirmation: &Confirmation,
    now: OffsetDateTime,
) -> Result<Tombstone, ApiError> {
    let confirmed_by = match (&confirmation.export_id, &confirmation.confirm) {
        (Some(id), _) => {
            let export = store.company_export(company.id, id).await?;
            match export {
                Some(e) if e.state == "ready" && e.ready_at.is_some_and(|at| now - at <= EXPORT_CONFIRMS_FOR) => {
                    format!("export {id}")
                }
                _ => {
                    return Err(ApiError::conflict(
                        "confirmation-required",
                        "that export is not a ready export of the last 7 days: make one, or confirm with the company's name",
                    ))
                }
            }
        }
        (None, Some(name)) if name == &company.name => "name".to_owned(),
        (None, Some(_)) => {
            return Err(ApiError::bad_request("confirm must be the company's name exactly"));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "send {\"export_id\": <a ready export of the last 7 days>} or {\"confirm\": <the company's name>}",
            ))
        }
    };
    let tombstone = Tombstone {
        company_id: company.id,
        state: "deleting".into(),
        requested_at: now,
        deleted_at: None,
        confirmed_by,
        phase: "items".into(),
        cursor: None,
        items_deleted: 0,
        objects_deleted: 0,
        steps: 0,
        revision: 1,
    };
    let staff_keys = store.staff_keys(company.id).await?;
    let mut marks = Vec::new();
    for k in staff_keys {
        let dead = crate::adapters::store::companies::StaffKeyRecord { company_deleted: true, ..k };
        let key = keys::staff_key_by_stored_hash(&dead.key_hash);
        marks.push(Write::Put(crate::adapters::store::Record::new(key, "staff_key", &dead)?));
    }
    let mut first = vec![Write::DeleteExisting(keys::company(company.id)), Write::Create(tombstone.record()?)];
    let rest = marks.split_off(marks.len().min(90));
    first.extend(marks);
    store.transact(first).await.map_err(|e| if e.is_condition_failure() { ApiError::NotFound } else { e.into() })?;
    let mut rest = rest;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(90));
        store.transact(rest).await?;
        rest = tail;
    }
    tracing::info!(company_id = %company.id, "company deletion requested");
    Ok(tombstone)
}

/// What one run of [`run_deletions`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct DeletionReport {
    pub steps: usize,
    pub done: usize,
    pub errors: usize,
}

/// One bounded step of a deletion: a page of the table scan (the company's items in it deleted),
/// or, once the scan is through, a page of its object versions. Returns whether it is done.
async fn deletion_step(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    t: &mut Tombstone,
) -> Result<bool, StoreError> {
    let c = t.company_id.to_string();
    if t.phase == "items" {
        let (items, next) = store.scan_page(t.cursor.as_ref(), SCAN_PAGE).await?;
        let tombstone = keys::tombstone(t.company_id);
        let doomed: Vec<Key> =
            items.iter().filter(|item| mentions(item, &c)).filter_map(key_of).filter(|k| *k != tombstone).collect();
        store.delete_batch(&doomed).await?;
        t.items_deleted += doomed.len();
        t.cursor = next;
        if t.cursor.is_none() {
            t.phase = "objects".into();
        }
        return Ok(false);
    }
    for prefix in prefixes(t.company_id) {
        let n = blobs.delete_versions_page(&prefix, OBJECT_PAGE).await.map_err(|e| StoreError::Sdk(e.to_string()))?;
        if n > 0 {
            t.objects_deleted += n;
            return Ok(false);
        }
    }
    Ok(true)
}

fn key_of(item: &Item) -> Option<Key> {
    Some(Key { pk: item.get(keys::PK)?.as_s().ok()?.clone(), sk: item.get(keys::SK)?.as_s().ok()?.clone() })
}

/// Steps the deletions in progress until `deadline` or `max_steps`, saving the tombstone after
/// every step (conditional on its revision: two runs at once do not both step it).
pub async fn run_deletions(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    now: OffsetDateTime,
    max_steps: usize,
    deadline: Option<std::time::Instant>,
) -> Result<DeletionReport, StoreError> {
    let mut report = DeletionReport::default();
    for mut t in store.deletions(now, 5).await? {
        while report.steps < max_steps && deadline.is_none_or(|d| std::time::Instant::now() < d) {
            report.steps += 1;
            let expected = t.revision;
            let done = match deletion_step(store, blobs, &mut t).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(company_id = %t.company_id, error = %e, "a deletion step failed; the next run goes on");
                    report.errors += 1;
                    break;
                }
            };
            t.steps += 1;
            if done {
                t.state = "deleted".into();
                t.deleted_at = Some(now);
                t.phase = "done".into();
                report.done += 1;
                tracing::info!(company_id = %t.company_id, items = t.items_deleted, objects = t.objects_deleted, "company deleted");
            }
            t.revision += 1;
            store.write(Write::Replace { record: t.record()?, expected_revision: expected }).await?;
            if done {
                break;
            }
        }
    }
    Ok(report)
}

// ---- export ----

/// What one run of [`make_exports`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ExportReport {
    pub made: usize,
    pub failed: usize,
}

/// What an item exports as: its attributes without the table's keys (internal: the kind is the
/// file's name, and the keys of links, keys and sessions are the hashes they are found by),
/// secrets (webhook signing secrets) and stored hashes.
fn exportable(mut v: Value) -> Value {
    const KEYS: [&str; 9] = [
        keys::PK,
        keys::SK,
        keys::GSI1PK,
        keys::GSI1SK,
        keys::GSI2PK,
        keys::GSI2SK,
        keys::DUE_PK,
        keys::DUE_SK,
        "entity",
    ];
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !KEYS.contains(&k.as_str()) && !k.contains("secret") && !k.ends_with("_hash"));
    }
    v
}

/// Makes up to `max` pending company exports, each in one go: the table is scanned a page at a
/// time, the company's items written as JSON Lines by kind (`items/<kind>.jsonl`, split every
/// 4 MB) and every document's verified PDF (`documents/<inspection>/<document>.pdf`) into a ZIP
/// uploaded in 8 MB parts (memory stays bounded); `deadline` bounds it (an export that does not
/// fit fails and says so).
pub async fn make_exports(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    now: OffsetDateTime,
    max: i32,
    deadline: Option<std::time::Instant>,
) -> Result<ExportReport, StoreError> {
    let mut report = ExportReport::default();
    for mut export in store.pending_company_exports(now, max).await? {
        let key = format!("companies/{}/exports/{}/company-export.zip", export.company_id, export.id);
        match make_export(store, blobs, &key, export.company_id, now, deadline).await {
            Ok((items, documents)) => {
                export.state = "ready".into();
                export.ready_at = Some(now);
                (export.zip_key, export.items, export.documents) = (Some(key), items, documents);
                report.made += 1;
            }
            Err(why) => {
                tracing::error!(export = %export.id, company_id = %export.company_id, error = %why, "a company export could not be made");
                export.state = "failed".into();
                export.failure = Some(why);
                report.failed += 1;
            }
        }
        store.write(Write::Put(export.record()?)).await?;
    }
    Ok(report)
}

async fn make_export(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    key: &str,
    c: CompanyId,
    now: OffsetDateTime,
    deadline: Option<std::time::Instant>,
) -> Result<(usize, usize), String> {
    let upload = blobs.start_upload(key, "application/zip").await.map_err(|e| e.to_string())?;
    let mut zip = Zip::new(blobs, key, &upload, now);
    let made = async {
        let (mut items, mut documents) = (0, 0);
        let mut kinds: std::collections::BTreeMap<String, (Vec<u8>, usize)> = Default::default();
        let mut cursor = None;
        let needle = c.to_string();
        let tombstone = keys::tombstone(c);
        loop {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err("the export did not fit in one run of the job".to_owned());
            }
            let (page, next) = store.scan_page(cursor.as_ref(), SCAN_PAGE).await.map_err(|e| e.to_string())?;
            for item in page.iter().filter(|i| mentions(i, &needle)) {
                if key_of(item).as_ref() == Some(&tombstone) {
                    continue;
                }
                let kind = item.get("entity").and_then(|v| v.as_s().ok()).cloned().unwrap_or_else(|| "other".into());
                let value: Value = serde_dynamo::from_item(item.clone()).map_err(|e| e.to_string())?;
                if kind == "inspection" {
                    documents += export_documents(blobs, &mut zip, &value).await?;
                }
                let entry = kinds.entry(kind.clone()).or_default();
                serde_json::to_writer(&mut entry.0, &exportable(value)).map_err(|e| e.to_string())?;
                entry.0.push(b'\n');
                items += 1;
                if entry.0.len() >= 4 << 20 {
                    entry.1 += 1;
                    let name = format!("items/{kind}-{}.jsonl", entry.1);
                    zip.add(&name, std::mem::take(&mut entry.0)).await?;
                }
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        for (kind, (rest, n)) in kinds {
            let name = if n == 0 { format!("items/{kind}.jsonl") } else { format!("items/{kind}-{}.jsonl", n + 1) };
            zip.add(&name, rest).await?;
        }
        zip.add(
            "README.txt",
            format!(
                "Everything the inspection portal held for company {c} on {}.\n\
                 items/<kind>.jsonl: one JSON object per line, per kind of record (inspection: the \
                 whole inspection with its people, services, ledger and documents).\n\
                 documents/<inspection>/<document>.pdf: each document's verified PDF.\n\
                 Secrets (webhook signing secrets) and the hashes of keys and links are left out.\n",
                crate::foundation::clock::rfc3339(now)
            )
            .into_bytes(),
        )
        .await?;
        zip.finish().await?;
        Ok((items, documents))
    }
    .await;
    if made.is_err() {
        let _ = blobs.abort_upload(key, &upload).await;
    }
    made
}

/// The verified PDF of each uploaded document of an inspection, into the ZIP. Returns how many.
async fn export_documents(
    blobs: &crate::adapters::s3::Blobs,
    zip: &mut Zip<'_>,
    inspection: &Value,
) -> Result<usize, String> {
    let (Some(c), Some(i)) = (
        inspection["company_id"].as_str().and_then(|s| s.parse().ok()),
        inspection["id"].as_str().and_then(|s| s.parse().ok()),
    ) else {
        return Ok(0);
    };
    let mut n = 0;
    for d in inspection["documents"].as_array().into_iter().flatten() {
        let (Some(id), Some(version)) = (d["id"].as_str().and_then(|s| s.parse().ok()), d["verified_version"].as_str())
        else {
            continue;
        };
        let object = crate::domain::document::object_key(c, i, id);
        let bytes = blobs.read(&object, Some(version)).await.map_err(|e| e.to_string())?;
        zip.add(&format!("documents/{i}/{id}.pdf"), bytes).await?;
        n += 1;
    }
    Ok(n)
}
