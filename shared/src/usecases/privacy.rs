//! A person's data, by address: the copy staff give someone who asks (GDPR Art. 15/20, CCPA,
//! PIPEDA). Everything is found through indexes — the privacy index of the inspections and people
//! the address appeared as, each inspection's partition, the `/me` session and sign-in indexes,
//! the company's contacts by address — never by scanning the table.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::adapters::store::privacy::PrivacyEntry;
use crate::adapters::store::{keys, Store, StoreError};
use crate::domain::company::Company;
use crate::foundation::email::Email;
use crate::foundation::ids::{InspectionId, PersonId};

/// Index and bookkeeping attributes: not personal data, not in the copy.
const INTERNAL: [&str; 10] =
    ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "DuePK", "DueSK", "entity", "revision"];

fn plain(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        for k in INTERNAL {
            map.remove(k);
        }
    }
    v
}

/// Everything the company holds about `email`, as one JSON document.
pub async fn export(store: &Store, company: &Company, email: &Email, now: OffsetDateTime) -> Result<Value, StoreError> {
    let c = company.id;
    let part = keys::email_part(email);
    let entries = store.privacy_entries(c, email).await?;
    let mut by_inspection: BTreeMap<InspectionId, Vec<PrivacyEntry>> = BTreeMap::new();
    for e in entries {
        by_inspection.entry(e.inspection_id).or_default().push(e);
    }
    let mut inspections = Vec::new();
    for (i, entries) in by_inspection {
        let persons: BTreeSet<PersonId> = entries.iter().map(|e| e.person_id).collect();
        let Some(inspection) = store.inspection(c, i).await? else { continue };
        let people: Vec<Value> = inspection
            .people
            .iter()
            .filter(|p| persons.contains(&p.id))
            .map(|p| {
                json!({ "person_id": p.id, "role": p.role, "name": p.name, "email": p.email, "phone": p.phone,
                             "links_live": p.tokens.len(), "removed": p.revoked })
            })
            .collect();
        let client = entries.iter().any(|e| e.role == crate::domain::inspection::Role::Client);
        let signatures: Vec<&crate::domain::inspection::Signature> =
            inspection.agreement.signatures.iter().filter(|s| persons.contains(&s.person_id)).collect();
        let quotes: Vec<&crate::domain::inspection::QuoteRequest> =
            inspection.quotes.iter().filter(|q| persons.contains(&q.person_id)).collect();
        // The inspection's partition: emails to them (or asked for with their address) and the
        // audit of their openings.
        let pk = keys::inspection(c, i).pk;
        let mut emails = Vec::new();
        let mut openings = Vec::new();
        for (prefix, out) in [(keys::EMAIL_PREFIX, &mut emails), (keys::AUDIT_PREFIX, &mut openings)] {
            let mut cursor = None;
            loop {
                let page = store.query_prefix::<Value>(&pk, prefix, 200, cursor.as_deref(), false).await?;
                for item in page.items {
                    let v = plain(item);
                    let about =
                        v["person_id"].as_str().and_then(|p| p.parse().ok()).is_some_and(|p| persons.contains(&p))
                            || v["actor"]["person_id"]
                                .as_str()
                                .and_then(|p| p.parse().ok())
                                .is_some_and(|p| persons.contains(&p))
                            || v["request_email"].as_str() == Some(email.as_str())
                            || v["send_to"].as_str() == Some(email.as_str());
                    if about {
                        out.push(v);
                    }
                }
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        let documents: Vec<Value> = inspection
            .documents
            .iter()
            .filter(|d| d.published)
            .map(|d| json!({ "document_id": d.id, "kind": d.kind, "title": d.display_name() }))
            .collect();
        inspections.push(json!({
            "inspection_id": i,
            "address": inspection.address,
            "scheduled_at": crate::foundation::clock::rfc3339(inspection.scheduled_at),
            "as": people,
            "services": inspection.services,
            "amounts": if client { json!({ "currency": inspection.currency, "invoice_total_cents": inspection.invoice_total(),
                "paid_cents": inspection.paid(), "balance_cents": inspection.balance() }) } else { Value::Null },
            "payments_and_refunds": if client { serde_json::to_value(&inspection.ledger).unwrap_or(Value::Null) } else { Value::Null },
            "agreement_signatures": signatures,
            "quote_consents": quotes,
            "documents_shared": documents,
            "emails": emails,
            "openings": openings,
        }));
    }
    // The sessions' and sign-in codes' hashes are credentials' digests: not theirs to have.
    let sessions = listed(store, &keys::me_sessions_of(c, &part), "session_hash").await?;
    let sign_ins = listed(store, &keys::me_sign_ins_of(c, &part), "code_hash").await?;
    let contacts: Vec<Value> = store.contacts_by_email(c, email).await?.into_iter().map(plain).collect();
    let suppression = store.suppression(c, email.as_str()).await?;
    Ok(json!({
        "address": email,
        "company": { "id": c, "name": company.name },
        "generated_at": crate::foundation::clock::rfc3339(now),
        "inspections": inspections,
        "me_sessions": sessions,
        "me_sign_in_codes": sign_ins,
        "contact_portal_memberships": contacts,
        "email_suppression": suppression,
    }))
}

/// The items a GSI1 partition lists (first 100), as plain JSON without `secret`.
async fn listed(store: &Store, pk: &str, secret: &str) -> Result<Vec<Value>, StoreError> {
    let items = store.query_gsi1::<Value>(pk, 100, None, false).await?.items;
    Ok(items
        .into_iter()
        .map(plain)
        .map(|mut v| {
            v.as_object_mut().map(|m| m.remove(secret));
            v
        })
        .collect())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A readable summary of [`export`]'s document: its sections as headings, each value as text.
pub fn summary_html(doc: &Value) -> String {
    fn render(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push_str("<dl>");
                for (k, v) in m {
                    out.push_str(&format!("<dt>{}</dt><dd>", escape(&k.replace('_', " "))));
                    render(v, out);
                    out.push_str("</dd>");
                }
                out.push_str("</dl>");
            }
            Value::Array(a) if a.is_empty() => out.push_str("none"),
            Value::Array(a) => {
                out.push_str("<ol>");
                for v in a {
                    out.push_str("<li>");
                    render(v, out);
                    out.push_str("</li>");
                }
                out.push_str("</ol>");
            }
            Value::Null => out.push('—'),
            Value::String(s) => out.push_str(&escape(s)),
            other => out.push_str(&escape(&other.to_string())),
        }
    }
    let mut body = String::new();
    render(doc, &mut body);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Personal data held about {}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         dt{{font-weight:600;margin-top:.5rem}}dd{{margin-left:1rem}}</style></head><body>\
         <h1>Personal data held about {}</h1><p>By {}, made {}. The JSON file beside this page has the same content.</p>{body}</body></html>",
        escape(doc["address"].as_str().unwrap_or_default()),
        escape(doc["address"].as_str().unwrap_or_default()),
        escape(doc["company"]["name"].as_str().unwrap_or_default()),
        escape(doc["generated_at"].as_str().unwrap_or_default()),
    )
}

