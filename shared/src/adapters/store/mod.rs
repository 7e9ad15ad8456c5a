//! DynamoDB store: the single table behind every function (docs/data-model.md).
//!
//! Records are serde structs (via `serde_dynamo`) plus their key attributes. Writes that must not
//! race are conditional: creates require the key to be free, saves require the revision they read,
//! and multi-item changes go through one transaction. The client counts its round trips
//! ([`crate::adapters::roundtrips`]).

pub mod alerts;
pub mod companies;
pub mod customers;
pub mod documents;
pub mod inspections;
pub mod keys;
pub mod me;
pub mod offboarding;
pub mod outbox;
pub mod payments;
pub mod privacy;
mod records;
pub mod tokens;
pub mod webhooks;

use crate::foundation::clock::Clock;
use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;

pub use keys::Key;
use records::{key_attrs, write_error};
pub use records::{Item, Record, StoreError, Write};

use crate::adapters::roundtrips::RoundTripCounter;

#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// The time the store stamps what it writes with and judges link lifetimes by.
    clock: crate::foundation::clock::Clock,
}

/// Where a walk through a sharded queue of the `DUE` index is, shard by shard (see
/// [`Store::due_keys`]).
#[derive(Debug, Clone)]
pub struct ShardCursor {
    /// Per partition: `None` when read to its end, `Some(None)` when not read yet, `Some(Some(k))`
    /// to go on after `k`.
    shards: std::collections::BTreeMap<String, Option<Option<Item>>>,
}

impl ShardCursor {
    pub fn new(queue: &keys::Queue) -> Self {
        ShardCursor { shards: queue.partitions().into_iter().map(|p| (p, Some(None))).collect() }
    }

    /// Whether a shard may hold more.
    pub fn more(&self) -> bool {
        self.shards.values().any(Option::is_some)
    }
}

