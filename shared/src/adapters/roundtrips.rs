//! Counts DynamoDB round trips, per request and per process, with an SDK interceptor: every
//! attempt the SDK puts on the wire (retries included) counts once. In the lab it also meters
//! partition heat (which table and index partitions each request writes and reads, per second),
//! the per-partition limits DynamoDB Local does not have. The budgets of docs/product.md §8 are asserted
//! on these numbers by the tests and reported by the benchmark.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

static TOTAL: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static CURRENT: Arc<AtomicU64>;
}

/// All round trips this process has made.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Runs `fut` with its own counter and returns its output with the round trips it made.
pub async fn measure<F: Future>(fut: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = CURRENT.scope(counter.clone(), fut).await;
    (out, counter.load(Ordering::Relaxed))
}

fn record() {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let _ = CURRENT.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
}

/// Attach to the DynamoDB client: `config::Builder::interceptor(RoundTripCounter)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundTripCounter;

impl Intercept for RoundTripCounter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        record();
        meter(context.request());
        Ok(())
    }
}

// ---- which AWS operations each function calls (for the IAM test) ----

tokio::task_local! {
    static FUNCTION: &'static str;
}

static CALLS: std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Runs `fut` as the function `name` (its template logical id): the AWS operations it calls are
/// recorded under that name.
pub async fn as_function<F: Future>(name: &'static str, fut: F) -> F::Output {
    FUNCTION.scope(name, fut).await
}

/// Every (function, service, operation) recorded in this process ("unknown" outside
/// [`as_function`]). A small set: one entry per distinct call site kind.
pub fn calls() -> Vec<(String, String, String)> {
    CALLS.lock().map(|c| c.iter().cloned().collect()).unwrap_or_default()
}

/// Records a call made without a request of its own: a presigned URL is used with the function's
/// credentials, so it needs the permission of the operation it signs.
pub fn record_call(service: &str, operation: &str) {
    let function = FUNCTION.try_with(|f| *f).unwrap_or("unknown");
    if let Ok(mut calls) = CALLS.lock() {
        calls.insert((function.to_owned(), service.to_owned(), operation.to_owned()));
    }
}

/// Attach to every SDK client: records the operation names each function calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct OperationRecorder;

impl Intercept for OperationRecorder {
    fn name(&self) -> &'static str {
        "OperationRecorder"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            record_call(m.service(), m.name());
        }
        Ok(())
    }
}

// ---- partition heat (the lab's stand-in for DynamoDB's per-partition limits) ----

/// A key schema the meter maps items onto: the table's partition key attribute, or a global
/// secondary index's (`index` named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub index: Option<String>,
    pub partition_attribute: String,
}

/// Writes and reads per (key schema, partition key value, second), while metering is on.
#[derive(Debug, Default)]
struct Heat {
    schemas: Vec<KeySchema>,
    writes: std::collections::HashMap<(String, i64), u32>,
    reads: std::collections::HashMap<(String, i64), u32>,
}

