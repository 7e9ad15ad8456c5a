//! Outbound webhooks through the local gateway and the every-minute job, to a real HTTP receiver
//! on 127.0.0.1 that verifies signatures the way an integrator would (the payment webhook's own
//! verifier, Stripe's scheme): endpoints and their once-shown secrets, events written with the
//! change they report, at-least-once delivery with retries, rotation, the three-day give-up that
//! disables the endpoint and tells staff, the delivery log and redelivery, and target checks.

use std::sync::{Arc, Mutex};

use portal_shared::adapters::stripe::signature::verify;
use portal_shared::foundation::credentials::Secret;
use portal_tests::{fixture, Fixture, Reply};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An integrator's endpoint: records every request and answers the next scripted status
/// (200 once the script is used up).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver(script: &[u16]) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/portal", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.to_vec()));
    let (g, s) = (got.clone(), script.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (g, s) = (g.clone(), s.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0usize);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
                    .collect();
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                g.lock().unwrap().push(Received { headers, body });
                let status = {
                    let mut s = s.lock().unwrap();
                    if s.is_empty() {
                        200
                    } else {
                        s.remove(0)
                    }
                };
                let answer = format!("{{\"received\":{}}}", status == 200);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Receiver { url, got, script, task }
}

async fn staff(f: &Fixture, method: &str, path: &str, body: Option<Value>) -> Reply {
    f.app.request(method, path, Some(&f.key), body).await
}

