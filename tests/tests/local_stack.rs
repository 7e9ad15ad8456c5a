//! The local stack itself: resources come from template.yaml, the gateway's route table is the
//! template's, requests reach handlers converted as API Gateway payload 2.0, and the dev mailbox
//! shows what SES sent.

use std::collections::BTreeSet;

use portal_infra::gateway::ROUTES;
use portal_infra::mailbox::Mailbox;
use portal_infra::template::Template;
use portal_shared::adapters::ses::Mailer;
use portal_shared::domain::mail::Outgoing;
use portal_shared::foundation::email::Email;
use portal_tests::{spawn_app, SENDER};

#[test]
fn the_gateway_serves_exactly_the_templates_routes() {
    let template = Template::repository().unwrap();
    let from_template: BTreeSet<(String, String, String)> =
        template.http_routes().into_iter().map(|r| (r.method, r.path, r.function)).collect();
    let from_gateway: BTreeSet<(String, String, String)> =
        ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.logical_id().to_owned())).collect();
    assert_eq!(from_gateway, from_template);
    assert_eq!(from_template.len(), ROUTES.len(), "no duplicate routes");
}

#[test]
fn the_template_wires_schedule_and_upload_events_to_publish() {
    let template = Template::repository().unwrap();
    let events = template.event_types("PublishFunction");
    assert!(events.iter().any(|e| e == "ScheduleV2"), "{events:?}");
    assert!(events.iter().any(|e| e == "S3"), "{events:?}");
}

#[tokio::test]
async fn the_table_is_created_as_the_template_defines_it() {
    let app = spawn_app().await;
    let t = app.store.client().describe_table().table_name(&app.names.table).send().await.unwrap().table.unwrap();
    let mut indexes: Vec<String> =
        t.global_secondary_indexes().iter().filter_map(|g| g.index_name().map(str::to_owned)).collect();
    indexes.sort();
    assert_eq!(indexes, ["DUE", "GSI1", "GSI2"]);
    let due = t.global_secondary_indexes().iter().find(|g| g.index_name() == Some("DUE")).unwrap();
    assert_eq!(due.projection().unwrap().projection_type().unwrap().as_str(), "KEYS_ONLY");
    let ttl = app.store.client().describe_time_to_live().table_name(&app.names.table).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description().unwrap().attribute_name(), Some("expires_at"));
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&app.sdk).force_path_style(true).build());
    let cors = s3.get_bucket_cors().bucket(&app.names.bucket).send().await.unwrap();
    assert_eq!(cors.cors_rules()[0].allowed_methods(), ["POST"]);
}

#[tokio::test]
async fn handlers_see_requests_as_api_gateway_sends_them() {
    let app = spawn_app().await;
    // Path parameters, raw query and source IP survive the conversion: a bad cursor is reported
    // by the handler (400), which means the query string reached it.
    let (_, key) = app.create_company("Acme", &[]).await;
    let r = app.request("GET", "/staff/inspections?limit=1&cursor=%21%21", Some(&key), None).await;
    r.assert_problem(400);
    assert!(r.json["detail"].as_str().unwrap().contains("cursor"));
    // Responses keep their headers and status.
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_dev_mailbox_lists_sent_emails_with_clickable_links() {
    let app = spawn_app().await;
    let mailer = Mailer::new(&app.sdk, Email::parse(SENDER).unwrap(), Some(app.names.configuration_set()));
    let subject = format!("Your report is ready {}", ulid::Ulid::new());
    let link = app.url("/p/some-link");
    mailer
        .send(&Outgoing {
            to: Email::parse("jane@example.com").unwrap(),
            from_name: Some("Acme Inspections".into()),
            reply_to: Some(Email::parse("office@acme.test").unwrap()),
            subject: subject.clone(),
            text: format!("Open {link}"),
            html: format!("<p>Open <a href=\"{link}\">your portal</a></p>"),
            list_unsubscribe: None,
        })
        .await
        .unwrap();

    let messages = Mailbox::new(app.moto_url.clone()).messages().await.unwrap();
    let m = messages.iter().find(|m| m.subject == subject).expect("sent message is in moto");
    assert_eq!(m.to, ["jane@example.com"]);
    assert!(m.from.contains(SENDER));
    assert_eq!(m.links, vec![link.clone()]);

    let json = app.request("GET", "/_dev/mailbox.json", None, None).await;
    assert!(json.json["messages"].as_array().unwrap().iter().any(|m| m["subject"] == subject.as_str()));
    // Newest first, 50 a page: other tests share this moto, so it may have moved to a later page.
    let mut page = app.request("GET", "/_dev/mailbox", None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    for n in 2..=100 {
        if page.text.contains(&subject) || !page.text.contains(">Older</a>") {
            break;
        }
        page = app.request("GET", &format!("/_dev/mailbox?page={n}"), None, None).await;
    }
    assert!(page.text.contains(&subject), "on some page of the mailbox");
    assert!(page.text.contains(&format!("<a href=\"{link}\"")), "links are clickable");
}

#[tokio::test]
async fn pdfs_go_up_and_down_through_short_lived_presigned_urls() {
    use portal_shared::adapters::s3::Blobs;
    use std::time::Duration;

    let app = spawn_app().await;
    let blobs = Blobs::new(&app.sdk, app.names.bucket.clone(), true);
    let key = "company/inspection/report.pdf";
    let upload = blobs.presign_pdf_post(key, 1024, Duration::from_secs(900)).await.unwrap();
    assert_eq!(upload.fields["key"], key);
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let form = serde_json::to_value(&upload).unwrap();
    let status = portal_infra::uploads::post_file(&app.http, &form, &pdf, "application/pdf").await.unwrap();
    assert!(status.is_success(), "{status}");

    let info = blobs.head(key).await.unwrap().expect("uploaded");
    assert_eq!(info.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(info.size, pdf.len() as i64);
    assert!(blobs.head("company/inspection/missing.pdf").await.unwrap().is_none());

    let download =
        blobs.presign_pdf_download(key, None, "12 Elm St \"Report\".pdf", Duration::from_secs(300)).await.unwrap();
    let url = reqwest::Url::parse(&download).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert!(q["X-Amz-Expires"].parse::<u64>().unwrap() <= 300, "expires within 5 minutes");
    assert_eq!(q["response-content-disposition"], "inline; filename=\"12 Elm St _Report_.pdf\"");
    let got = app.http.get(download).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf);
}

#[tokio::test]
async fn the_gateway_runs_each_function_within_its_template_timeout_like_lambda() {
    let app = spawn_app().await;
    let template = Template::repository().unwrap();
    let mut gateway = portal_infra::gateway::Gateway::new(app.functions.clone(), None, &template);
    assert_eq!(
        gateway.timeouts[&portal_infra::functions::Function::Link],
        std::time::Duration::from_secs(template.function_timeout("LinkFunction"))
    );
    assert_eq!(template.function_timeout("PublishFunction"), 60, "its own Timeout over the Globals one");
    // The function gets the deadline its timeout gives (here: none left) and answers 503 with
    // Retry-After itself, before Lambda would cut it off (and API Gateway answer a bare 500).
    gateway.timeouts.insert(portal_infra::functions::Function::Link, std::time::Duration::ZERO);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = std::sync::Arc::new(gateway).serve(listener);
    let r = app.send(app.http.get(format!("{base}/p/{}", "0".repeat(78)))).await;
    server.abort();
    r.assert_problem(503);
    assert!(r.header("retry-after").is_some());
}
