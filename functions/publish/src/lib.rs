//! The publish function: manual, automatic, scheduled and event-driven publishing and the
//! notifications they send. One Lambda receives three kinds of events ([`Publish::dispatch`]):
//! HTTP API requests (staff publishing and submitting), the every-minute schedule, and S3
//! object-created events.
//!
//! - `POST /staff/documents/{id}/publish | unpublish`, and `POST /staff/documents/publish |
//!   unpublish` with `document_ids` (bulk). Publishing what is published changes nothing and sends
//!   nothing.
//! - `POST /staff/inspections/{id}/submit`: marks the inspection submitted; with
//!   `auto_generate_inspection_reports` it renders the inspection report from the stored data and
//!   publishes it when inspection reports auto-publish (or schedules it with `publish_at`, a hold
//!   window staff can recall).
//! - S3 object-created: completes the document (verifies the PDF) and auto-publishes it when due.
//! - Schedule: publishes documents whose `publish_at` came (sparse `DUE` index), then sends the
//!   email outbox.

use http::StatusCode;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::lambda_runtime;
use lambda_http::RequestExt;
use lambda_http::{Body, Request, Response};
use portal_shared::adapters::s3::Blobs;
use portal_shared::adapters::ses::Mailer;
use portal_shared::adapters::store::documents::DocumentPointer;
use portal_shared::adapters::store::Store;
use portal_shared::domain::document::{publish_time, DocumentKind, NewDocument};
use portal_shared::domain::inspection::FindingInput;
use portal_shared::foundation::ids::{CompanyId, DocumentId, InspectionId};
use portal_shared::usecases::outbound_webhooks::{Deliverer, Targets, WebhookReport};
use portal_shared::usecases::outbox::{self, DrainReport};
use portal_shared::usecases::publishing::{self, DueReport};
use portal_shared::usecases::{offboarding, payment_events, privacy, reminders, staff_alerts};
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{body_bytes, json, json_body, segments, serve, ApiResult};
use portal_shared::{by_method, foundation::clock, web::apigw, web::auth, web::entry, ApiError, Config};
use serde::Deserialize;
use serde_json::{json, Value};

pub struct Publish {
    config: Config,
    store: Store,
    blobs: Blobs,
    mailer: Option<Mailer>,
    webhooks: Deliverer,
}

/// Documents per bulk request.
const MAX_BULK: usize = 100;

/// The scheduled job runs every minute within a 60 s timeout: publishing may take 30 s, sending
/// the outbox until 40 s, starting webhook deliveries (10 s each at most) until 45 s; what is
/// left waits for the next run (which starts anyway).
const DUE_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);
const EMAIL_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);
const JOB_BUDGET: std::time::Duration = std::time::Duration::from_secs(45);
const MAX_DUE_PER_RUN: usize = 50_000;
const MAX_EMAILS_PER_RUN: i32 = 1000;
/// Queued payment events applied per run (each up to its budget; the rest wait a minute).
const MAX_QUEUED_PAYMENTS_PER_RUN: i32 = 200;
/// Events fanned out and deliveries sent per run (each delivery may wait up to 10 s).
const MAX_WEBHOOKS_PER_RUN: i32 = 200;

