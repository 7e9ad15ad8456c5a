//! Adapters: the outside world behind small types of our own — DynamoDB (the [`store`]), S3
//! ([`s3`]), SES ([`ses`]), Secrets Manager ([`secrets_manager`]), Stripe ([`stripe`]), PDF
//! rendering ([`pdf`]), ZIP archives written to S3 ([`zip`]), and the SDK configuration and interceptors they share ([`aws`],
//! [`roundtrips`]).
//!
//! Adapters translate; they decide nothing. They may use `domain` and `foundation`, never a use
//! case or the web layer.

pub mod aws;
pub mod pdf;
pub mod roundtrips;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;
#[cfg(feature = "ses")]
pub mod ses;
pub mod store;
pub mod stripe;
#[cfg(feature = "s3")]
pub mod zip;
