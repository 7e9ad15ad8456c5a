//! Documents you can trust: publishing right after an upload, completion exactly once per S3
//! object version (S3 events, `/uploaded`, publish), and downloads that serve exactly the PDF that
//! was verified, whatever is uploaded after it.

use portal_tests::{fixture, Fixture, TEST_PDF};
use serde_json::json;
use sha2::Digest;

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

async fn upload(f: &Fixture, kind: &str) -> (String, serde_json::Value) {
    let body = json!({ "kind": kind, "title": "Report", "template_name": "Residential Inspection" });
    let (id, r) = f.app.put_document(&f.key, &f.inspection_id.to_string(), body, TEST_PDF, "application/pdf").await;
    (id, r.json["upload"].clone())
}

async fn post(f: &Fixture, form: &serde_json::Value, bytes: &[u8]) {
    let status = portal_infra::uploads::post_file(&f.app.http, form, bytes, "application/pdf").await.unwrap();
    assert!(status.is_success(), "{status}");
}

async fn publish(f: &Fixture, doc: &str) -> portal_tests::Reply {
    f.app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&f.key), None).await
}

/// The bytes a staff download serves now.
async fn served(f: &Fixture, doc: &str) -> Vec<u8> {
    let r = f.app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let url = r.header("location").unwrap().to_owned();
    f.app.http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec()
}

fn object_key(f: &Fixture, doc: &str) -> String {
    portal_shared::domain::document::object_key(f.company_id, f.inspection_id, doc.parse().unwrap())
}

#[tokio::test]
async fn upload_then_publish_at_once_works_and_completes_once_however_often_it_is_told() {
    let f = fixture(json!({})).await;
    let (doc, _) = upload(&f, "inspection_report").await;
    // No `/uploaded` call: publishing completes the upload itself.
    let r = publish(&f, &doc).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["document"]["file_version"], 1);
    // The S3 event arrives (twice, as it may), and a client calls /uploaded too.
    let key = object_key(&f, &doc);
    f.app.functions.publish.uploads_completed(&[key.clone(), key.clone()]).await;
    assert_eq!(f.app.complete_upload(&f.key, &doc).await.status, 200);
    let d = f.inspection().await.documents.into_iter().find(|d| d.id.to_string() == doc).unwrap();
    assert_eq!(d.file_version, 1, "one completion for one object version");
    assert_eq!(f.app.run_jobs().await.sent, 2, "one email per recipient (client, buyer's agent)");
    // Unpublish and publish the same version again: nobody is emailed twice.
    f.app.request("POST", &format!("/staff/documents/{doc}/unpublish"), Some(&f.key), None).await;
    assert_eq!(publish(&f, &doc).await.status, 200);
    assert_eq!(f.app.run_jobs().await.sent, 0);
}

#[tokio::test]
async fn publishing_a_document_with_no_pdf_says_so() {
    let f = fixture(json!({})).await;
    let r = f
        .app
        .request(
            "POST",
            &format!("/staff/inspections/{}/documents", f.inspection_id),
            Some(&f.key),
            Some(json!({ "kind": "invoice", "title": "Invoice" })),
        )
        .await;
    let doc = r.json["document_id"].as_str().unwrap().to_owned();
    let r = publish(&f, &doc).await;
    r.assert_problem(409);
    assert_eq!(r.json["type"], "/problems/not-uploaded");
}

#[tokio::test]
async fn downloads_serve_the_verified_pdf_whatever_is_uploaded_after_it() {
    let f = fixture(json!({})).await;
    let (doc, form) = upload(&f, "inspection_report").await;
    assert_eq!(publish(&f, &doc).await.status, 200);
    assert_eq!(sha(&served(&f, &doc).await), sha(TEST_PDF));
    // Someone replaces the object with other bytes (the upload form was still valid).
    post(&f, &form, b"not a pdf at all, but lots of bytes").await;
    let key = object_key(&f, &doc);
    f.app.functions.publish.uploads_completed(&[key]).await;
    f.app.complete_upload(&f.key, &doc).await.assert_problem(409);
    assert_eq!(sha(&served(&f, &doc).await), sha(TEST_PDF), "the verified bytes, not the new ones");
    // The client's gate serves the same verified version.
    let d = f.inspection().await.documents.into_iter().find(|d| d.id.to_string() == doc).unwrap();
    assert_eq!(d.file_version, 1);
    // A new valid PDF is a new verified version, served from then on.
    let v2 = b"%PDF-1.4\n% version two\n%%EOF\n".to_vec();
    post(&f, &form, &v2).await;
    assert_eq!(f.app.complete_upload(&f.key, &doc).await.status, 200);
    assert_eq!(sha(&served(&f, &doc).await), sha(&v2));
}

#[tokio::test]
async fn s3_events_complete_uploads_like_aws_and_a_repeat_changes_nothing() {
    let f = fixture(json!({ "auto_publish": { "inspection_reports": true } })).await;
    let events =
        portal_infra::s3_events::S3Events::new(&f.app.sdk, f.app.functions.clone(), f.app.names.bucket.clone(), true);
    let (doc, _) = upload(&f, "inspection_report").await; // no /uploaded, no publish call
    assert!(events.poll_once().await >= 1, "the upload's event was delivered");
    let d = f.inspection().await.documents.into_iter().find(|d| d.id.to_string() == doc).unwrap();
    assert!(d.published, "the event completed it and it auto-published");
    assert_eq!(d.file_version, 1);
    assert_eq!(events.poll_once().await, 0, "each version is delivered once per poll, repeats at most twice");
    // However often the completion is repeated, one email per recipient.
    let key = object_key(&f, &doc);
    f.app.functions.publish.uploads_completed(&[key.clone(), key]).await;
    assert_eq!(f.app.run_jobs().await.sent, 2);
}