impl Publish {
    /// Now, by this function's clock (the system clock on Lambda; a test's own in tests).
    fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Publish {
            store: Store::for_config(sdk, &config),
            blobs: Blobs::new(sdk, config.bucket_name.clone().unwrap_or_default(), config.s3_force_path_style),
            mailer: Mailer::from_config(sdk, &config),
            webhooks: Deliverer::new(Targets::for_base_url(&config.public_base_url)),
            config,
        }
    }

    /// One Lambda invocation, whatever its source. `context` is the invocation's (its deadline
    /// bounds HTTP requests; its ids go on every log line). A `500` answer, an upload event that
    /// could not be completed and a scheduled run with failures are returned as errors, so Lambda
    /// counts them, retries the asynchronous ones and finally parks them (S3: the on-failure
    /// queue; schedule: its dead-letter queue).
    pub async fn dispatch(&self, event: Value, context: Option<lambda_runtime::Context>) -> Result<Value, JobError> {
        let ids = context.as_ref().map(|c| {
            portal_shared::foundation::logging::Invocation::new(
                Some(c.request_id.clone()),
                None,
                c.xray_trace_id.clone(),
            )
        });
        if event.get("requestContext").is_some() && event.get("routeKey").is_some() {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(event)?;
            let mut request = apigw::request_from_event(request);
            if let Some(c) = context {
                request = request.with_lambda_context(c);
            }
            let response = entry::as_lambda_result(Box::pin(self.handle(request)).await)
                .map_err(|e| JobError::Failed(e.to_string()))?;
            return Ok(serde_json::to_value(apigw::response_to_event(response))?);
        }
        // A message from the failed-events queue, handed back to be run again.
        if let Some(message) = event.get("replay") {
            let failed = failed_event(message)
                .ok_or_else(|| JobError::Unrecognized("the replay holds no event this function runs".into()))?;
            tracing::info!("replaying a failed event");
            return Box::pin(self.dispatch(failed, context)).await;
        }
        let kind = job_kind(&event).ok_or_else(|| JobError::Unrecognized(shape(&event)))?;
        let job = async {
            match kind {
                Job::EmailEvents => {
                    let events = portal_shared::usecases::email_events::from_sns(&event).unwrap_or_default();
                    Box::pin(self.email_events(&events)).await
                }
                Job::Uploads => {
                    let keys: Vec<String> = event["Records"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["s3"]["object"]["key"].as_str())
                        .map(|k| {
                            percent_encoding::percent_decode_str(&k.replace('+', " ")).decode_utf8_lossy().into_owned()
                        })
                        .collect();
                    Box::pin(self.uploads_completed(&keys)).await
                }
                Job::Scheduled => Box::pin(self.publish_due()).await,
            }
        };
        let report = match ids {
            Some(ids) => portal_shared::foundation::logging::scope(ids, job).await,
            None => job.await,
        };
        tracing::info!(report = %serde_json::to_string(&report)?, "job finished");
        if report.status != "ok" {
            return Err(JobError::Failed(format!("the job finished with status {}", report.status)));
        }
        Ok(serde_json::to_value(report)?)
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["staff", "documents", action @ ("publish" | "unpublish")] => {
                by_method!(req; POST => self.bulk(&req, *action == "publish").await)
            }
            ["staff", "documents", id, action @ ("publish" | "unpublish")] => {
                by_method!(req; POST => self.set_published(&req, id, *action == "publish").await)
            }
            ["staff", "inspections", id, "submit"] => by_method!(req; POST => self.submit(&req, id).await),
            _ => Err(ApiError::NotFound),
        }
    }

    async fn set_one(&self, company: CompanyId, id: DocumentId, publish: bool) -> Result<Value, ApiError> {
        let change = || {
            self.store.modify_document(company, id, move |owner, i| {
                let now = self.now();
                if publish {
                    publishing::publish(owner, i, id, now)
                } else {
                    publishing::unpublish(i, id, now)
                }
            })
        };
        let (inspection, changed) = match change().await {
            // Uploaded but its completion not seen yet (the S3 event may still be on its way):
            // complete it here (one HEAD), then publish.
            Err(ApiError::Conflict { code: "not-uploaded", .. }) if publish => {
                publishing::complete_upload(&self.store, &self.blobs, company, id).await.map_err(|e| match e {
                    ApiError::Conflict { code: "upload-rejected", detail } => ApiError::conflict(
                        "not-uploaded",
                        format!("upload the document's PDF before publishing it ({detail})"),
                    ),
                    other => other,
                })?;
                change().await?
            }
            other => other?,
        };
        if changed {
            publishing::sync_deficiencies(&self.store, &inspection, id).await;
            if publish {
                portal_shared::foundation::metrics::count(
                    portal_shared::foundation::metrics::Metric::DocumentsPublished,
                    1,
                );
            }
        }
        let doc = inspection.document(id).ok_or(ApiError::NotFound)?;
        tracing::info!(document_id = %id, inspection_id = %inspection.id, publish, changed, "publish state set");
        Ok(json!({ "changed": changed, "document": doc.staff_view(inspection.id) }))
    }

    async fn set_published(&self, req: &Request, id: &str, publish: bool) -> ApiResult {
        let staff = auth::staff(&self.store, req).await?;
        let id: DocumentId = id.parse().map_err(|_| ApiError::NotFound)?;
        json(StatusCode::OK, &self.set_one(staff.company_id, id, publish).await?)
    }

    /// Many documents at once; each gets its own result (one failing does not stop the others).
    async fn bulk(&self, req: &Request, publish: bool) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Bulk {
            document_ids: Vec<String>,
        }
        let staff = auth::staff(&self.store, req).await?;
        let input: Bulk = json_body(req)?;
        if input.document_ids.is_empty() || input.document_ids.len() > MAX_BULK {
            return Err(ApiError::bad_request(format!("document_ids must name 1 to {MAX_BULK} documents")));
        }
        let mut results = Vec::with_capacity(input.document_ids.len());
        for raw in &input.document_ids {
            let outcome = match raw.parse::<DocumentId>() {
                Err(_) => Err(ApiError::NotFound),
                Ok(id) => self.set_one(staff.company_id, id, publish).await,
            };
            results.push(match outcome {
                Ok(body) => {
                    json!({ "document_id": raw, "status": 200, "changed": body["changed"], "document": body["document"] })
                }
                Err(e) => {
                    let problem = e.problem();
                    json!({ "document_id": raw, "status": problem.status, "problem": problem })
                }
            });
        }
        json(StatusCode::OK, &json!({ "results": results }))
    }

    /// The inspector is done. With auto-generate, the inspection report is rendered from the
    /// stored data and published (if inspection reports auto-publish), or scheduled for
    /// `publish_at`. Submitting again changes nothing.
    async fn submit(&self, req: &Request, id: &str) -> ApiResult {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct Submit {
            #[serde(default)]
            template_name: Option<String>,
            #[serde(default)]
            publish_at: Option<String>,
            /// What the inspector found; `[]` says there is nothing (only then does a report
            /// say so).
            #[serde(default)]
            findings: Option<Vec<FindingInput>>,
        }
        let staff = auth::staff(&self.store, req).await?;
        let input: Submit = if body_bytes(req).is_empty() { Submit::default() } else { json_body(req)? };
        let publish_at = input.publish_at.as_deref().map(publish_time).transpose()?;
        let id: InspectionId = id.parse().map_err(|_| ApiError::NotFound)?;
        let company = self.store.company(staff.company_id).await?.ok_or(ApiError::Unauthorized)?;
        let generate = company.settings.auto_generate_inspection_reports;
        let existing = self.store.inspection(company.id, id).await?.ok_or(ApiError::NotFound)?;
        // The findings given now replace what was recorded before; without them, the recorded
        // ones stand (and a report needs some: at least an explicit []).
        let mut submitted = existing.clone();
        let given = match input.findings {
            Some(inputs) => {
                submitted.set_findings(inputs, self.now())?;
                submitted.findings.clone()
            }
            None => None,
        };
        let mut report = existing.documents.iter().find(|d| d.generated).map(|d| d.id);
        // A building's (commercial) report shows the deficiencies recorded against it afterwards.
        let residential = existing.building_id.is_none();
        if generate && report.is_none() && residential && submitted.findings.is_none() {
            return Err(ApiError::bad_request(
                "findings is required to generate the report: give the inspection's findings, or [] when \
                 there are none (or record them first with POST /staff/inspections/{id}/findings)",
            ));
        }
        if generate && report.is_none() {
            // Render first (under a fresh id), then record the document: a failed render leaves
            // nothing half-made behind.
            let mut doc = portal_shared::domain::document::Document::create(
                NewDocument {
                    kind: DocumentKind::InspectionReport,
                    title: "Inspection report".into(),
                    template_name: Some(input.template_name.clone().unwrap_or_else(|| "Inspection".into())),
                    publish_at: None,
                },
                self.now(),
            )?;
            submitted.submitted_at.get_or_insert(self.now());
            doc.verified_version =
                publishing::render_and_store(&self.store, &self.blobs, &company, &submitted, &doc).await?;
            doc.generated = true;
            doc.uploaded = true;
            doc.file_version = 1;
            doc.auto_publish = DocumentKind::InspectionReport.auto_publishes(&company.settings.auto_publish);
            doc.publish_at = publish_at;
            report = Some(doc.id);
            let (inspection, changed) = self
                .store
                .modify_inspection(company.id, id, |_, i| {
                    let now = self.now();
                    if i.documents.iter().any(|d| d.generated) {
                        return Ok((false, vec![])); // a concurrent submit won
                    }
                    i.submitted_at.get_or_insert(now);
                    if given.is_some() {
                        i.findings.clone_from(&given);
                    }
                    i.documents.push(doc.clone());
                    let mut writes = vec![DocumentPointer::write(company.id, doc.id, i.id)?];
                    writes.push(publishing::schedule_write(i, &doc)?);
                    if doc.auto_publish && doc.publish_at.is_none() {
                        writes.extend(publishing::publish(&company, i, doc.id, now)?.1);
                    }
                    Ok((true, writes))
                })
                .await?;
            return submitted_view(&inspection, report, changed);
        }
        let (inspection, changed) = self
            .store
            .modify_inspection(company.id, id, |_, i| {
                let first = i.submitted_at.is_none();
                i.submitted_at.get_or_insert(self.now());
                let changed = first || given.as_ref().is_some_and(|g| i.findings.as_ref() != Some(g));
                if given.is_some() {
                    i.findings.clone_from(&given);
                }
                Ok((changed, vec![]))
            })
            .await?;
        submitted_view(&inspection, report, changed)
    }

    /// S3 object-created records: each PDF under `companies/<c>/inspections/<i>/documents/<d>.pdf`
    /// completes its document (and auto-publishes it when due).
    pub async fn uploads_completed(&self, keys: &[String]) -> JobReport {
        let mut report = JobReport { status: "ok", ..JobReport::default() };
        for key in keys {
            let Some((company, _, doc)) = parse_object_key(key) else {
                continue;
            };
            match publishing::complete_upload(&self.store, &self.blobs, company, doc).await {
                Ok(i) => {
                    report.completed += 1;
                    if i.document(doc).is_some_and(|d| d.published) {
                        report.published += 1;
                    }
                }
                // A PDF that fails the check is the uploader's problem, already answered (the
                // document keeps its verified version): nothing to retry.
                Err(ApiError::Conflict { code: "upload-rejected", detail }) => {
                    tracing::warn!(document_id = %doc, reason = %detail, "upload rejected");
                }
                Err(ApiError::NotFound) => {
                    tracing::warn!(document_id = %doc, "an object for no known document");
                }
                Err(e) => {
                    tracing::error!(document_id = %doc, error = %e, "upload could not be completed");
                    report.status = "error";
                }
            }
        }
        report
    }
}

