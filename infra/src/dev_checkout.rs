//! The dev payment provider: a local stand-in for Stripe Checkout, served on its **own origin**
//! (another port), so the lab shows what a real provider does to the portal:
//!
//! - `POST /v1/checkout/sessions` is Stripe's API call (form-encoded, bearer key, `Idempotency-Key`
//!   replays the same session), answering a Checkout Session object whose `url` is on this origin.
//!   Every call is recorded, minus the key (`GET /_dev/requests`), so tests can check what the
//!   portal sent a provider (no portal token, ever).
//! - `GET /c/pay/{session}` is the hosted checkout page; its "Pay" posts here, and the client is
//!   sent to the session's `success_url` at once, while the events follow **asynchronously** the way
//!   Stripe sends them: `checkout.session.completed` and `payment_intent.*` (plus types the portal
//!   ignores) for the same money, concurrently, in random order, some twice, pretty-printed and
//!   signed with `t`, `v1` and a `v0` entry, retried with backoff when not answered 2xx.
//! - "Pay by bank" completes the session unpaid (ACH processing); the page then offers to settle
//!   it (`checkout.session.async_payment_succeeded`) or fail it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portal_shared::foundation::money::{format as money, Cents, Currency};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::mailbox::escape;

type Resp = hyper::Response<Full<Bytes>>;

/// One API call the portal made, as the provider saw it (the key left out).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub form: Vec<(String, String)>,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub status: u16,
}

struct Session {
    object: Value,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    by_idempotency_key: HashMap<String, String>,
    requests: Vec<Recorded>,
    deliveries: Vec<Delivery>,
}

pub struct DevStripe {
    /// This provider's origin (`http://127.0.0.1:<port>`).
    pub origin: String,
    /// The secret key the portal must present.
    pub api_key: String,
    /// Where events go (the gateway's `/webhooks/payments`).
    pub webhook_url: String,
    pub webhook_secret: String,
    http: reqwest::Client,
    state: Mutex<State>,
}

