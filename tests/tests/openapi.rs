//! Keeps openapi.yaml honest: every documented operation is routed by template.yaml to a function
//! (not the catch-all) and implemented by it (never a 404 for an unknown route, never a 405).

use portal_infra::gateway::select_route;
use portal_tests::{spawn_app, ADMIN_KEY};
use serde_yaml::Value;

const FAKE_ID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

fn operations() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    assert!(!ops.is_empty());
    ops
}

fn concrete(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { FAKE_ID } else { s }).collect::<Vec<_>>().join("/")
}

#[test]
fn every_documented_operation_is_routed_by_the_template() {
    for (method, path) in operations() {
        let (route, _) = select_route(&method, &concrete(&path)).unwrap();
        assert_ne!(route.path, "$default", "{method} {path} reaches only the catch-all route");
    }
}

#[tokio::test]
async fn every_documented_operation_is_implemented() {
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    for (method, path) in operations() {
        let auth = if path.starts_with("/admin") { ADMIN_KEY } else { key.as_str() };
        let r = app.request(&method, &concrete(&path), Some(auth), Some(serde_json::json!({}))).await;
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text);
        assert_ne!(r.status, 501, "{method} {path}: {}", r.text);
        if !path.contains('{') {
            assert_ne!(r.status, 404, "{method} {path}: {}", r.text);
        }
    }
}

/// The links the stateful contract run follows (create → read → change): each names an operation
/// that exists, fills exactly that operation's path parameters, from the producer's answer body or
/// its own path, and every operation has a unique `operationId`.
#[test]
fn every_link_leads_to_an_operation_and_fills_its_path() {
    let doc = document();
    let mut ops = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            let params: std::collections::BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            assert!(ops.insert(id.to_owned(), params).is_none(), "operationId {id} twice");
        }
    }
    let mut links = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
            for (code, response) in op["responses"].as_object().unwrap() {
                for (name, link) in response.get("links").and_then(|l| l.as_object()).into_iter().flatten() {
                    let at = format!("{method} {path} {code} link {name}");
                    let target = &ops[link["operationId"].as_str().unwrap()];
                    let filled: std::collections::BTreeSet<String> =
                        link["parameters"].as_object().unwrap().keys().cloned().collect();
                    assert_eq!(&filled, target, "{at}: fills exactly the target's path");
                    for expr in link["parameters"].as_object().unwrap().values() {
                        let expr = expr.as_str().unwrap();
                        let from_path =
                            expr.strip_prefix("$request.path.").is_some_and(|p| path.contains(&format!("{{{p}}}")));
                        assert!(from_path || expr.starts_with("$response.body#/"), "{at}: {expr}");
                    }
                    links += 1;
                }
            }
        }
    }
    assert!(links >= 40, "{links} links");
}

/// A small JSON Schema check (the subset openapi.yaml uses): `$ref`, `oneOf`, `allOf`, `enum`,
/// `const`, `type`, `required`, `properties` (and no undocumented property where an object lists
/// its properties), `items`. Returns what does not conform.
fn conformance(doc: &serde_json::Value, schema: &serde_json::Value, v: &serde_json::Value, at: &str) -> Vec<String> {
    check(doc, schema, v, at, true)
}

fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema.get("$ref").and_then(serde_json::Value::as_str) {
        Some(r) => {
            let target = r.trim_start_matches("#/").split('/').fold(doc, |node, part| &node[part]);
            assert!(!target.is_null(), "dangling {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Property names a schema documents, through `allOf`.
fn documented(doc: &serde_json::Value, schema: &serde_json::Value, out: &mut Vec<String>) -> bool {
    let schema = resolve(doc, schema);
    let mut any = false;
    if let Some(props) = schema.get("properties").and_then(serde_json::Value::as_object) {
        out.extend(props.keys().cloned());
        any = true;
    }
    for part in schema.get("allOf").and_then(serde_json::Value::as_array).into_iter().flatten() {
        any |= documented(doc, part, out);
    }
    any
}

fn check(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
    strict: bool,
) -> Vec<String> {
    use serde_json::Value as J;
    let schema = resolve(doc, schema);
    let mut errs = Vec::new();
    if let Some(options) = schema.get("oneOf").and_then(J::as_array) {
        if !options.iter().any(|o| conformance(doc, o, v, at).is_empty()) {
            errs.push(format!("{at}: matches no oneOf option: {v}"));
        }
    }
    for part in schema.get("allOf").and_then(J::as_array).into_iter().flatten() {
        errs.extend(check(doc, part, v, at, false));
    }
    if let Some(e) = schema.get("enum").and_then(J::as_array) {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errs.push(format!("{at}: {v} is not {c}"));
        }
    }
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => panic!("unknown type {t}"),
    };
    match schema.get("type") {
        Some(J::String(t)) if !type_ok(t) => errs.push(format!("{at}: expected {t}, got {v}")),
        Some(J::Array(ts)) if !ts.iter().any(|t| type_ok(t.as_str().unwrap())) => {
            errs.push(format!("{at}: expected one of {ts:?}, got {v}"))
        }
        _ => {}
    }
    if let J::Object(obj) = v {
        for r in schema.get("required").and_then(J::as_array).into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{at}: missing required {r}"));
            }
        }
        let props = schema.get("properties").and_then(J::as_object);
        for (k, val) in obj {
            if let Some(p) = props.and_then(|p| p.get(k)) {
                errs.extend(conformance(doc, p, val, &format!("{at}.{k}")));
            }
        }
        let mut names = Vec::new();
        if strict && documented(doc, schema, &mut names) {
            errs.extend(obj.keys().filter(|k| !names.contains(k)).map(|k| format!("{at}.{k}: not documented")));
        }
    }
    if let (J::Array(items), Some(item_schema)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            errs.extend(conformance(doc, item_schema, item, &format!("{at}[{i}]")));
        }
    }
    errs
}

