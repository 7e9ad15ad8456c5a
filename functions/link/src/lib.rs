//! The link function: what a client or agent sees when they open the link from their email.
//!
//! - `GET /p/{token}`: the portal view (HTML, or JSON with `Accept: application/json`), from one
//!   batched read of token, company and inspection.
//! - `POST /p/{token}/agreement | addons | offers/dismiss`: client actions (other roles get 403).
//!   They take JSON, or an HTML form post (answered with `303` back to the portal).
//! - `GET /share/{inspection_id}`: the unknown-user view; `POST /share/{id}/full-access` emails a
//!   fresh personal link to a matching client or agent, answering the same `202` either way.
//!
//! Unknown, revoked, re-issued-old and malformed tokens all get the same 404, malformed ones
//! before any database read. Tokens never reach a log line ([`portal_shared::web::http::serve`]
//! redacts paths).

use http::header::{COOKIE, SET_COOKIE};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::adapters::secrets_manager::Secrets;
use portal_shared::adapters::store::outbox::{EmailRecord, Prepared};
use portal_shared::adapters::store::tokens::PortalContext;
use portal_shared::adapters::store::{Store, Write};
use portal_shared::adapters::stripe::checkout::{CheckoutError, CheckoutRequest, Provider};
use portal_shared::domain::audit::{Actor, AuditAction, AuditRecord, Outcome};
use portal_shared::domain::inspection::{QuoteRequest, Role, SignatureInput};
use portal_shared::domain::payments::Checkout;
use portal_shared::domain::portal::{payment_panel, PaymentAction, PaymentState, PortalView, ShareView};
use portal_shared::foundation::credentials::Token;
use portal_shared::foundation::email::Email;
use portal_shared::foundation::ids::{InspectionId, ServiceId};
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{
    client_info, form_or_json_body, is_form, json, query_param, segments, wants_json, ApiResult,
};
use portal_shared::web::pages;
use portal_shared::{by_method, ApiError, Config};
use serde::Deserialize;
use serde_json::json;

mod me;
pub use me::ME_PER_IP;

/// How long a checkout stays open at the provider, and the return cookie with it.
pub const CHECKOUT_LIFETIME: time::Duration = time::Duration::hours(1);
/// Holds the portal path for the client's way back from the provider (path-scoped, HttpOnly).
pub const RETURN_COOKIE: &str = "portal_checkout_return";

fn return_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{RETURN_COOKIE}={value}; Path=/checkout/return; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// A cookie's value from the request's `Cookie` header(s).
fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A value (an address, an IP) as a rate-limit key part: never the value itself.
fn hashed(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..16])
}

/// The partner's email: what the client agreed to share, and nothing else.
fn quote_email(company: &str, q: &QuoteRequest) -> Prepared {
    let d = &q.shared;
    let none = "(not given)".to_owned();
    let mut text = format!(
        "Hello {partner},\n\n{name} asks {partner} for a quote for {offer}, through {company}.\n\n\
         Name: {name}\nEmail: {email}\nPhone: {phone}\nProperty: {address}\n",
        partner = q.partner,
        name = d.name,
        offer = q.offer_title,
        email = d.email.as_ref().map_or(none.clone(), |e| e.to_string()),
        phone = d.phone.clone().unwrap_or(none),
        address = d.address,
    );
    if let Some(m) = &q.message {
        text.push_str(&format!("\nTheir message:\n{m}\n"));
    }
    text.push_str(&format!("\nThey agreed to this: \"{}\"\n\n{company}", q.consent_text));
    // The partner answers the client, not the inspection company.
    Prepared { subject: format!("Quote request for {}: {}", q.offer_title, d.name), text, reply_to: d.email.clone() }
}

/// A consent checkbox posts "on" (or "yes"/"true"); JSON sends `true`.
fn consent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum C {
        Bool(bool),
        Text(String),
    }
    Ok(match C::deserialize(d)? {
        C::Bool(b) => b,
        C::Text(t) => matches!(t.as_str(), "on" | "yes" | "true"),
    })
}

/// A checkout id derived from what identifies the request, so a repeat names the same checkout.
fn checkout_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(parts.join("|").as_bytes());
    format!("ck_{}", &hex::encode(digest)[..32])
}

