//! The customer portal and deficiency feeds through the local gateway.

use portal_tests::{days_from_now, spawn_app, Reply, TestApp};
use serde_json::{json, Value};
use std::collections::HashSet;

struct Customer {
    app: TestApp,
    key: String,
    company: String,
    buildings: Vec<String>,
    report: String,
    contact: String,
    link: String,
    email: String,
}

async fn staff(app: &TestApp, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let r = app.request(method, path, Some(key), body).await;
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.text);
    r
}

/// A company (customer portal on, deficiency flag on), `n` buildings, an inspection on the first
/// with a published report, and a contact on all of them allowed to view inspection reports.
async fn customer(n: usize) -> Customer {
    let app = spawn_app().await;
    let (company, key) = app.create_company("Firewatch Life Safety", &[]).await;
    staff(&app, &key, "PATCH", "/staff/settings", Some(json!({ "customer_portal_enabled": true }))).await;
    app.admin("PATCH", &format!("/admin/companies/{company}"), Some(json!({ "deficiency_visibility": true }))).await;
    let mut buildings = Vec::new();
    for i in 0..n {
        let b = staff(
            &app,
            &key,
            "POST",
            "/staff/buildings",
            Some(json!({ "name": format!("Tower {i}"), "address": format!("{i} Main St") })),
        )
        .await;
        buildings.push(b.json["id"].as_str().unwrap().to_owned());
    }
    let report = published_report(&app, &key, &buildings[0]).await;
    let email = format!("facilities-{}@tenant.test", ulid::Ulid::new().to_string().to_lowercase());
    let c = staff(
        &app,
        &key,
        "POST",
        "/staff/contacts",
        Some(json!({ "name": "Fran Facilities", "email": email,
        "permissions": { "inspection_reports": true }, "building_ids": buildings })),
    )
    .await;
    assert_eq!(c.json["status"], "not_enrolled");
    let contact = c.json["contact_id"].as_str().unwrap().to_owned();
    let inv = staff(&app, &key, "POST", &format!("/staff/contacts/{contact}/invite"), None).await;
    assert_eq!((inv.status, inv.json["contact"]["status"].as_str()), (202, Some("invited")), "{}", inv.text);
    assert_eq!(inv.json["email"]["status"], "queued");
    assert!(inv.json["url"].is_null(), "the link is made when the email is sent, and only the email carries it");
    // A second click minutes later is the same invitation: one email.
    let again = staff(&app, &key, "POST", &format!("/staff/contacts/{contact}/invite"), None).await;
    assert_eq!((again.status, again.json["email"]["status"].as_str()), (202, Some("already_queued")));
    app.run_jobs().await;
    let mails = app.emails_to(&email).await;
    assert_eq!(mails.len(), 1);
    let link = mails[0].links.iter().find(|l| l.contains("/c/")).unwrap().strip_prefix(&app.base).unwrap().to_owned();
    Customer { app, key, company, buildings, report, contact, link, email }
}

/// A commercial inspection on `building` with a published inspection report.
async fn published_report(app: &TestApp, key: &str, building: &str) -> String {
    let i = staff(
        app,
        key,
        "POST",
        &format!("/staff/buildings/{building}/inspections"),
        Some(json!({
        "address": "Tower", "scheduled_at": days_from_now(-1), "services": [], "people": [] })),
    )
    .await;
    let inspection = i.json["inspection_id"].as_str().unwrap();
    let doc =
        json!({ "kind": "inspection_report", "title": "Fire alarm", "template_name": "Annual Fire Alarm Inspection" });
    app.published_document(key, inspection, doc).await
}

impl Customer {
    async fn get(&self, path: &str) -> Reply {
        self.app.send(self.app.http.get(self.app.url(path)).header("accept", "application/json")).await
    }

