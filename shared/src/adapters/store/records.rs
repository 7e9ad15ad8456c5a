//! What the store reads and writes: an item, a record (an entity with its key and index
//! attributes), a write (put, create, replace at a revision, delete, conditional), and the one
//! error type with its mapping to HTTP.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::keys::{self, Key};
use crate::foundation::problem::{error_chain, ApiError};

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item not in the expected state (already exists, revision
    /// moved on, missing).
    #[error("conditional check failed")]
    ConditionFailed,
    /// A transaction was cancelled; one reason code per item, in order ("None" when that item
    /// was fine).
    #[error("transaction cancelled: {0:?}")]
    TransactionCanceled(Vec<String>),
    #[error("stored item could not be converted: {0}")]
    Serde(#[from] serde_dynamo::Error),
    #[error("DynamoDB request failed: {0}")]
    Sdk(String),
    /// DynamoDB did not answer in time, refused the connection or throttled: retry later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(#[source] crate::foundation::problem::Transient),
    #[error("invalid pagination cursor")]
    BadCursor,
}

impl StoreError {
    pub(super) fn sdk<E>(
        e: &aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if crate::foundation::problem::is_transient(e) {
            StoreError::Unavailable(crate::foundation::problem::Transient(error_chain(e)))
        } else {
            StoreError::Sdk(error_chain(e))
        }
    }

    pub(super) fn build<E: std::error::Error + 'static>(e: &E) -> Self {
        StoreError::Sdk(error_chain(e))
    }

    /// True when a conditional write or transaction lost to its condition (not a throttle).
    pub fn is_condition_failure(&self) -> bool {
        match self {
            StoreError::ConditionFailed => true,
            StoreError::TransactionCanceled(reasons) => reasons.iter().any(|r| r == "ConditionalCheckFailed"),
            _ => false,
        }
    }

    /// A transaction that met another one on the same item (neither wrote; trying again later
    /// is safe).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::TransactionCanceled(reasons) if reasons.iter().any(|r| r == "TransactionConflict"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => ApiError::bad_request("the cursor is not valid for this list"),
            e if e.is_condition_failure() => ApiError::conflict(
                "concurrent-update",
                "the resource changed while this request was processed; retry it",
            ),
            StoreError::TransactionCanceled(r) if r.iter().any(|r| r == "TransactionConflict") => ApiError::conflict(
                "concurrent-update",
                "the resource changed while this request was processed; retry it",
            ),
            other => ApiError::internal(other),
        }
    }
}

/// How long a company's or a person's export request stays readable after it was asked.
pub const EXPORT_RECORD_DAYS: i64 = 30;

/// A record ready to write: its key, optional GSI1 key, and its attributes.
#[derive(Debug, Clone)]
pub struct Record {
    pub(super) key: Key,
    pub(super) item: Item,
}

impl Record {
    pub fn new<T: Serialize>(key: Key, entity: &str, data: &T) -> Result<Self, StoreError> {
        let mut item: Item = serde_dynamo::to_item(data)?;
        item.insert(keys::PK.into(), AttributeValue::S(key.pk.clone()));
        item.insert(keys::SK.into(), AttributeValue::S(key.sk.clone()));
        item.insert("entity".into(), AttributeValue::S(entity.into()));
        Ok(Record { key, item })
    }

    pub fn with_gsi1(mut self, pk: String, sk: String) -> Self {
        self.item.insert(keys::GSI1PK.into(), AttributeValue::S(pk));
        self.item.insert(keys::GSI1SK.into(), AttributeValue::S(sk));
        self
    }

    /// Waiting in `queue` (GSI1) since `at`: the shard of `id`, sorted by `<at>#<id>` — what
    /// [`super::Store::waiting_in`] reads back.
    pub fn queued(self, queue: &keys::Queue, id: &str, at: time::OffsetDateTime) -> Self {
        self.with_gsi1(queue.shard(id), format!("{}#{id}", crate::foundation::clock::rfc3339(at)))
    }

