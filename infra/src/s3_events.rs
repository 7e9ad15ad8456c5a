//! S3 `ObjectCreated` events for the local stack, delivered to the publish function the way AWS
//! delivers them: a poll of the bucket's object versions finds each new version under
//! `companies/` and sends its record (key URL-encoded, size, version, eTag) in an S3 event to
//! `Publish::dispatch`, at least once and sometimes twice, in the background, so nothing waits for
//! it and nothing may count on it arriving first.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::functions::Functions;

pub struct S3Events {
    functions: Arc<Functions>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    seen: tokio::sync::Mutex<HashSet<String>>,
    parked: tokio::sync::Mutex<Vec<Value>>,
}

impl S3Events {
    pub fn new(sdk: &aws_config::SdkConfig, functions: Arc<Functions>, bucket: String, path_style: bool) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        S3Events {
            functions,
            s3: aws_sdk_s3::Client::from_conf(conf),
            bucket,
            seen: Default::default(),
            parked: Default::default(),
        }
    }

    /// Delivers the events of every object version created since the last poll; returns how many
    /// records were delivered (duplicates included).
    pub async fn poll_once(&self) -> usize {
        let Ok(out) = self.s3.list_object_versions().bucket(&self.bucket).prefix("companies/").send().await else {
            return 0;
        };
        let mut records = Vec::new();
        let mut seen = self.seen.lock().await;
        for v in out.versions() {
            let (Some(key), Some(version)) = (v.key(), v.version_id()) else { continue };
            if !seen.insert(format!("{key}#{version}")) {
                continue;
            }
            records.push(record(&self.bucket, key, version, v.size().unwrap_or(0), v.e_tag().unwrap_or_default()));
        }
        drop(seen);
        let mut delivered = 0;
        for r in records {
            // At least once, sometimes twice (S3 does not promise exactly once).
            let copies = if ulid::Ulid::new().random().is_multiple_of(3) { 2 } else { 1 };
            for _ in 0..copies {
                self.invoke(json!({ "Records": [r.clone()] })).await;
                delivered += 1;
            }
        }
        delivered
    }

    /// An asynchronous invocation as Lambda makes it: the event, and on failure two retries (Lambda
    /// waits about 1 and 2 minutes; here 1 and 2 seconds), then the on-failure destination (here:
    /// [`S3Events::parked`] and an error log line).
    async fn invoke(&self, event: Value) {
        for attempt in 0..=2u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            match self.functions.publish.dispatch(event.clone(), None).await {
                Ok(_) => return,
                Err(e) => tracing::warn!(error = %e, attempt, "the S3 event failed"),
            }
        }
        tracing::error!("the S3 event failed three times: parked (on-failure destination)");
        self.parked.lock().await.push(event);
    }

    /// Events that failed every attempt (what the template's on-failure queue would hold).
    pub async fn parked(&self) -> Vec<Value> {
        self.parked.lock().await.clone()
    }

    /// Polls every `every` until the task is aborted.
    pub fn run(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                self.poll_once().await;
            }
        })
    }
}

/// One `ObjectCreated:Put` record as S3 sends it (the key URL-encoded, spaces as `+`).
fn record(bucket: &str, key: &str, version: &str, size: i64, etag: &str) -> Value {
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>().replace("%2F", "/");
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": portal_shared::foundation::clock::rfc3339(time::OffsetDateTime::now_utc()),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": encoded, "size": size, "eTag": etag.trim_matches('"'), "versionId": version }
        }
    })
}
