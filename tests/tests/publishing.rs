//! Publishing end to end: manual (single and bulk), automatic at upload completion (staff call and
//! the S3 event), auto-generated on submit, scheduled (the DUE index), payload rebuild, and the
//! notification emails with their outbox.

use aws_sdk_dynamodb::types::AttributeValue;
use portal_shared::foundation::metrics::Metric;
use portal_tests::{fixture, Fixture, Reply, TEST_PDF};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// Registers a document and uploads its PDF; `complete` asks staff to verify it.
async fn upload(f: &Fixture, kind: &str, extra: Value, complete: bool) -> (String, Reply) {
    let mut body = json!({ "kind": kind, "title": format!("My {kind}") });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let (id, registered) =
        f.app.put_document(&f.key, &f.inspection_id.to_string(), body, TEST_PDF, "application/pdf").await;
    if !complete {
        return (id, registered);
    }
    let done = f.app.complete_upload(&f.key, &id).await;
    assert_eq!(done.status, 200, "{}", done.text);
    (id, done)
}

async fn staff(f: &Fixture, method: &str, path: &str, body: Option<Value>) -> Reply {
    f.app.request(method, path, Some(&f.key), body).await
}

async fn run(f: &Fixture, at: OffsetDateTime) -> portal_publish::JobReport {
    f.app.job_at(at).await
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn outbox_count(f: &Fixture) -> usize {
    f.app.all_items().await.iter().filter(|i| i["SK"].as_s().unwrap().starts_with("EMAIL#")).count()
}

#[tokio::test]
async fn manual_publishing_announces_each_version_once() {
    let f = fixture(json!({})).await;
    let (doc, _) = upload(&f, "inspection_report", json!({ "template_name": "Residential Inspection" }), true).await;
    let publish = format!("/staff/documents/{doc}/publish");
    let r = staff(&f, "POST", &publish, None).await;
    assert_eq!(r.json["changed"], true);
    assert_eq!(staff(&f, "POST", &publish, None).await.json["changed"], false, "publishing twice changes nothing");
    staff(&f, "POST", &format!("/staff/documents/{doc}/unpublish"), None).await;
    staff(&f, "POST", &publish, None).await;
    assert_eq!(outbox_count(&f).await, 2, "one per recipient (client, buyer's agent), whatever the re-publishing");
    let job = run(&f, now()).await;
    assert_eq!(job.emails.sent, 2, "{job:?}");
    assert_eq!(run(&f, now() + Duration::hours(1)).await.emails.sent, 0);
    let mail = &f.app.emails_to(&f.client_email).await[0];
    assert!(mail.subject.starts_with("Report ready:"), "{}", mail.subject);
    assert!(mail.body.contains("Residential Inspection Report"));
    // The listing agent sees no reports, so hears nothing.
    let listing = f.inspection().await.people[2].email.clone().unwrap();
    assert!(f.app.emails_to(listing.as_str()).await.is_empty());
}

#[tokio::test]
async fn bulk_publishing_reports_each_document() {
    let f = fixture(json!({})).await;
    let (a, _) = upload(&f, "invoice", json!({}), true).await;
    let (b, _) = upload(&f, "attachment", json!({}), true).await;
    let (c, _) = upload(&f, "proposal", json!({}), false).await; // uploaded, completion not seen yet
    let path = format!("/staff/inspections/{}/documents", f.inspection_id);
    let none = staff(&f, "POST", &path, Some(json!({ "kind": "invoice", "title": "No PDF" }))).await; // nothing uploaded
    let d = none.json["document_id"].as_str().unwrap().to_owned();
    let r = staff(
        &f,
        "POST",
        "/staff/documents/publish",
        Some(json!({ "document_ids": [a, b, c, d, "01ARZ3NDEKTSV4RRFFQ69G5FAV"] })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let statuses: Vec<i64> =
        r.json["results"].as_array().unwrap().iter().map(|x| x["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 200, 409, 404], "publishing completes an upload itself");
    assert_eq!(r.json["results"][3]["problem"]["type"], "/problems/not-uploaded");
    let un = staff(&f, "POST", "/staff/documents/unpublish", Some(json!({ "document_ids": [a, b] }))).await;
    assert!(un.json["results"].as_array().unwrap().iter().all(|x| x["changed"] == true));
    staff(&f, "POST", "/staff/documents/publish", Some(json!({ "document_ids": [] }))).await.assert_problem(400);
}

#[tokio::test]
async fn auto_publish_follows_the_setting_per_type_and_never_for_attachments() {
    let f = fixture(json!({ "auto_publish": { "invoices": true, "inspection_reports": false } })).await;
    let (_, invoice) = upload(&f, "invoice", json!({}), true).await;
    assert_eq!(invoice.json["published"], true, "invoices auto-publish: {}", invoice.text);
    let (_, report) = upload(&f, "inspection_report", json!({}), true).await;
    assert_eq!(report.json["published"], false, "inspection reports do not");
    let g = fixture(json!({ "auto_publish": { "inspection_reports": true, "invoices": true, "proposals": true, "service_reports": true } })).await;
    let (_, att) = upload(&g, "attachment", json!({}), true).await;
    assert_eq!(att.json["published"], false, "attachments are always manual");

    // The bucket's object-created event completes a document the same way; an event the
    // function does not know is refused, never taken for a scheduled run.
    let (doc, _) = upload(&g, "inspection_report", json!({}), false).await;
    let key = format!("companies/{}/inspections/{}/documents/{doc}.pdf", g.company_id, g.inspection_id);
    let event = json!({ "Records": [{ "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": g.app.names.bucket }, "object": { "key": key, "size": TEST_PDF.len() } } }] });
    let unknown =
        json!({ "detail-type": "Object Created", "source": "aws.s3", "detail": { "object": { "key": key } } });
    let err = g.app.functions.publish.dispatch(unknown, None).await.expect_err("not an event it runs");
    assert!(err.to_string().contains("unrecognised event"), "{err}");
    assert_eq!(staff(&g, "GET", &format!("/staff/documents/{doc}"), None).await.json["uploaded"], false);
    // The same S3 event as it lands in the failed-events queue (Lambda's on-failure record, as
    // the queue message's body), replayed.
    let failed = json!({ "version": "1.0", "requestContext": { "requestId": "r-1", "condition": "RetriesExhausted",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:publish", "approximateInvokeCount": 3 },
        "requestPayload": event, "responseContext": { "statusCode": 200, "functionError": "Unhandled" } });
    let report = g.app.functions.publish.dispatch(json!({ "replay": failed.to_string() }), None).await.unwrap();
    assert_eq!((report["completed"].as_u64(), report["published"].as_u64()), (Some(1), Some(1)), "{report}");
    let d = staff(&g, "GET", &format!("/staff/documents/{doc}"), None).await;
    assert_eq!((d.json["uploaded"].as_bool(), d.json["published"].as_bool()), (Some(true), Some(true)));
    let junk = g.app.functions.publish.dispatch(json!({ "replay": "{\"surprise\": 1}" }), None).await;
    assert!(junk.is_err(), "a replay of something it does not run is refused");
}

#[tokio::test]
async fn submitting_generates_and_publishes_the_report_which_a_rebuild_refreshes() {
    let f = fixture(json!({ "auto_generate_inspection_reports": true, "auto_publish": { "inspection_reports": true },
        "release_defaults": { "require_payment": false, "require_agreement": false } }))
    .await;
    let submit = format!("/staff/inspections/{}/submit", f.inspection_id);
    // Nobody recorded findings: no report that would read as a clean house.
    let r = staff(&f, "POST", &submit, Some(json!({ "template_name": "Residential Inspection" }))).await;
    r.assert_problem(400);
    assert!(r.json["detail"].as_str().unwrap().contains("findings"), "names the field: {}", r.text);
    assert!(
        f.inspection().await.documents.is_empty() && f.inspection().await.submitted_at.is_none(),
        "nothing written"
    );
    let findings = json!([
        { "severity": "high", "title": "Active roof leak above the kitchen", "location": "Attic",
          "description": "Water staining on the decking, damp insulation.", "recommendation": "Have a licensed roofer repair it",
          "photos": ["https://photos.example.com/roof-1.jpg"] },
        { "severity": "low", "title": "Loose handrail", "location": "Basement stairs" }
    ]);
    let r =
        staff(&f, "POST", &submit, Some(json!({ "template_name": "Residential Inspection", "findings": findings })))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["report"]["published"], true, "{}", r.text);
    assert_eq!(r.json["report"]["display_name"], "Residential Inspection Report");
    let doc = r.json["report"]["document_id"].as_str().unwrap().to_owned();
    let again = staff(&f, "POST", &submit, None).await;
    assert_eq!(
        (again.json["changed"].as_bool(), again.json["report"]["document_id"].as_str()),
        (Some(false), Some(doc.as_str()))
    );
    assert_eq!(f.inspection().await.documents.len(), 1, "one report, however often it is submitted");

    let first = open_pdf(&f, &doc).await;
    assert!(first.contains("12 Elm Street") && first.contains("Residential Inspection"), "{first}");
    for shown in [
        "2 finding(s): 0 critical, 1 high, 0 medium, 1 low",
        "1. [HIGH] Active roof leak above the kitchen",
        "Recommendation: Have a licensed roofer repair it",
        "Photo: https://photos.example.com/roof-1.jpg",
        "2. [LOW] Loose handrail",
    ] {
        assert!(first.contains(shown), "{shown} in {first}");
    }
    assert!(!first.contains("no deficiencies") && !first.contains("Radon"));
    let recorded = staff(&f, "GET", &format!("/staff/inspections/{}/findings", f.inspection_id), None).await;
    assert_eq!(
        (recorded.json["recorded"].as_bool(), recorded.json["items"].as_array().map(Vec::len)),
        (Some(true), Some(2))
    );

    staff(
        &f,
        "POST",
        &format!("/staff/inspections/{}/services", f.inspection_id),
        Some(json!({ "name": "Radon test", "price_cents": 0 })),
    )
    .await;
    let rebuilt = staff(&f, "POST", &format!("/staff/documents/{doc}/rebuild"), None).await;
    assert_eq!(rebuilt.json["file_version"], 2, "{}", rebuilt.text);
    let second = open_pdf(&f, &doc).await;
    assert!(second.contains("Radon test"), "the portal serves the rebuilt version");
    let emails_before = outbox_count(&f).await;
    assert_eq!(emails_before, 2, "announced once, not again for the rebuild");

    let g = fixture(json!({})).await;
    let (uploaded, _) = upload(&g, "inspection_report", json!({}), true).await;
    staff(&g, "POST", &format!("/staff/documents/{uploaded}/rebuild"), None).await.assert_problem(409);
    let plain = staff(&g, "POST", &format!("/staff/inspections/{}/submit", g.inspection_id), None).await;
    assert!(plain.json["report"].is_null() && plain.json["submitted_at"].is_string(), "{}", plain.text);
}

/// The client opens a document through the gate and reads the PDF's text.
async fn open_pdf(f: &Fixture, doc: &str) -> String {
    let r = f
        .app
        .send(f.app.http.get(f.app.url(&format!("{}/documents/{doc}", f.client))).header("accept", "application/json"))
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let bytes = reqwest::get(r.header("location").unwrap()).await.unwrap().bytes().await.unwrap();
    portal_tests::pdf_text(&bytes)
}

#[tokio::test]
async fn a_scheduled_document_is_published_exactly_once_by_concurrent_jobs_and_can_be_recalled() {
    let f = fixture(json!({})).await;
    let at = now() + Duration::hours(1);
    let (doc, _) =
        upload(&f, "inspection_report", json!({ "publish_at": portal_shared::foundation::clock::rfc3339(at) }), true)
            .await;
    let (recalled, _) =
        upload(&f, "invoice", json!({ "publish_at": portal_shared::foundation::clock::rfc3339(at) }), true).await;
    assert_eq!(run(&f, now()).await.published, 0, "not due yet");
    let r = staff(&f, "PATCH", &format!("/staff/documents/{recalled}"), Some(json!({ "publish_at": null }))).await;
    assert!(r.json["publish_at"].is_null(), "{}", r.text);

    let later = at + Duration::minutes(1);
    let (a, b) = tokio::join!(run(&f, later), run(&f, later));
    assert_eq!(a.published + b.published, 1, "{a:?} {b:?}");
    assert_eq!(a.emails.sent + b.emails.sent, 2, "each recipient once");
    let d = staff(&f, "GET", &format!("/staff/documents/{doc}"), None).await;
    assert_eq!((d.json["published"].as_bool(), d.json["publish_at"].is_null()), (Some(true), true));
    assert_eq!(staff(&f, "GET", &format!("/staff/documents/{recalled}"), None).await.json["published"], false);
    let schedules = f.app.all_items().await.iter().filter(|i| i["SK"].as_s().unwrap().starts_with("SCHEDULE#")).count();
    assert_eq!(schedules, 0, "no schedule item is left behind");
    assert_eq!(run(&f, later + Duration::hours(1)).await.published, 0);
}

/// The schedule items and announcement emails of the fixture's inspection, as stored.
async fn schedule_and_emails(f: &Fixture) -> (usize, Vec<std::collections::HashMap<String, AttributeValue>>) {
    let items = f.app.all_items().await;
    let sk = |i: &std::collections::HashMap<String, AttributeValue>| i["SK"].as_s().unwrap().clone();
    let schedules = items.iter().filter(|i| sk(i).starts_with("SCHEDULE#")).count();
    let emails = items.into_iter().filter(|i| sk(i).starts_with("EMAIL#published#")).collect();
    (schedules, emails)
}

#[tokio::test]
async fn a_run_stopped_between_its_publication_and_its_emails_is_completed_once_after_lambdas_longest_timeout() {
    use portal_shared::adapters::store::{keys, Record, Write};
    let f = fixture(json!({})).await;
    let at = now() + Duration::hours(1);
    let (doc, _) =
        upload(&f, "invoice", json!({ "publish_at": portal_shared::foundation::clock::rfc3339(at) }), true).await;
    let published_at = at + Duration::seconds(1);
    // The publishing half of the job (the outbox sends nothing yet).
    let first = portal_shared::usecases::publishing::publish_due(&f.app.store, published_at, 100).await.unwrap();
    assert_eq!(first.published, 1, "{first:?}");
    let (schedules, emails) = schedule_and_emails(&f).await;
    assert_eq!((schedules, emails.len()), (0, 2), "emails queued, then the schedule item taken off");

    // What a run leaves when it stops after its transaction, having queued one of the two
    // emails: the other email missing, the schedule item still there.
    let missing = &emails[1];
    let key = |i: &std::collections::HashMap<String, AttributeValue>, a: &str| i[a].as_s().unwrap().clone();
    let missing_key = keys::Key { pk: key(missing, "PK"), sk: key(missing, "SK") };
    f.app.store.write(Write::Delete(missing_key.clone())).await.unwrap();
    let d: portal_shared::foundation::ids::DocumentId = doc.parse().unwrap();
    let due = keys::due_sort(&portal_shared::foundation::clock::rfc3339(at), f.company_id, f.inspection_id, d);
    let schedule = keys::schedule(f.company_id, f.inspection_id, d);
    let marker = json!({ "document_id": d });
    f.app.store.write(Write::Put(Record::new(schedule, "schedule", &marker).unwrap().with_due(due))).await.unwrap();

    // While the run that published may still be going (Lambda stops none later than 15 minutes
    // in), nobody else writes its emails, and the item stays for the later run. The queued
    // email is sent.
    let early = run(&f, published_at + Duration::minutes(15)).await;
    assert_eq!((early.due.published, early.due.rechecked, early.emails.sent), (0, 0, 1), "{early:?}");
    let (schedules, emails) = schedule_and_emails(&f).await;
    assert_eq!((schedules, emails.len()), (1, 1));

    // Past it: the missing email is created and sent; the one sent before is neither created
    // again nor sent again.
    let late = run(&f, published_at + portal_shared::usecases::publishing::EMAIL_RECHECK_AFTER).await;
    assert_eq!((late.due.published, late.due.rechecked, late.emails.sent), (0, 1, 1), "{late:?}");
    let (schedules, emails) = schedule_and_emails(&f).await;
    assert_eq!((schedules, emails.len()), (0, 2), "the schedule item is taken off once the emails are there");
    assert!(emails.iter().all(|e| e["state"].as_s().unwrap() == "sent"), "{emails:?}");
    let agent = f.inspection().await.people[1].email.clone().unwrap();
    for address in [f.client_email.as_str(), agent.as_str()] {
        assert_eq!(f.app.emails_to(address).await.len(), 1, "{address} hears of the invoice once");
    }
    let after = run(&f, published_at + Duration::hours(1)).await;
    assert_eq!((after.due.due, after.due.rechecked, after.emails.sent), (0, 0, 0), "{after:?}");
}

#[tokio::test]
async fn a_failed_send_is_retried_later_and_sent_exactly_once() {
    let f = fixture(json!({})).await;
    let (doc, _) = upload(&f, "invoice", json!({}), true).await;
    let published = staff(&f, "POST", &format!("/staff/documents/{doc}/publish"), None).await;
    assert_eq!(published.status, 200, "{}", published.text);
    // A sender SES does not know yet: sending fails (SES rejects unverified senders).
    let sender = format!("late-{}@inspection-portal.test", ulid::Ulid::new().to_string().to_lowercase());
    let env = [
        ("TABLE_NAME", f.app.names.table.clone()),
        ("BUCKET_NAME", f.app.names.bucket.clone()),
        ("SENDER_EMAIL", sender.clone()),
        ("PUBLIC_BASE_URL", f.app.base.clone()),
    ];
    let config =
        portal_shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let job = portal_publish::Publish::new(&f.app.sdk, config);
    let t = now();
    // The outbox is an index: the emails the publish queued may show a moment later, as on AWS.
    let (mut sent, mut failed, mut last) = (0, 0, None);
    for _ in 0..200 {
        let r = job.run_at(t).await;
        (sent, failed) = (sent + r.emails.sent, failed + r.emails.failed);
        last = Some(r);
        if failed >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let history = staff(&f, "GET", &format!("/staff/inspections/{}/emails", f.inspection_id), None).await;
    assert_eq!((sent, failed), (0, 2), "last run {last:?}; emails {}", history.text);
    let history = staff(&f, "GET", &format!("/staff/inspections/{}/emails", f.inspection_id), None).await;
    assert!(history.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["state"] == "pending" && e["last_error"].is_string()));
    assert_eq!(job.run_at(t).await.emails.sent, 0, "not before its retry time");

    aws_sdk_ses::Client::new(&f.app.sdk).verify_email_identity().email_address(&sender).send().await.unwrap();
    let retry = job.run_at(t + Duration::minutes(2)).await;
    assert_eq!(retry.emails.sent, 2, "{retry:?}");
    assert_eq!(job.run_at(t + Duration::hours(2)).await.emails.sent, 0);
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 1, "exactly one email");
}

#[tokio::test]
async fn a_report_link_in_an_email_leads_to_the_locked_page_not_the_report() {
    let f = fixture(json!({ "email_templates": { "report_published": {
        "subject": "Report for {{address}}", "body": "Hi {{client_name}}, open {{report_link}} or {{inspection_details_link}}" } } })).await;
    let (doc, _) = upload(&f, "inspection_report", json!({}), true).await;
    staff(&f, "POST", &format!("/staff/documents/{doc}/publish"), None).await;
    assert_eq!(f.app.run_jobs().await.sent, 2);
    let mail = &f.app.emails_to(&f.client_email).await[0];
    assert_eq!(mail.subject, "Report for 12 Elm Street, Springfield");
    let link = mail.links.iter().find(|l| l.contains("/documents/")).expect("report link").clone();
    assert!(link.starts_with(&f.app.url("/p/")), "the portal's gate, never S3: {link}");
    let r = f.app.send(f.app.http.get(&link).header("accept", "text/html")).await;
    assert_eq!(r.status, 403, "unpaid and unsigned: locked");
    assert!(r.text.contains("is locked") && r.text.contains("Payment required"));
    assert!(!mail.body.contains("X-Amz-"));
}

#[tokio::test]
async fn a_generated_report_is_a_real_multi_page_pdf_with_its_findings() {
    // A long test: its future lives on the heap, not on the test thread's stack.
    Box::pin(generated_report()).await;
}

async fn generated_report() {
    let f = fixture(json!({ "auto_generate_inspection_reports": true, "auto_publish": { "inspection_reports": true },
        "customer_portal_enabled": true, "release_defaults": { "require_payment": false, "require_agreement": false } }))
    .await;
    // A commercial inspection of a building, submitted; findings recorded against its report.
    let b = staff(&f, "POST", "/staff/buildings", Some(json!({ "name": "Tower", "address": "1 Main" }))).await;
    let building = b.json["id"].as_str().unwrap().to_owned();
    let i =
        staff(&f, "POST", &format!("/staff/buildings/{building}/inspections"), Some(portal_tests::inspection_body()))
            .await;
    assert_eq!(i.status, 201, "{}", i.text);
    let submit = format!("/staff/inspections/{}/submit", i.json["inspection_id"].as_str().unwrap());
    let r = staff(&f, "POST", &submit, Some(json!({ "template_name": "Residential Inspection" }))).await;
    let doc = r.json["report"]["document_id"].as_str().unwrap().to_owned();
    for n in 0..70 {
        let severity = ["low", "medium", "high", "critical"][n % 4];
        staff(
            &f,
            "POST",
            &format!("/staff/buildings/{building}/deficiencies"),
            Some(
                json!({ "report_id": doc, "description": format!("Deficiency {n}: smoke detector missing in corridor"),
                "severity": severity, "location": format!("Floor {}", n / 10) }),
            ),
        )
        .await;
    }
    let rebuilt = staff(&f, "POST", &format!("/staff/documents/{doc}/rebuild"), None).await;
    assert_eq!(rebuilt.status, 200, "{}", rebuilt.text);
    let r = f.app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    let pdf = f.app.http.get(r.header("location").unwrap()).send().await.unwrap().bytes().await.unwrap().to_vec();
    let text = portal_tests::pdf_text(&pdf);
    assert!(
        text.contains("Deficiency 69") && text.contains("[CRITICAL]") && text.contains("Summary"),
        "findings listed"
    );
    // Render it as a reader would: several pages, and page 2 is not blank.
    let dir = std::env::temp_dir().join(format!("report-{doc}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let info = std::process::Command::new("pdfinfo").arg(&file).output().expect("pdfinfo (poppler-utils)");
    let pages: usize = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|p| p.trim().parse().unwrap()))
        .expect("a valid PDF");
    assert!(pages >= 3, "{pages} pages");
    let out = std::process::Command::new("pdftoppm")
        .args(["-f", "2", "-l", "2", "-r", "40", "-gray"])
        .arg(&file)
        .arg(dir.join("page"))
        .status()
        .unwrap();
    assert!(out.success());
    let png = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "pgm"));
    let image = std::fs::read(png.expect("a rendered page").path()).unwrap();
    // A PGM (binary): header then pixels; some pixels are dark (text), most are white.
    let pixels = &image[image.len() - 200 * 100..];
    let dark = pixels.iter().filter(|&&p| p < 128).count();
    assert!(dark > 0, "page 2 has text on it");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_scheduled_document_that_keeps_failing_is_parked_while_the_others_publish() {
    let f = fixture(json!({})).await;
    let at = now() + Duration::hours(1);
    let when = |t: OffsetDateTime| json!({ "publish_at": portal_shared::foundation::clock::rfc3339(t) });
    let (good, _) = upload(&f, "inspection_report", when(at), true).await;
    let (later, _) = upload(&f, "invoice", when(at + Duration::minutes(5)), true).await;
    // Scheduled, but its PDF never arrives.
    let r = staff(
        &f,
        "POST",
        &format!("/staff/inspections/{}/documents", f.inspection_id),
        Some(json!({ "kind": "proposal", "title": "Never uploaded", "publish_at": portal_shared::foundation::clock::rfc3339(at) })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let poisoned = r.json["document_id"].as_str().unwrap().to_owned();

    // The run publishes what it can, and says it failed (Lambda retries and alarms on it).
    let first = run(&f, at + Duration::seconds(1)).await;
    assert_eq!((first.due.published, first.due.failed, first.status), (1, 1, "error"), "{first:?}");
    let problem = |d: Reply| d.json["schedule_problem"].clone();
    let p = problem(staff(&f, "GET", &format!("/staff/documents/{poisoned}"), None).await);
    assert_eq!((p["attempts"].as_u64(), p["parked"].as_bool()), (Some(1), Some(false)), "{p}");
    assert!(p["reason"].as_str().unwrap().contains("upload"), "staff see why: {p}");
    assert_eq!(staff(&f, "GET", &format!("/staff/documents/{good}"), None).await.json["published"], true);
    assert!(f.app.functions.publish.dispatch(json!({}), None).await.is_ok(), "a scheduled run with nothing due");

    // Retried later (not every minute), then parked; the other document publishes meanwhile.
    let second = run(&f, at + Duration::minutes(1)).await;
    assert_eq!((second.due.due, second.status), (0, "ok"), "the failed document waits: {second:?}");
    let third = run(&f, at + Duration::minutes(6)).await;
    assert_eq!((third.due.published, third.due.failed), (1, 1), "{third:?}");
    assert_eq!(staff(&f, "GET", &format!("/staff/documents/{later}"), None).await.json["published"], true);
    let fourth = run(&f, at + Duration::minutes(30)).await;
    assert_eq!((fourth.due.parked, fourth.status), (1, "error"), "{fourth:?}");
    let p = problem(staff(&f, "GET", &format!("/staff/documents/{poisoned}"), None).await);
    assert_eq!((p["attempts"].as_u64(), p["parked"].as_bool()), (Some(3), Some(true)), "{p}");
    assert_eq!(f.app.metric(Metric::DocumentsParked), 1, "counted once, for the DocumentsParked alarm");

    // Parked: out of the due index for good, so later runs are clean and cheap.
    let after = run(&f, at + Duration::days(1)).await;
    assert_eq!((after.due.due, after.status), (0, "ok"), "{after:?}");
    // A new publish_at re-arms it; a scheduled invocation that meets the failure is a Lambda error
    // (so the schedule's retry policy, dead-letter queue and the error alarm see it).
    let r = staff(&f, "PATCH", &format!("/staff/documents/{poisoned}"), Some(when(now() - Duration::minutes(1)))).await;
    assert!(r.json["schedule_problem"].is_null(), "{}", r.text);
    let err = f.app.functions.publish.dispatch(json!({}), None).await.expect_err("the run failed");
    assert!(err.to_string().contains("error"), "{err}");
}

#[tokio::test]
async fn forty_documents_of_one_inspection_due_at_once_fit_in_transactions_with_their_emails_and_events() {
    // Each save also writes its "all my inspections" entries and webhook events: the job's
    // transactions must leave room for them (DynamoDB takes at most 100 items in one).
    let f = fixture(json!({ "release_defaults": { "require_payment": false, "require_agreement": false } })).await;
    let at = now() + Duration::minutes(5);
    for _ in 0..40 {
        upload(&f, "inspection_report", json!({ "publish_at": portal_shared::foundation::clock::rfc3339(at) }), true)
            .await;
    }
    // Three endpoints hear every publication: 120 deliveries from one save's events, more than
    // one transaction of fan-out holds.
    for n in 0..3 {
        let body = json!({ "url": format!("http://127.0.0.1:9/hook{n}"), "events": ["document.published"] });
        assert_eq!(staff(&f, "POST", "/staff/webhooks", Some(body)).await.status, 201);
    }
    let r = run(&f, at + Duration::seconds(1)).await;
    assert_eq!((r.due.published, r.due.failed, r.due.errors), (40, 0, 0), "{r:?}");
    assert_eq!(r.status, "ok", "{r:?}");
    // Their events (read through an index, as the job does: a moment later at most).
    let (mut events, mut deliveries) = (r.webhooks.events, r.webhooks.deliveries_created);
    for _ in 0..40 {
        if events >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let more = run(&f, at + Duration::seconds(1)).await.webhooks;
        (events, deliveries) = (events + more.events, deliveries + more.deliveries_created);
    }
    // Only what an endpoint wants is written: no report.unlocked, no inspection.created.
    assert_eq!(events, 40, "document.published for each");
    assert_eq!(deliveries, 120, "each publication to each of the three endpoints, once");
}

#[tokio::test]
async fn a_report_says_there_are_no_deficiencies_only_when_staff_said_so_and_shows_recorded_findings() {
    let settings = json!({ "auto_generate_inspection_reports": true,
        "release_defaults": { "require_payment": false, "require_agreement": false } });
    // Staff say: nothing found.
    let f = fixture(settings.clone()).await;
    let submit = format!("/staff/inspections/{}/submit", f.inspection_id);
    let r = staff(&f, "POST", &submit, Some(json!({ "findings": [] }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json["report"]["document_id"].as_str().unwrap().to_owned();
    let pdf = staff_pdf(&f, &doc).await;
    assert!(pdf.contains("The inspector recorded no deficiencies.") && pdf.contains("0 finding(s)"), "{pdf}");

    // Findings recorded one by one before submitting; one removed again.
    let g = fixture(settings).await;
    let path = format!("/staff/inspections/{}/findings", g.inspection_id);
    let empty = staff(&g, "GET", &path, None).await;
    assert_eq!((empty.json["recorded"].as_bool(), empty.json["items"].clone()), (Some(false), json!([])));
    let gas = json!({ "severity": "critical", "title": "Odeur de gaz près de la chaudière (Ελλάδα, Россия)" });
    let r = staff(&g, "POST", &path, Some(gas)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mistake = staff(&g, "POST", &path, Some(json!({ "severity": "low", "title": "Typo" }))).await;
    staff(&g, "POST", &path, Some(json!({ "severity": "low", "title": "x", "photos": ["http://plain.test/a.jpg"] })))
        .await
        .assert_problem(400);
    staff(&g, "POST", &path, Some(json!({ "severity": "dire", "title": "x" }))).await.assert_problem(400);
    let gone = format!("{path}/{}", mistake.json["id"].as_str().unwrap());
    assert_eq!(staff(&g, "DELETE", &gone, None).await.status, 204);
    staff(&g, "DELETE", &gone, None).await.assert_problem(404);
    let r = staff(&g, "POST", &format!("/staff/inspections/{}/submit", g.inspection_id), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pdf = staff_pdf(&g, r.json["report"]["document_id"].as_str().unwrap()).await;
    assert!(pdf.contains("1. [CRITICAL] Odeur de gaz près de la chaudière (Ελλάδα, Россия)"), "as written: {pdf}");
    assert!(!pdf.contains("Typo"), "{pdf}");
}

/// A document's PDF as staff download it, as text.
async fn staff_pdf(f: &Fixture, doc: &str) -> String {
    let r = f.app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let bytes = f.app.http.get(r.header("location").unwrap()).send().await.unwrap().bytes().await.unwrap();
    portal_tests::pdf_text(&bytes)
}

/// Photos uploaded to the inspection (a presigned POST of exactly that image type, at its own
/// key) and named by a finding are embedded in the generated report, scaled to the page; a photo
/// hosted elsewhere is listed, never fetched. Checked with poppler's `pdfimages`, as a reader
/// would see the file.
#[tokio::test]
async fn photos_stored_with_the_inspection_are_embedded_in_the_generated_report() {
    let settings = json!({ "auto_generate_inspection_reports": true,
        "release_defaults": { "require_payment": false, "require_agreement": false } });
    let f = fixture(settings).await;
    let photos = format!("/staff/inspections/{}/photos", f.inspection_id);
    staff(&f, "POST", &photos, Some(json!({ "content_type": "image/gif" }))).await.assert_problem(400);
    let mut keys = Vec::new();
    let jpeg = portal_tests::jpeg(1200, 900);
    let png = portal_tests::png(64, 48);
    for (content_type, bytes) in [("image/jpeg", &jpeg), ("image/png", &png)] {
        let r = staff(&f, "POST", &photos, Some(json!({ "content_type": content_type }))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let key = r.json["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with(&format!("companies/{}/inspections/{}/photos/", f.company_id, f.inspection_id)));
        // The form binds the type (S3 checks the signed policy; moto does not, so that part is
        // the policy's unit test).
        assert_eq!(r.json["upload"]["fields"]["Content-Type"], content_type);
        let status =
            portal_infra::uploads::post_file(&f.app.http, &r.json["upload"], bytes, content_type).await.unwrap();
        assert!(status.is_success(), "{status}");
        keys.push(key);
    }
    let findings = json!([{ "severity": "high", "title": "Cracked flue liner", "location": "Attic",
        "photos": [keys[0], keys[1], "https://photos.example.com/flue.jpg"] }]);
    let r = staff(
        &f,
        "POST",
        &format!("/staff/inspections/{}/submit", f.inspection_id),
        Some(json!({ "findings": findings })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json["report"]["document_id"].as_str().unwrap().to_owned();
    let d = f.app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    let bytes = f.app.http.get(d.header("location").unwrap()).send().await.unwrap().bytes().await.unwrap();
    let dir = std::env::temp_dir().join(format!("photos-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.pdf");
    std::fs::write(&file, &bytes).unwrap();
    let list = std::process::Command::new("pdfimages").arg("-list").arg(&file).output().expect("poppler's pdfimages");
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    // page num type width height color comp bpc enc …
    let images: Vec<(String, String, String)> = list
        .lines()
        .skip(2)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[3].to_owned(), c[4].to_owned(), c[8].to_owned())
        })
        .collect();
    assert_eq!(
        images,
        vec![("1200".into(), "900".into(), "jpeg".into()), ("64".into(), "48".into(), "image".into())],
        "{list}"
    );
    let text = portal_tests::pdf_text(&bytes);
    assert!(text.contains("Photo: https://photos.example.com/flue.jpg"), "{text}");
    assert!(!text.contains("/photos/"), "stored photos are shown, not named: {text}");
    std::fs::remove_dir_all(&dir).ok();
}

/// An uploaded photo as the portal's cover: checked when set, shown to link holders from the
/// portal's origin (not to anyone else), and put in the generated report.
#[tokio::test]
async fn an_uploaded_cover_photo_shows_in_the_portal_for_link_holders() {
    let f = fixture(json!({})).await;
    let upload = staff(
        &f,
        "POST",
        &format!("/staff/inspections/{}/photos", f.inspection_id),
        Some(json!({ "content_type": "image/png" })),
    )
    .await;
    let key = upload.json["key"].as_str().unwrap().to_owned();
    let cover = format!("/staff/inspections/{}/cover-photo", f.inspection_id);
    staff(&f, "PUT", &cover, Some(json!({ "key": key }))).await.assert_problem(400); // nothing there yet
    staff(&f, "PUT", &cover, Some(json!({ "key": "companies/x/inspections/y/photos/z.png" })))
        .await
        .assert_problem(400);
    let png = portal_tests::png(32, 24);
    assert!(portal_infra::uploads::post_file(&f.app.http, &upload.json["upload"], &png, "image/png")
        .await
        .unwrap()
        .is_success());
    let r = staff(&f, "PUT", &cover, Some(json!({ "key": key }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = f.app.send(f.app.http.get(f.app.url(&f.client)).header("accept", "text/html")).await;
    let src = format!("{}/cover", f.client);
    assert!(page.text.contains(&format!("src=\"{src}\"")), "{}", page.text);
    let served = f.app.http.get(f.app.url(&src)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().to_vec(), png);
    let nobody = f.app.http.get(f.app.url("/p/not-a-token/cover")).send().await.unwrap();
    assert_eq!(nobody.status(), 404, "only for link holders");
    // Emails show it too, through the recipient's own new link (which serves it).
    let asked = f.post(&format!("/share/{}/full-access", f.inspection_id), json!({ "email": f.client_email })).await;
    assert_eq!(asked.status, 202);
    f.app.run_jobs().await;
    let mail =
        f.app.emails_to(&f.client_email).await.into_iter().find(|m| m.body.contains("/cover\"")).expect("the photo");
    let img = mail.links.iter().find(|l| l.ends_with("/cover")).expect("its address").clone();
    assert_eq!(
        f.app.http.get(&img).send().await.unwrap().bytes().await.unwrap().to_vec(),
        png,
        "served to the email's reader"
    );
    assert_eq!(staff(&f, "DELETE", &cover, None).await.status, 204);
    let page = f.app.send(f.app.http.get(f.app.url(&f.client)).header("accept", "text/html")).await;
    assert!(!page.text.contains(&src));
}
