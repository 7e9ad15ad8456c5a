//! "All my inspections" (`/me/{company_id}`): one place for everything a client or agent has with
//! a company, reached by a sign-in link sent to their address.
//!
//! - `GET /me/{c}`: the list with a session cookie; without one, the sign-in form (JSON: 401).
//! - `POST /me/{c} {"email"}`: the same `202` and the same work (one outbox record) whatever the
//!   address; the job sends a single-use link valid 15 minutes when an inspection lists it.
//! - `GET /me/{c}/signin/{code}`: a page with one button (mail scanners open links: opening
//!   uses up nothing); `POST` to it uses the code and starts a session (cookie `HttpOnly`,
//!   `SameSite=Lax`, `Secure` except for a local `http://` base URL, path `/me/{c}`), then `303`
//!   to the list.
//! - `GET /me/{c}/inspections/{id}`: a fresh link of this person's on that inspection (the one
//!   `/me` link it keeps), `303` to its portal: same gate, same audit.
//! - `POST /me/{c}/logout`: ends the session.
//!
//! Posts from another origin are refused (403) on top of `SameSite`. Codes and cookies are
//! stored only as hashes and never logged.

use http::header::SET_COOKIE;
use http::StatusCode;
use lambda_http::Request;
use portal_shared::adapters::store::me::Session;
use portal_shared::adapters::store::outbox::EmailRecord;
use portal_shared::adapters::store::tokens::{Issue, IssuedToken};
use portal_shared::adapters::store::StoreError;
use portal_shared::domain::company::Company;
use portal_shared::domain::me::MeView;
use portal_shared::foundation::credentials::MeSecret;
use portal_shared::foundation::ids::{CompanyId, InspectionId};
use portal_shared::web::http::{form_or_json_body, is_form, json, wants_json, ApiResult};
use portal_shared::web::pages;
use portal_shared::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::{cookie, Link};

pub const SESSION_COOKIE: &str = "portal_me";
/// Sign-in requests one source address may make per hour; repeats for one address collapse into
/// one email per few minutes instead of being refused (as for Get Full Access).
pub const ME_PER_IP: u32 = 20;

impl Link {
    fn me_company(id: &str) -> Result<CompanyId, ApiError> {
        id.parse().map_err(|_| ApiError::NotFound)
    }

    /// A form post must come from our own pages (or carry no Origin, like a non-browser client;
    /// `null`, what a browser sends from a `no-referrer` page or a sandboxed frame, is refused).
    fn same_origin(&self, req: &Request) -> Result<(), ApiError> {
        match req.headers().get(http::header::ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(origin) if origin != self.config.public_base_url.trim_end_matches('/') => {
                Err(ApiError::Forbidden("cross-origin request refused".into()))
            }
            _ => Ok(()),
        }
    }

    fn session_cookie(&self, company: CompanyId, value: &str, max_age: i64) -> String {
        let secure = if self.secure_cookies() { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}={value}; Path=/me/{company}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    /// The company and, when the cookie names a live session with it, the session: one
    /// batched read (plus an hourly `last_seen_at` refresh).
    async fn me_context(&self, req: &Request, company: CompanyId) -> Result<(Company, Option<Session>), ApiError> {
        let secret = cookie(req, SESSION_COOKIE).and_then(|raw| MeSecret::parse(MeSecret::SESSION, &raw));
        let (company_rec, session) = self.store.company_and_session(company, secret.as_ref(), self.now()).await?;
        let company_rec = company_rec.ok_or(ApiError::NotFound)?;
        Ok((company_rec, session.filter(|s| s.company_id == company)))
    }

    pub(crate) async fn me(&self, req: &Request, company: &str) -> ApiResult {
        let company = Self::me_company(company)?;
        let (c, session) = self.me_context(req, company).await?;
        let Some(session) = session else {
            if wants_json(req) {
                return Err(ApiError::Unauthorized);
            }
            return pages::html_own_origin(
                StatusCode::OK,
                pages::me_ask(&c.brand(), &format!("/me/{company}"), false, None),
            );
        };
        let entries = self.store.my_inspections(company, &session.email).await?;
        let view = MeView::build(&c, session.email.as_str(), entries, &self.config.public_base_url, self.now());
        if wants_json(req) {
            return json(StatusCode::OK, &view);
        }
        pages::html_own_origin(StatusCode::OK, pages::me_list(&view, &format!("/me/{company}/logout")))
    }

    pub(crate) async fn me_ask(&self, req: &Request, company: &str) -> ApiResult {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            email: String,
        }
        let company = Self::me_company(company)?;
        self.same_origin(req)?;
        let ask: Ask = form_or_json_body(req, &[])?;
        let typed = crate::email_field(req, &ask.email)?;
        let c = self.store.company(company).await?.ok_or(ApiError::NotFound)?;
        let email = match typed {
            Ok(email) => email,
            Err(error) => {
                let page = pages::me_ask(&c.brand(), &format!("/me/{company}"), false, Some(&error));
                return pages::html_own_origin(StatusCode::BAD_REQUEST, page);
            }
        };
        let now = self.now();
        self.within_source_limit(req, "MEIP", ME_PER_IP, now).await?;
        // The same write whether or not the address is on an inspection (or asked a moment ago):
        // the job looks it up.
        self.store.request_email(&EmailRecord::me_sign_in_request(company, email, now)).await?;
        if is_form(req) && !wants_json(req) {
            return pages::html_own_origin(
                StatusCode::ACCEPTED,
                pages::me_ask(&c.brand(), &format!("/me/{company}"), true, None),
            );
        }
        let message = "If that email is on any of our inspections, a sign-in link is on its way to it.";
        json(StatusCode::ACCEPTED, &json!({ "status": "accepted", "message": message }))
    }

