//! Report gating and PDF delivery end to end: staff register and upload a PDF through a presigned
//! PUT, publish it, and clients open it through the gate (303 to S3, 403 with reasons, 404).

use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use portal_tests::{fixture, Fixture, Reply};
use serde_json::{json, Value};

const PDF: &[u8] = portal_tests::TEST_PDF;

/// Every log line the functions write in this test binary at the level they run with in the cloud
/// (`RUST_LOG=info` in template.yaml), to prove what never appears in them.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Writer(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The decoded text/plain part of a raw MIME email.
fn mime_text_part(raw: &str) -> String {
    let marker = "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    let start = raw.find(marker).expect("a text part") + marker.len();
    let b64: String = raw[start..].lines().take_while(|l| !l.starts_with("--")).collect();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap()).unwrap()
}

async fn setup(settings: Value) -> Fixture {
    logs();
    fixture(settings).await
}

/// Registers a document, uploads `body` to its presigned PUT, and asks staff to verify it.
async fn upload(
    f: &Fixture,
    kind: &str,
    title: &str,
    template: Option<&str>,
    body: &[u8],
    ct: &str,
) -> (String, Reply) {
    let doc = json!({ "kind": kind, "title": title, "template_name": template });
    let (id, _) = f.app.put_document(&f.key, &f.inspection_id.to_string(), doc, body, ct).await;
    let done = f.app.complete_upload(&f.key, &id).await;
    (id, done)
}

async fn published_report(f: &Fixture) -> String {
    let (id, done) =
        upload(f, "inspection_report", "Report", Some("Residential Inspection"), PDF, "application/pdf").await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json["uploaded"], true);
    let p = f.app.request("POST", &format!("/staff/documents/{id}/publish"), Some(&f.key), None).await;
    assert_eq!(p.status, 200, "{}", p.text);
    id
}

async fn open(f: &Fixture, link: &str, doc: &str) -> Reply {
    f.app.send(f.app.http.get(f.app.url(&format!("{link}/documents/{doc}"))).header("accept", "application/json")).await
}

fn reasons(r: &Reply) -> Value {
    r.assert_problem(403);
    r.json["lock_reasons"].clone()
}