fn submitted_view(
    i: &portal_shared::domain::inspection::Inspection,
    report: Option<DocumentId>,
    changed: bool,
) -> ApiResult {
    let doc = report.and_then(|d| i.document(d)).map(|d| d.staff_view(i.id));
    json(
        StatusCode::OK,
        &json!({
            "inspection_id": i.id,
            "submitted_at": i.submitted_at.map(clock::rfc3339),
            "changed": changed,
            "report": doc,
        }),
    )
}

/// `companies/<c>/inspections/<i>/documents/<d>.pdf` → its ids.
pub fn parse_object_key(key: &str) -> Option<(CompanyId, InspectionId, DocumentId)> {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["companies", c, "inspections", i, "documents", d] => {
            Some((c.parse().ok()?, i.parse().ok()?, d.strip_suffix(".pdf")?.parse().ok()?))
        }
        _ => None,
    }
}

impl HttpFunction for Publish {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, &self.config, |req| self.route(req)).await
    }
}

/// What the scheduled job, the upload events and the email events report back.
#[derive(Debug, Default, serde::Serialize)]
pub struct JobReport {
    pub completed: usize,
    /// Payment events applied from the queue (and left for the next run).
    pub payments: payment_events::QueueReport,
    pub privacy_exports: privacy::ExportReport,
    pub privacy_erasures: privacy::ErasureReport,
    pub company_exports: offboarding::ExportReport,
    pub company_deletions: offboarding::DeletionReport,
    pub email_bodies_dropped: usize,
    pub published: usize,
    pub due: DueReport,
    pub reminders: portal_shared::usecases::reminders::ReminderReport,
    pub staff_alerts: portal_shared::usecases::staff_alerts::AlertReport,
    pub emails: DrainReport,
    pub email_events: portal_shared::usecases::email_events::EventReport,
    pub webhooks: WebhookReport,
    pub status: &'static str,
}

