//! Foundations: small types and services every layer uses — ids, the clock, money, email
//! addresses, link and key credentials, configuration, the error type, logs and metrics.
//!
//! Nothing here imports from any other folder of this crate, and nothing here does I/O beyond
//! writing log and metric lines.

pub mod clock;
pub mod config;
pub mod credentials;
pub mod email;
pub mod ids;
pub mod local_time;
pub mod logging;
pub mod metrics;
pub mod money;
pub mod problem;