/// A staff action about a person's data, kept in the company's privacy log (without the address
/// itself: its key part).
pub fn audit_write(
    c: crate::foundation::ids::CompanyId,
    action: &str,
    staff: &str,
    subject: &str,
    request_id: &str,
    at: OffsetDateTime,
) -> Result<crate::adapters::store::Write, StoreError> {
    let id = ulid::Ulid::new().to_string();
    let record = crate::adapters::store::Record::new(
        keys::privacy_audit(c, &format!("{}#{id}", crate::foundation::clock::rfc3339(at))),
        "privacy_audit",
        &json!({ "action": action, "staff": staff, "subject": subject, "request_id": request_id,
                 "at": crate::foundation::clock::rfc3339(at) }),
    )?;
    Ok(crate::adapters::store::Write::Create(record))
}

/// What one run of [`make_exports`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ExportReport {
    pub made: usize,
    pub failed: usize,
}

/// Makes up to `max` pending exports: the JSON document and its HTML summary in S3
/// (`privacy/<company>/<export>/`), then the request marked ready (its address dropped: it is in
/// the files). A failure is recorded on the request (`failed`) and logged without the address.
#[cfg(feature = "s3")]
pub async fn make_exports(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    now: OffsetDateTime,
    max: i32,
) -> Result<ExportReport, StoreError> {
    let mut report = ExportReport::default();
    for mut request in store.pending_exports(now, max).await? {
        let made = async {
            let company =
                store.company(request.company_id).await?.ok_or_else(|| StoreError::Sdk("no company".into()))?;
            let Some(email) = request.email.clone() else { return Err(StoreError::Sdk("no address".into())) };
            let doc = export(store, &company, &email, now).await?;
            let base = format!("privacy/{}/{}", request.company_id, request.id);
            let (json_key, html_key) = (format!("{base}/export.json"), format!("{base}/summary.html"));
            let body = serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::Sdk(e.to_string()))?;
            blobs.put(&json_key, body, "application/json").await.map_err(|e| StoreError::Sdk(e.to_string()))?;
            blobs
                .put(&html_key, summary_html(&doc).into_bytes(), "text/html; charset=utf-8")
                .await
                .map_err(|e| StoreError::Sdk(e.to_string()))?;
            Ok::<_, StoreError>((json_key, html_key))
        }
        .await;
        match made {
            Ok((json_key, html_key)) => {
                (request.json_key, request.html_key) = (Some(json_key), Some(html_key));
                request.state = "ready".into();
                request.ready_at = Some(now);
                report.made += 1;
            }
            Err(e) => {
                tracing::error!(export = %request.id, error = %e, "a privacy export could not be made");
                request.state = "failed".into();
                request.failure = Some("the export could not be made; ask again".into());
                report.failed += 1;
            }
        }
        request.email = None;
        store.write(crate::adapters::store::Write::Put(request.record()?)).await?;
    }
    Ok(report)
}