/// A page of a query and the opaque cursor to the next one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl Store {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(RoundTripCounter)
            .interceptor(crate::adapters::roundtrips::OperationRecorder)
            .build();
        Store { client: aws_sdk_dynamodb::Client::from_conf(conf), table: table.into(), clock: Clock::system() }
    }

    /// The store a function uses: its table, and its clock.
    pub fn for_config(sdk: &aws_config::SdkConfig, config: &crate::Config) -> Self {
        Store::new(sdk, config.table_name.clone()).with_clock(config.clock.clone())
    }

    /// The same store reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent read of one item.
    /// Opens the connection to DynamoDB (TLS included) with the cheapest call there is: a read of
    /// a key that never exists (half a read unit). Its outcome does not matter.
    pub async fn warm_up(&self) {
        let _ = self.get::<serde_json::Value>(&keys::warm_up()).await;
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        out.item.map(serde_dynamo::from_item).transpose().map_err(StoreError::from)
    }

    /// Strongly consistent read of several items in one round trip (more only if DynamoDB returns
    /// unprocessed keys). Results are in the order of `keys`.
    pub async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut found: HashMap<Key, Item> = HashMap::new();
        let mut pending: Vec<Item> = keys.iter().map(key_attrs).collect();
        pending.dedup();
        for _attempt in 0..5 {
            if pending.is_empty() {
                break;
            }
            let ka = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::build(&e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ka)
                .send()
                .await
                .map_err(|e| StoreError::sdk(&e))?;
            for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                    (item.get(keys::PK), item.get(keys::SK))
                {
                    found.insert(Key { pk: pk.clone(), sk: sk.clone() }, item);
                }
            }
            if let Some(mut un) = out.unprocessed_keys {
                if let Some(ka) = un.remove(&self.table) {
                    pending = ka.keys;
                }
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Sdk("batch read left unprocessed keys after retries".into()));
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Unconditional deletes, 25 a `BatchWriteItem` (what DynamoDB leaves unprocessed is sent
    /// again, up to 5 times with a short pause): for items whose removal may lag or repeat
    /// safely, such as the schedule items of documents already published.
    pub async fn delete_batch(&self, keys: &[Key]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let requests = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder().set_key(Some(key_attrs(k))).build();
                delete.map(|d| WriteRequest::builder().delete_request(d).build()).map_err(|e| StoreError::build(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_batch(requests, true).await
    }

    /// Puts new items whatever is there, 25 a `BatchWriteItem`, each request sent once: the SDK
    /// does not retry it (a retry after an answer that was lost could write an item a second
    /// time, over what someone made of it meanwhile); only what DynamoDB hands back unprocessed,
    /// which it did not write, is sent again. For items nobody else writes until the caller has
    /// certainly stopped: the emails of the scheduled job's publications
    /// ([`crate::usecases::publishing::publish_due`]). An error leaves some written, some not.
    async fn put_batch_once(&self, records: Vec<Record>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let requests = records
            .into_iter()
            .map(|r| {
                let put = PutRequest::builder().set_item(Some(r.item)).build();
                put.map(|p| WriteRequest::builder().put_request(p).build()).map_err(|e| StoreError::build(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_batch(requests, false).await
    }

    async fn write_batch(
        &self,
        requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
        sdk_retries: bool,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..5u64 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 * attempt)).await;
                }
                let batch = std::mem::take(&mut pending);
                let request = self.client.batch_write_item().request_items(&self.table, batch.clone());
                let sent = if sdk_retries {
                    request.send().await
                } else {
                    let once = aws_sdk_dynamodb::Config::builder()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled());
                    request.customize().config_override(once).send().await
                };
                pending = match sent {
                    Ok(out) => out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default(),
                    // Refused for throughput: nothing of it was written, so all of it goes again.
                    Err(e) if is_throttled(&e) => batch,
                    Err(e) => return Err(StoreError::sdk(&e)),
                };
            }
            if !pending.is_empty() {
                return Err(StoreError::Sdk("a batch write left unprocessed items after retries".into()));
            }
        }
        Ok(())
    }

    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (condition, values) = write.condition();
        match write {
            Write::Create(record)
            | Write::Replace { record, .. }
            | Write::Put(record)
            | Write::PutIf { record, .. } => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record.item))
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(|_| ())
                .map_err(write_error),
            Write::DeleteExisting(key) | Write::Delete(key) => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_attrs(&key)))
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(|_| ())
                .map_err(write_error),
            Write::Update { key, expression, .. } => self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_attrs(&key)))
                .update_expression(expression)
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(|_| ())
                .map_err(write_error),
        }
    }

    /// All writes or none, in one round trip (at most 100).
    pub async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.len() == 1 {
            return self.write(writes.into_iter().next().expect("one write")).await;
        }
        let items = writes.into_iter().map(|w| self.transact_item(w)).collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    Err(StoreError::TransactionCanceled(
                        tc.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect(),
                    ))
                }
                _ => Err(StoreError::sdk(&e)),
            },
        }
    }

    /// Like [`Store::transact`], for a transaction whose first write guards the rest: `None` when
    /// all were written; `Some(Some(item))` when the first write's condition refused it (the item
    /// that refused it, handed back by DynamoDB: no extra read); `Some(None)` when another
    /// transaction on the same items was in the way.
    pub async fn transact_or_first_blocker(&self, writes: Vec<Write>) -> Result<Option<Option<Item>>, StoreError> {
        let mut items = writes.into_iter().map(|w| self.transact_item(w)).collect::<Result<Vec<_>, _>>()?;
        if let Some(put) = items.first_mut().and_then(|i| i.put.as_mut()) {
            put.return_values_on_condition_check_failure =
                Some(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld);
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    let reasons = tc.cancellation_reasons();
                    match reasons.first() {
                        Some(r) if r.code() == Some("ConditionalCheckFailed") => Ok(Some(r.item().cloned())),
                        _ if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) => Ok(Some(None)),
                        _ => Err(StoreError::TransactionCanceled(
                            reasons.iter().map(|r| r.code().unwrap_or("None").to_owned()).collect(),
                        )),
                    }
                }
                _ => Err(StoreError::sdk(&e)),
            },
        }
    }

    fn transact_item(&self, w: Write) -> Result<TransactWriteItem, StoreError> {
        let (condition, values) = w.condition();
        let b = TransactWriteItem::builder();
        let item = match w {
            Write::Create(record)
            | Write::Replace { record, .. }
            | Write::Put(record)
            | Write::PutIf { record, .. } => b.put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(record.item))
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(|e| StoreError::build(&e))?,
            ),
            Write::DeleteExisting(key) | Write::Delete(key) => b.delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(|e| StoreError::build(&e))?,
            ),
            Write::Update { key, expression, .. } => b.update(
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .update_expression(expression)
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(|e| StoreError::build(&e))?,
            ),
        };
        Ok(item.build())
    }

    /// One hit in the fixed window of `seconds` that `now` falls in, for `what` (an opaque name:
    /// hashes and ids, never addresses): past `limit` it is refused (429 with the seconds left
    /// in the window) and does not count.
    pub async fn within_window(
        &self,
        what: &str,
        limit: u32,
        seconds: i64,
        now: time::OffsetDateTime,
    ) -> Result<(), crate::ApiError> {
        let window = now.unix_timestamp() / seconds * seconds;
        if !self.within_limits(&[(keys::rate_window(what, window), limit)], window + 2 * seconds).await? {
            return Err(crate::ApiError::TooManyRequests {
                retry_after_seconds: window + seconds - now.unix_timestamp(),
            });
        }
        Ok(())
    }

    /// Counts one hit in each of several fixed windows at once, all or none: true when every one
    /// is within its limit (a refused hit counts nowhere, so one flooded window cannot use up the
    /// others). One round trip.
    pub async fn within_limits(&self, windows: &[(Key, u32)], expires_at: i64) -> Result<bool, StoreError> {
        let items = windows
            .iter()
            .map(|(key, limit)| {
                let update = aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .update_expression("ADD n :one SET expires_at = :exp, entity = :entity")
                    .condition_expression("attribute_not_exists(n) OR n < :limit")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
                    .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
                    .expression_attribute_values(":entity", AttributeValue::S("rate_window".into()))
                    .build()
                    .map_err(|e| StoreError::build(&e))?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc))
                    if tc.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(false)
                }
                _ => Err(StoreError::sdk(&e)),
            },
        }
    }

    /// One page of the items of partition `pk` whose sort key starts with `prefix`. One round trip.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
        limit: i32,
        cursor: Option<&str>,
        descending: bool,
    ) -> Result<Page<T>, StoreError> {
        let start = cursor.map(|c| decode_cursor(c, keys::PK, pk, &[keys::PK, keys::SK])).transpose()?;
        // DynamoDB refuses an empty begins_with: an empty prefix is the whole partition.
        let mut query = self.client.query().table_name(&self.table);
        query = if prefix.is_empty() {
            query.key_condition_expression("PK = :pk")
        } else {
            query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        };
        let out = query
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(!descending)
            .limit(limit)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        page(out)
    }

    /// What waits in `queue` by `now` (sort keys that start with an RFC 3339 time), oldest first.
    pub async fn waiting_in<T: DeserializeOwned>(
        &self,
        queue: &keys::Queue,
        now: time::OffsetDateTime,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
        self.query_gsi1_upto(queue, &format!("{}~", crate::foundation::clock::rfc3339(now)), limit).await
    }

    /// GSI1 items of a sharded queue whose sort key is at most `upto`, ascending, at most `limit`.
    pub async fn query_gsi1_upto<T: DeserializeOwned>(
        &self,
        queue: &keys::Queue,
        upto: &str,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
        // Every shard at once (one round trip's latency), then the earliest overall.
        let queries = queue.partitions().into_iter().map(|pk| async move {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :pk AND GSI1SK <= :upto")
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .expression_attribute_values(":upto", AttributeValue::S(upto.to_owned()))
                .limit(limit)
                .send()
                .await
                .map_err(|e| StoreError::sdk(&e))
        });
        let mut items: Vec<Item> = Vec::new();
        for out in futures::future::join_all(queries).await {
            items.extend(out?.items.unwrap_or_default());
        }
        items.sort_by_cached_key(|i| i.get(keys::GSI1SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default());
        items.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(items.into_iter().map(serde_dynamo::from_item).collect::<Result<Vec<T>, _>>()?)
    }

    /// The next keys of a sparse queue of the `DUE` index up to `upto` (KEYS_ONLY: the table and
    /// index keys), about `limit`, from where `cursor` left off in each shard (concurrently: one
    /// round trip's latency); it reads only what is due. `cursor.more()` tells whether any shard
    /// may hold more.
    pub async fn due_keys(&self, cursor: &mut ShardCursor, upto: &str, limit: i32) -> Result<Vec<Item>, StoreError> {
        let open: Vec<(String, Option<Item>)> =
            cursor.shards.iter().filter_map(|(p, s)| s.clone().map(|start| (p.clone(), start))).collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        // Each open shard's share of the page, rounded up.
        let n = i32::try_from(open.len()).unwrap_or(i32::MAX);
        let share = ((limit + n - 1) / n).max(1);
        let queries = open.into_iter().map(|(pk, start)| async move {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::DUE_INDEX)
                .key_condition_expression("DuePK = :due AND DueSK <= :upto")
                .expression_attribute_values(":due", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":upto", AttributeValue::S(upto.to_owned()))
                .set_exclusive_start_key(start)
                .limit(share)
                .send()
                .await
                .map_err(|e| StoreError::sdk(&e))?;
            Ok::<_, StoreError>((pk, out.items.unwrap_or_default(), out.last_evaluated_key))
        });
        let mut items = Vec::new();
        for out in futures::future::join_all(queries).await {
            let (pk, page, last) = out?;
            items.extend(page);
            cursor.shards.insert(pk, last.map(Some));
        }
        Ok(items)
    }

    /// One page of a GSI1 partition, newest sort key first when `descending`. One round trip.
    pub async fn query_gsi1<T: DeserializeOwned>(
        &self,
        pk: &str,
        limit: i32,
        cursor: Option<&str>,
        descending: bool,
    ) -> Result<Page<T>, StoreError> {
        let start = cursor
            .map(|c| decode_cursor(c, keys::GSI1PK, pk, &[keys::PK, keys::SK, keys::GSI1PK, keys::GSI1SK]))
            .transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(!descending)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        page(out)
    }
}

