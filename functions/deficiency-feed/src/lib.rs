//! The deficiency-feed function: the customer portal of a building contact.
//!
//! - `GET /c/{token}`: the contact's buildings and their published documents (per the contact's
//!   permissions), and the open deficiencies (HTML, or JSON with `Accept: application/json`).
//! - `GET /c/{token}/deficiencies`: unresolved deficiencies across the contact's buildings,
//!   newest first, with an opaque cursor; at most one query per building touched.
//! - `GET /c/{token}/buildings/{id}/deficiencies`: resolved and unresolved for one building.
//!
//! While the company's customer portal is off, every route answers 404. Bad tokens get the same
//! 404 as everywhere (malformed ones without a read). Document opens are the gate function's.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use portal_shared::adapters::store::Store;
use portal_shared::domain::customers::EnrollmentStatus;
use portal_shared::foundation::ids::BuildingId;
use portal_shared::usecases::customer_portal::{self, FeedPage};
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{json, page_limit, query_param, segments, wants_json, ApiResult};
use portal_shared::{by_method, web::pages, ApiError, Config};

pub struct DeficiencyFeed {
    config: Config,
    store: Store,
}

impl DeficiencyFeed {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        DeficiencyFeed { store: Store::for_config(sdk, &config), config }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["c", token] => by_method!(req; GET => self.portal(&req, token).await),
            ["c", token, "deficiencies"] => by_method!(req; GET => self.home(&req, token).await),
            ["c", token, "buildings", b, "deficiencies"] => by_method!(req; GET => self.building(&req, token, b).await),
            _ => Err(ApiError::NotFound),
        }
    }

    async fn portal(&self, req: &Request, raw: &str) -> ApiResult {
        let (token, mut ctx) = self.store.resolve_customer(raw).await?;
        if ctx.contact.status != EnrollmentStatus::Enrolled {
            // First visit: the contact is now enrolled (a conflict just means someone else did it).
            ctx.contact.status = EnrollmentStatus::Enrolled;
            let _ = self.store.save_contact(ctx.company.id, &mut ctx.contact, vec![]).await;
        }
        let view = customer_portal::view(&self.store, &ctx.company, &ctx.contact).await?;
        let feed = customer_portal::home_feed(&self.store, &ctx.company, &ctx.contact, 20, None).await?;
        if wants_json(req) {
            let mut body = serde_json::to_value(&view).map_err(ApiError::internal)?;
            body["deficiencies"] = serde_json::to_value(&feed).map_err(ApiError::internal)?;
            json(StatusCode::OK, &body)
        } else {
            pages::html(StatusCode::OK, pages::customer(&view, &feed.items, Some(&format!("/c/{}", token.reveal()))))
        }
    }

    async fn home(&self, req: &Request, raw: &str) -> ApiResult {
        let (_, ctx) = self.store.resolve_customer(raw).await?;
        let limit = page_limit(req)? as usize;
        let page = customer_portal::home_feed(
            &self.store,
            &ctx.company,
            &ctx.contact,
            limit,
            query_param(req, "cursor").as_deref(),
        )
        .await?;
        feed(page)
    }

    async fn building(&self, req: &Request, raw: &str, b: &str) -> ApiResult {
        let (_, ctx) = self.store.resolve_customer(raw).await?;
        let b: BuildingId = b.parse().map_err(|_| ApiError::NotFound)?;
        let limit = page_limit(req)? as usize;
        let cursor = query_param(req, "cursor");
        let page = customer_portal::building_feed(&self.store, &ctx.company, &ctx.contact, b, limit, cursor.as_deref())
            .await?;
        feed(page)
    }
}

fn feed(page: FeedPage) -> ApiResult {
    json(StatusCode::OK, &page)
}

impl HttpFunction for DeficiencyFeed {
    async fn handle(&self, req: Request) -> Response<Body> {
        pages::serve_pages(req, &self.config, |req| self.route(req)).await
    }

    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}
