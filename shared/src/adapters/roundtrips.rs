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

/// A key schema the meter maps items onto: the table's partition (and sort) key attributes, or a
/// global secondary index's (`index` named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub index: Option<String>,
    pub partition_attribute: String,
    /// The table's sort key attribute (an item's identity is both), `None` for an index.
    pub sort_attribute: Option<String>,
}

/// Writes and reads per (key schema, partition key value, second), while metering is on, and the
/// index keys each item was last seen written with (a delete, or an update that removes an
/// index's key, writes the index partition the item leaves, which the request does not name).
#[derive(Debug, Default)]
struct Heat {
    schemas: Vec<KeySchema>,
    seen: Seen,
    /// Counting (between [`heat_start`] and [`heat_stop`]), or only following `seen`.
    counting: bool,
    writes: std::collections::HashMap<(String, i64), u32>,
    reads: std::collections::HashMap<(String, i64), u32>,
}

/// Item identity → the index partitions (`<index>=<value>`) it is in, as far as the meter saw.
pub type Seen = std::collections::HashMap<String, Vec<String>>;

static HEAT: std::sync::Mutex<Option<Heat>> = std::sync::Mutex::new(None);
/// Whether metering is on: off, a request costs one atomic load (on Lambda it is always off).
static HEAT_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts metering partition heat for the table and indexes of `schemas` (the lab only: the
/// bench; nothing meters on Lambda). What items were seen in is kept from one metering to the
/// next, and followed in between (items written while setting a run up leave their index
/// partitions during it).
pub fn heat_start(schemas: Vec<KeySchema>) {
    if let Ok(mut h) = HEAT.lock() {
        let seen = h.take().map(|h| h.seen).unwrap_or_default();
        *h = Some(Heat { schemas, seen, counting: true, ..Heat::default() });
        HEAT_ON.store(true, Ordering::Relaxed);
    }
}

/// The hottest partition key's peak in any one-second window since [`heat_start`]: (writes/s,
/// its key), (reads/s, its key). Stops counting (what items were seen in is still followed).
pub fn heat_stop() -> ((u32, String), (u32, String)) {
    let Ok(mut guard) = HEAT.lock() else { return Default::default() };
    let Some(heat) = guard.as_mut() else { return Default::default() };
    let peak = |m: &std::collections::HashMap<(String, i64), u32>| {
        m.iter().max_by_key(|(_, n)| **n).map(|((k, _), n)| (*n, k.clone())).unwrap_or_default()
    };
    let out = (peak(&heat.writes), peak(&heat.reads));
    heat.counting = false;
    heat.writes.clear();
    heat.reads.clear();
    out
}

/// The partition keys a DynamoDB request (`operation`, its JSON body) writes and reads, as
/// `<table or index>=<value>`, under `schemas`. An item written lands in its table partition and in
/// each index partition it is in afterwards (an update counted there too, whatever it changes: the
/// conservative view of an index projecting every attribute); an item that leaves an index
/// partition (a delete, a put without that key or with another, an update that removes or changes
/// it) also writes the partition it leaves, as `seen` remembers it (`seen` follows each request).
pub fn partitions_touched(
    operation: &str,
    body: &serde_json::Value,
    schemas: &[KeySchema],
    seen: &mut Seen,
) -> (Vec<String>, Vec<String>) {
    let mut m = Meter { schemas, seen, writes: Vec::new(), reads: Vec::new() };
    match operation {
        "PutItem" => m.put(&body["Item"]),
        "UpdateItem" => m.update(body),
        "DeleteItem" => m.delete(&body["Key"]),
        "TransactWriteItems" => {
            for t in body["TransactItems"].as_array().into_iter().flatten() {
                if let Some(p) = t.get("Put") {
                    m.put(&p["Item"]);
                } else if let Some(u) = t.get("Update") {
                    m.update(u);
                } else if let Some(d) = t.get("Delete") {
                    m.delete(&d["Key"]);
                } else if let Some(c) = t.get("ConditionCheck") {
                    let keys = m.table_key(&c["Key"]);
                    m.reads.extend(keys);
                }
            }
        }
        "BatchWriteItem" => {
            for requests in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                for r in requests.as_array().into_iter().flatten() {
                    if let Some(item) = r.get("PutRequest").map(|p| &p["Item"]) {
                        m.put(item);
                    } else if let Some(key) = r.get("DeleteRequest").map(|d| &d["Key"]) {
                        m.delete(key);
                    }
                }
            }
        }
        "GetItem" => {
            let keys = m.table_key(&body["Key"]);
            m.reads.extend(keys);
        }
        "BatchGetItem" => {
            for t in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                for k in t["Keys"].as_array().into_iter().flatten() {
                    let keys = m.table_key(k);
                    m.reads.extend(keys);
                }
            }
        }
        "Query" => m.query(body),
        _ => {}
    }
    (m.writes, m.reads)
}