/// Runs the every-minute job at `at` until it has nothing left to fan out or send by then.
async fn run(f: &Fixture, at: OffsetDateTime) -> portal_shared::usecases::outbound_webhooks::WebhookReport {
    let mut total = portal_shared::usecases::outbound_webhooks::WebhookReport::default();
    for _ in 0..100 {
        let r = f.app.job_at(at).await.webhooks;
        total.events += r.events;
        total.deliveries_created += r.deliveries_created;
        total.delivered += r.delivered;
        total.failed_attempts += r.failed_attempts;
        total.given_up += r.given_up;
        if f.app.due_work(at).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    total
}

fn verified(r: &Received, secret: &str) -> bool {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    verify(r.header("portal-signature"), r.body.as_bytes(), &[Secret::new(secret)], now, 0).is_ok()
}

async fn endpoint(f: &Fixture, url: &str, events: Value) -> (String, String) {
    let r =
        staff(f, "POST", "/staff/webhooks", Some(json!({ "url": url, "events": events, "description": "CRM" }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (r.json["id"].as_str().unwrap().to_owned(), secret)
}

async fn published_report(f: &Fixture) -> String {
    let doc = json!({ "kind": "inspection_report", "title": "Report", "template_name": "Residential Inspection" });
    f.app.published_document(&f.key, &f.inspection_id.to_string(), doc).await
}

#[tokio::test]
async fn publishing_a_report_delivers_one_signed_event_and_a_failure_is_retried_until_delivered_once() {
    let f = fixture(json!({ "release_defaults": { "require_payment": false, "require_agreement": false } })).await;
    let hook = receiver(&[500]).await;
    let (id, secret) = endpoint(&f, &hook.url, json!(["document.published"])).await;
    // The secret is shown once.
    let read = staff(&f, "GET", &format!("/staff/webhooks/{id}"), None).await;
    assert_eq!(read.status, 200);
    assert!(!read.text.contains(&secret) && read.json["secret"].is_null());
    assert!(!staff(&f, "GET", "/staff/webhooks", None).await.text.contains(&secret));

    let doc = published_report(&f).await;
    let now = OffsetDateTime::now_utc();
    let first = run(&f, now).await;
    assert_eq!((first.deliveries_created, first.failed_attempts, first.delivered), (1, 1, 0), "{first:?}");
    let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
    let entry = &log.json["items"][0];
    assert_eq!(
        (entry["status"].as_str(), entry["attempts"].as_i64(), entry["response_status"].as_i64()),
        (Some("pending"), Some(1), Some(500))
    );
    assert_eq!(entry["response_body"], "{\"received\":false}");
    assert_eq!(run(&f, now).await.delivered, 0, "not before its retry time");

    let later = run(&f, now + Duration::hours(7)).await;
    assert_eq!(later.delivered, 1, "{later:?}");
    assert_eq!(run(&f, now + Duration::hours(8)).await.delivered, 0, "delivered once");
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one failed try and one delivery");
    assert_eq!(got[0].header("portal-event-id"), got[1].header("portal-event-id"), "the same event, for dedupe");
    assert_eq!(got[0].body, got[1].body, "the same body");
    for r in &got {
        assert!(verified(r, &secret), "signature: {:?}", r.header("portal-signature"));
        assert!(!verified(r, "whsec_someone_else"));
    }
    let event = got[1].json();
    assert_eq!(event["type"], "document.published");
    assert_eq!(event["id"].as_str(), got[1].header("portal-event-id"));
    assert_eq!(event["company_id"], f.company_id.to_string());
    assert_eq!(event["data"]["document_id"], doc);
    assert_eq!(event["data"]["kind"], "inspection_report");
    for secret_thing in ["/p/", "token", "X-Amz", "http"] {
        assert!(!got[1].body.contains(secret_thing), "the payload carries {secret_thing:?}: {}", got[1].body);
    }
    let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
    let entry = &log.json["items"][0];
    assert_eq!(
        (entry["status"].as_str(), entry["attempts"].as_i64(), entry["response_status"].as_i64()),
        (Some("delivered"), Some(2), Some(200))
    );
    assert!(entry["latency_ms"].is_u64());

    // Redeliver on request: once more, the same event.
    let r = staff(
        &f,
        "POST",
        &format!("/staff/webhooks/{id}/deliveries/{}/redeliver", entry["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(run(&f, now + Duration::hours(9)).await.delivered, 1);
    assert_eq!(hook.got.lock().unwrap().len(), 3);
    drop(hook.script.lock());
}

#[tokio::test]
async fn events_follow_the_inspection_and_only_subscribed_types_are_sent() {
    let f = fixture(json!({})).await;
    let hook = receiver(&[]).await;
    let (_, secret) =
        endpoint(&f, &hook.url, json!(["agreement.signed", "payment.succeeded", "report.unlocked"])).await;
    published_report(&f).await;
    // Staff record the payment, the client signs: the report unlocks for the client.
    let pay = json!({ "amount_cents": 45000, "method": "check", "reference": "#7" });
    assert_eq!(
        staff(&f, "POST", &format!("/staff/inspections/{}/payments", f.inspection_id), Some(pay)).await.status,
        201
    );
    assert_eq!(f.post(&format!("{}/agreement", f.client), json!({ "typed_name": "Jane Client" })).await.status, 200);
    run(&f, OffsetDateTime::now_utc()).await;
    let got = hook.got.lock().unwrap().clone();
    let types: Vec<String> = got.iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types.len(), 3, "{types:?}");
    for t in ["payment.succeeded", "agreement.signed", "report.unlocked"] {
        assert_eq!(types.iter().filter(|x| *x == t).count(), 1, "{t} once in {types:?}");
    }
    assert!(got.iter().all(|r| verified(r, &secret)));
    let paid = got.iter().map(Received::json).find(|e| e["type"] == "payment.succeeded").unwrap();
    assert_eq!((paid["data"]["amount_cents"].as_i64(), paid["data"]["balance_cents"].as_i64()), (Some(45000), Some(0)));
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_day() {
    let f = fixture(json!({})).await;
    let hook = receiver(&[]).await;
    let (id, old) = endpoint(&f, &hook.url, json!(["*"])).await;
    let r = staff(&f, "POST", &format!("/staff/webhooks/{id}/rotate-secret"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(r.json["previous_secret_valid_until"].is_string());
    assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await.status, 202);
    run(&f, OffsetDateTime::now_utc()).await;
    let first = hook.got.lock().unwrap()[0].clone();
    assert_eq!(first.json()["type"], "webhook.test");
    assert!(verified(&first, &new) && verified(&first, &old), "both sign during the day after a rotation");
    staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await;
    run(&f, OffsetDateTime::now_utc() + Duration::hours(25)).await;
    let second = hook.got.lock().unwrap()[1].clone();
    assert!(verified(&second, &new) && !verified(&second, &old), "the old secret stops after 24 hours");
}

#[tokio::test]
async fn three_days_of_failures_disable_the_endpoint_and_tell_staff() {
    let f = fixture(json!({})).await;
    let hook = receiver(&[500; 100]).await;
    let (id, _) = endpoint(&f, &hook.url, json!(["document.published"])).await;
    published_report(&f).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(run(&f, now).await.failed_attempts, 1);
    assert_eq!(run(&f, now + Duration::days(1)).await.given_up, 0);
    let last = run(&f, now + Duration::days(3) + Duration::minutes(1)).await;
    assert_eq!(last.given_up, 1, "{last:?}");
    let e = staff(&f, "GET", &format!("/staff/webhooks/{id}"), None).await;
    assert_eq!(e.json["enabled"], false);
    assert!(e.json["disabled_reason"].as_str().unwrap().contains("3 days"), "{}", e.text);
    let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
    assert_eq!(log.json["items"][0]["status"], "failed");
    // A disabled endpoint receives nothing new; staff hear about it by email.
    published_report(&f).await;
    assert_eq!(run(&f, now + Duration::days(4)).await.deliveries_created, 0);
    f.app.run_jobs().await;
    let mails = f.app.emails_to("ivan@lakeside.test").await;
    assert!(mails.iter().any(|m| m.subject.contains("Webhook endpoint disabled")), "{mails:?}");
    // Enabled again, with the endpoint fixed, a redelivery goes through.
    hook.script.lock().unwrap().clear();
    assert_eq!(
        staff(&f, "PATCH", &format!("/staff/webhooks/{id}"), Some(json!({ "enabled": true }))).await.status,
        200
    );
    let event = log.json["items"][0]["id"].as_str().unwrap().to_owned();
    staff(&f, "POST", &format!("/staff/webhooks/{id}/deliveries/{event}/redeliver"), None).await;
    assert_eq!(run(&f, now + Duration::days(4)).await.delivered, 1);
}

#[tokio::test]
async fn endpoints_are_checked_and_managed() {
    let f = fixture(json!({})).await;
    for (body, why) in [
        (json!({ "url": "http://hooks.example.com/x", "events": ["document.published"] }), "https"),
        (json!({ "url": "https://10.1.2.3/x", "events": ["document.published"] }), "private"),
        (json!({ "url": "https://169.254.169.254/latest", "events": ["document.published"] }), "private"),
        (json!({ "url": "https://hooks.example.com/x", "events": [] }), "at least one"),
        (json!({ "url": "https://hooks.example.com/x", "events": ["document.eaten"] }), "unknown event"),
        (json!({ "url": "https://hooks.example.com/x", "events": ["*"], "description": null }), "null"),
    ] {
        let r = staff(&f, "POST", "/staff/webhooks", Some(body)).await;
        r.assert_problem(400);
        assert!(r.json["detail"].as_str().unwrap().contains(why), "{}", r.text);
    }
    let (id, _) = endpoint(&f, "https://hooks.example.com/portal", json!(["document.published"])).await;
    let r = staff(
        &f,
        "PATCH",
        &format!("/staff/webhooks/{id}"),
        Some(json!({ "events": ["payment.succeeded"], "enabled": false })),
    )
    .await;
    assert_eq!((r.json["events"].clone(), r.json["enabled"].clone()), (json!(["payment.succeeded"]), json!(false)));
    assert_eq!(staff(&f, "GET", "/staff/webhooks", None).await.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(staff(&f, "DELETE", &format!("/staff/webhooks/{id}"), None).await.status, 204);
    staff(&f, "GET", &format!("/staff/webhooks/{id}"), None).await.assert_problem(404);
    // Another company's key sees nothing of this company's endpoints.
    let (other, _) = endpoint(&f, "https://hooks.example.com/other", json!(["*"])).await;
    let (_, key_b) = f.app.create_company("Other Co", &[]).await;
    f.app.request("GET", &format!("/staff/webhooks/{other}"), Some(&key_b), None).await.assert_problem(404);
}

#[tokio::test]
async fn openings_invitations_and_resolved_deficiencies_are_events_too() {
    let f = fixture(json!({ "customer_portal_enabled": true,
        "release_defaults": { "require_payment": false, "require_agreement": false } }))
    .await;
    let hook = receiver(&[]).await;
    let (_, secret) =
        endpoint(&f, &hook.url, json!(["document.opened", "contact.invited", "deficiency.resolved"])).await;
    let report = published_report(&f).await;
    let open = f.app.send(f.app.http.get(f.app.url(&format!("{}/documents/{report}", f.client)))).await;
    assert_eq!(open.status, 303);
    // A locked or missing document is no opening.
    f.app.send(f.app.http.get(f.app.url(&format!("{}/documents/{}", f.listing, report)))).await;

    let b = staff(&f, "POST", "/staff/buildings", Some(json!({ "name": "Tower", "address": "1 Main" }))).await;
    let building = b.json["id"].as_str().unwrap().to_owned();
    let contact = staff(
        &f,
        "POST",
        "/staff/contacts",
        Some(json!({ "name": "Fran", "email": portal_tests::unique("fran"),
            "permissions": { "inspection_reports": true }, "building_ids": [building] })),
    )
    .await;
    assert_eq!(contact.status, 201, "{}", contact.text);
    let id = contact.json["contact_id"].as_str().unwrap();
    assert_eq!(staff(&f, "POST", &format!("/staff/contacts/{id}/invite"), None).await.status, 202);
    // A finding of the building's own inspection report.
    let i =
        staff(&f, "POST", &format!("/staff/buildings/{building}/inspections"), Some(portal_tests::inspection_body()))
            .await;
    let doc = json!({ "kind": "inspection_report", "title": "Annual" });
    let building_report = f.app.published_document(&f.key, i.json["inspection_id"].as_str().unwrap(), doc).await;
    let d = staff(
        &f,
        "POST",
        &format!("/staff/buildings/{building}/deficiencies"),
        Some(json!({ "report_id": building_report, "description": "Extinguisher missing", "severity": "high" })),
    )
    .await;
    let deficiency = d.json["id"].as_str().unwrap_or_else(|| panic!("{}", d.text)).to_owned();
    let resolve = format!("/staff/buildings/{building}/deficiencies/{deficiency}/resolve");
    assert_eq!(staff(&f, "POST", &resolve, None).await.status, 200);
    staff(&f, "POST", &resolve, None).await; // already resolved: no second event

    run(&f, OffsetDateTime::now_utc()).await;
    let got: Vec<Value> = hook.got.lock().unwrap().iter().map(Received::json).collect();
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["document.opened", "contact.invited", "deficiency.resolved"], "in the order they happened");
    assert_eq!(
        (got[0]["data"]["document_id"].as_str(), got[0]["data"]["role"].as_str()),
        (Some(report.as_str()), Some("client"))
    );
    assert_eq!(got[2]["data"]["deficiency_id"], deficiency);
    assert!(hook.got.lock().unwrap().iter().all(|r| verified(r, &secret)));
}

#[tokio::test]
async fn in_the_cloud_a_name_that_resolves_inside_is_refused_at_delivery() {
    let f = fixture(json!({})).await;
    let hook = receiver(&[]).await;
    // A public-looking https name (on the standard port, the only one the cloud allows) that
    // resolves to loopback, as a rebinding name would.
    let (id, _) = endpoint(&f, "https://localhost/hooks/portal", json!(["*"])).await;
    assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await.status, 202);
    // The job as deployed: a public https base URL, so cloud rules.
    let env = [
        ("TABLE_NAME", f.app.names.table.clone()),
        ("BUCKET_NAME", f.app.names.bucket.clone()),
        ("PUBLIC_BASE_URL", "https://portal.example.com".to_owned()),
    ];
    let config =
        portal_shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let cloud = portal_publish::Publish::new(&f.app.sdk, config);
    let r = cloud.run_at(OffsetDateTime::now_utc()).await.webhooks;
    assert_eq!((r.delivered, r.failed_attempts), (0, 1), "{r:?}");
    assert!(hook.got.lock().unwrap().is_empty(), "nothing reached the inside");
    let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
    assert!(
        log.json["items"][0]["last_error"].as_str().unwrap().contains("private, loopback or link-local"),
        "{}",
        log.text
    );
}

#[tokio::test]
async fn a_storm_of_changes_is_one_delivery_each_even_with_runs_racing() {
    let f = fixture(json!({})).await;
    let hook = receiver(&[]).await;
    endpoint(&f, &hook.url, json!(["payment.succeeded"])).await;
    // 100 payments: ten inspections, ten chains running at once (one inspection's changes
    // serialize on its revision).
    let mut inspections = vec![f.inspection_id.to_string()];
    for _ in 1..10 {
        let mut body = portal_tests::inspection_body();
        body["notify"] = json!(false);
        let r = staff(&f, "POST", "/staff/inspections", Some(body)).await;
        inspections.push(r.json["inspection_id"].as_str().unwrap().to_owned());
    }
    let f = &f;
    let chains = inspections.iter().map(|i| async move {
        let mut statuses = Vec::new();
        for n in 0..10 {
            let body = json!({ "amount_cents": 100, "method": "check", "reference": format!("#{n}") });
            let r = staff(f, "POST", &format!("/staff/inspections/{i}/payments"), Some(body)).await;
            statuses.push(r.status);
        }
        statuses
    });
    let statuses: Vec<u16> = futures::future::join_all(chains).await.into_iter().flatten().collect();
    assert!(statuses.len() == 100 && statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let now = OffsetDateTime::now_utc();
    for _ in 0..40 {
        let (a, b) = tokio::join!(f.app.job_at(now), f.app.job_at(now));
        let busy = a.webhooks.events + b.webhooks.events + a.webhooks.delivered + b.webhooks.delivered;
        if busy == 0 && hook.got.lock().unwrap().len() >= 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = hook.got.lock().unwrap().clone();
    let mut ids: Vec<String> = got.iter().map(|r| r.header("portal-event-id").unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 100, "one delivery per change");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "no event delivered twice");
}

/// A raw HTTP server on 127.0.0.1 that answers every request with `answer` (it may never finish);
/// its base URL.
async fn raw_server(answer: fn(tokio::net::TcpStream) -> futures::future::BoxFuture<'static, ()>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request's head and body (small), then the answer.
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(std::time::Duration::from_millis(300), socket.read(&mut buf)).await;
                answer(socket).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_endpoint_that_streams_without_end_costs_a_kilobyte_and_an_attempt_counts_before_it_ends() {
    let f = fixture(json!({})).await;
    // 200, then zeros for ever.
    let endless = raw_server(|mut s| {
        Box::pin(async move {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n").await;
            let chunk = format!("{:x}\r\n{}\r\n", 8192, "0".repeat(8192));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        })
    })
    .await;
    let (id, _) = endpoint(&f, &format!("{endless}/hook"), json!(["*"])).await;
    assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await.status, 202);
    let started = std::time::Instant::now();
    let r = run(&f, OffsetDateTime::now_utc()).await;
    assert_eq!(r.delivered, 1, "a 200 is a delivery, whatever follows it: {r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "not read to the 10 s timeout");
    let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
    let kept = log.json["items"][0]["response_body"].as_str().unwrap().len();
    assert_eq!(kept, 1024, "the first kilobyte is kept, nothing more is read: {kept}");

    // An endpoint that accepts and never answers: while the POST hangs, the attempt is already
    // recorded, so a function stopped mid-delivery still moves toward giving up.
    let hole = raw_server(|s| {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(s);
        })
    })
    .await;
    let (id, _) = endpoint(&f, &format!("{hole}/hook"), json!(["*"])).await;
    assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await.status, 202);
    let app = &f.app;
    let job = app.job_at(OffsetDateTime::now_utc());
    let watch = async {
        for _ in 0..80 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let log = staff(&f, "GET", &format!("/staff/webhooks/{id}/deliveries"), None).await;
            let item = &log.json["items"][0];
            if item["attempts"] == 1 {
                return item["status"].as_str().map(str::to_owned);
            }
        }
        None
    };
    let (report, seen) = tokio::join!(job, watch);
    assert_eq!(seen.as_deref(), Some("pending"), "attempt 1 recorded while the POST was still waiting");
    assert_eq!(report.webhooks.failed_attempts, 1, "then the 10 s timeout: {:?}", report.webhooks);
}

/// A server on 127.0.0.1 that accepts connections and never answers (a black-holed endpoint:
/// every delivery waits out the 10 s timeout); its base URL and how many connections it took.
async fn black_hole() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = taken.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                drop(socket);
            });
        }
    });
    (url, taken)
}

