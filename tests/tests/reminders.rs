//! Reminders, through the gateway, the every-minute job and SES (moto), moving the app's clock
//! rather than waiting: each is sent once at its time, to the people its cause concerns, never
//! after the cause is gone (signed, paid, cancelled), never for an inspection created with
//! `"notify": false`; staff see them in the email history.

use portal_tests::{spawn_app, unique, TestApp};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

struct Booking {
    app: TestApp,
    company: String,
    key: String,
    inspection: String,
    scheduled_at: OffsetDateTime,
    client: String,
    client_link: String,
    agent: String,
}

/// A company with default settings and an inspection in 5 days (a client and a buyer's agent,
/// with their confirmations sent), or with `extra` fields in its request.
async fn booking(extra: Value) -> Booking {
    let app = spawn_app().await;
    let (company, key) = app.create_company("Lakeside Home Inspections", &["ivan@lakeside.test"]).await;
    let scheduled_at = (app.clock.now() + Duration::days(5)).replace_millisecond(0).unwrap();
    let (client, agent) = (unique("jane"), unique("bob"));
    let mut body = json!({
        "address": "12 Elm Street, Springfield",
        "scheduled_at": portal_shared::foundation::clock::rfc3339(scheduled_at),
        "services": [{ "name": "Residential Inspection", "price_cents": 45000 }],
        "people": [
            { "role": "client", "name": "Jane Client", "email": client },
            { "role": "buyer_agent", "name": "Bob Agent", "email": agent },
            { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@lakeside.test" }
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let link = r.json["links"].as_array().unwrap().iter().find(|l| l["role"] == "client").unwrap()["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&app.base)
        .unwrap()
        .to_owned();
    let inspection = r.json["inspection_id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    Booking { app, company, key, inspection, scheduled_at, client, client_link: link, agent }
}

impl Booking {
    /// Runs the job at `hours` before the inspection (negative: after).
    async fn at_hours_before(&self, hours: i64) {
        self.app.clock.set(self.scheduled_at - Duration::hours(hours));
        self.app.run_jobs().await;
    }

    async fn subjects(&self, to: &str) -> Vec<String> {
        self.app.emails_to(to).await.into_iter().map(|m| m.subject).collect()
    }

    async fn count(&self, to: &str, subject_start: &str) -> usize {
        self.subjects(to).await.iter().filter(|s| s.starts_with(subject_start)).count()
    }
}

#[tokio::test]
async fn each_reminder_goes_once_at_its_time_and_never_after_its_cause_is_gone() {
    let b = booking(json!({})).await;
    let (sign, pay, tomorrow) = ("Please sign", "Payment due", "Tomorrow");
    b.at_hours_before(49).await;
    assert_eq!(b.count(&b.client, sign).await, 0, "not before its time: {:?}", b.subjects(&b.client).await);

    b.at_hours_before(47).await;
    assert_eq!(b.count(&b.client, sign).await, 1, "the unsigned agreement, 48 h before");
    assert_eq!(b.count(&b.agent, sign).await, 0, "agents sign nothing");
    b.app.run_jobs().await;
    b.app.clock.advance(Duration::minutes(30));
    b.app.run_jobs().await;
    assert_eq!(b.count(&b.client, sign).await, 1, "once");

    // The client signs: no more agreement reminders, whatever comes.
    let signed = b
        .app
        .request("POST", &format!("{}/agreement", b.client_link), None, Some(json!({ "typed_name": "Jane Client" })))
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    b.at_hours_before(23).await;
    assert_eq!(b.count(&b.client, pay).await, 1, "payment due, 24 h before");
    assert_eq!(b.count(&b.client, tomorrow).await, 1, "the day before, to the client");
    assert_eq!(b.count(&b.agent, tomorrow).await, 1, "and to the agent");
    assert_eq!(b.count(&b.agent, pay).await, 0, "agents pay nothing");
    assert_eq!(b.count(&b.client, sign).await, 1, "signed: no second agreement reminder");
    b.at_hours_before(2).await;
    assert_eq!(b.count(&b.client, pay).await + b.count(&b.client, tomorrow).await, 2, "each once");

    // Staff see them in the email history.
    let history =
        b.app.request("GET", &format!("/staff/inspections/{}/emails", b.inspection), Some(&b.key), None).await;
    assert_eq!(history.status, 200, "{}", history.text);
    let kinds: Vec<&str> =
        history.json["items"].as_array().unwrap().iter().filter_map(|e| e["template_key"].as_str()).collect();
    for k in ["reminder_agreement", "reminder_payment", "reminder_inspection"] {
        assert!(kinds.contains(&k), "{k} in the history: {kinds:?}");
    }
}

#[tokio::test]
async fn a_reminder_whose_cause_went_is_not_sent() {
    let b = booking(json!({})).await;
    // Paid before its time: no payment reminder is queued.
    let payments = format!("/staff/inspections/{}/payments", b.inspection);
    let paid =
        b.app.request("POST", &payments, Some(&b.key), Some(json!({ "amount_cents": 45000, "method": "check" })));
    assert_eq!(paid.await.status, 201);
    b.at_hours_before(23).await;
    assert_eq!(b.count(&b.client, "Payment due").await, 0, "{:?}", b.subjects(&b.client).await);
    assert_eq!(b.count(&b.client, "Please sign").await, 1, "the agreement is still unsigned (a late run sends it)");

    // Queued, and the cause goes before the outbox sends it: the outbox checks again and skips
    // it, saying why.
    let inspection =
        b.app.store.inspection(b.company.parse().unwrap(), b.inspection.parse().unwrap()).await.unwrap().unwrap();
    let jane = inspection.people.iter().find(|p| p.role == portal_shared::domain::inspection::Role::Client).unwrap();
    let now = b.app.clock.now();
    let late = portal_shared::adapters::store::outbox::EmailRecord::new(
        inspection.company_id,
        inspection.id,
        jane.id,
        "reminder_payment",
        None,
        format!("reminder_payment#{}#{}", now.unix_timestamp(), jane.id),
        now,
    );
    b.app.store.write(late.create().unwrap()).await.unwrap();
    b.app.run_jobs().await;
    assert_eq!(b.count(&b.client, "Payment due").await, 0, "paid since: not sent");
    let history =
        b.app.request("GET", &format!("/staff/inspections/{}/emails", b.inspection), Some(&b.key), None).await;
    let skipped = history.json["items"].as_array().unwrap().iter().find(|e| e["template_key"] == "reminder_payment");
    let skipped = skipped.expect("in the history");
    assert_eq!(skipped["state"], "skipped", "{skipped}");
    assert!(skipped["last_error"].as_str().unwrap().contains("no longer needed"), "{skipped}");
}

#[tokio::test]
async fn a_cancelled_or_quiet_inspection_gets_no_reminders() {
    let quiet = booking(json!({ "notify": false })).await;
    quiet.at_hours_before(23).await;
    assert!(quiet.subjects(&quiet.client).await.is_empty(), "{:?}", quiet.subjects(&quiet.client).await);

    let b = booking(json!({})).await;
    let cancel = format!("/staff/inspections/{}/cancel", b.inspection);
    let r = b.app.request(
        "POST",
        &cancel,
        Some(&b.key),
        Some(json!({ "reason": "The sale fell through", "notify": false })),
    );
    assert_eq!(r.await.status, 200);
    b.at_hours_before(23).await;
    let subjects = b.subjects(&b.client).await;
    assert!(
        !subjects
            .iter()
            .any(|s| s.starts_with("Please sign") || s.starts_with("Payment due") || s.starts_with("Tomorrow")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn payment_still_due_after_the_report_is_reminded_three_times_a_week_apart() {
    let b = booking(json!({ "require_agreement": false })).await;
    b.app.clock.set(b.scheduled_at + Duration::hours(3));
    b.app
        .published_document(
            &b.key,
            &b.inspection,
            json!({ "kind": "inspection_report", "title": "Report", "template_name": "Residential Inspection" }),
        )
        .await;
    b.app.run_jobs().await;
    let due = "Payment due to open your report";
    let published = b.app.clock.now();
    for (days, want) in [(2, 0), (3, 1), (9, 1), (10, 2), (17, 3), (24, 3), (40, 3)] {
        b.app.clock.set(published + Duration::days(days) + Duration::minutes(1));
        b.app.run_jobs().await;
        assert_eq!(b.count(&b.client, due).await, want, "day {days}");
    }
}

/// Staff cancel an inspection: everyone with a link is told once, the portal says so (and takes
/// no signature, add-on or payment), nothing publishes; money paid stays. Reinstating undoes it
/// and tells them again.
#[tokio::test]
async fn cancelling_and_reinstating_an_inspection() {
    let b = booking(json!({})).await;
    let path = |what: &str| format!("/staff/inspections/{}/{what}", b.inspection);
    let r =
        b.app.request("POST", &path("cancel"), Some(&b.key), Some(json!({ "reason": "The sale fell through" }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["status"].as_str(), r.json["cancel_reason"].as_str()),
        (Some("cancelled"), Some("The sale fell through"))
    );
    assert!(r.json["next_reminder_at"].is_null(), "no reminders to come");
    // Again: the same, and no second email.
    assert_eq!(b.app.request("POST", &path("cancel"), Some(&b.key), None).await.status, 200);
    b.app.run_jobs().await;
    for who in [&b.client, &b.agent] {
        assert_eq!(b.count(who, "Cancelled:").await, 1, "{who}: {:?}", b.subjects(who).await);
    }

    let view = b.app.send(b.app.http.get(b.app.url(&b.client_link)).header("accept", "application/json")).await;
    assert_eq!(view.json["cancelled"], true);
    assert!(view.json["payment"]["action"].is_null(), "no Pay Now: {}", view.json["payment"]);
    let page = b.app.send(b.app.http.get(b.app.url(&b.client_link)).header("accept", "text/html")).await;
    assert!(page.text.contains("This inspection was cancelled"), "{}", page.text);
    assert!(!page.text.contains("action=\"") || !page.text.contains("/pay\""), "no Pay Now form");
    let sign = b
        .app
        .request("POST", &format!("{}/agreement", b.client_link), None, Some(json!({ "typed_name": "Jane Client" })))
        .await;
    sign.assert_problem(409);
    let pay = b.app.request("POST", &format!("{}/pay", b.client_link), None, None).await;
    assert!(pay.status >= 400, "{}", pay.text);
    let (doc, _) = b
        .app
        .put_document(
            &b.key,
            &b.inspection,
            json!({ "kind": "invoice", "title": "Invoice" }),
            portal_tests::TEST_PDF,
            "application/pdf",
        )
        .await;
    assert_eq!(b.app.complete_upload(&b.key, &doc).await.status, 200);
    b.app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&b.key), None).await.assert_problem(409);

    let r = b.app.request("POST", &path("reinstate"), Some(&b.key), None).await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("active")), "{}", r.text);
    assert!(r.json["next_reminder_at"].is_string(), "reminders come again");
    b.app.run_jobs().await;
    assert_eq!(b.count(&b.client, "Back on:").await, 1);
    assert_eq!(b.app.request("POST", &format!("/staff/documents/{doc}/publish"), Some(&b.key), None).await.status, 200);
    let view = b.app.send(b.app.http.get(b.app.url(&b.client_link)).header("accept", "application/json")).await;
    assert_eq!(view.json["cancelled"], false);
    assert!(!view.json["payment"]["action"].is_null(), "how to pay, again: {}", view.json["payment"]);
}

/// The booking as the shared fixture (for the payment provider's helpers).
fn as_fixture(b: Booking) -> portal_tests::Fixture {
    portal_tests::Fixture {
        company_id: b.company.parse().unwrap(),
        inspection_id: b.inspection.parse().unwrap(),
        key: b.key,
        client: b.client_link.clone(),
        agent: String::new(),
        listing: String::new(),
        client_email: b.client,
        agent_email: b.agent,
        app: b.app,
    }
}

/// Each payment that applies sends the clients one receipt (amount, date, method, a link to its
/// receipt page), however often the provider delivers it; a refund sends a refund notice; agents
/// get neither.
#[tokio::test]
async fn each_payment_sends_one_receipt_and_each_refund_a_notice() {
    use portal_tests::stripe::{deliver, event, evt_id, intent};
    let f = as_fixture(booking(json!({})).await);
    let pi = intent("pi_receipt1", 30000, "succeeded", portal_tests::stripe::names(&f));
    let paid = event(&f, &evt_id(), "payment_intent.succeeded", pi.clone());
    deliver(&f, &paid).await;
    deliver(&f, &paid).await; // redelivered
    deliver(&f, &event(&f, &evt_id(), "payment_intent.succeeded", pi)).await; // the same money, another event
    f.app.run_jobs().await;
    let receipts: Vec<_> =
        f.app.emails_to(&f.client_email).await.into_iter().filter(|m| m.subject.starts_with("Receipt:")).collect();
    assert_eq!(receipts.len(), 1, "one receipt per payment");
    assert!(receipts[0].subject.contains("$300.00"), "{}", receipts[0].subject);
    let link = receipts[0].links.iter().find(|l| l.contains("/receipts/")).expect("a link to the receipt page").clone();
    let page = f.app.send(f.app.http.get(&link).header("accept", "text/html")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("$300.00"));

    // The rest, paid at the office: a second receipt.
    let payments = format!("/staff/inspections/{}/payments", f.inspection_id);
    let r =
        f.app.request("POST", &payments, Some(&f.key), Some(json!({ "amount_cents": 15000, "method": "check" }))).await;
    assert_eq!(r.status, 201);
    // Then a refund through the provider: a notice (and again only once).
    let refund = event(
        &f,
        &evt_id(),
        "charge.refunded",
        json!({ "id": "ch_receipt1", "object": "charge", "amount": 30000, "amount_refunded": 10000,
                "payment_intent": "pi_receipt1", "currency": "usd" }),
    );
    deliver(&f, &refund).await;
    deliver(&f, &refund).await;
    f.app.run_jobs().await;
    let subjects: Vec<String> = f.app.emails_to(&f.client_email).await.into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Receipt:")).count(), 2, "{subjects:?}");
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Refund: $100.00")).count(), 1, "{subjects:?}");
    let agent: Vec<String> = f.app.emails_to(&f.agent_email).await.into_iter().map(|m| m.subject).collect();
    assert!(!agent.iter().any(|s| s.starts_with("Receipt") || s.starts_with("Refund")), "{agent:?}");
}

/// The invitations `to` received (the `text/calendar` attachments, decoded by the mailbox),
/// parsed.
async fn invites(app: &TestApp, to: &str) -> Vec<(String, std::collections::HashMap<String, String>, Vec<String>)> {
    let mails = app.emails_to(to).await;
    let calendars =
        mails.iter().flat_map(|m| m.attachments.iter()).filter(|a| a.content_type.starts_with("text/calendar"));
    calendars.map(|a| parse(&a.content)).collect()
}

/// A parsed invitation's properties: the calendar's `METHOD`, and the event's and its time
/// zone's, by name (read with the `icalendar` crate's parser, folded lines undone).
fn parse(ics: &str) -> (String, std::collections::HashMap<String, String>, Vec<String>) {
    let unfolded = icalendar::parser::unfold(ics);
    let cal = icalendar::parser::read_calendar(&unfolded).expect("RFC 5545");
    let method = cal.properties.iter().find(|p| p.name == "METHOD").map(|p| p.val.to_string()).unwrap_or_default();
    let event = cal.components.iter().find(|c| c.name == "VEVENT").expect("a VEVENT");
    let mut props = std::collections::HashMap::new();
    for p in &event.properties {
        let params: Vec<String> = p
            .params
            .iter()
            .map(|x| format!("{}={}", x.key, x.val.as_ref().map(|v| v.to_string()).unwrap_or_default()))
            .collect();
        props.insert(p.name.to_string(), p.val.to_string());
        if !params.is_empty() {
            props.insert(format!("{};params", p.name), params.join(";"));
        }
    }
    let zones: Vec<String> = cal
        .components
        .iter()
        .filter(|c| c.name == "VTIMEZONE")
        .flat_map(|z| z.components.iter().map(|c| c.name.to_string()))
        .collect();
    (method, props, zones)
}

/// The confirmation and each change carry a calendar invitation (one UID per inspection, its
/// SEQUENCE one more per change, the start in the company's zone with its VTIMEZONE, the
/// services' duration, the address as location, the company as organizer); a cancellation
/// carries METHOD:CANCEL for the same UID.
#[tokio::test]
async fn confirmations_changes_and_cancellations_carry_one_calendar_event() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Lakeside Home Inspections", &["ivan@lakeside.test"]).await;
    let settings = json!({ "time_zone": "America/Chicago", "inspection_duration_minutes": 150, "reply_to": "office@lakeside.test" });
    assert_eq!(app.request("PATCH", "/staff/settings", Some(&key), Some(settings)).await.status, 200);
    let client = unique("jane");
    // A date in (northern) summer of next year: daylight time in Chicago.
    let year = app.clock.now().year() + 1;
    let body = json!({
        "address": "12 Elm Street, Springfield", "scheduled_at": format!("{year}-07-15T09:30:00-05:00"),
        "services": [{ "name": "Residential Inspection", "price_cents": 45000 }],
        "people": [{ "role": "client", "name": "Jane Client", "email": client }]
    });
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["inspection_id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let first = invites(&app, &client).await;
    assert_eq!(first.len(), 1, "the confirmation carries an invitation");
    let (method, event, zones) = &first[0];
    assert_eq!(method, "REQUEST");
    assert_eq!(event["SEQUENCE"], "0");
    assert_eq!(event["DTSTART"], format!("{year}0715T093000"));
    assert_eq!(event["DTSTART;params"], "TZID=America/Chicago");
    assert_eq!(event["DURATION"], "PT2H30M");
    assert_eq!(event["LOCATION"], "12 Elm Street, Springfield", "the comma escaped, and read back");
    assert!(event["ORGANIZER"].ends_with("office@lakeside.test"), "{:?}", event["ORGANIZER"]);
    assert!(zones.contains(&"DAYLIGHT".to_owned()) && zones.contains(&"STANDARD".to_owned()), "{zones:?}");
    let uid = event["UID"].clone();

    let moved = json!({ "scheduled_at": format!("{year}-07-16T13:00:00-05:00") });
    assert_eq!(app.request("PATCH", &format!("/staff/inspections/{id}"), Some(&key), Some(moved)).await.status, 200);
    app.run_jobs().await;
    assert_eq!(app.request("POST", &format!("/staff/inspections/{id}/cancel"), Some(&key), None).await.status, 200);
    app.run_jobs().await;
    let all = invites(&app, &client).await;
    assert_eq!(all.len(), 3, "confirmation, change, cancellation");
    let by_seq = |n: &str| all.iter().find(|(_, e, _)| e["SEQUENCE"] == n).unwrap_or_else(|| panic!("SEQUENCE {n}"));
    let (m1, e1, _) = by_seq("1");
    assert_eq!(
        (m1.as_str(), e1["UID"].as_str(), e1["DTSTART"].as_str()),
        ("REQUEST", uid.as_str(), format!("{year}0716T130000").as_str())
    );
    let (m2, e2, _) = by_seq("2");
    assert_eq!((m2.as_str(), e2["UID"].as_str(), e2["STATUS"].as_str()), ("CANCEL", uid.as_str(), "CANCELLED"));
}

/// Optional emails (reminders, copies to agents) carry RFC 8058's one-click unsubscribe: opening
/// the link changes nothing, a POST stops that company's optional emails to the address (a
/// suppression staff see and can lift), and what the person asks for or pays for still comes.
#[tokio::test]
async fn one_click_unsubscribe_stops_optional_emails_only() {
    let b = booking(json!({})).await;
    let confirmation = b.app.emails_to(&b.client).await.into_iter().next().expect("the confirmation");
    assert!(confirmation.header("list-unsubscribe").is_none(), "the client's confirmation is not optional");
    b.at_hours_before(47).await;
    let reminder = b
        .app
        .emails_to(&b.client)
        .await
        .into_iter()
        .find(|m| m.subject.starts_with("Please sign"))
        .expect("a reminder");
    assert_eq!(reminder.header("list-unsubscribe-post"), Some("List-Unsubscribe=One-Click"));
    let url = reminder.header("list-unsubscribe").unwrap().trim_matches(['<', '>']).to_owned();
    assert!(url.starts_with(&format!("{}/u/uns_", b.app.base)), "{url}");
    assert!(!url.contains("/p/"), "no portal token in it");
    assert!(reminder.body.contains(&url), "the footer links it too");

    // Opening it (a mail scanner does) changes nothing.
    let page = b.app.send(b.app.http.get(&url)).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<button type=\"submit\">Unsubscribe</button>"), "{}", page.text);
    let list = || b.app.request("GET", "/staff/suppressions", Some(&b.key), None);
    let empty = list().await;
    assert_eq!(empty.json["items"], json!([]), "{}", empty.text);
    // The mail client's one-click POST.
    let done = b.app.send(b.app.http.post(&url).form(&[("List-Unsubscribe", "One-Click")])).await;
    assert_eq!(done.status, 200);
    assert!(done.text.contains("You are unsubscribed"));
    let items = list().await.json["items"].clone();
    assert_eq!(items[0]["address"], b.client.to_lowercase());
    assert_eq!(items[0]["kind"], "unsubscribe");

    // Reminders stop; a receipt (the person paid) still comes.
    let payments = format!("/staff/inspections/{}/payments", b.inspection);
    let paid =
        b.app.request("POST", &payments, Some(&b.key), Some(json!({ "amount_cents": 10000, "method": "check" })));
    assert_eq!(paid.await.status, 201);
    b.at_hours_before(23).await;
    assert_eq!(b.count(&b.client, "Payment due").await + b.count(&b.client, "Tomorrow").await, 0);
    assert_eq!(b.count(&b.client, "Receipt:").await, 1, "{:?}", b.subjects(&b.client).await);
    assert_eq!(b.count(&b.agent, "Tomorrow").await, 1, "the agent did not unsubscribe");

    // Staff lift it: optional emails come again.
    let lift = format!("/staff/suppressions/{}", b.client.replace('@', "%40"));
    assert_eq!(b.app.request("DELETE", &lift, Some(&b.key), None).await.status, 204);
    assert_eq!(b.app.request("DELETE", &lift, Some(&b.key), None).await.status, 404);
    let moved = portal_shared::foundation::clock::rfc3339(b.scheduled_at + Duration::days(3));
    let path = format!("/staff/inspections/{}", b.inspection);
    let r = b.app.request("PATCH", &path, Some(&b.key), Some(json!({ "scheduled_at": moved }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    b.app.clock.set(b.scheduled_at + Duration::days(3) - Duration::hours(47));
    b.app.run_jobs().await;
    assert_eq!(b.count(&b.client, "Please sign").await, 2, "{:?}", b.subjects(&b.client).await);
}

/// Staff alerts: each address hears of the events it chose, one email per event, or one digest
/// when a job run finds several; nothing for events it did not choose.
#[tokio::test]
async fn staff_hear_of_the_events_they_chose_one_email_or_a_digest() {
    let b = booking(json!({})).await;
    let (office, owner) = (unique("office"), unique("owner"));
    let alerts = json!({ "staff_alerts": [
        { "email": office, "events": ["agreement_signed", "payment_received", "addon_requested"] },
        { "email": owner, "events": ["payment_received"] }
    ] });
    assert_eq!(b.app.request("PATCH", "/staff/settings", Some(&b.key), Some(alerts)).await.status, 200);
    let bad = json!({ "staff_alerts": [{ "email": office, "events": ["coffee_ready"] }] });
    b.app.request("PATCH", "/staff/settings", Some(&b.key), Some(bad)).await.assert_problem(400);

    // One event: one email, to the address that chose it.
    let sign = json!({ "typed_name": "Jane Client" });
    assert_eq!(b.app.request("POST", &format!("{}/agreement", b.client_link), None, Some(sign)).await.status, 200);
    b.app.run_jobs().await;
    let subjects = b.subjects(&office).await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].starts_with("Agreement signed: 12 Elm Street"), "{subjects:?}");
    assert!(b.subjects(&owner).await.is_empty(), "the owner did not choose it");

    // Two in one run: a digest for the office, the one it chose for the owner.
    let payments = format!("/staff/inspections/{}/payments", b.inspection);
    for amount in [10000, 5000] {
        let r =
            b.app.request("POST", &payments, Some(&b.key), Some(json!({ "amount_cents": amount, "method": "check" })));
        assert_eq!(r.await.status, 201);
    }
    // The job finds alerts through an index, which (as on AWS) shows a write a moment later: let
    // the run below find both, as a run a minute later would.
    for _ in 0..100 {
        if b.app.store.due_alerts(b.app.clock.now(), 10).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    b.app.run_jobs().await;
    let office_mail = b.app.emails_to(&office).await;
    assert_eq!(office_mail.len(), 2, "{:?}", office_mail.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert_eq!(office_mail[1].subject, "2 updates from your client portal");
    assert!(
        office_mail[1].body.contains("$100.00") && office_mail[1].body.contains("$50.00"),
        "{}",
        office_mail[1].body
    );
    assert_eq!(b.subjects(&owner).await, vec!["2 updates from your client portal".to_owned()]);
    b.app.run_jobs().await;
    assert_eq!(b.app.emails_to(&office).await.len(), 2, "each alert once");
}
