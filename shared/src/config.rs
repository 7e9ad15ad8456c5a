//! Typed configuration, read once per cold start from the environment variables `template.yaml`
//! sets (and `scripts/dev` / the tests set locally).

use crate::email::Email;
use crate::secrets::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// The documents bucket (`BUCKET_NAME`); functions that never touch S3 leave it unset.
    pub bucket_name: Option<String>,
    /// The verified SES identity mail is sent from (`SENDER_EMAIL`).
    pub sender_email: Option<Email>,
    /// Where links in emails and API responses point (`PUBLIC_BASE_URL`, no trailing slash).
    pub public_base_url: String,
    /// The platform admin's key (`PLATFORM_ADMIN_KEY`); without it the admin routes answer 401.
    pub platform_admin_key: Option<Secret>,
    /// Payment webhook signing secrets (`PAYMENT_WEBHOOK_SECRETS`, comma-separated, for rotation).
    pub payment_webhook_secrets: Vec<Secret>,
    /// Largest request body accepted (`MAX_BODY_BYTES`); larger ones get 413.
    pub max_body_bytes: usize,
    /// Where Pay Now sends clients (`PAYMENT_PROVIDER`): `stripe` (Checkout Sessions with
    /// `STRIPE_SECRET_KEY`) or `dev` (the local gateway's checkout page). Unset: Pay Now is off.
    pub payment_provider: Option<String>,
    pub stripe_secret_key: Option<Secret>,
    /// Path-style S3 addressing (`S3_FORCE_PATH_STYLE=true`) for emulators without virtual hosts.
    pub s3_force_path_style: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

impl Config {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let table_name = non_empty("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let sender_email = non_empty("SENDER_EMAIL")
            .map(|v| Email::parse(&v).map_err(|e| ConfigError::Invalid("SENDER_EMAIL", e.to_string())))
            .transpose()?;
        let public_base_url = non_empty("PUBLIC_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:3000".into());
        if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid("PUBLIC_BASE_URL", "must start with http:// or https://".into()));
        }
        let max_body_bytes = match non_empty("MAX_BODY_BYTES") {
            None => Self::DEFAULT_MAX_BODY_BYTES,
            Some(v) => {
                v.parse().map_err(|_| ConfigError::Invalid("MAX_BODY_BYTES", "must be a number of bytes".into()))?
            }
        };
        Ok(Config {
            table_name,
            bucket_name: non_empty("BUCKET_NAME"),
            sender_email,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            platform_admin_key: non_empty("PLATFORM_ADMIN_KEY").map(Secret::new),
            payment_webhook_secrets: non_empty("PAYMENT_WEBHOOK_SECRETS")
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect())
                .unwrap_or_default(),
            max_body_bytes,
            payment_provider: non_empty("PAYMENT_PROVIDER"),
            stripe_secret_key: non_empty("STRIPE_SECRET_KEY").map(Secret::new),
            s3_force_path_style: non_empty("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn table_name_is_required() {
        assert!(matches!(cfg(&[]), Err(ConfigError::Missing("TABLE_NAME"))));
    }

    #[test]
    fn values_are_parsed_and_defaulted() {
        let c = cfg(&[
            ("TABLE_NAME", "t"),
            ("PUBLIC_BASE_URL", "https://portal.example.com/"),
            ("PAYMENT_WEBHOOK_SECRETS", "whsec_a, whsec_b,"),
            ("SENDER_EMAIL", "Reports@Example.com"),
        ])
        .unwrap();
        assert_eq!(c.public_base_url, "https://portal.example.com");
        assert_eq!(c.payment_webhook_secrets.len(), 2);
        assert_eq!(c.sender_email.unwrap().as_str(), "reports@example.com");
        assert_eq!(c.max_body_bytes, Config::DEFAULT_MAX_BODY_BYTES);
        assert!(c.platform_admin_key.is_none());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(cfg(&[("TABLE_NAME", "t"), ("SENDER_EMAIL", "nope")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("PUBLIC_BASE_URL", "ftp://x")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("MAX_BODY_BYTES", "lots")]).is_err());
    }
}