/// "Get Full Access" requests one source address may make per hour. Only a flood from one source
/// is refused: repeats for one address collapse into one email instead (a stranger asking for
/// someone's address never locks them out).
pub const FULL_ACCESS_PER_IP: u32 = 20;
pub const FULL_ACCESS_WINDOW_SECONDS: i64 = 3600;

pub struct Link {
    config: Config,
    store: Store,
    payments: Option<Provider>,
}

impl Link {
    /// Now, by this function's clock (the system clock on Lambda; a test's own in tests).
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let secrets = std::sync::Arc::new(Secrets::new(sdk, config.secrets_cache));
        Link { store: Store::for_config(sdk, &config), payments: Provider::from_config(&config, secrets), config }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["p", token] => by_method!(req; GET => self.view(&req, token).await),
            ["p", token, "agreement"] => by_method!(req; POST => self.sign(&req, token).await),
            ["p", token, "addons"] => by_method!(req; POST => self.addons(&req, token).await),
            ["p", token, "offers", "dismiss"] => by_method!(req; POST => self.dismiss(&req, token).await),
            ["p", token, "offers", offer, "quote"] => by_method!(req; POST => self.quote(&req, token, offer).await),
            ["p", token, "pay"] => by_method!(req; POST => self.pay(&req, token).await),
            ["p", token, "new-link"] => by_method!(req; POST => self.new_link(&req, token).await),
            ["p", token, "receipts", payment] => by_method!(req; GET => self.receipt(token, payment).await),
            ["checkout", "return"] => by_method!(req; GET => self.checkout_return(&req)),
            ["preview", secret] => by_method!(req; GET => self.preview(secret).await),
            ["share", id] => by_method!(req; GET => self.share(&req, id).await),
            ["u", secret] => by_method!(req;
                GET => self.unsubscribe(secret, false).await,
                POST => self.unsubscribe(secret, true).await),
            ["share", id, "full-access"] => by_method!(req; POST => self.full_access(&req, id).await),
            ["me", c] => by_method!(req; GET => self.me(&req, c).await, POST => self.me_ask(&req, c).await),
            ["me", c, "signin", code] => {
                by_method!(req; GET => self.me_sign_in_page(c, code).await, POST => self.me_sign_in(&req, c, code).await)
            }
            ["me", c, "inspections", i] => by_method!(req; POST => self.me_open(&req, c, i).await),
            ["me", c, "logout"] => by_method!(req; POST => self.me_logout(&req, c).await),
            _ => Err(ApiError::NotFound),
        }
    }

    fn portal_path(token: &Token) -> String {
        format!("/p/{}", token.reveal())
    }

    fn online(&self) -> bool {
        self.payments.is_some()
    }

    /// A payment's printable receipt, for the inspection's clients.
    async fn receipt(&self, raw: &str, payment: &str) -> ApiResult {
        let (token, ctx) = self.store.resolve_portal(raw).await?;
        if ctx.person().role != Role::Client {
            return Err(ApiError::NotFound);
        }
        let paid = portal_shared::domain::portal::receipts(&ctx.inspection);
        paid.iter().find(|r| r.payment_id == payment).ok_or(ApiError::NotFound)?;
        let entry = ctx.inspection.ledger.get(payment).ok_or(ApiError::NotFound)?;
        let back = Self::portal_path(&token);
        pages::html(StatusCode::OK, pages::receipt(&ctx.company, &ctx.inspection, payment, entry, &back))
    }

    /// The portal as the link's holder sees it now.
    fn portal_view(&self, ctx: &PortalContext) -> PortalView {
        let view = PortalView::build(&ctx.company, &ctx.inspection, ctx.person(), self.online());
        if ctx.payments_queued {
            view.payments_arriving()
        } else {
            view
        }
    }

    async fn view(&self, req: &Request, raw: &str) -> ApiResult {
        let (token, ctx) = self.store.resolve_portal(raw).await?;
        let mut view = self.portal_view(&ctx);
        for r in &mut view.payment.receipts {
            r.receipt_url = format!("{}/receipts/{}", Self::portal_path(&token), r.payment_id);
        }
        // An uploaded cover is served to link holders from this origin.
        if ctx.inspection.cover_photo.is_some() {
            view.cover_photo_url = Some(format!("{}/cover", Self::portal_path(&token)));
        }
        if wants_json(req) {
            return json(StatusCode::OK, &view);
        }
        // Back from the provider's checkout: the webhook may not have arrived yet. The page says so
        // and offers "Check again" (it never reloads itself: a screen reader would start over).
        let notice = match query_param(req, "checkout").as_deref() {
            Some("success") if view.payment.state == PaymentState::Due => Some(pages::Notice {
                text: "Thank you. We are confirming your payment with the payment provider; this usually takes a \
                       few seconds. If you completed the payment, it will show here shortly; otherwise you can pay \
                       again with Pay Now.",
                check_again: Some("?checkout=success".into()),
                field_error: None,
            }),
            Some("success") if view.payment.state == PaymentState::Paid => Some(pages::Notice {
                text: "Thank you: your payment was received.",
                check_again: None,
                field_error: None,
            }),
            Some("canceled") if view.payment.state == PaymentState::Due => Some(pages::Notice {
                text: "Payment was not completed. You can try again with Pay Now whenever you are ready.",
                check_again: None,
                field_error: None,
            }),
            _ => None,
        };
        let form_to = self.payments.as_ref().map(Provider::checkout_origin);
        pages::html_posting_to(StatusCode::OK, pages::portal(&view, &Self::portal_path(&token), false, notice), form_to)
    }

    /// A client action: resolve, check the role, change the inspection, save it with the revision
    /// read (re-reading and retrying if someone saved in between). Form posts get `303` back to
    /// the portal; JSON gets the new portal view.
    async fn client_action(
        &self,
        req: &Request,
        raw: &str,
        what: &str,
        mut change: impl FnMut(&mut PortalContext) -> Result<Vec<Write>, ApiError>,
    ) -> ApiResult {
        let mut attempts = 0;
        loop {
            let (token, mut ctx) = self.store.resolve_portal(raw).await?;
            if ctx.person().role != Role::Client {
                return Err(ApiError::Forbidden(format!("only a client on this inspection can {what}")));
            }
            if ctx.inspection.is_cancelled() {
                return Err(ApiError::conflict("cancelled", format!("the inspection is cancelled: nobody can {what}")));
            }
            let also = change(&mut ctx)?;
            match self.store.save_inspection_with(&mut ctx.inspection, &ctx.company, also).await {
                Ok(()) => {
                    tracing::info!(
                        inspection_id = %ctx.inspection.id,
                        token_id = %ctx.token.token_id,
                        action = what,
                        "client action"
                    );
                    return if is_form(req) {
                        pages::see_other(&Self::portal_path(&token))
                    } else {
                        json(StatusCode::OK, &self.portal_view(&ctx))
                    };
                }
                Err(e) if e.is_condition_failure() && attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn sign(&self, req: &Request, raw: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Sign {
            typed_name: String,
            #[serde(default, deserialize_with = "number_or_string")]
            version: Option<u32>,
        }
        let input: Sign = form_or_json_body(req, &[])?;
        let (ip, user_agent) = client_info(req);
        let signed = self
            .client_action(req, raw, "sign the agreement", |ctx| {
                let signer = ctx.person().id;
                let sig = SignatureInput {
                    typed_name: input.typed_name.clone(),
                    version: input.version,
                    ip: ip.clone(),
                    user_agent: user_agent.clone(),
                };
                ctx.inspection.sign_agreement(&ctx.company, signer, sig, self.now())?;
                Ok(vec![])
            })
            .await;
        let typed = input.typed_name.clone();
        self.form_again(req, raw, signed, "The agreement was not signed: see below.", move |message| {
            pages::FieldError { field: "typed_name".into(), message, value: typed }
        })
        .await
    }

    /// A person's form that did not go through (`result` a 400 or 409 to a form post from a
    /// browser): the portal again with `text` at the top, the error beside its field and what they
    /// typed kept. Anything else, and every answer to a program, goes out as it is.
    async fn form_again(
        &self,
        req: &Request,
        raw: &str,
        result: ApiResult,
        text: &str,
        field: impl FnOnce(String) -> pages::FieldError,
    ) -> ApiResult {
        match result {
            Err(e @ (ApiError::BadRequest(_) | ApiError::Conflict { .. })) if is_form(req) && !wants_json(req) => {
                let status = e.status();
                let (token, ctx) = self.store.resolve_portal(raw).await?;
                let view = self.portal_view(&ctx);
                let notice = pages::Notice { text, check_again: None, field_error: Some(field(e.to_string())) };
                let form_to = self.payments.as_ref().map(Provider::checkout_origin);
                let body = pages::portal(&view, &Self::portal_path(&token), false, Some(notice));
                pages::html_posting_to(status, body, form_to)
            }
            other => other,
        }
    }

    async fn addons(&self, req: &Request, raw: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Addons {
            addon_ids: Vec<String>,
        }
        let input: Result<Addons, ApiError> = form_or_json_body(req, &["addon_ids"]);
        let chosen = input.as_ref().map(|a| a.addon_ids.join(",")).unwrap_or_default();
        let requested = match input {
            Err(e) => Err(e),
            Ok(input) => {
                let ids = input
                    .addon_ids
                    .iter()
                    .map(|s| {
                        s.parse::<ServiceId>().map_err(|_| ApiError::bad_request(format!("{s:?} is not an add-on id")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.client_action(req, raw, "request add-ons", |ctx| {
                    let catalog = &ctx.company.settings.addon_catalog;
                    let added = ctx.inspection.request_addons(catalog, &ids, self.now())?;
                    let names: Vec<&str> = added.iter().map(|s| s.name.as_str()).collect();
                    let what = format!("{} ({}, by {})", ctx.inspection.address, names.join(", "), ctx.person().name);
                    if names.is_empty() {
                        return Ok(vec![]);
                    }
                    let alert = portal_shared::adapters::store::alerts::Alert::write(
                        &ctx.company,
                        "addon_requested",
                        &what,
                        self.now(),
                    )?;
                    Ok(alert.into_iter().collect())
                })
                .await
            }
        };
        self.form_again(req, raw, requested, "No add-on was requested: see below.", move |_| pages::FieldError {
            field: "addon_ids".into(),
            message: "Choose at least one service, then press \u{201c}Add selected services\u{201d}.".into(),
            value: chosen,
        })
        .await
    }

    async fn dismiss(&self, req: &Request, raw: &str) -> ApiResult {
        self.client_action(req, raw, "dismiss offers", |ctx| {
            ctx.inspection.offers_dismissed = true;
            Ok(vec![])
        })
        .await
    }

    /// A quote from a partner: only with the client's explicit consent, recorded with the exact
    /// text shown, who, when and from where; then (and only then) the client's details go to the
    /// partner, by email through the outbox. Asking again sends nothing more.
    async fn quote(&self, req: &Request, raw: &str, offer: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            #[serde(default, deserialize_with = "consent")]
            consent: bool,
            #[serde(default)]
            message: Option<String>,
        }
        let offer: ServiceId = offer.parse().map_err(|_| ApiError::NotFound)?;
        let ask: Ask = form_or_json_body(req, &[])?;
        let from = client_info(req);
        let asked = self
            .client_action(req, raw, "ask for a quote", |ctx| {
                let me = ctx.person().id;
                let now = self.now();
                let (q, new) = ctx.inspection.request_quote(
                    &ctx.company,
                    me,
                    offer,
                    ask.consent,
                    ask.message.as_deref(),
                    from.clone(),
                    now,
                )?;
                if !new {
                    return Ok(vec![]);
                }
                let partner = ctx.company.settings.special_offers.iter().find(|o| o.id == offer);
                let to = partner.and_then(|o| o.partner_email.clone()).ok_or(ApiError::NotFound)?;
                let i = &ctx.inspection;
                let content = quote_email(&ctx.company.name, &q);
                let dedupe = format!("quote#{offer}#{me}");
                let email = EmailRecord::prepared(i.company_id, i.id, me, "quote_request", dedupe, to, content, now);
                let actor = Actor::Person { person_id: me, role: Role::Client, token_id: ctx.token.token_id };
                let audit = AuditRecord::new(i.id, AuditAction::QuoteRequested, actor, Outcome::Done, self.now());
                Ok(vec![email.create()?, audit.write(&ctx.company)?])
            })
            .await;
        let message = ask.message.clone().unwrap_or_default();
        self.form_again(req, raw, asked, "The quote was not requested: see below.", move |text| pages::FieldError {
            field: format!("consent-{offer}"),
            message: text,
            value: message,
        })
        .await
    }

    /// Pay Now: a Checkout Session for the balance at the payment provider, recorded so the money
    /// that comes back can be bound to it; the client is sent to its hosted page (`303` for a form
    /// post, the URL in JSON otherwise). Only clients, and only when the payment panel offers Pay
    /// Now. The provider never sees the portal token: it returns the client to
    /// `/checkout/return`, and a cookie scoped to that path (set here, read once there) says where to.
    async fn pay(&self, req: &Request, raw: &str) -> ApiResult {
        let (token, ctx) = self.store.resolve_portal(raw).await?;
        let person = ctx.person();
        if person.role != Role::Client {
            return Err(ApiError::Forbidden("only a client on this inspection can pay here".into()));
        }
        let panel = payment_panel(&ctx.company, &ctx.inspection, true, self.online());
        if panel.action != Some(PaymentAction::PayNow) {
            return Err(ApiError::conflict("nothing-to-pay", format!("Pay Now is not offered: {}", panel.message)));
        }
        let provider = self.payments.as_ref().ok_or(ApiError::NotFound)?;
        let i = &ctx.inspection;
        let now = self.now();
        // The same client, inspection state and balance: the same checkout (a double click or a
        // retry reuses the provider's session through its idempotency key).
        let checkout_id = checkout_id(&[&i.id.to_string(), &person.id.to_string(), &i.revision.to_string()]);
        let back = format!("{}/checkout/return", self.config.public_base_url);
        let request = CheckoutRequest {
            checkout_id: checkout_id.clone(),
            company_id: i.company_id,
            inspection_id: i.id,
            amount_cents: panel.balance_cents.get(),
            currency: i.currency,
            description: format!("Inspection at {}", i.address),
            customer_email: person.email.as_ref().map(|e| e.to_string()),
            success_url: format!("{back}?checkout=success"),
            cancel_url: format!("{back}?checkout=canceled"),
            expires_at: (now + CHECKOUT_LIFETIME).unix_timestamp(),
            idempotency_key: checkout_id.clone(),
        };
        let session = provider.create(&request).await.map_err(|e| match e {
            CheckoutError::Unreachable(_) | CheckoutError::NotConfigured => {
                tracing::warn!(error = %e, "Pay Now is unavailable");
                ApiError::Unavailable {
                    detail: "Online payment is unavailable right now. Please try again in a minute.".into(),
                    retry_after_seconds: 30,
                }
            }
            other => ApiError::internal(other),
        })?;
        let record = Checkout {
            checkout_id,
            session_id: session.id.clone(),
            company_id: i.company_id,
            inspection_id: i.id,
            person_id: person.id,
            amount_cents: request.amount_cents,
            currency: request.currency,
            livemode: session.livemode,
            payment_intent: None,
            created_at: now,
        };
        self.store.record_checkout(&record).await?;
        tracing::info!(inspection_id = %i.id, token_id = %ctx.token.token_id, session = %session.id, "checkout started");
        let mut resp = if is_form(req) {
            pages::see_other(&session.url)?
        } else {
            json(StatusCode::OK, &json!({ "checkout_url": session.url, "session_id": session.id }))?
        };
        let cookie =
            return_cookie(&Self::portal_path(&token), CHECKOUT_LIFETIME.whole_seconds(), self.secure_cookies());
        resp.headers_mut().append(SET_COOKIE, cookie.parse().map_err(ApiError::internal)?);
        Ok(resp)
    }

    /// The hourly allowance of one source address for requests that make the portal email
    /// someone (Get Full Access, the /me sign-in): `kind` names the allowance; a refused request
    /// does not count (429 with the seconds left).
    async fn within_source_limit(
        &self,
        req: &Request,
        kind: &str,
        limit: u32,
        now: time::OffsetDateTime,
    ) -> Result<(), ApiError> {
        let (ip, _) = client_info(req);
        let what = format!("{kind}#{}", hashed(ip.as_deref().unwrap_or("unknown")));
        self.store.within_window(&what, limit, FULL_ACCESS_WINDOW_SECONDS, now).await
    }

    fn secure_cookies(&self) -> bool {
        self.config.public_base_url.starts_with("https://")
    }

    /// Where the payment provider sends the client back (`?checkout=success|canceled`): the
    /// return cookie, used once, leads to their portal; without it, a page that says how to get
    /// there. No database read: the portal itself checks the token.
    fn checkout_return(&self, req: &Request) -> ApiResult {
        let outcome = match query_param(req, "checkout").as_deref() {
            Some("canceled") => "canceled",
            _ => "success",
        };
        let portal = cookie(req, RETURN_COOKIE).filter(|v| v.strip_prefix("/p/").and_then(Token::parse).is_some());
        let mut resp = match portal {
            Some(path) => pages::see_other(&format!("{path}?checkout={outcome}"))?,
            None => pages::html(
                StatusCode::OK,
                pages::message(
                    if outcome == "success" { "Thank you" } else { "Payment not completed" },
                    "Open your portal from the link in your email to see your payment and your reports.",
                    None,
                ),
            )?,
        };
        resp.headers_mut()
            .append(SET_COOKIE, return_cookie("", 0, self.secure_cookies()).parse().map_err(ApiError::internal)?);
        Ok(resp)
    }

    async fn share(&self, req: &Request, id: &str) -> ApiResult {
        let id: InspectionId = id.parse().map_err(|_| ApiError::NotFound)?;
        if wants_json(req) {
            json(StatusCode::OK, &self.share_view(id).await?)
        } else {
            self.share_page(id, StatusCode::OK, None).await
        }
    }

    async fn share_view(&self, id: InspectionId) -> Result<ShareView, ApiError> {
        let pointer = self.store.inspection_pointer(id).await?.ok_or(ApiError::NotFound)?;
        let (company, inspection) =
            self.store.company_and_inspection(pointer.company_id, id).await?.ok_or(ApiError::NotFound)?;
        Ok(ShareView::build(&company, &inspection))
    }

    /// The unknown user's page (`error`: its Get Full Access form sent back).
    async fn share_page(&self, id: InspectionId, status: StatusCode, error: Option<&pages::FieldError>) -> ApiResult {
        let view = self.share_view(id).await?;
        pages::html(status, pages::share(&view, &format!("/share/{id}/full-access"), error))
    }

    /// A staff preview link (`POST /staff/inspections/{id}/people/{p}/preview-link`): that
    /// person's portal, read-only (no forms; "Staff preview" at the top), once, within 10
    /// minutes; audited as the staff key's preview.
    async fn preview(&self, raw: &str) -> ApiResult {
        use portal_shared::domain::audit::{Actor, AuditAction, AuditRecord, Outcome};
        use portal_shared::foundation::credentials::MeSecret;
        let secret = MeSecret::parse(MeSecret::PREVIEW, raw).ok_or(ApiError::NotFound)?;
        let now = self.now();
        let link = self.store.take_preview_link(&secret, now).await?.ok_or(ApiError::NotFound)?;
        let (company, inspection) =
            self.store.company_and_inspection(link.company_id, link.inspection_id).await?.ok_or(ApiError::NotFound)?;
        let person = inspection.person(link.person_id).ok_or(ApiError::NotFound)?;
        let actor = Actor::Staff { key_id: link.key_id, key_name: link.key_name.clone(), as_person: Some(person.id) };
        let audit = AuditRecord::new(inspection.id, AuditAction::PortalPreview, actor, Outcome::Allowed, now);
        self.store.record_audit(&company, &audit).await?;
        let view = PortalView::build(&company, &inspection, person, self.online());
        // Read-only: no forms, and document links go nowhere (a preview opens nothing as them).
        pages::html(StatusCode::OK, pages::portal(&view, "#preview", true, None))
    }

    /// One-click unsubscribe (RFC 8058): GET shows the button and changes nothing (mail scanners
    /// open links); POST (the button, or a mail client's `List-Unsubscribe=One-Click`) stops the
    /// company's optional emails to the address, recorded as a suppression staff see and can
    /// lift. The link names no portal and no inspection.
    async fn unsubscribe(&self, raw: &str, post: bool) -> ApiResult {
        use portal_shared::adapters::store::outbox::{Suppression, UNSUBSCRIBED};
        use portal_shared::foundation::credentials::MeSecret;
        let secret = MeSecret::parse(MeSecret::UNSUBSCRIBE, raw).ok_or(ApiError::NotFound)?;
        let link = self.store.unsubscribe_link(&secret).await?.ok_or(ApiError::NotFound)?;
        let company = self.store.company(link.company_id).await?.ok_or(ApiError::NotFound)?;
        if post {
            let s = Suppression {
                address: link.address.clone(),
                kind: UNSUBSCRIBED.into(),
                reason: "unsubscribed from optional emails (one-click link)".into(),
                at: self.now(),
            };
            self.store.suppress(company.id, &s).await?;
            tracing::info!(company_id = %company.id, "an address unsubscribed from optional emails");
        }
        pages::html(StatusCode::OK, pages::unsubscribe(&company.brand(), &format!("/u/{raw}"), post))
    }

    /// "Email me a new link", from the page a portal link that does not work shows: Get Full
    /// Access for the inspection the link names (its ids are not secret; its secret part is not
    /// looked at). The same answer, the same limit and the same write whatever the link was —
    /// never issued, revoked, expired or garbled — so the form tells nobody anything.
    async fn new_link(&self, req: &Request, raw: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            email: String,
        }
        let ask: Ask = form_or_json_body(req, &[])?;
        let email = match email_field(req, &ask.email)? {
            Ok(email) => email,
            Err(error) => return pages::html(StatusCode::BAD_REQUEST, pages::dead_portal_link(raw, Some(&error))),
        };
        let now = self.now();
        self.within_source_limit(req, "IP", FULL_ACCESS_PER_IP, now).await?;
        if let Some(token) = Token::parse(raw) {
            let id = token.inspection_id();
            match self.store.inspection_pointer(id).await? {
                Some(p) if p.company_id == token.company_id() => {
                    self.store.request_email(&EmailRecord::full_access_request(p.company_id, id, email, now)).await?;
                }
                _ => {}
            }
        }
        let message = "If that email is on the inspection, a new personal link is on its way to it. \
                       It can take a few minutes; check your spam folder too.";
        if wants_json(req) {
            json(StatusCode::ACCEPTED, &json!({ "status": "accepted", "message": message }))
        } else {
            pages::html(StatusCode::ACCEPTED, pages::message("Check your email", message, None))
        }
    }

    /// "Get Full Access": if the email is a client's or agent's on this inspection, that person
    /// gets a fresh personal link by email (their earlier links keep working). The answer is the
    /// same `202` whether or not it matched; the form is rate limited per inspection.
    async fn full_access(&self, req: &Request, id: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            email: String,
        }
        let id: InspectionId = id.parse().map_err(|_| ApiError::NotFound)?;
        let ask: Ask = form_or_json_body(req, &[])?;
        let email = match email_field(req, &ask.email)? {
            Ok(email) => email,
            Err(error) => return self.share_page(id, StatusCode::BAD_REQUEST, Some(&error)).await,
        };
        let pointer = self.store.inspection_pointer(id).await?.ok_or(ApiError::NotFound)?;
        let now = self.now();
        self.within_source_limit(req, "IP", FULL_ACCESS_PER_IP, now).await?;
        // The same write whether or not the address matches (or asked a moment ago): the outbox
        // job matches and sends.
        self.store.request_email(&EmailRecord::full_access_request(pointer.company_id, id, email, now)).await?;
        let message = "If that email is on this inspection, a personal link is on its way to it.";
        if is_form(req) && !wants_json(req) {
            pages::html(
                StatusCode::ACCEPTED,
                pages::message("Check your email", message, Some((&format!("/share/{id}"), "Back to the inspection"))),
            )
        } else {
            json(StatusCode::ACCEPTED, &json!({ "status": "accepted", "message": message }))
        }
    }
}

/// The address an email form took: `Ok(Err(..))` when a person's form post typed something that is
/// not one (the form goes back with the error beside the field and what they typed), `Err` (a 400)
/// when a program sent it.
fn email_field(req: &Request, typed: &str) -> Result<Result<Email, pages::FieldError>, ApiError> {
    match Email::parse(typed) {
        Ok(email) => Ok(Ok(email)),
        Err(e) if is_form(req) && !wants_json(req) => Ok(Err(pages::FieldError {
            field: "email".into(),
            message: format!("{e}. Check the address and send it again."),
            value: typed.to_owned(),
        })),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// HTML forms send numbers as strings.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u32),
        Text(String),
    }
    match Option::<N>::deserialize(d)? {
        None => Ok(None),
        Some(N::Num(n)) => Ok(Some(n)),
        Some(N::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(N::Text(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl HttpFunction for Link {
    async fn handle(&self, req: Request) -> Response<Body> {
        pages::serve_pages(req, &self.config, |req| self.route(req)).await
    }

    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}