    async fn deficiency(&self, building: &str, report: &str, text: &str) -> String {
        let r = staff(
            &self.app,
            &self.key,
            "POST",
            &format!("/staff/buildings/{building}/deficiencies"),
            Some(json!({
            "report_id": report, "description": text, "severity": "high", "location": "Stairwell B" })),
        )
        .await;
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn home(&self) -> Vec<String> {
        let r = self.get(&format!("{}/deficiencies", self.link)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["items"].as_array().unwrap().iter().map(|i| i["description"].as_str().unwrap().to_owned()).collect()
    }
}

#[tokio::test]
async fn a_contact_sees_their_buildings_permitted_documents_and_enrolls_on_first_visit() {
    let c = customer(2).await;
    let r = c.get(&c.link).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let buildings = r.json["buildings"].as_array().unwrap();
    assert_eq!(buildings.len(), 2);
    let docs = &buildings.iter().find(|b| b["id"] == c.buildings[0]).unwrap()["documents"];
    assert_eq!(docs[0]["title"], "Annual Fire Alarm Inspection Report");
    let contact = staff(&c.app, &c.key, "GET", &format!("/staff/contacts/{}", c.contact), None).await;
    assert_eq!(contact.json["status"], "enrolled");
    // Opening goes through the gate, audited.
    let open = c.get(&format!("{}/documents/{}", c.link, c.report)).await;
    assert_eq!(open.status, 303, "{}", open.text);
    assert!(open.header("location").unwrap().contains("X-Amz-Expires=300"));
    let html = c.app.send(c.app.http.get(c.app.url(&c.link))).await;
    assert!(html.text.contains("Tower 0") && html.text.contains(&format!("{}/documents/{}", c.link, c.report)));
    assert!(html.header("content-security-policy").is_some());
    // Without the permission for inspection reports the document disappears and cannot be opened.
    staff(
        &c.app,
        &c.key,
        "PATCH",
        &format!("/staff/contacts/{}", c.contact),
        Some(json!({ "permissions": { "invoices": true } })),
    )
    .await;
    let r = c.get(&c.link).await;
    assert_eq!(r.json["buildings"][0]["documents"], json!([]));
    c.get(&format!("{}/documents/{}", c.link, c.report)).await.assert_problem(404);
    let audit = staff(&c.app, &c.key, "GET", &format!("/staff/contacts/{}/audit", c.contact), None).await;
    let outcomes: Vec<&str> =
        audit.json["items"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["not_found", "allowed"]);
}

#[tokio::test]
async fn deficiencies_show_only_when_all_four_conditions_hold() {
    let c = customer(2).await;
    c.deficiency(&c.buildings[0], &c.report, "Pull station blocked").await;
    assert_eq!(c.home().await, ["Pull station blocked"], "all four hold");

    // 1. The platform admin's flag off → nothing.
    c.app
        .admin("PATCH", &format!("/admin/companies/{}", c.company), Some(json!({ "deficiency_visibility": false })))
        .await;
    assert!(c.home().await.is_empty(), "flag off");
    c.app
        .admin("PATCH", &format!("/admin/companies/{}", c.company), Some(json!({ "deficiency_visibility": true })))
        .await;

    // 2. The report unpublished → hidden again; republished → back.
    staff(&c.app, &c.key, "POST", &format!("/staff/documents/{}/unpublish", c.report), None).await;
    assert!(c.home().await.is_empty(), "report unpublished");
    assert_eq!(c.get(&format!("{}/buildings/{}/deficiencies", c.link, c.buildings[0])).await.json["items"], json!([]));
    staff(&c.app, &c.key, "POST", &format!("/staff/documents/{}/publish", c.report), None).await;
    assert_eq!(c.home().await.len(), 1);
    // A deficiency recorded on a report not yet published stays hidden.
    let draft = {
        let i = staff(
            &c.app,
            &c.key,
            "POST",
            &format!("/staff/buildings/{}/inspections", c.buildings[1]),
            Some(json!({
            "address": "Tower 1", "scheduled_at": days_from_now(1) })),
        )
        .await;
        let d = staff(
            &c.app,
            &c.key,
            "POST",
            &format!("/staff/inspections/{}/documents", i.json["inspection_id"].as_str().unwrap()),
            Some(json!({ "kind": "inspection_report", "title": "Sprinklers" })),
        )
        .await;
        d.json["document_id"].as_str().unwrap().to_owned()
    };
    c.deficiency(&c.buildings[1], &draft, "Sprinkler head painted").await;
    assert_eq!(c.home().await, ["Pull station blocked"]);

    // 3. The contact not associated with the building → nothing of it, and its feed is 404.
    staff(
        &c.app,
        &c.key,
        "PATCH",
        &format!("/staff/contacts/{}", c.contact),
        Some(json!({ "building_ids": [c.buildings[1]] })),
    )
    .await;
    assert!(c.home().await.is_empty(), "not associated");
    c.get(&format!("{}/buildings/{}/deficiencies", c.link, c.buildings[0])).await.assert_problem(404);
    staff(
        &c.app,
        &c.key,
        "PATCH",
        &format!("/staff/contacts/{}", c.contact),
        Some(json!({ "building_ids": c.buildings })),
    )
    .await;

    // 4. The contact may not view inspection reports → nothing.
    staff(
        &c.app,
        &c.key,
        "PATCH",
        &format!("/staff/contacts/{}", c.contact),
        Some(json!({ "permissions": { "service_reports": true } })),
    )
    .await;
    assert!(c.home().await.is_empty(), "permission missing");
    let r = c.get(&format!("{}/deficiencies", c.link)).await;
    assert_eq!(r.round_trips(), 1, "no building is queried when a company- or contact-level condition fails");
}

#[tokio::test]
async fn the_home_feed_is_unresolved_newest_first_and_the_building_feed_has_the_full_history() {
    let c = customer(2).await;
    let report1 = published_report(&c.app, &c.key, &c.buildings[1]).await;
    let a = c.deficiency(&c.buildings[0], &c.report, "first").await;
    c.deficiency(&c.buildings[1], &report1, "second").await;
    c.deficiency(&c.buildings[0], &c.report, "third").await;
    assert_eq!(c.home().await, ["third", "second", "first"]);
    staff(&c.app, &c.key, "POST", &format!("/staff/buildings/{}/deficiencies/{a}/resolve", c.buildings[0]), None).await;
    assert_eq!(c.home().await, ["third", "second"], "resolved ones leave the home feed");
    let b = c.get(&format!("{}/buildings/{}/deficiencies", c.link, c.buildings[0])).await;
    let items = b.json["items"].as_array().unwrap();
    let seen: Vec<(&str, &str)> =
        items.iter().map(|i| (i["description"].as_str().unwrap(), i["status"].as_str().unwrap())).collect();
    assert_eq!(seen, [("third", "unresolved"), ("first", "resolved")]);
    assert!(items[1]["resolved_at"].is_string());
    assert_eq!(b.round_trips(), 2, "the token read and one query");
    staff(&c.app, &c.key, "POST", &format!("/staff/buildings/{}/deficiencies/{a}/reopen", c.buildings[0]), None).await;
    assert_eq!(c.home().await, ["third", "second", "first"]);
}

#[tokio::test]
async fn pages_over_hundreds_of_deficiencies_have_no_duplicates_or_gaps() {
    let c = customer(3).await;
    let mut reports = vec![c.report.clone()];
    for b in &c.buildings[1..] {
        reports.push(published_report(&c.app, &c.key, b).await);
    }
    let mut expected = Vec::new();
    let sizes = [130, 60, 10];
    let mut first_building = Vec::new();
    for (k, (b, r)) in c.buildings.iter().zip(&reports).enumerate() {
        for n in 0..sizes[k] {
            let id = c.deficiency(b, r, &format!("b{k}-{n}")).await;
            if k == 0 {
                first_building.push(id.clone());
            }
            expected.push(id);
        }
    }
    expected.reverse(); // newest first (ids are time-ordered)
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cur) => format!("{}/deficiencies?limit=25&cursor={cur}", c.link),
            None => format!("{}/deficiencies?limit=25", c.link),
        };
        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.round_trips() <= 1 + 3, "token read + at most one query per building: {}", r.round_trips());
        pages += 1;
        seen.extend(r.json["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match r.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 50);
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 200, "no duplicates");
    assert_eq!(seen, expected, "no gaps, newest first");

    // The building feed pages too: every deficiency of the building once.
    let mut building_seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cur) => format!("{}/buildings/{}/deficiencies?limit=40&cursor={cur}", c.link, c.buildings[0]),
            None => format!("{}/buildings/{}/deficiencies?limit=40", c.link, c.buildings[0]),
        };
        let r = c.get(&path).await;
        building_seen.extend(r.json["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match r.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(building_seen.len(), 130, "no repeats");
    let mut sorted_seen = building_seen.clone();
    sorted_seen.sort();
    first_building.sort();
    assert_eq!(sorted_seen, first_building, "no gaps");
}

#[tokio::test]
async fn one_company_s_contact_never_sees_another_company_s_buildings() {
    let a = customer(1).await;
    // A second company in the same table, with its own building and deficiency.
    let (_, key_b) = a.app.create_company("Other Fire Co", &[]).await;
    staff(&a.app, &key_b, "PATCH", "/staff/settings", Some(json!({ "customer_portal_enabled": true }))).await;
    let b = staff(&a.app, &key_b, "POST", "/staff/buildings", Some(json!({ "name": "Their tower" }))).await;
    let their_building = b.json["id"].as_str().unwrap().to_owned();
    let their_report = published_report(&a.app, &key_b, &their_building).await;
    // Company A cannot attach B's building to its contact, nor B's report to its deficiency.
    let r = a
        .app
        .request(
            "PATCH",
            &format!("/staff/contacts/{}", a.contact),
            Some(&a.key),
            Some(json!({ "building_ids": [their_building] })),
        )
        .await;
    r.assert_problem(400);
    let r = a
        .app
        .request(
            "POST",
            &format!("/staff/buildings/{}/deficiencies", a.buildings[0]),
            Some(&a.key),
            Some(json!({ "report_id": their_report, "description": "x", "severity": "low" })),
        )
        .await;
    r.assert_problem(400);
    a.get(&format!("{}/buildings/{their_building}/deficiencies", a.link)).await.assert_problem(404);
    a.get(&format!("{}/documents/{their_report}", a.link)).await.assert_problem(404);
    let view = a.get(&a.link).await;
    assert!(!view.text.contains(&their_building) && !view.text.contains("Their tower"));
    // A forged cursor naming B's building is refused.
    use base64::Engine;
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({ their_building.clone(): null }).to_string());
    a.get(&format!("{}/deficiencies?cursor={forged}", a.link)).await.assert_problem(400);
    // With the customer portal off, every customer route is 404.
    staff(&a.app, &a.key, "PATCH", "/staff/settings", Some(json!({ "customer_portal_enabled": false }))).await;
    for path in [a.link.clone(), format!("{}/deficiencies", a.link), format!("{}/documents/{}", a.link, a.report)] {
        a.get(&path).await.assert_problem(404);
    }
    a.get("/c/not-a-token").await.assert_problem(404);
}

