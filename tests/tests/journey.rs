//! The client's journey as people live it: the confirmation email that starts it, the right email
//! for each document, revocation that sticks, removing a person, rescheduling, link lifetimes and
//! local times. Emails go through the outbox; tests run its job and read the dev mailbox (moto).

use portal_tests::{days_from_now, fixture, spawn_app, unique, Fixture, TestApp};
use serde_json::{json, Value};
use time::macros::datetime;
use time::Duration;

async fn run_jobs(app: &TestApp) -> portal_shared::usecases::outbox::DrainReport {
    app.run_jobs().await
}

async fn history(app: &TestApp, key: &str, inspection: &str) -> Vec<Value> {
    let r = app.request("GET", &format!("/staff/inspections/{inspection}/emails"), Some(key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["items"].as_array().unwrap().clone()
}

fn count(items: &[Value], template: &str, state: &str) -> usize {
    items.iter().filter(|e| e["template_key"] == template && e["state"] == state).count()
}

struct Booked {
    app: TestApp,
    key: String,
    id: String,
    client: String,
    agent: String,
    listing: String,
}

/// A company books an inspection ten days from now for a buyer, their agent and the listing
/// agent (and its own inspector, who is staff).
async fn book(extra: Value) -> Booked {
    book_in(spawn_app().await, extra).await
}

/// [`book`] in a given app (one whose clock the test has moved, say).
async fn book_in(app: TestApp, extra: Value) -> Booked {
    let scheduled_at = portal_shared::foundation::clock::rfc3339(app.clock.now() + Duration::days(10));
    let (_, key) = app.create_company("Prairie Home Inspections", &["ivan@prairie.test"]).await;
    let (client, agent, listing) = (unique("buyer"), unique("agent"), unique("listing"));
    let mut body = json!({
        "address": "501 Oak Avenue, Naperville, IL",
        "scheduled_at": scheduled_at,
        "services": [{ "name": "Residential Inspection", "price_cents": 45000 }],
        "people": [
            { "role": "client", "name": "Casey Buyer", "email": client },
            { "role": "buyer_agent", "name": "Alex Agent", "email": agent },
            { "role": "listing_agent", "name": "Lee Lister", "email": listing },
            { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@prairie.test" }
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["inspection_id"].as_str().unwrap().to_owned();
    Booked { app, key, id, client, agent, listing }
}

#[tokio::test]
async fn booking_sends_each_token_holder_one_confirmation_with_their_own_link() {
    let b = book(json!({})).await;
    let queued = history(&b.app, &b.key, &b.id).await;
    assert_eq!(
        count(&queued, "inspection_scheduled", "pending"),
        3,
        "client, buyer's agent, listing agent: {queued:?}"
    );
    assert_eq!(run_jobs(&b.app).await.sent, 3);
    assert_eq!(run_jobs(&b.app).await.sent, 0, "a second run sends nothing twice");
    assert_eq!(count(&history(&b.app, &b.key, &b.id).await, "inspection_scheduled", "sent"), 3);
    assert!(b.app.emails_to("ivan@prairie.test").await.is_empty(), "staff use the staff side");

    let mail = &b.app.emails_to(&b.client).await[0];
    assert!(mail.subject.contains("501 Oak Avenue"), "{}", mail.subject);
    assert!(mail.body.contains("Sign & Pay: http"), "the client has something to sign and pay: {}", mail.body);
    assert!(mail.body.contains(">Sign &amp; Pay</a>"), "the HTML part labels the link: {}", mail.body);
    let link = mail.links.iter().find(|l| l.contains("/p/")).expect("a portal link");
    let v = b.app.send(b.app.http.get(link.as_str()).header("accept", "application/json")).await;
    assert_eq!((v.status, v.json["viewer"]["role"].as_str()), (200, Some("client")), "their own link");
    let agent_mail = &b.app.emails_to(&b.agent).await[0];
    assert!(!agent_mail.body.contains("Sign & Pay"), "nothing to sign or pay for an agent");
    assert!(agent_mail.links.iter().all(|l| l != link), "everyone gets their own link");
}

#[tokio::test]
async fn notify_false_sends_no_confirmation_and_people_added_later_get_theirs() {
    let b = book(json!({ "notify": false })).await;
    assert!(history(&b.app, &b.key, &b.id).await.is_empty());
    let people = format!("/staff/inspections/{}/people", b.id);
    let (joe, quiet) = (unique("joe"), unique("quiet"));
    let r = b
        .app
        .request("POST", &people, Some(&b.key), Some(json!({ "role": "client", "name": "Joe", "email": joe })))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = b
        .app
        .request(
            "POST",
            &people,
            Some(&b.key),
            Some(json!({ "role": "additional", "name": "Q", "email": quiet, "notify": false })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(run_jobs(&b.app).await.sent, 1);
    assert_eq!(b.app.emails_to(&joe).await.len(), 1);
    assert!(b.app.emails_to(&quiet).await.is_empty());
}

#[tokio::test]
async fn rescheduling_tells_everyone_once_per_change() {
    let b = book(json!({ "notify": false })).await;
    let path = format!("/staff/inspections/{}", b.id);
    let moved = days_from_now(11);
    let r = b.app.request("PATCH", &path, Some(&b.key), Some(json!({ "scheduled_at": moved }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["scheduled_at"], moved.as_str());
    // The same value again is no change; a bad one is refused.
    b.app.request("PATCH", &path, Some(&b.key), Some(json!({ "scheduled_at": moved }))).await;
    b.app.request("PATCH", &path, Some(&b.key), Some(json!({ "scheduled_at": "soon" }))).await.assert_problem(400);
    assert_eq!(run_jobs(&b.app).await.sent, 3);
    let mail = &b.app.emails_to(&b.client).await[0];
    assert!(mail.subject.starts_with("New date:"), "{}", mail.subject);
    let r =
        b.app.request("PATCH", &path, Some(&b.key), Some(json!({ "address": "7 Elm Court", "notify": false }))).await;
    assert_eq!(r.json["address"], "7 Elm Court");
    assert_eq!(run_jobs(&b.app).await.sent, 0, "notify: false");
}

async fn publish(f: &Fixture, kind: &str, title: &str) -> String {
    f.app.published_document(&f.key, &f.inspection_id.to_string(), json!({ "kind": kind, "title": title })).await
}

#[tokio::test]
async fn each_kind_of_document_is_announced_in_its_own_words() {
    let f = fixture(json!({})).await;
    publish(&f, "invoice", "Invoice 1042").await;
    run_jobs(&f.app).await;
    let mails = f.app.emails_to(&f.client_email).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.to_lowercase().contains("invoice"), "{}", mails[0].subject);
    for m in &mails {
        assert!(
            !m.subject.to_lowercase().contains("report") && !m.body.to_lowercase().contains("report"),
            "{}",
            m.body
        );
    }
    assert!(mails[0].body.contains("Invoice 1042"));
    publish(&f, "proposal", "Roof repair proposal").await;
    run_jobs(&f.app).await;
    let proposal =
        f.app.emails_to(&f.client_email).await.into_iter().find(|m| m.subject.to_lowercase().contains("proposal"));
    assert!(proposal.is_some_and(|m| !m.body.to_lowercase().contains("report")));
    let h = history(&f.app, &f.key, &f.inspection_id.to_string()).await;
    assert_eq!(count(&h, "invoice_published", "sent"), 2, "client and buyer's agent: {h:?}");
    assert_eq!(count(&h, "proposal_published", "sent"), 2);
    // A company's own wording for invoices.
    let r = f
        .app
        .request(
            "PATCH",
            "/staff/settings",
            Some(&f.key),
            Some(json!({ "email_templates": { "invoice_published": {
                "subject": "Bill for {{address}}", "body": "Pay here: {{inspection_details_link}}" } } })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    publish(&f, "invoice", "Invoice 1043").await;
    run_jobs(&f.app).await;
    let subjects: Vec<String> = f.app.emails_to(&f.client_email).await.into_iter().map(|m| m.subject).collect();
    assert!(subjects.iter().any(|s| s == "Bill for 12 Elm Street, Springfield"), "{subjects:?}");
}

#[tokio::test]
async fn a_revoked_person_gets_no_link_from_anywhere_until_staff_reissue_one() {
    let f = fixture(json!({})).await;
    let client = f.inspection().await.people.iter().find(|p| p.name == "Jane Client").unwrap().id;
    let token = format!("/staff/inspections/{}/people/{client}/token", f.inspection_id);
    let r = f.app.request("DELETE", &token, Some(&f.key), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(f.view(&f.client).await.status, 404, "the old link is dead");

    // Get Full Access with their address, and a published document: no email, no link.
    let url = format!("/share/{}/full-access", f.inspection_id);
    assert_eq!(f.post(&url, json!({ "email": f.client_email })).await.status, 202);
    publish(&f, "inspection_report", "Report").await;
    run_jobs(&f.app).await;
    assert!(f.app.emails_to(&f.client_email).await.is_empty(), "nothing revives a revoked link");
    let h = history(&f.app, &f.key, &f.inspection_id.to_string()).await;
    assert_eq!(count(&h, "report_published", "skipped"), 1, "listed as skipped: {h:?}");
    assert_eq!(count(&h, "full_access", "skipped"), 1, "{h:?}");
    assert_eq!(count(&h, "report_published", "sent"), 1, "the agent still hears of it");
    let i = f.app.request("GET", &format!("/staff/inspections/{}", f.inspection_id), Some(&f.key), None).await;
    let jane = i.json["people"].as_array().unwrap().iter().find(|p| p["name"] == "Jane Client").unwrap().clone();
    assert_eq!((jane["revoked"].as_bool(), jane["live_links"].as_u64()), (Some(true), Some(0)));

    // Staff re-issue: it works again, and emails flow again.
    let r = f.app.request("POST", &token, Some(&f.key), None).await;
    assert_eq!(r.status, 201);
    let link = r.json["url"].as_str().unwrap().strip_prefix(&f.app.base).unwrap().to_owned();
    assert_eq!(f.view(&link).await.status, 200);
    assert_eq!(f.post(&url, json!({ "email": f.client_email })).await.status, 202);
    run_jobs(&f.app).await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 1);
    let audit =
        f.app.request("GET", &format!("/staff/inspections/{}/audit", f.inspection_id), Some(&f.key), None).await;
    let actions: Vec<&str> =
        audit.json["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"link_revoked") && actions.contains(&"link_reissued"), "{actions:?}");
}

#[tokio::test]
async fn removing_a_person_kills_their_links_and_is_audited() {
    let f = fixture(json!({})).await;
    let agent = f.inspection().await.people.iter().find(|p| p.name == "Bob Agent").unwrap().id;
    let path = format!("/staff/inspections/{}/people/{agent}", f.inspection_id);
    assert_eq!(f.app.request("DELETE", &path, Some(&f.key), None).await.status, 204);
    assert_eq!(f.view(&f.agent).await.status, 404);
    f.app.request("DELETE", &path, Some(&f.key), None).await.assert_problem(404);
    assert!(f.inspection().await.person(agent).is_none());
    publish(&f, "inspection_report", "Report").await;
    run_jobs(&f.app).await;
    assert!(f.app.emails_to(&f.agent_email).await.is_empty());
    let audit =
        f.app.request("GET", &format!("/staff/inspections/{}/audit", f.inspection_id), Some(&f.key), None).await;
    assert!(audit.json["items"].as_array().unwrap().iter().any(|a| a["action"] == "person_removed"), "{}", audit.text);
}

#[tokio::test]
async fn links_stop_working_after_the_company_s_link_lifetime() {
    let f = fixture(json!({ "link_lifetime_days": 30 })).await;
    assert_eq!(f.view(&f.client).await.status, 200);
    f.app.clock.advance(Duration::days(30) - Duration::minutes(1));
    assert_eq!(f.view(&f.client).await.status, 200, "a minute before its 30 days are up");
    f.app.clock.advance(Duration::minutes(2));
    f.view(&f.client).await.assert_problem(404);
    f.view(&f.agent).await.assert_problem(404);
    let r = f.app.request("PATCH", "/staff/settings", Some(&f.key), Some(json!({ "link_lifetime_days": 0 }))).await;
    r.assert_problem(400);
}

#[tokio::test]
async fn pages_and_emails_show_the_company_s_local_time_across_daylight_saving() {
    // A calendar fact: Chicago leaves daylight saving time on 2026-11-01. The company books on
    // 2026-10-20 (its app's clock pinned there) an inspection after the change, then moves it to
    // before the change.
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-10-20 15:00 UTC));
    let b = book_in(app, json!({ "scheduled_at": "2026-11-26T07:41:00Z" })).await;
    let r =
        b.app.request("PATCH", "/staff/settings", Some(&b.key), Some(json!({ "time_zone": "America/Chicago" }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    b.app
        .request("PATCH", "/staff/settings", Some(&b.key), Some(json!({ "time_zone": "Mars/Olympus" })))
        .await
        .assert_problem(400);
    run_jobs(&b.app).await;
    let mail = &b.app.emails_to(&b.client).await[0];
    assert!(mail.body.contains("Thursday, November 26, 2026 at 1:41 AM CST"), "{}", mail.body);
    let link = mail.links.iter().find(|l| l.contains("/p/")).unwrap().clone();
    let page = b.app.send(b.app.http.get(&link)).await.text;
    assert!(page.contains("Thursday, November 26, 2026 at 1:41 AM CST"), "winter time");
    let json = b.app.send(b.app.http.get(&link).header("accept", "application/json")).await.json;
    assert_eq!(json["scheduled_at"], "2026-11-26T07:41:00.000Z", "JSON stays UTC");
    assert_eq!(json["company"]["time_zone"], "America/Chicago");
    // Moved to before the end of daylight saving time: CDT.
    let path = format!("/staff/inspections/{}", b.id);
    b.app
        .request("PATCH", &path, Some(&b.key), Some(json!({ "scheduled_at": "2026-10-31T14:30:00Z", "notify": false })))
        .await;
    let page = b.app.send(b.app.http.get(&link)).await.text;
    assert!(page.contains("Saturday, October 31, 2026 at 9:30 AM CDT"), "summer time");
    // The agreement text says it too.
    let agreement = &json["agreement"]["text"];
    assert!(agreement.as_str().unwrap().contains("1:41 AM CST"), "{agreement}");
    let _ = (&b.agent, &b.listing);
}

#[tokio::test]
async fn a_quote_shares_the_client_s_details_only_with_consent_and_records_it() {
    let partner = unique("quotes");
    let f = fixture(json!({ "special_offers": [
        { "partner": "HomeShield", "title": "1-year home warranty", "description": "Covers major systems", "partner_email": partner },
        { "partner": "NoEmail Co", "title": "Insurance" }
    ] }))
    .await;
    let offers = f.view(&f.client).await.json["special_offers"].clone();
    let warranty = offers.as_array().unwrap().iter().find(|o| o["partner"] == "HomeShield").unwrap().clone();
    assert_eq!(
        (warranty["can_request_quote"].as_bool(), warranty["quote_requested"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(warranty.get("partner_email").is_none(), "the partner's address is not the client's business");
    let consent_text = warranty["consent_text"].as_str().unwrap().to_owned();
    assert!(consent_text.contains("HomeShield") && consent_text.contains("phone number"), "{consent_text}");
    let url = format!("{}/offers/{}/quote", f.client, warranty["id"].as_str().unwrap());

    // Without consent: 400, nothing recorded or shared.
    for body in [json!({}), json!({ "consent": false }), json!({ "message": "hi" })] {
        f.post(&url, body).await.assert_problem(400);
    }
    f.post(&format!("{}/offers/{}/quote", f.agent, warranty["id"].as_str().unwrap()), json!({ "consent": true }))
        .await
        .assert_problem(403);
    let other = offers.as_array().unwrap().iter().find(|o| o["partner"] == "NoEmail Co").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.post(&format!("{}/offers/{other}/quote", f.client), json!({ "consent": true })).await.assert_problem(409);
    f.app.run_jobs().await;
    assert!(f.app.emails_to(&partner).await.is_empty());
    let quotes =
        f.app.request("GET", &format!("/staff/inspections/{}/quotes", f.inspection_id), Some(&f.key), None).await;
    assert_eq!(quotes.json["items"], json!([]));

    // With consent: recorded (who, when, from where, the exact text), then one partner email.
    let r = f.form(&url, &[("consent", "on"), ("message", "Please call after 5pm")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(f.post(&url, json!({ "consent": true })).await.status, 200, "asking again is fine");
    assert_eq!(f.app.run_jobs().await.sent, 1, "and sends nothing more");
    let mails = f.app.emails_to(&partner).await;
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    for shared in ["Jane Client", f.client_email.as_str(), "12 Elm Street, Springfield", "Please call after 5pm"] {
        assert!(m.body.contains(shared), "{shared} in {}", m.body);
    }
    assert!(!m.body.contains("/p/"), "no portal link reaches a partner");
    let quotes =
        f.app.request("GET", &format!("/staff/inspections/{}/quotes", f.inspection_id), Some(&f.key), None).await;
    let q = &quotes.json["items"][0];
    assert_eq!(q["person_name"], "Jane Client");
    assert_eq!(q["consent_text"], consent_text.as_str(), "the exact text shown");
    assert!(q["ip"].as_str().is_some() && q["requested_at"].as_str().is_some());
    assert_eq!(q["shared"]["email"], f.client_email.as_str());
    let view = f.view(&f.client).await.json["special_offers"].clone();
    assert!(view.as_array().unwrap().iter().any(|o| o["quote_requested"] == true));
    let page = f.app.send(f.app.http.get(f.app.url(&f.client))).await.text;
    assert!(page.contains("Quote requested"), "the offers tab says so");
}

/// The display name of an RFC 2047 `From` header, decoded as a mail client shows it.
fn display_name(from: &str) -> String {
    use base64::Engine;
    let (words, _) = from.rsplit_once(' ').expect("a display name and an address");
    words
        .split_whitespace()
        .map(|w| {
            let b64 = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_company_with_an_accented_name_sends_its_mail_with_the_name_as_written() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Québec Inspections", &[]).await;
    let client = unique("client");
    let body = json!({ "address": "12 rue Saint-Jean, Québec", "scheduled_at": days_from_now(5),
        "people": [{ "role": "client", "name": "Amélie Côté", "email": client }] });
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let report = run_jobs(&app).await;
    assert_eq!((report.sent, report.failed, report.failed_permanently), (1, 0, 0), "{report:?}");
    let mail = &app.emails_to(&client).await[0];
    let from = from_as_sent(mail);
    assert!(from.is_ascii(), "SES takes no raw UTF-8 in From: {from}");
    assert_eq!(display_name(&from), "Québec Inspections");
    assert!(from.ends_with(&format!("<{}>", portal_tests::SENDER)), "{from}");

    // A sender name of its own, in another script.
    let r = app
        .request("PATCH", "/staff/settings", Some(&key), Some(json!({ "sender_name": "Müller Prüfdienst · Ελλάδα" })))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let path = format!("/staff/inspections/{}", only_inspection(&app, &key).await);
    app.request("PATCH", &path, Some(&key), Some(json!({ "scheduled_at": days_from_now(6) }))).await;
    assert_eq!(run_jobs(&app).await.sent, 1);
    let mails = app.emails_to(&client).await;
    assert_eq!(display_name(&from_as_sent(&mails[1])), "Müller Prüfdienst · Ελλάδα");
}

/// The `From` header as it went to SES: the raw message's (unfolded), or the simple send's source.
fn from_as_sent(mail: &portal_infra::mailbox::MailMessage) -> String {
    if mail.raw.is_empty() {
        return mail.from.clone();
    }
    let head = mail.raw.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ");
    head.lines().find_map(|l| l.strip_prefix("From: ")).expect("a From header").to_owned()
}

/// The one inspection of the company whose staff key is `key`.
async fn only_inspection(app: &TestApp, key: &str) -> String {
    let r = app.request("GET", "/staff/inspections", Some(key), None).await;
    r.json["items"][0]["inspection_id"].as_str().unwrap().to_owned()
}
