//! The gate function: a client or agent opens a document of their inspection.
//!
//! `GET /p/{token}/documents/{id}`: one batched read (token, company, inspection), the pure gate
//! ([`portal_shared::domain::gate`]), one audit write, then a `303` to a presigned S3 GET that
//! expires in 5 minutes, a `403` with every lock reason (problem+json, or a page for browsers),
//! or a `404` for what the viewer may not know of (unpublished, missing, another inspection's).
//! Two DynamoDB round trips in all. Customer-portal documents (`/c/...`) arrive with issue 7.

use lambda_http::{Body, Request, Response};
use portal_shared::adapters::s3::Blobs;
use portal_shared::adapters::store::Store;
use portal_shared::domain::audit::{Actor, AuditAction, AuditRecord, ContactAudit, Outcome};
use portal_shared::domain::document::object_key;
use portal_shared::domain::gate::{self, Access, Viewer};
use portal_shared::foundation::ids::DocumentId;
use portal_shared::foundation::metrics::{self, Metric};
use portal_shared::usecases::customer_portal;
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{segments, ApiResult};
use portal_shared::{by_method, web::delivery, ApiError, Config};

pub struct Gate {
    config: Config,
    store: Store,
    blobs: Blobs,
}

impl Gate {
    /// Now, by this function's clock (the system clock on Lambda; a test's own in tests).
    fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Gate {
            store: Store::for_config(sdk, &config),
            blobs: Blobs::new(sdk, config.bucket_name.clone().unwrap_or_default(), config.s3_force_path_style),
            config,
        }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["p", token, "documents", id] => by_method!(req; GET => self.open(&req, token, id).await),
            ["c", token, "documents", id] => by_method!(req; GET => self.open_customer(token, id).await),
            ["brand", company, "logo"] => by_method!(req; GET => self.logo(company).await),
            ["p", token, "cover"] => by_method!(req; GET => self.cover(token).await),
            _ => Err(ApiError::NotFound),
        }
    }

    /// A company's logo, from this origin (the pages' CSP allows images from here): public, as a
    /// logo on a letterhead is, cached for a few minutes.
    async fn logo(&self, company: &str) -> ApiResult {
        let id: portal_shared::foundation::ids::CompanyId = company.parse().map_err(|_| ApiError::NotFound)?;
        let company = self.store.company(id).await?.ok_or(ApiError::NotFound)?;
        let key = company.settings.logo.ok_or(ApiError::NotFound)?;
        image(self.blobs.read(&key, None).await.map_err(ApiError::internal)?, "public, max-age=300")
    }

    /// The inspection's uploaded cover photo, for the holders of its links.
    async fn cover(&self, raw: &str) -> ApiResult {
        let (_, ctx) = self.store.resolve_portal(raw).await?;
        let key = ctx.inspection.cover_photo.clone().ok_or(ApiError::NotFound)?;
        image(self.blobs.read(&key, None).await.map_err(ApiError::internal)?, "private, max-age=300")
    }

    async fn open(&self, req: &Request, raw: &str, id: &str) -> ApiResult {
        let (token, ctx) = self.store.resolve_portal(raw).await?;
        let id: DocumentId = id.parse().map_err(|_| ApiError::NotFound)?;
        let person = ctx.person();
        let doc = ctx.inspection.document(id);
        let access = doc
            .map(|d| gate::decide(d, &ctx.inspection, &ctx.company, Viewer::Person(person.role)))
            .unwrap_or(Access::Hidden);
        let actor = Actor::Person { person_id: person.id, role: person.role, token_id: ctx.token.token_id };
        let audit = AuditRecord::document(ctx.inspection.id, AuditAction::DocumentOpen, actor, id, &access, self.now());
        // Nothing is delivered unrecorded: a failed audit write fails the request.
        self.store.record_person_audit(&ctx.company, &audit).await?;
        tracing::info!(
            inspection_id = %ctx.inspection.id,
            document_id = %id,
            token_id = %ctx.token.token_id,
            outcome = ?audit.outcome,
            "document open"
        );
        match (access, doc) {
            (Access::Available, Some(doc)) => {
                metrics::count(Metric::GateAllowed, 1);
                delivery::redirect(&self.blobs, &ctx.inspection, doc).await
            }
            (Access::Locked(reasons), Some(doc)) => {
                metrics::count(Metric::GateLocked, 1);
                let portal = format!("/p/{}", token.reveal());
                delivery::locked(req, &ctx.inspection, doc, &reasons, Some(&portal))
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

impl Gate {
    /// A building contact opens a published document of one of their buildings, of a type they
    /// may view: token read, one batched read of the document among their buildings, audit.
    async fn open_customer(&self, raw: &str, id: &str) -> ApiResult {
        let (_, ctx) = self.store.resolve_customer(raw).await?;
        let id: DocumentId = id.parse().map_err(|_| ApiError::NotFound)?;
        let found = customer_portal::find_document(&self.store, &ctx.company, &ctx.contact, id).await?;
        let actor = Actor::Contact { contact_id: ctx.contact.id, token_id: ctx.token.token_id };
        let outcome = if found.is_some() { Outcome::Allowed } else { Outcome::NotFound };
        let audit = ContactAudit::new(ctx.contact.id, AuditAction::DocumentOpen, actor, Some(id), outcome, self.now());
        self.store.record_contact_audit(ctx.company.id, &audit).await?;
        let (_, doc) = found.ok_or(ApiError::NotFound)?;
        metrics::count(Metric::GateAllowed, 1);
        let key = object_key(ctx.company.id, doc.inspection_id, doc.document_id);
        delivery::redirect_to(&self.blobs, &key, doc.verified_version.as_deref(), &format!("{}.pdf", doc.title)).await
    }
}

/// A stored image (checked to be a PNG or JPEG when it was set), as a response.
fn image(bytes: Vec<u8>, cache: &str) -> ApiResult {
    let content_type = if bytes.starts_with(b"\x89PNG") { "image/png" } else { "image/jpeg" };
    http::Response::builder()
        .status(http::StatusCode::OK)
        .header("content-type", content_type)
        .header("cache-control", cache)
        .header("x-content-type-options", "nosniff")
        .body(lambda_http::Body::Binary(bytes))
        .map_err(ApiError::internal)
}

impl HttpFunction for Gate {
    async fn handle(&self, req: Request) -> Response<Body> {
        portal_shared::web::pages::serve_pages(req, &self.config, |req| self.route(req)).await
    }

    /// DynamoDB only: the document's S3 link is signed here, without a call.
    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}