fn respond(status: u16, content_type: &str, body: String) -> Resp {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn api_error(status: u16, message: &str) -> Resp {
    let body = json!({ "error": { "type": "invalid_request_error", "message": message } });
    respond(status, "application/json", body.to_string())
}

fn page(status: u16, title: &str, body: &str) -> Resp {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:560px;margin:40px auto;padding:0 16px\">\
         <p style=\"color:#b45309\">Dev payment provider (Stripe Checkout stand-in): no real money moves.</p>\
         <h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    respond(status, "text/html; charset=utf-8", html)
}

fn see_other(location: &str) -> Resp {
    hyper::Response::builder()
        .status(303)
        .header("location", location)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl DevStripe {
    pub fn new(origin: String, api_key: String, webhook_url: String, webhook_secret: String) -> Self {
        DevStripe {
            origin,
            api_key,
            webhook_url,
            webhook_secret,
            http: reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap_or_default(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves connections from `listener` until the returned task is aborted.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let me = self.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(me.handle(req).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        })
    }

    async fn handle(self: Arc<Self>, req: hyper::Request<hyper::body::Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let Ok(body) = Limited::new(body, 1 << 20).collect().await.map(|b| b.to_bytes()) else {
            return api_error(413, "request too large");
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let path = parts.uri.path().to_owned();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (parts.method.as_str(), segs.as_slice()) {
            ("POST", ["v1", "checkout", "sessions"]) => self.create_session(&parts.headers, form),
            ("GET", ["_dev", "requests"]) => {
                let s = self.state();
                let body = json!({ "requests": s.requests, "deliveries": s.deliveries });
                respond(200, "application/json", body.to_string())
            }
            ("GET", ["c", "pay", id]) => self.checkout_page(id),
            ("POST", ["c", "pay", id]) => {
                let action = field("action").unwrap_or_default();
                self.pay(id, &action)
            }
            _ => page(404, "Not found", ""),
        }
    }

    fn create_session(&self, headers: &http::HeaderMap, form: Vec<(String, String)>) -> Resp {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if auth != format!("Bearer {}", self.api_key) {
            return api_error(401, "Invalid API Key provided");
        }
        let idem = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut s = self.state();
        s.requests.push(Recorded {
            method: "POST".into(),
            path: "/v1/checkout/sessions".into(),
            idempotency_key: idem.clone(),
            form: form.clone(),
        });
        if let Some(existing) = idem.as_ref().and_then(|k| s.by_idempotency_key.get(k)) {
            if let Some(session) = s.sessions.get(existing) {
                return respond(200, "application/json", session.object.to_string());
            }
        }
        let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let (Some(amount), Some(currency), Some(success), Some(cancel)) = (
            get("line_items[0][price_data][unit_amount]").and_then(|a| a.parse::<i64>().ok()),
            get("line_items[0][price_data][currency]"),
            get("success_url"),
            get("cancel_url"),
        ) else {
            return api_error(400, "Missing required param: line_items, success_url or cancel_url");
        };
        if get("mode").as_deref() != Some("payment") {
            return api_error(400, "mode must be payment");
        }
        let metadata = |prefix: &str| {
            let p = format!("{prefix}[");
            let map: serde_json::Map<String, Value> = form
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&p)?.strip_suffix(']').filter(|k| !k.contains('[')).map(|k| (k.to_owned(), json!(v)))
                })
                .collect();
            Value::Object(map)
        };
        let id = format!("cs_test_{}", ulid::Ulid::new());
        let object = json!({
            "id": id,
            "object": "checkout.session",
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": { "enabled": false, "status": null },
            "billing_address_collection": null,
            "cancel_url": cancel,
            "client_reference_id": get("client_reference_id"),
            "consent": null,
            "created": now(),
            "currency": currency,
            "customer": null,
            "customer_details": null,
            "customer_email": get("customer_email"),
            "expires_at": get("expires_at").and_then(|e| e.parse::<i64>().ok()).unwrap_or(now() + 86400),
            "invoice": null,
            "livemode": false,
            "locale": null,
            "metadata": metadata("metadata"),
            "mode": "payment",
            "payment_intent": null,
            "payment_link": null,
            "payment_method_types": ["card", "us_bank_account"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success,
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "url": format!("{}/c/pay/{id}", self.origin),
            "_intent_metadata": metadata("payment_intent_data[metadata]"),
            "_description": get("line_items[0][price_data][product_data][name]").unwrap_or_default(),
        });
        let public = public_session(&object);
        if let Some(k) = idem {
            s.by_idempotency_key.insert(k, id.clone());
        }
        s.sessions.insert(id, Session { object });
        respond(200, "application/json", public.to_string())
    }

    fn checkout_page(&self, id: &str) -> Resp {
        let s = self.state();
        let Some(session) = s.sessions.get(id) else {
            return page(404, "Unknown checkout", "<p>This checkout link is not valid.</p>");
        };
        let o = &session.object;
        let currency = o["currency"].as_str().and_then(|c| Currency::parse(c).ok()).unwrap_or_default();
        let amount = money(Cents::signed(o["amount_total"].as_i64().unwrap_or(0)), currency);
        let action = format!("/c/pay/{}", escape(id));
        let body = match (o["status"].as_str(), o["payment_status"].as_str()) {
            (Some("open"), _) => format!(
                "<p>{}</p><form method=\"post\" action=\"{action}\">\
                 <button name=\"action\" value=\"card\" type=\"submit\">Pay {a}</button> \
                 <button name=\"action\" value=\"bank\" type=\"submit\">Pay by bank (ACH)</button></form>\
                 <p><a href=\"{c}\">Cancel and go back</a></p>",
                escape(o["_description"].as_str().unwrap_or_default()),
                a = escape(&amount),
                c = escape(o["cancel_url"].as_str().unwrap_or_default()),
            ),
            (_, Some("unpaid")) => format!(
                "<p>The bank payment of {a} is processing.</p><form method=\"post\" action=\"{action}\">\
                 <button name=\"action\" value=\"settle\" type=\"submit\">Settle the bank payment</button> \
                 <button name=\"action\" value=\"fail\" type=\"submit\">Fail the bank payment</button></form>",
                a = escape(&amount),
            ),
            _ => format!("<p>This checkout is complete ({a}).</p>", a = escape(&amount)),
        };
        page(200, &format!("Pay {amount}"), &body)
    }

    /// Completes, settles or fails a session and sends its events (in the background, as Stripe
    /// does), then sends the client back to the portal.
    fn pay(self: &Arc<Self>, id: &str, action: &str) -> Resp {
        let (events, back) = {
            let mut s = self.state();
            let Some(session) = s.sessions.get_mut(id) else {
                return page(404, "Unknown checkout", "<p>This checkout link is not valid.</p>");
            };
            let o = &mut session.object;
            let open = o["status"] == "open";
            let processing = o["status"] == "complete" && o["payment_status"] == "unpaid";
            let events = match action {
                "card" | "bank" if open => {
                    let intent = random_id("pi");
                    o["payment_intent"] = json!(intent);
                    o["status"] = json!("complete");
                    o["payment_status"] = json!(if action == "card" { "paid" } else { "unpaid" });
                    self.payment_events(o, action == "card")
                }
                "settle" | "fail" if processing => {
                    let ok = action == "settle";
                    if ok {
                        o["payment_status"] = json!("paid");
                    }
                    self.settlement_events(o, ok)
                }
                _ => return page(409, "Nothing to do", "<p>This checkout cannot do that now.</p>"),
            };
            (events, o["success_url"].as_str().unwrap_or_default().to_owned())
        };
        let me = self.clone();
        tokio::spawn(async move { me.deliver_all(events).await });
        see_other(&back)
    }

    fn payment_intent(&self, session: &Value, status: &str, received: bool) -> Value {
        let amount = session["amount_total"].clone();
        let intent = session["payment_intent"].clone();
        json!({
            "id": intent,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": { "tip": {} },
            "amount_received": if received { amount.clone() } else { json!(0) },
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": null,
            "canceled_at": null,
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": format!("{}_secret_dev", intent.as_str().unwrap_or_default()),
            "confirmation_method": "automatic",
            "created": now(),
            "currency": session["currency"],
            "customer": null,
            "description": session["_description"],
            "invoice": null,
            "last_payment_error": null,
            "latest_charge": if received { json!(random_id("ch")) } else { Value::Null },
            "livemode": false,
            "metadata": session["_intent_metadata"],
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": random_id("pm"),
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": null,
            "shipping": null,
            "source": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": status,
            "transfer_data": null,
            "transfer_group": null,
        })
    }

    fn payment_events(&self, session: &Value, card: bool) -> Vec<Value> {
        let mut out =
            vec![event("payment_intent.created", self.payment_intent(session, "requires_payment_method", false))];
        if card {
            out.push(event(
                "charge.succeeded",
                json!({ "id": random_id("ch"), "object": "charge", "livemode": false }),
            ));
            out.push(event("payment_intent.succeeded", self.payment_intent(session, "succeeded", true)));
        } else {
            out.push(event("payment_intent.processing", self.payment_intent(session, "processing", false)));
        }
        out.push(event("checkout.session.completed", public_session(session)));
        out
    }

    fn settlement_events(&self, session: &Value, ok: bool) -> Vec<Value> {
        if ok {
            vec![
                event("payment_intent.succeeded", self.payment_intent(session, "succeeded", true)),
                event("checkout.session.async_payment_succeeded", public_session(session)),
            ]
        } else {
            vec![
                event("payment_intent.payment_failed", self.payment_intent(session, "requires_payment_method", false)),
                event("checkout.session.async_payment_failed", public_session(session)),
            ]
        }
    }

    /// All at once, in random order, some twice: what Stripe's deliveries look like.
    async fn deliver_all(self: Arc<Self>, events: Vec<Value>) {
        let mut copies: Vec<Value> = Vec::new();
        for e in events {
            let twice = ulid::Ulid::new().random().is_multiple_of(3);
            copies.push(e.clone());
            if twice {
                copies.push(e);
            }
        }
        copies.sort_by_cached_key(|_| ulid::Ulid::new().random());
        let tasks: Vec<_> = copies
            .into_iter()
            .map(|e| {
                let me = self.clone();
                tokio::spawn(async move { me.deliver_with_retries(&e).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn deliver_with_retries(&self, event: &Value) {
        let mut wait = Duration::from_millis(500);
        for _ in 0..5 {
            let status = self.deliver(event).await;
            self.state().deliveries.push(Delivery {
                event_id: event["id"].as_str().unwrap_or_default().to_owned(),
                event_type: event["type"].as_str().unwrap_or_default().to_owned(),
                status,
            });
            if (200..300).contains(&status) {
                return;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        tracing::warn!(event_type = %event["type"], "dev provider gave up delivering an event");
    }

    /// Signs and posts one event, pretty-printed as Stripe sends it; the status (0: unreachable).
    pub async fn deliver(&self, event: &Value) -> u16 {
        let body = serde_json::to_string_pretty(event).unwrap_or_default();
        let t = now();
        let header = signature_header(&self.webhook_secret, t, body.as_bytes());
        match self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// Stripe's header: the timestamp, the `v1` signature, and (in test mode) a `v0` entry.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let v1 = portal_shared::adapters::stripe::signature::sign(secret, t, body);
    let v0 = portal_shared::adapters::stripe::signature::sign("v0-scheme-not-checked", t, body);
    format!("t={t},v1={v1},v0={v0}")
}

/// A session as Stripe shows it (without this stand-in's private fields).
fn public_session(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.retain(|k, _| !k.starts_with('_'));
    }
    o
}

/// A Stripe event around `object`.
pub fn event(kind: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", ulid::Ulid::new()),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
    })
}
