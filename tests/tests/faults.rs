//! A dependency that stops answering, as the field sees it: DynamoDB Local is paused (SIGSTOP) for
//! longer than the functions' timeout while requests are in flight. Every request must answer
//! `503` problem+json with `Retry-After` before its function's `Timeout` (from template.yaml, which
//! the local gateway applies like Lambda), nothing may be half-written, and after the pause the
//! same requests succeed once.
//!
//! The same pause during the scheduled job: it gives up in bounded time, reports failure, and the
//! next run publishes and queues everything exactly once. moto (SES, S3) paused while documents are
//! published and while an upload is completed: bounded answers, nothing half-written, nothing lost.
//!
//! The one test of this file runs alone in its process: it pauses the DynamoDB Local every test
//! of this process would use.

use std::time::{Duration, Instant};

use portal_infra::template::Template;
use portal_shared::adapters::stripe::signature::sign;
use portal_tests::{fixture, inspection_body, Fixture, Reply, TEST_PDF, WEBHOOK_SECRET};
use serde_json::{json, Value};

/// Resumes the paused process whatever happens to the test.
struct Paused(i32);

impl Paused {
    fn stop(pid: i32) -> Self {
        signal(pid, "STOP");
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
    assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
}

fn dynamodb_pid() -> i32 {
    std::env::var("DYNAMODB_LOCAL_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("DYNAMODB_LOCAL_PID is not set: scripts/test exports the emulator's process id")
}

/// A signed `payment_intent.succeeded` for the fixture's inspection, as Stripe sends it.
fn payment(f: &Fixture, amount: i64) -> String {
    let mut intent: Value = serde_json::from_str(include_str!("../fixtures/stripe/payment_intent.json")).unwrap();
    let id = format!("pi_{}", ulid::Ulid::new());
    intent["id"] = json!(id);
    intent["amount"] = json!(amount);
    intent["amount_received"] = json!(amount);
    intent["status"] = json!("succeeded");
    intent["latest_charge"] = json!(format!("ch_{}", &id[3..]));
    intent["metadata"] =
        json!({ "company_id": f.company_id.to_string(), "inspection_id": f.inspection_id.to_string() });
    let event = json!({
        "id": format!("evt_{}", ulid::Ulid::new()), "object": "event", "api_version": "2024-06-20",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(), "data": { "object": intent },
        "livemode": false, "pending_webhooks": 1, "type": "payment_intent.succeeded",
    });
    serde_json::to_string_pretty(&event).unwrap()
}

async fn webhook(f: &Fixture, body: &str) -> Reply {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = format!("t={t},v1={}", sign(WEBHOOK_SECRET, t, body.as_bytes()));
    let req = f
        .app
        .http
        .post(f.app.url("/webhooks/payments"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body.to_owned());
    f.app.send(req).await
}

async fn create(f: &Fixture) -> Reply {
    let mut body = inspection_body();
    body["notify"] = json!(false);
    f.app.request("POST", "/staff/inspections", Some(&f.key), Some(body)).await
}

async fn list_count(f: &Fixture) -> usize {
    let r = f.app.request("GET", "/staff/inspections?limit=200", Some(&f.key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["items"].as_array().expect("items").len()
}

async fn timed(fut: std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + '_>>) -> (Reply, Duration) {
    let started = Instant::now();
    let r = fut.await;
    (r, started.elapsed())
}

#[tokio::test]
async fn a_paused_dynamodb_gets_503_within_the_timeout_and_changes_nothing() {
    Box::pin(paused_dynamodb()).await;
    Box::pin(paused_dynamodb_during_the_scheduled_job()).await;
    Box::pin(paused_mail_service_during_publishing()).await;
    Box::pin(paused_storage_during_completion()).await;
}

/// S3 (moto) stops answering while staff ask for an upload to be completed: the answer is a 503
/// with Retry-After inside the function's timeout and the document is left as it was; afterwards
/// the same request completes it once (one file version).
async fn paused_storage_during_completion() {
    let f = fixture(json!({})).await;
    let body = json!({ "kind": "invoice", "title": "Invoice" });
    let (doc, _) = f.app.put_document(&f.key, &f.inspection_id.to_string(), body, TEST_PDF, "application/pdf").await;
    let limit = Duration::from_secs(Template::repository().unwrap().function_timeout("StaffApiFunction"));
    let before = f.inspection().await;

    let paused = Paused::stop(moto_pid());
    let started = Instant::now();
    let r = f.app.complete_upload(&f.key, &doc).await;
    let took = started.elapsed();
    drop(paused);
    r.assert_problem(503);
    assert!(r.header("retry-after").is_some());
    assert!(took < limit, "answered after {took:?}; the timeout is {limit:?}");
    let after = f.inspection().await;
    assert_eq!(after.revision, before.revision, "nothing was written");

    let r = f.app.complete_upload(&f.key, &doc).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json["uploaded"].as_bool(), r.json["file_version"].as_u64()), (Some(true), Some(1)));
    let again = f.app.complete_upload(&f.key, &doc).await;
    assert_eq!(again.json["file_version"], 1, "the same version completes once");
}

fn moto_pid() -> i32 {
    std::env::var("MOTO_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("MOTO_PID is not set: scripts/test exports the emulator's process id")
}

/// SES (moto) stops answering while documents are published and the outbox runs. Publishing does
/// not wait for email (the outbox does), so it succeeds; the job's sends time out in bounded time
/// and go back to the outbox; after the pause every recipient gets the email. A send that reached
/// SES before it stopped answering may also arrive (SES has no idempotency key: at least once), but
/// the SDK never repeats a send on its own: at most one extra copy per outbox attempt.
async fn paused_mail_service_during_publishing() {
    let f = fixture(json!({})).await;
    let body = json!({ "kind": "invoice", "title": "Invoice" });
    let (doc, _) = f.app.put_document(&f.key, &f.inspection_id.to_string(), body, TEST_PDF, "application/pdf").await;
    assert_eq!(f.app.complete_upload(&f.key, &doc).await.status, 200);
    let job_timeout = Duration::from_secs(Template::repository().unwrap().function_timeout("PublishFunction"));

    let paused = Paused::stop(moto_pid());
    let r = f.app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&f.key), None).await;
    assert_eq!(r.status, 200, "publishing does not wait for email: {}", r.text);
    let started = Instant::now();
    let mut attempted = 0;
    for _ in 0..100 {
        // The outbox is an index: the queued emails show a moment after the publish.
        let report = f.app.job_at(time::OffsetDateTime::now_utc()).await;
        assert_eq!(report.emails.sent, 0, "{report:?}");
        attempted += report.emails.failed;
        if attempted >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    drop(paused);
    assert_eq!(attempted, 2, "both sends failed and went back to the outbox");
    assert!(took < job_timeout, "the job gave up after {took:?}; its timeout is {job_timeout:?}");
    let waiting =
        f.app.request("GET", &format!("/staff/inspections/{}/emails", f.inspection_id), Some(&f.key), None).await;
    assert!(waiting.json["items"].as_array().unwrap().iter().all(|e| e["state"] == "pending"), "{}", waiting.text);

    // After its backoff each email goes out; nothing is lost.
    let report = f.app.job_at(time::OffsetDateTime::now_utc() + time::Duration::minutes(2)).await;
    assert_eq!(report.emails.sent, 2, "{report:?}");
    for to in [&f.client_email, &f.agent_email] {
        let got = f.app.emails_to(to).await.len();
        assert!((1..=2).contains(&got), "{to}: {got} emails (one, or two if the paused send reached SES)");
    }
    let later = f.app.job_at(time::OffsetDateTime::now_utc() + time::Duration::hours(3)).await;
    assert_eq!(later.emails.sent, 0, "sent is sent");
}

/// The every-minute job while DynamoDB does not answer: it gives up in bounded time and reports
/// failure (so Lambda retries it); after the pause the next run publishes every due document once
/// and queues each email once.
async fn paused_dynamodb_during_the_scheduled_job() {
    let f = fixture(json!({})).await;
    let at = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut docs = Vec::new();
    for n in 0..3 {
        let body = json!({ "kind": "invoice", "title": format!("Invoice {n}"),
            "publish_at": portal_shared::foundation::clock::rfc3339(at) });
        let (id, _) = f.app.put_document(&f.key, &f.inspection_id.to_string(), body, TEST_PDF, "application/pdf").await;
        assert_eq!(f.app.complete_upload(&f.key, &id).await.status, 200);
        docs.push(id);
    }
    let job_timeout = Duration::from_secs(Template::repository().unwrap().function_timeout("PublishFunction"));
    let paused = Paused::stop(dynamodb_pid());
    let started = Instant::now();
    let report = f.app.job_at(at + time::Duration::seconds(1)).await;
    let took = started.elapsed();
    drop(paused);
    assert_eq!((report.status, report.published), ("error", 0), "{report:?}");
    assert!(took < job_timeout, "the job gave up after {took:?}; its timeout is {job_timeout:?}");

    let report = f.app.job_at(at + time::Duration::seconds(2)).await;
    assert_eq!((report.status, report.due.published), ("ok", 3), "{report:?}");
    for doc in &docs {
        let d = f.app.request("GET", &format!("/staff/documents/{doc}"), Some(&f.key), None).await;
        assert_eq!(d.json["published"], true);
    }
    let emails =
        f.app.request("GET", &format!("/staff/inspections/{}/emails", f.inspection_id), Some(&f.key), None).await;
    let items = emails.json["items"].as_array().unwrap();
    let mut keys: Vec<&str> = items.iter().map(|e| e["dedupe"].as_str().unwrap()).collect();
    let queued = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), queued, "each email queued once");
    assert_eq!(queued, 3 * 2, "three invoices, to the client and the buyer's agent");
}

async fn paused_dynamodb() {
    let f = fixture(json!({})).await;
    let template = Template::repository().unwrap();
    let limit = |function: &str| Duration::from_secs(template.function_timeout(function));
    let before = f.inspection().await;
    let inspections_before = list_count(&f).await;
    let payment = payment(&f, 12_500);
    let pause_for = limit("StaffApiFunction") + Duration::from_secs(3);

    let paused = Paused::stop(dynamodb_pid());
    let paused_at = Instant::now();
    let (created, view, paid) = tokio::join!(
        timed(Box::pin(create(&f))),
        timed(Box::pin(f.view(&f.client))),
        timed(Box::pin(webhook(&f, &payment)))
    );
    for ((r, took), function) in
        [(&created, "StaffApiFunction"), (&view, "LinkFunction"), (&paid, "PaymentWebhookFunction")]
    {
        r.assert_problem(503);
        let retry_after: u64 = r.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
        assert!(retry_after >= 1, "{function}: Retry-After {retry_after}");
        assert!(*took < limit(function), "{function} answered after {took:?}, its timeout is {:?}", limit(function));
    }
    // Hold the pause past the functions' timeout, then let DynamoDB answer again.
    tokio::time::sleep(pause_for.saturating_sub(paused_at.elapsed())).await;
    drop(paused);

    // Nothing of the failed requests happened.
    let after = f.inspection().await;
    assert_eq!(after.revision, before.revision, "the inspection was not written");
    assert_eq!(after.balance(), before.balance(), "no money was applied");
    assert_eq!(list_count(&f).await, inspections_before, "no inspection was created");

    // The same requests, retried, succeed once.
    let r = create(&f).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(f.view(&f.client).await.status, 200);
    let r = webhook(&f, &payment).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = webhook(&f, &payment).await;
    assert_eq!(r.status, 200, "a repeat is acknowledged: {}", r.text);
    assert_eq!(f.inspection().await.balance().get(), before.balance().get() - 12_500, "applied exactly once");
    // The list is an index (eventually consistent, as on AWS): give it a moment.
    let mut listed = 0;
    for _ in 0..20 {
        listed = list_count(&f).await;
        if listed == inspections_before + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed, inspections_before + 1);
}
