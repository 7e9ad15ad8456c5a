//! template.yaml held to what production needs, without deploying it: every asynchronous trigger
//! ends somewhere when it keeps failing, every function has logs that expire and alarms, no secret
//! is in an environment variable, a second stage in the same account collides with nothing, and
//! nothing makes `sam deploy --guided` stop to ask. (The lint gates in scripts/test check the rest:
//! cfn-lint, AWS's serverless rules and `sam validate --lint`.)

use std::collections::BTreeSet;

use serde_yaml::Value;

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

/// `!Tag value` → (tag, value); anything else → ("", value).
fn tagged(v: &Value) -> (String, &Value) {
    match v {
        Value::Tagged(t) => (t.tag.to_string(), &t.value),
        other => (String::new(), other),
    }
}

fn resources(t: &Value) -> Vec<(String, Value)> {
    t["Resources"].as_mapping().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone())).collect()
}

fn of_type(t: &Value, ty: &str) -> Vec<(String, Value)> {
    resources(t).into_iter().filter(|(_, r)| r["Type"] == ty).collect()
}

fn functions(t: &Value) -> Vec<(String, Value)> {
    of_type(t, "AWS::Serverless::Function")
}

fn events(f: &Value) -> Vec<(String, Value)> {
    f["Properties"]["Events"]
        .as_mapping()
        .map(|m| m.iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone())).collect())
        .unwrap_or_default()
}

#[test]
fn every_asynchronous_trigger_has_somewhere_to_fail_to() {
    let t = template();
    let mut async_triggers = 0;
    for (name, f) in functions(&t) {
        for (event, e) in events(&f) {
            match e["Type"].as_str().unwrap() {
                "S3" | "SNS" => {
                    async_triggers += 1;
                    let on_failure = &f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
                    assert_eq!(on_failure["Type"], "SQS", "{name}.{event}: no on-failure destination");
                    let retries = f["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64();
                    assert!(retries.is_some_and(|r| r <= 2), "{name}.{event}: retries bounded");
                    if e["Type"] == "SNS" {
                        assert!(e["Properties"]["RedrivePolicy"].is_mapping(), "{name}.{event}: SNS redrive policy");
                    }
                }
                "ScheduleV2" => {
                    async_triggers += 1;
                    assert!(e["Properties"]["DeadLetterConfig"].is_mapping(), "{name}.{event}: no dead-letter queue");
                    assert!(e["Properties"]["RetryPolicy"].is_mapping(), "{name}.{event}: no retry policy");
                }
                "HttpApi" => {}
                other => panic!("{name}.{event}: an event type this test does not know: {other}"),
            }
        }
    }
    assert_eq!(async_triggers, 3, "the schedule, uploads and email events");
}

#[test]
fn every_function_has_expiring_logs_and_alarms() {
    let t = template();
    let log_groups = of_type(&t, "AWS::Logs::LogGroup");
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    for (name, _) in functions(&t) {
        let group = log_groups
            .iter()
            .find(|(_, g)| {
                let (tag, v) = tagged(&g["Properties"]["LogGroupName"]);
                tag == "!Sub" && v.as_str() == Some(&format!("/aws/lambda/${{{name}}}"))
            })
            .unwrap_or_else(|| panic!("{name} has no log group"));
        assert_eq!(tagged(&group.1["Properties"]["RetentionInDays"]).1, "LogRetentionDays", "{name}: retention");
        for metric in ["Errors", "Throttles", "Duration"] {
            let found = alarms.iter().any(|(_, a)| {
                let p = &a["Properties"];
                p["Namespace"] == "AWS/Lambda"
                    && p["MetricName"] == metric
                    && p["Dimensions"][0]["Value"]
                        == Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                            tag: serde_yaml::value::Tag::new("Ref"),
                            value: Value::String(name.clone()),
                        }))
                    && tagged(&p["AlarmActions"][0]).1 == "AlarmTopic"
            });
            assert!(found, "{name} has no {metric} alarm to the alarm topic");
        }
    }
    // The log level is Lambda's, set by a parameter, not a hard-coded RUST_LOG.
    let globals = &t["Globals"]["Function"];
    assert_eq!(tagged(&globals["LoggingConfig"]["ApplicationLogLevel"]).1, "LogLevel");
    assert!(globals["Environment"]["Variables"]["RUST_LOG"].is_null());
    assert_eq!(globals["Tracing"], "Active");
}