// ---- erasure ----

/// The stable pseudonym of `email` in company `c` (`erased-<12 hex>`): what replaces the name, and
/// (as `<pseudonym>@erased.invalid`) the address, in everything kept.
pub fn pseudonym(c: crate::foundation::ids::CompanyId, email: &Email) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("erased:{c}:{}", email.as_str().to_ascii_lowercase()).as_bytes());
    format!("erased-{}", &hex::encode(digest)[..12])
}

fn pseudonymous_address(pseudonym: &str) -> Email {
    Email::parse(&format!("{pseudonym}@erased.invalid")).expect("a valid address")
}

/// Replaces, in every string of `v`, each needle (case-insensitively) by its replacement; whether
/// anything changed.
fn scrub(v: &mut Value, needles: &[(String, String)]) -> bool {
    match v {
        Value::String(s) => {
            let mut changed = false;
            for (needle, with) in needles {
                if needle.is_empty() {
                    continue;
                }
                let lower = s.to_lowercase();
                let n = needle.to_lowercase();
                if lower.contains(&n) && lower.len() == s.len() {
                    // Byte positions agree (the lowercase has the same length): replace in place.
                    let mut out = String::with_capacity(s.len());
                    let mut rest = s.as_str();
                    let mut rest_lower = lower.as_str();
                    while let Some(at) = rest_lower.find(&n) {
                        out.push_str(&rest[..at]);
                        out.push_str(with);
                        rest = &rest[at + n.len()..];
                        rest_lower = &rest_lower[at + n.len()..];
                    }
                    out.push_str(rest);
                    *s = out;
                    changed = true;
                } else if s.contains(needle.as_str()) {
                    *s = s.replace(needle.as_str(), with);
                    changed = true;
                }
            }
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, v| scrub(v, needles) | c),
        Value::Object(m) => m.values_mut().fold(false, |c, v| scrub(v, needles) | c),
        _ => false,
    }
}

/// The replacements of an erasure: the address by the pseudonymous address, every other recorded
/// value (names, phones, IPs, user agents) by the pseudonym.
fn replacements(e: &crate::adapters::store::privacy::PrivacyErasure, email: &Email) -> Vec<(String, String)> {
    let mut out = vec![(email.as_str().to_owned(), pseudonymous_address(&e.pseudonym).as_str().to_owned())];
    // Longest first: a name's parts never break a longer value.
    let mut needles: Vec<&String> = e.needles.iter().filter(|n| n.chars().count() >= 3).collect();
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    out.extend(needles.into_iter().map(|n| (n.clone(), e.pseudonym.clone())));
    out
}

