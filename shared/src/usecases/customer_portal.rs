//! What a building contact sees (docs/product.md §7), shared by the
//! deficiency-feed function and the staff "login as customer" preview.
//!
//! Deficiencies show only when all four hold: the company's `deficiency_visibility` flag, the
//! report published (only then is a deficiency in the GSI2 feed index), the contact associated
//! with the building (only those buildings are queried), and the contact allowed to view
//! inspection reports. The first and last are checked before any building is queried.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use crate::adapters::store::customers::BuildingDocument;
use crate::adapters::store::{keys, Item, Store, StoreError};
use crate::domain::company::Company;
use crate::domain::customers::{Contact, Deficiency};
use crate::foundation::ids::{BuildingId, DeficiencyId, DocumentId};
use crate::ApiError;

#[derive(Debug, Clone, Serialize)]
pub struct BuildingCard {
    pub id: BuildingId,
    pub name: String,
    pub address: String,
    pub documents: Vec<BuildingDocument>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    pub contact: Value,
    pub company: Value,
    /// What frames the pages (language, colours, logo).
    #[serde(skip)]
    pub brand: crate::domain::company::Brand,
    pub buildings: Vec<BuildingCard>,
    /// Whether deficiency feeds show anything for this contact.
    pub deficiencies_visible: bool,
}

pub fn deficiencies_visible(company: &Company, contact: &Contact) -> bool {
    company.deficiency_visibility && contact.permissions.inspection_reports
}

/// The contact's buildings and the published documents their permissions allow: one batched
/// read of the buildings, one query per building.
pub async fn view(store: &Store, company: &Company, contact: &Contact) -> Result<CustomerView, StoreError> {
    let mut buildings = Vec::new();
    for b in store.buildings(company.id, &contact.building_ids).await? {
        let documents = store
            .building_documents(company.id, b.id)
            .await?
            .into_iter()
            .filter(|d| contact.permissions.allows(d.kind))
            .collect();
        buildings.push(BuildingCard { id: b.id, name: b.name, address: b.address, documents });
    }
    Ok(CustomerView {
        contact: json!({ "contact_id": contact.id, "name": contact.name, "email": contact.email }),
        company: json!({ "name": company.name, "contact": company.settings.contact }),
        brand: company.brand(),
        buildings,
        deficiencies_visible: deficiencies_visible(company, contact),
    })
}

/// A published building document this contact may open, found among their buildings in one read.
pub async fn find_document(
    store: &Store,
    company: &Company,
    contact: &Contact,
    doc: DocumentId,
) -> Result<Option<(BuildingId, BuildingDocument)>, StoreError> {
    let keys: Vec<_> = contact.building_ids.iter().map(|b| keys::building_document(company.id, *b, doc)).collect();
    if keys.is_empty() {
        return Ok(None);
    }
    for (b, item) in contact.building_ids.iter().zip(store.batch_get(&keys).await?) {
        if let Some(item) = item {
            let d: BuildingDocument = serde_dynamo::from_item(item)?;
            if contact.permissions.allows(d.kind) {
                return Ok(Some((*b, d)));
            }
        }
    }
    Ok(None)
}

pub fn item_json(d: &Deficiency) -> Value {
    json!({
        "id": d.id,
        "building_id": d.building_id,
        "status": d.status,
        "description": d.description,
        "severity": d.severity,
        "location": d.location,
        "report_id": d.report_id,
        "created_at": crate::foundation::clock::rfc3339(d.created_at),
        "resolved_at": d.resolved_at.map(crate::foundation::clock::rfc3339),
    })
}

#[derive(Debug, Serialize)]
pub struct FeedPage {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// Per building: where its next page starts (`None` = from the top), or done.
type FeedCursor = BTreeMap<BuildingId, Option<BTreeMap<String, String>>>;

fn encode(c: &BTreeMap<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn plain_key(item: &Item) -> BTreeMap<String, String> {
    item.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone()))).collect()
}

fn dynamo_key(key: &BTreeMap<String, String>) -> Item {
    key.iter().map(|(k, v)| (k.clone(), aws_sdk_dynamodb::types::AttributeValue::S(v.clone()))).collect()
}

