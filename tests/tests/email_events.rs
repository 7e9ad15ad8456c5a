//! SES's own reports about our email, as AWS delivers them: SES event publishing (the
//! configuration set every email is sent with) → SNS → the publish function. Bounces and
//! complaints suppress the address for the company and fail the email for good, visibly; a
//! delivery is recorded; the next email to a suppressed address is not sent. An email that keeps
//! failing to send ends `failed` instead of being retried forever.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portal_tests::{fixture, from_now, Fixture, Reply};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

async fn history(f: &Fixture) -> Vec<Value> {
    let r = f.app.request("GET", &format!("/staff/inspections/{}/emails", f.inspection_id), Some(&f.key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["items"].as_array().unwrap().clone()
}

/// The outbox record of the email sent to `to`, newest first.
async fn sent_to(f: &Fixture, to: &str) -> Value {
    history(f).await.into_iter().find(|e| e["to"] == to).unwrap_or_else(|| panic!("no email to {to}"))
}

/// An SES event as SES publishes it for a configuration set, with the message tags the email
/// was sent with (`company_id`, `inspection_id`, `email`: the record's key, base64url).
fn ses_event(f: &Fixture, record: &Value, kind: &str, detail: Value) -> Value {
    let mut event = json!({
        "eventType": kind,
        "mail": {
            "timestamp": record["sent_at"],
            "source": "portal@inspection-portal.test",
            "sendingAccountId": "123456789012",
            "messageId": record["message_id"],
            "destination": [record["to"]],
            "headersTruncated": false,
            "tags": {
                "ses:configuration-set": [f.app.names.configuration_set()],
                "company_id": [f.company_id.to_string()],
                "inspection_id": [f.inspection_id.to_string()],
                "email": [URL_SAFE_NO_PAD.encode(record["dedupe"].as_str().unwrap())],
            },
        },
    });
    let key = match kind {
        "Bounce" => "bounce",
        "Complaint" => "complaint",
        "Delivery" => "delivery",
        _ => "reject",
    };
    event[key] = detail;
    event
}

/// The SNS event Lambda receives for one published message.
fn sns(message: &Value) -> Value {
    json!({ "Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:email-events:0b7a1c2d",
        "Sns": {
            "Type": "Notification", "MessageId": ulid::Ulid::new().to_string(),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:email-events", "Subject": null,
            "Message": message.to_string(), "Timestamp": from_now(Duration::seconds(1)),
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "https://sns.example/cert.pem",
            "UnsubscribeUrl": "https://sns.example/unsubscribe", "MessageAttributes": {},
        },
    }] })
}

async fn deliver(f: &Fixture, event: &Value) -> Value {
    f.app.functions.publish.dispatch(sns(event), None).await.expect("the email event was recorded")
}

async fn publish(f: &Fixture, title: &str) {
    f.app.published_document(&f.key, &f.inspection_id.to_string(), json!({ "kind": "invoice", "title": title })).await;
    f.app.run_jobs().await;
}