/// Writes a scrubbed item back, on the condition that it did not change since it was read (its
/// `revision`, when it has one).
async fn put_back(store: &Store, item: Value) -> Result<(), StoreError> {
    use crate::adapters::store::{Record, Write};
    let (Some(pk), Some(sk)) = (item["PK"].as_str(), item["SK"].as_str()) else { return Ok(()) };
    let key = keys::of_item(pk, sk);
    let entity = item["entity"].as_str().unwrap_or("item").to_owned();
    let revision = item["revision"].as_u64();
    let record = Record::new(key, &entity, &item)?;
    let write = match revision {
        Some(r) => Write::Replace { record, expected_revision: r },
        None => Write::Put(record),
    };
    match store.write(write).await {
        // Changed meanwhile: the next step reads it again.
        Err(e) if e.is_condition_failure() => {
            Err(StoreError::Sdk("changed while erasing; the next run goes on".into()))
        }
        other => other,
    }
}

/// Rewrites every item of partition `pk` (but the one at sort key `skip`) that holds one of the
/// values `replace` names, counting them by kind on `e`.
async fn scrub_partition(
    store: &Store,
    e: &mut crate::adapters::store::privacy::PrivacyErasure,
    pk: &str,
    replace: &[(String, String)],
    skip: Option<&str>,
) -> Result<(), StoreError> {
    let mut cursor = None;
    loop {
        let page = store.query_prefix::<Value>(pk, "", 200, cursor.as_deref(), false).await?;
        for mut item in page.items {
            if skip.is_some_and(|sk| item["SK"] == sk) || !scrub(&mut item, replace) {
                continue;
            }
            let kind = item["entity"].as_str().unwrap_or("item").to_owned();
            put_back(store, item).await?;
            count(e, &kind, 1);
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            return Ok(());
        }
    }
}

fn count(e: &mut crate::adapters::store::privacy::PrivacyErasure, kind: &str, n: usize) {
    if n > 0 {
        *e.changed.entry(kind.to_owned()).or_default() += n;
    }
}

/// Phases of an erasure, in order.
const GATHER: u8 = 0;
const INSPECTIONS: u8 = 1;
const SESSIONS: u8 = 2;
const CONTACTS: u8 = 3;
const WEBHOOKS: u8 = 4;
const SUPPRESSION: u8 = 5;
const FILES: u8 = 6;
/// Inspections erased per step (each: one read-modify-write and its partition).
const INSPECTIONS_PER_STEP: usize = 10;