    /// An export request's item: waiting in `queue` while `pending`, then kept
    /// [`EXPORT_RECORD_DAYS`] after it was asked (its files go with the bucket's lifecycle rule).
    pub fn export_request(
        self,
        queue: &keys::Queue,
        id: &str,
        state: &str,
        requested_at: time::OffsetDateTime,
    ) -> Self {
        if state == "pending" {
            self.queued(queue, id, requested_at)
        } else {
            self.expires_at((requested_at + time::Duration::days(EXPORT_RECORD_DAYS)).unix_timestamp())
        }
    }

    pub fn with_gsi2(mut self, pk: String, sk: String) -> Self {
        self.item.insert(keys::GSI2PK.into(), AttributeValue::S(pk));
        self.item.insert(keys::GSI2SK.into(), AttributeValue::S(sk));
        self
    }

    /// Key attributes of the sparse `DUE` index's scheduled documents.
    pub fn with_due(self, sk: String) -> Self {
        self.with_due_in(&keys::DUE, sk)
    }

    /// Key attributes of the sparse `DUE` index, in `queue` ([`keys::DUE`] for scheduled
    /// documents, [`keys::REMIND`] for reminders): the shard of this item's partition (its
    /// inspection's: the job finds an inspection's due documents together, and takes them in one
    /// transaction).
    pub fn with_due_in(mut self, queue: &keys::Queue, sk: String) -> Self {
        let partition = queue.shard(&self.key.pk);
        self.item.insert(keys::DUE_PK.into(), AttributeValue::S(partition));
        self.item.insert(keys::DUE_SK.into(), AttributeValue::S(sk));
        self
    }

    /// Time-to-live (epoch seconds): DynamoDB deletes the item some time after this.
    pub fn expires_at(mut self, epoch_seconds: i64) -> Self {
        self.item.insert("expires_at".into(), AttributeValue::N(epoch_seconds.to_string()));
        self
    }

    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// One write of a transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// Put that fails if the key is taken.
    Create(Record),
    /// Put that fails unless the stored `revision` is the one read.
    Replace { record: Record, expected_revision: u64 },
    /// Delete that fails if the item is already gone.
    DeleteExisting(Key),
    /// Delete whether or not the item is there (revoking what may already be revoked).
    Delete(Key),
    /// Put whatever is there (idempotent records such as lookup pointers).
    Put(Record),
    /// Put that fails unless `condition` (with `values`) holds for what is stored: for records
    /// whose safe transition is more than "absent" or "same revision".
    PutIf { record: Record, condition: &'static str, values: Item },
    /// UpdateItem (`expression`, e.g. `ADD n :one`) that fails unless `condition` holds: for
    /// counters kept beside what they count.
    Update { key: Key, expression: &'static str, condition: &'static str, values: Item },
}

impl Write {
    /// The condition that makes this write safe to race, in one place for single and
    /// transactional writes.
    pub(super) fn condition(&self) -> (Option<&'static str>, Option<Item>) {
        match self {
            Write::Create(_) => (Some("attribute_not_exists(PK)"), None),
            Write::Replace { expected_revision, .. } => (
                Some("revision = :rev"),
                Some(HashMap::from([(":rev".to_owned(), AttributeValue::N(expected_revision.to_string()))])),
            ),
            Write::DeleteExisting(_) => (Some("attribute_exists(PK)"), None),
            Write::PutIf { condition, values, .. } | Write::Update { condition, values, .. } => {
                (Some(*condition), (!values.is_empty()).then(|| values.clone()))
            }
            Write::Delete(_) | Write::Put(_) => (None, None),
        }
    }
}

pub(super) fn key_attrs(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

pub(super) fn write_error<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if e.code() == Some("ConditionalCheckFailedException") {
        StoreError::ConditionFailed
    } else {
        StoreError::sdk(&e)
    }
}
