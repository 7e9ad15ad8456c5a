//! Test harness: `spawn_app()` gives each test its own fresh table and bucket, created from
//! template.yaml in DynamoDB Local and moto, and its own local gateway on a free port, so tests
//! run in parallel and talk real HTTP. `scripts/test` starts the emulators and exports the
//! standard AWS endpoint variables this reads.
//!
//! Time: every date a test sends is relative to when it runs ([`days_from_now`], [`from_now`]),
//! so the suite means the same thing on any day. A test that needs a calendar fact (a DST change,
//! a link past its lifetime, a session idle for a week) moves its own app's clock
//! ([`TestApp::clock`]): the functions of that app read the time through it, nothing else does.

pub mod stripe;
use std::sync::Arc;

use portal_infra::functions::Functions;
use portal_infra::gateway::Gateway;
use portal_infra::mailbox::Mailbox;
use portal_infra::resources::{self, LocalNames};
use portal_infra::template::Template;
use portal_shared::adapters::store::Store;
use portal_shared::foundation::clock::Clock;
use portal_shared::foundation::ids::{CompanyId, InspectionId};
use portal_shared::foundation::metrics::Metric;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";
pub const SENDER: &str = "portal@inspection-portal.test";
pub const WEBHOOK_SECRET: &str = "whsec_test_current";
pub const STRIPE_KEY: &str = "sk_test_portal_tests";
/// How long the functions of a test app keep a secret's value before reading it again.
pub const SECRETS_CACHE_SECONDS: f64 = 1.0;
/// A small PDF for uploads.
pub const TEST_PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

pub struct TestApp {
    pub base: String,
    /// The time this app's functions read (the machine's, until the test moves it).
    pub clock: Clock,
    pub functions: Arc<Functions>,
    pub http: reqwest::Client,
    pub sdk: aws_config::SdkConfig,
    pub store: Store,
    pub names: LocalNames,
    pub moto_url: String,
    /// The dev payment provider (Stripe stand-in) on its own origin.
    pub provider: Arc<portal_infra::dev_checkout::DevStripe>,
    server: tokio::task::JoinHandle<()>,
    provider_server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        self.provider_server.abort();
    }
}

fn require_stack() -> String {
    let vars = [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SES",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "MOTO_URL",
    ];
    for var in vars {
        assert!(
            std::env::var(var).is_ok(),
            "{var} is not set: integration tests run against DynamoDB Local and moto; use scripts/test"
        );
    }
    std::env::var("MOTO_URL").expect("checked")
}

/// The AWS configuration the functions get, from the standard environment variables.
pub async fn sdk_config() -> aws_config::SdkConfig {
    require_stack();
    portal_shared::web::entry::aws_config().await
}

/// A fresh, uniquely named table and bucket created from the template.
pub async fn fresh_resources(sdk: &aws_config::SdkConfig) -> LocalNames {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let names = LocalNames { table: format!("t-{id}"), bucket: format!("b-{id}"), sender: SENDER.into() };
    resources::create_all(sdk, &Template::repository().expect("template.yaml"), &names)
        .await
        .expect("create resources");
    names
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(true).await
}

