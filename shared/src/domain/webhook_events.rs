//! Outbound webhooks: what integrators can hear, and how an inspection's save knows what it
//! changed.
//!
//! Every save of an inspection compares the aggregate with the digest it kept of its last save
//! ([`WebhookDigest`], kept on the inspection) and turns the differences into events (a document published, a payment applied,
//! the agreement signed, a report turning available for the client, …). The events are written
//! in the same transaction as the change, so none is lost and none is invented. Payloads carry
//! ids and states only: never a token, a link or a presigned URL.

use serde_json::{json, Value};

use super::gate::{gate, Access, Facts, Viewer};
use super::inspection::{Inspection, Role, WebhookDigest};
use super::settings::ReportAccess;
use crate::foundation::ids::DocumentId;

/// Every event type, as integrators subscribe to them.
pub const EVENT_TYPES: &[&str] = &[
    "inspection.created",
    "inspection.updated",
    "agreement.signed",
    "payment.succeeded",
    "payment.refunded",
    "payment.disputed",
    "document.published",
    "document.unpublished",
    "document.opened",
    "report.unlocked",
    "quote.requested",
    "contact.invited",
    "deficiency.resolved",
];

fn details(i: &Inspection) -> String {
    let services: Vec<String> = i.services.iter().map(|s| format!("{}:{}", s.name, s.price_cents.get())).collect();
    format!("{}|{}|{}", i.address, crate::foundation::clock::rfc3339(i.scheduled_at), services.join(","))
}

/// The documents a client may open now (the gate, for the role that always sees documents).
fn unlocked(i: &Inspection) -> Vec<DocumentId> {
    i.documents
        .iter()
        .filter(|d| d.published && d.kind.is_gated_deliverable())
        .filter(|d| {
            let r = i.requirements;
            let facts = Facts {
                kind: d.kind,
                published: d.published,
                form_complete: d.form_complete,
                require_payment: r.require_payment,
                allow_deferred_payment: r.allow_deferred_payment,
                collect_payment_after_publish: r.collect_payment_after_publish,
                require_agreement: r.require_agreement,
                balance: i.balance(),
                agreement_signed: i.agreement_signed(),
                report_access: ReportAccess::default(),
            };
            gate(&facts, Viewer::Person(Role::Client)) == Access::Available
        })
        .map(|d| d.id)
        .collect()
}

fn digest(i: &Inspection) -> WebhookDigest {
    WebhookDigest {
        created: true,
        details: details(i),
        published: i.documents.iter().filter(|d| d.published).map(|d| d.id).collect(),
        unlocked: unlocked(i),
        signatures: i.agreement.signatures.len(),
        quotes: i.quotes.len(),
        ledger: i.ledger.iter().map(|(k, e)| (k.clone(), e.amount_cents)).collect(),
    }
}

fn document_data(i: &Inspection, id: DocumentId) -> Value {
    let d = i.document(id);
    json!({
        "inspection_id": i.id,
        "document_id": id,
        "kind": d.map(|d| d.kind),
        "title": d.map(|d| d.display_name()),
    })
}

/// The events this save makes (type, data), and the digest to keep with it.
pub fn changes(i: &Inspection) -> (Vec<(&'static str, Value)>, WebhookDigest) {
    let before = &i.webhook_digest;
    let now = digest(i);
    let mut events = Vec::new();
    let inspection = || json!({ "inspection_id": i.id, "address": i.address, "scheduled_at": crate::foundation::clock::rfc3339(i.scheduled_at) });
    if !before.created {
        events.push(("inspection.created", inspection()));
    } else if before.details != now.details {
        events.push(("inspection.updated", inspection()));
    }
    if now.signatures > before.signatures {
        for s in &i.agreement.signatures[before.signatures.min(i.agreement.signatures.len())..] {
            events.push((
                "agreement.signed",
                json!({ "inspection_id": i.id, "person_id": s.person_id, "version": s.version,
                        "agreement_signed": i.agreement_signed() }),
            ));
        }
    }
    for (key, entry) in &i.ledger {
        if before.ledger.get(key) == Some(&entry.amount_cents) {
            continue;
        }
        let kind = match entry.kind.as_str() {
            "refund" => "payment.refunded",
            "dispute_open" => "payment.disputed",
            k if k.starts_with("dispute") => continue,
            _ if entry.amount_cents > 0 => "payment.succeeded",
            _ => continue,
        };
        events.push((
            kind,
            json!({ "inspection_id": i.id, "amount_cents": entry.amount_cents, "currency": i.currency,
                    "balance_cents": i.balance(), "paid_cents": i.paid() }),
        ));
    }
    for id in now.published.iter().filter(|d| !before.published.contains(d)) {
        events.push(("document.published", document_data(i, *id)));
    }
    for id in before.published.iter().filter(|d| !now.published.contains(d)) {
        events.push(("document.unpublished", json!({ "inspection_id": i.id, "document_id": id })));
    }
    for id in now.unlocked.iter().filter(|d| !before.unlocked.contains(d)) {
        let mut data = document_data(i, *id);
        data["viewer_role"] = json!("client");
        events.push(("report.unlocked", data));
    }
    if now.quotes > before.quotes {
        for q in &i.quotes[before.quotes.min(i.quotes.len())..] {
            events.push((
                "quote.requested",
                json!({ "inspection_id": i.id, "person_id": q.person_id, "offer_id": q.offer_id, "partner": q.partner }),
            ));
        }
    }
    (events, now)
}
