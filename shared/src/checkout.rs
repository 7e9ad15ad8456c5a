//! Pay Now: the payment-provider port and its adapters. The portal starts a checkout for the
//! balance and redirects the client to the provider's hosted page; the money itself arrives later
//! as a signed webhook, the only thing that changes the ledger.
//!
//! - [`Provider::Stripe`] creates a Stripe Checkout Session (amount, currency, metadata naming the
//!   company and inspection on both the session and its payment intent, so every later event about
//!   that money names them).
//! - [`Provider::Dev`] points at the local gateway's own checkout page (`/_dev/checkout`), whose
//!   "Pay" button delivers a correctly signed webhook: a person can watch a report unlock locally.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ids::{CompanyId, InspectionId};
use crate::money::Currency;
use crate::secrets::Secret;
use crate::Config;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRequest {
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    pub amount_cents: i64,
    pub currency: Currency,
    pub description: String,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    /// Same request, same session (a double click does not open two checkouts).
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment provider refused the checkout ({status}): {message}")]
    Refused { status: u16, message: String },
}

pub enum Provider {
    Stripe { api_base: String, secret_key: Secret, http: reqwest::Client },
    Dev { public_base_url: String },
}

impl Provider {
    /// From `PAYMENT_PROVIDER` (`stripe` needs `STRIPE_SECRET_KEY`; `STRIPE_API_BASE` overrides
    /// the API address). None: Pay Now is not offered.
    pub fn from_config(config: &Config) -> Option<Provider> {
        match config.payment_provider.as_deref()? {
            "stripe" => Some(Provider::Stripe {
                api_base: std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| "https://api.stripe.com".into()),
                secret_key: config.stripe_secret_key.clone()?,
                http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(8)).build().ok()?,
            }),
            "dev" => Some(Provider::Dev { public_base_url: config.public_base_url.clone() }),
            _ => None,
        }
    }

    pub async fn create(&self, req: &CheckoutRequest) -> Result<CheckoutSession, CheckoutError> {
        match self {
            Provider::Stripe { api_base, secret_key, http } => stripe(http, api_base, secret_key, req).await,
            Provider::Dev { public_base_url } => {
                let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(req).unwrap_or_default());
                Ok(CheckoutSession {
                    id: format!("cs_dev_{}", ulid::Ulid::new()),
                    url: format!("{public_base_url}/_dev/checkout?s={payload}"),
                })
            }
        }
    }
}

/// Decodes what [`Provider::Dev`] put in its checkout URL (for the local gateway's page).
pub fn dev_session(payload: &str) -> Option<CheckoutRequest> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The form fields of a Stripe Checkout Session for this request.
pub fn stripe_form(req: &CheckoutRequest) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = vec![
        ("mode".into(), "payment".into()),
        ("line_items[0][quantity]".into(), "1".into()),
        ("line_items[0][price_data][currency]".into(), req.currency.to_string()),
        ("line_items[0][price_data][unit_amount]".into(), req.amount_cents.to_string()),
        ("line_items[0][price_data][product_data][name]".into(), req.description.clone()),
        ("success_url".into(), req.success_url.clone()),
        ("cancel_url".into(), req.cancel_url.clone()),
        ("client_reference_id".into(), req.inspection_id.to_string()),
    ];
    for prefix in ["metadata", "payment_intent_data[metadata]"] {
        f.push((format!("{prefix}[company_id]"), req.company_id.to_string()));
        f.push((format!("{prefix}[inspection_id]"), req.inspection_id.to_string()));
    }
    if let Some(email) = &req.customer_email {
        f.push(("customer_email".into(), email.clone()));
    }
    f
}

async fn stripe(
    http: &reqwest::Client,
    api_base: &str,
    key: &Secret,
    req: &CheckoutRequest,
) -> Result<CheckoutSession, CheckoutError> {
    #[derive(Deserialize)]
    struct Session {
        id: String,
        url: String,
    }
    let resp = http
        .post(format!("{api_base}/v1/checkout/sessions"))
        .bearer_auth(key.expose())
        .header("Idempotency-Key", &req.idempotency_key)
        .form(&stripe_form(req))
        .send()
        .await
        .map_err(|e| CheckoutError::Unreachable(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let body: serde_json::Value =
        resp.json().await.map_err(|e| CheckoutError::Unreachable(e.without_url().to_string()))?;
    if !(200..300).contains(&status) {
        let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
        return Err(CheckoutError::Refused { status, message });
    }
    let s: Session = serde_json::from_value(body).map_err(|e| CheckoutError::Unreachable(e.to_string()))?;
    Ok(CheckoutSession { id: s.id, url: s.url })
}
