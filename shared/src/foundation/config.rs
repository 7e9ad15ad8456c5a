//! Typed configuration, read once per cold start from the environment variables `template.yaml`
//! sets (and `scripts/dev` / the tests set locally).

use std::time::Duration;

use crate::foundation::email::Email;

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
    /// The Secrets Manager secret holding the platform admin's key (`PLATFORM_ADMIN_KEY_SECRET`,
    /// its ARN or name); without it the admin routes answer 401.
    pub platform_admin_key: Option<String>,
    /// The secret holding the payment webhook signing secrets (`PAYMENT_WEBHOOK_SECRETS_SECRET`;
    /// its value is comma-separated, several during a rotation).
    pub payment_webhook_secrets: Option<String>,
    /// How long a secret's value is used before it is read again (`SECRETS_CACHE_SECONDS`).
    pub secrets_cache: Duration,
    /// The SES configuration set every email is sent with (`SES_CONFIGURATION_SET`): its events
    /// (bounces, complaints, deliveries) come back to the publish function.
    pub ses_configuration_set: Option<String>,
    /// Largest request body accepted (`MAX_BODY_BYTES`); larger ones get 413.
    pub max_body_bytes: usize,
    /// Pay Now through Stripe Checkout: `PAYMENT_PROVIDER=stripe` with the secret holding the key
    /// (`STRIPE_SECRET_KEY_SECRET`). Without it (or with `none`) no Pay Now is offered and the
    /// portal says how to pay instead.
    pub stripe: Option<StripeConfig>,
    /// Whether payments made outside Pay Now must be live money (`PAYMENT_LIVEMODE=true`) or test
    /// money (default): a payment in the other mode is kept for staff, never applied.
    pub payment_livemode: bool,
    /// Path-style S3 addressing (`S3_FORCE_PATH_STYLE=true`) for emulators without virtual hosts.
    pub s3_force_path_style: bool,
    /// Whether every response carries `x-dynamodb-round-trips` (`ROUND_TRIPS_HEADER=true`): the
    /// local stack, the tests and the bench assert budgets on it; on AWS it tells the world nothing
    /// it needs, so it is off unless asked for.
    pub round_trips_header: bool,
    /// Where the functions read the time: the system clock, always, from the environment; a test
    /// gives its app an adjustable one.
    pub clock: crate::foundation::clock::Clock,
}

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// The Secrets Manager secret holding the API key (its ARN or name).
    pub secret_key: String,
    /// The API (`STRIPE_API_BASE`, default `https://api.stripe.com`).
    pub api_base: String,
    /// Where Checkout pages live (`STRIPE_CHECKOUT_ORIGIN`, default `https://checkout.stripe.com`):
    /// the portal's CSP lets Pay Now's form go there, and Pay Now redirects nowhere else.
    pub checkout_origin: String,
}

