//! All six functions, built once, the way each Lambda builds itself on cold start.

use lambda_http::{Body, Request, Response};
use portal_deficiency_feed::DeficiencyFeed;
use portal_gate::Gate;
use portal_link::Link;
use portal_payment_webhook::PaymentWebhook;
use portal_publish::Publish;
use portal_shared::foundation::clock::Clock;
use portal_shared::foundation::config::ConfigError;
use portal_shared::web::entry::HttpFunction;
use portal_shared::Config;

use crate::template::Template;
use portal_staff_api::StaffApi;

/// A function of the template, by logical id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Link,
    Gate,
    PaymentWebhook,
    Publish,
    DeficiencyFeed,
    StaffApi,
}

impl Function {
    pub const ALL: [Function; 6] = [
        Function::Link,
        Function::Gate,
        Function::PaymentWebhook,
        Function::Publish,
        Function::DeficiencyFeed,
        Function::StaffApi,
    ];

    pub fn logical_id(self) -> &'static str {
        match self {
            Function::Link => "LinkFunction",
            Function::Gate => "GateFunction",
            Function::PaymentWebhook => "PaymentWebhookFunction",
            Function::Publish => "PublishFunction",
            Function::DeficiencyFeed => "DeficiencyFeedFunction",
            Function::StaffApi => "StaffApiFunction",
        }
    }
}

pub struct Functions {
    /// What these functions counted (each app's own, beside the process-wide counts).
    pub metrics: portal_shared::foundation::metrics::Recorder,
    pub link: Link,
    pub gate: Gate,
    pub payment_webhook: PaymentWebhook,
    pub publish: Publish,
    pub deficiency_feed: DeficiencyFeed,
    pub staff_api: StaffApi,
}

impl Functions {
    /// The six functions, each built as its Lambda is: with only the environment its template
    /// resource declares (`Globals` and its own). A variable the template sets on another function
    /// is missing here as it is on AWS, so a function that reads what it is not given fails
    /// locally too; a variable the template never sets (a local knob such as
    /// `S3_FORCE_PATH_STYLE`) reaches every function. All read the time from `clock`.
    pub fn from_template(
        sdk: &aws_config::SdkConfig,
        template: &Template,
        lookup: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        let declared = template.declared_environment();
        let config = |f: Function| {
            let own = template.environment(f.logical_id());
            let mut c =
                Config::from_lookup(|k| if declared.contains(k) && !own.contains(k) { None } else { lookup(k) })?;
            c.clock = clock.clone();
            Ok::<_, ConfigError>(c)
        };
        Self::build(sdk, config)
    }

    /// The six functions, each with exactly the environment a deployment gave it (`deployed`: by
    /// logical id, as CloudFormation resolved it; scripts/deploy-rehearsal reads it back from the
    /// deployed functions). What the template never sets (local knobs: endpoints, credentials,
    /// `S3_FORCE_PATH_STYLE`) comes from `lookup`. A function missing, or missing a variable it
    /// reads, is an error naming both.
    pub fn from_deployed(
        sdk: &aws_config::SdkConfig,
        template: &Template,
        deployed: &std::collections::HashMap<String, std::collections::HashMap<String, String>>,
        lookup: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<Self, String> {
        let declared = template.declared_environment();
        let config = |f: Function| {
            let id = f.logical_id();
            let own = deployed.get(id).ok_or_else(|| format!("{id} was not deployed"))?;
            let mut c = Config::from_lookup(|k| if declared.contains(k) { own.get(k).cloned() } else { lookup(k) })
                .map_err(|e| format!("{id}: {e} (its deployed environment lacks it)"))?;
            c.clock = clock.clone();
            Ok::<_, String>(c)
        };
        Self::build(sdk, config)
    }

    fn build<E>(sdk: &aws_config::SdkConfig, config: impl Fn(Function) -> Result<Config, E>) -> Result<Self, E> {
        Ok(Functions {
            metrics: Default::default(),
            link: Link::new(sdk, config(Function::Link)?),
            gate: Gate::new(sdk, config(Function::Gate)?),
            payment_webhook: PaymentWebhook::new(sdk, config(Function::PaymentWebhook)?),
            publish: Publish::new(sdk, config(Function::Publish)?),
            deficiency_feed: DeficiencyFeed::new(sdk, config(Function::DeficiencyFeed)?),
            staff_api: StaffApi::new(sdk, config(Function::StaffApi)?),
        })
    }

    pub async fn call(&self, function: Function, req: Request) -> Response<Body> {
        // The AWS operations each handler calls are recorded under its logical id (IAM test), and
        // what it counts in these functions' recorder.
        let handled = portal_shared::adapters::roundtrips::as_function(function.logical_id(), async {
            match function {
                Function::Link => self.link.handle(req).await,
                Function::Gate => self.gate.handle(req).await,
                Function::PaymentWebhook => self.payment_webhook.handle(req).await,
                Function::Publish => self.publish.handle(req).await,
                Function::DeficiencyFeed => self.deficiency_feed.handle(req).await,
                Function::StaffApi => self.staff_api.handle(req).await,
            }
        });
        self.metrics.scope(handled).await
    }
}
