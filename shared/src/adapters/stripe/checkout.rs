//! Pay Now: the payment-provider port. The portal starts a Stripe Checkout Session for the
//! balance and redirects the client to its hosted page; the money itself arrives later as a
//! signed webhook, the only thing that changes the ledger.
//!
//! The session and its payment intent carry metadata naming the company, the inspection and the
//! checkout this server recorded, so every later event about that money leads back to what was
//! asked for. Success and cancel URLs carry no token: the client comes back through
//! `/checkout/return` (see the link function). Locally, `STRIPE_API_BASE` points at the local
//! gateway's Stripe-compatible dev provider on another origin; there is no other code path.

use serde::{Deserialize, Serialize};

use crate::domain::payments::CHECKOUT_METADATA_KEY;
use crate::foundation::config::StripeConfig;
use crate::foundation::ids::{CompanyId, InspectionId};
use crate::foundation::money::Currency;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRequest {
    /// This server's id for the checkout, put in the metadata.
    pub checkout_id: String,
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    pub amount_cents: i64,
    pub currency: Currency,
    pub description: String,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    /// When the session expires (Unix seconds; Stripe allows 30 minutes to 24 hours).
    pub expires_at: i64,
    /// Same request, same session (a double click does not open two checkouts).
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
    pub livemode: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment provider refused the checkout ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the payment provider answered a checkout page outside {0}")]
    UnexpectedOrigin(String),
    #[error("no payment provider key is configured yet")]
    NotConfigured,
}

pub struct Provider {
    config: StripeConfig,
    http: reqwest::Client,
    secrets: std::sync::Arc<crate::adapters::secrets_manager::Secrets>,
}

impl Provider {
    /// Pay Now's provider, when one is configured (see [`crate::Config::stripe`]).
    pub fn from_config(
        config: &crate::Config,
        secrets: std::sync::Arc<crate::adapters::secrets_manager::Secrets>,
    ) -> Option<Provider> {
        Some(Provider::new(config.stripe.clone()?, secrets))
    }

    /// Stripe calls get 2 s to connect and 5 s in all: a slow Stripe leaves the request time to
    /// answer before the function's timeout.
    pub fn new(config: StripeConfig, secrets: std::sync::Arc<crate::adapters::secrets_manager::Secrets>) -> Provider {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Provider { config, http, secrets }
    }

    /// Where checkout pages live: what the portal's CSP `form-action` must allow.
    pub fn checkout_origin(&self) -> &str {
        &self.config.checkout_origin
    }

    pub async fn create(&self, req: &CheckoutRequest) -> Result<CheckoutSession, CheckoutError> {
        let key = match self.secrets.value(&self.config.secret_key).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(CheckoutError::NotConfigured),
            Err(e) => return Err(CheckoutError::Unreachable(e.to_string())),
        };
        let session = stripe(&self.http, &self.config, &key, req).await?;
        // The browser may only be sent where the CSP lets the form go.
        let prefix = format!("{}/", self.config.checkout_origin);
        if !session.url.starts_with(&prefix) {
            return Err(CheckoutError::UnexpectedOrigin(self.config.checkout_origin.clone()));
        }
        Ok(session)
    }
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
        ("expires_at".into(), req.expires_at.to_string()),
    ];
    for prefix in ["metadata", "payment_intent_data[metadata]"] {
        f.push((format!("{prefix}[company_id]"), req.company_id.to_string()));
        f.push((format!("{prefix}[inspection_id]"), req.inspection_id.to_string()));
        f.push((format!("{prefix}[{CHECKOUT_METADATA_KEY}]"), req.checkout_id.clone()));
    }
    if let Some(email) = &req.customer_email {
        f.push(("customer_email".into(), email.clone()));
    }
    f
}

async fn stripe(
    http: &reqwest::Client,
    config: &StripeConfig,
    key: &crate::foundation::credentials::Secret,
    req: &CheckoutRequest,
) -> Result<CheckoutSession, CheckoutError> {
    let resp = http
        .post(format!("{}/v1/checkout/sessions", config.api_base))
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
    serde_json::from_value(body).map_err(|e| CheckoutError::Unreachable(e.to_string()))
}
