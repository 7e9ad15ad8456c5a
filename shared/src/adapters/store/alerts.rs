//! Staff alerts waiting for the job: one item per thing that happened that some address of the
//! company's `staff_alerts` wants to hear of, written in the same transaction as what happened.
//! The job gathers each company's waiting alerts into one email per address (a digest when there
//! are several) and deletes them in the transaction that queues those emails.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::foundation::ids::CompanyId;

/// GSI1 partition of alerts waiting (sparse: an alert is deleted once emailed).
pub const ALERTS: keys::Queue = keys::Queue { base: "ALERTS", shards: 4 };

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub company_id: CompanyId,
    /// One of [`crate::domain::settings::STAFF_ALERT_EVENTS`].
    pub event: String,
    /// What happened, in one line ("Agreement signed: 12 Elm Street").
    pub text: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub at: OffsetDateTime,
    pub id: String,
}

impl Alert {
    /// The write of an alert of `event`, when some address of `company` hears of it.
    pub fn write(company: &Company, event: &str, text: &str, at: OffsetDateTime) -> Result<Option<Write>, StoreError> {
        if company.settings.alerted_of(event).next().is_none() {
            return Ok(None);
        }
        Self::unchecked(company.id, event, text, at).map(Some)
    }

    /// The write of an alert for a company whose settings were not read (to stay within a
    /// request's round trips): the job emails it to whoever hears of it, if anyone, and drops it.
    pub fn unchecked(company_id: CompanyId, event: &str, text: &str, at: OffsetDateTime) -> Result<Write, StoreError> {
        let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
        let alert = Alert { company_id, event: event.to_owned(), text, at, id: ulid::Ulid::new().to_string() };
        Ok(Write::Put(alert.record()?))
    }

    fn sort(&self) -> String {
        format!("{}#{}", crate::foundation::clock::rfc3339(self.at), self.id)
    }

    fn record(&self) -> Result<Record, StoreError> {
        Ok(Record::new(keys::alert(self.company_id, &self.sort()), "staff_alert", self)?
            .with_gsi1(ALERTS.shard(&self.company_id.to_string()), format!("{}#{}", self.sort(), self.company_id)))
    }

    pub fn delete(&self) -> Write {
        Write::Delete(keys::alert(self.company_id, &self.sort()))
    }
}

impl Store {
    /// Alerts waiting up to `now`, oldest first (one round trip).
    pub async fn due_alerts(&self, now: OffsetDateTime, limit: i32) -> Result<Vec<Alert>, StoreError> {
        let upto = format!("{}~", crate::foundation::clock::rfc3339(now));
        self.query_gsi1_upto(&ALERTS, &upto, limit).await
    }
}