/// One bounded step of an erasure (the job saves the request after each, so a run that stops
/// resumes where it was; every step is safe to repeat). Returns whether it is done.
#[cfg(feature = "s3")]
pub async fn erase_step(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    e: &mut crate::adapters::store::privacy::PrivacyErasure,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    use crate::adapters::store::Write;
    let c = e.company_id;
    let Some(email) = e.email.clone() else { return Ok(true) };
    let part = keys::email_part(&email);
    match e.phase {
        GATHER => {
            // What to look for in texts: their names, phones and the IPs and user agents recorded
            // for them (read before anything changes, kept on the request while it runs).
            let mut needles = std::collections::BTreeSet::new();
            for entry in store.privacy_entries(c, &email).await? {
                let Some(i) = store.inspection(c, entry.inspection_id).await? else { continue };
                for p in i.people.iter().filter(|p| p.id == entry.person_id) {
                    needles.insert(p.name.clone());
                    needles.extend(p.phone.clone());
                }
                for s in i.agreement.signatures.iter().filter(|s| s.person_id == entry.person_id) {
                    needles.insert(s.typed_name.clone());
                    needles.extend(s.ip.clone());
                    needles.extend(s.user_agent.clone());
                }
                for q in i.quotes.iter().filter(|q| q.person_id == entry.person_id) {
                    needles.insert(q.person_name.clone());
                    needles.extend(q.ip.clone());
                    needles.extend(q.user_agent.clone());
                    needles.extend(q.shared.phone.clone());
                }
            }
            for contact in store.contacts_by_email(c, &email).await? {
                needles.extend(contact["name"].as_str().map(str::to_owned));
            }
            e.needles = needles.into_iter().collect();
            e.phase = INSPECTIONS;
        }
        INSPECTIONS => {
            let entries = store.privacy_entries(c, &email).await?;
            let mut by_inspection: BTreeMap<InspectionId, Vec<PersonId>> = BTreeMap::new();
            for entry in entries {
                by_inspection.entry(entry.inspection_id).or_default().push(entry.person_id);
            }
            if by_inspection.is_empty() {
                e.phase = SESSIONS;
                return Ok(false);
            }
            let replace = replacements(e, &email);
            let pseudonym = e.pseudonym.clone();
            for (i, persons) in by_inspection.into_iter().take(INSPECTIONS_PER_STEP) {
                // The aggregate: the person pseudonymized, their links revoked, their signatures
                // and consents kept (amounts, dates, versions) without name, IP or user agent.
                let changed = store
                    .modify_inspection(c, i, |owner, insp| {
                        let mut writes = Vec::new();
                        for idx in 0..insp.people.len() {
                            if !persons.contains(&insp.people[idx].id) {
                                continue;
                            }
                            writes.extend(crate::adapters::store::tokens::revoke_all(insp, idx));
                            let p = &mut insp.people[idx];
                            p.name = pseudonym.clone();
                            p.email = Some(pseudonymous_address(&pseudonym));
                            p.phone = None;
                            p.quiet = true;
                        }
                        for s in insp.agreement.signatures.iter_mut().filter(|s| persons.contains(&s.person_id)) {
                            s.typed_name = pseudonym.clone();
                            (s.ip, s.user_agent) = (None, None);
                        }
                        for q in insp.quotes.iter_mut().filter(|q| persons.contains(&q.person_id)) {
                            q.person_name = pseudonym.clone();
                            (q.ip, q.user_agent, q.message) = (None, None, None);
                            q.shared.name = pseudonym.clone();
                            q.shared.email = Some(pseudonymous_address(&pseudonym));
                            q.shared.phone = None;
                        }
                        // Anything else that quoted them (a ledger note, a document title).
                        let mut v = serde_json::to_value(&*insp).map_err(crate::ApiError::internal)?;
                        if scrub(&mut v, &replace) {
                            *insp = serde_json::from_value(v).map_err(crate::ApiError::internal)?;
                        }
                        Ok((owner.clone(), writes))
                    })
                    .await;
                match changed {
                    Ok((insp, company)) => {
                        let n = rerender_generated(store, blobs, &company, &insp).await?;
                        count(e, "generated_reports", n);
                    }
                    Err(crate::ApiError::NotFound) => {}
                    Err(err) => return Err(StoreError::Sdk(err.problem().detail)),
                }
                count(e, "inspections", 1);
                // The inspection's other items: emails (subjects, recipients, bodies kept), audit
                // entries, requests. Each written back only when it held them.
                // (The aggregate itself was rewritten above, at its revision.)
                scrub_partition(store, e, &keys::inspection(c, i).pk, &replace, Some("INSPECTION")).await?;
                // Done with this inspection: its index entries go (they are keyed by the address).
                let deletes: Vec<Write> =
                    persons.iter().map(|p| Write::Delete(keys::privacy_entry(c, &part, i, *p))).collect();
                store.transact(deletes).await?;
            }
        }
        SESSIONS => {
            // Company-wide emails (sign-in links, contact invitations: the nil inspection's
            // partition) that went to them.
            let replace = replacements(e, &email);
            let pk = keys::inspection(c, InspectionId::from_ulid(ulid::Ulid::nil())).pk;
            scrub_partition(store, e, &pk, &replace, None).await?;
            // Their `/me` sessions and sign-in codes end (deleted; a used code keeps no address).
            // (And the one-click unsubscribe links made for them: the address is suppressed.)
            for (pk, kind) in [
                (keys::me_sessions_of(c, &part), "me_sessions"),
                (keys::me_sign_ins_of(c, &part), "me_sign_in_codes"),
                (keys::unsubscribes_of(c, &part), "unsubscribe_links"),
            ] {
                let items = store.query_gsi1::<Value>(&pk, 100, None, false).await?.items;
                for item in &items {
                    if let (Some(pk), Some(sk)) = (item["PK"].as_str(), item["SK"].as_str()) {
                        store.write(Write::Delete(keys::of_item(pk, sk))).await?;
                    }
                }
                count(e, kind, items.len());
                if items.len() == 100 {
                    return Ok(false);
                }
            }
            e.phase = CONTACTS;
        }
        CONTACTS => {
            for item in store.contacts_by_email(c, &email).await? {
                let mut contact: crate::domain::customers::Contact =
                    serde_json::from_value(item).map_err(|err| StoreError::Sdk(err.to_string()))?;
                let revoked = crate::adapters::store::tokens::revoke_links(&mut contact.tokens);
                contact.name = e.pseudonym.clone();
                contact.email = pseudonymous_address(&e.pseudonym);
                store.save_contact(c, &mut contact, revoked).await?;
                count(e, "contacts", 1);
            }
            e.phase = WEBHOOKS;
        }
        WEBHOOKS => {
            // Delivery bodies (and their events) that named them.
            let replace = replacements(e, &email);
            let endpoints = store.query_gsi1::<Value>(&format!("COMPANY#{c}#WEBHOOKS"), 100, None, false).await?.items;
            for endpoint in endpoints {
                let Some(pk) = endpoint["PK"].as_str() else { continue };
                let mut cursor = None;
                loop {
                    let page = store.query_prefix::<Value>(pk, "DELIVERY#", 200, cursor.as_deref(), false).await?;
                    for mut item in page.items {
                        if !scrub(&mut item, &replace) {
                            continue;
                        }
                        let event = item["SK"].as_str().and_then(|s| s.strip_prefix("DELIVERY#")).map(str::to_owned);
                        put_back(store, item).await?;
                        count(e, "webhook_deliveries", 1);
                        if let Some(evt) = event {
                            let key = keys::of_item(&format!("COMPANY#{c}#EVENT#{evt}"), "EVENT");
                            if let Some(mut ev) = store.get::<Value>(&key).await? {
                                if scrub(&mut ev, &replace) {
                                    put_back(store, ev).await?;
                                    count(e, "webhook_events", 1);
                                }
                            }
                        }
                    }
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
            }
            e.phase = SUPPRESSION;
        }
        SUPPRESSION => {
            // Only a salted hash of the address stays, so nothing is ever sent to it again.
            let plain =
                store.get::<crate::adapters::store::outbox::Suppression>(&keys::suppression(c, email.as_str())).await?;
            let kept = crate::adapters::store::outbox::Suppression {
                address: pseudonymous_address(&e.pseudonym).as_str().to_owned(),
                kind: plain
                    .as_ref()
                    .map(|s| s.kind.clone())
                    .filter(|k| k != "unsubscribe")
                    .unwrap_or_else(|| "erased".into()),
                reason: "the person's data was erased".into(),
                at: now,
            };
            let record =
                crate::adapters::store::Record::new(keys::suppression_erased(c, email.as_str()), "suppression", &kept)?;
            store.transact(vec![Write::Put(record), Write::Delete(keys::suppression(c, email.as_str()))]).await?;
            count(e, "suppression", 1);
            e.phase = FILES;
        }
        FILES => {
            // Files only about them: the exports made of their data.
            let log = store.query_prefix::<Value>(&keys::privacy_audit(c, "").pk, "", 1000, None, false).await?;
            for entry in log.items.iter().filter(|l| l["subject"] == part.as_str() && l["action"] == "export_requested")
            {
                let Some(id) = entry["request_id"].as_str() else { continue };
                let n = blobs
                    .delete_all_versions(&format!("privacy/{c}/{id}/"))
                    .await
                    .map_err(|err| StoreError::Sdk(err.to_string()))?;
                count(e, "export_files", n);
            }
            return Ok(true);
        }
        _ => return Ok(true),
    }
    Ok(false)
}

/// The reports this system generated for an inspection, rendered again from its (now
/// pseudonymized) data as new versions, the versions before them (PDF and payload) deleted for
/// good; like a staff rebuild, no email goes out. Uploaded PDFs stay (the company's work product).
/// Returns how many.
#[cfg(feature = "s3")]
async fn rerender_generated(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    company: &crate::domain::company::Company,
    insp: &crate::domain::inspection::Inspection,
) -> Result<usize, StoreError> {
    let generated: Vec<_> = insp.documents.iter().filter(|d| d.generated && d.uploaded).collect();
    if generated.is_empty() {
        return Ok(0);
    }
    let failed = |e: crate::ApiError| StoreError::Sdk(e.problem().detail);
    for d in &generated {
        let version =
            crate::usecases::publishing::render_and_store(store, blobs, company, insp, d).await.map_err(failed)?;
        let doc = d.id;
        store
            .modify_document(insp.company_id, doc, |_, i| {
                let d = i.document_mut(doc).ok_or(crate::ApiError::NotFound)?;
                d.file_version += 1;
                d.verified_version = version.clone();
                let v = d.file_version;
                d.notified_versions.push(v);
                Ok(((), vec![]))
            })
            .await
            .map_err(failed)?;
        let key = crate::domain::document::object_key(insp.company_id, insp.id, doc);
        let payload = format!("{}.json", key.trim_end_matches(".pdf"));
        for k in [key, payload] {
            blobs.delete_older_versions(&k).await.map_err(|e| StoreError::Sdk(e.to_string()))?;
        }
    }
    Ok(generated.len())
}

/// What one run of [`run_erasures`] did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ErasureReport {
    pub steps: usize,
    pub done: usize,
    pub errors: usize,
}

