//! Getting a PDF to a person: the `303` to a short-lived presigned S3 GET (the only place an S3
//! URL ever appears), or the locked answer saying what to do.

use std::time::Duration;

use http::StatusCode;
use lambda_http::Request;

use crate::adapters::s3::Blobs;
use crate::domain::document::{object_key, Document};
use crate::domain::gate::LockReason;
use crate::domain::inspection::Inspection;
use crate::web::http::{wants_json, ApiResult};
use crate::{web::pages, ApiError};

/// How long a download link works. Short: it is a bearer URL.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(300);

/// `303 See Other` to a presigned GET of the document's PDF, saved under its portal name. The
/// URL is never logged or stored; it exists only in this response's `Location`.
pub async fn redirect(blobs: &Blobs, inspection: &Inspection, doc: &Document) -> ApiResult {
    let key = object_key(inspection.company_id, inspection.id, doc.id);
    redirect_to(blobs, &key, doc.verified_version.as_deref(), &doc.file_name()).await
}

/// `303` to a presigned GET of the object at `key` (exactly `version`, when known), saved as
/// `file_name`.
pub async fn redirect_to(blobs: &Blobs, key: &str, version: Option<&str>, file_name: &str) -> ApiResult {
    let url =
        blobs.presign_pdf_download(key, version, file_name, DOWNLOAD_URL_TTL).await.map_err(ApiError::internal)?;
    pages::see_other(&url)
}

/// `403` for a locked document: problem+json with every `lock_reasons` entry, or (for a browser)
/// a page saying what to do, linking back to `portal` when given.
pub fn locked(
    req: &Request,
    inspection: &Inspection,
    doc: &Document,
    reasons: &[LockReason],
    portal: Option<&str>,
) -> ApiResult {
    let steps: Vec<String> = reasons.iter().map(|r| r.describe(inspection.currency)).collect();
    let detail = format!("{} is locked: {}", doc.display_name(), steps.join("; "));
    if wants_json(req) || !accepts_html(req) {
        let lock_reasons = serde_json::to_value(reasons).map_err(ApiError::internal)?;
        return Err(ApiError::Locked { detail, lock_reasons });
    }
    pages::html(StatusCode::FORBIDDEN, pages::locked(&doc.display_name(), &steps, portal))
}

fn accepts_html(req: &Request) -> bool {
    req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}