static HEAT: std::sync::Mutex<Option<Heat>> = std::sync::Mutex::new(None);
/// Whether metering is on: off, a request costs one atomic load (on Lambda it is always off).
static HEAT_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts metering partition heat for the table and indexes of `schemas` (the lab only: the
/// bench; nothing meters on Lambda).
pub fn heat_start(schemas: Vec<KeySchema>) {
    if let Ok(mut h) = HEAT.lock() {
        *h = Some(Heat { schemas, ..Heat::default() });
        HEAT_ON.store(true, Ordering::Relaxed);
    }
}

/// The hottest partition key's peak in any one-second window since [`heat_start`]: (writes/s,
/// its key), (reads/s, its key). Stops metering.
pub fn heat_stop() -> ((u32, String), (u32, String)) {
    HEAT_ON.store(false, Ordering::Relaxed);
    let heat = HEAT.lock().ok().and_then(|mut h| h.take()).unwrap_or_default();
    let peak = |m: &std::collections::HashMap<(String, i64), u32>| {
        m.iter().max_by_key(|(_, n)| **n).map(|((k, _), n)| (*n, k.clone())).unwrap_or_default()
    };
    (peak(&heat.writes), peak(&heat.reads))
}

/// The partition keys a DynamoDB request (`operation`, its JSON body) writes and reads, as
/// `<table or index>=<value>`, under `schemas`. An item written lands in the table's partition and
/// in each index whose partition attribute it carries; an update or delete names its table key
/// (and the index keys its update expression sets from values, as far as the expression says).
pub fn partitions_touched(
    operation: &str,
    body: &serde_json::Value,
    schemas: &[KeySchema],
) -> (Vec<String>, Vec<String>) {
    use serde_json::Value;
    let s = |v: &Value| v.get("S").and_then(Value::as_str).map(str::to_owned);
    let name = |k: &KeySchema| k.index.clone().unwrap_or_else(|| "table".into());
    let item_keys = |item: &Value| -> Vec<String> {
        schemas
            .iter()
            .filter_map(|k| item.get(&k.partition_attribute).and_then(s).map(|v| format!("{}={v}", name(k))))
            .collect()
    };
    let table_key = |key: &Value| -> Vec<String> {
        schemas
            .iter()
            .filter(|k| k.index.is_none())
            .filter_map(|k| key.get(&k.partition_attribute).and_then(s).map(|v| format!("table={v}")))
            .collect()
    };
    // `SET GSI1PK = :g, …`: the index keys an update sets from its values.
    let update_keys = |u: &Value| -> Vec<String> {
        let mut out = table_key(&u["Key"]);
        let expression = u.get("UpdateExpression").and_then(Value::as_str).unwrap_or_default();
        for k in schemas.iter().filter(|k| k.index.is_some()) {
            let pattern = format!("{} = :", k.partition_attribute);
            if let Some(at) = expression.find(&pattern) {
                let placeholder: String = expression[at + pattern.len() - 1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == ':' || *c == '_')
                    .collect();
                if let Some(v) = u["ExpressionAttributeValues"].get(&placeholder).and_then(s) {
                    out.push(format!("{}={v}", name(k)));
                }
            }
        }
        out
    };
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    match operation {
        "PutItem" => writes.extend(item_keys(&body["Item"])),
        "UpdateItem" => writes.extend(update_keys(body)),
        "DeleteItem" => writes.extend(table_key(&body["Key"])),
        "TransactWriteItems" => {
            for t in body["TransactItems"].as_array().into_iter().flatten() {
                if let Some(p) = t.get("Put") {
                    writes.extend(item_keys(&p["Item"]));
                } else if let Some(u) = t.get("Update") {
                    writes.extend(update_keys(u));
                } else if let Some(d) = t.get("Delete") {
                    writes.extend(table_key(&d["Key"]));
                } else if let Some(c) = t.get("ConditionCheck") {
                    reads.extend(table_key(&c["Key"]));
                }
            }
        }
        "BatchWriteItem" => {
            for requests in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                for r in requests.as_array().into_iter().flatten() {
                    writes.extend(item_keys(&r["PutRequest"]["Item"]));
                    writes.extend(table_key(&r["DeleteRequest"]["Key"]));
                }
            }
        }
        "GetItem" => reads.extend(table_key(&body["Key"])),
        "BatchGetItem" => {
            for t in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                for k in t["Keys"].as_array().into_iter().flatten() {
                    reads.extend(table_key(k));
                }
            }
        }
        "Query" => {
            let index = body.get("IndexName").and_then(Value::as_str);
            let condition = body.get("KeyConditionExpression").and_then(Value::as_str).unwrap_or_default();
            if let Some(k) = schemas.iter().find(|k| k.index.as_deref() == index) {
                // `<attr> = :v …`: the partition it reads.
                let placeholder = condition
                    .split(" AND ")
                    .find_map(|c| c.trim().strip_prefix(&format!("{} = ", k.partition_attribute)))
                    .map(str::trim);
                if let Some(v) = placeholder.and_then(|p| body["ExpressionAttributeValues"].get(p)).and_then(s) {
                    reads.push(format!("{}={v}", name(k)));
                }
            }
        }
        _ => {}
    }
    (writes, reads)
}

fn meter(request: &aws_smithy_runtime_api::http::Request) {
    if !HEAT_ON.load(Ordering::Relaxed) {
        return;
    }
    let Ok(mut guard) = HEAT.lock() else { return };
    let Some(heat) = guard.as_mut() else { return };
    let operation =
        request.headers().get("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or_default().to_owned();
    let Some(bytes) = request.body().bytes() else { return };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(bytes) else { return };
    let (writes, reads) = partitions_touched(&operation, &body, &heat.schemas);
    let second = time::OffsetDateTime::now_utc().unix_timestamp();
    for k in writes {
        *heat.writes.entry((k, second)).or_default() += 1;
    }
    for k in reads {
        *heat.reads.entry((k, second)).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> Vec<KeySchema> {
        vec![
            KeySchema { index: None, partition_attribute: "PK".into() },
            KeySchema { index: Some("GSI1".into()), partition_attribute: "GSI1PK".into() },
            KeySchema { index: Some("DUE".into()), partition_attribute: "DuePK".into() },
        ]
    }

    #[test]
    fn writes_land_in_the_table_and_every_index_their_items_carry_keys_for() {
        let body = json!({ "TransactItems": [
            { "Put": { "Item": { "PK": { "S": "COMPANY#c#INSPECTION#i" }, "SK": { "S": "EMAIL#x" },
                               "GSI1PK": { "S": "OUTBOX" } } } },
            { "Update": { "Key": { "PK": { "S": "RATE#a" }, "SK": { "S": "w" } },
                          "UpdateExpression": "SET GSI1PK = :g, n = :n",
                          "ExpressionAttributeValues": { ":g": { "S": "WEBHOOKDUE" }, ":n": { "N": "1" } } } },
            { "Delete": { "Key": { "PK": { "S": "COMPANY#c#INSPECTION#i" }, "SK": { "S": "SCHEDULE#d" } } } },
            { "ConditionCheck": { "Key": { "PK": { "S": "COMPANY#c" }, "SK": { "S": "PROFILE" } } } }
        ] });
        let (writes, reads) = partitions_touched("TransactWriteItems", &body, &schemas());
        assert_eq!(
            writes,
            vec![
                "table=COMPANY#c#INSPECTION#i",
                "GSI1=OUTBOX",
                "table=RATE#a",
                "GSI1=WEBHOOKDUE",
                "table=COMPANY#c#INSPECTION#i"
            ]
        );
        assert_eq!(reads, vec!["table=COMPANY#c"]);
    }

    #[test]
    fn a_query_reads_the_partition_its_key_condition_names() {
        let body = json!({ "IndexName": "DUE", "KeyConditionExpression": "DuePK = :due AND DueSK <= :upto",
                           "ExpressionAttributeValues": { ":due": { "S": "REMIND" }, ":upto": { "S": "2027~" } } });
        assert_eq!(partitions_touched("Query", &body, &schemas()).1, vec!["DUE=REMIND"]);
    }
}