    pub(crate) async fn me_sign_in_page(&self, company: &str, code: &str) -> ApiResult {
        let company = Self::me_company(company)?;
        let code = MeSecret::parse(MeSecret::SIGN_IN, code).ok_or(ApiError::NotFound)?;
        let c = self.store.company(company).await?.ok_or(ApiError::NotFound)?;
        let action = format!("/me/{company}/signin/{}", code.reveal());
        pages::html_own_origin(StatusCode::OK, pages::me_sign_in(&c.brand(), &action))
    }

    pub(crate) async fn me_sign_in(&self, req: &Request, company: &str, code: &str) -> ApiResult {
        let company = Self::me_company(company)?;
        self.same_origin(req)?;
        let expired = || {
            pages::html_own_origin(
                StatusCode::GONE,
                pages::message(
                    "This sign-in link no longer works",
                    "Sign-in links work once, within 15 minutes. Ask for a new one.",
                    Some((&format!("/me/{company}"), "Email me a new sign-in link")),
                ),
            )
        };
        // Malformed: not a link we ever sent (404, before any read); well-formed but unknown,
        // used or expired: the same 410 page.
        let code = MeSecret::parse(MeSecret::SIGN_IN, code).ok_or(ApiError::NotFound)?;
        let now = self.now();
        let sign_in = match self.store.sign_in(&code).await? {
            Some(s) if s.company_id == company && !s.used && s.valid_until > now => s,
            _ => return expired(),
        };
        let session = match self.store.start_session(&code, &sign_in, now).await {
            Ok(s) => s,
            Err(StoreError::ConditionFailed) => return expired(),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(company_id = %company, "me session started");
        let mut resp = pages::see_other(&format!("/me/{company}"))?;
        let max_age = portal_shared::adapters::store::me::SESSION_LIFETIME.whole_seconds();
        let cookie = self.session_cookie(company, session.reveal(), max_age);
        resp.headers_mut().append(SET_COOKIE, cookie.parse().map_err(ApiError::internal)?);
        Ok(resp)
    }

    /// Opens one inspection of the list: a POST from the list's page, since it issues a link (a
    /// GET, which a mail scanner or a prefetch may make, never writes).
    pub(crate) async fn me_open(&self, req: &Request, company: &str, inspection: &str) -> ApiResult {
        let company = Self::me_company(company)?;
        self.same_origin(req)?;
        let inspection: InspectionId = inspection.parse().map_err(|_| ApiError::NotFound)?;
        let (_, session) = self.me_context(req, company).await?;
        let Some(session) = session else { return pages::see_other(&format!("/me/{company}")) };
        let entry = self.store.my_inspection(company, &session.email, inspection).await?.ok_or(ApiError::NotFound)?;
        let now = self.now();
        let (_, token) = self
            .store
            .modify_inspection(company, inspection, |_, i| {
                // Still this address's, not revoked: the list entry may be a moment old.
                let idx = i
                    .people
                    .iter()
                    .position(|p| p.id == entry.person_id && !p.revoked && p.email.as_ref() == Some(&session.email))
                    .ok_or(ApiError::NotFound)?;
                let (issued, writes) = IssuedToken::issue(i, idx, now, Issue::Me)?;
                Ok((issued.token, writes))
            })
            .await?;
        pages::see_other(&Self::portal_path(&token))
    }

    pub(crate) async fn me_logout(&self, req: &Request, company: &str) -> ApiResult {
        let company = Self::me_company(company)?;
        self.same_origin(req)?;
        if let Some(secret) = cookie(req, SESSION_COOKIE).and_then(|raw| MeSecret::parse(MeSecret::SESSION, &raw)) {
            self.store.end_session(&secret).await?;
        }
        let mut resp = pages::see_other(&format!("/me/{company}"))?;
        let cookie = self.session_cookie(company, "", 0);
        resp.headers_mut().append(SET_COOKIE, cookie.parse().map_err(ApiError::internal)?);
        Ok(resp)
    }
}
