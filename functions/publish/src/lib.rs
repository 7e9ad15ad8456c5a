//! The publish function: manual, automatic, scheduled and event-driven publishing and the
//! notifications they send. One Lambda receives three kinds of events: HTTP API requests (staff
//! publishing), the every-minute schedule, and S3 object-created events.
//!
//! Built so far: manual publish and unpublish of one document (`POST /staff/documents/{id}/publish`
//! and `/unpublish`). Publishing what is published changes nothing. Bulk publishing, submitting
//! inspections, the schedule, upload events and notifications answer 501 / report
//! `not_implemented` until issue 6.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::entry::HttpFunction;
use portal_shared::http::{json, segments, serve, ApiResult};
use portal_shared::ids::DocumentId;
use portal_shared::mailer::Mailer;
use portal_shared::outbox::{self, DrainReport};
use portal_shared::store::Store;
use portal_shared::{auth, by_method, clock, publishing, ApiError, Config};
use serde_json::json;

pub struct Publish {
    config: Config,
    store: Store,
    mailer: Option<Mailer>,
}

impl Publish {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Publish {
            store: Store::new(sdk, config.table_name.clone()),
            mailer: config.sender_email.clone().map(|s| Mailer::new(sdk, s)),
            config,
        }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["staff", "documents", id, action @ ("publish" | "unpublish")] => {
                by_method!(req; POST => self.set_published(&req, id, *action == "publish").await)
            }
            ["staff", "documents", "publish" | "unpublish"] => {
                by_method!(req; POST => Err(ApiError::NotImplemented("bulk publishing")))
            }
            ["staff", "inspections", _, "submit"] => {
                by_method!(req; POST => Err(ApiError::NotImplemented("submitting inspections")))
            }
            _ => Err(ApiError::NotFound),
        }
    }

    async fn set_published(&self, req: &Request, id: &str, publish: bool) -> ApiResult {
        let staff = auth::staff(&self.store, req).await?;
        let id: DocumentId = id.parse().map_err(|_| ApiError::NotFound)?;
        let company = self.store.company(staff.company_id).await?.ok_or(ApiError::Unauthorized)?;
        let (inspection, changed) = self
            .store
            .modify_document(staff.company_id, id, |i| {
                let now = clock::now();
                if publish {
                    publishing::publish(&company, i, id, now)
                } else {
                    Ok((i.unpublish_document(id, now)?, vec![]))
                }
            })
            .await?;
        let doc = inspection.document(id).ok_or(ApiError::NotFound)?;
        tracing::info!(document_id = %id, inspection_id = %inspection.id, publish, changed, "publish state set");
        json(StatusCode::OK, &json!({ "changed": changed, "document": doc.staff_view(inspection.id) }))
    }
}

impl HttpFunction for Publish {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, self.config.max_body_bytes, |req| self.route(req)).await
    }
}

/// What the scheduled job and the upload event report back.
#[derive(Debug, Default, serde::Serialize)]
pub struct JobReport {
    pub published: usize,
    pub emails: DrainReport,
    pub status: &'static str,
}

impl Publish {
    /// The every-minute scheduled job: sends what waits in the outbox. (Publishing documents whose
    /// `publish_at` is due arrives with issue 6.)
    pub async fn publish_due(&self) -> JobReport {
        self.run_at(clock::now()).await
    }

    /// The job as if it ran at `now` (tests use it to reach retry times).
    pub async fn run_at(&self, now: time::OffsetDateTime) -> JobReport {
        let Some(mailer) = &self.mailer else {
            tracing::error!("SENDER_EMAIL is not configured: the outbox cannot be sent");
            return JobReport { status: "no_sender", ..JobReport::default() };
        };
        match outbox::drain(&self.store, mailer, &self.config.public_base_url, now, 100).await {
            Ok(emails) => JobReport { published: 0, emails, status: "ok" },
            Err(e) => {
                tracing::error!(error = %e, "outbox run failed");
                JobReport { status: "error", ..JobReport::default() }
            }
        }
    }

    /// S3 object-created records. Not built yet.
    pub async fn uploads_completed(&self, records: usize) -> JobReport {
        tracing::warn!(records, "upload completion is not built yet");
        JobReport { status: "not_implemented", ..JobReport::default() }
    }
}
