//! Uploads staff make: how long an upload link works, and the check that what arrived really is
//! a PDF (the type it was sent as, a sane size, and the `%PDF-` signature of that very version).

use std::time::Duration;

use crate::adapters::s3::{Blobs, ObjectInfo};
use crate::ApiError;

/// How long an upload link works.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(900);
/// Largest PDF accepted.
pub const MAX_PDF_BYTES: i64 = 50 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadProblem {
    #[error("no PDF has been uploaded for this document yet")]
    Missing,
    #[error("the upload must be a PDF (Content-Type application/pdf), not {0}")]
    WrongType(String),
    #[error("the upload is empty or larger than 50 MiB")]
    BadSize,
    #[error("the uploaded file is not a PDF")]
    NotPdf,
}

/// The object now at `key` (its version), if any.
pub async fn current(blobs: &Blobs, key: &str) -> Result<Option<ObjectInfo>, ApiError> {
    blobs.head(key).await.map_err(ApiError::internal)
}

/// Checks an uploaded object version: `application/pdf`, a sane size, and starting with the PDF
/// signature `%PDF-` (read from that very version).
pub async fn verify_upload(blobs: &Blobs, key: &str, info: ObjectInfo) -> Result<Result<(), UploadProblem>, ApiError> {
    let ct = info.content_type.unwrap_or_default();
    if ct.split(';').next().unwrap_or_default().trim() != "application/pdf" {
        return Ok(Err(UploadProblem::WrongType(ct)));
    }
    if info.size <= 5 || info.size > MAX_PDF_BYTES {
        return Ok(Err(UploadProblem::BadSize));
    }
    let head = blobs.first_bytes(key, info.version_id.as_deref(), 5).await.map_err(ApiError::internal)?;
    if head != b"%PDF-" {
        return Ok(Err(UploadProblem::NotPdf));
    }
    Ok(Ok(()))
}