struct Meter<'a> {
    schemas: &'a [KeySchema],
    seen: &'a mut Seen,
    writes: Vec<String>,
    reads: Vec<String>,
}

fn string(v: &serde_json::Value) -> Option<String> {
    v.get("S").and_then(serde_json::Value::as_str).map(str::to_owned)
}

impl Meter<'_> {
    fn name(k: &KeySchema) -> String {
        k.index.clone().unwrap_or_else(|| "table".into())
    }

    fn table(&self) -> Option<&KeySchema> {
        self.schemas.iter().find(|k| k.index.is_none())
    }

    fn identity(&self, key: &serde_json::Value) -> String {
        let Some(t) = self.table() else { return String::new() };
        let part = |a: Option<&String>| a.and_then(|a| key.get(a)).and_then(string).unwrap_or_default();
        format!("{}\u{0}{}", part(Some(&t.partition_attribute)), part(t.sort_attribute.as_ref()))
    }

    fn table_key(&self, key: &serde_json::Value) -> Vec<String> {
        self.table()
            .and_then(|k| key.get(&k.partition_attribute).and_then(string))
            .map(|v| format!("table={v}"))
            .into_iter()
            .collect()
    }

    /// The item `id` is now in the index partitions `now`: it writes them and those it left.
    fn moved(&mut self, id: String, now: Vec<String>) {
        let before = self.seen.remove(&id).unwrap_or_default();
        self.writes.extend(before.iter().filter(|k| !now.contains(k)).cloned());
        self.writes.extend(now.iter().cloned());
        if !now.is_empty() {
            self.seen.insert(id, now);
        }
    }

    fn put(&mut self, item: &serde_json::Value) {
        let keys = self.table_key(item);
        self.writes.extend(keys);
        let now = self
            .schemas
            .iter()
            .filter(|k| k.index.is_some())
            .filter_map(|k| item.get(&k.partition_attribute).and_then(string).map(|v| format!("{}={v}", Self::name(k))))
            .collect();
        self.moved(self.identity(item), now);
    }

    fn delete(&mut self, key: &serde_json::Value) {
        let keys = self.table_key(key);
        self.writes.extend(keys);
        self.moved(self.identity(key), Vec::new());
    }

    /// `SET <attr> = :v` puts the item in an index partition; `REMOVE <attr>, …` takes it out.
    fn update(&mut self, u: &serde_json::Value) {
        let keys = self.table_key(&u["Key"]);
        self.writes.extend(keys);
        let id = self.identity(&u["Key"]);
        let expression = u.get("UpdateExpression").and_then(serde_json::Value::as_str).unwrap_or_default();
        let removed: Vec<&str> = expression
            .split_once("REMOVE ")
            .map(|(_, rest)| {
                rest.split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .take_while(|w| !matches!(*w, "SET" | "ADD" | "DELETE"))
                    .collect()
            })
            .unwrap_or_default();
        let mut now = self.seen.get(&id).cloned().unwrap_or_default();
        for k in self.schemas.iter().filter(|k| k.index.is_some()) {
            let prefix = format!("{}=", Self::name(k));
            let pattern = format!("{} = :", k.partition_attribute);
            let set = expression.find(&pattern).and_then(|at| {
                let placeholder: String = expression[at + pattern.len() - 1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == ':' || *c == '_')
                    .collect();
                u["ExpressionAttributeValues"].get(&placeholder).and_then(string)
            });
            if set.is_some() || removed.contains(&k.partition_attribute.as_str()) {
                now.retain(|x| !x.starts_with(&prefix));
            }
            if let Some(v) = set {
                now.push(format!("{prefix}{v}"));
            }
        }
        self.moved(id, now);
    }

    /// `<attr> = :v …`: the partition a query reads.
    fn query(&mut self, body: &serde_json::Value) {
        let index = body.get("IndexName").and_then(serde_json::Value::as_str);
        let condition = body.get("KeyConditionExpression").and_then(serde_json::Value::as_str).unwrap_or_default();
        let Some(k) = self.schemas.iter().find(|k| k.index.as_deref() == index) else { return };
        let placeholder = condition
            .split(" AND ")
            .find_map(|c| c.trim().strip_prefix(&format!("{} = ", k.partition_attribute)))
            .map(str::trim);
        if let Some(v) = placeholder.and_then(|p| body["ExpressionAttributeValues"].get(p)).and_then(string) {
            self.reads.push(format!("{}={v}", Self::name(k)));
        }
    }
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
    let (writes, reads) = partitions_touched(&operation, &body, &heat.schemas, &mut heat.seen);
    if !heat.counting {
        return;
    }
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
            KeySchema { index: None, partition_attribute: "PK".into(), sort_attribute: Some("SK".into()) },
            KeySchema { index: Some("GSI1".into()), partition_attribute: "GSI1PK".into(), sort_attribute: None },
            KeySchema { index: Some("DUE".into()), partition_attribute: "DuePK".into(), sort_attribute: None },
        ]
    }

    #[test]
    fn writes_land_in_the_table_and_every_index_their_items_carry_keys_for() {
        let body = json!({ "TransactItems": [
            { "Put": { "Item": { "PK": { "S": "COMPANY#c#INSPECTION#i" }, "SK": { "S": "EMAIL#x" },
                               "GSI1PK": { "S": "OUTBOX#3" } } } },
            { "Update": { "Key": { "PK": { "S": "RATE#a" }, "SK": { "S": "w" } },
                          "UpdateExpression": "SET GSI1PK = :g, n = :n",
                          "ExpressionAttributeValues": { ":g": { "S": "WEBHOOKDUE#1" }, ":n": { "N": "1" } } } },
            { "Delete": { "Key": { "PK": { "S": "COMPANY#c#INSPECTION#i" }, "SK": { "S": "SCHEDULE#d" } } } },
            { "ConditionCheck": { "Key": { "PK": { "S": "COMPANY#c" }, "SK": { "S": "PROFILE" } } } }
        ] });
        let (writes, reads) = partitions_touched("TransactWriteItems", &body, &schemas(), &mut Seen::new());
        assert_eq!(
            writes,
            vec![
                "table=COMPANY#c#INSPECTION#i",
                "GSI1=OUTBOX#3",
                "table=RATE#a",
                "GSI1=WEBHOOKDUE#1",
                "table=COMPANY#c#INSPECTION#i"
            ]
        );
        assert_eq!(reads, vec!["table=COMPANY#c"]);
    }

    #[test]
    fn an_item_leaving_an_index_partition_writes_it() {
        let mut seen = Seen::new();
        let key = json!({ "PK": { "S": "COMPANY#c#INSPECTION#i" }, "SK": { "S": "SCHEDULE#d" } });
        let mut item = key.clone();
        item["DuePK"] = json!({ "S": "DUE#2" });
        partitions_touched("PutItem", &json!({ "Item": item }), &schemas(), &mut seen);
        // The delete names only the table key; the item leaves DUE#2 too.
        let (writes, _) = partitions_touched("DeleteItem", &json!({ "Key": key }), &schemas(), &mut seen);
        assert_eq!(writes, vec!["table=COMPANY#c#INSPECTION#i", "DUE=DUE#2"]);
        assert!(seen.is_empty());
        // An update removing the index key leaves the partition; a later update writes none.
        let queue = json!({ "PK": { "S": "COMPANY#c#WEBHOOK#w" }, "SK": { "S": "QUEUE" } });
        let set = json!({ "Key": queue, "UpdateExpression": "SET GSI1PK = :due, GSI1SK = :sk ADD pending :n",
                          "ExpressionAttributeValues": { ":due": { "S": "WEBHOOKDUE#0" }, ":sk": { "S": "t" }, ":n": { "N": "1" } } });
        partitions_touched("UpdateItem", &set, &schemas(), &mut seen);
        let remove = json!({ "Key": queue, "UpdateExpression": "SET failures = :z REMOVE GSI1PK, GSI1SK",
                             "ExpressionAttributeValues": { ":z": { "N": "0" } } });
        let (writes, _) = partitions_touched("UpdateItem", &remove, &schemas(), &mut seen);
        assert_eq!(writes, vec!["table=COMPANY#c#WEBHOOK#w", "GSI1=WEBHOOKDUE#0"]);
        let (writes, _) = partitions_touched("UpdateItem", &remove, &schemas(), &mut seen);
        assert_eq!(writes, vec!["table=COMPANY#c#WEBHOOK#w"]);
    }

    #[test]
    fn a_query_reads_the_partition_its_key_condition_names() {
        let body = json!({ "IndexName": "DUE", "KeyConditionExpression": "DuePK = :due AND DueSK <= :upto",
                           "ExpressionAttributeValues": { ":due": { "S": "REMIND#5" }, ":upto": { "S": "2027~" } } });
        assert_eq!(partitions_touched("Query", &body, &schemas(), &mut Seen::new()).1, vec!["DUE=REMIND#5"]);
    }
}