/// One tenant's dead endpoints cannot starve another's (issue 23 item 5, measured on the local
/// stack as 1,581 overdue deliveries and a new company's healthy endpoint receiving nothing for
/// 150 s). Three companies each have 1,500 deliveries waiting, half for a black-holed endpoint
/// (accepts, never answers) and half for one that refuses them (503); a fourth company's event
/// is written with them. Within two runs of the job the fourth company's endpoint has it, and
/// each dead endpoint was tried once per run, not once per delivery: backoff is per endpoint.
#[tokio::test]
async fn dead_endpoints_of_three_companies_do_not_hold_up_a_fourth() {
    use portal_shared::adapters::store::webhooks::{EventBatch, WebhookEvent};
    use portal_shared::foundation::ids::CompanyId;
    let app = portal_tests::spawn_app().await;
    let (hole, hole_connections) = black_hole().await;
    let refusing = receiver(&[503; 10_000]).await;
    let create = |key: String, url: String| {
        let app = &app;
        async move {
            let r =
                app.request("POST", "/staff/webhooks", Some(&key), Some(json!({ "url": url, "events": ["*"] }))).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.json["id"].as_str().unwrap().to_owned()
        }
    };
    let mut dead = Vec::new();
    for n in 0..3 {
        let (company, key) = app.create_company(&format!("Dead Hooks {n}"), &[]).await;
        create(key.clone(), format!("{hole}/hooks/{n}")).await;
        create(key.clone(), format!("{}/{n}", refusing.url)).await;
        let company: CompanyId = company.parse().unwrap();
        // 750 events, each for both endpoints: 1,500 deliveries, fanned out as the job would.
        let events =
            (0..750).map(|i| WebhookEvent::new(company, "webhook.test", json!({ "n": i }), app.clock.now())).collect();
        let batch = EventBatch::of(events).unwrap();
        app.store.write(batch.create().unwrap()).await.unwrap();
        let endpoints = app.store.endpoints(company).await.unwrap();
        assert_eq!(app.store.fan_out(&batch, &endpoints).await.unwrap(), (750, 1500));
        dead.push(company);
    }
    let healthy = receiver(&[]).await;
    let (fourth, key) = app.create_company("Healthy Hooks", &[]).await;
    create(key, healthy.url.clone()).await;
    let fourth: CompanyId = fourth.parse().unwrap();
    let event = WebhookEvent::new(fourth, "webhook.test", json!({ "hello": "fourth" }), app.clock.now());
    app.store.write(event.create().unwrap()).await.unwrap();

    let now = app.clock.now();
    for run in 0..2 {
        app.job_at(now + Duration::minutes(run)).await;
        if !healthy.got.lock().unwrap().is_empty() {
            break;
        }
    }
    let got = healthy.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "the fourth company's delivery arrives within two runs");
    assert_eq!(got[0].json()["data"]["hello"], "fourth");
    // Each dead endpoint: at most one try per run (two runs at most, three companies).
    let (holes, refused) =
        (hole_connections.load(std::sync::atomic::Ordering::SeqCst), refusing.got.lock().unwrap().len());
    assert!((1..=6).contains(&holes), "black-holed endpoints were tried {holes} times");
    assert!((1..=6).contains(&refused), "refusing endpoints were tried {refused} times");
    // Nothing was lost: every dead delivery still waits, for when its endpoint comes back.
    for company in dead {
        for e in app.store.endpoints(company).await.unwrap() {
            let waiting = app.store.queued_deliveries(company, &e.id, 1000).await.unwrap().len();
            assert_eq!(waiting, 750, "{}", e.url);
        }
    }
}

