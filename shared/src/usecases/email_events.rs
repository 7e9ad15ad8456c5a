//! What SES tells us after sending: bounce, complaint, reject and delivery events of the
//! configuration set every email is sent with, published to SNS and handed to the publish function.
//!
//! - A permanent bounce or a complaint suppresses the address for the company (its next email is
//!   not sent and is listed as `suppressed`) and marks the email `failed` with the reason, so staff
//!   see it in the inspection's email history. SES reviews an account whose bounce rate passes 5 %
//!   or complaint rate passes 0.1 %; not mailing such addresses again keeps it well below.
//! - A reject marks the email `failed`; a delivery records `delivered_at`; a transient bounce
//!   (mailbox full, …) only notes it.
//!
//! Emails carry their outbox record in SES message tags ([`EmailRecord::tags`]); an event without
//! them (an email from before tags, or not from the outbox) still suppresses when it names the
//! company. Applying the same event twice changes nothing more (SNS delivers at least once).

use serde_json::Value;
use time::OffsetDateTime;

use crate::adapters::store::outbox::{EmailRecord, EmailState, Suppression};
use crate::adapters::store::{Store, StoreError};
use crate::foundation::ids::CompanyId;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EventReport {
    pub events: usize,
    pub suppressed: usize,
    pub failed: usize,
    pub delivered: usize,
    pub ignored: usize,
}

/// One SES event (the `Message` of an SNS notification, parsed).
pub async fn apply(
    store: &Store,
    event: &Value,
    now: OffsetDateTime,
    report: &mut EventReport,
) -> Result<(), StoreError> {
    report.events += 1;
    // Configuration-set events say `eventType`; identity notifications say `notificationType`.
    let kind = event["eventType"].as_str().or_else(|| event["notificationType"].as_str()).unwrap_or_default();
    let tag = |name: &str| event["mail"]["tags"][name][0].as_str().map(str::to_owned);
    let company: Option<CompanyId> = tag("company_id").and_then(|c| c.parse().ok());
    let record = match (tag("company_id"), tag("inspection_id"), tag("email")) {
        (Some(c), Some(i), Some(e)) => EmailRecord::from_tags(&c, &i, &e),
        _ => None,
    };
    let (addresses, why, kind_name): (Vec<String>, String, &str) = match kind {
        "Bounce" if event["bounce"]["bounceType"] == "Permanent" => (
            recipients(&event["bounce"]["bouncedRecipients"]),
            format!(
                "bounced for good ({}): {}",
                event["bounce"]["bounceSubType"].as_str().unwrap_or("General"),
                event["bounce"]["bouncedRecipients"][0]["diagnosticCode"].as_str().unwrap_or("no diagnostic")
            ),
            "bounce",
        ),
        "Complaint" => (
            recipients(&event["complaint"]["complainedRecipients"]),
            "the recipient marked it as spam (complaint)".to_owned(),
            "complaint",
        ),
        "Reject" => (Vec::new(), "SES rejected the message".to_owned(), "reject"),
        "Delivery" => {
            let at = event["delivery"]["timestamp"]
                .as_str()
                .and_then(crate::foundation::clock::parse_rfc3339)
                .unwrap_or(now);
            return match record {
                Some((c, i, dedupe)) => {
                    update(store, c, i, &dedupe, |r| {
                        let first = r.delivered_at.is_none();
                        r.delivered_at.get_or_insert(at);
                        first
                    })
                    .await?;
                    report.delivered += 1;
                    Ok(())
                }
                None => {
                    report.ignored += 1;
                    Ok(())
                }
            };
        }
        _ => {
            // A transient bounce, or an event type we do not act on.
            tracing::info!(event_type = kind, "email event noted");
            report.ignored += 1;
            return Ok(());
        }
    };
    if let Some(c) = company {
        let owner = store.company(c).await?;
        for address in &addresses {
            let s = Suppression {
                address: address.to_ascii_lowercase(),
                kind: kind_name.into(),
                reason: why.clone(),
                at: now,
            };
            store.suppress(c, &s).await?;
            report.suppressed += 1;
            crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsSuppressed, 1);
            let what = format!("{} ({})", s.address, s.reason);
            if let Some(alert) =
                owner.as_ref().map(|o| crate::adapters::store::alerts::Alert::write(o, "email_bounced", &what, now))
            {
                if let Some(w) = alert? {
                    store.write(w).await?;
                }
            }
        }
    }
    match record {
        Some((c, i, dedupe)) => {
            let changed = update(store, c, i, &dedupe, |r| {
                if r.state == EmailState::Failed {
                    return false;
                }
                r.state = EmailState::Failed;
                r.last_error = Some(why.clone());
                true
            })
            .await?;
            if changed {
                report.failed += 1;
                crate::foundation::metrics::count(crate::foundation::metrics::Metric::EmailsFailedPermanently, 1);
            }
        }
        None if company.is_none() => {
            tracing::warn!(event_type = kind, "an email event names no company: nothing to suppress");
            report.ignored += 1;
        }
        None => {}
    }
    Ok(())
}

