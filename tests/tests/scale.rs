//! Scheduled publishing at scale: thousands of scheduled documents and many due at once. In a
//! binary of its own: the load it puts on DynamoDB Local (thousands of index entries) would slow
//! the outbox index other tests wait on.

use portal_shared::adapters::store::{keys, Record, Write};
use portal_shared::usecases::publishing;
use portal_tests::{fixture, Fixture, Reply, TEST_PDF};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

async fn staff(f: &Fixture, method: &str, path: &str, body: Option<Value>) -> Reply {
    f.app.request(method, path, Some(&f.key), body).await
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn a_job_with_nothing_due_among_thousands_reads_only_the_index() {
    let f = fixture(json!({})).await;
    let far = portal_shared::foundation::clock::rfc3339(now() + Duration::days(30));
    // 3,000 documents waiting far in the future, plus everything else in the table.
    for batch in 0..30 {
        let writes: Vec<Write> = (0..100)
            .map(|n| {
                let d = portal_shared::foundation::ids::DocumentId::new();
                let key = keys::schedule(f.company_id, f.inspection_id, d);
                let due = keys::due_sort(&far, f.company_id, f.inspection_id, d);
                Write::Put(Record::new(key, "schedule", &json!({ "n": batch * 100 + n })).unwrap().with_due(due))
            })
            .collect();
        f.app.store.transact(writes).await.unwrap();
    }
    let (report, trips) =
        portal_shared::adapters::roundtrips::measure(publishing::publish_due(&f.app.store, now(), 100)).await;
    let report = report.unwrap();
    assert_eq!((report.due, report.published), (0, 0));
    // One query per shard of the DUE index's schedule queue (issued at once: one round trip's
    // latency), whatever the table holds.
    assert_eq!(trips, keys::DUE.partitions().len() as u64, "one query per shard of the DUE index");
}

#[tokio::test]
async fn many_inspections_due_at_once_are_published_concurrently_exactly_once_and_a_late_run_resumes() {
    Box::pin(many_due()).await;
}

async fn many_due() {
    let f = fixture(json!({})).await;
    let at = now() + Duration::hours(1);
    let mut inspections = vec![f.inspection_id.to_string()];
    for _ in 0..7 {
        let mut body = portal_tests::inspection_body();
        body["notify"] = json!(false);
        let r = staff(&f, "POST", "/staff/inspections", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        inspections.push(r.json["inspection_id"].as_str().unwrap().to_owned());
    }
    let mut docs = Vec::new();
    for inspection in &inspections {
        for n in 0..3 {
            let body = json!({ "kind": "attachment", "title": format!("Photos {n}"),
                "publish_at": portal_shared::foundation::clock::rfc3339(at) });
            let (id, _) = f.app.put_document(&f.key, inspection, body, TEST_PDF, "application/pdf").await;
            assert_eq!(f.app.complete_upload(&f.key, &id).await.status, 200);
            docs.push(id);
        }
    }
    let store = &f.app.store;
    let due_at = at + Duration::seconds(1);
    // A run already out of time takes nothing and says so; everything stays due.
    let late = publishing::publish_due_within(store, due_at, 10_000, Some(std::time::Instant::now())).await.unwrap();
    assert_eq!((late.published, late.stopped_early, late.errors), (0, true, 0), "{late:?}");
    // Two runs at once (a retry overlapping the next minute's run): each document once.
    let (a, b) =
        tokio::join!(publishing::publish_due(store, due_at, 10_000), publishing::publish_due(store, due_at, 10_000));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.published + b.published, docs.len(), "{a:?} {b:?}");
    assert_eq!((a.errors + b.errors, a.failed + b.failed), (0, 0));
    for doc in &docs {
        let d = staff(&f, "GET", &format!("/staff/documents/{doc}"), None).await;
        assert_eq!(d.json["published"], true, "{}", d.text);
    }
    let again = publishing::publish_due(store, due_at + Duration::minutes(1), 10_000).await.unwrap();
    assert_eq!((again.due, again.published), (0, 0), "nothing left in the index");
}
