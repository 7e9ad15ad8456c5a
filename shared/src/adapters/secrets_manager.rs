//! Secrets kept in AWS Secrets Manager (the admin key, the payment webhook signing secrets, the
//! Stripe key), never in environment variables: the environment names the secret (its ARN), the
//! function reads the value when it first needs it and keeps it for a short while
//! (`SECRETS_CACHE_SECONDS`, default 300), so a rotated value is in use within minutes without a
//! deploy. Each function's policy lets it read only the secrets it uses.
//!
//! A secret's value is one string; several comma-separated values are all valid at once (how a
//! webhook secret is rotated without refusing a delivery). An empty value, or `unset` (what the
//! template creates before an operator puts the real one), means not configured.
//!
//! If Secrets Manager cannot be reached when the cache expires, the previous value keeps being
//! used (and a warning logged); with no previous value the request gets `503` with `Retry-After`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::foundation::credentials::Secret;
use crate::foundation::problem::Transient;

/// What the template stores until an operator puts the real value.
pub const UNSET: &str = "unset";

/// How long a value is used before it is read again (`SECRETS_CACHE_SECONDS`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager unavailable: {0}")]
    Unavailable(#[source] Transient),
    #[error("reading the secret failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
struct Cached {
    read_at: Instant,
    values: Arc<Vec<Secret>>,
}

/// The Secrets Manager client and the cache of this process (built once per cold start).
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(sdk: &aws_config::SdkConfig, ttl: Duration) -> Self {
        let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(crate::adapters::roundtrips::OperationRecorder)
            .build();
        Secrets { client: aws_sdk_secretsmanager::Client::from_conf(conf), ttl, cache: Default::default() }
    }

    /// The values of the secret `id` (empty when it is not configured).
    pub async fn values(&self, id: &str) -> Result<Arc<Vec<Secret>>, SecretError> {
        let mut cache = self.cache.lock().await;
        let cached = cache.get(id).cloned();
        if let Some(c) = &cached {
            if c.read_at.elapsed() < self.ttl {
                return Ok(c.values.clone());
            }
        }
        match self.read(id).await {
            Ok(values) => {
                let values = Arc::new(values);
                cache.insert(id.to_owned(), Cached { read_at: Instant::now(), values: values.clone() });
                Ok(values)
            }
            Err(e) => match cached {
                // Keep serving with the value we had rather than failing every request.
                Some(c) => {
                    tracing::warn!(error = %e, "a secret could not be refreshed; the previous value stays in use");
                    Ok(c.values)
                }
                None => Err(e),
            },
        }
    }

    /// The first value of the secret `id`, if it is configured.
    /// Reads (and caches) secret `id` during init: the connection is open and the value ready
    /// for the first request. A failure is left for that request to meet.
    pub async fn warm_up(&self, id: &str) {
        let _ = self.values(id).await;
    }

    pub async fn value(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.values(id).await?.first().cloned())
    }

    async fn read(&self, id: &str) -> Result<Vec<Secret>, SecretError> {
        let out = self.client.get_secret_value().secret_id(id).send().await.map_err(|e| {
            let chain = crate::foundation::problem::error_chain(&e);
            if crate::foundation::problem::is_transient(&e) {
                SecretError::Unavailable(Transient(chain))
            } else {
                SecretError::Failed(chain)
            }
        })?;
        Ok(parse(out.secret_string().unwrap_or_default()))
    }
}

/// `a, b,` → [a, b]; empty or `unset` → [].
pub fn parse(value: &str) -> Vec<Secret> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != UNSET).map(Secret::new).collect()
}

/// A [`SecretError`] as an answer: `503` when Secrets Manager is unavailable, `500` otherwise.
impl From<SecretError> for crate::ApiError {
    fn from(e: SecretError) -> Self {
        crate::ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_comma_separated_and_unset_means_none() {
        let v = parse(" whsec_new, whsec_old ,");
        assert_eq!(v.iter().map(Secret::expose).collect::<Vec<_>>(), ["whsec_new", "whsec_old"]);
        assert!(parse("unset").is_empty());
        assert!(parse("").is_empty());
    }
}