/// A query's items as records, and the cursor to the next page.
fn page<T: DeserializeOwned>(out: aws_sdk_dynamodb::operation::query::QueryOutput) -> Result<Page<T>, StoreError> {
    let items =
        out.items.unwrap_or_default().into_iter().map(serde_dynamo::from_item).collect::<Result<Vec<T>, _>>()?;
    Ok(Page { items, next_cursor: out.last_evaluated_key.map(|k| encode_cursor(&k)) })
}

/// Cursors are the query's last evaluated key (string attributes), base64url JSON: opaque to
/// clients, and checked on the way back in so one list's cursor cannot start another list.
fn encode_cursor(key: &Item) -> String {
    let plain: std::collections::BTreeMap<&str, &str> =
        key.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str()))).collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).unwrap_or_default())
}

/// A cursor back into a key, refused unless it names exactly the query's key attributes (`names`)
/// and its partition: nothing a client makes up reaches DynamoDB.
fn decode_cursor(
    cursor: &str,
    partition_attr: &str,
    expected_partition: &str,
    names: &[&str],
) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let exact = plain.len() == names.len() && names.iter().all(|n| plain.contains_key(*n));
    if plain.get(partition_attr).map(String::as_str) != Some(expected_partition) || !exact {
        return Err(StoreError::BadCursor);
    }
    Ok(plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

/// Whether DynamoDB refused a request for throughput (it then wrote nothing).
fn is_throttled<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()).is_some_and(|code| {
        matches!(code, "ProvisionedThroughputExceededException" | "RequestLimitExceeded" | "ThrottlingException")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throughput_refusals_count_as_throttled() {
        use aws_sdk_dynamodb::config::http::HttpResponse;
        use aws_sdk_dynamodb::error::ErrorMetadata;
        use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
        let refusal = |code: &str| {
            let e = BatchWriteItemError::generic(ErrorMetadata::builder().code(code).build());
            let status = aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap();
            let raw = HttpResponse::new(status, "".into());
            aws_sdk_dynamodb::error::SdkError::service_error(e, raw)
        };
        for code in ["ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException"] {
            assert!(is_throttled(&refusal(code)), "{code}");
        }
        for code in ["ValidationException", "InternalServerError", "ResourceNotFoundException"] {
            assert!(!is_throttled(&refusal(code)), "{code}: may or may not have been written, or never will be");
        }
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_list() {
        let key: Item = HashMap::from([
            ("GSI1PK".to_owned(), AttributeValue::S("COMPANY#A#INSPECTIONS".into())),
            ("GSI1SK".to_owned(), AttributeValue::S("2026#X".into())),
            ("PK".to_owned(), AttributeValue::S("p".into())),
            ("SK".to_owned(), AttributeValue::S("s".into())),
        ]);
        let c = encode_cursor(&key);
        let names = ["PK", "SK", "GSI1PK", "GSI1SK"];
        assert_eq!(decode_cursor(&c, "GSI1PK", "COMPANY#A#INSPECTIONS", &names).unwrap(), key);
        assert!(matches!(decode_cursor(&c, "GSI1PK", "COMPANY#B#INSPECTIONS", &names), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor("!!", "GSI1PK", "x", &names), Err(StoreError::BadCursor)));
        // The right partition but other attribute names: refused, never sent to DynamoDB.
        let odd: Item = HashMap::from([
            ("GSI1PK".to_owned(), AttributeValue::S("COMPANY#A#INSPECTIONS".into())),
            ("nope".to_owned(), AttributeValue::S("x".into())),
        ]);
        let odd = encode_cursor(&odd);
        assert!(matches!(decode_cursor(&odd, "GSI1PK", "COMPANY#A#INSPECTIONS", &names), Err(StoreError::BadCursor)));
    }
}
