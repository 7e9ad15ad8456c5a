//! The client portal through the local gateway: tokenized links, the portal view (HTML and JSON),
//! client actions, the unknown-user view and "Get Full Access".

use portal_tests::{fixture, unique, Fixture, Reply};
use serde_json::{json, Value};
use sha2::Digest;

/// A document registered, uploaded and verified through the staff routes, published or not;
/// its id.
async fn add_document(f: &Fixture, kind: &str, title: &str, template: Option<&str>, published: bool) -> String {
    let body = json!({ "kind": kind, "title": title, "template_name": template });
    let inspection = f.inspection_id.to_string();
    if published {
        return f.app.published_document(&f.key, &inspection, body).await;
    }
    let (id, _) = f.app.put_document(&f.key, &inspection, body, portal_tests::TEST_PDF, "application/pdf").await;
    assert_eq!(f.app.complete_upload(&f.key, &id).await.status, 200);
    id
}

/// Money staff record as received (a check), through the staff route.
async fn record_payment(f: &Fixture, cents: i64) {
    let path = format!("/staff/inspections/{}/payments", f.inspection_id);
    let body = json!({ "amount_cents": cents, "method": "check", "reference": "#1042" });
    let r = f.app.request("POST", &path, Some(&f.key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn the_portal_view_shows_the_dashboard_order_documents_and_contacts() {
    let f = fixture(json!({
        "payments": "native",
        "contact": { "phone": "555-0199", "email": "office@lakeside.test" },
        "addon_catalog": [{ "name": "Radon test", "description": "48-hour radon", "price_cents": 15000 }],
        "special_offers": [{ "partner": "Fixle", "title": "Home warranty", "description": "1 year" }]
    }))
    .await;
    let r = f.view(&f.client).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.round_trips() <= 2, "portal view budget: {}", r.round_trips());
    assert_eq!(r.round_trips(), 1, "one BatchGetItem of token, company and inspection");
    let v = &r.json;
    assert_eq!(v["address"], "12 Elm Street, Springfield");
    assert_eq!(v["viewer"]["role"], "client");
    assert_eq!(
        v["payment"],
        json!({"state": "due", "balance_cents": 45000, "invoice_total_cents": 45000,
        "paid_cents": 0, "currency": "usd", "action": "pay_now", "message": "Payment due: $450.00", "receipts": []})
    );
    assert_eq!(v["agreement"]["state"], "unsigned");
    assert_eq!(v["agreement"]["version"], 1);
    assert!(v["agreement"]["text"].as_str().unwrap().contains("Residential Inspection: $450.00"));
    assert_eq!(v["addon_offers"][0]["name"], "Radon test");
    assert_eq!(v["special_offers"][0]["partner"], "Fixle");
    assert_eq!(v["people"].as_array().unwrap().len(), 4, "order details list every person");
    assert_eq!(v["services"][0]["price_cents"], 45000);
    assert!(v["contractors"].is_null(), "contractors only when the company enabled them");
    assert_eq!(v["inspectors"][0]["phone"], "555-0100");
    assert_eq!(v["company"]["contact"]["phone"], "555-0199");
    let steps: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(steps, ["agreement", "payment", "report"]);

    // The buyer's agent sees the same inspection but cannot act: no offers, no Pay Now.
    let a = f.view(&f.agent).await;
    assert_eq!(a.json["viewer"]["role"], "buyer_agent");
    assert_eq!(a.json["can_act"], false);
    assert_eq!(a.json["addon_offers"], json!([]));
    assert!(a.json["payment"]["action"].is_null());
    assert_eq!(a.json["agreement"]["can_sign"], false);

    // HTML by default, with the page security headers.
    let h = f.app.send(f.app.http.get(f.app.url(&f.client))).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(h.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(h.header("cache-control"), Some("no-store"));
    let csp = h.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    for text in [
        "12 Elm Street",
        "Payment due: $450.00",
        "Pay Now",
        "Radon test",
        "Order Details",
        "Contact Us",
        "Special Offers",
        "Home warranty",
        "Ivan Inspector",
        "Sign",
    ] {
        assert!(h.text.contains(text), "page lacks {text:?}");
    }
    assert!(!h.text.contains("<script"), "pages run no scripts");
}

#[tokio::test]
async fn unknown_revoked_reissued_and_malformed_tokens_get_the_same_404() {
    let f = fixture(json!({})).await;
    let person = f.inspection().await.people[0].id;
    let reissue = format!("/staff/inspections/{}/people/{person}/token", f.inspection_id);

    let malformed = f.view("/p/not-a-token").await;
    malformed.assert_problem(404);
    assert_eq!(malformed.round_trips(), 0, "malformed tokens are refused without a database read");
    let wrong_alphabet = f.view(&format!("/p/{}", "u".repeat(78))).await;
    assert_eq!(wrong_alphabet.round_trips(), 0);

    // Well-formed, naming this very inspection, but never issued.
    let token = f.client.trim_start_matches("/p/");
    let forged = format!("/p/{}{}", &token[..52], "0".repeat(26));
    let unknown = f.view(&forged).await;

    let new = f.app.request("POST", &reissue, Some(&f.key), None).await;
    assert_eq!(new.status, 201, "{}", new.text);
    let new_link = new.json["url"].as_str().unwrap().strip_prefix(&f.app.base).unwrap().to_owned();
    let old = f.view(&f.client).await;
    assert_eq!(f.view(&new_link).await.status, 200, "the re-issued link works at once");

    assert_eq!(f.app.request("DELETE", &reissue, Some(&f.key), None).await.status, 204);
    let revoked = f.view(&new_link).await;
    assert_eq!(f.app.request("DELETE", &reissue, Some(&f.key), None).await.status, 204, "revoking twice is fine");

    for r in [&unknown, &old, &revoked] {
        r.assert_problem(404);
        assert_eq!(r.text, malformed.text, "every bad token gets the same answer");
    }
    // The token table holds only hashes: no stored attribute contains a token.
    let items = format!("{:?}", f.app.all_items().await);
    assert!(!items.contains(token) && !items.contains(new_link.trim_start_matches("/p/")));
}

#[tokio::test]
async fn only_clients_sign_and_a_signature_keeps_its_evidence() {
    let f = fixture(json!({})).await;
    let agreement = |link: &str| format!("{link}/agreement");
    f.post(&agreement(&f.agent), json!({ "typed_name": "Bob Agent" })).await.assert_problem(403);
    f.post(&agreement(&f.listing), json!({ "typed_name": "Lisa" })).await.assert_problem(403);
    f.post(&agreement(&f.client), json!({ "typed_name": "  " })).await.assert_problem(400);
    f.post(&agreement(&f.client), json!({ "typed_name": "Jane", "version": 7 })).await.assert_problem(409);
    assert!(f.inspection().await.agreement.signatures.is_empty(), "refused signatures change nothing");

    let text = f.view(&f.client).await.json["agreement"]["text"].as_str().unwrap().to_owned();
    let r = f
        .app
        .send(
            f.app
                .http
                .post(f.app.url(&agreement(&f.client)))
                .header("user-agent", "TestBrowser/1.0")
                .json(&json!({ "typed_name": "Jane Q. Client", "version": 1 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["agreement"]["state"], "signed");
    assert!(r.round_trips() <= 2);
    let sig = f.inspection().await.agreement.signatures[0].clone();
    assert_eq!(sig.typed_name, "Jane Q. Client");
    assert_eq!(sig.version, 1);
    assert_eq!(sig.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(sig.user_agent.as_deref(), Some("TestBrowser/1.0"));
    assert_eq!(sig.text_sha256, hex::encode(sha2::Sha256::digest(text.as_bytes())), "hash of the exact text shown");

    // Signing again changes nothing; an HTML form post is answered with 303 back to the portal.
    let again = f.form(&agreement(&f.client), &[("typed_name", "Jane"), ("version", "1")]).await;
    assert_eq!(again.status, 303);
    assert_eq!(again.header("location"), Some(f.client.as_str()));
    assert_eq!(f.inspection().await.agreement.signatures.len(), 1);
}

#[tokio::test]
async fn requested_addons_join_the_services_and_need_a_new_agreement_version() {
    let f = fixture(json!({
        "addon_catalog": [
            { "name": "Radon test", "price_cents": 15000 },
            { "name": "Sewer scope", "price_cents": 20000 }
        ]
    }))
    .await;
    let catalog: Vec<String> = f.view(&f.client).await.json["addon_offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(catalog.len(), 2);
    f.post(&format!("{}/agreement", f.client), json!({ "typed_name": "Jane" })).await;

    let addons = format!("{}/addons", f.client);
    f.post(&format!("{}/addons", f.agent), json!({ "addon_ids": [catalog[0]] })).await.assert_problem(403);
    f.post(&addons, json!({ "addon_ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"] })).await.assert_problem(400);
    f.post(&addons, json!({ "addon_ids": [] })).await.assert_problem(400);
    assert_eq!(f.inspection().await.services.len(), 1, "refused requests change nothing");

    let r = f.post(&addons, json!({ "addon_ids": [catalog[0]] })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["services"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["services"][1]["kind"], "addon");
    assert_eq!(r.json["payment"]["balance_cents"], 60000);
    assert_eq!(
        r.json["agreement"],
        json!({"state": "unsigned", "version": 2, "required": true,
        "signed_by_you": false, "can_sign": true, "text": r.json["agreement"]["text"]})
    );
    assert_eq!(r.json["addon_offers"].as_array().unwrap().len(), 1, "an added add-on is no longer offered");

    // Asking again (a double click) adds nothing; a form post can pick several at once.
    f.post(&addons, json!({ "addon_ids": [catalog[0]] })).await;
    assert_eq!(f.inspection().await.services.len(), 2);
    let form = f.form(&addons, &[("addon_ids", &catalog[0]), ("addon_ids", &catalog[1])]).await;
    assert_eq!(form.status, 303);
    assert_eq!(f.inspection().await.invoice_total().get(), 80000);
}

#[tokio::test]
async fn dismissed_offers_leave_the_dashboard_but_special_offers_stay() {
    let f = fixture(json!({
        "addon_catalog": [{ "name": "Radon test", "price_cents": 15000 }],
        "special_offers": [{ "partner": "Fixle", "title": "Home warranty" }]
    }))
    .await;
    f.post(&format!("{}/offers/dismiss", f.agent), json!({})).await.assert_problem(403);
    let r = f.form(&format!("{}/offers/dismiss", f.client), &[]).await;
    assert_eq!(r.status, 303);
    let v = f.view(&f.client).await.json;
    assert_eq!(v["offers_dismissed"], true);
    assert_eq!(v["addon_offers"], json!([]));
    assert_eq!(v["special_offers"][0]["title"], "Home warranty");
}

#[tokio::test]
async fn the_payment_panel_has_its_four_states() {
    // Learn More when online payment is disabled.
    let f = fixture(json!({ "payments": "disabled" })).await;
    let p = &f.view(&f.client).await.json["payment"];
    assert_eq!((p["state"].as_str(), p["action"].as_str()), (Some("due"), Some("learn_more")));
    record_payment(&f, 45000).await;
    let p = &f.view(&f.client).await.json["payment"];
    assert_eq!((p["state"].as_str(), p["balance_cents"].as_i64(), p["action"].as_str()), (Some("paid"), Some(0), None));

    // Collect after publish: no button until a report is published, then Payment due / Pay Now.
    let f = fixture(json!({ "payments": "native", "collect_payment_after_publish": true })).await;
    let p = &f.view(&f.client).await.json["payment"];
    assert_eq!(p["state"], "collect_after_publish");
    assert_eq!(p["message"], "Payment to be collected after inspection is published");
    assert!(p["action"].is_null());
    let h = f.app.send(f.app.http.get(f.app.url(&f.client))).await;
    assert!(h.text.contains("Payment to be collected after inspection is published") && !h.text.contains("Pay Now"));
    add_document(&f, "attachment", "Photos", None, true).await;
    assert_eq!(
        f.view(&f.client).await.json["payment"]["state"],
        "collect_after_publish",
        "an attachment is not the report"
    );
    add_document(&f, "inspection_report", "r", Some("Residential"), true).await;
    let p = &f.view(&f.client).await.json["payment"];
    assert_eq!((p["state"].as_str(), p["action"].as_str()), (Some("due"), Some("pay_now")));
}

#[tokio::test]
async fn documents_are_listed_with_their_state_and_reasons() {
    let f = fixture(json!({ "report_access": { "listing_agent": false } })).await;
    let ids = (
        add_document(&f, "inspection_report", "Report", Some("Residential Inspection Report"), true).await,
        add_document(&f, "inspection_report", "Draft", Some("Sewer Scope"), false).await,
        add_document(&f, "invoice", "Invoice", None, true).await,
    );
    let v = f.view(&f.client).await.json;
    let docs = v["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2, "drafts are not listed: {docs:?}");
    assert_eq!(docs[0]["id"], ids.0);
    assert_eq!(docs[0]["title"], "Residential Inspection Report", "never \"Report Report\"");
    assert_eq!(docs[0]["state"], "locked");
    assert_eq!(
        docs[0]["lock_reasons"],
        json!([{"code": "payment_required", "amount_due_cents": 45000},
        {"code": "agreement_unsigned"}])
    );
    assert_eq!(docs[1]["id"], ids.2);
    assert_eq!(docs[1]["state"], "available", "the invoice is what a client needs to pay");
    assert_eq!(v["reports"].as_array().unwrap().len(), 1);
    assert!(!v.to_string().contains(&ids.1));
    // A published but locked report is not a done step.
    let report_step = |v: &Value| v["steps"].as_array().unwrap().iter().find(|s| s["key"] == "report").unwrap().clone();
    assert_eq!(report_step(&v)["done"], false, "{v}");

    let html = f.app.send(f.app.http.get(f.app.url(&f.client))).await.text;
    assert!(html.contains("Payment required: pay the balance of $450.00"));
    assert!(html.contains(&format!("{}/documents/{}", f.client, ids.2)), "available documents link to the gate");
    record_payment(&f, 45000).await;
    assert_eq!(f.post(&format!("{}/agreement", f.client), json!({ "typed_name": "Jane Client" })).await.status, 200);
    assert_eq!(report_step(&f.view(&f.client).await.json)["done"], true, "open to the client now");

    // Listing agents see order details only.
    let l = f.view(&f.listing).await.json;
    assert_eq!(l["documents"], json!([]));
    assert_eq!(l["people"].as_array().unwrap().len(), 4);
    assert_eq!(l["steps"], json!([]), "no progress to track for the seller's side (no report step)");
}

#[tokio::test]
async fn the_unknown_user_view_shows_basic_details_only() {
    let f = fixture(json!({ "addon_catalog": [{ "name": "Radon test", "price_cents": 15000 }] })).await;
    let report_id = add_document(&f, "inspection_report", "r", Some("Residential"), true).await;
    let share = format!("/share/{}", f.inspection_id);

    let h = f.app.send(f.app.http.get(f.app.url(&share))).await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.header("referrer-policy"), Some("no-referrer"));
    for text in ["Unknown user", "Get Full Access", "12 Elm Street", "Lakeside Home Inspections"] {
        assert!(h.text.contains(text), "share page lacks {text:?}");
    }
    let j = f.view(&share).await;
    assert_eq!(j.json["unknown_user"], true);
    for r in [&h, &j] {
        for secret in [report_id.as_str(), "Radon", "Pay Now", "/agreement", "Jane Client", &f.client_email] {
            assert!(!r.text.contains(secret), "the unknown-user view exposes {secret:?}");
        }
    }
    f.view("/share/01ARZ3NDEKTSV4RRFFQ69G5FAV").await.assert_problem(404);
    f.view("/share/nope").await.assert_problem(404);
}

/// Runs the every-minute job (the outbox) now.
async fn run_jobs(f: &Fixture) -> portal_shared::usecases::outbox::DrainReport {
    f.app.run_jobs().await
}

#[tokio::test]
async fn get_full_access_answers_alike_and_emails_only_a_matching_person() {
    let f = fixture(json!({})).await;
    let url = format!("/share/{}/full-access", f.inspection_id);
    let stranger = unique("stranger");
    let miss = f.post(&url, json!({ "email": stranger })).await;
    let hit = f.post(&url, json!({ "email": f.client_email.to_uppercase() })).await;
    assert_eq!(hit.status, 202, "{}", hit.text);
    assert_eq!((hit.status, &hit.text), (miss.status, &miss.text), "no enumeration: same body");
    assert_eq!(hit.round_trips(), miss.round_trips(), "the same work");
    let headers = |r: &Reply| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !["date", "content-length"].contains(&k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&hit), headers(&miss), "the same headers");
    f.post(&url, json!({ "email": "not an email" })).await.assert_problem(400);
    assert!(f.app.emails_to(&f.client_email).await.is_empty(), "nothing is sent by the request itself");

    run_jobs(&f).await;
    assert!(f.app.emails_to(&stranger).await.is_empty());
    let mails = f.app.emails_to(&f.client_email).await;
    assert_eq!(mails.len(), 1, "exactly one email");
    assert!(mails[0].subject.contains("12 Elm Street"));
    let link = mails[0].links.iter().find(|l| l.contains("/p/")).expect("a portal link").clone();
    let path = link.strip_prefix(&f.app.base).unwrap();
    let v = f.view(path).await;
    assert_eq!(v.status, 200, "the emailed link works");
    assert_eq!(v.json["viewer"]["role"], "client");
    assert_eq!(f.view(&f.client).await.status, 200, "earlier links keep working");
    assert_eq!(f.view(&f.agent).await.status, 200, "other people's links are untouched");

    // Asking again for each: the same work whether the first request found someone or not.
    let (again_hit, again_miss) =
        (f.post(&url, json!({ "email": f.client_email })).await, f.post(&url, json!({ "email": stranger })).await);
    assert_eq!((again_hit.status, again_miss.status), (202, 202));
    assert_eq!(again_hit.round_trips(), again_miss.round_trips(), "a repeat says nothing about the address");

    // A repeat within ten minutes gives no second link; nor do many (no link is pushed out).
    for _ in 0..3 {
        assert_eq!(f.post(&url, json!({ "email": f.client_email })).await.status, 202);
    }
    run_jobs(&f).await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 1, "one new link per person per 10 minutes");
    assert_eq!(f.view(path).await.status, 200);
    let history =
        f.app.request("GET", &format!("/staff/inspections/{}/emails", f.inspection_id), Some(&f.key), None).await;
    let states: Vec<(&str, &str)> = history.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["template_key"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    // The repeats came within five minutes: they are the first request, not three more.
    assert_eq!(states.iter().filter(|s| s.0 == "full_access" && s.1 != "abandoned").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| **s == ("full_access", "abandoned")).count(), 1, "the stranger: {states:?}");

    // An agent may ask too; an HTML form gets a page.
    let page = f.form(&url, &[("email", &f.agent_email)]).await;
    assert_eq!(page.status, 202);
    assert!(page.text.contains("Check your email"));
    run_jobs(&f).await;
    assert_eq!(f.app.emails_to(&f.agent_email).await.len(), 1);
}

#[tokio::test]
async fn a_flood_from_one_address_does_not_lock_the_client_out() {
    let f = fixture(json!({})).await;
    f.app.clock.set(f.app.next_window_start(portal_link::FULL_ACCESS_WINDOW_SECONDS));
    let url = format!("/share/{}/full-access", f.inspection_id);
    // The flood, from 127.0.0.1: it reaches its own limit, and refused requests count nowhere.
    for n in 0..portal_link::FULL_ACCESS_PER_IP + 10 {
        let r = f.post(&url, json!({ "email": unique("x") })).await;
        let want = if n < portal_link::FULL_ACCESS_PER_IP { 202 } else { 429 };
        assert_eq!(r.status, want, "request {n}: {}", r.text);
        if want == 429 {
            assert!(r.header("retry-after").is_some());
        }
    }
    // The client, from another address (127.0.0.2), still gets through.
    let other =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r = f.app.send(other.post(f.app.url(&url)).json(&json!({ "email": f.client_email }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    // Asking again and again for one person is never refused (a stranger could not lock them
    // out that way): the repeats collapse into one email per few minutes.
    for _ in 0..8 {
        assert_eq!(f.app.send(other.post(f.app.url(&url)).json(&json!({ "email": f.client_email }))).await.status, 202);
    }
    run_jobs(&f).await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 1);
    // Five minutes later, asking again sends a new link.
    f.app.clock.advance(time::Duration::minutes(11));
    let r = f.app.send(other.post(f.app.url(&url)).json(&json!({ "email": f.client_email }))).await;
    assert_eq!(r.status, 202);
    run_jobs(&f).await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 2);
}

#[tokio::test]
async fn people_added_later_get_their_own_link_unless_they_are_staff() {
    let f = fixture(json!({})).await;
    let people = format!("/staff/inspections/{}/people", f.inspection_id);
    let r = f
        .app
        .request(
            "POST",
            &people,
            Some(&f.key),
            Some(json!({ "role": "client", "name": "Joe",
        "email": unique("joe") })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let link = r.json["link"]["url"].as_str().unwrap().strip_prefix(&f.app.base).unwrap().to_owned();
    let v = f.view(&link).await;
    assert_eq!(v.json["viewer"]["name"], "Joe");
    assert_eq!(v.json["agreement"]["state"], "unsigned", "a new client must sign too");

    let staff = f
        .app
        .request(
            "POST",
            &people,
            Some(&f.key),
            Some(json!({ "role": "additional", "name": "Ivan",
        "email": "IVAN@lakeside.test" })),
        )
        .await;
    assert_eq!(staff.status, 201);
    assert!(staff.json["link"].is_null(), "no token for a staff user's email");
    let inspector = f.inspection().await.people.iter().find(|p| p.name == "Ivan Inspector").unwrap().id;
    let reissue = format!("/staff/inspections/{}/people/{inspector}/token", f.inspection_id);
    f.app.request("POST", &reissue, Some(&f.key), None).await.assert_problem(409);
    f.app
        .request("POST", &people, Some(&f.key), Some(json!({ "role": "landlord", "name": "X" })))
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn agents_see_other_participants_contact_details_only_where_the_company_shows_them() {
    let f = fixture(json!({})).await;
    let contacts = |v: &Value, name: &str| {
        let p = v["people"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
        (p["email"].as_str().map(str::to_owned), p["phone"].as_str().map(str::to_owned))
    };
    // The client sees everyone's.
    let client = f.view(&f.client).await.json;
    assert_eq!(contacts(&client, "Bob Agent").0.as_deref(), Some(f.agent_email.as_str()));
    assert!(contacts(&client, "Lisa Lister").0.is_some());
    // The buyer's agent: their own and the inspector's, not the client's or the listing agent's.
    let agent = f.view(&f.agent).await.json;
    assert_eq!(contacts(&agent, "Jane Client"), (None, None), "{agent}");
    assert_eq!(contacts(&agent, "Lisa Lister"), (None, None));
    assert_eq!(contacts(&agent, "Bob Agent").0.as_deref(), Some(f.agent_email.as_str()), "their own");
    assert_eq!(contacts(&agent, "Ivan Inspector").1.as_deref(), Some("555-0100"), "the inspector's");
    let page = f.app.send(f.app.http.get(f.app.url(&f.agent))).await.text;
    assert!(page.contains("Jane Client") && !page.contains(&f.client_email), "nor on the page");
    // Unless the company shows them.
    let r = f
        .app
        .request("PATCH", "/staff/settings", Some(&f.key), Some(json!({ "show_participant_contacts": true })))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let agent = f.view(&f.agent).await.json;
    assert_eq!(contacts(&agent, "Jane Client").0.as_deref(), Some(f.client_email.as_str()));
}

/// A browser opening a portal link that does not work — never issued, revoked, expired or garbled
/// — gets the same HTML page with "Email me a new link" (programs still get problem+json), and
/// the form is Get Full Access: the same answer whatever the link, a working link by email for a
/// person on the inspection.
#[tokio::test]
async fn a_dead_portal_link_in_a_browser_is_a_page_that_offers_a_new_link() {
    let f = fixture(json!({ "link_lifetime_days": 30 })).await;
    let page = |link: String| {
        let app = &f.app;
        async move { app.send(app.http.get(app.url(&link)).header("accept", "text/html,*/*;q=0.8")).await }
    };
    let token = f.client.trim_start_matches("/p/").to_owned();
    let never = format!("{}{}", &token[..52], "0".repeat(26));
    // The agent's link is revoked; the client's expires.
    let agent = f
        .inspection()
        .await
        .people
        .iter()
        .find(|p| p.email.as_ref().map(|e| e.as_str()) == Some(f.agent_email.as_str()))
        .unwrap()
        .id;
    let revoke = format!("/staff/inspections/{}/people/{agent}/token", f.inspection_id);
    assert_eq!(f.app.request("DELETE", &revoke, Some(&f.key), None).await.status, 204);
    f.app.clock.advance(time::Duration::days(31));
    let mut pages = Vec::new();
    for (t, what) in [
        (never.clone(), "never issued"),
        (f.agent.trim_start_matches("/p/").to_owned(), "revoked"),
        (token.clone(), "expired"),
        ("not-a-token".to_owned(), "garbled"),
    ] {
        let r = page(format!("/p/{t}")).await;
        assert_eq!(r.status, 404, "{what}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"), "{what}: {}", r.text);
        assert!(r.text.contains("Email me a new link") && r.text.contains("<label for=\"email\">"), "{what}");
        assert!(!r.text.contains("http-equiv"), "{what}");
        pages.push(r.text.replace(&t, "TOKEN"));
    }
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "one page for every kind of dead link");
    // Programs keep the contract.
    f.view(&format!("/p/{never}")).await.assert_problem(404);

    // The form: the same answer for the never-issued link and the expired one; only a person on
    // the inspection gets mail, with a link that works.
    let a = f.form(&format!("/p/{never}/new-link"), &[("email", &f.client_email)]).await;
    let b = f.form(&format!("/p/{token}/new-link"), &[("email", &f.client_email)]).await;
    let c = f.form("/p/not-a-token/new-link", &[("email", "stranger@example.test")]).await;
    for r in [&a, &b, &c] {
        assert_eq!(r.status, 202, "{}", r.text);
        assert!(r.header("content-type").unwrap().starts_with("text/html") && r.text.contains("Check your email"));
    }
    assert_eq!(a.text, b.text);
    assert_eq!(b.text, c.text);
    f.app.run_jobs().await;
    let mails = f.app.emails_to(&f.client_email).await;
    let fresh = mails.iter().rev().flat_map(|m| m.links.iter()).find(|l| l.contains("/p/")).expect("a new link");
    assert_eq!(f.view(fresh.strip_prefix(&f.app.base).unwrap()).await.status, 200, "the new link works");

    // A form that does not go through comes back as the page, its error beside the field
    // (aria-describedby), what was typed kept.
    let fresh = fresh.strip_prefix(&f.app.base).unwrap().to_owned();
    let r = f.form(&format!("{fresh}/agreement"), &[("typed_name", "  "), ("version", "1")]).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.header("content-type").unwrap().starts_with("text/html"), "{}", r.text);
    assert!(
        r.text.contains("aria-describedby=\"typed_name-error\"") && r.text.contains("aria-invalid=\"true\""),
        "{}",
        r.text
    );
    assert!(r.text.contains("id=\"typed_name-error\"") && r.text.contains("role=\"alert\""), "{}", r.text);
    assert!(r.text.contains("value=\"  \""), "the input is kept");
    // Any other error on a working link is a page with the way back.
    let r = f.form(&format!("{fresh}/offers/nothing/quote"), &[("consent", "on")]).await;
    assert!(r.status >= 400 && r.header("content-type").unwrap().starts_with("text/html"), "{}", r.text);
}

/// Every form a person can send back wrong comes back as its page with the error tied to the
/// field (`aria-describedby`, announced with `role="alert"`) and what they typed kept: add-ons with
/// none chosen, a quote without consent, and the three email forms (Get Full Access, a new link,
/// `/me`). Programs still get problem+json.
#[tokio::test]
async fn forms_sent_back_name_their_field_and_keep_the_input() {
    let f = fixture(json!({})).await;
    // Its own address: moto's mailbox holds every test's mail.
    let partner = unique("quotes");
    let r = f
        .app
        .request(
            "PATCH",
            "/staff/settings",
            Some(&f.key),
            Some(json!({
                "addon_catalog": [{ "name": "Radon test", "description": "48 hours", "price_cents": 15000 }],
                "special_offers": [{ "partner": "HomeShield", "title": "Warranty", "description": "1 year",
                                     "partner_email": partner }]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = |r: &Reply, status: u16, id: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert!(r.header("content-type").unwrap().starts_with("text/html"), "{}", r.text);
        assert!(r.text.contains(&format!("aria-describedby=\"{id}\"")), "the field names its error: {}", r.text);
        assert!(r.text.contains(&format!("id=\"{id}\"")) && r.text.contains("role=\"alert\""), "{}", r.text);
    };

    let r = f.form(&format!("{}/addons", f.client), &[]).await;
    page(&r, 400, "addon_ids-error");
    assert!(r.text.contains("Choose at least one service"), "{}", r.text);
    assert!(f.inspection().await.services.iter().all(|s| s.name != "Radon test"), "nothing was added");

    let offer = f.view(&f.client).await.json["special_offers"][0]["id"].as_str().unwrap().to_owned();
    let r = f.form(&format!("{}/offers/{offer}/quote", f.client), &[("message", "Call after 5 <pm>")]).await;
    page(&r, 400, &format!("consent-{offer}-error"));
    assert!(r.text.contains("Call after 5 &lt;pm&gt;</textarea>"), "the message is kept, escaped: {}", r.text);
    assert!(f.app.emails_to(&partner).await.is_empty());

    for path in [
        format!("/share/{}/full-access", f.inspection_id),
        "/p/not-a-token/new-link".to_owned(),
        format!("/me/{}", f.company_id),
    ] {
        let r = f.form(&path, &[("email", "jane at example")]).await;
        page(&r, 400, "email-error");
        assert!(r.text.contains("value=\"jane at example\""), "{path}: the input is kept");
        let json = f.post(&path, json!({ "email": "jane at example" })).await;
        json.assert_problem(400);
    }
}

/// Pages say which language they are in (`<html lang>`), from the company's `language` setting:
/// a screen reader pronounces a French company's portal in French.
#[tokio::test]
async fn pages_carry_the_company_s_language() {
    let f = fixture(json!({})).await;
    let html = |link: String| {
        let app = &f.app;
        async move { app.send(app.http.get(app.url(&link)).header("accept", "text/html")).await.text }
    };
    assert!(html(f.client.clone()).await.contains("<html lang=\"en\">"), "English unless the company says otherwise");
    let set = |lang: &str| f.app.request("PATCH", "/staff/settings", Some(&f.key), Some(json!({ "language": lang })));
    set("français").await.assert_problem(400);
    assert_eq!(set("fr-CA").await.status, 200);
    assert!(html(f.client.clone()).await.contains("<html lang=\"fr-CA\">"));
    assert!(html(format!("/share/{}", f.inspection_id)).await.contains("<html lang=\"fr-CA\">"));
    assert!(html(format!("/me/{}", f.company_id)).await.contains("<html lang=\"fr-CA\">"));
}

/// Staff open a person's portal in a browser through a preview link: read-only (no forms, a
/// "Staff preview" note), once, for 10 minutes, audited as that key's preview.
#[tokio::test]
async fn staff_preview_links_open_a_person_s_portal_read_only_once() {
    let f = fixture(json!({})).await;
    let client = f.inspection().await.people[0].id;
    let path = format!("/staff/inspections/{}/people/{client}/preview-link", f.inspection_id);
    let r = f.app.request("POST", &path, Some(&f.key), None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let url = r.json["url"].as_str().unwrap().to_owned();
    assert!(url.contains("/preview/spv_"), "{url}");
    let open = |u: String| {
        let app = &f.app;
        async move { app.send(app.http.get(&u).header("accept", "text/html")).await }
    };
    let page = open(url.clone()).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Staff preview") && page.text.contains("Jane Client"), "{}", page.text);
    assert!(!page.text.contains("<form"), "read-only: nothing to submit");
    assert_eq!(open(url).await.status, 404, "used once");
    // Unused for 10 minutes: gone.
    let late = f.app.request("POST", &path, Some(&f.key), None).await.json["url"].as_str().unwrap().to_owned();
    f.app.clock.advance(time::Duration::minutes(11));
    assert_eq!(open(late).await.status, 404);
    // Audited as the staff key's preview of that person.
    let trail =
        f.app.request("GET", &format!("/staff/inspections/{}/audit", f.inspection_id), Some(&f.key), None).await;
    let preview = trail.json["items"].as_array().unwrap().iter().find(|a| a["action"] == "portal_preview").cloned();
    let preview = preview.expect("audited");
    assert_eq!(
        (preview["actor"]["kind"].as_str(), preview["actor"]["as_person"].as_str()),
        (Some("staff"), Some(client.to_string().as_str()))
    );
    f.app
        .request(
            "POST",
            &format!("/staff/inspections/{}/people/{}/preview-link", f.inspection_id, ulid::Ulid::new()),
            Some(&f.key),
            None,
        )
        .await
        .assert_problem(404);
}

/// Each payment has a printable receipt for the clients: the portal JSON lists them with their
/// `receipt_url`, which opens the receipt page (company, property, amount, currency, date in the
/// company's zone, method, any money returned since). Agents see none.
#[tokio::test]
async fn every_payment_has_a_printable_receipt_for_the_clients() {
    let f = fixture(json!({ "time_zone": "America/Chicago" })).await;
    let pay = json!({ "amount_cents": 45000, "method": "check", "reference": "#1201" });
    let payments = format!("/staff/inspections/{}/payments", f.inspection_id);
    assert_eq!(f.app.request("POST", &payments, Some(&f.key), Some(pay)).await.status, 201);
    let v = f.view(&f.client).await.json;
    let receipts = v["payment"]["receipts"].as_array().unwrap().clone();
    assert_eq!(receipts.len(), 1, "{v}");
    assert_eq!(receipts[0]["amount_cents"], 45000);
    assert!(receipts[0]["paid_at"].is_string());
    let url = receipts[0]["receipt_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/receipts/", f.client)), "{url}");
    let page = |u: String| {
        let app = &f.app;
        async move { app.send(app.http.get(app.url(&u)).header("accept", "text/html")).await }
    };
    let r = page(url.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for shown in ["Payment receipt", "Lakeside", "$450.00", "(USD)", "Check", "CST", "Jane Client"] {
        assert!(r.text.contains(shown), "{shown}: {}", r.text);
    }
    assert!(r.text.contains("@media print"), "a print stylesheet");
    // A refund shows on the receipt.
    let refund = json!({ "amount_cents": 5000, "method": "check", "refund": true, "reference": "#1202" });
    assert_eq!(f.app.request("POST", &payments, Some(&f.key), Some(refund)).await.status, 201);
    let r = page(url.clone()).await;
    assert!(r.text.contains("Money returned since") && r.text.contains("$50.00"), "{}", r.text);
    // Not the agent's to see.
    assert_eq!(f.view(&f.agent).await.json["payment"]["receipts"], json!([]));
    let agent_url = url.replace(&f.client, &f.agent);
    assert_eq!(page(agent_url).await.status, 404);
    assert_eq!(page(format!("{}/receipts/offline_nothing", f.client)).await.status, 404);
}

/// A card payment's receipt names the card as the provider described it ("Visa ending in 4242"),
/// and nothing more of it.
#[tokio::test]
async fn a_card_payment_s_receipt_names_the_card() {
    use portal_tests::stripe::{deliver, event, evt_id};
    let f = fixture(json!({ "payments": "native" })).await;
    let card = json!({ "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034, "fingerprint": "Xt5EWLLDS7FJjR1c" });
    let pi = json!({ "id": "pi_card", "object": "payment_intent", "amount": 45000, "amount_received": 45000,
        "currency": "usd", "latest_charge": { "id": "ch_card", "object": "charge",
        "payment_method_details": { "type": "card", "card": card } } });
    deliver(&f, &event(&f, &evt_id(), "payment_intent.succeeded", pi)).await;
    let v = f.view(&f.client).await.json;
    let url = v["payment"]["receipts"][0]["receipt_url"].as_str().expect("a receipt").to_owned();
    let r = f.app.send(f.app.http.get(f.app.url(&url)).header("accept", "text/html")).await;
    assert!(r.text.contains("Visa ending in 4242"), "{}", r.text);
    assert!(!r.text.contains("Xt5EWLLDS7FJjR1c") && !r.text.contains("2034"), "only brand and last four");
}

/// The company's brand on its pages: an accent colour (refused, naming the contrast, when white
/// text on it is under 4.5:1) in a stylesheet the CSP allows by its hash, and a logo uploaded
/// through a presigned POST, checked by its bytes when set, served from the portal's own origin.
#[tokio::test]
async fn the_portal_wears_the_company_s_colour_and_logo() {
    let f = fixture(json!({})).await;
    let settings = |body: Value| f.app.request("PATCH", "/staff/settings", Some(&f.key), Some(body));
    let pale = settings(json!({ "accent_color": "#ffcc00" })).await;
    pale.assert_problem(400);
    assert!(pale.json["detail"].as_str().unwrap().contains("4.5:1"), "{}", pale.text);
    assert_eq!(settings(json!({ "accent_color": "#0b6e4f" })).await.status, 200);

    let png = portal_tests::png(120, 40);
    let form = |content_type: &str| {
        f.app.request("POST", "/staff/settings/logo", Some(&f.key), Some(json!({ "content_type": content_type })))
    };
    form("image/svg+xml").await.assert_problem(400);
    let r = form("image/png").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.json["key"].as_str().unwrap().to_owned();
    settings(json!({ "logo": key })).await.assert_problem(400); // nothing uploaded yet
                                                                // Not an image, whatever the form said: refused when set.
    let bad = form("image/png").await;
    portal_infra::uploads::post_file(&f.app.http, &bad.json["upload"], b"<svg onload=alert(1)>", "image/png")
        .await
        .unwrap();
    settings(json!({ "logo": bad.json["key"] })).await.assert_problem(400);
    settings(json!({ "logo": "companies/someone-else/brand/logo.png" })).await.assert_problem(400);
    assert!(portal_infra::uploads::post_file(&f.app.http, &r.json["upload"], &png, "image/png")
        .await
        .unwrap()
        .is_success());
    assert_eq!(settings(json!({ "logo": key })).await.status, 200);

    let page = f.app.send(f.app.http.get(f.app.url(&f.client)).header("accept", "text/html")).await;
    let logo = format!("/brand/{}/logo", f.company_id);
    assert!(page.text.contains(&format!("src=\"{logo}\"")) && page.text.contains("Lakeside"), "{}", page.text);
    assert!(page.text.contains("header{background:#0b6e4f}"), "the accent colour");
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert_eq!(csp.matches("'sha256-").count(), 2, "both stylesheets, by hash: {csp}");
    assert!(csp.contains("img-src 'self'"), "{csp}");
    let served = f.app.http.get(f.app.url(&logo)).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png, "the logo as uploaded");

    // Its emails wear them too: the HTML part's header shows the logo from the portal's origin on
    // the accent colour (the text part stays text).
    let asked = f.post(&format!("/share/{}/full-access", f.inspection_id), json!({ "email": f.client_email })).await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    f.app.run_jobs().await;
    let mails = f.app.emails_to(&f.client_email).await;
    let mail = mails.iter().find(|m| m.body.contains("/p/")).expect("the full-access email");
    assert!(mail.body.contains(&format!("<img src=\"{}{logo}\" alt=\"Lakeside", f.app.base)), "{}", mail.body);
    assert!(mail.body.contains("background:#0b6e4f"), "the accent colour in the email: {}", mail.body);
}
