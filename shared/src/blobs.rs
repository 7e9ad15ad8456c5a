//! S3 adapter for document PDFs: presigned uploads and downloads, and checking what was uploaded.
//! Presigned URLs are returned to the caller and never logged or stored.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("S3 request failed: {0}")]
    Sdk(String),
    #[error("presigning failed: {0}")]
    Presign(String),
}

#[derive(Clone, Debug)]
pub struct Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// What a HEAD of an uploaded object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub content_type: Option<String>,
    pub size: i64,
    /// The object version (the bucket is versioned): what exactly was checked.
    pub version_id: Option<String>,
}

impl Blobs {
    /// `path_style` comes from `Config::s3_force_path_style` (emulators without virtual hosts).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>, path_style: bool) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        Blobs { client: aws_sdk_s3::Client::from_conf(conf), bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// A presigned PUT that only accepts `application/pdf`.
    pub async fn presign_pdf_upload(&self, key: &str, expires: Duration) -> Result<String, BlobError> {
        let cfg = PresigningConfig::expires_in(expires).map_err(|e| BlobError::Presign(e.to_string()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/pdf")
            .presigned(cfg)
            .await
            .map_err(|e| BlobError::Presign(e.to_string()))?;
        Ok(req.uri().to_owned())
    }

    /// A presigned GET of exactly `version` (when known) that makes the browser save the file
    /// under `file_name`.
    pub async fn presign_pdf_download(
        &self,
        key: &str,
        version: Option<&str>,
        file_name: &str,
        expires: Duration,
    ) -> Result<String, BlobError> {
        let cfg = PresigningConfig::expires_in(expires).map_err(|e| BlobError::Presign(e.to_string()))?;
        let safe: String = file_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || " -_.()".contains(c) { c } else { '_' })
            .collect();
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .response_content_type("application/pdf")
            .response_content_disposition(format!("inline; filename=\"{safe}\""))
            .presigned(cfg)
            .await
            .map_err(|e| BlobError::Presign(e.to_string()))?;
        Ok(req.uri().to_owned())
    }

    /// The first `n` bytes of an object version (a ranged GET).
    pub async fn first_bytes(&self, key: &str, version: Option<&str>, n: usize) -> Result<Vec<u8>, BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .range(format!("bytes=0-{}", n.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| BlobError::Sdk(crate::problem::error_chain(&e)))?;
        let bytes = out.body.collect().await.map_err(|e| BlobError::Sdk(e.to_string()))?.into_bytes();
        Ok(bytes.iter().take(n).copied().collect())
    }

    /// Stores an object; returns the version S3 gave it.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<Option<String>, BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .map(|o| o.version_id().map(str::to_owned))
            .map_err(|e| BlobError::Sdk(crate::problem::error_chain(&e)))
    }

    /// The whole object version (for attaching a PDF to an email).
    pub async fn read(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, BlobError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| BlobError::Sdk(crate::problem::error_chain(&e)))?;
        Ok(out.body.collect().await.map_err(|e| BlobError::Sdk(e.to_string()))?.into_bytes().to_vec())
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => Ok(Some(ObjectInfo {
                content_type: o.content_type().map(str::to_owned),
                size: o.content_length().unwrap_or(0),
                version_id: o.version_id().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(BlobError::Sdk(crate::problem::error_chain(&e))),
        }
    }
}