fn recipients(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["emailAddress"].as_str())
        .map(|a| {
            // `"Name" <a@b>` → `a@b`.
            match (a.rfind('<'), a.rfind('>')) {
                (Some(l), Some(r)) if l < r => a[l + 1..r].trim().to_owned(),
                _ => a.trim().to_owned(),
            }
        })
        .collect()
}

/// Read-modify-write of one outbox record by its revision; `change` says whether it changed.
async fn update(
    store: &Store,
    c: CompanyId,
    i: crate::foundation::ids::InspectionId,
    dedupe: &str,
    change: impl Fn(&mut EmailRecord) -> bool,
) -> Result<bool, StoreError> {
    for _ in 0..5 {
        let Some(current) = store.email(c, i, dedupe).await? else { return Ok(false) };
        let mut next = current.next();
        if !change(&mut next) {
            return Ok(false);
        }
        match store.write(next.replace()?).await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_condition_failure() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Sdk("the email record kept changing while its event was applied".into()))
}

/// The SES events inside an SNS event (`Records[].Sns.Message`, each a JSON document).
pub fn from_sns(event: &Value) -> Option<Vec<Value>> {
    let records = event["Records"].as_array()?;
    if !records.iter().all(|r| r["EventSource"] == "aws:sns") || records.is_empty() {
        return None;
    }
    Some(
        records
            .iter()
            .filter_map(|r| r["Sns"]["Message"].as_str())
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_plain_addresses() {
        let list =
            serde_json::json!([{ "emailAddress": "\"Jane\" <jane@example.com>" }, { "emailAddress": "bob@x.test" }]);
        assert_eq!(recipients(&list), ["jane@example.com", "bob@x.test"]);
    }

    #[test]
    fn the_tags_an_email_is_sent_with_name_its_record() {
        let (c, i, p) =
            (CompanyId::new(), crate::foundation::ids::InspectionId::new(), crate::foundation::ids::PersonId::new());
        let r = EmailRecord::new(
            c,
            i,
            p,
            "report_published",
            None,
            format!("published#x#v1#{p}"),
            crate::foundation::clock::now(),
        );
        let tags = r.tags();
        // SES allows only letters, digits, `_` and `-` in tag values.
        assert!(tags.iter().all(|(_, v)| v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')));
        let get = |n: &str| tags.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        assert_eq!(
            EmailRecord::from_tags(&get("company_id"), &get("inspection_id"), &get("email")),
            Some((c, i, r.dedupe.clone()))
        );
    }

    #[test]
    fn only_sns_events_are_taken() {
        let sns = serde_json::json!({ "Records": [{ "EventSource": "aws:sns", "Sns": { "Message": "{\"eventType\":\"Delivery\"}" } }] });
        assert_eq!(from_sns(&sns).unwrap()[0]["eventType"], "Delivery");
        let s3 = serde_json::json!({ "Records": [{ "eventSource": "aws:s3" }] });
        assert!(from_sns(&s3).is_none());
    }
}