/// Records money received (or, with `refund`, given back) offline.
async fn ledger(f: &Fixture, body: Value) {
    let path = format!("/staff/inspections/{}/payments", f.inspection_id);
    let r = f.app.request("POST", &path, Some(&f.key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn pay(f: &Fixture, cents: i64) {
    ledger(f, json!({ "amount_cents": cents, "method": "check", "reference": "#1042" })).await;
}

async fn sign(f: &Fixture) {
    let r = f.post(&format!("{}/agreement", f.client), json!({ "typed_name": "Jane Client" })).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A 303 to the PDF: expiry ≤ 300 s, a file name, and the bytes uploaded.
async fn assert_delivers(f: &Fixture, r: &Reply, file_name: &str) {
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(r.round_trips() <= 2, "document open budget: {}", r.round_trips());
    let location = r.header("location").unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let expires: u64 = q["X-Amz-Expires"].parse().unwrap();
    assert!(expires <= 300, "presigned URL lives {expires} s");
    assert!(q["response-content-disposition"].contains(&format!("filename=\"{file_name}\"")), "{q:?}");
    let pdf = reqwest::get(location).await.unwrap().bytes().await.unwrap();
    assert_eq!(&pdf[..], PDF);
    assert_eq!(r.text, "", "the URL is only in Location");
    let _ = f;
}

#[tokio::test]
async fn a_report_locks_and_unlocks_with_payment_and_agreement_and_relocks_after_an_addon() {
    let f =
        setup(json!({ "payments": "native", "addon_catalog": [{ "name": "Radon test", "price_cents": 15000 }] })).await;
    let doc = published_report(&f).await;

    let r = open(&f, &f.client, &doc).await;
    assert_eq!(
        reasons(&r),
        json!([{"code": "payment_required", "amount_due_cents": 45000}, {"code": "agreement_unsigned"}])
    );
    assert!(r.round_trips() <= 2, "{}", r.round_trips());
    assert!(r.json["detail"].as_str().unwrap().contains("$450.00"), "{}", r.text);
    let page = f
        .app
        .send(f.app.http.get(f.app.url(&format!("{}/documents/{doc}", f.client))).header("accept", "text/html"))
        .await;
    assert_eq!(page.status, 403);
    assert!(page.text.contains("Payment required: pay the balance of $450.00"), "{}", page.text);
    assert!(page.text.contains("Agreement unsigned"));
    assert!(page.text.contains(&format!("href=\"{}\"", f.client)), "the page leads back to the portal");

    pay(&f, 45000).await;
    assert_eq!(reasons(&open(&f, &f.client, &doc).await), json!([{"code": "agreement_unsigned"}]));
    sign(&f).await;
    let r = open(&f, &f.client, &doc).await;
    assert_delivers(&f, &r, "Residential Inspection Report.pdf").await;
    assert_eq!(open(&f, &f.agent, &doc).await.status, 303, "the buyer's agent follows the same gate");
    let view = f.view(&f.client).await.json;
    assert_eq!(view["documents"][0]["state"], "available", "the portal shows the same decision");

    // The client requests an add-on: the report locks again for the difference and the new version.
    let addon = view["addon_offers"][0]["id"].as_str().unwrap().to_owned();
    f.post(&format!("{}/addons", f.client), json!({ "addon_ids": [addon] })).await;
    assert_eq!(
        reasons(&open(&f, &f.client, &doc).await),
        json!([{"code": "payment_required", "amount_due_cents": 15000}, {"code": "agreement_unsigned"}])
    );
    assert_eq!(f.view(&f.client).await.json["documents"][0]["state"], "locked");
    pay(&f, 15000).await;
    sign(&f).await;
    assert_delivers(&f, &open(&f, &f.client, &doc).await, "Residential Inspection Report.pdf").await;

    // A refund that opens a balance locks it again.
    ledger(&f, json!({ "amount_cents": 5000, "method": "cash", "refund": true })).await;
    assert_eq!(
        reasons(&open(&f, &f.client, &doc).await),
        json!([{"code": "payment_required", "amount_due_cents": 5000}])
    );
}

#[tokio::test]
async fn unpublished_missing_and_other_inspections_documents_are_404() {
    let f = setup(json!({ "release_defaults": { "require_payment": false, "require_agreement": false } })).await;
    let doc = published_report(&f).await;
    assert_eq!(open(&f, &f.client, &doc).await.status, 303);
    open(&f, &f.listing, &doc).await.assert_problem(404);

    let other = setup(json!({})).await;
    let theirs = published_report(&other).await;
    // Another company's document id, and an unknown id, through a valid link.
    open(&f, &f.client, &theirs).await.assert_problem(404);
    open(&f, &f.client, "01ARZ3NDEKTSV4RRFFQ69G5FAV").await.assert_problem(404);
    open(&f, &f.client, "nope").await.assert_problem(404);

    let un = f.app.request("POST", &format!("/staff/documents/{doc}/unpublish"), Some(&f.key), None).await;
    assert_eq!((un.status, &un.json["changed"]), (200, &json!(true)));
    let again = f.app.request("POST", &format!("/staff/documents/{doc}/unpublish"), Some(&f.key), None).await;
    assert_eq!(again.json["changed"], false, "unpublishing twice changes nothing");
    let r = open(&f, &f.client, &doc).await;
    r.assert_problem(404);
    assert!(r.round_trips() <= 2);
    assert_eq!(f.view(&f.client).await.json["documents"], json!([]));
    // Bad tokens are 404 before anything else.
    open(&f, "/p/garbage", &doc).await.assert_problem(404);
}

#[tokio::test]
async fn only_real_pdfs_are_accepted_and_only_uploaded_documents_publish() {
    let f = setup(json!({})).await;
    let (id, r) = upload(&f, "attachment", "Photos", None, b"GIF89a not a pdf", "application/pdf").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json["type"], "/problems/upload-rejected");
    assert!(r.json["detail"].as_str().unwrap().contains("not a PDF"));
    let (_, r) = upload(&f, "attachment", "Notes", None, PDF, "text/plain").await;
    assert_eq!(r.status, 409);
    assert!(r.json["detail"].as_str().unwrap().contains("application/pdf"), "{}", r.text);

    let p = f.app.request("POST", &format!("/staff/documents/{id}/publish"), Some(&f.key), None).await;
    p.assert_problem(409);
    assert_eq!(p.json["type"], "/problems/not-uploaded");
    let bad = f
        .app
        .request(
            "POST",
            &format!("/staff/inspections/{}/documents", f.inspection_id),
            Some(&f.key),
            Some(json!({ "kind": "spreadsheet", "title": "x" })),
        )
        .await;
    bad.assert_problem(400);
    let docs =
        f.app.request("GET", &format!("/staff/inspections/{}/documents", f.inspection_id), Some(&f.key), None).await;
    assert_eq!(docs.json["items"].as_array().unwrap().len(), 2, "the refused kind wrote nothing");
    assert!(docs.json["items"].as_array().unwrap().iter().all(|d| d["uploaded"] == false));
}

#[tokio::test]
async fn a_wdi_report_waits_for_its_form() {
    let f = setup(json!({ "release_defaults": { "require_payment": false, "require_agreement": false } })).await;
    let (doc, _) = upload(&f, "wdi_report", "WDI Report", None, PDF, "application/pdf").await;
    f.app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&f.key), None).await;
    assert_eq!(reasons(&open(&f, &f.client, &doc).await), json!([{"code": "form_incomplete"}]));
    let r = f
        .app
        .request("PATCH", &format!("/staff/documents/{doc}"), Some(&f.key), Some(json!({ "form_complete": true })))
        .await;
    assert_eq!(r.json["form_complete"], true, "{}", r.text);
    assert_eq!(open(&f, &f.client, &doc).await.status, 303);
}

#[tokio::test]
async fn staff_preview_exactly_what_a_person_sees_and_every_open_is_audited() {
    // Clients pay in the portal: the preview must offer what the client is offered (Pay Now),
    // which the staff API knows only from the variables the template gives it.
    let f = setup(json!({ "payments": "native" })).await;
    let doc = published_report(&f).await;
    let people = f.inspection().await.people;
    let (client, listing) = (people[0].id, people[2].id);
    let preview = format!("/staff/inspections/{}/preview", f.inspection_id);

    let own = f.view(&f.client).await.json;
    let seen = f
        .app
        .send(
            f.app
                .http
                .get(f.app.url(&format!("{preview}/{client}")))
                .bearer_auth(&f.key)
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(own["payment"]["action"], "pay_now", "{own}");
    assert_eq!(seen.json, own, "the preview is the client's own view");
    let html = f.app.send(f.app.http.get(f.app.url(&format!("{preview}/{client}"))).bearer_auth(&f.key)).await;
    assert!(html.text.contains("Staff preview") && !html.text.contains("<form"), "read-only");
    let as_client = f.app.request("GET", &format!("{preview}/{client}/documents/{doc}"), Some(&f.key), None).await;
    assert_eq!(reasons(&as_client).as_array().unwrap().len(), 2);
    f.app.request("GET", &format!("{preview}/{listing}/documents/{doc}"), Some(&f.key), None).await.assert_problem(404);
    let staff = f.app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    assert_eq!(staff.status, 303, "staff always pass");
    f.app.request("GET", &format!("{preview}/{client}"), None, None).await.assert_problem(401);

    open(&f, &f.client, &doc).await;
    open(&f, &f.client, "01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    let trail =
        f.app.request("GET", &format!("/staff/inspections/{}/audit", f.inspection_id), Some(&f.key), None).await;
    let items = trail.json["items"].as_array().unwrap();
    let actions: Vec<(&str, &str)> =
        items.iter().map(|a| (a["action"].as_str().unwrap(), a["outcome"].as_str().unwrap())).collect();
    assert_eq!(
        actions,
        [
            ("document_open", "not_found"),
            ("document_open", "locked"),
            ("document_open", "allowed"),
            ("document_preview", "not_found"),
            ("document_preview", "locked"),
            ("portal_preview", "allowed"),
            ("portal_preview", "allowed")
        ],
        "newest first"
    );
    let open_record = &items[1];
    assert_eq!(open_record["actor"]["kind"], "person");
    assert_eq!(open_record["actor"]["person_id"], client.to_string());
    assert!(open_record["actor"]["token_id"].is_string());
    assert_eq!(open_record["lock_reasons"], json!(["payment_required", "agreement_unsigned"]));
    assert_eq!(
        items[2]["actor"],
        json!({"kind": "staff", "key_id": items[2]["actor"]["key_id"], "key_name": "First key", "as_person": null})
    );
    assert_eq!(items[3]["actor"]["as_person"], listing.to_string());
    let token = f.client.trim_start_matches("/p/");
    assert!(!trail.text.contains(token), "audit records hold the token id, never the token");
    let page = f
        .app
        .request("GET", &format!("/staff/inspections/{}/audit?limit=2", f.inspection_id), Some(&f.key), None)
        .await;
    assert_eq!(page.json["items"].as_array().unwrap().len(), 2);
    let cursor = page.json["next_cursor"].as_str().unwrap();
    let next = f
        .app
        .request(
            "GET",
            &format!("/staff/inspections/{}/audit?limit=2&cursor={cursor}", f.inspection_id),
            Some(&f.key),
            None,
        )
        .await;
    assert_eq!(next.json["items"][0], items[2], "pages continue where they left off");
}

#[tokio::test]
async fn staff_resend_the_pdf_by_email_and_no_s3_link_is_ever_stored_sent_or_logged() {
    let f = setup(json!({})).await;
    let doc = published_report(&f).await;
    pay(&f, 45000).await;
    sign(&f).await;
    let delivered = open(&f, &f.client, &doc).await;
    assert_eq!(delivered.status, 303);
    let signature = reqwest::Url::parse(delivered.header("location").unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Signature")
        .unwrap()
        .1
        .into_owned();

    // The first click a second before a 10-minute boundary of the clock, the second click a
    // second after it: the window runs from the first click, so they are one email.
    let window = portal_shared::adapters::store::outbox::STAFF_REPEAT_WINDOW_SECONDS;
    f.app.clock.set(f.app.next_window_start(window) - time::Duration::seconds(1));
    let r = f.app.request("POST", &format!("/staff/documents/{doc}/resend"), Some(&f.key), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["queued"].as_array().unwrap().len(), 1, "one client");
    f.app.clock.advance(time::Duration::seconds(2));
    // Through the outbox, like every email: a second click moments later is the same request.
    let again = f.app.request("POST", &format!("/staff/documents/{doc}/resend"), Some(&f.key), None).await;
    assert_eq!(again.status, 202, "{}", again.text);
    f.app.run_jobs().await;
    // (The job also sends what publishing queued: the resend is the email with the PDF.)
    let mails: Vec<_> =
        f.app.emails_to(&f.client_email).await.into_iter().filter(|m| m.raw.contains("attachment;")).collect();
    assert_eq!(mails.len(), 1, "one email for the two clicks");
    let raw = &mails[0].raw;
    assert!(raw.contains("Content-Disposition: attachment; filename=\"Residential Inspection Report.pdf\""));
    let unwrapped = raw.replace("\r\n", "");
    assert!(unwrapped.contains(&base64::engine::general_purpose::STANDARD.encode(PDF)), "the PDF is attached");
    // The text part carries the client's own fresh portal link, which works.
    let text = mime_text_part(raw);
    assert!(text.contains("attached"), "{text}");
    let link = text.split_whitespace().find(|w| w.contains("/p/")).expect("a portal link").to_owned();
    assert_eq!(f.view(link.strip_prefix(&f.app.base).unwrap()).await.status, 200);
    let nobody = f
        .app
        .request(
            "POST",
            &format!("/staff/documents/{doc}/resend"),
            Some(&f.key),
            Some(json!({ "person_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV" })),
        )
        .await;
    nobody.assert_problem(400);

    // Nowhere but the 303's Location: not in stored items, emails, other responses or logs.
    let items = format!("{:?}", f.app.all_items().await);
    let logged = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
    let token = f.client.trim_start_matches("/p/");
    for (place, text) in [("stored items", &items), ("email", raw), ("logs", &logged), ("resend response", &r.text)] {
        for needle in ["X-Amz-", &signature, &f.app.names.bucket] {
            if let Some(at) = text.find(needle) {
                panic!("{place} contain {needle:?}: …{}…", &text[at.saturating_sub(300)..(at + 200).min(text.len())]);
            }
        }
    }
    assert!(logged.contains("document open"), "the logs were captured");
    assert!(!logged.contains(token), "tokens never reach a log line");
}
