//! A company leaving the platform (issue 27): its whole export (a ZIP of its items and PDFs), then
//! its deletion — at once its keys and links stop, then the job deletes every item and object
//! version in bounded steps, leaving only a tombstone.

use futures::stream::{self, StreamExt};
use portal_tests::{fixture, spawn_app, TEST_PDF};
use serde_json::{json, Value};

/// The ZIP's files and their bytes, read by Python's `zipfile` (an independent reader; it checks
/// every CRC).
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let path = std::env::temp_dir().join(format!("export-{}.zip", ulid::Ulid::new()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, zipfile, base64\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None\n\
             print(json.dumps({n: base64.b64encode(z.read(n)).decode() for n in z.namelist()}))",
        )
        .arg(&path)
        .output()
        .expect("python3");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: std::collections::BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine;
    files.into_iter().map(|(n, b)| (n, base64::engine::general_purpose::STANDARD.decode(b).unwrap())).collect()
}

#[tokio::test]
async fn a_company_leaves_with_its_export_and_nothing_of_it_is_left_but_the_tombstone() {
    let f = fixture(json!({})).await;
    let app = &f.app;
    let (c, inspection) = (f.company_id.to_string(), f.inspection_id.to_string());
    // A published report, a payment-free portal view, an email sent.
    let (doc, _) = app
        .put_document(
            &f.key,
            &inspection,
            json!({ "kind": "inspection_report", "title": "Report" }),
            TEST_PDF,
            "application/pdf",
        )
        .await;
    assert_eq!(app.complete_upload(&f.key, &doc).await.status, 200);
    assert_eq!(app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&f.key), None).await.status, 200);
    assert_eq!(f.view(&f.client).await.status, 200);
    app.run_jobs().await;
    // Another company, which must not lose anything.
    let (other, other_key) = app.create_company("Other Inspections", &["o@other.test"]).await;
    let kept = app
        .request(
            "POST",
            "/staff/inspections",
            Some(&other_key),
            Some(json!({ "address": "9 Kept Road", "scheduled_at": portal_tests::days_from_now(3), "notify": false,
                "people": [{ "role": "client", "name": "Kim", "email": portal_tests::unique("kim") }] })),
        )
        .await;
    assert_eq!(kept.status, 201, "{}", kept.text);
    let kept_id = kept.json["inspection_id"].as_str().unwrap().to_owned();
    let (other_doc, _) = app
        .put_document(
            &other_key,
            &kept_id,
            json!({ "kind": "invoice", "title": "Invoice" }),
            TEST_PDF,
            "application/pdf",
        )
        .await;
    assert_eq!(app.complete_upload(&other_key, &other_doc).await.status, 200);

    // The export: made by the job, a ZIP of the items by kind and the verified PDFs.
    let asked = app.admin("POST", &format!("/admin/companies/{c}/export"), None).await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let id = asked.json["id"].as_str().unwrap().to_owned();
    let pending = app.admin("GET", &format!("/admin/companies/{c}/exports/{id}"), None).await;
    assert_eq!((pending.json["state"].as_str(), pending.json["url"].is_null()), (Some("pending"), true));
    app.run_jobs().await;
    let ready = app.admin("GET", &format!("/admin/companies/{c}/exports/{id}"), None).await;
    assert_eq!(ready.json["state"], "ready", "{}", ready.text);
    assert_eq!(ready.json["documents"], 1);
    let zip = reqwest::get(ready.json["url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    let files = unzip(&zip);
    assert_eq!(files.get(&format!("documents/{inspection}/{doc}.pdf")).map(Vec::as_slice), Some(TEST_PDF));
    let lines = |kind: &str| -> Vec<Value> {
        let text = String::from_utf8(files.get(&format!("items/{kind}.jsonl")).cloned().unwrap_or_default()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    assert_eq!(lines("company")[0]["name"], "Lakeside Home Inspections");
    assert_eq!(lines("inspection")[0]["id"], inspection.as_str());
    assert!(lines("email").iter().any(|e| e["document_id"] == doc.as_str()), "the report's emails");
    assert!(!lines("staff_key").is_empty() && !lines("token").is_empty());
    // No table keys, stored hashes or secrets.
    for (name, bytes) in files.iter().filter(|(n, _)| n.starts_with("items/")) {
        let text = String::from_utf8_lossy(bytes);
        for word in ["\"PK\"", "TOKEN#", "STAFFKEY#", "_hash\"", "secret\""] {
            assert!(!text.contains(word), "{name} holds {word}");
        }
    }
    assert!(files.contains_key("README.txt"));
    let everything = files.values().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<String>();
    assert!(!everything.contains(&other) && !everything.contains(&kept_id), "nothing of the other company");

    // Deleting needs a confirmation: a ready export of the last 7 days or the exact name.
    let path = format!("/admin/companies/{c}");
    assert_eq!(app.admin("DELETE", &path, Some(json!({}))).await.status, 400);
    assert_eq!(app.admin("DELETE", &path, Some(json!({ "confirm": "lakeside home inspections" }))).await.status, 400);
    app.admin("DELETE", &path, Some(json!({ "export_id": "01jnotanexport" }))).await.assert_problem(409);
    assert_eq!(app.admin("GET", &path, None).await.status, 200, "nothing changed");
    let deleting = app.admin("DELETE", &path, Some(json!({ "export_id": id }))).await;
    assert_eq!(deleting.status, 202, "{}", deleting.text);
    assert_eq!(deleting.json["state"], "deleting");

    // At once: the company, its staff keys and its links answer 404.
    assert_eq!(app.admin("GET", &path, None).await.status, 404);
    assert_eq!(app.request("GET", "/staff/settings", Some(&f.key), None).await.status, 404);
    assert_eq!(app.request("GET", &format!("/staff/inspections/{inspection}"), Some(&f.key), None).await.status, 404);
    assert_eq!(f.view(&f.client).await.status, 404);
    assert_eq!(app.admin("DELETE", &path, Some(json!({ "export_id": id }))).await.status, 404, "once");

    // The job deletes the rest; only the tombstone names the company.
    app.run_jobs().await;
    let done = app.admin("GET", &format!("{path}/deletion"), None).await;
    assert_eq!(done.json["state"], "deleted", "{}", done.text);
    assert!(done.json["deleted_at"].is_string() && done.json["items_deleted"].as_u64().unwrap() > 10, "{}", done.text);
    let left: Vec<String> =
        app.all_items().await.iter().map(|i| format!("{i:?}")).filter(|text| text.contains(&c)).collect();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert!(left[0].contains("TOMBSTONE"), "{}", left[0]);
    let objects = app.all_object_versions().await;
    assert!(objects.iter().all(|(key, _)| !key.contains(&c)), "{:?}", objects.iter().map(|o| &o.0).collect::<Vec<_>>());
    // The other company is whole.
    assert!(objects.iter().any(|(key, _)| key.contains(&other)));
    assert_eq!(app.request("GET", &format!("/staff/inspections/{kept_id}"), Some(&other_key), None).await.status, 200);
}

#[tokio::test]
async fn a_company_with_2000_inspections_is_deleted_in_bounded_steps_across_several_job_runs() {
    let app = spawn_app().await;
    let (c, key) = app.create_company("Big Fire Safety Co", &["ops@bigfire.test"]).await;
    let created: Vec<u16> = stream::iter(0..2000u32)
        .map(|n| {
            let (app, key) = (&app, &key);
            async move {
                let body = json!({ "address": format!("{n} Sprinkler Way"), "scheduled_at": portal_tests::days_from_now(2),
                    "notify": false, "people": [{ "role": "client", "name": "Owner", "email": format!("owner{n}@bigfire.test") }] });
                app.request("POST", "/staff/inspections", Some(key), Some(body)).await.status
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(created.iter().all(|s| *s == 201), "{created:?}");
    let before = app.all_items().await.iter().filter(|i| format!("{i:?}").contains(&c)).count();
    assert!(before > 4000, "{before}");

    let path = format!("/admin/companies/{c}");
    let deleting = app.admin("DELETE", &path, Some(json!({ "confirm": "Big Fire Safety Co" }))).await;
    assert_eq!(deleting.status, 202, "{}", deleting.text);
    assert_eq!(app.request("GET", "/staff/inspections", Some(&key), None).await.status, 404, "its key stops at once");
    let mut runs = 0;
    loop {
        let report = app.job_at(app.clock.now()).await;
        runs += 1;
        assert!(report.company_deletions.steps <= 20, "a run takes at most 20 steps: {report:?}");
        let state = app.admin("GET", &format!("{path}/deletion"), None).await;
        if state.json["state"] == "deleted" {
            assert_eq!(state.json["items_deleted"].as_u64(), Some(before as u64 - 1), "{}", state.text);
            break;
        }
        assert!(runs < 30, "{}", state.text);
    }
    assert!(runs >= 2, "bounded: {runs} run(s)");
    let left = app.all_items().await.iter().filter(|i| format!("{i:?}").contains(&c)).count();
    assert_eq!(left, 1, "the tombstone only");
}
