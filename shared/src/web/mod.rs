//! The web layer: what turns a Lambda event into a call and its result into an answer — the
//! cold-start [`entry`], request plumbing ([`http`], [`apigw`]), staff and admin [`auth`], the
//! server-rendered [`pages`] and the document [`delivery`] answers (a redirect to S3, or a locked
//! page).
//!
//! The top layer: it may use every other folder; nothing below imports from it.

pub mod apigw;
pub mod auth;
#[cfg(feature = "s3")]
pub mod delivery;
pub mod entry;
pub mod http;
pub mod pages;
