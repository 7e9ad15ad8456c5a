//! Stripe, as the tests see it: Stripe's own objects (`tests/fixtures/stripe`) in event envelopes,
//! signed and delivered the way Stripe delivers them (pretty-printed, a stale `v1` first).

use crate::{Fixture, Reply, WEBHOOK_SECRET};
use portal_shared::adapters::stripe::signature::sign;
use serde_json::{json, Value};

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn evt_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

/// A full Stripe object from `tests/fixtures/stripe`.
pub fn stripe_object(name: &str) -> Value {
    let text = match name {
        "payment_intent" => include_str!("../fixtures/stripe/payment_intent.json"),
        "checkout_session" => include_str!("../fixtures/stripe/checkout_session.json"),
        "charge" => include_str!("../fixtures/stripe/charge.json"),
        "refund" => include_str!("../fixtures/stripe/refund.json"),
        "dispute" => include_str!("../fixtures/stripe/dispute.json"),
        "customer" => include_str!("../fixtures/stripe/customer.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture JSON")
}

/// `base` with `changes` merged over it (top-level fields).
pub fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("changes are an object") {
        base[k] = v.clone();
    }
    base
}

/// A Stripe event envelope around `object`, as Stripe sends it (test mode).
pub fn stripe_event(id: &str, kind: &str, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": "req_dJvdRqDFlPa0Ww", "idempotency_key": "8f0a6a0e-5c1e-4f0e-9d71-1a2b3c4d5e6f" },
        "type": kind,
    })
}

/// The metadata a payment made outside Pay Now carries: company and inspection.
pub fn names(f: &Fixture) -> Value {
    json!({ "company_id": f.company_id.to_string(), "inspection_id": f.inspection_id.to_string() })
}

/// A Stripe event about this fixture's inspection (metadata names it unless `object` has some).
pub fn event(f: &Fixture, id: &str, kind: &str, object: Value) -> Value {
    let mut object = object;
    if object.get("metadata").is_none() {
        object["metadata"] = names(f);
    }
    stripe_event(id, kind, object)
}

/// A full payment intent for `amount` in `status`, naming `metadata`.
pub fn intent(id: &str, amount: i64, status: &str, metadata: Value) -> Value {
    let received = if status == "succeeded" { amount } else { 0 };
    with(
        stripe_object("payment_intent"),
        json!({ "id": id, "amount": amount, "amount_received": received, "status": status, "metadata": metadata,
                "latest_charge": if status == "succeeded" { json!(format!("ch_{}", &id[3..])) } else { Value::Null } }),
    )
}

/// A full Checkout Session paid (or not yet: `unpaid`) with `intent`.
pub fn session(id: &str, intent: &str, amount: i64, payment_status: &str, metadata: Value) -> Value {
    with(
        stripe_object("checkout_session"),
        json!({ "id": id, "payment_intent": intent, "amount_total": amount, "amount_subtotal": amount,
                "payment_status": payment_status, "metadata": metadata }),
    )
}

/// A full charge of `intent` refunded by `refunds` (cumulative `amount_refunded`, refunds list),
/// with no metadata, as Stripe sends it.
pub fn refunded_charge(charge: &str, intent: &str, amount: i64, refunds: &[i64]) -> Value {
    let data: Vec<Value> = refunds
        .iter()
        .enumerate()
        .map(|(n, r)| {
            with(
                stripe_object("refund"),
                json!({ "id": format!("re_{charge}_{n}"), "amount": r, "charge": charge, "payment_intent": intent }),
            )
        })
        .collect();
    let total: i64 = refunds.iter().sum();
    let mut c = with(
        stripe_object("charge"),
        json!({ "id": charge, "payment_intent": intent, "amount": amount, "amount_captured": amount,
                "amount_refunded": total, "refunded": total == amount }),
    );
    c["refunds"]["data"] = json!(data);
    c["refunds"]["url"] = json!(format!("/v1/charges/{charge}/refunds"));
    c
}

/// A full dispute of `intent`'s charge, with no metadata.
pub fn dispute(id: &str, charge: &str, intent: &str, amount: i64, status: &str) -> Value {
    with(
        stripe_object("dispute"),
        json!({ "id": id, "charge": charge, "payment_intent": intent, "amount": amount, "status": status }),
    )
}

/// `Stripe-Signature` as Stripe sends it in test mode: the timestamp, a `v1` from a secret
/// that no longer signs (a stale one, first), the good `v1`, and a `v0` entry.
pub fn stripe_signature(body: &str) -> String {
    let t = now();
    let stale = sign("whsec_rolled_long_ago", t, body.as_bytes());
    let good = sign(WEBHOOK_SECRET, t, body.as_bytes());
    let v0 = sign("v0-scheme", t, body.as_bytes());
    format!("t={t},v1={stale},v1={good},v0={v0}")
}

pub fn paid(f: &Fixture, id: &str, intent_id: &str, amount: i64) -> Value {
    event(f, id, "payment_intent.succeeded", intent(intent_id, amount, "succeeded", names(f)))
}

pub async fn deliver_raw(f: &Fixture, body: &str, header: Option<String>) -> Reply {
    let mut req = f
        .app
        .http
        .post(f.app.url("/webhooks/payments"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(h) = header {
        req = req.header("stripe-signature", h);
    }
    f.app.send(req).await
}

/// Delivers an event pretty-printed and signed as Stripe does; asserts it was acknowledged.
pub async fn deliver(f: &Fixture, event: &Value) -> Reply {
    let body = serde_json::to_string_pretty(event).unwrap();
    let r = deliver_raw(f, &body, Some(stripe_signature(&body))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}
