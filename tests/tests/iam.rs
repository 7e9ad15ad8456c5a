//! IAM as AWS enforces it: every AWS operation a function's code calls (recorded by an SDK
//! interceptor while this test drives every kind of request through the local gateway) must be
//! granted by that function's policy in `template.yaml`, and the policy grants nothing more than
//! what the code uses plus the documented needs (a transaction's item actions, `s3:ListBucket` so
//! a missing object is 404 and not 403, `s3:GetObjectVersion` for verified-version reads).
//!
//! The one test of this file runs alone in its process: the recorder is process-wide.

use std::collections::{BTreeMap, BTreeSet};

use portal_shared::adapters::roundtrips::{as_function, calls};
use portal_tests::{fixture, TEST_PDF};
use serde_json::json;

/// The IAM actions an SDK operation needs.
fn actions(service: &str, op: &str) -> Vec<String> {
    let s = match service.to_ascii_lowercase().as_str() {
        s if s.contains("dynamo") => "dynamodb",
        s if s.contains("s3") => "s3",
        s if s.contains("secret") => "secretsmanager",
        s if s.contains("ses") || s.contains("email") => "ses",
        other => panic!("an unexpected service {other}"),
    };
    match (s, op) {
        // A transaction needs its items' actions: every transaction here puts an item.
        ("dynamodb", "TransactWriteItems") => vec!["dynamodb:PutItem".into()],
        ("s3", "HeadObject") => vec!["s3:GetObject".into()],
        // Versions are listed and deleted one by one (an erasure's export files).
        ("s3", "ListObjectVersions") => vec!["s3:ListBucketVersions".into()],
        ("s3", "DeleteObject") => vec!["s3:DeleteObjectVersion".into()],
        // A company export is uploaded in parts.
        ("s3", "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload") => vec!["s3:PutObject".into()],
        _ => vec![format!("{s}:{op}")],
    }
}

/// What each function's policy grants, from template.yaml.
fn granted() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for (name, r) in doc["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let mut set = BTreeSet::new();
        for policy in r["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                match &st["Action"] {
                    serde_yaml::Value::String(a) => {
                        set.insert(a.clone());
                    }
                    serde_yaml::Value::Sequence(list) => {
                        set.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)));
                    }
                    _ => {}
                }
            }
        }
        out.insert(name.as_str().unwrap().to_owned(), set);
    }
    out
}

/// Grants that need no recorded call, and why.
fn documented(function: &str, used: &BTreeSet<String>, recorded: &BTreeSet<String>) -> BTreeSet<String> {
    let mut ok = BTreeSet::new();
    if recorded.contains("TransactWriteItems") {
        // A transaction's items: puts, updates, deletes and condition checks.
        ok.extend(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]);
    }
    if used.contains("s3:GetObject") {
        ok.insert("s3:GetObjectVersion"); // the verified version is what is read and served
        if function != "GateFunction" {
            ok.insert("s3:ListBucket"); // HeadObject on a missing key: 404, not 403
        }
    }
    if recorded.contains("CompleteMultipartUpload") {
        ok.insert("s3:AbortMultipartUpload"); // a company export that fails gives up its parts
    }
    ok.into_iter().map(str::to_owned).collect()
}