/// `scheme://host[:port]` with nothing after it.
fn origin(name: &'static str, v: String) -> Result<String, ConfigError> {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ', ';', ',', '\'']) => Ok(v),
        _ => Err(ConfigError::Invalid(name, "must be an origin such as https://host[:port]".into())),
    }
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
        let stripe = match non_empty("PAYMENT_PROVIDER").as_deref() {
            None | Some("none") => None,
            Some("stripe") => match non_empty("STRIPE_SECRET_KEY_SECRET") {
                None => None,
                Some(key) => Some(StripeConfig {
                    secret_key: key,
                    api_base: origin(
                        "STRIPE_API_BASE",
                        non_empty("STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com".into()),
                    )?,
                    checkout_origin: origin(
                        "STRIPE_CHECKOUT_ORIGIN",
                        non_empty("STRIPE_CHECKOUT_ORIGIN").unwrap_or_else(|| "https://checkout.stripe.com".into()),
                    )?,
                }),
            },
            Some(other) => {
                return Err(ConfigError::Invalid("PAYMENT_PROVIDER", format!("{other} is not stripe or none")))
            }
        };
        let payment_livemode = match non_empty("PAYMENT_LIVEMODE").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ConfigError::Invalid("PAYMENT_LIVEMODE", "must be true or false".into())),
        };
        Ok(Config {
            table_name,
            bucket_name: non_empty("BUCKET_NAME"),
            sender_email,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            platform_admin_key: non_empty("PLATFORM_ADMIN_KEY_SECRET"),
            payment_webhook_secrets: non_empty("PAYMENT_WEBHOOK_SECRETS_SECRET"),
            secrets_cache: match non_empty("SECRETS_CACHE_SECONDS") {
                None => Duration::from_secs(300),
                Some(v) => Duration::from_secs_f64(v.parse().map_err(|_| {
                    ConfigError::Invalid("SECRETS_CACHE_SECONDS", "must be a number of seconds".into())
                })?),
            },
            ses_configuration_set: non_empty("SES_CONFIGURATION_SET"),
            max_body_bytes,
            stripe,
            payment_livemode,
            s3_force_path_style: non_empty("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true"),
            round_trips_header: non_empty("ROUND_TRIPS_HEADER").is_some_and(|v| v == "true"),
            clock: crate::foundation::clock::Clock::system(),
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
            ("PAYMENT_WEBHOOK_SECRETS_SECRET", "arn:aws:secretsmanager:us-east-1:1:secret:webhook"),
            ("SENDER_EMAIL", "Reports@Example.com"),
        ])
        .unwrap();
        assert_eq!(c.public_base_url, "https://portal.example.com");
        assert_eq!(c.payment_webhook_secrets.as_deref(), Some("arn:aws:secretsmanager:us-east-1:1:secret:webhook"));
        assert_eq!(c.secrets_cache, Duration::from_secs(300));
        assert_eq!(c.sender_email.unwrap().as_str(), "reports@example.com");
        assert_eq!(c.max_body_bytes, Config::DEFAULT_MAX_BODY_BYTES);
        assert!(c.platform_admin_key.is_none());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(cfg(&[("TABLE_NAME", "t"), ("SENDER_EMAIL", "nope")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("PUBLIC_BASE_URL", "ftp://x")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("MAX_BODY_BYTES", "lots")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("PAYMENT_PROVIDER", "paypal")]).is_err());
        assert!(cfg(&[("TABLE_NAME", "t"), ("PAYMENT_LIVEMODE", "yes")]).is_err());
        let bad_origin =
            [("TABLE_NAME", "t"), ("PAYMENT_PROVIDER", "stripe"), ("STRIPE_SECRET_KEY_SECRET", "sk_test_1")];
        for o in ["https://checkout.stripe.com/pay", "checkout.stripe.com", "https://a b", "https://x;y"] {
            let mut with = bad_origin.to_vec();
            with.push(("STRIPE_CHECKOUT_ORIGIN", o));
            assert!(cfg(&with).is_err(), "{o}");
        }
    }

    #[test]
    fn pay_now_needs_a_provider_and_its_key() {
        let base = [("TABLE_NAME", "t")];
        assert!(cfg(&base).unwrap().stripe.is_none(), "nothing configured: no Pay Now");
        let no_key =
            cfg(&[("TABLE_NAME", "t"), ("PAYMENT_PROVIDER", "stripe"), ("STRIPE_SECRET_KEY_SECRET", " ")]).unwrap();
        assert!(no_key.stripe.is_none(), "a default deploy with an empty key offers no dead Pay Now");
        let none = cfg(&[("TABLE_NAME", "t"), ("PAYMENT_PROVIDER", "none"), ("STRIPE_SECRET_KEY_SECRET", "sk_live_1")]);
        assert!(none.unwrap().stripe.is_none());
        let s = cfg(&[("TABLE_NAME", "t"), ("PAYMENT_PROVIDER", "stripe"), ("STRIPE_SECRET_KEY_SECRET", "sk_test_1")])
            .unwrap()
            .stripe
            .unwrap();
        assert_eq!(
            (s.api_base.as_str(), s.checkout_origin.as_str()),
            ("https://api.stripe.com", "https://checkout.stripe.com")
        );
        assert!(!cfg(&base).unwrap().payment_livemode, "test money unless told otherwise");
        assert!(cfg(&[("TABLE_NAME", "t"), ("PAYMENT_LIVEMODE", "true")]).unwrap().payment_livemode);
    }
}
