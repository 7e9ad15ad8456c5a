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
    /// S3 did not answer in time, refused the connection or throttled: retry later.
    #[error("S3 unavailable: {0}")]
    Unavailable(#[source] crate::foundation::problem::Transient),
}

impl BlobError {
    fn sdk<E>(e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let chain = crate::foundation::problem::error_chain(e);
        if crate::foundation::problem::is_transient(e) {
            BlobError::Unavailable(crate::foundation::problem::Transient(chain))
        } else {
            BlobError::Sdk(chain)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    region: String,
}

/// A browser-style upload S3 checks for us: POST `url` as multipart form data with `fields`
/// first, then the `file` part. The signed policy limits the key, the content type and the size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresignedPost {
    pub method: &'static str,
    pub url: String,
    pub fields: std::collections::BTreeMap<String, String>,
}

/// The bucket URL of a presigned object URL (`…/bucket/key?…` or `https://bucket.host/key?…`).
fn bucket_url(presigned: &str, key: &str) -> Option<String> {
    let base = presigned.split('?').next()?;
    base.strip_suffix(key).map(|b| b.trim_end_matches('/').to_owned())
}

struct PostInput<'a> {
    url: String,
    bucket: &'a str,
    key: &'a str,
    content_type: &'a str,
    max_bytes: i64,
    access_key: &'a str,
    secret: &'a str,
    session_token: Option<&'a str>,
    region: &'a str,
    now: time::OffsetDateTime,
    expires: time::Duration,
}

