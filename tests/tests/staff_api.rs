//! The staff API's first slice through the local gateway: companies, auth, settings rules,
//! inspections, services, isolation between companies, and the error contract.

use portal_tests::{days_from_now, inspection_body, spawn_app, ADMIN_KEY};
use serde_json::json;

#[tokio::test]
async fn a_new_company_gets_a_staff_key_once_and_only_its_hash_is_stored() {
    let app = spawn_app().await;
    let (company_id, key) = app.create_company("Acme Inspections", &[]).await;
    assert!(key.starts_with("isk_"));

    let settings = app.request("GET", "/staff/settings", Some(&key), None).await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    assert_eq!(settings.json["company_id"], company_id.as_str());
    assert_eq!(settings.json["name"], "Acme Inspections");
    assert!(!settings.text.contains(&key), "the key is never shown again");

    let items = app.all_items().await;
    assert!(!items.is_empty());
    let dump = format!("{items:?}");
    assert!(!dump.contains(&key), "the raw staff key must not be stored");
}

#[tokio::test]
async fn staff_routes_need_a_valid_key() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let missing = app.request("GET", "/staff/settings", None, None).await;
    missing.assert_problem(401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(missing.round_trips(), 0);

    // Malformed keys are refused without a database read.
    let malformed = app.request("GET", "/staff/settings", Some("not-a-key"), None).await;
    malformed.assert_problem(401);
    assert_eq!(malformed.round_trips(), 0);

    // A well-formed key that was never issued.
    let mut forged = key.clone();
    forged.replace_range(10..11, if &key[10..11] == "A" { "B" } else { "A" });
    app.request("GET", "/staff/settings", Some(&forged), None).await.assert_problem(401);

    // The admin key is not a staff key, and a staff key is not the admin key.
    app.request("GET", "/staff/settings", Some(ADMIN_KEY), None).await.assert_problem(401);
    app.request("POST", "/admin/companies", Some(&key), Some(json!({"name": "Evil"}))).await.assert_problem(401);
    app.request("POST", "/admin/companies", None, Some(json!({"name": "Evil"}))).await.assert_problem(401);
}

