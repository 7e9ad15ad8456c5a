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
    let sessions: Vec<Value> = store
        .query_gsi1::<Value>(&keys::me_sessions_of(c, &part), 100, None, false)
        .await?
        .items
        .into_iter()
        .map(plain)
        .map(|mut v| {
            // The session's key hash is a credential's digest: not theirs to have.
            v.as_object_mut().map(|m| m.remove("session_hash"));
            v
        })
        .collect();
    let sign_ins: Vec<Value> = store
        .query_gsi1::<Value>(&keys::me_sign_ins_of(c, &part), 100, None, false)
        .await?
        .items
        .into_iter()
        .map(plain)
        .map(|mut v| {
            v.as_object_mut().map(|m| m.remove("code_hash"));
            v
        })
        .collect();
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