fn document() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    serde_json::to_value(serde_yaml::from_str::<Value>(&text).unwrap()).unwrap()
}

/// Asserts a real response matches the schema documented for that path, method and status.
fn assert_documented(doc: &serde_json::Value, method: &str, path: &str, r: &portal_tests::Reply) {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(!op.is_null(), "{method} {path} is not in openapi.yaml");
    let mut response = &op["responses"][r.status.to_string()];
    if let Some(reference) = response.get("$ref").and_then(serde_json::Value::as_str) {
        response = reference.trim_start_matches("#/").split('/').fold(doc, |node, part| &node[part]);
    }
    assert!(!response.is_null(), "{method} {path} does not document status {}: {}", r.status, r.text);
    if r.json.is_null() {
        return; // no JSON body (a redirect, a page): the status is documented
    }
    let content = if r.header("content-type") == Some("application/problem+json") {
        "application/problem+json"
    } else {
        "application/json"
    };
    let schema = &response["content"][content]["schema"];
    assert!(!schema.is_null(), "{method} {path} documents no JSON for {}: {}", r.status, r.text);
    let errs = conformance(doc, schema, &r.json, "$");
    assert!(errs.is_empty(), "{method} {path} {} differs from openapi.yaml:\n{}", r.status, errs.join("\n"));
}

