//! Personal data under control (issue 27): a copy of everything a company holds about an address,
//! found through indexes, made by the job, downloadable for 15 minutes, audited.

use portal_shared::adapters::store::outbox::Suppression;
use portal_tests::{days_from_now, fixture, Fixture, Reply};
use serde_json::{json, Value};
use time::OffsetDateTime;

async fn staff(f: &Fixture, method: &str, path: &str, body: Option<Value>) -> Reply {
    f.app.request(method, path, Some(&f.key), body).await
}

/// Another inspection of the company with `email` in `role` (and its people emailed).
async fn inspection_with(f: &Fixture, email: &str, role: &str) -> String {
    let body = json!({
        "address": format!("{} Privacy Lane", ulid::Ulid::new().random() % 1000),
        "scheduled_at": days_from_now(5),
        "services": [{ "name": "Radon test", "price_cents": 15000 }],
        "people": [{ "role": role, "name": "Jane Client", "email": email, "phone": "555-0199" },
                   { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@lakeside.test" }]
    });
    let r = staff(f, "POST", "/staff/inspections", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["inspection_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_export_holds_every_kind_of_data_about_an_address_across_inspections_and_roles() {
    let partner = format!("quotes-{}@partner.test", ulid::Ulid::new().to_string().to_lowercase());
    let f = fixture(json!({ "special_offers": [
        { "partner": "HomeShield", "title": "1-year home warranty", "description": "Covers major systems", "partner_email": partner }
    ] }))
    .await;
    let email = f.client_email.clone();
    // The address is a client here, a client in a second inspection and a buyer's agent in a third.
    let second = inspection_with(&f, &email, "client").await;
    let third = inspection_with(&f, &email, "buyer_agent").await;

    // On the first: signed, paid, a report opened, a quote asked for with consent.
    assert_eq!(f.post(&format!("{}/agreement", f.client), json!({ "typed_name": "Jane Client" })).await.status, 200);
    let pay = json!({ "amount_cents": 45000, "method": "check", "reference": "#12" });
    assert_eq!(
        staff(&f, "POST", &format!("/staff/inspections/{}/payments", f.inspection_id), Some(pay)).await.status,
        201
    );
    let doc = json!({ "kind": "inspection_report", "title": "Report", "template_name": "Residential Inspection" });
    let report_doc = f.app.published_document(&f.key, &f.inspection_id.to_string(), doc).await;
    let opened = f.app.send(f.app.http.get(f.app.url(&format!("{}/documents/{report_doc}", f.client)))).await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    let offers = f.view(&f.client).await.json["special_offers"].clone();
    let offer = offers[0]["id"].as_str().unwrap().to_owned();
    let quote = f.post(&format!("{}/offers/{offer}/quote", f.client), json!({ "consent": true })).await;
    assert!(quote.status < 300, "{}", quote.text);
    // Emails sent to it (the other inspections' confirmations), an "all my inspections" session,
    // a customer-portal contact with the address, and a suppression.
    f.app.run_jobs().await;
    assert_eq!(f.post(&format!("/me/{}", f.company_id), json!({ "email": email })).await.status, 202);
    f.app.run_jobs().await;
    let link =
        f.app.emails_to(&email).await.iter().flat_map(|m| m.links.clone()).find(|l| l.contains("/signin/")).unwrap();
    let link = link.strip_prefix(&f.app.base).unwrap().to_owned();
    let signed = f.app.send(f.app.http.post(f.app.url(&link)).header("origin", &f.app.base)).await;
    assert!(signed.header("set-cookie").is_some(), "{}", signed.text);
    let contact = staff(&f, "POST", "/staff/contacts",
        Some(json!({ "name": "Jane Client", "email": email, "permissions": { "inspection_reports": true }, "building_ids": [] }))).await;
    assert!(contact.status < 300, "{}", contact.text);
    let suppression = Suppression {
        address: email.clone(),
        kind: "unsubscribe".into(),
        reason: "one-click".into(),
        at: OffsetDateTime::now_utc(),
    };
    f.app.store.suppress(f.company_id, &suppression).await.unwrap();

    // Bad input changes nothing.
    staff(&f, "POST", "/staff/privacy/exports", Some(json!({ "email": "not an address" }))).await.assert_problem(400);
    staff(&f, "POST", "/staff/privacy/exports", Some(json!({}))).await.assert_problem(400);

    let asked = staff(&f, "POST", "/staff/privacy/exports", Some(json!({ "email": email }))).await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let id = asked.json["id"].as_str().unwrap().to_owned();
    let pending = staff(&f, "GET", &format!("/staff/privacy/exports/{id}"), None).await;
    assert_eq!((pending.json["state"].as_str(), pending.json["url"].is_null()), (Some("pending"), true));
    // Another company cannot see it.
    let (_, other) = f.app.create_company("Other Inspections", &["o@other.test"]).await;
    assert_eq!(f.app.request("GET", &format!("/staff/privacy/exports/{id}"), Some(&other), None).await.status, 404);

    let report = f.app.job_at(OffsetDateTime::now_utc()).await;
    assert_eq!((report.privacy_exports.made, report.privacy_exports.failed), (1, 0));
    let ready = staff(&f, "GET", &format!("/staff/privacy/exports/{id}"), None).await;
    assert_eq!(ready.json["state"], "ready", "{}", ready.text);
    let doc: Value = f.app.http.get(ready.json["url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let html = f.app.http.get(ready.json["summary_url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&email) && html.contains("HomeShield"), "{html}");

    let inspections = doc["inspections"].as_array().unwrap();
    let ids: Vec<&str> = inspections.iter().map(|i| i["inspection_id"].as_str().unwrap()).collect();
    assert_eq!(inspections.len(), 3, "{ids:?}");
    for want in [f.inspection_id.to_string(), second.clone(), third.clone()] {
        assert!(ids.contains(&want.as_str()), "{want} in {ids:?}");
    }
    let roles: std::collections::BTreeSet<&str> = inspections
        .iter()
        .flat_map(|i| i["as"].as_array().unwrap().iter().map(|p| p["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, ["buyer_agent", "client"].into_iter().collect());
    let first = inspections.iter().find(|i| i["inspection_id"] == f.inspection_id.to_string()).unwrap();
    let signature = &first["agreement_signatures"][0];
    assert_eq!(signature["typed_name"], "Jane Client");
    assert!(
        signature.get("ip").is_some() && signature.get("user_agent").is_some() && signature["signed_at"].is_string()
    );
    assert_eq!(first["amounts"]["balance_cents"], 0);
    assert!(!first["payments_and_refunds"].as_object().unwrap().is_empty(), "{first}");
    assert_eq!(first["quote_consents"][0]["partner"], "HomeShield");
    assert!(first["quote_consents"][0]["consent_text"].as_str().unwrap().contains("HomeShield"));
    assert!(first["documents_shared"].as_array().unwrap().iter().any(|d| d["document_id"] == report_doc.as_str()));
    assert!(first["openings"].as_array().unwrap().iter().any(|a| a["action"].is_string()), "{first}");
    assert!(inspections.iter().any(|i| !i["emails"].as_array().unwrap().is_empty()), "emails sent to it");
    let agent_side = inspections.iter().find(|i| i["inspection_id"] == third).unwrap();
    assert!(agent_side["amounts"].is_null(), "an agent's copy has no client's money");
    assert_eq!(agent_side["as"][0]["phone"], "555-0199");
    assert!(!doc["me_sessions"].as_array().unwrap().is_empty());
    assert!(doc["me_sessions"][0].get("session_hash").is_none(), "no credential digests");
    assert!(!doc["contact_portal_memberships"].as_array().unwrap().is_empty());
    assert_eq!(doc["email_suppression"]["kind"], "unsubscribe");
    // Nothing of the other people of those inspections.
    assert!(!doc.to_string().contains(&f.agent_email));

    // The request no longer holds the address (it is in the files), and the privacy log has the
    // request without it.
    let items = f.app.all_items().await;
    let export_item = items.iter().find(|i| i["PK"].as_s().unwrap().ends_with(&format!("PRIVACYEXPORT#{id}"))).unwrap();
    assert!(!export_item.contains_key("email"));
    let log: Vec<_> = items.iter().filter(|i| i["PK"].as_s().unwrap().ends_with("#PRIVACYLOG")).collect();
    assert_eq!(log.len(), 1);
    assert!(!format!("{:?}", log[0]).contains(&email));
    assert_eq!(log[0]["action"].as_s().unwrap(), "export_requested");
}
