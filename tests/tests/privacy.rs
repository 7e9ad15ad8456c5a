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

#[tokio::test]
async fn an_erased_person_is_gone_from_every_item_and_file_and_the_inspections_still_work_for_the_others() {
    let f = fixture(json!({ "auto_generate_inspection_reports": true, "special_offers": [
        { "partner": "HomeShield", "title": "1-year home warranty", "description": "Covers major systems",
          "partner_email": portal_tests::unique("quotes") }
    ] }))
    .await;
    let email = format!("Zoe.Erasable-{}@Example.com", ulid::Ulid::new().to_string().to_lowercase());
    let (name, phone, ip) = ("Zoë Erasable", "555-0177", "127.0.0.7");
    let other_email = portal_tests::unique("pat");
    // A webhook endpoint hearing everything: its deliveries carry the people's names.
    let hook = staff(&f, "POST", "/staff/webhooks", Some(json!({ "url": "http://127.0.0.1:9/hook", "events": ["inspection.created", "agreement.signed", "payment.succeeded"] }))).await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    // The person is the client of one inspection (with Pat as buyer's agent) and a buyer's agent
    // of another.
    let body = json!({
        "address": "7 Erasure Road", "scheduled_at": days_from_now(4),
        "services": [{ "name": "Residential Inspection", "price_cents": 45000 }],
        "people": [{ "role": "client", "name": name, "email": email, "phone": phone },
                   { "role": "buyer_agent", "name": "Pat Other", "email": other_email }]
    });
    let a = staff(&f, "POST", "/staff/inspections", Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let inspection = a.json["inspection_id"].as_str().unwrap().to_owned();
    let link_of = |role: &str| {
        let url = a.json["links"].as_array().unwrap().iter().find(|l| l["role"] == role).unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
        url.strip_prefix(&f.app.base).unwrap().to_owned()
    };
    let (client, agent) = (link_of("client"), link_of("buyer_agent"));
    inspection_with(&f, &email, "buyer_agent").await;
    // Signed from its own address, a quote asked for, paid in part; a report published.
    let from_ip = reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let signed =
        f.app.send(from_ip.post(f.app.url(&format!("{client}/agreement"))).json(&json!({ "typed_name": name }))).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let offer = f.view(&client).await.json["special_offers"][0]["id"].as_str().unwrap().to_owned();
    let quote = f
        .app
        .send(
            from_ip
                .post(f.app.url(&format!("{client}/offers/{offer}/quote")))
                .json(&json!({ "consent": true, "message": format!("Call {name} at {phone}") })),
        )
        .await;
    assert!(quote.status < 300, "{}", quote.text);
    let pay = json!({ "amount_cents": 20000, "method": "check" });
    assert_eq!(staff(&f, "POST", &format!("/staff/inspections/{inspection}/payments"), Some(pay)).await.status, 201);
    let doc = json!({ "kind": "inspection_report", "title": "Report", "template_name": "Residential Inspection" });
    f.app.published_document(&f.key, &inspection, doc).await;
    // A report this system generates (it lists the people): rendered again at the erasure.
    let submit = format!("/staff/inspections/{inspection}/submit");
    assert!(staff(&f, "POST", &submit, Some(json!({ "findings": [] }))).await.status < 300);
    let stored = f.app.store.inspection(f.company_id, inspection.parse().unwrap()).await.unwrap().unwrap();
    let generated = stored.documents.iter().find(|d| d.generated).expect("a generated report").id;
    let generated_key = portal_shared::domain::document::object_key(f.company_id, stored.id, generated);
    let report_text = |bytes: &[u8]| portal_tests::pdf_text(bytes);
    // Emails go out (confirmations, receipt, report), a /me session, a contact, an export made.
    f.app.run_jobs().await;
    assert_eq!(f.post(&format!("/me/{}", f.company_id), json!({ "email": email })).await.status, 202);
    f.app.run_jobs().await;
    let signin =
        f.app.emails_to(&email).await.iter().flat_map(|m| m.links.clone()).find(|l| l.contains("/signin/")).unwrap();
    let signin = signin.strip_prefix(&f.app.base).unwrap().to_owned();
    f.app.send(f.app.http.post(f.app.url(&signin)).header("origin", &f.app.base)).await;
    let contact = staff(
        &f,
        "POST",
        "/staff/contacts",
        Some(
            json!({ "name": name, "email": email, "permissions": { "inspection_reports": true }, "building_ids": [] }),
        ),
    )
    .await;
    assert!(contact.status < 300, "{}", contact.text);
    let export = staff(&f, "POST", "/staff/privacy/exports", Some(json!({ "email": email }))).await;
    assert_eq!(export.status, 202);
    f.app.job_at(OffsetDateTime::now_utc()).await;
    let needles = [email.to_lowercase(), name.to_owned(), phone.to_owned(), ip.to_owned()];
    let holds = |text: &str| needles.iter().any(|n| text.to_lowercase().contains(&n.to_lowercase()));
    assert!(f.app.all_items().await.iter().any(|i| holds(&format!("{i:?}"))), "the data is there before");
    let report_before = f.app.all_object_versions().await.into_iter().find(|(k, _)| *k == generated_key).unwrap();
    assert!(holds(&report_text(&report_before.1)), "the generated report names them before");
    let balance_before =
        staff(&f, "GET", &format!("/staff/inspections/{inspection}"), None).await.json["balance_cents"].clone();

    // Bad input changes nothing.
    staff(&f, "POST", "/staff/privacy/erasures", Some(json!({ "email": email }))).await.assert_problem(400);
    staff(&f, "POST", "/staff/privacy/erasures", Some(json!({ "email": "nope", "reason": "asked" })))
        .await
        .assert_problem(400);

    let asked = staff(
        &f,
        "POST",
        "/staff/privacy/erasures",
        Some(json!({ "email": email, "reason": "the person asked (GDPR Art. 17)" })),
    )
    .await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let id = asked.json["id"].as_str().unwrap().to_owned();
    // Bounded steps across job runs, until done.
    let mut runs = 0;
    loop {
        runs += 1;
        f.app.job_at(OffsetDateTime::now_utc()).await;
        let state = staff(&f, "GET", &format!("/staff/privacy/erasures/{id}"), None).await;
        if state.json["state"] == "done" {
            let changed = &state.json["changed"];
            assert!(changed["inspections"].as_u64().unwrap() >= 2, "{changed}");
            assert!(changed["email"].as_u64().unwrap_or(0) >= 1, "{changed}");
            assert_eq!(changed["contacts"], 1, "{changed}");
            assert_eq!(changed["generated_reports"], 1, "{changed}");
            assert!(changed["export_files"].as_u64().unwrap() >= 2, "{changed}");
            assert!(!state.text.to_lowercase().contains(&email.to_lowercase()));
            break;
        }
        assert!(runs < 10, "{}", state.text);
    }

    // Nothing in the table or the bucket (uploaded PDFs aside) holds the address, the name, the
    // phone or the recorded IP.
    for item in f.app.all_items().await {
        let text = format!("{item:?}");
        assert!(!holds(&text), "{text}");
    }
    let objects = f.app.all_object_versions().await;
    for (key, bytes) in &objects {
        if *key == generated_key {
            assert!(!holds(&report_text(bytes)), "the generated report, every version left");
        } else if !key.ends_with(".pdf") {
            assert!(!holds(&String::from_utf8_lossy(bytes)), "{key}");
        }
    }
    assert_eq!(objects.iter().filter(|(k, _)| *k == generated_key).count(), 1, "its earlier versions are gone");
    // Their link is dead; the inspection works for Pat, the money is the same.
    assert_eq!(f.view(&client).await.status, 404);
    assert_eq!(f.view(&agent).await.status, 200);
    let after = staff(&f, "GET", &format!("/staff/inspections/{inspection}"), None).await;
    assert_eq!(after.json["balance_cents"], balance_before);
    assert!(balance_before.as_i64().is_some());
    // Nothing is ever sent to the address again.
    let s = f.app.store.suppression(f.company_id, &email).await.unwrap().expect("a salted-hash suppression");
    assert!(s.blocks(false) && s.blocks(true));
}

#[tokio::test]
async fn stored_email_bodies_are_dropped_after_the_retention_setting_and_audit_entries_expire_with_theirs() {
    let f = fixture(json!({ "special_offers": [
        { "partner": "HomeShield", "title": "1-year home warranty", "description": "Covers major systems",
          "partner_email": portal_tests::unique("quotes") }
    ] }))
    .await;
    for bad in [
        json!({ "email_bodies_days": 0 }),
        json!({ "audit_days": 10 }),
        json!({ "audit_days": null }),
        json!({ "bodies": 3 }),
    ] {
        staff(&f, "PATCH", "/staff/settings", Some(json!({ "retention": bad }))).await.assert_problem(400);
    }
    let set = staff(
        &f,
        "PATCH",
        "/staff/settings",
        Some(json!({ "retention": { "email_bodies_days": 2, "audit_days": 45 } })),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json["settings"]["retention"], json!({ "email_bodies_days": 2, "audit_days": 45 }));

    // A quote request: the partner's email is stored as it was written (its body), and audited.
    let offer = f.view(&f.client).await.json["special_offers"][0]["id"].as_str().unwrap().to_owned();
    let quote = f
        .post(&format!("{}/offers/{offer}/quote", f.client), json!({ "consent": true, "message": "Please call" }))
        .await;
    assert!(quote.status < 300, "{}", quote.text);
    f.app.run_jobs().await;
    let quote_email = |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
        items
            .iter()
            .find(|i| {
                i.get("entity").and_then(|e| e.as_s().ok()).map(String::as_str) == Some("email")
                    && i.contains_key("send_to")
            })
            .cloned()
            .expect("the partner's email")
    };
    let sent = quote_email(&f.app.all_items().await);
    assert_eq!(sent["state"].as_s().unwrap(), "sent");
    assert!(sent.contains_key("prepared"), "the body as sent is kept for a while");

    // A day later it is still there; past the company's two days it goes, the metadata stays.
    f.app.clock.advance(time::Duration::days(1));
    f.app.job_at(f.app.clock.now()).await;
    assert!(quote_email(&f.app.all_items().await).contains_key("prepared"));
    f.app.clock.advance(time::Duration::days(1) + time::Duration::hours(1));
    let report = f.app.job_at(f.app.clock.now()).await;
    assert_eq!(report.email_bodies_dropped, 1);
    let kept = quote_email(&f.app.all_items().await);
    assert!(!kept.contains_key("prepared"), "{kept:?}");
    assert!(kept.contains_key("subject") && kept.contains_key("to") && kept.contains_key("body_dropped_at"));
    assert_eq!(kept["state"].as_s().unwrap(), "sent");
    assert!(!kept.contains_key("DuePK"), "it left the retention queue");

    // Audit entries carry their expiry (DynamoDB's TTL deletes them): written + 45 days.
    let items = f.app.all_items().await;
    let audit = items
        .iter()
        .find(|i| i.get("entity").and_then(|e| e.as_s().ok()).map(String::as_str) == Some("audit"))
        .expect("the quote request's audit entry");
    let at =
        OffsetDateTime::parse(audit["at"].as_s().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    let expires: i64 = audit["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires, (at + time::Duration::days(45)).unix_timestamp());
}
