//! Creates the local stack's table, bucket and sender identity from `template.yaml`'s own
//! definitions: key schema, attribute definitions, GSIs (with projections) and TTL for the table;
//! CORS and versioning for the bucket; the SES email identity. Names are chosen locally (the
//! template's are account-specific). Creating what already exists is a no-op.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{BucketVersioningStatus, CorsConfiguration, CorsRule, VersioningConfiguration};
use serde_yaml::Value;

use crate::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Aws(String),
}

fn aws<E: std::error::Error + 'static>(what: &str, e: E) -> SetupError {
    SetupError::Aws(format!("{what}: {}", portal_shared::foundation::problem::error_chain(&e)))
}

/// Local names for the template's resources.
#[derive(Debug, Clone)]
pub struct LocalNames {
    pub table: String,
    pub bucket: String,
    pub sender: String,
}

impl LocalNames {
    /// The SES configuration set every email is sent with (named after the table).
    pub fn configuration_set(&self) -> String {
        format!("{}-mail", self.table)
    }
}

/// The secrets the template keeps in Secrets Manager, by the environment variable that names each
/// on the functions, and the plain variable a local run gives its value in.
pub const SECRETS: &[(&str, &str)] = &[
    ("PLATFORM_ADMIN_KEY_SECRET", "PLATFORM_ADMIN_KEY"),
    ("PAYMENT_WEBHOOK_SECRETS_SECRET", "PAYMENT_WEBHOOK_SECRETS"),
    ("STRIPE_SECRET_KEY_SECRET", "STRIPE_SECRET_KEY"),
];

/// Stores each value in Secrets Manager (moto) under `<prefix>/<variable>`, as an operator puts
/// the real values after a deploy (an existing secret gets a new value: a rotation), and returns
/// the variables naming them (their ARNs) that the functions read.
pub async fn put_secrets(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    values: &[(&str, String)],
) -> Result<Vec<(String, String)>, SetupError> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let mut out = Vec::new();
    for (variable, value) in values {
        let name = format!("{prefix}/{variable}");
        let arn = match sm.create_secret().name(&name).secret_string(value).send().await {
            Ok(o) => o.arn().unwrap_or(&name).to_owned(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => {
                let o = sm.put_secret_value().secret_id(&name).secret_string(value).send().await;
                o.map_err(|e| aws("PutSecretValue", e))?.arn().unwrap_or(&name).to_owned()
            }
            Err(e) => return Err(aws("CreateSecret", e)),
        };
        out.push(((*variable).to_owned(), arn));
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str, SetupError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| SetupError::Template(TemplateError::Shape(format!("expected a string at {key}"))))
}

fn list_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or(&[])
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, SetupError> {
    list_at(v, "KeySchema")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_at(k, "AttributeName")?)
                .key_type(KeyType::from(str_at(k, "KeyType")?))
                .build()
                .map_err(|e| aws("key schema", e))
        })
        .collect()
}

pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, template: &Template, name: &str) -> Result<(), SetupError> {
    let props = template.properties_of_type("AWS::DynamoDB::Table")?;
    let attrs = list_at(props, "AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(str_at(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(str_at(a, "AttributeType")?))
                .build()
                .map_err(|e| aws("attribute definition", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let gsis = list_at(props, "GlobalSecondaryIndexes")
        .iter()
        .map(|g| {
            let projection = g.get("Projection").cloned().unwrap_or(Value::Null);
            let mut p =
                Projection::builder().projection_type(ProjectionType::from(str_at(&projection, "ProjectionType")?));
            for attr in list_at(&projection, "NonKeyAttributes") {
                if let Some(a) = attr.as_str() {
                    p = p.non_key_attributes(a);
                }
            }
            GlobalSecondaryIndex::builder()
                .index_name(str_at(g, "IndexName")?)
                .set_key_schema(Some(key_schema(g)?))
                .projection(p.build())
                .build()
                .map_err(|e| aws("index", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let billing = props.get("BillingMode").and_then(Value::as_str).unwrap_or("PAY_PER_REQUEST");
    let created = ddb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(props)?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .billing_mode(BillingMode::from(billing))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(aws("CreateTable", e)),
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        if ttl.get("Enabled").and_then(Value::as_bool) == Some(true) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(str_at(ttl, "AttributeName")?)
                .enabled(true)
                .build()
                .map_err(|e| aws("ttl", e))?;
            ddb.update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| aws("UpdateTimeToLive", e))?;
        }
    }
    Ok(())
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, template: &Template, name: &str) -> Result<(), SetupError> {
    let props = template.properties_of_type("AWS::S3::Bucket")?;
    match s3.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => {}
        Err(e) => return Err(aws("CreateBucket", e)),
    }
    let rules = props.get("CorsConfiguration").map(|c| list_at(c, "CorsRules")).unwrap_or(&[]);
    if !rules.is_empty() {
        let strings =
            |v: &Value, k: &str| list_at(v, k).iter().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<_>>();
        let cors = rules
            .iter()
            .map(|r| {
                CorsRule::builder()
                    .set_allowed_methods(Some(strings(r, "AllowedMethods")))
                    .set_allowed_origins(Some(strings(r, "AllowedOrigins")))
                    .set_allowed_headers(Some(strings(r, "AllowedHeaders")))
                    .set_max_age_seconds(r.get("MaxAge").and_then(Value::as_i64).map(|m| m as i32))
                    .build()
                    .map_err(|e| aws("cors rule", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cfg = CorsConfiguration::builder().set_cors_rules(Some(cors)).build().map_err(|e| aws("cors", e))?;
        s3.put_bucket_cors().bucket(name).cors_configuration(cfg).send().await.map_err(|e| aws("PutBucketCors", e))?;
    }
    let versioned =
        props.get("VersioningConfiguration").and_then(|v| v.get("Status")).and_then(Value::as_str) == Some("Enabled");
    if versioned {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| aws("PutBucketVersioning", e))?;
    }
    Ok(())
}

pub async fn verify_sender(ses: &aws_sdk_ses::Client, template: &Template, sender: &str) -> Result<(), SetupError> {
    // The template declares the identity; locally the address is ours to choose.
    template.resource("SenderIdentity")?;
    ses.verify_email_identity().email_address(sender).send().await.map_err(|e| aws("VerifyEmailIdentity", e))?;
    Ok(())
}

pub async fn create_all(
    sdk: &aws_config::SdkConfig,
    template: &Template,
    names: &LocalNames,
) -> Result<(), SetupError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
    let ses = aws_sdk_ses::Client::new(sdk);
    create_table(&ddb, template, &names.table).await?;
    create_bucket(&s3, template, &names.bucket).await?;
    verify_sender(&ses, template, &names.sender).await?;
    create_configuration_set(&ses, template, &names.configuration_set()).await?;
    Ok(())
}

/// The template's SES configuration set (its event destination is SNS on AWS; locally the tests
/// hand SES-shaped notifications to the publish function).
pub async fn create_configuration_set(
    ses: &aws_sdk_ses::Client,
    template: &Template,
    name: &str,
) -> Result<(), SetupError> {
    template.resource_of_type("AWS::SES::ConfigurationSet")?;
    let set =
        aws_sdk_ses::types::ConfigurationSet::builder().name(name).build().map_err(|e| aws("configuration set", e))?;
    match ses.create_configuration_set().configuration_set(set).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConfigurationSetAlreadyExists") => Ok(()),
        Err(e) => Err(aws("CreateConfigurationSet", e)),
    }
}