#[tokio::test]
async fn staff_can_log_in_as_a_customer_read_only_and_audited() {
    let c = customer(1).await;
    c.deficiency(&c.buildings[0], &c.report, "Exit sign dark").await;
    let own = c.get(&c.link).await.json;
    let preview = c
        .app
        .send(
            c.app
                .http
                .get(c.app.url(&format!("/staff/contacts/{}/preview", c.contact)))
                .bearer_auth(&c.key)
                .header("accept", "application/json"),
        )
        .await;
    let mut own_view = own.clone();
    own_view.as_object_mut().unwrap().remove("deficiencies");
    let mut seen = preview.json.clone();
    seen.as_object_mut().unwrap().remove("deficiencies");
    assert_eq!(seen, own_view, "exactly what the contact sees");
    assert_eq!(preview.json["deficiencies"]["items"], own["deficiencies"]["items"]);
    let html = c
        .app
        .send(c.app.http.get(c.app.url(&format!("/staff/contacts/{}/preview", c.contact))).bearer_auth(&c.key))
        .await;
    assert!(
        html.text.contains("Staff preview")
            && html.text.contains("Exit sign dark")
            && !html.text.contains("/documents/")
    );
    let audit = staff(&c.app, &c.key, "GET", &format!("/staff/contacts/{}/audit", c.contact), None).await;
    assert_eq!(audit.json["items"][0]["action"], "customer_preview");
    assert_eq!(audit.json["items"][0]["actor"]["kind"], "staff");
    let _ = &c.email;
}

