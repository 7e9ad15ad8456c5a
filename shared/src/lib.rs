//! Everything the six functions of the inspection portal share, in layers that only import
//! downwards (`scripts/module-graph` checks it on every `scripts/test`):
//!
//! ```text
//! web/         HTTP at the edge: Lambda entry, request plumbing, problem answers, pages, auth
//!   | uses
//! usecases/    what the product does over several parts: publishing, the outbox, notifications,
//!   |          the customer portal, SES events, outbound webhook delivery, upload checks
//! adapters/    the outside world: DynamoDB (store), S3, SES, Secrets Manager, Stripe, PDF
//!   |
//! domain/      the rules, pure: inspections, gating, payments, settings, templates, events
//!   |
//! foundation/  small types everything uses: ids, time, money, email addresses, credentials,
//!              configuration, errors, logging, metrics
//! ```
//!
//! Functions stay thin: they parse a request into the types defined here, call a domain function,
//! a use case or the store, and answer through [`web`]. Everything that must behave the same in
//! every function (keys, tokens, error mapping, round-trip counting) lives here exactly once.
//! `docs/architecture.md` walks a request through the layers.

pub mod adapters;
pub mod domain;
pub mod foundation;
pub mod usecases;
pub mod web;

pub use foundation::config::Config;
pub use foundation::problem::ApiError;