#[test]
fn no_secret_is_in_an_environment_variable() {
    let t = template();
    let secrets: BTreeSet<String> =
        of_type(&t, "AWS::SecretsManager::Secret").into_iter().map(|(name, _)| name).collect();
    assert_eq!(secrets.len(), 3, "admin key, webhook signing secrets, Stripe key");
    let no_echo: BTreeSet<String> = t["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["NoEcho"] == true)
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    assert!(no_echo.is_empty(), "secrets are not parameters: {no_echo:?}");
    let mut envs = vec![("Globals".to_owned(), t["Globals"]["Function"]["Environment"]["Variables"].clone())];
    envs.extend(functions(&t).into_iter().map(|(n, f)| (n, f["Properties"]["Environment"]["Variables"].clone())));
    let mut named = 0;
    for (function, vars) in envs {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            let key = k.as_str().unwrap();
            let (tag, value) = tagged(v);
            let looks_secret = ["KEY", "SECRET", "TOKEN", "PASSWORD"].iter().any(|w| key.contains(w));
            if looks_secret {
                // Only the name of a Secrets Manager secret, never a value.
                assert!(key.ends_with("_SECRET"), "{function}.{key} looks like a secret value");
                assert_eq!(tag, "!Ref", "{function}.{key}");
                assert!(secrets.contains(value.as_str().unwrap()), "{function}.{key} names no secret");
                named += 1;
            }
            if let Some(s) = value.as_str() {
                assert!(!s.starts_with("sk_") && !s.starts_with("whsec_"), "{function}.{key} holds a literal secret");
            }
        }
    }
    // Each secret is named where it is read, and the Stripe key's name also where the staff
    // preview needs to know that Pay Now is offered (the staff API may not read the key).
    assert_eq!(named, 4, "admin key (staff-api), signing secrets (payment-webhook), Stripe key (link, staff-api)");
}

/// The properties that give a resource its physical name.
const NAME_PROPERTIES: &[&str] =
    &["BucketName", "TableName", "QueueName", "TopicName", "LogGroupName", "FunctionName", "AlarmName", "Name"];

#[test]
fn two_stages_in_one_account_share_no_physical_name() {
    let t = template();
    let logical: BTreeSet<String> = resources(&t).into_iter().map(|(n, _)| n).collect();
    for (name, r) in resources(&t) {
        for prop in NAME_PROPERTIES {
            let Some(v) = r["Properties"].get(*prop) else { continue };
            let (tag, value) = tagged(v);
            assert_eq!(tag, "!Sub", "{name}.{prop} is a fixed name: a second stage would collide");
            let s = value.as_str().unwrap();
            let unique = s.contains("${Stage}")
                || s.contains("${AWS::StackName}")
                || logical.iter().any(|l| s.contains(&format!("${{{l}}}")));
            assert!(unique, "{name}.{prop} = {s} is the same in every stage");
        }
    }
    // Account-wide things are created by one stage only, or named by the service.
    for (name, identity) in of_type(&t, "AWS::SES::EmailIdentity") {
        assert!(identity["Condition"].is_string(), "{name}: SES identities belong to the account");
    }
    for (name, f) in functions(&t) {
        for (event, e) in events(&f) {
            if e["Type"] == "ScheduleV2" {
                assert_eq!(e["Properties"]["OmitName"], true, "{name}.{event}: schedule names are per account");
            }
        }
    }
    // The longest bucket name fits S3's 63 characters: a 20-character stage, a 12-digit account and
    // the longest region name.
    let (_, bucket) = of_type(&t, "AWS::S3::Bucket").remove(0);
    let pattern = tagged(&bucket["Properties"]["BucketName"]).1.as_str().unwrap().to_owned();
    let longest = pattern
        .replace("${Stage}", &"s".repeat(20))
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "ap-southeast-2");
    assert!(longest.len() <= 63, "{longest} is {} characters", longest.len());
    let stage_pattern = t["Parameters"]["Stage"]["AllowedPattern"].as_str().unwrap();
    assert!(stage_pattern.ends_with("{1,20}"), "the stage length this test assumes: {stage_pattern}");
}

