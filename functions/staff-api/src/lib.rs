//! The staff API: the authenticated back office that creates what the other functions serve.
//!
//! `/admin/...` is the platform admin (`PLATFORM_ADMIN_KEY`); `/staff/...` is a company's staff,
//! authenticated by a staff API key stored only as its hash. Every staff request is scoped to the
//! key's company: keys are built from that company id, so another tenant's data is unreachable.

mod companies;
mod customers;
mod documents;
mod inspections;
mod offboarding;
mod privacy;
mod settings;
mod webhooks;

/// Staff allowances (tests and redeliveries of an endpoint) count in fixed windows of this length.
pub use webhooks::STAFF_WINDOW_SECONDS;

use lambda_http::{Body, Request, Response};
use portal_shared::adapters::s3::Blobs;
use portal_shared::adapters::store::Store;
use portal_shared::web::entry::HttpFunction;
use portal_shared::web::http::{segments, serve, ApiResult};
use portal_shared::{by_method, ApiError, Config};

pub struct StaffApi {
    config: Config,
    store: Store,
    blobs: Blobs,
    secrets: portal_shared::adapters::secrets_manager::Secrets,
}

impl StaffApi {
    /// Now, by this function's clock (the system clock on Lambda; a test's own in tests).
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.store.clock().now()
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        StaffApi {
            store: Store::for_config(sdk, &config),
            blobs: Blobs::new(sdk, config.bucket_name.clone().unwrap_or_default(), config.s3_force_path_style),
            secrets: portal_shared::adapters::secrets_manager::Secrets::new(sdk, config.secrets_cache),
            config,
        }
    }

    async fn route(&self, req: Request) -> ApiResult {
        let segs = segments(&req);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match segs.as_slice() {
            ["admin", rest @ ..] => {
                portal_shared::web::auth::admin(&self.secrets, &self.config, &req).await?;
                match rest {
                    ["companies"] => by_method!(req; POST => companies::create(self, &req).await),
                    ["companies", id] => by_method!(req;
                        GET => companies::get(self, id).await,
                        PATCH => companies::update(self, &req, id).await,
                        DELETE => offboarding::delete(self, &req, id).await),
                    // A company leaving: everything it has, then nothing left.
                    ["companies", id, "export"] => by_method!(req; POST => offboarding::request_export(self, id).await),
                    ["companies", id, "exports", export] => {
                        by_method!(req; GET => offboarding::export(self, id, export).await)
                    }
                    ["companies", id, "deletion"] => by_method!(req; GET => offboarding::deletion(self, id).await),
                    // A company's keys, for the platform admin (a company locked out of its own).
                    ["companies", id, "keys"] => {
                        let c = companies::existing(self, id).await?;
                        by_method!(req;
                            GET => settings::list_keys(self, c).await,
                            POST => settings::create_key(self, c, "platform-admin", &req).await)
                    }
                    ["companies", id, "keys", key] => {
                        let c = companies::existing(self, id).await?;
                        by_method!(req; DELETE => settings::revoke_key(self, c, "platform-admin", key).await)
                    }
                    ["payments", "unmatched"] => by_method!(req; GET => documents::unmatched_unknown(self, &req).await),
                    _ => Err(ApiError::NotFound),
                }
            }
            ["staff", rest @ ..] => {
                let staff = portal_shared::web::auth::staff(&self.store, &req).await?;
                match rest {
                    ["settings"] => by_method!(req;
                        GET => settings::get(self, &staff).await,
                        PATCH => settings::update(self, &staff, &req).await),
                    ["settings", "logo"] => by_method!(req; POST => settings::logo_upload(self, &staff, &req).await),
                    ["keys"] => by_method!(req;
                        GET => settings::list_keys(self, staff.company_id).await,
                        POST => settings::create_key(self, staff.company_id, &staff.key_id.to_string(), &req).await),
                    ["keys", id] => by_method!(req;
                        DELETE => settings::revoke_key(self, staff.company_id, &staff.key_id.to_string(), id).await),
                    ["sessions", "end"] => by_method!(req; POST => settings::end_me_sessions(self, &staff, &req).await),
                    ["webhooks"] => by_method!(req;
                        GET => webhooks::list(self, &staff).await,
                        POST => webhooks::create(self, &staff, &req).await),
                    ["webhooks", id] => by_method!(req;
                        GET => webhooks::get(self, &staff, id).await,
                        PATCH => webhooks::update(self, &staff, &req, id).await,
                        DELETE => webhooks::delete(self, &staff, id).await),
                    ["webhooks", id, "rotate-secret"] => {
                        by_method!(req; POST => webhooks::rotate(self, &staff, id).await)
                    }
                    ["webhooks", id, "test"] => by_method!(req; POST => webhooks::test(self, &staff, id).await),
                    ["webhooks", id, "deliveries"] => {
                        by_method!(req; GET => webhooks::deliveries(self, &staff, &req, id).await)
                    }
                    ["webhooks", id, "deliveries", event, "redeliver"] => {
                        by_method!(req; POST => webhooks::redeliver(self, &staff, id, event).await)
                    }
                    ["privacy", "exports"] => {
                        by_method!(req; POST => privacy::request_export(self, &staff, &req).await)
                    }
                    ["privacy", "exports", id] => by_method!(req; GET => privacy::export(self, &staff, id).await),
                    ["privacy", "erasures"] => {
                        by_method!(req; POST => privacy::request_erasure(self, &staff, &req).await)
                    }
                    ["privacy", "erasures", id] => by_method!(req; GET => privacy::erasure(self, &staff, id).await),
                    ["suppressions"] => by_method!(req; GET => settings::suppressions(self, &staff, &req).await),
                    ["suppressions", address] => by_method!(req;
                        DELETE => settings::unsuppress(self, &staff, address).await),
                    ["users"] => by_method!(req;
                        GET => settings::list_users(self, &staff).await,
                        POST => settings::add_user(self, &staff, &req).await),
                    ["inspections"] => by_method!(req;
                        GET => inspections::list(self, &staff, &req).await,
                        POST => inspections::create(self, &staff, &req, None).await),
                    ["inspections", id] => by_method!(req;
                        GET => inspections::get(self, &staff, id).await,
                        PATCH => inspections::reschedule(self, &staff, &req, id).await),
                    ["inspections", id, "cancel"] => by_method!(req;
                        POST => inspections::cancel(self, &staff, &req, id).await),
                    ["inspections", id, "reinstate"] => by_method!(req;
                        POST => inspections::reinstate(self, &staff, &req, id).await),
                    ["inspections", id, "requirements"] => by_method!(req;
                        PATCH => inspections::change_requirements(self, &staff, &req, id).await),
                    ["inspections", id, "services"] => by_method!(req;
                        POST => inspections::add_service(self, &staff, &req, id).await),
                    ["inspections", id, "quotes"] => {
                        by_method!(req; GET => inspections::quotes(self, &staff, id).await)
                    }
                    ["inspections", id, "findings"] => by_method!(req;
                        GET => inspections::findings(self, &staff, id).await,
                        POST => inspections::record_finding(self, &staff, &req, id).await),
                    ["inspections", id, "cover-photo"] => by_method!(req;
                        PUT => inspections::set_cover_photo(self, &staff, &req, id).await,
                        DELETE => inspections::remove_cover_photo(self, &staff, id).await),
                    ["inspections", id, "photos"] => by_method!(req;
                        POST => inspections::photo_upload(self, &staff, &req, id).await),
                    ["inspections", id, "findings", finding] => by_method!(req;
                        DELETE => inspections::remove_finding(self, &staff, id, finding).await),
                    ["inspections", id, "people"] => by_method!(req;
                        POST => inspections::add_person(self, &staff, &req, id).await),
                    ["inspections", id, "people", person] => by_method!(req;
                        DELETE => inspections::remove_person(self, &staff, id, person).await),
                    ["inspections", id, "people", person, "preview-link"] => by_method!(req;
                        POST => documents::preview_link(self, &staff, id, person).await),
                    ["inspections", id, "people", person, "token"] => by_method!(req;
                        POST => inspections::reissue_token(self, &staff, id, person).await,
                        DELETE => inspections::revoke_token(self, &staff, id, person).await),
                    ["inspections", id, "documents"] => by_method!(req;
                        GET => documents::list(self, &staff, id).await,
                        POST => documents::create(self, &staff, &req, id).await),
                    ["inspections", id, "payments"] => by_method!(req;
                        POST => documents::record_payment(self, &staff, &req, id).await),
                    ["inspections", id, "preview", person] => by_method!(req;
                        GET => documents::preview_portal(self, &staff, &req, id, person).await),
                    ["inspections", id, "preview", person, "documents", doc] => by_method!(req;
                        GET => documents::preview_document(self, &staff, &req, id, person, doc).await),
                    ["inspections", id, "emails"] => {
                        by_method!(req; GET => documents::emails(self, &staff, &req, id).await)
                    }
                    ["payments", "unmatched"] => by_method!(req; GET => documents::unmatched(self, &staff, &req).await),
                    ["inspections", id, "audit"] => {
                        by_method!(req; GET => documents::audit(self, &staff, &req, id).await)
                    }
                    ["documents", id] => by_method!(req;
                        GET => documents::get(self, &staff, id).await,
                        PATCH => documents::update(self, &staff, &req, id).await),
                    ["documents", id, "upload-url"] => by_method!(req;
                        POST => documents::new_upload_url(self, &staff, id).await),
                    ["documents", id, "uploaded"] => by_method!(req;
                        POST => documents::complete_upload(self, &staff, id).await),
                    ["documents", id, "download"] => {
                        by_method!(req; GET => documents::download(self, &staff, id).await)
                    }
                    ["documents", id, "rebuild"] => by_method!(req; POST => documents::rebuild(self, &staff, id).await),
                    ["documents", id, "resend"] => {
                        by_method!(req; POST => documents::resend(self, &staff, &req, id).await)
                    }
                    ["buildings"] => by_method!(req;
                        GET => customers::list_buildings(self, &staff, &req).await,
                        POST => customers::create_building(self, &staff, &req).await),
                    ["buildings", id] => by_method!(req; GET => customers::get_building(self, &staff, id).await),
                    ["buildings", id, "inspections"] => by_method!(req;
                        POST => inspections::create(self, &staff, &req, Some(id.parse().map_err(|_| ApiError::NotFound)?)).await),
                    ["buildings", id, "deficiencies"] => by_method!(req;
                        GET => customers::list_deficiencies(self, &staff, &req, id).await,
                        POST => customers::create_deficiency(self, &staff, &req, id).await),
                    ["buildings", b, "deficiencies", f, action @ ("resolve" | "reopen")] => by_method!(req;
                        POST => customers::resolve_deficiency(self, &staff, b, f, *action == "resolve").await),
                    ["contacts"] => by_method!(req;
                        GET => customers::list_contacts(self, &staff, &req).await,
                        POST => customers::create_contact(self, &staff, &req).await),
                    ["contacts", id] => by_method!(req;
                        GET => customers::get_contact(self, &staff, id).await,
                        PATCH => customers::update_contact(self, &staff, &req, id).await),
                    ["contacts", id, "invite"] => by_method!(req; POST => customers::invite(self, &staff, id).await),
                    ["contacts", id, "token"] => by_method!(req;
                        POST => customers::reissue_contact_link(self, &staff, id).await,
                        DELETE => customers::revoke_contact_links(self, &staff, id).await),
                    ["contacts", id, "preview"] => {
                        by_method!(req; GET => customers::preview(self, &staff, &req, id).await)
                    }
                    ["contacts", id, "audit"] => {
                        by_method!(req; GET => customers::contact_audit(self, &staff, &req, id).await)
                    }
                    _ => Err(ApiError::NotFound),
                }
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

impl HttpFunction for StaffApi {
    async fn handle(&self, req: Request) -> Response<Body> {
        serve(req, &self.config, |req| self.route(req)).await
    }

    async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}