#[tokio::test]
async fn portal_responses_match_their_documented_json() {
    let doc = document();
    let app = spawn_app().await;
    let (_, key) = app.create_company("Acme", &[]).await;
    let settings = serde_json::json!({
        "payments": "native",
        "recommended_contractors_enabled": true,
        "addon_catalog": [{ "name": "Radon", "price_cents": 100 }],
        "special_offers": [{ "partner": "P", "title": "Warranty" }]
    });
    assert_eq!(app.request("PATCH", "/staff/settings", Some(&key), Some(settings)).await.status, 200);
    let created = app.request("POST", "/staff/inspections", Some(&key), Some(portal_tests::inspection_body())).await;
    let id = created.json["inspection_id"].as_str().unwrap().to_owned();
    let client = created.json["links"][0]["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_owned();
    assert!(client.starts_with("/p/"));

    let json_get = |path: String| app.send(app.http.get(app.url(&path)).header("accept", "application/json"));
    let view = json_get(client.clone()).await;
    assert_documented(&doc, "GET", "/p/{token}", &view);
    let addon = view.json["addon_offers"][0]["id"].as_str().unwrap().to_owned();
    let r =
        app.request("POST", &format!("{client}/addons"), None, Some(serde_json::json!({ "addon_ids": [addon] }))).await;
    assert_documented(&doc, "POST", "/p/{token}/addons", &r);
    let r =
        app.request("POST", &format!("{client}/agreement"), None, Some(serde_json::json!({ "typed_name": "J" }))).await;
    assert_documented(&doc, "POST", "/p/{token}/agreement", &r);
    let r = app.request("POST", &format!("{client}/offers/dismiss"), None, None).await;
    assert_documented(&doc, "POST", "/p/{token}/offers/dismiss", &r);
    assert_documented(&doc, "GET", "/share/{inspection_id}", &json_get(format!("/share/{id}")).await);
    let r = app
        .request("POST", &format!("/share/{id}/full-access"), None, Some(serde_json::json!({ "email": "x@y.test" })))
        .await;
    assert_documented(&doc, "POST", "/share/{inspection_id}/full-access", &r);
    let r = app
        .request(
            "POST",
            &format!("/staff/inspections/{id}/people"),
            Some(&key),
            Some(serde_json::json!({ "role": "client", "name": "Joe", "email": "joe@x.test" })),
        )
        .await;
    assert_documented(&doc, "POST", "/staff/inspections/{inspection_id}/people", &r);
    let person = r.json["person_id"].as_str().unwrap().to_owned();
    let r = app.request("POST", &format!("/staff/inspections/{id}/people/{person}/token"), Some(&key), None).await;
    assert_documented(&doc, "POST", "/staff/inspections/{inspection_id}/people/{person_id}/token", &r);

    // Documents, payments, previews and the audit trail.
    let docs = format!("/staff/inspections/{id}/documents");
    let r = app
        .request(
            "POST",
            &docs,
            Some(&key),
            Some(serde_json::json!({ "kind": "inspection_report",
        "title": "Report", "template_name": "Residential" })),
        )
        .await;
    assert_documented(&doc, "POST", "/staff/inspections/{inspection_id}/documents", &r);
    let d = r.json["document_id"].as_str().unwrap().to_owned();
    let status = portal_infra::uploads::post_file(&app.http, &r.json["upload"], b"%PDF-1.4 test", "application/pdf")
        .await
        .unwrap();
    assert!(status.is_success());
    for (method, path, concrete, body) in [
        ("POST", "/staff/documents/{document_id}/uploaded", format!("/staff/documents/{d}/uploaded"), None),
        ("POST", "/staff/documents/{document_id}/publish", format!("/staff/documents/{d}/publish"), None),
        (
            "PATCH",
            "/staff/documents/{document_id}",
            format!("/staff/documents/{d}"),
            Some(serde_json::json!({ "title": "Main report" })),
        ),
        ("GET", "/staff/documents/{document_id}", format!("/staff/documents/{d}"), None),
        ("POST", "/staff/documents/{document_id}/upload-url", format!("/staff/documents/{d}/upload-url"), None),
        ("GET", "/staff/inspections/{inspection_id}/documents", docs.clone(), None),
        (
            "POST",
            "/staff/inspections/{inspection_id}/payments",
            format!("/staff/inspections/{id}/payments"),
            Some(serde_json::json!({ "amount_cents": 100, "method": "cash" })),
        ),
        ("POST", "/staff/documents/{document_id}/resend", format!("/staff/documents/{d}/resend"), None),
        (
            "GET",
            "/staff/inspections/{inspection_id}/preview/{person_id}",
            format!("/staff/inspections/{id}/preview/{person}"),
            None,
        ),
        (
            "GET",
            "/staff/inspections/{inspection_id}/preview/{person_id}/documents/{document_id}",
            format!("/staff/inspections/{id}/preview/{person}/documents/{d}"),
            None,
        ),
        ("GET", "/p/{token}/documents/{document_id}", format!("{client}/documents/{d}"), None),
        ("POST", "/staff/documents/{document_id}/unpublish", format!("/staff/documents/{d}/unpublish"), None),
        ("GET", "/staff/inspections/{inspection_id}/audit", format!("/staff/inspections/{id}/audit"), None),
        ("GET", "/staff/inspections/{inspection_id}/emails", format!("/staff/inspections/{id}/emails"), None),
        ("GET", "/staff/payments/unmatched", "/staff/payments/unmatched".to_owned(), None),
        ("POST", "/p/{token}/pay", format!("{client}/pay"), Some(serde_json::json!({}))),
        ("POST", "/webhooks/payments", "/webhooks/payments".to_owned(), Some(serde_json::json!({}))),
        (
            "POST",
            "/staff/documents/publish",
            "/staff/documents/publish".to_owned(),
            Some(serde_json::json!({ "document_ids": [d.clone(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"] })),
        ),
        ("POST", "/staff/inspections/{inspection_id}/submit", format!("/staff/inspections/{id}/submit"), None),
        ("POST", "/staff/documents/{document_id}/rebuild", format!("/staff/documents/{d}/rebuild"), None),
        ("POST", "/staff/buildings", "/staff/buildings".to_owned(), Some(serde_json::json!({ "name": "Tower" }))),
        ("GET", "/staff/buildings", "/staff/buildings".to_owned(), None),
        (
            "POST",
            "/staff/contacts",
            "/staff/contacts".to_owned(),
            Some(
                serde_json::json!({ "name": "Fran", "email": "fran@x.test", "permissions": { "inspection_reports": true } }),
            ),
        ),
        ("GET", "/staff/contacts", "/staff/contacts".to_owned(), None),
    ] {
        let auth = if path.starts_with("/p/") { None } else { Some(key.as_str()) };
        let mut req =
            app.http.request(method.parse().unwrap(), app.url(&concrete)).header("accept", "application/json");
        if let Some(k) = auth {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        assert_documented(&doc, method, path, &app.send(req).await);
    }
}