#[tokio::test]
async fn bounces_and_complaints_suppress_the_address_and_fail_the_email_visibly() {
    let f = fixture(json!({})).await;
    publish(&f, "First invoice").await;
    let to_client = sent_to(&f, &f.client_email).await;
    assert_eq!(to_client["state"], "sent");
    assert!(to_client["message_id"].is_string(), "SES's message id is kept: {to_client}");

    // Delivered, then a hard bounce is reported for the client's address (SES's timestamps: a
    // moment after the send).
    let delivered_at = from_now(Duration::seconds(2));
    let delivery = ses_event(
        &f,
        &to_client,
        "Delivery",
        json!({ "timestamp": delivered_at,
        "processingTimeMillis": 546, "recipients": [to_client["to"]], "smtpResponse": "250 ok", "reportingMTA": "a8-70.smtp-out.amazonses.com" }),
    );
    assert_eq!(deliver(&f, &delivery).await["email_events"]["delivered"], 1);
    assert_eq!(sent_to(&f, &f.client_email).await["delivered_at"], delivered_at.as_str());
    let bounce = ses_event(
        &f,
        &to_client,
        "Bounce",
        json!({
        "bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "0100015d-bounce",
        "timestamp": from_now(Duration::seconds(3)), "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        "bouncedRecipients": [{ "emailAddress": to_client["to"], "action": "failed", "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown" }] }),
    );
    let report = deliver(&f, &bounce).await;
    assert_eq!(
        (report["email_events"]["suppressed"].as_u64(), report["email_events"]["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let failed = sent_to(&f, &f.client_email).await;
    assert_eq!(failed["state"], "failed");
    assert!(failed["last_error"].as_str().unwrap().contains("550 5.1.1 user unknown"), "{failed}");
    // SNS delivers at least once: the same event again changes nothing more.
    assert_eq!(deliver(&f, &bounce).await["email_events"]["failed"], 0);

    // The agent complains about the same announcement.
    let to_agent = sent_to(&f, &f.agent_email).await;
    let complaint = ses_event(
        &f,
        &to_agent,
        "Complaint",
        json!({ "feedbackId": "0100015d-complaint",
        "complaintFeedbackType": "abuse", "timestamp": from_now(Duration::seconds(4)),
        "complainedRecipients": [{ "emailAddress": to_agent["to"] }] }),
    );
    deliver(&f, &complaint).await;
    assert_eq!(sent_to(&f, &f.agent_email).await["state"], "failed");

    // The next announcement goes to neither, and says why.
    let (client_before, agent_before) =
        (f.app.emails_to(&f.client_email).await.len(), f.app.emails_to(&f.agent_email).await.len());
    publish(&f, "Second invoice").await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), client_before, "no email to a bounced address");
    assert_eq!(f.app.emails_to(&f.agent_email).await.len(), agent_before, "no email to a complainer");
    let all = history(&f).await;
    let suppressed: Vec<&Value> = all.iter().filter(|e| e["state"] == "suppressed").collect();
    assert_eq!(suppressed.len(), 2, "{all:?}");
    assert!(suppressed.iter().any(|e| e["last_error"].as_str().unwrap().contains("spam")));
    assert!(suppressed.iter().any(|e| e["last_error"].as_str().unwrap().contains("bounced")));
    assert!(all.iter().all(|e| e["state"] == "failed" || e["state"] == "suppressed"), "nothing waits: {all:?}");

    // Staff resending the report skip a suppressed client and say so.
    let doc = all.iter().find_map(|e| e["document_id"].as_str()).unwrap();
    let r: Reply =
        f.app.request("POST", &format!("/staff/documents/{doc}/resend"), Some(&f.key), Some(json!({}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["queued"].as_array().unwrap().len(), 0);
    assert_eq!(r.json["suppressed"][0]["email"], f.client_email);
}

#[tokio::test]
async fn a_transient_bounce_or_an_event_of_another_sender_changes_nothing() {
    let f = fixture(json!({})).await;
    publish(&f, "Invoice").await;
    let to_client = sent_to(&f, &f.client_email).await;
    let soft = ses_event(
        &f,
        &to_client,
        "Bounce",
        json!({ "bounceType": "Transient", "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{ "emailAddress": to_client["to"] }], "timestamp": from_now(Duration::seconds(3)) }),
    );
    assert_eq!(deliver(&f, &soft).await["email_events"]["ignored"], 1);
    let mut foreign = ses_event(
        &f,
        &to_client,
        "Bounce",
        json!({ "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{ "emailAddress": to_client["to"] }], "timestamp": from_now(Duration::seconds(3)) }),
    );
    foreign["mail"]["tags"] = json!({ "ses:configuration-set": ["other"] });
    assert_eq!(deliver(&f, &foreign).await["email_events"]["ignored"], 1);
    assert_eq!(sent_to(&f, &f.client_email).await["state"], "sent");
    publish(&f, "Second invoice").await;
    assert_eq!(f.app.emails_to(&f.client_email).await.len(), 2, "still emailed");
}

#[tokio::test]
async fn an_email_that_keeps_failing_ends_failed_after_its_attempts() {
    let f = fixture(json!({})).await;
    let doc = f
        .app
        .published_document(&f.key, &f.inspection_id.to_string(), json!({ "kind": "invoice", "title": "Invoice" }))
        .await;
    assert!(!doc.is_empty());
    // A sender SES does not know: every attempt fails (a configuration problem, not the message's).
    let sender = format!("never-{}@inspection-portal.test", ulid::Ulid::new().to_string().to_lowercase());
    let env = [
        ("TABLE_NAME", f.app.names.table.clone()),
        ("BUCKET_NAME", f.app.names.bucket.clone()),
        ("SENDER_EMAIL", sender),
        ("PUBLIC_BASE_URL", f.app.base.clone()),
    ];
    let config =
        portal_shared::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let job = portal_publish::Publish::new(&f.app.sdk, config);
    let metrics = portal_shared::foundation::metrics::Recorder::default();
    let job_at = |t| metrics.scope(job.run_at(t));
    let t = OffsetDateTime::now_utc();
    // The first attempt, once the outbox index shows both emails (a moment after the publish, as
    // on AWS).
    let mut first_failed = 0;
    for _ in 0..200 {
        first_failed += job_at(t).await.emails.failed;
        if first_failed >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(first_failed, 2, "both emails failed their first attempt");
    let mut failed_for_good = 0;
    for attempt in 1..portal_shared::usecases::outbox::MAX_ATTEMPTS {
        // Each run comes after the previous attempt's backoff (at most 100 minutes).
        let r = job_at(t + Duration::hours(2) * attempt as i32).await;
        failed_for_good += r.emails.failed_permanently;
        let expected_last = attempt + 1 == portal_shared::usecases::outbox::MAX_ATTEMPTS;
        assert_eq!(r.emails.failed_permanently > 0, expected_last, "attempt {attempt}: {r:?}");
    }
    assert_eq!(failed_for_good, 2, "the client's and the agent's email");
    let all = history(&f).await;
    assert!(
        all.iter().all(|e| e["state"] == "failed" && e["attempts"] == portal_shared::usecases::outbox::MAX_ATTEMPTS),
        "{all:?}"
    );
    let counted = |m| metrics.total(m);
    use portal_shared::foundation::metrics::Metric::{EmailsFailed, EmailsFailedPermanently};
    assert_eq!((counted(EmailsFailed), counted(EmailsFailedPermanently)), (14, 2), "for the alarms");
    // Out of the outbox for good.
    let later = job_at(t + Duration::days(2)).await;
    assert_eq!((later.emails.sent, later.emails.failed, later.emails.failed_permanently), (0, 0, 0));
}
