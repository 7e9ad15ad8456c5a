//! Queueing reminders (run by the every-minute job, before the outbox sends): the inspections
//! with a reminder due are read from the sparse `DUE` index's `REMIND` partition (never a scan),
//! and each gets, in one transaction with its aggregate, one outbox email per person per due
//! reminder and its mark moved to now (so the same reminder is never queued twice, however many
//! runs overlap: the loser's transaction fails on the aggregate's revision, and on re-reading it
//! finds nothing left to queue). Saving it moves its schedule item to the next reminder.

use futures::stream::{self, StreamExt};
use time::OffsetDateTime;

use crate::adapters::store::outbox::EmailRecord;
use crate::adapters::store::{keys, ShardCursor, Store, StoreError, Write};
use crate::domain::reminders;
use crate::foundation::ids::{CompanyId, InspectionId};

/// Inspections handled at once.
const CONCURRENCY: usize = 16;

/// Reminder items read per page of the index.
const PAGE: i32 = 500;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReminderReport {
    /// Inspections whose reminder item was due.
    pub inspections: usize,
    /// Emails queued.
    pub queued: usize,
    pub errors: usize,
    /// Stopped at `max` or the deadline; the rest stays due for the next run.
    pub stopped_early: bool,
}

/// Queues the reminders due by `now` of up to `max` inspections.
pub async fn queue_due(
    store: &Store,
    now: OffsetDateTime,
    max: usize,
    deadline: Option<std::time::Instant>,
) -> Result<ReminderReport, StoreError> {
    let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
    let mut report = ReminderReport::default();
    let mut cursor = ShardCursor::new(&keys::REMIND);
    loop {
        let want = i32::try_from(max - report.inspections).unwrap_or(i32::MAX).min(PAGE);
        let items = store.due_keys(&mut cursor, &upto, want).await?;
        report.inspections += items.len();
        let due: Vec<(CompanyId, InspectionId)> =
            items.iter().filter_map(|item| item.get(keys::DUE_SK)?.as_s().ok().and_then(|sk| parse(sk))).collect();
        let outcomes: Vec<Result<usize, crate::ApiError>> = stream::iter(due)
            .map(|(c, i)| Box::pin(queue_one(store, c, i, now)))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(n) => report.queued += n,
                Err(e) => {
                    tracing::error!(error = %e.problem().detail, "reminders of an inspection could not be queued");
                    report.errors += 1;
                }
            }
        }
        if !cursor.more() {
            break;
        }
        if report.inspections >= max || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            report.stopped_early = true;
            break;
        }
    }
    Ok(report)
}

/// `<instant>#<c>#<i>` → its ids.
fn parse(sk: &str) -> Option<(CompanyId, InspectionId)> {
    let mut parts = sk.rsplitn(3, '#');
    let i = parts.next()?.parse().ok()?;
    let c = parts.next()?.parse().ok()?;
    Some((c, i))
}

/// One inspection's due reminders: queued with the aggregate's new mark in one transaction.
async fn queue_one(
    store: &Store,
    c: CompanyId,
    i: InspectionId,
    now: OffsetDateTime,
) -> Result<usize, crate::ApiError> {
    let changed = store
        .modify_inspection(c, i, |company, inspection| {
            let due = reminders::due(company, inspection, now);
            let writes = due
                .iter()
                .flat_map(|r| r.people.iter().map(move |p| (r, *p)))
                .map(|(r, p)| EmailRecord::new(c, i, p, r.key, None, r.dedupe(p), now).create())
                .collect::<Result<Vec<Write>, StoreError>>()?;
            inspection.reminders_through = Some(now);
            Ok((writes.len(), writes))
        })
        .await;
    match changed {
        Ok((_, queued)) => Ok(queued),
        // The inspection is gone: so is the reason for its schedule item.
        Err(crate::ApiError::NotFound) => {
            store.write(Write::Delete(keys::reminder(c, i))).await?;
            Ok(0)
        }
        Err(e) => Err(e),
    }
}