#[tokio::test]
async fn contact_links_are_capped_revocable_and_reissuable() {
    let c = customer(1).await;
    assert_eq!(c.get(&c.link).await.status, 200);
    // Many invitations (each a quarter of an hour after the last: not repeats) keep at most 20
    // links live.
    for _ in 0..25 {
        c.app.clock.advance(time::Duration::minutes(15));
        let r = staff(&c.app, &c.key, "POST", &format!("/staff/contacts/{}/invite", c.contact), None).await;
        assert_eq!(r.json["email"]["status"], "queued", "{}", r.text);
    }
    c.app.run_jobs().await;
    assert_eq!(c.app.emails_to(&c.email).await.len(), 26, "the first invitation and 25 more");
    let k = c.app.request("GET", &format!("/staff/contacts/{}", c.contact), Some(&c.key), None).await;
    let items = c.app.all_items().await;
    let live =
        items.iter().filter(|i| i.get("contact_id").is_some() && i["PK"].as_s().unwrap().starts_with("TOKEN#")).count();
    assert_eq!(live, portal_shared::domain::inspection::MAX_LINKS_PER_PERSON, "{}", k.text);
    assert_eq!(c.get(&c.link).await.status, 404, "the oldest link went beyond the cap");

    let path = format!("/staff/contacts/{}/token", c.contact);
    let r = c.app.request("POST", &path, Some(&c.key), None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let fresh = r.json["url"].as_str().unwrap().strip_prefix(&c.app.base).unwrap().to_owned();
    assert_eq!(c.get(&fresh).await.status, 200, "the re-issued link works");
    assert_eq!(c.app.request("DELETE", &path, Some(&c.key), None).await.status, 204);
    assert_eq!(c.get(&fresh).await.status, 404, "revoked at once");
    assert_eq!(c.app.request("DELETE", &path, Some(&c.key), None).await.status, 204, "idempotent");
    let _ = (&c.company, &c.buildings, &c.report, &c.email);
}

#[tokio::test]
async fn turning_the_customer_portal_on_later_shows_what_was_already_published() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Late Adopter Fire", &[]).await;
    let b = staff(&app, &key, "POST", "/staff/buildings", Some(json!({ "name": "Old Mill", "address": "1 Mill Rd" })))
        .await;
    let building = b.json["id"].as_str().unwrap().to_owned();
    let report = published_report(&app, &key, &building).await; // published while the portal is off
    staff(&app, &key, "PATCH", "/staff/settings", Some(json!({ "customer_portal_enabled": true }))).await;
    let mut links = Vec::new();
    for (name, reports) in [("Reader", true), ("No reports", false)] {
        let email = format!("{}-{}@tenant.test", name.replace(' ', "-").to_lowercase(), ulid::Ulid::new());
        let c = staff(
            &app,
            &key,
            "POST",
            "/staff/contacts",
            Some(json!({ "name": name, "email": email, "permissions": { "inspection_reports": reports }, "building_ids": [building] })),
        )
        .await;
        let id = c.json["contact_id"].as_str().unwrap();
        assert_eq!(staff(&app, &key, "POST", &format!("/staff/contacts/{id}/invite"), None).await.status, 202);
        app.run_jobs().await;
        let mails = app.emails_to(&email).await;
        let link = mails[0].links.iter().find(|l| l.contains("/c/")).expect("the invitation's link");
        links.push(link.strip_prefix(&app.base).unwrap().to_owned());
    }
    let view = |link: String| {
        let app = &app;
        async move { app.send(app.http.get(app.url(&link)).header("accept", "application/json")).await.json }
    };
    let reader = view(links[0].clone()).await;
    let docs: Vec<&str> = reader["buildings"][0]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(docs, [report.as_str()], "{reader}");
    let other = view(links[1].clone()).await;
    assert_eq!(other["buildings"][0]["documents"], json!([]), "permissions still apply");
    let open = app.send(app.http.get(app.url(&format!("{}/documents/{report}", links[0])))).await;
    assert_eq!(open.status, 303);
}
