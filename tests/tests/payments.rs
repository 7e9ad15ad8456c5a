//! Payment webhooks and Pay Now through the local gateway: signatures, exactly-once ledger changes
//! under duplicates, concurrency and reordering, unmatched money, the payment panel, "report ready"
//! emails, and the dev checkout.

use portal_shared::webhook::sign;
use portal_tests::{fixture, Fixture, Reply, WEBHOOK_SECRET};
use serde_json::{json, Value};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn evt_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

/// A Stripe event about this fixture's inspection (metadata names it).
fn event(f: &Fixture, id: &str, kind: &str, object: Value) -> Value {
    let mut object = object;
    if object.get("metadata").is_none() {
        object["metadata"] =
            json!({ "company_id": f.company_id.to_string(), "inspection_id": f.inspection_id.to_string() });
    }
    json!({ "id": id, "object": "event", "type": kind, "created": now(), "data": { "object": object } })
}

fn paid(f: &Fixture, id: &str, intent: &str, amount: i64) -> Value {
    event(
        f,
        id,
        "payment_intent.succeeded",
        json!({ "id": intent, "object": "payment_intent", "amount": amount,
        "amount_received": amount, "currency": "usd" }),
    )
}

async fn deliver_raw(f: &Fixture, body: &str, header: Option<String>) -> Reply {
    let mut req = f
        .app
        .http
        .post(f.app.url("/webhooks/payments"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(h) = header {
        req = req.header("stripe-signature", h);
    }
    f.app.send(req).await
}

async fn deliver(f: &Fixture, event: &Value) -> Reply {
    let body = event.to_string();
    let t = now();
    let r = deliver_raw(f, &body, Some(format!("t={t},v1={}", sign(WEBHOOK_SECRET, t, body.as_bytes())))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn balance(f: &Fixture) -> i64 {
    f.inspection().await.balance().get()
}

async fn items(f: &Fixture) -> usize {
    f.app.all_items().await.len()
}

async fn published_report(f: &Fixture) -> String {
    let doc = json!({ "kind": "inspection_report", "title": "Report", "template_name": "Residential Inspection" });
    f.app.published_document(&f.key, &f.inspection_id.to_string(), doc).await
}

async fn open_status(f: &Fixture, doc: &str) -> u16 {
    f.app
        .send(f.app.http.get(f.app.url(&format!("{}/documents/{doc}", f.client))).header("accept", "application/json"))
        .await
        .status
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_malformed_bodies_write_nothing() {
    let f = fixture(json!({})).await;
    let before = items(&f).await;
    let body = paid(&f, &evt_id(), "pi_1", 45000).to_string();
    let t = now();
    let good = sign(WEBHOOK_SECRET, t, body.as_bytes());
    for (header, why) in [
        (None, "no header"),
        (Some("garbage".to_owned()), "malformed header"),
        (Some(format!("t={t},v0={good}")), "only v0"),
        (Some(format!("t={t},v1={}", sign("whsec_wrong", t, body.as_bytes()))), "wrong secret"),
        (Some(format!("t={},v1={}", t - 301, sign(WEBHOOK_SECRET, t - 301, body.as_bytes()))), "stale"),
        (Some(format!("t={t},v1={good}x")), "tampered"),
    ] {
        let r = deliver_raw(&f, &body, header).await;
        r.assert_problem(400);
        assert!(r.json["detail"].as_str().unwrap().contains("signature"), "{why}: {}", r.text);
    }
    // Correctly signed but not an event, or an event missing what it needs.
    for bad in ["{not json", r#"{"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi"}}}"#]
    {
        let t = now();
        let r = deliver_raw(&f, bad, Some(format!("t={t},v1={}", sign(WEBHOOK_SECRET, t, bad.as_bytes())))).await;
        r.assert_problem(400);
    }
    // Unknown types are acknowledged and ignored.
    let r = deliver(&f, &event(&f, &evt_id(), "customer.created", json!({ "id": "cus_1" }))).await;
    assert_eq!(r.json["status"], "ignored");
    assert_eq!(items(&f).await, before, "nothing was written");
    assert_eq!(balance(&f).await, 45000);

    // A rotated-out secret still in the list is accepted (rotation).
    let old = format!("t={t},v1={}", sign("whsec_old_rotated", t, body.as_bytes()));
    assert_eq!(deliver_raw(&f, &body, Some(old)).await.status, 200);
    assert_eq!(balance(&f).await, 0);
}

#[tokio::test]
async fn a_payment_applies_once_however_often_it_is_delivered() {
    let f = fixture(json!({})).await;
    let e = paid(&f, &evt_id(), "pi_once", 45000);
    let first = deliver(&f, &e).await;
    assert_eq!(first.json["status"], "applied");
    assert!(first.round_trips() <= 2, "webhook budget: {}", first.round_trips());
    let again = deliver(&f, &e).await;
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(again.round_trips(), 1, "a duplicate stops at the first read");
    // The same money under another event id (e.g. a resend) is already known.
    let other = deliver(&f, &paid(&f, &evt_id(), "pi_once", 45000)).await;
    assert_eq!(other.json["status"], "already_known");
    assert_eq!(balance(&f).await, 0);
    assert_eq!(f.inspection().await.ledger.len(), 1);
}

#[tokio::test]
async fn fifty_concurrent_deliveries_change_the_balance_once() {
    let f = fixture(json!({})).await;
    let e = paid(&f, &evt_id(), "pi_race", 20000);
    let replies = futures::future::join_all((0..50).map(|_| deliver(&f, &e))).await;
    let applied = replies.iter().filter(|r| r.json["status"] == "applied").count();
    assert_eq!(applied, 1, "{:?}", replies.iter().map(|r| r.json["status"].clone()).collect::<Vec<_>>());
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(balance(&f).await, 25000);
    let events = f.app.all_items().await.into_iter().filter(|i| i["PK"].as_s().unwrap().starts_with("EVENT#")).count();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_refund_delivered_before_its_payment_still_ends_at_the_right_balance() {
    let f = fixture(json!({})).await;
    let refund = |total: i64| {
        event(
            &f,
            &evt_id(),
            "charge.refunded",
            json!({ "id": "ch_9", "object": "charge", "amount_refunded": total,
            "payment_intent": "pi_9", "currency": "usd" }),
        )
    };
    deliver(&f, &refund(5000)).await;
    deliver(&f, &paid(&f, &evt_id(), "pi_9", 45000)).await;
    assert_eq!(balance(&f).await, 5000, "partial refund");
    deliver(&f, &refund(45000)).await;
    deliver(&f, &refund(5000)).await; // an older, smaller total arriving late changes nothing
    assert_eq!(balance(&f).await, 45000, "full refund");
}

#[tokio::test]
async fn a_dispute_relocks_the_report_and_a_won_dispute_releases_it() {
    let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    assert_eq!(open_status(&f, &doc).await, 403);
    deliver(&f, &paid(&f, &evt_id(), "pi_d", 45000)).await;
    assert_eq!(open_status(&f, &doc).await, 303);
    // Disputes carry no metadata: the payment intent leads to the inspection.
    let dispute = |kind: &str, status: &str| {
        json!({ "id": evt_id(), "object": "event", "type": kind, "created": now(), "data": { "object": {
            "id": "dp_1", "object": "dispute", "amount": 45000, "currency": "usd", "charge": "ch_d",
            "payment_intent": "pi_d", "status": status, "metadata": {} } } })
    };
    let r = deliver(&f, &dispute("charge.dispute.created", "needs_response")).await;
    assert_eq!(r.json["status"], "applied", "{}", r.text);
    assert_eq!(open_status(&f, &doc).await, 403, "a disputed payment re-locks");
    deliver(&f, &dispute("charge.dispute.closed", "won")).await;
    assert_eq!(open_status(&f, &doc).await, 303);
}

#[tokio::test]
async fn unmatched_money_is_kept_for_staff_and_acknowledged() {
    let f = fixture(json!({})).await;
    let other = fixture(json!({})).await;
    // Names this company but another company's inspection; names nothing at all.
    let crossed = event(
        &f,
        &evt_id(),
        "payment_intent.succeeded",
        json!({ "id": "pi_x", "amount": 100, "currency": "usd",
        "metadata": { "company_id": f.company_id.to_string(), "inspection_id": other.inspection_id.to_string() } }),
    );
    let r = deliver(&f, &crossed).await;
    assert_eq!(r.json["status"], "unmatched");
    assert!(r.round_trips() <= 2);
    assert_eq!(deliver(&f, &crossed).await.json["status"], "duplicate");
    let orphan = json!({ "id": evt_id(), "type": "payment_intent.succeeded", "created": now(), "data": { "object": {
        "id": "pi_orphan", "amount": 777, "currency": "usd", "metadata": {} } } });
    assert_eq!(deliver(&f, &orphan).await.json["status"], "unmatched");
    // Wrong currency is money too.
    let cad =
        event(&f, &evt_id(), "payment_intent.succeeded", json!({ "id": "pi_cad", "amount": 100, "currency": "cad" }));
    assert_eq!(deliver(&f, &cad).await.json["status"], "unmatched");

    let list = f.app.request("GET", "/staff/payments/unmatched", Some(&f.key), None).await;
    let reasons: Vec<&str> =
        list.json["items"].as_array().unwrap().iter().map(|i| i["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{}", list.text);
    assert!(reasons.iter().any(|r| r.contains("currency")));
    assert!(list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["amount_cents"] == 100 && i["inspection_id"] == other.inspection_id.to_string()));
    let theirs = other.app.request("GET", "/staff/payments/unmatched", Some(&other.key), None).await;
    assert_eq!(theirs.json["items"], json!([]), "another company never sees it");
    let admin = f.app.admin("GET", "/admin/payments/unmatched", None).await;
    assert!(admin.json["items"].as_array().unwrap().iter().any(|i| i["amount_cents"] == 777), "{}", admin.text);
    assert_eq!(balance(&other).await, 45000, "nothing was applied to the other company's inspection");
}

#[tokio::test]
async fn a_bank_payment_shows_processing_until_it_settles() {
    let f = fixture(json!({ "payments": "native" })).await;
    let pi = json!({ "id": "pi_ach", "object": "payment_intent", "amount": 45000, "currency": "usd" });
    deliver(&f, &event(&f, &evt_id(), "payment_intent.processing", pi.clone())).await;
    let p = &f.view(&f.client).await.json["payment"];
    assert_eq!((p["state"].as_str(), p["action"].as_str()), (Some("processing"), None), "{p}");
    let html = f.app.send(f.app.http.get(f.app.url(&f.client))).await.text;
    assert!(html.contains("Payment processing"));
    let mut settled = pi;
    settled["amount_received"] = json!(45000);
    deliver(&f, &event(&f, &evt_id(), "payment_intent.succeeded", settled)).await;
    assert_eq!(f.view(&f.client).await.json["payment"]["state"], "paid");
}

#[tokio::test]
async fn a_payment_that_releases_a_report_emails_each_client_and_buyer_agent_once() {
    let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    deliver(&f, &paid(&f, &evt_id(), "pi_part", 20000)).await; // releases nothing yet
    let job = f.app.functions.publish.run_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!(job.emails.sent, 2, "only the two \"published\" emails: the partial payment released nothing");
    deliver(&f, &paid(&f, &evt_id(), "pi_rest", 25000)).await;
    let job = f.app.functions.publish.run_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!(job.emails.sent, 2, "{job:?}");
    let again = f.app.functions.publish.run_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1)).await;
    assert_eq!(again.emails.sent, 0, "nothing is sent twice");
    for (email, link) in [(&f.client_email, &f.client), (&f.agent_email, &f.agent)] {
        let mails: Vec<_> = f.app.emails_to(email).await.into_iter().filter(|m| m.subject.contains("ready")).collect();
        assert_eq!(mails.len(), 1, "{email}");
        let report_link = mails[0].links.iter().find(|l| l.contains("/documents/")).expect("a report link");
        assert!(
            report_link.starts_with(&f.app.url("/p/")) && report_link.ends_with(&doc),
            "through the gate: {report_link}"
        );
        assert!(!mails[0].body.contains(link.trim_start_matches("/p/")), "a fresh link, not a stored one");
        let r = f.app.send(f.app.http.get(report_link.as_str())).await;
        assert_eq!(r.status, 303, "the emailed link opens the report");
    }
    let history =
        f.app.request("GET", &format!("/staff/inspections/{}/emails", f.inspection_id), Some(&f.key), None).await;
    let states: Vec<&str> =
        history.json["items"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["sent", "sent", "sent", "sent"]);
}

#[tokio::test]
async fn pay_now_goes_through_the_dev_checkout_and_unlocks_the_report() {
    let f = fixture(json!({ "payments": "native", "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    f.post(&format!("{}/pay", f.agent), json!({})).await.assert_problem(403);
    let r = f.post(&format!("{}/pay", f.client), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.round_trips() <= 2);
    let url = r.json["checkout_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&f.app.url("/_dev/checkout?s=")), "{url}");
    let page = f.app.send(f.app.http.get(&url)).await;
    assert!(page.text.contains("Pay $450.00"), "{}", page.text);
    let s = reqwest::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "s").unwrap().1.into_owned();
    let pay = f
        .app
        .send(f.app.http.post(f.app.url("/_dev/checkout/pay")).form(&[("s", s.as_str()), ("method", "card")]))
        .await;
    assert_eq!(pay.status, 303, "{}", pay.text);
    assert_eq!(pay.header("location"), Some(f.app.url(&f.client).as_str()), "back to the portal");
    assert_eq!(f.view(&f.client).await.json["payment"]["state"], "paid");
    assert_eq!(open_status(&f, &doc).await, 303, "the report unlocked");
    let r = f.post(&format!("{}/pay", f.client), json!({})).await;
    r.assert_problem(409);
    assert_eq!(r.json["type"], "/problems/nothing-to-pay");
    // A form post is sent straight to the checkout page.
    let g = fixture(json!({ "payments": "native" })).await;
    let form = g.form(&format!("{}/pay", g.client), &[]).await;
    assert_eq!(form.status, 303);
    assert!(form.header("location").unwrap().contains("/_dev/checkout?s="));
    let disabled = fixture(json!({ "payments": "disabled" })).await;
    disabled.post(&format!("{}/pay", disabled.client), json!({})).await.assert_problem(409);
}

/// One HTTP request answered with `status` and `body`; returns what was asked.
async fn capture_one(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len || n == 0 {
                    break;
                }
            }
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        sock.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf).to_string()
    });
    (base, handle)
}

#[tokio::test]
async fn the_stripe_adapter_creates_a_checkout_session_naming_company_and_inspection() {
    use portal_shared::checkout::{CheckoutRequest, Provider};
    let req = CheckoutRequest {
        company_id: portal_shared::ids::CompanyId::new(),
        inspection_id: portal_shared::ids::InspectionId::new(),
        amount_cents: 45000,
        currency: portal_shared::money::Currency::USD,
        description: "Inspection at 12 Elm St".into(),
        customer_email: Some("jane@example.com".into()),
        success_url: "https://portal.test/p/x".into(),
        cancel_url: "https://portal.test/p/x".into(),
        idempotency_key: "k-1".into(),
    };
    let (base, seen) =
        capture_one(200, r#"{"id": "cs_test_1", "url": "https://checkout.stripe.com/c/pay/cs_test_1"}"#).await;
    let stripe = Provider::Stripe {
        api_base: base,
        secret_key: portal_shared::secrets::Secret::new("sk_test_123"),
        http: reqwest::Client::new(),
    };
    let session = stripe.create(&req).await.unwrap();
    assert_eq!(session.url, "https://checkout.stripe.com/c/pay/cs_test_1");
    let raw = seen.await.unwrap();
    assert!(raw.starts_with("POST /v1/checkout/sessions "), "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("authorization: bearer sk_test_123"));
    assert!(lower.contains("idempotency-key: k-1"));
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "45000");
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert_eq!(form["metadata[inspection_id]"], req.inspection_id.to_string());
    assert_eq!(form["payment_intent_data[metadata][company_id]"], req.company_id.to_string());
    assert_eq!(form["payment_intent_data[metadata][inspection_id]"], req.inspection_id.to_string());

    let (base, _) = capture_one(400, r#"{"error": {"message": "Invalid currency"}}"#).await;
    let stripe = Provider::Stripe {
        api_base: base,
        secret_key: portal_shared::secrets::Secret::new("sk"),
        http: reqwest::Client::new(),
    };
    let err = stripe.create(&req).await.unwrap_err();
    assert!(err.to_string().contains("Invalid currency") && err.to_string().contains("400"), "{err}");
}