impl Publish {
    /// SES events (bounces, complaints, rejects, deliveries) from SNS; a failure to record one is
    /// an error, so Lambda retries the notification (applying one twice changes nothing more).
    pub async fn email_events(&self, events: &[Value]) -> JobReport {
        let mut report = JobReport { status: "ok", ..JobReport::default() };
        let now = self.now();
        for event in events {
            if let Err(e) =
                portal_shared::usecases::email_events::apply(&self.store, event, now, &mut report.email_events).await
            {
                tracing::error!(error = %e, "an email event could not be recorded");
                report.status = "error";
            }
        }
        report
    }

    /// The every-minute scheduled job: publishes what is due, then sends the outbox.
    pub async fn publish_due(&self) -> JobReport {
        self.run_at(self.now()).await
    }

    /// The job as if it ran at `now` (tests use it to reach schedule and retry times). It does
    /// all it can: a failure publishing documents still sends the outbox; the status says whether
    /// anything failed (`error`), for Lambda to retry and alarm on.
    pub async fn run_at(&self, now: time::OffsetDateTime) -> JobReport {
        let started = std::time::Instant::now();
        let mut report = JobReport { status: "ok", ..JobReport::default() };
        // Payment events a busy inspection could not take when they arrived, in the order received
        // (first: the receipts and "report ready" emails they queue go out in this run).
        let applier = payment_events::Applier { store: &self.store, livemode: self.config.payment_livemode };
        let queued = payment_events::apply_queued(
            &applier,
            now,
            MAX_QUEUED_PAYMENTS_PER_RUN,
            payment_events::QUEUED_BUDGET,
            Some(started + DUE_BUDGET),
        );
        match Box::pin(queued).await {
            Ok(p) => report.payments = p,
            Err(e) => {
                tracing::error!(error = %e, "queued payment events could not be applied");
                report.status = "error";
            }
        }
        let due = publishing::publish_due_within(&self.store, now, MAX_DUE_PER_RUN, Some(started + DUE_BUDGET));
        match Box::pin(due).await {
            Ok(due) => {
                report.published = due.published;
                report.due = due;
                if due.is_failure() {
                    report.status = "error";
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled publishing failed");
                report.status = "error";
            }
        }
        // Personal-data exports staff asked for.
        match Box::pin(privacy::make_exports(&self.store, &self.blobs, now, 20)).await {
            Ok(p) => {
                if p.failed > 0 {
                    report.status = "error";
                }
                report.privacy_exports = p;
            }
            Err(e) => {
                tracing::error!(error = %e, "privacy exports could not be made");
                report.status = "error";
            }
        }
        // Stored email bodies past the company's retention.
        match Box::pin(privacy::drop_email_bodies(&self.store, now, 500)).await {
            Ok(n) => report.email_bodies_dropped = n,
            Err(e) => {
                tracing::error!(error = %e, "email bodies past retention could not be dropped");
                report.status = "error";
            }
        }
        // Erasures staff asked for, in bounded steps.
        match Box::pin(privacy::run_erasures(&self.store, &self.blobs, now, 50, Some(started + DUE_BUDGET))).await {
            Ok(p) => {
                if p.errors > 0 {
                    report.status = "error";
                }
                report.privacy_erasures = p;
            }
            Err(e) => {
                tracing::error!(error = %e, "privacy erasures failed");
                report.status = "error";
            }
        }
        // Companies leaving: their exports, then their deletions in bounded steps.
        let exports = offboarding::make_exports(&self.store, &self.blobs, now, 2, Some(started + DUE_BUDGET));
        match Box::pin(exports).await {
            Ok(p) => {
                if p.failed > 0 {
                    report.status = "error";
                }
                report.company_exports = p;
            }
            Err(e) => {
                tracing::error!(error = %e, "company exports could not be made");
                report.status = "error";
            }
        }
        let deletions = offboarding::run_deletions(&self.store, &self.blobs, now, 20, Some(started + DUE_BUDGET));
        match Box::pin(deletions).await {
            Ok(p) => {
                if p.errors > 0 {
                    report.status = "error";
                }
                report.company_deletions = p;
            }
            Err(e) => {
                tracing::error!(error = %e, "company deletions failed");
                report.status = "error";
            }
        }
        // Staff alerts waiting, queued for the outbox run that follows.
        match Box::pin(staff_alerts::queue_due(&self.store, now, 500)).await {
            Ok(a) => {
                if a.errors > 0 {
                    report.status = "error";
                }
                report.staff_alerts = a;
            }
            Err(e) => {
                tracing::error!(error = %e, "staff alerts could not be queued");
                report.status = "error";
            }
        }
        // Reminders due by now, queued for the outbox run that follows.
        let reminders = reminders::queue_due(&self.store, now, MAX_DUE_PER_RUN, Some(started + DUE_BUDGET));
        match Box::pin(reminders).await {
            Ok(r) => {
                if r.errors > 0 {
                    report.status = "error";
                }
                report.reminders = r;
            }
            Err(e) => {
                tracing::error!(error = %e, "reminders could not be queued");
                report.status = "error";
            }
        }
        match &self.mailer {
            None => {
                tracing::error!("SENDER_EMAIL is not configured: the outbox cannot be sent");
                report.status = "no_sender";
            }
            Some(mailer) => {
                let drain = outbox::drain(
                    &self.store,
                    mailer,
                    &self.blobs,
                    &self.config.public_base_url,
                    now,
                    MAX_EMAILS_PER_RUN,
                    Some(started + EMAIL_BUDGET),
                );
                match Box::pin(drain).await {
                    Ok(emails) => report.emails = emails,
                    Err(e) => {
                        tracing::error!(error = %e, "outbox run failed");
                        report.status = "error";
                    }
                }
            }
        }
        // Outbound webhooks: events since the last run fanned out, due deliveries sent (each
        // at most 10 s, started before the job's budget ends, so all end inside its timeout).
        let hooks = self.webhooks.run(&self.store, now, MAX_WEBHOOKS_PER_RUN, started + JOB_BUDGET);
        match Box::pin(hooks).await {
            Ok(hooks) => report.webhooks = hooks,
            Err(e) => {
                tracing::error!(error = %e, "webhook deliveries failed");
                report.status = "error";
            }
        }
        report
    }
}

/// Why an invocation failed (Lambda records it as an error).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Failed(String),
    /// Not an event this function runs: refused, never taken for a scheduled run.
    #[error("unrecognised event: {0}")]
    Unrecognized(String),
    #[error("event: {0}")]
    Event(#[from] serde_json::Error),
}

/// The kinds of event the publish function runs (besides HTTP requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// The every-minute schedule: its input (`{"job": "publish-due"}`), or `{}`.
    Scheduled,
    /// S3 object-created records.
    Uploads,
    /// SES events through SNS.
    EmailEvents,
}