/// Steps pending erasures until `deadline` or `max_steps`, saving each request after every step.
#[cfg(feature = "s3")]
pub async fn run_erasures(
    store: &Store,
    blobs: &crate::adapters::s3::Blobs,
    now: OffsetDateTime,
    max_steps: usize,
    deadline: Option<std::time::Instant>,
) -> Result<ErasureReport, StoreError> {
    use crate::adapters::store::Write;
    let mut report = ErasureReport::default();
    for mut e in store.pending_erasures(now, 10).await? {
        while report.steps < max_steps && deadline.is_none_or(|d| std::time::Instant::now() < d) {
            report.steps += 1;
            let expected = e.revision;
            let done = match erase_step(store, blobs, &mut e, now).await {
                Ok(done) => done,
                Err(err) => {
                    tracing::error!(erasure = %e.id, error = %err, "an erasure step failed; the next run goes on");
                    report.errors += 1;
                    break;
                }
            };
            let mut writes = Vec::new();
            if done {
                e.state = "done".into();
                e.done_at = Some(now);
                e.email = None;
                e.needles.clear();
                writes.push(audit_write(e.company_id, "erasure_done", &e.requested_by, &e.pseudonym, &e.id, now)?);
                report.done += 1;
            }
            e.revision += 1;
            writes.insert(0, Write::Replace { record: e.record()?, expected_revision: expected });
            store.transact(writes).await?;
            if done {
                break;
            }
        }
    }
    Ok(report)
}