/// Tests and redeliveries are staff's way to make a backing-off endpoint try now, so each
/// endpoint has an allowance per 10 minutes; past it, 429 with Retry-After.
#[tokio::test]
async fn tests_of_an_endpoint_are_rate_limited() {
    let f = fixture(json!({})).await;
    f.app.clock.set(f.app.next_window_start(portal_staff_api::STAFF_WINDOW_SECONDS));
    let (id, _) = endpoint(&f, "https://hooks.example.com/portal", json!(["*"])).await;
    let (other, _) = endpoint(&f, "https://hooks.example.com/other", json!(["*"])).await;
    for _ in 0..10 {
        assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await.status, 202);
    }
    let r = staff(&f, "POST", &format!("/staff/webhooks/{id}/test"), None).await;
    r.assert_problem(429);
    let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    // Per endpoint: another one of the company's is not held back.
    assert_eq!(staff(&f, "POST", &format!("/staff/webhooks/{other}/test"), None).await.status, 202);
}

/// The event types this app's changes wrote, in the order written.
async fn written_events(f: &Fixture) -> Vec<String> {
    use portal_shared::adapters::store::webhooks::EventBatch;
    let mut batches: Vec<EventBatch> = f
        .app
        .all_items()
        .await
        .into_iter()
        .filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).is_some_and(|e| e == "webhook_events"))
        .map(|i| serde_dynamo::from_item(i).unwrap())
        .collect();
    batches.sort_by(|a, b| a.id.cmp(&b.id));
    batches.into_iter().flat_map(|b| b.events).map(|e| e.event_type).collect()
}