fn job_kind(event: &Value) -> Option<Job> {
    if event == &serde_json::json!({}) || event == &serde_json::json!({ "job": "publish-due" }) {
        return Some(Job::Scheduled);
    }
    if portal_shared::usecases::email_events::from_sns(event).is_some() {
        return Some(Job::EmailEvents);
    }
    let records = event.get("Records")?.as_array()?;
    (!records.is_empty() && records.iter().all(|r| r["eventSource"] == "aws:s3")).then_some(Job::Uploads)
}

/// The top-level keys of an event, for the log and the error (never its values).
fn shape(event: &Value) -> String {
    match event.as_object() {
        Some(o) => format!("an object with {:?}", o.keys().collect::<Vec<_>>()),
        None => "not a JSON object".into(),
    }
}

/// The event a failed-events queue message stands for: Lambda's on-failure record of an
/// asynchronous invocation (the event is its `requestPayload`: S3 and SNS events, and schedule
/// runs that failed in the function), an SNS notification its subscription could not deliver (the
/// function receives it as one SNS record), or the schedule's own input (what EventBridge
/// Scheduler parks when it cannot invoke). `None` for anything else.
pub fn failed_event(message: &Value) -> Option<Value> {
    let message = match message.as_str() {
        // The message body as SQS holds it: a JSON text.
        Some(text) => serde_json::from_str(text).ok()?,
        None => message.clone(),
    };
    let event = if let Some(payload) = message.get("requestPayload") {
        payload.clone()
    } else if message["Type"] == "Notification" && message.get("TopicArn").is_some() {
        serde_json::json!({ "Records": [{ "EventSource": "aws:sns", "EventVersion": "1.0", "Sns": message }] })
    } else {
        message
    };
    job_kind(&event).map(|_| event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event() -> Value {
        json!({ "Records": [{ "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": { "bucket": { "name": "b" }, "object": { "key": "companies/x/inspections/y/documents/z.pdf" } } }] })
    }

    #[test]
    fn only_the_events_this_function_runs_are_recognised() {
        assert_eq!(job_kind(&json!({})), Some(Job::Scheduled));
        assert_eq!(job_kind(&json!({ "job": "publish-due" })), Some(Job::Scheduled));
        assert_eq!(job_kind(&s3_event()), Some(Job::Uploads));
        let sns = json!({ "Records": [{ "EventSource": "aws:sns", "Sns": { "Message": "{}" } }] });
        assert_eq!(job_kind(&sns), Some(Job::EmailEvents));
        for other in [
            json!({ "job": "drop-tables" }),
            json!({ "Records": [] }),
            json!({ "Records": [{ "eventSource": "aws:sqs", "body": "{}" }] }),
            json!({ "detail-type": "Scheduled Event", "source": "aws.events" }),
            json!([1, 2]),
        ] {
            assert_eq!(job_kind(&other), None, "{other}");
        }
        assert_eq!(shape(&json!({ "detail-type": 1 })), "an object with [\"detail-type\"]");
    }

    #[test]
    fn failed_events_queue_messages_unwrap_to_the_event_that_failed() {
        // Lambda's on-failure destination record (asynchronous invocation), as a message body.
        let record = json!({ "version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
            "requestContext": { "requestId": "e4b46cbf", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:publish:$LATEST",
                "condition": "RetriesExhausted", "approximateInvokeCount": 3 },
            "requestPayload": s3_event(),
            "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
            "responsePayload": { "errorMessage": "the job finished with status error" } });
        assert_eq!(failed_event(&Value::String(record.to_string())), Some(s3_event()));
        // An SNS notification its subscription could not deliver.
        let notification = json!({ "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:email-events",
            "Message": "{\"eventType\":\"Delivery\"}", "Timestamp": "2026-01-01T00:00:00.000Z" });
        let unwrapped = failed_event(&notification).unwrap();
        assert_eq!(job_kind(&unwrapped), Some(Job::EmailEvents));
        assert_eq!(unwrapped["Records"][0]["Sns"]["Message"], "{\"eventType\":\"Delivery\"}");
        // The schedule's input, parked by EventBridge Scheduler.
        assert_eq!(failed_event(&json!({ "job": "publish-due" })), Some(json!({ "job": "publish-due" })));
        // Anything else is not replayed.
        assert_eq!(failed_event(&json!({ "requestPayload": { "surprise": true } })), None);
        assert_eq!(failed_event(&Value::String("not json".into())), None);
    }
}