/// [`spawn_app`], with or without a payment provider for Pay Now (the dev provider, on its own
/// origin, whether or not Pay Now is configured to use it).
pub async fn spawn_app_with(payments: bool) -> TestApp {
    let moto_url = require_stack();
    let sdk = sdk_config().await;
    let names = fresh_resources(&sdk).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // The dev payment provider, on its own origin like Stripe.
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let provider_origin = format!("http://{}", provider_listener.local_addr().expect("addr"));
    let provider = Arc::new(portal_infra::dev_checkout::DevStripe::new(
        provider_origin.clone(),
        STRIPE_KEY.to_owned(),
        format!("{base}/webhooks/payments"),
        WEBHOOK_SECRET.to_owned(),
    ));
    let provider_server = provider.clone().serve(provider_listener);
    let provider_env = if payments { "stripe" } else { "none" };
    // Secrets live in Secrets Manager (moto), as on AWS; the functions get their names.
    let secret_values = [
        ("PLATFORM_ADMIN_KEY_SECRET", ADMIN_KEY.to_owned()),
        ("PAYMENT_WEBHOOK_SECRETS_SECRET", format!("whsec_old_rotated,{WEBHOOK_SECRET}")),
        ("STRIPE_SECRET_KEY_SECRET", STRIPE_KEY.to_owned()),
    ];
    let secrets = resources::put_secrets(&sdk, &names.table, &secret_values).await.expect("secrets");
    let secret = |v: &str| secrets.iter().find(|(k, _)| k == v).map(|(_, arn)| arn.clone()).expect("secret");
    let env = [
        ("TABLE_NAME", names.table.clone()),
        ("BUCKET_NAME", names.bucket.clone()),
        ("SENDER_EMAIL", SENDER.to_owned()),
        ("PUBLIC_BASE_URL", base.clone()),
        ("PLATFORM_ADMIN_KEY_SECRET", secret("PLATFORM_ADMIN_KEY_SECRET")),
        ("PAYMENT_WEBHOOK_SECRETS_SECRET", secret("PAYMENT_WEBHOOK_SECRETS_SECRET")),
        ("STRIPE_SECRET_KEY_SECRET", secret("STRIPE_SECRET_KEY_SECRET")),
        ("SECRETS_CACHE_SECONDS", SECRETS_CACHE_SECONDS.to_string()),
        ("SES_CONFIGURATION_SET", names.configuration_set()),
        ("PAYMENT_PROVIDER", provider_env.to_owned()),
        ("STRIPE_API_BASE", provider_origin.clone()),
        ("STRIPE_CHECKOUT_ORIGIN", provider_origin.clone()),
        ("ROUND_TRIPS_HEADER", "true".to_owned()),
    ];
    let clock = Clock::adjustable();
    let template = Template::repository().expect("template.yaml");
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let functions = Arc::new(Functions::from_template(&sdk, &template, lookup, clock.clone()).expect("config"));
    let gateway = Arc::new(Gateway::new(functions.clone(), Some(Mailbox::new(moto_url.clone())), &template));
    let server = gateway.serve(listener);
    TestApp {
        functions,
        clock: clock.clone(),
        base,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        store: Store::new(&sdk, names.table.clone()).with_clock(clock),
        sdk,
        names,
        moto_url,
        provider,
        server,
        provider_server,
    }
}

/// A response read whole: status, headers, and the body as JSON (Null when not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn round_trips(&self) -> u64 {
        self.header(portal_shared::web::http::ROUND_TRIPS_HEADER)
            .and_then(|v| v.parse().ok())
            .expect("round-trip header")
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        assert_eq!(self.json["status"], status);
        for field in ["type", "title", "detail"] {
            assert!(self.json[field].is_string(), "problem without {field}: {}", self.text);
        }
        self
    }
}

