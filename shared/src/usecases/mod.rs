//! Use cases: what the product does across several parts, orchestrating domain rules with the
//! adapters — scheduled and upload-driven [`publishing`], the email [`outbox`] and the
//! [`notifications`] it sends, the [`customer_portal`], SES's [`email_events`], queueing [`reminders`], delivering
//! [`outbound_webhooks`], checking [`uploads`], and a person's or a whole company's data
//! ([`privacy`], [`offboarding`]).
//!
//! They may use `adapters`, `domain` and `foundation`; never the web layer (a use case answers
//! with values and errors, not HTTP responses).

pub mod customer_portal;
#[cfg(feature = "ses")]
pub mod email_events;
#[cfg(feature = "ses")]
pub mod notifications;
#[cfg(feature = "s3")]
pub mod offboarding;
#[cfg(feature = "outbound-webhooks")]
pub mod outbound_webhooks;
#[cfg(feature = "ses")]
pub mod outbox;
pub mod payment_events;
pub mod privacy;
pub mod publishing;
pub mod reminders;
pub mod staff_alerts;
#[cfg(feature = "s3")]
pub mod uploads;