#[test]
fn every_route_says_it_is_public_so_a_guided_deploy_asks_nothing() {
    let t = template();
    let (_, api) = of_type(&t, "AWS::Serverless::HttpApi").remove(0);
    assert_eq!(api["Properties"]["Auth"]["DefaultAuthorizer"], "AWS_IAM", "a route without Auth is locked");
    assert!(matches!(api["Properties"]["AccessLogSettings"]["DestinationArn"], Value::Tagged(_)), "API access logs");
    let mut routes = 0;
    for (name, f) in functions(&t) {
        for (event, e) in events(&f) {
            if e["Type"] == "HttpApi" {
                routes += 1;
                assert_eq!(e["Properties"]["Auth"]["Authorizer"], "NONE", "{name}.{event}: the function authenticates");
            }
        }
    }
    assert!(routes >= 18, "{routes}");
}

#[test]
fn production_data_survives_and_money_has_room() {
    let t = template();
    let (_, table) = of_type(&t, "AWS::DynamoDB::Table").remove(0);
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"], true);
    assert_eq!(table["DeletionPolicy"], "Retain");
    let (_, bucket) = of_type(&t, "AWS::S3::Bucket").remove(0);
    let rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"].as_sequence().unwrap();
    assert!(rules.iter().any(|r| r["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64().is_some()));
    let reserved = |name: &str| {
        functions(&t).into_iter().find(|(n, _)| n == name).unwrap().1["Properties"]["ReservedConcurrentExecutions"]
            .clone()
    };
    assert!(
        matches!(reserved("PaymentWebhookFunction"), Value::Tagged(_)),
        "the webhook's concurrency can be reserved"
    );
    assert!(
        matches!(reserved("PublishFunction"), Value::Tagged(_)),
        "the publish function's concurrency can be capped"
    );
    // Off by default: a reservation fails to deploy on an account whose quota is still 10, and a
    // cap on the publish function would throttle staff publishing behind the every-minute job.
    for p in ["WebhookReservedConcurrency", "PublishMaxConcurrency"] {
        assert_eq!(t["Parameters"][p]["Default"], 0, "{p}");
    }
}

#[test]
fn sam_deploy_asks_nothing_every_parameter_without_a_default_is_in_samconfig() {
    let t = template();
    let required: Vec<String> = t["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, p)| p.get("Default").is_none())
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    assert!(required.contains(&"PublicBaseUrl".to_owned()) && required.contains(&"SenderEmail".to_owned()));
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml")).unwrap();
    let overrides: Vec<&str> = config.lines().filter_map(|l| l.trim().strip_prefix("parameter_overrides = ")).collect();
    assert_eq!(overrides.len(), 2, "prod and staging");
    for o in overrides {
        for p in &required {
            assert!(o.contains(&format!("{p}=")), "{p} missing from {o}");
        }
    }
}

/// The partition keys the bench meters heat by come from the table's definition: the table's and
/// every global secondary index's.
#[test]
fn the_heat_meter_knows_every_partition_key_of_the_table() {
    let schemas = portal_infra::template::Template::repository().unwrap().key_schemas().unwrap();
    let got: Vec<(Option<&str>, &str)> =
        schemas.iter().map(|k| (k.index.as_deref(), k.partition_attribute.as_str())).collect();
    assert_eq!(got, vec![(None, "PK"), (Some("GSI1"), "GSI1PK"), (Some("GSI2"), "GSI2PK"), (Some("DUE"), "DuePK")]);
    assert_eq!(schemas[0].sort_attribute.as_deref(), Some("SK"));
}