impl TestApp {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, json }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method.parse().expect("method"), self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.request(method, path, Some(ADMIN_KEY), body).await
    }

    /// Creates a company through the admin API; returns (company_id, staff_api_key).
    pub async fn create_company(&self, name: &str, staff_emails: &[&str]) -> (String, String) {
        let r =
            self.admin("POST", "/admin/companies", Some(json!({ "name": name, "staff_emails": staff_emails }))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.json["company_id"].as_str().expect("id").to_owned(),
            r.json["staff_api_key"].as_str().expect("key").to_owned(),
        )
    }

    /// Registers a document on `inspection` (`body`: kind, title, …) and PUTs `pdf` to its
    /// presigned URL as `content_type`; returns its id and the registration reply.
    pub async fn put_document(
        &self,
        key: &str,
        inspection: &str,
        body: Value,
        pdf: &[u8],
        content_type: &str,
    ) -> (String, Reply) {
        let r =
            self.request("POST", &format!("/staff/inspections/{inspection}/documents"), Some(key), Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json["document_id"].as_str().expect("document id").to_owned();
        let status =
            portal_infra::uploads::post_file(&self.http, &r.json["upload"], pdf, content_type).await.expect("POST");
        assert!(status.is_success(), "presigned POST: {status}");
        (id, r)
    }

    /// Asks staff to verify the upload of `doc` (the reply says whether it was accepted).
    pub async fn complete_upload(&self, key: &str, doc: &str) -> Reply {
        self.request("POST", &format!("/staff/documents/{doc}/uploaded"), Some(key), None).await
    }

    /// An uploaded, verified and published document; returns its id.
    pub async fn published_document(&self, key: &str, inspection: &str, body: Value) -> String {
        let (id, _) = self.put_document(key, inspection, body, TEST_PDF, "application/pdf").await;
        for step in ["uploaded", "publish"] {
            let r = self.request("POST", &format!("/staff/documents/{id}/{step}"), Some(key), None).await;
            assert_eq!(r.status, 200, "{step}: {}", r.text);
        }
        id
    }

    /// One run of the every-minute job at `at`, as the publish function runs it (the AWS calls it
    /// makes are that function's; what it counts goes to this app's [`TestApp::metric`]).
    pub async fn job_at(&self, at: OffsetDateTime) -> portal_publish::JobReport {
        let run =
            portal_shared::adapters::roundtrips::as_function("PublishFunction", self.functions.publish.run_at(at));
        self.functions.metrics.scope(run).await
    }

    /// The next instant, by this app's clock, that starts a fixed window of `seconds` (rate limits
    /// count in such windows): a test that counts requests against a limit sets its clock there,
    /// so no window boundary falls in the middle of its count whatever the time of day.
    pub fn next_window_start(&self, seconds: i64) -> OffsetDateTime {
        let now = self.clock.now().unix_timestamp();
        OffsetDateTime::from_unix_timestamp((now / seconds + 1) * seconds).expect("a time this century")
    }

    /// Runs the every-minute job, now by this app's clock, until nothing it should do by now is
    /// left (see [`TestApp::due_work`]), and adds up the emails it sent. The job finds its work
    /// through indexes, which (as on AWS) show a write a moment later; the schedule would pick it
    /// up on its next run.
    pub async fn run_jobs(&self) -> portal_shared::usecases::outbox::DrainReport {
        let mut total = portal_shared::usecases::outbox::DrainReport::default();
        for _ in 0..400 {
            let now = self.clock.now();
            let r = self.job_at(now).await.emails;
            total.sent += r.sent;
            total.failed += r.failed;
            total.failed_permanently += r.failed_permanently;
            total.skipped += r.skipped;
            if self.due_work(now).await == 0 {
                return total;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the job left due work in the table after 400 runs: {} items", self.due_work(self.clock.now()).await);
    }

    /// What the every-minute job has to do by `at`: emails waiting to be sent, documents waiting
    /// to be published, webhook events waiting to be fanned out and deliveries waiting to be sent,
    /// payment events queued, personal-data exports and erasures asked for.
    /// Read from the table itself (a strongly consistent scan of this test's table), not from the
    /// indexes the job uses, which may lag.
    pub async fn due_work(&self, at: OffsetDateTime) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue;
        use portal_shared::adapters::store::keys;
        let upto = format!("{}~", portal_shared::foundation::clock::rfc3339(at));
        let due = |item: &std::collections::HashMap<String, AttributeValue>, attr: &str| {
            item.get(attr).and_then(|v| v.as_s().ok()).is_some_and(|sk| *sk <= upto)
        };
        let mut n = 0;
        // A delivery is due when it is and its endpoint's queue is (an endpoint backing off is
        // not tried until its step is over, whatever waits for it).
        let (mut deliveries, mut queues_due) = (Vec::new(), std::collections::HashSet::new());
        for item in &self.all_items().await {
            // The queues: their items carry a GSI1 sort key that starts with when they are due.
            let entity = item.get("entity").and_then(|v| v.as_s().ok()).map(String::as_str);
            let pk = item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            match entity {
                Some(
                    "email" | "webhook_events" | "staff_alert" | "payment_queued" | "privacy_export"
                    | "privacy_erasure" | "company_export" | "company_tombstone",
                ) if due(item, keys::GSI1SK) => n += 1,
                Some("webhook_delivery") if due(item, keys::GSI1SK) => deliveries.push(pk),
                Some("webhook_queue") if due(item, keys::GSI1SK) => {
                    queues_due.insert(pk);
                }
                _ if due(item, keys::DUE_SK) => n += 1,
                _ => {}
            }
        }
        n + deliveries.iter().filter(|pk| queues_due.contains(*pk)).count()
    }

    /// How many of `metric` this app's functions counted (its requests and [`TestApp::job_at`]
    /// runs; not other tests').
    pub fn metric(&self, metric: Metric) -> u64 {
        self.functions.metrics.total(metric)
    }

    /// Emails sent to `address` (moto keeps every message of the run; tests use unique addresses).
    pub async fn emails_to(&self, address: &str) -> Vec<portal_infra::mailbox::MailMessage> {
        let all = Mailbox::new(self.moto_url.clone()).messages().await.expect("moto mailbox");
        all.into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    /// Puts a new value in one of this app's secrets (`PAYMENT_WEBHOOK_SECRETS_SECRET`, …), as an
    /// operator rotating it would.
    pub async fn rotate_secret(&self, variable: &str, value: &str) {
        resources::put_secrets(&self.sdk, &self.names.table, &[(variable, value.to_owned())]).await.expect("rotate");
    }

    /// Every item of this test's table, every page, strongly consistent (the product scans only
    /// to delete a company).
    pub async fn all_items(&self) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let (mut items, mut start) = (Vec::new(), None);
        loop {
            let out = self
                .store
                .client()
                .scan()
                .table_name(&self.names.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Every object version in this test's bucket, with its bytes.
    pub async fn all_object_versions(&self) -> Vec<(String, Vec<u8>)> {
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(true).build());
        let (mut out, mut marker) = (Vec::new(), None::<(String, String)>);
        loop {
            let listed = s3
                .list_object_versions()
                .bucket(&self.names.bucket)
                .set_key_marker(marker.as_ref().map(|m| m.0.clone()))
                .set_version_id_marker(marker.as_ref().map(|m| m.1.clone()))
                .send()
                .await
                .expect("list versions");
            for v in listed.versions() {
                let key = v.key().unwrap_or_default().to_owned();
                let got = s3
                    .get_object()
                    .bucket(&self.names.bucket)
                    .key(&key)
                    .set_version_id(v.version_id().map(str::to_owned))
                    .send()
                    .await
                    .expect("get version");
                out.push((key, got.body.collect().await.expect("body").into_bytes().to_vec()));
            }
            if listed.is_truncated() != Some(true) {
                return out;
            }
            marker = Some((
                listed.next_key_marker().unwrap_or_default().to_owned(),
                listed.next_version_id_marker().unwrap_or_default().to_owned(),
            ));
        }
    }
}

/// A PNG of `w` × `h` pixels (one grey), as an image editor would save it.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(png::ColorType::Rgb);
    e.write_header().expect("PNG header").write_image_data(&vec![120u8; (w * h * 3) as usize]).expect("PNG data");
    out
}

/// A JPEG of `w` × `h` pixels (a gradient), as a camera would hand it over.
pub fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x / 5) as u8, (y / 4) as u8, 90])).collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80).encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb).expect("JPEG");
    out
}

