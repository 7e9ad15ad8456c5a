//! The dev payment provider's checkout page (`/_dev/checkout`), local only. Pay Now with
//! `PAYMENT_PROVIDER=dev` sends the client here; "Pay" delivers a Stripe-shaped, correctly signed
//! `payment_intent.succeeded` (or, for "Pay by bank", `payment_intent.processing`) to the
//! gateway's own `/webhooks/payments`, exactly as Stripe would, then returns to the portal.

use bytes::Bytes;
use http_body_util::Full;
use portal_shared::checkout::{dev_session, CheckoutRequest};
use portal_shared::money::{format as money, Cents};
use serde_json::json;

use crate::mailbox::escape;

type Resp = hyper::Response<Full<Bytes>>;

pub struct DevCheckout {
    /// Where webhooks go (the gateway's own `/webhooks/payments`).
    pub webhook_url: String,
    /// The first of `PAYMENT_WEBHOOK_SECRETS`.
    pub webhook_secret: String,
    pub http: reqwest::Client,
}

fn page(status: u16, title: &str, body: &str) -> Resp {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:560px;margin:40px auto\"><p style=\"color:#b45309\">\
         Dev payment provider: no real money moves.</p><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .body(Full::new(Bytes::from(html)))
        .unwrap_or_default()
}

/// The Stripe event a payment of this checkout produces.
pub fn event(session: &CheckoutRequest, kind: &str, intent: &str) -> serde_json::Value {
    json!({
        "id": format!("evt_dev_{}", ulid::Ulid::new()),
        "object": "event",
        "type": kind,
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": { "object": {
            "id": intent,
            "object": "payment_intent",
            "amount": session.amount_cents,
            "amount_received": if kind == "payment_intent.succeeded" { session.amount_cents } else { 0 },
            "currency": session.currency.as_str(),
            "metadata": {
                "company_id": session.company_id.to_string(),
                "inspection_id": session.inspection_id.to_string(),
            },
        }},
    })
}

impl DevCheckout {
    pub async fn serve(&self, method: &http::Method, uri: &http::Uri, body: &[u8]) -> Resp {
        let query: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| {
            form.iter().chain(query.iter()).find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        let payload = field("s");
        let Some(session) = dev_session(&payload) else {
            return page(400, "Unknown checkout", "<p>This checkout link is not valid.</p>");
        };
        let amount = money(Cents::signed(session.amount_cents), session.currency);
        match (method.as_str(), uri.path()) {
            ("GET", "/_dev/checkout") => page(
                200,
                &format!("Pay {amount}"),
                &format!(
                    "<p>{}</p><form method=\"post\" action=\"/_dev/checkout/pay\">\
                     <input type=\"hidden\" name=\"s\" value=\"{p}\">\
                     <button name=\"method\" value=\"card\" type=\"submit\">Pay {a}</button> \
                     <button name=\"method\" value=\"bank\" type=\"submit\">Pay by bank (ACH)</button></form>\
                     <p><a href=\"{c}\">Cancel</a></p>",
                    escape(&session.description),
                    p = escape(&payload),
                    a = escape(&amount),
                    c = escape(&session.cancel_url),
                ),
            ),
            ("POST", "/_dev/checkout/pay") => {
                let kind =
                    if field("method") == "bank" { "payment_intent.processing" } else { "payment_intent.succeeded" };
                let intent = format!("pi_dev_{}", ulid::Ulid::new());
                match self.deliver(&event(&session, kind, &intent)).await {
                    Ok(()) => hyper::Response::builder()
                        .status(303)
                        .header("location", &session.success_url)
                        .header("referrer-policy", "no-referrer")
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default(),
                    Err(e) => page(502, "The webhook was refused", &format!("<pre>{}</pre>", escape(&e))),
                }
            }
            _ => page(404, "Not found", ""),
        }
    }

    /// Signs and posts an event to the webhook endpoint, as the provider does.
    pub async fn deliver(&self, event: &serde_json::Value) -> Result<(), String> {
        let body = event.to_string();
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let sig = portal_shared::webhook::sign(&self.webhook_secret, t, body.as_bytes());
        let resp = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("stripe-signature", format!("t={t},v1={sig}"))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {text}"))
        }
    }
}