#[tokio::test]
async fn one_company_never_reads_another_companys_data() {
    let app = spawn_app().await;
    let (_, key_a) = app.create_company("Company A", &[]).await;
    let (_, key_b) = app.create_company("Company B", &[]).await;
    let created = app.request("POST", "/staff/inspections", Some(&key_a), Some(inspection_body())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["inspection_id"].as_str().unwrap();

    app.request("GET", &format!("/staff/inspections/{id}"), Some(&key_b), None).await.assert_problem(404);
    app.request(
        "POST",
        &format!("/staff/inspections/{id}/services"),
        Some(&key_b),
        Some(json!({"name": "x", "price_cents": 1})),
    )
    .await
    .assert_problem(404);
    app.request(
        "PATCH",
        &format!("/staff/inspections/{id}/requirements"),
        Some(&key_b),
        Some(json!({"require_agreement": false})),
    )
    .await
    .assert_problem(404);
    let list_b = app.request("GET", "/staff/inspections", Some(&key_b), None).await;
    assert_eq!(list_b.json["items"], json!([]));

    // Company A still sees its own, unchanged.
    let own = app.request("GET", &format!("/staff/inspections/{id}"), Some(&key_a), None).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json["services"].as_array().unwrap().len(), 1);
    assert_eq!(own.json["requirements"]["require_agreement"], true);
    let list_a = app.request("GET", "/staff/inspections", Some(&key_a), None).await;
    assert_eq!(list_a.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn creating_an_inspection_issues_links_to_everyone_but_staff() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &["ivan@acme-inspections.test"]).await;
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(inspection_body())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["inspection_id"].as_str().unwrap();
    assert_eq!(r.header("location"), Some(format!("/staff/inspections/{id}").as_str()));
    assert_eq!(r.json["share_url"], app.url(&format!("/share/{id}")));

    let links = r.json["links"].as_array().unwrap();
    let roles: Vec<&str> = links.iter().map(|l| l["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["client", "buyer_agent", "listing_agent"], "the inspector is a staff user: no link");
    let urls: Vec<&str> = links.iter().map(|l| l["url"].as_str().unwrap()).collect();
    for u in &urls {
        assert!(u.starts_with(&app.url("/p/")), "{u}");
    }
    assert_ne!(urls[0], urls[1], "clients and agents never share a token");

    let view = app.request("GET", &format!("/staff/inspections/{id}"), Some(&key), None).await;
    assert_eq!(view.json["invoice_total_cents"], 45000);
    assert_eq!(view.json["balance_cents"], 45000);
    assert_eq!(view.json["agreement"], json!({"version": 1, "signed": false}));
    let people = view.json["people"].as_array().unwrap();
    assert_eq!(people.len(), 4);
    assert_eq!(people.iter().filter(|p| p["live_links"] == 1).count(), 3);
    assert!(!view.text.contains("hash"), "token hashes are not shown to staff either");

    // Tokens are stored only hashed.
    let dump = format!("{:?}", app.all_items().await);
    for u in urls {
        let token = u.rsplit('/').next().unwrap();
        assert!(!dump.contains(token));
    }
}

#[tokio::test]
async fn adding_a_service_updates_the_invoice() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let id = app.request("POST", "/staff/inspections", Some(&key), Some(inspection_body())).await.json["inspection_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            "POST",
            &format!("/staff/inspections/{id}/services"),
            Some(&key),
            Some(json!({"name": "Radon test", "description": "48h", "price_cents": 15000, "kind": "addon"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["service"]["name"], "Radon test");
    assert_eq!(r.json["service"]["kind"], "addon");
    assert_eq!(r.json["inspection"]["invoice_total_cents"], 60000);
    let view = app.request("GET", &format!("/staff/inspections/{id}"), Some(&key), None).await;
    assert_eq!(view.json["services"].as_array().unwrap().len(), 2);
    assert_eq!(view.json["balance_cents"], 60000);

    app.request(
        "POST",
        &format!("/staff/inspections/{id}/services"),
        Some(&key),
        Some(json!({"name": "", "price_cents": 1})),
    )
    .await
    .assert_problem(400);
    app.request(
        "POST",
        "/staff/inspections/01ARZ3NDEKTSV4RRFFQ69G5FAV/services",
        Some(&key),
        Some(json!({"name": "x", "price_cents": 1})),
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn collect_after_publish_is_refused_while_payments_are_third_party() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let r = app.request("PATCH", "/staff/settings", Some(&key), Some(json!({"payments": "third_party"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refused = app
        .request(
            "PATCH",
            "/staff/settings",
            Some(&key),
            Some(json!({"collect_payment_after_publish": true, "auto_generate_inspection_reports": true})),
        )
        .await;
    refused.assert_problem(409);
    assert!(refused.json["detail"].as_str().unwrap().contains("third_party"));
    let now = app.request("GET", "/staff/settings", Some(&key), None).await;
    assert_eq!(now.json["settings"]["collect_payment_after_publish"], false, "nothing written");
    assert_eq!(
        now.json["settings"]["auto_generate_inspection_reports"], false,
        "nothing written, not even the valid part"
    );
}

#[tokio::test]
async fn collect_after_publish_forces_new_inspections_and_is_never_retroactive() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let before = app.request("POST", "/staff/inspections", Some(&key), Some(json!({
        "address": "1 Old Rd", "scheduled_at": days_from_now(7), "allow_deferred_payment": true, "require_payment": false
    }))).await;
    assert_eq!(before.status, 201, "{}", before.text);
    let old_id = before.json["inspection_id"].as_str().unwrap().to_owned();

    let on = app
        .request(
            "PATCH",
            "/staff/settings",
            Some(&key),
            Some(json!({"payments": "native", "collect_payment_after_publish": true})),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json["settings"]["release_defaults"]["require_payment"], true);
    assert_eq!(on.json["settings"]["release_defaults"]["allow_deferred_payment"], false);

    // Not retroactive: the earlier inspection keeps its own requirements.
    let old = app.request("GET", &format!("/staff/inspections/{old_id}"), Some(&key), None).await;
    assert_eq!(
        old.json["requirements"],
        json!({"require_payment": false, "require_agreement": true, "allow_deferred_payment": true, "collect_payment_after_publish": false})
    );

    // New inspections are forced; asking otherwise is refused with nothing written.
    for bad in [json!({"require_payment": false}), json!({"allow_deferred_payment": true})] {
        let mut body = inspection_body();
        body.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        app.request("POST", "/staff/inspections", Some(&key), Some(body)).await.assert_problem(409);
    }
    assert_eq!(
        app.request("GET", "/staff/inspections", Some(&key), None).await.json["items"].as_array().unwrap().len(),
        1
    );
    let new = app.request("POST", "/staff/inspections", Some(&key), Some(inspection_body())).await;
    let new_id = new.json["inspection_id"].as_str().unwrap();
    assert_eq!(
        new.json["inspection"]["requirements"],
        json!({"require_payment": true, "require_agreement": true, "allow_deferred_payment": false, "collect_payment_after_publish": true})
    );

    // And changing either later is refused too.
    app.request(
        "PATCH",
        &format!("/staff/inspections/{new_id}/requirements"),
        Some(&key),
        Some(json!({"allow_deferred_payment": true})),
    )
    .await
    .assert_problem(409);
    let ok = app
        .request(
            "PATCH",
            &format!("/staff/inspections/{new_id}/requirements"),
            Some(&key),
            Some(json!({"require_agreement": false})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["requirements"]["require_agreement"], false);

    // Settings can't unlock the defaults while it is on.
    app.request(
        "PATCH",
        "/staff/settings",
        Some(&key),
        Some(json!({"release_defaults": {"allow_deferred_payment": true}})),
    )
    .await
    .assert_problem(409);
    // Nor can payments move to third_party under it.
    app.request("PATCH", "/staff/settings", Some(&key), Some(json!({"payments": "third_party"})))
        .await
        .assert_problem(409);
}

#[tokio::test]
async fn deficiency_visibility_belongs_to_the_platform_admin() {
    let app = spawn_app().await;
    let (company_id, key) = app.create_company("Acme", &[]).await;
    app.request("PATCH", "/staff/settings", Some(&key), Some(json!({"deficiency_visibility": true})))
        .await
        .assert_problem(403);
    assert_eq!(app.request("GET", "/staff/settings", Some(&key), None).await.json["deficiency_visibility"], false);

    let r = app
        .admin("PATCH", &format!("/admin/companies/{company_id}"), Some(json!({"deficiency_visibility": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["deficiency_visibility"], true);
    assert_eq!(app.request("GET", "/staff/settings", Some(&key), None).await.json["deficiency_visibility"], true);
    app.admin("PATCH", "/admin/companies/01ARZ3NDEKTSV4RRFFQ69G5FAV", Some(json!({"deficiency_visibility": true})))
        .await
        .assert_problem(404);
    app.admin("PATCH", &format!("/admin/companies/{company_id}"), Some(json!({"name": "Renamed"})))
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn malformed_or_invalid_bodies_are_400_and_write_nothing() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let before = app.all_items().await.len();
    let malformed = app
        .send(
            app.http
                .post(app.url("/staff/inspections"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body("{\"address\": "),
        )
        .await;
    malformed.assert_problem(400);
    for body in [
        json!({"address": "1 A St"}),
        json!({"address": "1 A St", "scheduled_at": "soon"}),
        json!({"address": "", "scheduled_at": days_from_now(7)}),
        json!({"address": "1 A St", "scheduled_at": days_from_now(7), "services": [{"name": "x", "price_cents": -1}]}),
        json!({"address": "1 A St", "scheduled_at": days_from_now(7), "people": [{"role": "client", "name": "J", "email": "not-an-email"}]}),
        json!({"address": "1 A St", "scheduled_at": days_from_now(7), "people": [{"role": "owner", "name": "J"}]}),
        json!({"address": "1 A St", "scheduled_at": days_from_now(7), "surprise": true}),
    ] {
        app.request("POST", "/staff/inspections", Some(&key), Some(body.clone())).await.assert_problem(400);
    }
    app.request("PATCH", "/staff/settings", Some(&key), Some(json!({"payments": "cash"}))).await.assert_problem(400);
    app.request(
        "PATCH",
        "/staff/settings",
        Some(&key),
        Some(json!({"addon_catalog": [{"name": "Radon", "price_cents": -100}]})),
    )
    .await
    .assert_problem(400);
    app.admin("POST", "/admin/companies", Some(json!({"name": ""}))).await.assert_problem(400);
    let form = app
        .send(
            app.http
                .post(app.url("/staff/inspections"))
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body("hello"),
        )
        .await;
    form.assert_problem(415);
    assert_eq!(app.all_items().await.len(), before, "nothing was written");
}

#[tokio::test]
async fn routes_methods_and_sizes_follow_the_http_contract() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    // Unknown routes: 404 problem+json wherever they land.
    app.request("GET", "/nowhere", None, None).await.assert_problem(404);
    app.request("GET", "/staff/nowhere", Some(&key), None).await.assert_problem(404);
    app.request("GET", "/admin/nowhere", Some(ADMIN_KEY), None).await.assert_problem(404);
    // Wrong method: 405 with Allow.
    let wrong = app.request("DELETE", "/staff/settings", Some(&key), None).await;
    wrong.assert_problem(405);
    assert_eq!(wrong.header("allow"), Some("GET, PATCH"));
    app.request("PUT", "/admin/companies", Some(ADMIN_KEY), Some(json!({}))).await.assert_problem(405);
    app.request("POST", "/webhooks/payments", None, Some(json!({}))).await.assert_problem(400);
    app.request("GET", "/webhooks/payments", None, None).await.assert_problem(405);
    // Oversized body: 413 before anything is read or written.
    let big = json!({"address": "x".repeat(70 * 1024), "scheduled_at": days_from_now(7)});
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(big)).await;
    r.assert_problem(413);
    assert_eq!(r.round_trips(), 0);
}

#[tokio::test]
async fn inspections_are_listed_in_pages_by_scheduled_time() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    for day in [5, 1, 3, 2, 4] {
        let r = app
            .request(
                "POST",
                "/staff/inspections",
                Some(&key),
                Some(json!({"address": format!("{day} Main St"), "scheduled_at": days_from_now(day)})),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/staff/inspections?limit=2&cursor={c}"),
            None => "/staff/inspections?limit=2".to_owned(),
        };
        let page = app.request("GET", &path, Some(&key), None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.round_trips(), 2, "key lookup + one index query per page");
        seen.extend(page.json["items"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Exactly these, in order: a repeat or a gap between pages fails.
    assert_eq!(seen, ["1 Main St", "2 Main St", "3 Main St", "4 Main St", "5 Main St"]);
    app.request("GET", "/staff/inspections?cursor=garbage", Some(&key), None).await.assert_problem(400);
    app.request("GET", "/staff/inspections?limit=0", Some(&key), None).await.assert_problem(400);
    // Another company's cursor does not open this company's list.
    let (_, other) = app.create_company("Other", &[]).await;
    let first = app.request("GET", "/staff/inspections?limit=1", Some(&key), None).await;
    let c = first.json["next_cursor"].as_str().unwrap();
    app.request("GET", &format!("/staff/inspections?cursor={c}"), Some(&other), None).await.assert_problem(400);
}

#[tokio::test]
async fn staff_users_are_recorded_so_they_get_no_portal_link() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let r = app.request("POST", "/staff/users", Some(&key), Some(json!({"email": "Ivan@Acme-Inspections.test"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let again =
        app.request("POST", "/staff/users", Some(&key), Some(json!({"email": "ivan@acme-inspections.test"}))).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["staff_emails"], json!(["ivan@acme-inspections.test"]));
    let created = app.request("POST", "/staff/inspections", Some(&key), Some(inspection_body())).await;
    let roles: Vec<&str> =
        created.json["links"].as_array().unwrap().iter().map(|l| l["role"].as_str().unwrap()).collect();
    assert!(!roles.contains(&"inspector"));
}

#[tokio::test]
async fn each_person_gets_their_own_staff_key_which_can_be_revoked_at_once() {
    let app = portal_tests::spawn_app().await;
    let (_, first) = app.create_company("Keys Inc", &[]).await;
    let r = app.request("POST", "/staff/keys", Some(&first), Some(json!({ "name": "Dana Dispatcher" }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (id, dana) = (r.json["id"].as_str().unwrap().to_owned(), r.json["key"].as_str().unwrap().to_owned());
    app.request("POST", "/staff/keys", Some(&first), Some(json!({ "name": "" }))).await.assert_problem(400);

    // Dana's key works, and what she does is audited under her name.
    let i = app.request("POST", "/staff/inspections", Some(&dana), Some(portal_tests::inspection_body())).await;
    assert_eq!(i.status, 201, "{}", i.text);
    let inspection = i.json["inspection_id"].as_str().unwrap().to_owned();
    let person = i.json["links"][0]["person_id"].as_str().unwrap().to_owned();
    let path = format!("/staff/inspections/{inspection}/people/{person}/token");
    assert_eq!(app.request("DELETE", &path, Some(&dana), None).await.status, 204);
    let audit = app.request("GET", &format!("/staff/inspections/{inspection}/audit"), Some(&first), None).await;
    assert_eq!(audit.json["items"][0]["actor"]["key_name"], "Dana Dispatcher", "{}", audit.text);

    let list = app.request("GET", "/staff/keys", Some(&first), None).await;
    let items = list.json["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(!list.text.contains(&dana), "a key is shown once, at creation");
    let mine = items.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert!(mine["last_used_at"].is_string(), "last used is recorded: {mine}");

    assert_eq!(app.request("DELETE", &format!("/staff/keys/{id}"), Some(&first), None).await.status, 204);
    app.request("GET", "/staff/inspections", Some(&dana), None).await.assert_problem(401);
    app.request("DELETE", &format!("/staff/keys/{id}"), Some(&first), None).await.assert_problem(404);
    // The last key cannot go: nobody could get back in.
    let first_id = items.iter().find(|k| k["id"] != id.as_str()).unwrap()["id"].as_str().unwrap().to_owned();
    let r = app.request("DELETE", &format!("/staff/keys/{first_id}"), Some(&first), None).await;
    r.assert_problem(409);
}

#[tokio::test]
async fn a_key_made_before_keys_were_listed_is_listed_at_its_first_use_and_can_be_revoked() {
    use portal_shared::adapters::store::{keys, Record, Write};
    let app = spawn_app().await;
    let (company, first) = app.create_company("Acme", &[]).await;
    // A key as the first rounds stored it: the key item only, no hash, no listing item.
    let old = portal_shared::foundation::credentials::StaffKey::generate();
    let old_id = portal_shared::foundation::ids::KeyId::new();
    // A deliberately historic creation date: such keys are from before listing; nothing here
    // depends on how long ago it was.
    let legacy = json!({ "key_id": old_id, "company_id": company, "created_at": "2026-01-05T10:00:00.000Z" });
    let item = Record::new(keys::staff_key(&old.hash()), "staff_key", &legacy).unwrap();
    app.store.write(Write::Put(item)).await.unwrap();
    let listed =
        |r: &portal_tests::Reply| r.json["items"].as_array().unwrap().iter().any(|k| k["id"] == old_id.to_string());
    assert!(!listed(&app.request("GET", "/staff/keys", Some(&first), None).await), "unlisted: nobody could revoke it");

    // Its first use lists it (and it works), so staff can see and revoke it.
    assert_eq!(app.request("GET", "/staff/settings", Some(old.reveal()), None).await.status, 200);
    assert_eq!(app.request("GET", "/staff/settings", Some(old.reveal()), None).await.status, 200, "idempotent");
    // (The list is an index: it shows the new listing a moment later, as on AWS.)
    let mut shown = false;
    for _ in 0..40 {
        shown = listed(&app.request("GET", "/staff/keys", Some(&first), None).await);
        if shown {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(shown, "listed after its first use");
    assert_eq!(app.request("DELETE", &format!("/staff/keys/{old_id}"), Some(&first), None).await.status, 204);
    app.request("GET", "/staff/settings", Some(old.reveal()), None).await.assert_problem(401);
}

#[tokio::test]
async fn every_key_is_listed_however_many_there_are() {
    let app = spawn_app().await;
    let (_, first) = app.create_company("Big Inspections", &[]).await;
    for n in 0..104 {
        let r =
            app.request("POST", "/staff/keys", Some(&first), Some(json!({ "name": format!("Inspector {n}") }))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // The list is an index: it shows the last keys a moment later, as on AWS.
    let mut count = 0;
    for _ in 0..40 {
        count = app.request("GET", "/staff/keys", Some(&first), None).await.json["items"].as_array().unwrap().len();
        if count == 105 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count, 105, "past the first page of 100");
}

/// Two revocations at once of a company's last two keys: one goes, the other is refused — the
/// "last key" rule holds in the revocation's own transaction, not in a listing read before it.
#[tokio::test]
async fn two_revocations_at_once_cannot_take_the_last_two_keys() {
    let app = spawn_app().await;
    let (_, first) = app.create_company("Racing Revokers", &[]).await;
    let second = app.request("POST", "/staff/keys", Some(&first), Some(json!({ "name": "Second" }))).await;
    let second_id = second.json["id"].as_str().unwrap().to_owned();
    let first_id = app.request("GET", "/staff/keys", Some(&first), None).await.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != second_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_key = second.json["key"].as_str().unwrap().to_owned();
    let (path_a, path_b) = (format!("/staff/keys/{first_id}"), format!("/staff/keys/{second_id}"));
    // Each key revokes itself: neither request's own key is taken away by the other.
    let (a, b) = tokio::join!(
        app.request("DELETE", &path_a, Some(&first), None),
        app.request("DELETE", &path_b, Some(&second_key), None),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [204, 409], "exactly one goes: {} / {}", a.text, b.text);
}

/// The platform admin lists, issues and revokes a company's keys (a company that lost or leaked
/// its own); the last key stays; another company's or an unknown id is a 404.
#[tokio::test]
async fn the_platform_admin_manages_a_company_s_keys() {
    let app = spawn_app().await;
    let (company, first) = app.create_company("Locked Out Inspections", &[]).await;
    let path = format!("/admin/companies/{company}/keys");
    let list = app.admin("GET", &path, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.json["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert!(!list.text.contains(&first), "never the key itself");
    let first_id = items[0]["id"].as_str().unwrap().to_owned();
    app.admin("DELETE", &format!("{path}/{first_id}"), None).await.assert_problem(409);
    let issued = app.admin("POST", &path, Some(json!({ "name": "Recovery" }))).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let new_key = issued.json["key"].as_str().unwrap().to_owned();
    assert_eq!(app.request("GET", "/staff/settings", Some(&new_key), None).await.status, 200);
    // The leaked first key goes; the company carries on with the new one.
    assert_eq!(app.admin("DELETE", &format!("{path}/{first_id}"), None).await.status, 204);
    app.request("GET", "/staff/settings", Some(&first), None).await.assert_problem(401);
    app.admin("GET", &format!("/admin/companies/{}/keys", ulid::Ulid::new()), None).await.assert_problem(404);
    // Staff keys do not open admin routes.
    let r = app.request("GET", &path, Some(&new_key), None).await;
    assert!(r.status == 401 || r.status == 403, "{}", r.status);
}

/// A company from before keys were counted: its first key change counts what it has.
#[tokio::test]
async fn a_company_from_before_keys_were_counted_counts_them_at_its_first_key_change() {
    use portal_shared::adapters::store::{keys, Write};
    let app = spawn_app().await;
    let (company, first) = app.create_company("Old Timers", &[]).await;
    let extra = app.request("POST", "/staff/keys", Some(&first), Some(json!({ "name": "Extra" }))).await;
    let c: portal_shared::foundation::ids::CompanyId = company.parse().unwrap();
    app.store.write(Write::Delete(keys::staff_key_count(c))).await.unwrap();
    // (The count comes from the listing index, which shows a key a moment after it is made.)
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let extra_id = extra.json["id"].as_str().unwrap();
    assert_eq!(app.request("DELETE", &format!("/staff/keys/{extra_id}"), Some(&first), None).await.status, 204);
    let list = app.request("GET", "/staff/keys", Some(&first), None).await;
    let first_id = list.json["items"][0]["id"].as_str().unwrap().to_owned();
    app.request("DELETE", &format!("/staff/keys/{first_id}"), Some(&first), None).await.assert_problem(409);
}