/// The text of a PDF as a reader extracts it (poppler's `pdftotext`, installed by the scripts).
pub fn pdf_text(pdf: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("pdftotext")
        .args(["-layout", "-", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils)");
    child.stdin.take().expect("stdin").write_all(pdf).expect("write the PDF");
    let out = child.wait_with_output().expect("pdftotext");
    assert!(out.status.success(), "not a PDF pdftotext can read");
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

/// `d` from now, as the RFC 3339 string the API takes (UTC, milliseconds).
pub fn from_now(d: Duration) -> String {
    portal_shared::foundation::clock::rfc3339(OffsetDateTime::now_utc() + d)
}

/// `n` days from now (negative: ago), for dates in request bodies: "upcoming" stays upcoming
/// whatever day the suite runs.
pub fn days_from_now(n: i64) -> String {
    from_now(Duration::days(n))
}

/// A typical inspection request body, a week from now.
pub fn inspection_body() -> Value {
    json!({
        "address": "12 Elm Street, Springfield",
        "scheduled_at": days_from_now(7),
        "services": [{ "name": "Residential Inspection", "description": "Full home inspection", "price_cents": 45000 }],
        "people": [
            { "role": "client", "name": "Jane Client", "email": "jane@example.com" },
            { "role": "buyer_agent", "name": "Bob Agent", "email": "bob@realty.test" },
            { "role": "listing_agent", "name": "Lisa Lister", "email": "lisa@realty.test" },
            { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@acme-inspections.test" }
        ]
    })
}

// ---- a company with one inspection and its people, for portal, gate and payment tests ----

pub struct Fixture {
    pub app: TestApp,
    pub key: String,
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    pub client: String,
    pub agent: String,
    pub listing: String,
    pub client_email: String,
    pub agent_email: String,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", ulid::Ulid::new().to_string().to_lowercase())
}

/// A company with `settings`, and an inspection with a client, a buyer's agent, a listing agent
/// and a staff inspector. Links are paths (`/p/<token>`).
pub async fn fixture(settings: Value) -> Fixture {
    fixture_in(spawn_app().await, settings).await
}

/// [`fixture`] in a given app (e.g. one without a payment provider).
pub async fn fixture_in(app: TestApp, settings: Value) -> Fixture {
    let (company, key) = app.create_company("Lakeside Home Inspections", &["ivan@lakeside.test"]).await;
    if settings != json!({}) {
        let r = app.request("PATCH", "/staff/settings", Some(&key), Some(settings)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let (client_email, agent_email) = (unique("jane"), unique("bob"));
    // No confirmation emails here: tests that count emails count what they cause
    // (tests/tests/journey.rs covers confirmations).
    let body = json!({
        "address": "12 Elm Street, Springfield",
        "scheduled_at": days_from_now(7),
        "notify": false,
        "services": [{ "name": "Residential Inspection", "description": "Full home inspection", "price_cents": 45000 }],
        "people": [
            { "role": "client", "name": "Jane Client", "email": client_email },
            { "role": "buyer_agent", "name": "Bob Agent", "email": agent_email },
            { "role": "listing_agent", "name": "Lisa Lister", "email": unique("lisa") },
            { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@lakeside.test", "phone": "555-0100" }
        ]
    });
    let r = app.request("POST", "/staff/inspections", Some(&key), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let link = |role: &str| {
        let url = r.json["links"].as_array().unwrap().iter().find(|l| l["role"] == role).unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
        url.strip_prefix(&app.base).expect("links use the public base URL").to_owned()
    };
    Fixture {
        key: key.clone(),
        company_id: company.parse().unwrap(),
        inspection_id: r.json["inspection_id"].as_str().unwrap().parse().unwrap(),
        client: link("client"),
        agent: link("buyer_agent"),
        listing: link("listing_agent"),
        client_email,
        agent_email,
        app,
    }
}

impl Fixture {
    pub async fn view(&self, link: &str) -> Reply {
        self.app.send(self.app.http.get(self.app.url(link)).header("accept", "application/json")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.app.request("POST", path, None, Some(body)).await
    }

    pub async fn form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.app.send(self.app.http.post(self.app.url(path)).form(form)).await
    }

    pub async fn inspection(&self) -> portal_shared::domain::inspection::Inspection {
        self.app.store.inspection(self.company_id, self.inspection_id).await.unwrap().unwrap()
    }
}
