//! The local stack: resources created from `template.yaml`, and a local API gateway that serves
//! every route of the template by calling the functions' handler libraries in-process, converting
//! requests and responses as API Gateway HTTP API (payload 2.0) does.

pub mod dev_checkout;
pub mod functions;
pub mod gateway;
pub mod mailbox;
pub mod resources;
pub mod s3_events;
pub mod seed;
pub mod template;
pub mod tls_proxy;
pub mod uploads;