/// The POST policy and its SigV4 signature (what the AWS SDKs' "presigned POST" helpers build).
fn post_policy(p: &PostInput) -> PresignedPost {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    let fmt = |f: &[time::format_description::FormatItem<'_>], t: time::OffsetDateTime| t.format(f).unwrap_or_default();
    let date = fmt(time::macros::format_description!("[year][month][day]"), p.now);
    let amz_date = fmt(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"), p.now);
    let expiration =
        fmt(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z"), p.now + p.expires);
    let credential = format!("{}/{date}/{}/s3/aws4_request", p.access_key, p.region);
    let mut fields = std::collections::BTreeMap::from([
        ("key".to_owned(), p.key.to_owned()),
        ("Content-Type".to_owned(), p.content_type.to_owned()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential.clone()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ]);
    let mut conditions = vec![
        serde_json::json!({ "bucket": p.bucket }),
        serde_json::json!({ "key": p.key }),
        serde_json::json!({ "Content-Type": p.content_type }),
        serde_json::json!(["content-length-range", 1, p.max_bytes]),
        serde_json::json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }),
        serde_json::json!({ "x-amz-credential": credential }),
        serde_json::json!({ "x-amz-date": amz_date }),
    ];
    if let Some(t) = p.session_token {
        fields.insert("x-amz-security-token".into(), t.to_owned());
        conditions.push(serde_json::json!({ "x-amz-security-token": t }));
    }
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
    let encoded = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let key = hmac(&hmac(&hmac(&hmac(format!("AWS4{}", p.secret).as_bytes(), &date), p.region), "s3"), "aws4_request");
    fields.insert("policy".into(), encoded.clone());
    fields.insert("x-amz-signature".into(), hex::encode(hmac(&key, &encoded)));
    PresignedPost { method: "POST", url: p.url.clone(), fields }
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
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .interceptor(crate::adapters::roundtrips::OperationRecorder)
            .build();
        Blobs {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: bucket.into(),
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// A presigned PUT (`application/pdf`). Uploads use [`Blobs::presign_pdf_post`], whose policy
    /// also limits the size; this serves to learn the bucket's URL as the SDK addresses it.
    async fn presign_pdf_upload(&self, key: &str, expires: Duration) -> Result<String, BlobError> {
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

    /// A presigned POST for exactly `key`: `application/pdf`, 1 byte to `max_bytes`, valid for
    /// `expires`. S3 refuses anything else before storing it.
    pub async fn presign_pdf_post(
        &self,
        key: &str,
        max_bytes: i64,
        expires: Duration,
    ) -> Result<PresignedPost, BlobError> {
        self.presign_post(key, "application/pdf", max_bytes, expires).await
    }

    /// A presigned POST of exactly `content_type`, at most `max_bytes`, at `key` only.
    pub async fn presign_post(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: i64,
        expires: Duration,
    ) -> Result<PresignedPost, BlobError> {
        use aws_credential_types::provider::ProvideCredentials;
        crate::adapters::roundtrips::record_call("S3", "PutObject");
        let creds = self
            .credentials
            .as_ref()
            .ok_or_else(|| BlobError::Presign("no credentials".into()))?
            .provide_credentials()
            .await
            .map_err(|e| BlobError::Presign(e.to_string()))?;
        // The bucket's URL, as the SDK addresses it (path style or virtual host).
        let probe = self.presign_pdf_upload(key, expires).await?;
        let url = bucket_url(&probe, key).ok_or_else(|| BlobError::Presign("unexpected presigned URL".into()))?;
        let now = time::OffsetDateTime::now_utc();
        let expires = time::Duration::try_from(expires).map_err(|e| BlobError::Presign(e.to_string()))?;
        Ok(post_policy(&PostInput {
            url,
            bucket: &self.bucket,
            key,
            content_type,
            max_bytes,
            access_key: creds.access_key_id(),
            secret: creds.secret_access_key(),
            session_token: creds.session_token(),
            region: &self.region,
            now,
            expires,
        }))
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
        self.presign_download(key, version, "application/pdf", file_name, expires).await
    }

    /// A presigned GET of `key` (exactly `version` when known) served as `content_type`, named
    /// `file_name`.
    pub async fn presign_download(
        &self,
        key: &str,
        version: Option<&str>,
        content_type: &str,
        file_name: &str,
        expires: Duration,
    ) -> Result<String, BlobError> {
        crate::adapters::roundtrips::record_call("S3", "GetObject");
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
            .response_content_type(content_type)
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
            .map_err(|e| BlobError::sdk(&e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(crate::foundation::problem::Transient(e.to_string())))?
            .into_bytes();
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
            .map_err(|e| BlobError::sdk(&e))
    }

    /// Deletes every version (and delete marker) of every object under `prefix`, for good;
    /// returns how many versions went.
    pub async fn delete_all_versions(&self, prefix: &str) -> Result<usize, BlobError> {
        let mut deleted = 0;
        loop {
            match self.delete_versions_page(prefix, 1000).await? {
                0 => return Ok(deleted),
                n => deleted += n,
            }
        }
    }

    /// Deletes at most `max` object versions (and delete markers) under `prefix`, one listing
    /// page: a bounded step of a larger deletion. Returns how many went (0: nothing is left).
    pub async fn delete_versions_page(&self, prefix: &str, max: i32) -> Result<usize, BlobError> {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max)
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        let versions: Vec<(String, Option<String>)> = out
            .versions()
            .iter()
            .map(|v| (v.key().unwrap_or_default().to_owned(), v.version_id().map(str::to_owned)))
            .chain(
                out.delete_markers()
                    .iter()
                    .map(|m| (m.key().unwrap_or_default().to_owned(), m.version_id().map(str::to_owned))),
            )
            .collect();
        for (key, version) in &versions {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(version.clone())
                .send()
                .await
                .map_err(|e| BlobError::sdk(&e))?;
        }
        Ok(versions.len())
    }

    /// Deletes every version of `key` but the current one (what a replaced file said goes for
    /// good: an erased person's name in a report rendered before). Returns how many went.
    pub async fn delete_older_versions(&self, key: &str) -> Result<usize, BlobError> {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        let mut deleted = 0;
        for v in out.versions().iter().filter(|v| v.key() == Some(key) && v.is_latest() != Some(true)) {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(v.version_id().map(str::to_owned))
                .send()
                .await
                .map_err(|e| BlobError::sdk(&e))?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Starts a multipart upload (for objects made a part at a time: a company's export).
    pub async fn start_upload(&self, key: &str, content_type: &str) -> Result<String, BlobError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        out.upload_id().map(str::to_owned).ok_or_else(|| BlobError::Sdk("no upload id".into()))
    }

    /// One part (at least 5 MiB, but for the last); returns its ETag.
    pub async fn upload_part(&self, key: &str, upload: &str, n: i32, bytes: Vec<u8>) -> Result<String, BlobError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .part_number(n)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        out.e_tag().map(str::to_owned).ok_or_else(|| BlobError::Sdk("no ETag".into()))
    }

    /// Completes a multipart upload from its parts' ETags, in order.
    pub async fn finish_upload(&self, key: &str, upload: &str, etags: &[String]) -> Result<(), BlobError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = etags
            .iter()
            .enumerate()
            .map(|(n, e)| CompletedPart::builder().part_number(n as i32 + 1).e_tag(e).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        Ok(())
    }

    /// Gives up a multipart upload (its parts are dropped).
    pub async fn abort_upload(&self, key: &str, upload: &str) -> Result<(), BlobError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .send()
            .await
            .map_err(|e| BlobError::sdk(&e))?;
        Ok(())
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
            .map_err(|e| BlobError::sdk(&e))?;
        Ok(out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(crate::foundation::problem::Transient(e.to_string())))?
            .into_bytes()
            .to_vec())
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => Ok(Some(ObjectInfo {
                content_type: o.content_type().map(str::to_owned),
                size: o.content_length().unwrap_or(0),
                version_id: o.version_id().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(BlobError::sdk(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_post_policy_limits_key_type_size_and_time_and_is_signed_as_sigv4() {
        // A pinned instant: the policy's expiry is computed from the `now` it is given.
        let now = time::macros::datetime!(2026-11-23 11:55:00 UTC);
        let post = post_policy(&PostInput {
            url: "https://docs.s3.us-east-1.amazonaws.com".into(),
            bucket: "docs",
            key: "companies/c/inspections/i/documents/d.pdf",
            content_type: "application/pdf",
            max_bytes: 50 * 1024 * 1024,
            access_key: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
            now,
            expires: time::Duration::minutes(15),
        });
        let policy: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&post.fields["policy"]).unwrap())
                .unwrap();
        assert_eq!(policy["expiration"], "2026-11-23T12:10:00.000Z", "15 minutes");
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&serde_json::json!(["content-length-range", 1, 52_428_800])));
        assert!(conditions.contains(&serde_json::json!({ "Content-Type": "application/pdf" })));
        assert!(conditions.contains(&serde_json::json!({ "key": "companies/c/inspections/i/documents/d.pdf" })));
        assert!(conditions.contains(&serde_json::json!({ "bucket": "docs" })));
        assert_eq!(post.fields["x-amz-credential"], "AKIDEXAMPLE/20261123/us-east-1/s3/aws4_request");
        // The signature, computed here independently: HMAC chain over the base64 policy.
        use hmac::{Hmac, Mac};
        let h = |k: &[u8], d: &[u8]| {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
            m.update(d);
            m.finalize().into_bytes().to_vec()
        };
        let k = h(
            &h(&h(&h(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20261123"), b"us-east-1"), b"s3"),
            b"aws4_request",
        );
        assert_eq!(post.fields["x-amz-signature"], hex::encode(h(&k, post.fields["policy"].as_bytes())));
    }

    #[test]
    fn the_bucket_url_comes_from_the_sdk_s_own_addressing() {
        let key = "companies/c/d.pdf";
        assert_eq!(
            bucket_url("http://127.0.0.1:9/b/companies/c/d.pdf?X-Amz-Date=1", key).unwrap(),
            "http://127.0.0.1:9/b"
        );
        assert_eq!(
            bucket_url("https://b.s3.us-east-1.amazonaws.com/companies/c/d.pdf?x", key).unwrap(),
            "https://b.s3.us-east-1.amazonaws.com"
        );
    }
}
