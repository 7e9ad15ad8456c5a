//! The DynamoDB store against DynamoDB Local, each test on its own fresh table: conditional
//! creates, optimistic concurrency, transaction atomicity, batched reads, cursors, and the
//! round-trip counter the budgets of docs/product.md §8 are asserted with.

use portal_shared::adapters::roundtrips::measure;
use portal_shared::adapters::store::companies::StaffKeyRecord;
use portal_shared::adapters::store::keys;
use portal_shared::adapters::store::tokens::TokenRecord;
use portal_shared::adapters::store::{Store, StoreError};
use portal_shared::domain::company::{Company, NewCompany};
use portal_shared::domain::inspection::{Inspection, NewInspection};
use portal_shared::foundation::clock::Clock;
use portal_shared::foundation::credentials::{StaffKey, Token, TokenScope};
use portal_shared::foundation::ids::{InspectionId, KeyId, TokenId};
use portal_tests::{days_from_now, fresh_resources, sdk_config};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    Clock::system().now()
}

async fn fresh_store() -> Store {
    let sdk = sdk_config().await;
    let names = fresh_resources(&sdk).await;
    Store::new(&sdk, names.table)
}

fn company() -> Company {
    Company::create(NewCompany { name: "Acme".into(), staff_emails: vec![] }, now()).unwrap()
}

fn inspection(c: &Company, address: &str, when: &str) -> Inspection {
    let input: NewInspection = serde_json::from_value(serde_json::json!({
        "address": address, "scheduled_at": when,
        "services": [{"name": "Inspection", "price_cents": 40000}],
        "people": [{"role": "client", "name": "Jane", "email": "jane@example.com"}]
    }))
    .unwrap();
    Inspection::create(input, c, now()).unwrap()
}

fn token_for(i: &Inspection) -> TokenRecord {
    let t = Token::generate(i.company_id, TokenScope::Inspection(i.id));
    TokenRecord {
        token_id: TokenId::new(),
        company_id: i.company_id,
        inspection_id: Some(i.id),
        person_id: Some(i.people[0].id),
        role: Some(i.people[0].role),
        contact_id: None,
        token_hash: t.hash().as_str().to_owned(),
        created_at: now(),
    }
}

fn key_record(c: &portal_shared::domain::company::Company) -> StaffKeyRecord {
    StaffKeyRecord {
        key_id: KeyId::new(),
        company_id: c.id,
        name: None,
        key_hash: String::new(),
        created_at: now(),
        last_used_at: None,
        company_deleted: false,
    }
}

#[tokio::test]
async fn a_company_and_its_key_are_created_together_or_not_at_all() {
    let store = fresh_store().await;
    let c = company();
    let key = StaffKey::generate();
    let rec = key_record(&c);
    store.create_company(&c, &key.hash(), &rec).await.unwrap();
    assert_eq!(store.company(c.id).await.unwrap().unwrap(), c);
    assert_eq!(store.staff_key(&key.hash()).await.unwrap().unwrap().company_id, c.id);

    // Same key hash again (a second company): the transaction is cancelled, nothing is written.
    let other = company();
    let err = store.create_company(&other, &key.hash(), &rec).await.unwrap_err();
    assert!(err.is_condition_failure(), "{err:?}");
    assert!(store.company(other.id).await.unwrap().is_none());
}

#[tokio::test]
async fn saves_lose_to_a_concurrent_save() {
    let store = fresh_store().await;
    let mut c = company();
    store.create_company(&c, &StaffKey::generate().hash(), &key_record(&c)).await.unwrap();
    let mut stale = c.clone();
    c.name = "First".into();
    store.save_company(&mut c).await.unwrap();
    assert_eq!(c.revision, 1);
    stale.name = "Second".into();
    let err = store.save_company(&mut stale).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed));
    assert_eq!(stale.revision, 0, "revision restored so the caller can re-read");
    assert_eq!(store.company(c.id).await.unwrap().unwrap().name, "First");
}

#[tokio::test]
async fn an_inspection_and_its_tokens_are_written_atomically() {
    let store = fresh_store().await;
    let c = company();
    let mut i = inspection(&c, "1 A St", &days_from_now(7));
    let t = token_for(&i);
    store.create_inspection(&mut i, &c, vec![t.write().unwrap()]).await.unwrap();
    let got: TokenRecord = store.get(&keys::token_by_stored_hash(&t.token_hash)).await.unwrap().unwrap();
    assert_eq!(got, t);
    assert_eq!(store.inspection_pointer(i.id).await.unwrap().unwrap().company_id, c.id);

    // A second inspection reusing that token hash fails as a whole.
    let mut j = inspection(&c, "2 B St", &days_from_now(8));
    let mut clash = token_for(&j);
    clash.token_hash = t.token_hash.clone();
    let err = store.create_inspection(&mut j, &c, vec![clash.write().unwrap()]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::TransactionCanceled(r) if r.last().map(String::as_str) == Some("ConditionalCheckFailed")),
        "{err:?}"
    );
    assert!(store.inspection(c.id, j.id).await.unwrap().is_none());
    assert!(store.inspection_pointer(j.id).await.unwrap().is_none(), "nothing of the failed transaction is written");
}

#[tokio::test]
async fn round_trips_are_counted_per_request() {
    let store = fresh_store().await;
    let c = company();
    let mut i = inspection(&c, "1 A St", &days_from_now(7));
    let token = token_for(&i).write().unwrap();
    let (r, n) = measure(store.create_inspection(&mut i, &c, vec![token])).await;
    r.unwrap();
    assert_eq!(n, 1, "one transaction");
    let (got, n) = measure(store.inspection(c.id, i.id)).await;
    assert_eq!(got.unwrap().unwrap(), i);
    assert_eq!(n, 1);
    let (items, n) = measure(store.batch_get(&[
        keys::company(c.id),
        keys::inspection(c.id, i.id),
        keys::inspection(c.id, InspectionId::new()),
    ]))
    .await;
    let items = items.unwrap();
    assert_eq!(n, 1, "three keys, one batched read");
    assert!(items[0].is_none() && items[1].is_some() && items[2].is_none(), "results in key order");
    let (_, n) = measure(async {}).await;
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_inspection_list_is_a_query_on_the_index_with_cursors() {
    let store = fresh_store().await;
    let c = company();
    let other = company();
    for day in 1..=5 {
        let mut i = inspection(&c, &format!("{day} Main St"), &days_from_now(day));
        store.create_inspection(&mut i, &c, vec![]).await.unwrap();
    }
    store.create_inspection(&mut inspection(&other, "Elsewhere", &days_from_now(1)), &other, vec![]).await.unwrap();
    let first = store.list_inspections(c.id, 3, None).await.unwrap();
    assert_eq!(
        first.items.iter().map(|i| i.address.as_str()).collect::<Vec<_>>(),
        ["1 Main St", "2 Main St", "3 Main St"]
    );
    let second = store.list_inspections(c.id, 3, first.next_cursor.as_deref()).await.unwrap();
    assert_eq!(second.items.iter().map(|i| i.address.as_str()).collect::<Vec<_>>(), ["4 Main St", "5 Main St"]);
    assert!(matches!(
        store.list_inspections(other.id, 3, first.next_cursor.as_deref()).await,
        Err(StoreError::BadCursor)
    ));
}