// ---- retention ----

/// Drops the stored bodies of sent emails whose company's `retention.email_bodies_days` has
/// passed (their metadata — recipient, subject, state, times — stays). An email waits in the
/// `RETAIN` queue at the time it was sent; the first look reads its company's setting and moves it
/// to the time its body is due to go (so the queue is read once per email, not every run), the
/// second drops the body. Returns how many bodies were dropped.
pub async fn drop_email_bodies(store: &Store, now: OffsetDateTime, max: i32) -> Result<usize, StoreError> {
    let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
    let mut cursor = crate::adapters::store::ShardCursor::new(&keys::RETAIN);
    let due = store.due_keys(&mut cursor, &upto, max).await?;
    let mut companies: BTreeMap<String, Option<Company>> = BTreeMap::new();
    let mut dropped = 0;
    for key in due {
        let (Some(pk), Some(sk), Some(due_sk)) = (
            key.get(keys::PK).and_then(|v| v.as_s().ok()).cloned(),
            key.get(keys::SK).and_then(|v| v.as_s().ok()).cloned(),
            key.get(keys::DUE_SK).and_then(|v| v.as_s().ok()).cloned(),
        ) else {
            continue;
        };
        let Some(company_id) = pk.strip_prefix("COMPANY#").and_then(|r| r.split('#').next()).map(str::to_owned) else {
            continue;
        };
        if !companies.contains_key(&company_id) {
            let company = match company_id.parse() {
                Ok(c) => store.company(c).await?,
                Err(_) => None,
            };
            companies.insert(company_id.clone(), company);
        }
        let days = companies[&company_id].as_ref().map(|c| c.settings.retention.email_bodies_days).unwrap_or(90);
        let Some(record) = store.get::<crate::adapters::store::outbox::EmailRecord>(&keys::of_item(&pk, &sk)).await?
        else {
            continue;
        };
        let drop_at = record.sent_at.unwrap_or(record.created_at) + time::Duration::days(i64::from(days));
        let key = keys::of_item(&pk, &sk);
        if drop_at <= now {
            dropped += usize::from(store.drop_email_body(&key, &due_sk, now).await?);
        } else {
            let at = format!("{}#{}", crate::foundation::clock::rfc3339(drop_at), record.dedupe);
            store.move_retention(&key, &due_sk, &at).await?;
        }
    }
    Ok(dropped)
}