/// Decodes a feed cursor, refusing one that names a building outside `allowed` or a key outside
/// that building's feed.
fn decode(raw: &str, company: &Company, allowed: &[BuildingId]) -> Result<FeedCursor, ApiError> {
    let bad = || ApiError::bad_request("the cursor is not valid for this feed");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let parsed: BTreeMap<String, Option<BTreeMap<String, String>>> =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let mut out = FeedCursor::new();
    for (b, key) in parsed {
        let b: BuildingId = b.parse().map_err(|_| bad())?;
        if !allowed.contains(&b) {
            return Err(bad());
        }
        if let Some(k) = &key {
            let names = [keys::PK, keys::SK, keys::GSI2PK, keys::GSI2SK];
            let exact = k.len() == names.len() && names.iter().all(|n| k.contains_key(*n));
            if k.get(keys::GSI2PK) != Some(&keys::deficiency_feed(company.id, b)) || !exact {
                return Err(bad());
            }
        }
        out.insert(b, key);
    }
    Ok(out)
}

/// Items read per home-feed page at most, across all buildings (a contact with 100 buildings and a
/// page of 200 would otherwise read 20,000).
pub const MAX_FETCHED: usize = 500;

/// The home feed: unresolved deficiencies across `buildings`, newest first. Each page queries
/// each building that may still have items once (limit `n`), merges by id (time-ordered), and
/// remembers per building the last item shown, so pages never repeat or skip one.
pub async fn home_feed(
    store: &Store,
    company: &Company,
    contact: &Contact,
    limit: usize,
    cursor: Option<&str>,
) -> Result<FeedPage, ApiError> {
    if !deficiencies_visible(company, contact) {
        return Ok(FeedPage { items: vec![], next_cursor: None });
    }
    let mut state: FeedCursor = match cursor {
        Some(raw) => decode(raw, company, &contact.building_ids)?,
        None => contact.building_ids.iter().map(|b| (*b, None)).collect(),
    };
    // On a later page, buildings absent from the cursor are done. At most MAX_FETCHED items are
    // read per page in all, shared between the buildings.
    let per_building = (MAX_FETCHED / state.len().max(1)).clamp(1, limit.max(1));
    let mut candidates: Vec<(Deficiency, Item, BuildingId, bool)> = Vec::new();
    let mut done: Vec<BuildingId> = Vec::new();
    // The oldest item any building with more to read got to: nothing older may be shown yet
    // (that building's next items could be newer), so pages stay newest first.
    let mut floor: Option<DeficiencyId> = None;
    for (b, start) in &state {
        let (items, more) =
            store.feed_page(company.id, *b, true, per_building as i32, start.as_ref().map(dynamo_key)).await?;
        if items.is_empty() {
            done.push(*b);
        }
        if more {
            if let Some((last, _)) = items.last() {
                floor = Some(floor.map_or(last.id, |f| f.max(last.id)));
            }
        }
        let n = items.len();
        for (i, (d, key)) in items.into_iter().enumerate() {
            candidates.push((d, key, *b, i + 1 == n && !more));
        }
    }
    for b in done {
        state.remove(&b);
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0.id));
    if let Some(floor) = floor {
        candidates.retain(|c| c.0.id >= floor);
    }
    candidates.truncate(limit);
    for (_, key, b, last_of_building) in &candidates {
        if *last_of_building {
            state.remove(b);
        } else {
            state.insert(*b, Some(plain_key(key)));
        }
    }
    let items = candidates.iter().map(|(d, ..)| item_json(d)).collect();
    let next_cursor = (!state.is_empty()).then(|| {
        encode(&state.iter().map(|(b, k)| (b.to_string(), serde_json::to_value(k).unwrap_or(Value::Null))).collect())
    });
    Ok(FeedPage { items, next_cursor })
}

/// One building's feed: unresolved then resolved, newest first. One query per page.
pub async fn building_feed(
    store: &Store,
    company: &Company,
    contact: &Contact,
    building: BuildingId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<FeedPage, ApiError> {
    if !contact.associated(building) {
        return Err(ApiError::NotFound);
    }
    if !deficiencies_visible(company, contact) {
        return Ok(FeedPage { items: vec![], next_cursor: None });
    }
    let start = match cursor {
        Some(raw) => decode(raw, company, &[building])?.remove(&building).flatten(),
        None => None,
    };
    let (items, more) =
        store.feed_page(company.id, building, false, limit as i32, start.as_ref().map(dynamo_key)).await?;
    let next_cursor = if more {
        items.last().map(|(_, key)| {
            encode(&BTreeMap::from([(
                building.to_string(),
                serde_json::to_value(plain_key(key)).unwrap_or(Value::Null),
            )]))
        })
    } else {
        None
    };
    Ok(FeedPage { items: items.iter().map(|(d, _)| item_json(d)).collect(), next_cursor })
}
