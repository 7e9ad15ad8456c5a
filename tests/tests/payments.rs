//! Payment webhooks and Pay Now through the local gateway, with Stripe's own object shapes
//! (`tests/fixtures/stripe`), pretty-printed and signed the way Stripe delivers them: signatures,
//! Checkout Session and payment-intent events counting once, money bound to what this server
//! asked for, refunds and disputes in any order with or without metadata, storms of concurrent
//! duplicated deliveries, unmatched money, "report ready" emails, and Pay Now through the dev
//! provider on its own origin.

use futures::StreamExt;
use portal_shared::adapters::stripe::signature::sign;
use portal_shared::foundation::metrics::Metric;
use portal_tests::stripe::*;
use portal_tests::{fixture, fixture_in, spawn_app_with, Fixture, STRIPE_KEY, WEBHOOK_SECRET};
use serde_json::{json, Value};

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

async fn unmatched(f: &Fixture) -> Vec<Value> {
    let mine = f.app.request("GET", "/staff/payments/unmatched", Some(&f.key), None).await;
    let unknown = f.app.admin("GET", "/admin/payments/unmatched?limit=100", None).await;
    let mut all = mine.json["items"].as_array().cloned().unwrap_or_default();
    all.extend(unknown.json["items"].as_array().cloned().unwrap_or_default());
    all
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_malformed_bodies_write_nothing() {
    let f = fixture(json!({})).await;
    let before = items(&f).await;
    let body = serde_json::to_string_pretty(&paid(&f, &evt_id(), "pi_1", 45000)).unwrap();
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
    // The signature covers the exact bytes: the same event compacted is another body.
    let compact = serde_json::to_string(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    deliver_raw(&f, &compact, Some(format!("t={t},v1={good}"))).await.assert_problem(400);
    // Correctly signed but not an event, or an event missing what it needs.
    for bad in ["{not json", r#"{"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi"}}}"#]
    {
        deliver_raw(&f, bad, Some(stripe_signature(bad))).await.assert_problem(400);
    }
    // Unknown types are acknowledged and ignored: a full customer object.
    let r = deliver(&f, &stripe_event(&evt_id(), "customer.created", stripe_object("customer"))).await;
    assert_eq!(r.json["status"], "ignored");
    assert_eq!(items(&f).await, before, "nothing was written");
    assert_eq!(balance(&f).await, 45000);

    // A rotated-out secret still in the list is accepted (rotation).
    let old = format!("t={t},v1={}", sign("whsec_old_rotated", t, body.as_bytes()));
    assert_eq!(deliver_raw(&f, &body, Some(old)).await.status, 200);
    assert_eq!(balance(&f).await, 0);
}

#[tokio::test]
async fn checkout_session_events_apply_the_payment_like_payment_intent_events() {
    // A card payment: only Checkout Session events, as an endpoint subscribed to them receives.
    let f = fixture(json!({ "payments": "native", "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    let r = deliver(
        &f,
        &event(&f, &evt_id(), "checkout.session.completed", session("cs_test_1", "pi_card", 45000, "paid", names(&f))),
    )
    .await;
    assert_eq!(r.json["status"], "applied", "{}", r.text);
    assert!(r.round_trips() <= 2, "webhook budget: {}", r.round_trips());
    assert_eq!(balance(&f).await, 0);
    assert_eq!(open_status(&f, &doc).await, 303, "the report unlocked");

    // A bank payment (ACH): completed but unpaid is processing, then settles or fails.
    for (outcome, state, bal) in [("async_payment_succeeded", "paid", 0), ("async_payment_failed", "due", 45000)] {
        let g = fixture(json!({ "payments": "native" })).await;
        let pi = format!("pi_ach_{outcome}");
        let unpaid = session("cs_test_ach", &pi, 45000, "unpaid", names(&g));
        deliver(&g, &event(&g, &evt_id(), "checkout.session.completed", unpaid.clone())).await;
        let p = &g.view(&g.client).await.json["payment"];
        assert_eq!(p["state"], "processing", "{p}");
        let settled = with(unpaid, json!({ "payment_status": if state == "paid" { "paid" } else { "unpaid" } }));
        deliver(&g, &event(&g, &evt_id(), &format!("checkout.session.{outcome}"), settled)).await;
        assert_eq!(g.view(&g.client).await.json["payment"]["state"], state, "{outcome}");
        assert_eq!(balance(&g).await, bal);
    }
}

#[tokio::test]
async fn payment_intent_events_processing_failed_and_succeeded() {
    let f = fixture(json!({ "payments": "native" })).await;
    deliver(&f, &event(&f, &evt_id(), "payment_intent.processing", intent("pi_bank", 45000, "processing", names(&f))))
        .await;
    assert_eq!(f.view(&f.client).await.json["payment"]["state"], "processing");
    let failed = with(
        intent("pi_bank", 45000, "requires_payment_method", names(&f)),
        json!({
        "last_payment_error": { "code": "payment_intent_payment_attempt_failed", "message": "The bank declined." } }),
    );
    deliver(&f, &event(&f, &evt_id(), "payment_intent.payment_failed", failed)).await;
    assert_eq!(f.view(&f.client).await.json["payment"]["state"], "due");
    deliver(&f, &paid(&f, &evt_id(), "pi_card", 45000)).await;
    assert_eq!(f.view(&f.client).await.json["payment"]["state"], "paid");
}

#[tokio::test]
async fn the_same_money_as_a_session_event_and_an_intent_event_counts_once_in_both_orders() {
    for session_first in [true, false] {
        let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
        let doc = published_report(&f).await;
        let s = event(
            &f,
            &evt_id(),
            "checkout.session.completed",
            session("cs_test_x", "pi_same", 20000, "paid", names(&f)),
        );
        let i = paid(&f, &evt_id(), "pi_same", 20000);
        let (first, second) = if session_first { (s, i) } else { (i, s) };
        assert_eq!(deliver(&f, &first).await.json["status"], "applied");
        assert_eq!(deliver(&f, &second).await.json["status"], "already_known", "session first: {session_first}");
        assert_eq!(balance(&f).await, 25000, "counted once");
        assert_eq!(f.inspection().await.ledger.len(), 1);
        assert_eq!(open_status(&f, &doc).await, 403, "a partial payment releases nothing");
    }
}

#[tokio::test]
async fn refunds_and_disputes_before_their_payment_without_metadata_wait_for_it() {
    let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    // Stripe's charge and dispute objects carry no metadata.
    let refund = stripe_event(&evt_id(), "charge.refunded", refunded_charge("ch_early", "pi_early", 45000, &[5000]));
    let r = deliver(&f, &refund).await;
    assert_eq!(r.json["status"], "parked", "{}", r.text);
    assert!(r.round_trips() <= 2);
    let parked = unmatched(&f).await;
    assert!(
        parked
            .iter()
            .any(|u| u["event_type"] == "charge.refunded" && u["reason"].as_str().unwrap().contains("waiting")),
        "visible to staff while it waits: {parked:?}"
    );
    assert_eq!(deliver(&f, &refund).await.json["status"], "duplicate");
    let opened = stripe_event(
        &evt_id(),
        "charge.dispute.created",
        dispute("dp_early", "ch_early", "pi_early", 40000, "needs_response"),
    );
    assert_eq!(deliver(&f, &opened).await.json["status"], "parked");
    assert_eq!(balance(&f).await, 45000, "nothing applied yet");

    // The payment arrives: both apply with it, in the same write.
    let p = deliver(&f, &paid(&f, &evt_id(), "pi_early", 45000)).await;
    assert_eq!(p.json["status"], "applied");
    assert!(p.round_trips() <= 2, "payment path: {}", p.round_trips());
    assert_eq!(balance(&f).await, 45000, "paid 45000, refunded 5000, 40000 disputed");
    assert!(unmatched(&f).await.is_empty(), "no money stays unmatched once its payment arrived");
    assert_eq!(open_status(&f, &doc).await, 403, "a dispute re-locks");

    // Later events find the payment through its intent: 3 round trips at worst.
    let won =
        stripe_event(&evt_id(), "charge.dispute.closed", dispute("dp_early", "ch_early", "pi_early", 40000, "won"));
    let r = deliver(&f, &won).await;
    assert_eq!(r.json["status"], "applied");
    assert!(r.round_trips() <= 3, "worst path: {}", r.round_trips());
    assert_eq!(balance(&f).await, 5000);
    let more =
        stripe_event(&evt_id(), "charge.refunded", refunded_charge("ch_early", "pi_early", 45000, &[5000, 10000]));
    deliver(&f, &more).await;
    assert_eq!(balance(&f).await, 15000, "cumulative amount_refunded");
}

#[tokio::test]
async fn a_parked_refund_in_another_currency_stays_with_staff_when_its_payment_arrives() {
    let f = fixture(json!({})).await;
    let cad = with(refunded_charge("ch_cad", "pi_cad_paid", 45000, &[5000]), json!({ "currency": "cad" }));
    assert_eq!(deliver(&f, &stripe_event(&evt_id(), "charge.refunded", cad)).await.json["status"], "parked");
    assert_eq!(deliver(&f, &paid(&f, &evt_id(), "pi_cad_paid", 45000)).await.json["status"], "applied");
    assert_eq!(balance(&f).await, 0, "the refund in another currency is not applied");
    let left = unmatched(&f).await;
    assert_eq!(left.len(), 1, "and not dropped either: {left:?}");
    assert_eq!(left[0]["event_type"], "charge.refunded");
}

#[tokio::test]
async fn a_dispute_lost_keeps_the_money_out() {
    let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
    deliver(&f, &paid(&f, &evt_id(), "pi_lost", 45000)).await;
    for (kind, status) in [("charge.dispute.created", "needs_response"), ("charge.dispute.closed", "lost")] {
        let r =
            deliver(&f, &stripe_event(&evt_id(), kind, dispute("dp_lost", "ch_lost", "pi_lost", 45000, status))).await;
        assert_eq!(r.json["status"], "applied", "{kind}: {}", r.text);
    }
    assert_eq!(balance(&f).await, 45000);
}

#[tokio::test]
async fn money_in_another_currency_or_mode_or_without_currency_is_parked_and_unlocks_nothing() {
    let f = fixture(json!({ "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    let cad = event(
        &f,
        &evt_id(),
        "payment_intent.succeeded",
        with(intent("pi_cad", 45000, "succeeded", names(&f)), json!({ "currency": "cad" })),
    );
    let mut live = paid(&f, &evt_id(), "pi_live", 45000);
    live["livemode"] = json!(true);
    let mut no_currency = paid(&f, &evt_id(), "pi_nocur", 45000);
    no_currency["data"]["object"].as_object_mut().unwrap().remove("currency");
    let mut no_mode = paid(&f, &evt_id(), "pi_nomode", 45000);
    no_mode.as_object_mut().unwrap().remove("livemode");
    no_mode["data"]["object"].as_object_mut().unwrap().remove("livemode");
    for (e, why) in [(cad, "currency"), (live, "livemode"), (no_currency, "currency"), (no_mode, "livemode")] {
        let r = deliver(&f, &e).await;
        assert_eq!(r.json["status"], "unmatched", "{why}: {}", r.text);
    }
    assert_eq!(balance(&f).await, 45000);
    assert_eq!(open_status(&f, &doc).await, 403, "the report stays locked");
    let reasons: Vec<String> = unmatched(&f).await.iter().map(|u| u["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons.iter().filter(|r| r.contains("currency")).count(), 2, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| r.contains("livemode")).count(), 2, "{reasons:?}");
}

#[tokio::test]
async fn a_storm_of_concurrent_shuffled_duplicated_deliveries_is_all_acknowledged_and_exact() {
    let f = fixture(json!({})).await;
    // 10 payments of 1000, each seen as processing, succeeded and a completed session (the same
    // money three ways), and a refund of 100 without metadata: 40 events.
    let mut events = Vec::new();
    for k in 0..10 {
        let pi = format!("pi_storm_{k}");
        events.push(event(&f, &evt_id(), "payment_intent.processing", intent(&pi, 1000, "processing", names(&f))));
        events.push(paid(&f, &evt_id(), &pi, 1000));
        events.push(event(
            &f,
            &evt_id(),
            "checkout.session.completed",
            session(&format!("cs_storm_{k}"), &pi, 1000, "paid", names(&f)),
        ));
        events.push(stripe_event(
            &evt_id(),
            "charge.refunded",
            refunded_charge(&format!("ch_storm_{k}"), &pi, 1000, &[100]),
        ));
    }
    assert_eq!(events.len(), 40);
    // 25 copies of each, shuffled, 50 at a time.
    let mut deliveries: Vec<String> =
        events.iter().flat_map(|e| std::iter::repeat_n(serde_json::to_string_pretty(e).unwrap(), 25)).collect();
    deliveries.sort_by_cached_key(|_| ulid::Ulid::new().random());
    let statuses: Vec<u16> = futures::stream::iter(deliveries.iter())
        .map(|body| async { deliver_raw(&f, body, Some(stripe_signature(body))).await.status })
        .buffer_unordered(50)
        .collect()
        .await;
    let refused: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(refused.is_empty(), "{} of {} deliveries refused: {refused:?}", refused.len(), statuses.len());
    // Whatever a busy moment queued (acknowledged, not applied yet), the job applies.
    let report = f.app.job_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!(report.payments.left, 0, "{:?}", report.payments);
    let i = f.inspection().await;
    assert_eq!((i.balance().get(), i.pending().get()), (45000 - 10 * 1000 + 10 * 100, 0));
    let events_recorded =
        f.app.all_items().await.into_iter().filter(|i| i["PK"].as_s().unwrap().starts_with("EVENT#")).count();
    assert_eq!(events_recorded, 40, "each event recorded once");
    assert!(unmatched(&f).await.is_empty(), "refunds that came first were applied with their payments");
}

#[tokio::test]
async fn a_payment_received_while_its_inspection_is_busy_shows_as_processing_until_the_job_applies_it() {
    let f = fixture(json!({})).await;
    let e = paid(&f, &evt_id(), "pi_busy", 45000);
    let body = serde_json::to_string_pretty(&e).unwrap();
    // What a delivery does when its inspection keeps changing past its budget: the verified event
    // is stored for the job (twice here: a provider's retry of the same delivery).
    let parsed = match portal_shared::domain::payments::parse(body.as_bytes()).unwrap() {
        portal_shared::domain::payments::ParsedEvent::Money(m) => *m,
        other => panic!("{other:?}"),
    };
    for _ in 0..2 {
        portal_shared::usecases::payment_events::queue(&f.app.store, &parsed, body.as_bytes()).await.unwrap();
    }
    let view = f.view(&f.client).await;
    assert_eq!(view.json["payment"]["state"], "processing", "{}", view.text);
    assert!(view.json["payment"]["action"].is_null(), "no second Pay Now meanwhile");
    assert_eq!(balance(&f).await, 45000, "not applied yet");
    // The page does not ask for the money again: the locked report says it is being applied.
    let doc = json!({ "kind": "inspection_report", "title": "Report" });
    f.app.published_document(&f.key, &f.inspection_id.to_string(), doc).await;
    let page = f.app.send(f.app.http.get(f.app.url(&f.client)).header("accept", "text/html")).await;
    assert!(page.text.contains("Payment processing: it opens once your payment is applied"), "{}", page.text);
    assert!(!page.text.contains("pay the balance"), "{}", page.text);

    let report = f.app.job_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!((report.payments.applied, report.payments.left), (1, 0), "{:?}", report.payments);
    assert_eq!(balance(&f).await, 0);
    let view = f.view(&f.client).await;
    assert_eq!(view.json["payment"]["state"], "paid", "{}", view.text);
    // Applied once: a later delivery of the same event is a duplicate, and the queue is empty.
    assert_eq!(deliver(&f, &e).await.json["status"], "duplicate");
    let again = f.app.job_at(time::OffsetDateTime::now_utc()).await;
    assert_eq!((again.payments.applied, again.payments.left), (0, 0));
    let queued =
        f.app.all_items().await.into_iter().filter(|i| i["PK"].as_s().unwrap().starts_with("PAYQUEUE#")).count();
    assert_eq!(queued, 0);
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
    let dispute =
        |kind: &str, status: &str| stripe_event(&evt_id(), kind, dispute("dp_1", "ch_d", "pi_d", 45000, status));
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
    assert_eq!(f.app.metric(Metric::PaymentsParked), 1, "counted for the PaymentsParked alarm");
    assert_eq!(deliver(&f, &crossed).await.json["status"], "duplicate");
    let orphan = stripe_event(&evt_id(), "payment_intent.succeeded", intent("pi_orphan", 777, "succeeded", json!({})));
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
    // A partial payment releases nothing yet. The job runs until the outbox (an index, a moment
    // behind, as on AWS) is quiet.
    deliver(&f, &paid(&f, &evt_id(), "pi_part", 20000)).await;
    let sent = f.app.run_jobs().await.sent;
    assert_eq!(sent, 2, "only the two \"published\" emails: the partial payment released nothing");
    deliver(&f, &paid(&f, &evt_id(), "pi_rest", 25000)).await;
    assert_eq!(f.app.run_jobs().await.sent, 2, "the two \"report ready\" emails");
    let again = f.app.job_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1)).await;
    assert_eq!(again.emails.sent, 0, "nothing is sent twice");
    for (email, link) in [(&f.client_email, &f.client), (&f.agent_email, &f.agent)] {
        let mails: Vec<_> =
            f.app.emails_to(email).await.into_iter().filter(|m| m.subject.contains("is open")).collect();
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

/// The provider's recorded API calls and webhook deliveries.
async fn provider_log(f: &Fixture) -> Value {
    f.app.send(f.app.http.get(format!("{}/_dev/requests", f.app.provider.origin))).await.json
}

async fn wait_for_payment_state(f: &Fixture, want: &str) {
    for _ in 0..100 {
        if f.view(&f.client).await.json["payment"]["state"] == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("payment never became {want}: {}", provider_log(f).await);
}

#[tokio::test]
async fn pay_now_goes_to_the_provider_on_its_own_origin_and_back_without_the_token() {
    let f = fixture(json!({ "payments": "native", "release_defaults": { "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    let token = f.client.trim_start_matches("/p/").to_owned();
    let provider = f.app.provider.origin.clone();
    assert_ne!(provider, f.app.base, "the provider is another origin");

    // The portal page lets its Pay Now form end at the provider, and nowhere else.
    let page = f.app.send(f.app.http.get(f.app.url(&f.client))).await;
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert!(csp.contains(&format!("form-action 'self' {provider};")), "{csp}");
    assert!(page.text.contains(">Pay Now</button>"));

    f.post(&format!("{}/pay", f.agent), json!({})).await.assert_problem(403);
    let form = f.form(&format!("{}/pay", f.client), &[]).await;
    assert_eq!(form.status, 303, "{}", form.text);
    assert!(form.round_trips() <= 2, "Pay Now: {}", form.round_trips());
    let checkout = form.header("location").unwrap().to_owned();
    assert!(checkout.starts_with(&format!("{provider}/c/pay/cs_test_")), "{checkout}");
    let cookie = form.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.starts_with("portal_checkout_return=/p/")
            && cookie.contains("Path=/checkout/return")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // Nothing the provider was sent carries the portal token.
    let log = provider_log(&f).await;
    let sent = log["requests"].to_string();
    assert!(!sent.contains(&token), "the token reached the provider: {sent}");
    let fields = &log["requests"][0]["form"];
    let field = |name: &str| {
        fields.as_array().unwrap().iter().find(|p| p[0] == name).map(|p| p[1].as_str().unwrap().to_owned()).unwrap()
    };
    assert_eq!(field("success_url"), f.app.url("/checkout/return?checkout=success"));
    assert_eq!(field("cancel_url"), f.app.url("/checkout/return?checkout=canceled"));
    assert_eq!(field("metadata[inspection_id]"), f.inspection_id.to_string());
    assert!(field("payment_intent_data[metadata][portal_checkout_id]").starts_with("ck_"));
    assert_eq!(field("line_items[0][price_data][unit_amount]"), "45000");

    // A double click: the same session.
    let again = f.form(&format!("{}/pay", f.client), &[]).await;
    assert_eq!(again.header("location"), Some(checkout.as_str()));

    // Back before the webhook: the portal says so, announced (role="status"), with "Check again"
    // — and never reloads itself (WCAG 2.2.1); a cancel says so too.
    let early = f.app.send(f.app.http.get(f.app.url(&format!("{}?checkout=success", f.client)))).await;
    assert!(early.text.contains("confirming your payment"), "{}", early.text);
    assert!(early.text.contains("role=\"status\"") && early.text.contains(">Check again</a>"), "{}", early.text);
    assert!(!early.text.contains("http-equiv"), "no automatic reload");
    let canceled = f.app.send(f.app.http.get(f.app.url(&format!("{}?checkout=canceled", f.client)))).await;
    assert!(canceled.text.contains("Payment was not completed") && !canceled.text.contains("http-equiv"));

    // Pay at the provider; it sends the client back at once and the events follow.
    let page = f.app.send(f.app.http.get(&checkout)).await;
    assert!(page.text.contains("Pay $450.00"), "{}", page.text);
    let pay = f.app.send(f.app.http.post(&checkout).form(&[("action", "card")])).await;
    assert_eq!(pay.status, 303);
    let back = pay.header("location").unwrap().to_owned();
    assert_eq!(back, f.app.url("/checkout/return?checkout=success"));
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let ret = f.app.send(f.app.http.get(&back).header("cookie", &cookie_pair)).await;
    assert_eq!(ret.status, 303);
    assert_eq!(ret.header("location"), Some(format!("{}?checkout=success", f.client).as_str()), "back to the portal");
    assert!(ret.header("set-cookie").unwrap().contains("Max-Age=0"), "the return cookie is used once");
    let without = f.app.send(f.app.http.get(&back)).await;
    assert_eq!(without.status, 200, "no cookie: a page saying where to go");
    assert!(without.text.contains("link in your email"));

    wait_for_payment_state(&f, "paid").await;
    assert_eq!(open_status(&f, &doc).await, 303, "the report unlocked");
    let page = f.app.send(f.app.http.get(f.app.url(&format!("{}?checkout=success", f.client)))).await;
    assert!(page.text.contains("your payment was received"), "{}", page.text);
    // The payment was bound to the recorded checkout; the intent pointer and ledger count it once.
    let checkouts: Vec<_> =
        f.app.all_items().await.into_iter().filter(|i| i["PK"].as_s().unwrap().starts_with("CHECKOUT#")).collect();
    assert_eq!(checkouts.len(), 1);
    assert!(checkouts[0]["payment_intent"].as_s().unwrap().starts_with("pi_"), "the intent is recorded once known");
    assert_eq!(f.inspection().await.ledger.len(), 1);
    let log = provider_log(&f).await;
    assert!(log["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == 200), "{log}");
    let r = f.post(&format!("{}/pay", f.client), json!({})).await;
    r.assert_problem(409);
    assert_eq!(r.json["type"], "/problems/nothing-to-pay");
}

#[tokio::test]
async fn a_bank_payment_through_the_provider_processes_then_settles() {
    let f = fixture(json!({ "payments": "native" })).await;
    let r = f.post(&format!("{}/pay", f.client), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.json["checkout_url"].as_str().unwrap().to_owned();
    f.app.send(f.app.http.post(&url).form(&[("action", "bank")])).await;
    wait_for_payment_state(&f, "processing").await;
    let page = f.app.send(f.app.http.get(&url)).await;
    assert!(page.text.contains("Settle the bank payment"), "{}", page.text);
    f.app.send(f.app.http.post(&url).form(&[("action", "settle")])).await;
    wait_for_payment_state(&f, "paid").await;
    assert_eq!(balance(&f).await, 0);
}

#[tokio::test]
async fn without_a_payment_provider_the_portal_says_how_to_pay_and_offers_no_pay_now() {
    let f = fixture_in(spawn_app_with(false).await, json!({ "payments": "native" })).await;
    let p = f.view(&f.client).await.json["payment"].clone();
    assert_eq!((p["state"].as_str(), p["action"].as_str()), (Some("due"), Some("learn_more")), "{p}");
    let page = f.app.send(f.app.http.get(f.app.url(&f.client))).await;
    assert!(!page.text.contains("Pay Now"), "no dead button");
    assert!(page.text.contains("Learn More") && page.text.contains("contact the inspection company"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self';"), "no provider origin allowed: {csp}");
    let r = f.post(&format!("{}/pay", f.client), json!({})).await;
    r.assert_problem(409);
    assert_eq!(r.json["type"], "/problems/nothing-to-pay");
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
async fn the_stripe_adapter_creates_a_checkout_session_naming_company_inspection_and_checkout() {
    use portal_shared::adapters::stripe::checkout::{CheckoutRequest, Provider};
    use portal_shared::foundation::config::StripeConfig;
    let req = CheckoutRequest {
        checkout_id: "ck_0123456789abcdef".into(),
        company_id: portal_shared::foundation::ids::CompanyId::new(),
        inspection_id: portal_shared::foundation::ids::InspectionId::new(),
        amount_cents: 45000,
        currency: portal_shared::foundation::money::Currency::USD,
        description: "Inspection at 12 Elm St".into(),
        customer_email: Some("jane@example.com".into()),
        success_url: "https://portal.test/checkout/return?checkout=success".into(),
        cancel_url: "https://portal.test/checkout/return?checkout=canceled".into(),
        // An hour from now, as Pay Now asks (Stripe wants it 30 minutes to 24 hours ahead).
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        idempotency_key: "ck_0123456789abcdef".into(),
    };
    // The key is read from Secrets Manager (moto), as on AWS.
    let sdk = portal_tests::sdk_config().await;
    let prefix = format!("adapter-{}", ulid::Ulid::new());
    let arns = portal_infra::resources::put_secrets(&sdk, &prefix, &[("STRIPE_SECRET_KEY_SECRET", STRIPE_KEY.into())])
        .await
        .unwrap();
    let secrets = std::sync::Arc::new(portal_shared::adapters::secrets_manager::Secrets::new(
        &sdk,
        std::time::Duration::from_secs(60),
    ));
    let stripe = |base: String| {
        Provider::new(
            StripeConfig {
                secret_key: arns[0].1.clone(),
                api_base: base,
                checkout_origin: "https://checkout.stripe.com".into(),
            },
            secrets.clone(),
        )
    };
    let (base, seen) = capture_one(
        200,
        r#"{"id": "cs_test_1", "object": "checkout.session", "livemode": false, "url": "https://checkout.stripe.com/c/pay/cs_test_1"}"#,
    )
    .await;
    let session = stripe(base).create(&req).await.unwrap();
    assert_eq!((session.url.as_str(), session.livemode), ("https://checkout.stripe.com/c/pay/cs_test_1", false));
    let raw = seen.await.unwrap();
    assert!(raw.starts_with("POST /v1/checkout/sessions "), "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains(&format!("authorization: bearer {STRIPE_KEY}")));
    assert!(lower.contains("idempotency-key: ck_0123456789abcdef"));
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "45000");
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert_eq!(form["expires_at"], req.expires_at.to_string());
    assert_eq!(form["metadata[inspection_id]"], req.inspection_id.to_string());
    assert_eq!(form["metadata[portal_checkout_id]"], "ck_0123456789abcdef");
    assert_eq!(form["payment_intent_data[metadata][company_id]"], req.company_id.to_string());
    assert_eq!(form["payment_intent_data[metadata][inspection_id]"], req.inspection_id.to_string());
    assert_eq!(form["payment_intent_data[metadata][portal_checkout_id]"], "ck_0123456789abcdef");

    let (base, _) = capture_one(400, r#"{"error": {"message": "Invalid currency"}}"#).await;
    let err = stripe(base).create(&req).await.unwrap_err();
    assert!(err.to_string().contains("Invalid currency") && err.to_string().contains("400"), "{err}");
    // A checkout page anywhere else is refused: the portal's CSP would block it anyway.
    let (base, _) =
        capture_one(200, r#"{"id": "cs_test_2", "livemode": false, "url": "https://evil.example/c/pay/cs_test_2"}"#)
            .await;
    let err = stripe(base).create(&req).await.unwrap_err();
    assert!(err.to_string().contains("outside https://checkout.stripe.com"), "{err}");
}

#[tokio::test]
async fn rotated_secrets_are_used_once_the_cache_expires_without_a_deploy() {
    let f = fixture(json!({})).await;
    let event = |secret: &str| {
        let body =
            serde_json::to_string_pretty(&paid(&f, &evt_id(), &format!("pi_{}", ulid::Ulid::new()), 100)).unwrap();
        let t = now();
        let header = format!("t={t},v1={}", sign(secret, t, body.as_bytes()));
        (body, header)
    };
    let (body, header) = event(WEBHOOK_SECRET);
    assert_eq!(deliver_raw(&f, &body, Some(header)).await.status, 200);

    // The operator puts a new signing secret (and a new admin key) in Secrets Manager.
    f.app.rotate_secret("PAYMENT_WEBHOOK_SECRETS_SECRET", "whsec_rotated_new").await;
    f.app.rotate_secret("PLATFORM_ADMIN_KEY_SECRET", "admin-key-rotated-0123456789abcdef0123").await;
    tokio::time::sleep(std::time::Duration::from_secs_f64(portal_tests::SECRETS_CACHE_SECONDS + 0.3)).await;

    let (body, header) = event(WEBHOOK_SECRET);
    deliver_raw(&f, &body, Some(header)).await.assert_problem(400);
    let (body, header) = event("whsec_rotated_new");
    let r = deliver_raw(&f, &body, Some(header)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let company = format!("/admin/companies/{}", f.company_id);
    assert_eq!(f.app.admin("GET", &company, None).await.status, 401, "the old admin key is refused");
    let r = f.app.request("GET", &company, Some("admin-key-rotated-0123456789abcdef0123"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