/// Changes write only the events some endpoint of the company wants: a company without webhooks
/// leaves no backlog of events for the job to wade through (issue 23 item 5).
#[tokio::test]
async fn a_company_writes_only_the_events_an_endpoint_wants() {
    let f = fixture(json!({ "release_defaults": { "require_payment": false, "require_agreement": false } })).await;
    let pay = |n: u32| json!({ "amount_cents": 100, "method": "check", "reference": format!("#{n}") });
    let payments = format!("/staff/inspections/{}/payments", f.inspection_id);
    published_report(&f).await;
    assert_eq!(staff(&f, "POST", &payments, Some(pay(1))).await.status, 201);
    assert_eq!(written_events(&f).await, Vec::<String>::new(), "no endpoint, no events");

    let (id, _) = endpoint(&f, "https://hooks.example.com/portal", json!(["payment.succeeded"])).await;
    published_report(&f).await;
    assert_eq!(staff(&f, "POST", &payments, Some(pay(2))).await.status, 201);
    assert_eq!(written_events(&f).await, vec!["payment.succeeded"], "only what the endpoint wants");

    // Disabled, it wants nothing; enabled for everything, everything is written.
    let path = format!("/staff/webhooks/{id}");
    let patch = |body: Value| staff(&f, "PATCH", &path, Some(body));
    assert_eq!(patch(json!({ "enabled": false })).await.status, 200);
    assert_eq!(staff(&f, "POST", &payments, Some(pay(3))).await.status, 201);
    assert_eq!(written_events(&f).await.len(), 1);
    assert_eq!(patch(json!({ "enabled": true, "events": ["*"] })).await.status, 200);
    published_report(&f).await;
    let all = written_events(&f).await;
    assert!(all.len() > 2 && all.iter().any(|t| t == "document.published"), "{all:?}");

    // Deleted: nothing again.
    assert_eq!(staff(&f, "DELETE", &format!("/staff/webhooks/{id}"), None).await.status, 204);
    assert_eq!(staff(&f, "POST", &payments, Some(pay(4))).await.status, 201);
    assert_eq!(written_events(&f).await, all);
}

/// Endpoints use port 443 unless the company's `webhook_ports` setting allows another
/// (unprivileged) one: checked when staff save an endpoint (and again at each delivery).
#[tokio::test]
async fn an_endpoint_port_other_than_443_needs_the_company_s_setting() {
    let f = fixture(json!({})).await;
    let on = |port: u16| json!({ "url": format!("https://hooks.example.com:{port}/x"), "events": ["*"] });
    let r = staff(&f, "POST", "/staff/webhooks", Some(on(8443))).await;
    r.assert_problem(400);
    assert!(r.json["detail"].as_str().unwrap().contains("webhook_ports"), "{}", r.text);
    let refused = staff(&f, "PATCH", "/staff/settings", Some(json!({ "webhook_ports": [25] }))).await;
    refused.assert_problem(400);
    let set = staff(&f, "PATCH", "/staff/settings", Some(json!({ "webhook_ports": [8443] }))).await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(staff(&f, "POST", "/staff/webhooks", Some(on(8443))).await.status, 201);
    staff(&f, "POST", "/staff/webhooks", Some(on(6379))).await.assert_problem(400);
}
