//! Reads `template.yaml`: the HTTP routes of each function (for the gateway and its route-table
//! test) and the resource definitions the local stack creates (so local and cloud cannot drift).

use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    #[error("parsing template: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template: {0}")]
    Shape(String),
}

pub struct Template {
    root: Value,
}

/// One `HttpApi` event: `ANY /p/{token}` → `LinkFunction`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateRoute {
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Template {
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| TemplateError::Io(p.display().to_string(), e))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Template { root: serde_yaml::from_str(text)? })
    }

    /// The repository's template (found from this crate's directory).
    pub fn repository() -> Result<Self, TemplateError> {
        Self::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    /// The single resource of a CloudFormation type, with its logical id.
    pub fn resource_of_type(&self, ty: &str) -> Result<(&str, &Value), TemplateError> {
        let mut found = self.resources().filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty));
        let first = found.next().ok_or_else(|| TemplateError::Shape(format!("no {ty} resource")))?;
        if found.next().is_some() {
            return Err(TemplateError::Shape(format!("more than one {ty} resource")));
        }
        Ok(first)
    }

    /// The table's partition key attribute and each global secondary index's, from the
    /// `AWS::DynamoDB::Table` definition (what the bench meters partition heat by).
    pub fn key_schemas(&self) -> Result<Vec<portal_shared::adapters::roundtrips::KeySchema>, TemplateError> {
        use portal_shared::adapters::roundtrips::KeySchema;
        let table = self.properties_of_type("AWS::DynamoDB::Table")?;
        let key = |schema: &Value, kind: &str| -> Option<String> {
            schema.as_sequence()?.iter().find(|k| k["KeyType"] == kind)?["AttributeName"].as_str().map(str::to_owned)
        };
        let mut out = vec![KeySchema {
            index: None,
            partition_attribute: key(&table["KeySchema"], "HASH")
                .ok_or_else(|| TemplateError::Shape("no table key".into()))?,
            sort_attribute: key(&table["KeySchema"], "RANGE"),
        }];
        for gsi in table["GlobalSecondaryIndexes"].as_sequence().into_iter().flatten() {
            if let (Some(name), Some(attr)) = (gsi["IndexName"].as_str(), key(&gsi["KeySchema"], "HASH")) {
                out.push(KeySchema { index: Some(name.to_owned()), partition_attribute: attr, sort_attribute: None });
            }
        }
        Ok(out)
    }

    /// A resource by logical id (its whole definition).
    pub fn resource(&self, id: &str) -> Result<&Value, TemplateError> {
        self.resources().find(|(k, _)| *k == id).map(|(_, r)| r).ok_or_else(|| TemplateError::Shape(format!("no {id}")))
    }

    pub fn properties_of_type(&self, ty: &str) -> Result<&Value, TemplateError> {
        let (id, r) = self.resource_of_type(ty)?;
        r.get("Properties").ok_or_else(|| TemplateError::Shape(format!("{id} has no Properties")))
    }

    /// Every HTTP API route of every function.
    pub fn http_routes(&self) -> Vec<TemplateRoute> {
        let mut routes = Vec::new();
        for (id, r) in self.resources() {
            if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let events = r.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|m| m.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event.get("Properties");
                let get = |k: &str| props.and_then(|p| p.get(k)).and_then(Value::as_str).map(str::to_owned);
                routes.push(TemplateRoute {
                    method: get("Method").unwrap_or_else(|| "ANY".into()).to_uppercase(),
                    path: get("Path").unwrap_or_else(|| "$default".into()),
                    function: id.to_owned(),
                });
            }
        }
        routes.sort();
        routes
    }

    /// A function's `MemorySize` in MB: its own, else the `Globals` one, else Lambda's default (128).
    pub fn function_memory(&self, function: &str) -> u64 {
        let own = self.resource(function).ok().and_then(|r| r.get("Properties")?.get("MemorySize")?.as_u64());
        let global = || self.root.get("Globals")?.get("Function")?.get("MemorySize")?.as_u64();
        own.or_else(global).unwrap_or(128)
    }

    /// A function's `Timeout` in seconds: its own, else the `Globals` one, else Lambda's default (3).
    pub fn function_timeout(&self, function: &str) -> u64 {
        let own = self
            .resources()
            .find(|(id, _)| *id == function)
            .and_then(|(_, r)| r.get("Properties")?.get("Timeout")?.as_u64());
        let global = || self.root.get("Globals")?.get("Function")?.get("Timeout")?.as_u64();
        own.or_else(global).unwrap_or(3)
    }

    /// Event types (HttpApi, ScheduleV2, S3, …) of one function.
    pub fn event_types(&self, function: &str) -> Vec<String> {
        self.resources()
            .find(|(id, _)| *id == function)
            .and_then(|(_, r)| r.get("Properties")?.get("Events")?.as_mapping().cloned())
            .map(|m| m.values().filter_map(|e| e.get("Type")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The environment variables a function gets on AWS: the `Globals` ones and its own.
    pub fn environment(&self, function: &str) -> std::collections::BTreeSet<String> {
        let names = |v: Option<&Value>| -> Vec<String> {
            v.and_then(|v| v.get("Environment")?.get("Variables")?.as_mapping().cloned())
                .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let own = self.resources().find(|(id, _)| *id == function).and_then(|(_, r)| r.get("Properties"));
        let global = self.root.get("Globals").and_then(|g| g.get("Function"));
        names(global).into_iter().chain(names(own)).collect()
    }

    /// Every variable the template sets on any function.
    pub fn declared_environment(&self) -> std::collections::BTreeSet<String> {
        let functions: Vec<String> = self
            .resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
            .map(|(id, _)| id.to_owned())
            .collect();
        functions.iter().flat_map(|f| self.environment(f)).collect()
    }
}