#[test]
fn every_function_is_granted_exactly_what_its_code_calls() {
    // The whole journey is one large future: give it room.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_stack_size(16 << 20)
                .enable_all()
                .build()
                .unwrap()
                .block_on(Box::pin(journey()))
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn journey() {
    // Drive every kind of request through the gateway (each handler runs as its function).
    let f = fixture(json!({ "payments": "native", "auto_generate_inspection_reports": true,
        "release_defaults": { "require_agreement": false } }))
    .await;
    let app = &f.app;
    let inspection = f.inspection_id.to_string();
    let (doc, _) = app
        .put_document(
            &f.key,
            &inspection,
            json!({ "kind": "inspection_report", "title": "R" }),
            TEST_PDF,
            "application/pdf",
        )
        .await;
    assert_eq!(app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&f.key), None).await.status, 200);
    assert_eq!(app.complete_upload(&f.key, &doc).await.status, 200);
    app.request("GET", &format!("/staff/documents/{doc}/download"), Some(&f.key), None).await;
    app.request("POST", &format!("/staff/documents/{doc}/resend"), Some(&f.key), Some(json!({}))).await;
    app.request(
        "POST",
        &format!("/staff/inspections/{inspection}/submit"),
        Some(&f.key),
        Some(json!({ "findings": [] })),
    )
    .await;
    let generated = f.inspection().await.documents.iter().find(|d| d.generated).map(|d| d.id.to_string());
    if let Some(g) = generated {
        app.request("POST", &format!("/staff/documents/{g}/rebuild"), Some(&f.key), None).await;
    }
    f.view(&f.client).await;
    f.post(&format!("{}/pay", f.client), json!({})).await;
    f.post(&format!("/share/{inspection}/full-access"), json!({ "email": f.client_email })).await;
    app.send(app.http.get(app.url(&format!("/share/{inspection}")))).await;
    // "All my inspections": ask, the job's sign-in email, sign in, list, open, staff end, log out.
    let me = format!("/me/{}", f.company_id);
    f.post(&me, json!({ "email": f.client_email })).await;
    app.run_jobs().await;
    let mails = app.emails_to(&f.client_email).await;
    let sign_in = mails.iter().flat_map(|m| m.links.iter()).find(|l| l.contains("/signin/")).expect("sign-in link");
    app.send(app.http.get(sign_in)).await;
    let started = app.send(app.http.post(sign_in)).await;
    let cookie = started.header("set-cookie").expect("session").split(';').next().unwrap().to_owned();
    app.send(app.http.get(app.url(&me)).header("cookie", &cookie).header("accept", "application/json")).await;
    app.send(app.http.get(app.url(&format!("{me}/inspections/{inspection}"))).header("cookie", &cookie)).await;
    app.send(app.http.post(app.url(&format!("{me}/logout"))).header("cookie", &cookie)).await;
    app.request("POST", "/staff/sessions/end", Some(&f.key), Some(json!({ "email": f.client_email }))).await;
    let body = json!({ "id": "evt_iam", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": { "object": { "id": "pi_iam", "amount": 45000, "currency": "usd", "metadata": {
            "company_id": f.company_id.to_string(), "inspection_id": inspection } } } })
    .to_string();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = portal_shared::adapters::stripe::signature::sign(portal_tests::WEBHOOK_SECRET, t, body.as_bytes());
    app.send(
        app.http.post(app.url("/webhooks/payments")).header("stripe-signature", format!("t={t},v1={sig}")).body(body),
    )
    .await;
    // Paid now: the client's document opens (a presigned GET of the verified version).
    let open = app.send(app.http.get(app.url(&format!("{}/documents/{doc}", f.client)))).await;
    assert_eq!(open.status, 303, "{}", open.text);
    for (m, p) in [("GET", "/staff/keys"), ("GET", "/staff/settings"), ("GET", "/staff/payments/unmatched")] {
        app.request(m, p, Some(&f.key), None).await;
    }
    // The customer portal: a building, a contact invited by email, the feeds.
    app.request("PATCH", "/staff/settings", Some(&f.key), Some(json!({ "customer_portal_enabled": true }))).await;
    let b =
        app.request("POST", "/staff/buildings", Some(&f.key), Some(json!({ "name": "T", "address": "1 St" }))).await;
    let building = b.json["id"].as_str().unwrap().to_owned();
    let c = app
        .request(
            "POST",
            "/staff/contacts",
            Some(&f.key),
            Some(
                json!({ "name": "C", "email": portal_tests::unique("c"), "permissions": { "inspection_reports": true },
                "building_ids": [building] }),
            ),
        )
        .await;
    let contact = c.json["contact_id"].as_str().unwrap().to_owned();
    let address = c.json["email"].as_str().unwrap().to_owned();
    app.request("POST", &format!("/staff/contacts/{contact}/invite"), Some(&f.key), None).await;
    app.run_jobs().await;
    let mails = app.emails_to(&address).await;
    let link = mails[0]
        .links
        .iter()
        .find(|l| l.contains("/c/"))
        .expect("an invitation")
        .strip_prefix(&app.base)
        .unwrap()
        .to_owned();
    for p in [link.clone(), format!("{link}/deficiencies"), format!("{link}/buildings/{building}/deficiencies")] {
        app.send(app.http.get(app.url(&p)).header("accept", "application/json")).await;
    }
    app.send(app.http.get(app.url(&format!("{link}/documents/{doc}")))).await;
    // A person's data: a copy, then an erasure (the job makes the one and does the other).
    let export = json!({ "email": f.agent_email });
    assert_eq!(app.request("POST", "/staff/privacy/exports", Some(&f.key), Some(export)).await.status, 202);
    let erase = json!({ "email": f.agent_email, "reason": "asked" });
    let erasure = app.request("POST", "/staff/privacy/erasures", Some(&f.key), Some(erase)).await;
    assert_eq!(erasure.status, 202, "{}", erasure.text);
    // The schedule and S3 events, as the publish function runs them: a document scheduled a
    // minute ahead is published by the run a minute later.
    let at = app.clock.now() + time::Duration::minutes(1);
    let (scheduled, _) = app
        .put_document(
            &f.key,
            &inspection,
            json!({ "kind": "invoice", "title": "Later", "publish_at": portal_shared::foundation::clock::rfc3339(at) }),
            TEST_PDF,
            "application/pdf",
        )
        .await;
    assert_eq!(app.complete_upload(&f.key, &scheduled).await.status, 200);
    assert_eq!(app.job_at(at + time::Duration::minutes(1)).await.published, 1);
    app.run_jobs().await;
    let key = portal_shared::domain::document::object_key(f.company_id, f.inspection_id, doc.parse().unwrap());
    as_function("PublishFunction", app.functions.publish.uploads_completed(&[key])).await;
    let id = erasure.json["id"].as_str().unwrap();
    let done = app.request("GET", &format!("/staff/privacy/erasures/{id}"), Some(&f.key), None).await;
    assert_eq!(done.json["state"], "done", "{}", done.text);
    // The company leaves: its export (the job makes it), then its deletion (the job does it).
    let company = f.company_id.to_string();
    let export = app.admin("POST", &format!("/admin/companies/{company}/export"), None).await;
    assert_eq!(export.status, 202, "{}", export.text);
    app.run_jobs().await;
    let export_id = export.json["id"].as_str().unwrap();
    let made = app.admin("GET", &format!("/admin/companies/{company}/exports/{export_id}"), None).await;
    assert_eq!(made.json["state"], "ready", "{}", made.text);
    let delete =
        app.admin("DELETE", &format!("/admin/companies/{company}"), Some(json!({ "export_id": export_id }))).await;
    assert_eq!(delete.status, 202, "{}", delete.text);
    app.run_jobs().await;
    let deleted = app.admin("GET", &format!("/admin/companies/{company}/deletion"), None).await;
    assert_eq!(deleted.json["state"], "deleted", "{}", deleted.text);

    let mut recorded: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (function, service, op) in calls() {
        recorded.entry(function).or_default().insert((service, op));
    }
    let grants = granted();
    let mut problems = Vec::new();
    for (function, ops) in recorded.iter().filter(|(f, _)| *f != "unknown") {
        let granted = grants.get(function).unwrap_or_else(|| panic!("{function} is not in template.yaml"));
        let mut used = BTreeSet::new();
        for (service, op) in ops {
            for action in actions(service, op) {
                if !granted.contains(&action) {
                    problems.push(format!("{function} calls {service}:{op} but is not granted {action}"));
                }
                used.insert(action);
            }
        }
        let names: BTreeSet<String> = ops.iter().map(|(_, op)| op.clone()).collect();
        let allowed = documented(function, &used, &names);
        for g in granted {
            if !used.contains(g) && !allowed.contains(g) {
                problems.push(format!("{function} is granted {g}, which its code never uses"));
            }
        }
    }
    assert_eq!(recorded.len() - usize::from(recorded.contains_key("unknown")), 6, "every function ran: {recorded:?}");
    assert!(problems.is_empty(), "{problems:#?}\nrecorded: {recorded:#?}");
}
