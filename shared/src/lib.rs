//! Domain, ports and AWS adapters shared by every function of the inspection portal.
//!
//! Functions stay thin: they parse a request into the types defined here, call a domain function or
//! the store, and map the result to a response with [`http`]. Everything that must behave the same
//! in every function (keys, tokens, error mapping, round-trip counting) lives here exactly once.

pub mod apigw;
pub mod auth;
#[cfg(feature = "s3")]
pub mod blobs;
#[cfg(feature = "checkout")]
pub mod checkout;
pub mod clock;
pub mod config;
pub mod customer_portal;
#[cfg(feature = "s3")]
pub mod delivery;
pub mod domain;
pub mod email;
#[cfg(feature = "ses")]
pub mod email_events;
pub mod entry;
pub mod http;
pub mod ids;
pub mod localtime;
pub mod logging;
#[cfg(feature = "ses")]
pub mod mailer;
#[cfg(feature = "secrets-manager")]
pub mod managed_secrets;
pub mod metrics;
pub mod money;
#[cfg(feature = "ses")]
pub mod notify;
#[cfg(feature = "ses")]
pub mod outbox;
pub mod pages;
pub mod problem;
pub mod publishing;
pub mod render;
pub mod roundtrips;
pub mod secrets;
pub mod store;
pub mod webhook;
#[cfg(feature = "outbound-webhooks")]
pub mod webhooks_out;

pub use config::Config;
pub use problem::ApiError;
