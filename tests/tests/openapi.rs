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
