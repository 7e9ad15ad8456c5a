//! Buildings, contacts (and their links), building documents and deficiencies.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::tokens::TokenRecord;
use super::{keys, Item, Page, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::customers::{Building, Contact, Deficiency, DeficiencyStatus};
use crate::domain::document::{Document, DocumentKind};
use crate::foundation::credentials::Token;
use crate::foundation::ids::{BuildingId, CompanyId, ContactId, DeficiencyId, DocumentId, InspectionId};

/// A published document as a building's contacts see it (`DOC#<d>` under the building).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildingDocument {
    pub document_id: DocumentId,
    pub inspection_id: InspectionId,
    pub kind: DocumentKind,
    pub title: String,
    /// The verified PDF version contacts are served.
    #[serde(default)]
    pub verified_version: Option<String>,
}

impl BuildingDocument {
    pub fn put(
        company: CompanyId,
        building: BuildingId,
        inspection: InspectionId,
        doc: &Document,
    ) -> Result<Write, StoreError> {
        let d = BuildingDocument {
            document_id: doc.id,
            inspection_id: inspection,
            kind: doc.kind,
            title: doc.display_name(),
            verified_version: doc.verified_version.clone(),
        };
        Ok(Write::Put(Record::new(keys::building_document(company, building, doc.id), "building_document", &d)?))
    }
}

fn building_record(c: CompanyId, b: &Building) -> Result<Record, StoreError> {
    Ok(Record::new(keys::building(c, b.id), "building", b)?
        .with_gsi1(keys::buildings_of(c), format!("{}#{}", b.name.to_lowercase(), b.id)))
}

fn contact_record(c: CompanyId, k: &Contact) -> Result<Record, StoreError> {
    Ok(Record::new(keys::contact(c, k.id), "contact", k)?
        .with_gsi1(keys::contacts_of(c), format!("{}#{}", k.email, k.id)))
}

fn deficiency_record(c: CompanyId, f: &Deficiency) -> Result<Record, StoreError> {
    let r = Record::new(keys::deficiency(c, f.building_id, f.id), "deficiency", f)?
        .with_gsi1(keys::report_deficiencies(c, f.report_id), f.id.to_string());
    Ok(if f.visible {
        let prefix = if f.status == DeficiencyStatus::Unresolved { "U" } else { "R" };
        r.with_gsi2(keys::deficiency_feed(c, f.building_id), format!("{prefix}#{}", f.id))
    } else {
        r
    })
}

/// What a `/c/<token>` request reads with its token.
pub struct CustomerContext {
    pub token: TokenRecord,
    pub company: Company,
    pub contact: Contact,
}

impl Store {
    pub async fn create_building(&self, c: CompanyId, b: &Building) -> Result<(), StoreError> {
        self.write(Write::Create(building_record(c, b)?)).await
    }

    pub async fn building(&self, c: CompanyId, b: BuildingId) -> Result<Option<Building>, StoreError> {
        self.get(&keys::building(c, b)).await
    }

    pub async fn list_buildings(
        &self,
        c: CompanyId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Building>, StoreError> {
        self.query_gsi1(&keys::buildings_of(c), limit, cursor, false).await
    }

    /// Several buildings in one round trip (missing ones are skipped).
    pub async fn buildings(&self, c: CompanyId, ids: &[BuildingId]) -> Result<Vec<Building>, StoreError> {
        let keys: Vec<_> = ids.iter().map(|b| keys::building(c, *b)).collect();
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            for item in self.batch_get(chunk).await?.into_iter().flatten() {
                out.push(serde_dynamo::from_item(item)?);
            }
        }
        Ok(out)
    }

    pub async fn create_contact(&self, c: CompanyId, k: &Contact) -> Result<(), StoreError> {
        self.write(Write::Create(contact_record(c, k)?)).await
    }

    pub async fn contact(&self, c: CompanyId, k: ContactId) -> Result<Option<Contact>, StoreError> {
        self.get(&keys::contact(c, k)).await
    }

    /// Saves a contact read at `k.revision` (plus `also`, in one transaction).
    pub async fn save_contact(&self, c: CompanyId, k: &mut Contact, also: Vec<Write>) -> Result<(), StoreError> {
        let expected = k.revision;
        k.revision += 1;
        let mut writes = vec![Write::Replace { record: contact_record(c, k)?, expected_revision: expected }];
        writes.extend(also);
        let r = self.transact(writes).await;
        if r.is_err() {
            k.revision = expected;
        }
        r
    }

    pub async fn list_contacts(
        &self,
        c: CompanyId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Contact>, StoreError> {
        self.query_gsi1(&keys::contacts_of(c), limit, cursor, false).await
    }

    /// The context of a `/c/<token>` request, or the same 404 for every bad token and for a
    /// company whose customer portal is off. A malformed token costs no read.
    pub async fn resolve_customer(&self, raw: &str) -> Result<(Token, CustomerContext), crate::ApiError> {
        let token = Token::parse(raw).ok_or(crate::ApiError::NotFound)?;
        let ctx = self.customer(&token).await?.ok_or(crate::ApiError::NotFound)?;
        if !ctx.company.settings.customer_portal_enabled {
            return Err(crate::ApiError::NotFound);
        }
        Ok((token, ctx))
    }

    /// A customer token's record, company and contact in one `BatchGetItem`; `None` for any token
    /// that does not open this contact's portal now.
    pub async fn customer(&self, token: &Token) -> Result<Option<CustomerContext>, StoreError> {
        let (c, k) = (token.company_id(), token.contact_id());
        let hash = token.hash();
        let found = self.batch_get(&[keys::token(&hash), keys::company(c), keys::contact(c, k)]).await?;
        let [Some(t), Some(co), Some(ct)] = <[_; 3]>::try_from(found).map_err(|_| StoreError::Sdk("batch".into()))?
        else {
            return Ok(None);
        };
        let record: TokenRecord = serde_dynamo::from_item(t)?;
        let contact: Contact = serde_dynamo::from_item(ct)?;
        let company: Company = serde_dynamo::from_item(co)?;
        // The same absolute lifetime as client links.
        let alive = record.created_at + company.settings.link_lifetime() > self.clock.now();
        let valid = hash.matches(&record.token_hash)
            && alive
            && record.company_id == c
            && record.contact_id == Some(k)
            && contact.tokens.iter().any(|r| r.id == record.token_id);
        if !valid {
            return Ok(None);
        }
        Ok(Some(CustomerContext { token: record, company, contact }))
    }

    /// Turning the customer portal on: every already-published document of the company's
    /// commercial inspections appears in its building's portal (the usual permissions apply when
    /// contacts read). One query page per 100 inspections, one write per published document
    /// (idempotent: a repeat puts the same items).
    pub async fn backfill_building_documents(&self, c: CompanyId) -> Result<usize, StoreError> {
        let mut cursor: Option<String> = None;
        let mut written = 0;
        loop {
            let page: super::Page<crate::domain::inspection::Inspection> =
                self.query_gsi1(&keys::inspections_of(c), 100, cursor.as_deref(), false).await?;
            for i in &page.items {
                let Some(b) = i.building_id else { continue };
                for d in i.documents.iter().filter(|d| d.published) {
                    self.write(BuildingDocument::put(c, b, i.id, d)?).await?;
                    written += 1;
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(written),
            }
        }
    }

    pub async fn building_documents(&self, c: CompanyId, b: BuildingId) -> Result<Vec<BuildingDocument>, StoreError> {
        let pk = keys::building(c, b).pk;
        Ok(self.query_prefix(&pk, keys::BUILDING_DOC_PREFIX, 500, None, true).await?.items)
    }

    pub async fn building_document(
        &self,
        c: CompanyId,
        b: BuildingId,
        d: DocumentId,
    ) -> Result<Option<BuildingDocument>, StoreError> {
        self.get(&keys::building_document(c, b, d)).await
    }

    pub async fn create_deficiency(&self, c: CompanyId, f: &Deficiency) -> Result<(), StoreError> {
        self.write(Write::Create(deficiency_record(c, f)?)).await
    }

    pub async fn deficiency(
        &self,
        c: CompanyId,
        b: BuildingId,
        f: DeficiencyId,
    ) -> Result<Option<Deficiency>, StoreError> {
        self.get(&keys::deficiency(c, b, f)).await
    }

    /// Read (with the company, in the same round trip: whether its endpoints want the event a
    /// resolution makes), change, save with the revision read (retrying a few times on a
    /// concurrent change).
    pub async fn modify_deficiency(
        &self,
        c: CompanyId,
        b: BuildingId,
        f: DeficiencyId,
        change: impl Fn(&mut Deficiency) -> bool,
    ) -> Result<Option<Deficiency>, StoreError> {
        for _ in 0..5 {
            let mut found = self.batch_get(&[keys::company(c), keys::deficiency(c, b, f)]).await?.into_iter();
            let (Some(company), Some(item)) = (found.next().flatten(), found.next().flatten()) else {
                return Ok(None);
            };
            let company: crate::domain::company::Company = serde_dynamo::from_item(company)?;
            let mut d: Deficiency = serde_dynamo::from_item(item)?;
            let was_resolved = d.status == crate::domain::customers::DeficiencyStatus::Resolved;
            if !change(&mut d) {
                return Ok(Some(d));
            }
            let expected = d.revision;
            d.revision += 1;
            let mut writes = vec![Write::Replace { record: deficiency_record(c, &d)?, expected_revision: expected }];
            // Resolving one is news for integrators, in the same transaction.
            let resolved = d.status == crate::domain::customers::DeficiencyStatus::Resolved;
            let news = resolved && !was_resolved && company.hears("deficiency.resolved");
            if let Some(at) = d.resolved_at.filter(|_| news) {
                let data = serde_json::json!({ "deficiency_id": d.id, "building_id": d.building_id,
                    "report_id": d.report_id, "resolved_at": crate::foundation::clock::rfc3339(at) });
                writes.push(
                    super::webhooks::WebhookEvent::new(c, "deficiency.resolved", data, self.clock.now()).create()?,
                );
            }
            match self.transact(writes).await {
                Ok(()) => return Ok(Some(d)),
                Err(e) if e.is_condition_failure() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::ConditionFailed)
    }

    /// Shows or hides a report's deficiencies in the feeds (after it is published or unpublished).
    /// Idempotent: safe to run again.
    /// The deficiencies recorded against a report (what its rendering lists), up to `limit`.
    pub async fn report_deficiencies(
        &self,
        c: CompanyId,
        report: DocumentId,
        limit: usize,
    ) -> Result<Vec<Deficiency>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: Page<Deficiency> =
                self.query_gsi1(&keys::report_deficiencies(c, report), 100, cursor.as_deref(), false).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(next) if out.len() < limit => cursor = Some(next),
                _ => {
                    out.truncate(limit);
                    return Ok(out);
                }
            }
        }
    }

    pub async fn sync_report_deficiencies(
        &self,
        c: CompanyId,
        report: DocumentId,
        visible: bool,
    ) -> Result<usize, StoreError> {
        let mut changed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page: Page<Deficiency> =
                self.query_gsi1(&keys::report_deficiencies(c, report), 100, cursor.as_deref(), false).await?;
            for f in &page.items {
                if f.visible != visible {
                    self.modify_deficiency(c, f.building_id, f.id, |d| {
                        let differs = d.visible != visible;
                        d.visible = visible;
                        differs
                    })
                    .await?;
                    changed += 1;
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(changed),
            }
        }
    }

    /// One query of a building's feed (visible deficiencies), newest first: unresolved only, or
    /// all (unresolved first). Returns each item with its index key (for cursors) and whether
    /// more remain.
    pub async fn feed_page(
        &self,
        c: CompanyId,
        b: BuildingId,
        unresolved_only: bool,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<(Deficiency, Item)>, bool), StoreError> {
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI2)
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .expression_attribute_values(":pk", AttributeValue::S(keys::deficiency_feed(c, b)));
        q = if unresolved_only {
            q.key_condition_expression("GSI2PK = :pk AND begins_with(GSI2SK, :u)")
                .expression_attribute_values(":u", AttributeValue::S("U#".into()))
        } else {
            q.key_condition_expression("GSI2PK = :pk")
        };
        let out = q.send().await.map_err(|e| StoreError::Sdk(crate::foundation::problem::error_chain(&e)))?;
        let more = out.last_evaluated_key.is_some();
        let mut items = Vec::new();
        for item in out.items.unwrap_or_default() {
            let key: Item = [keys::PK, keys::SK, keys::GSI2PK, keys::GSI2SK]
                .iter()
                .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            items.push((serde_dynamo::from_item(item)?, key));
        }
        Ok((items, more))
    }

    pub async fn record_contact_audit(
        &self,
        c: CompanyId,
        a: &crate::domain::audit::ContactAudit,
    ) -> Result<(), StoreError> {
        self.write(Write::Create(Record::new(keys::contact_audit(c, a.contact_id, a.id), "audit", a)?)).await
    }

    pub async fn contact_audit_trail(
        &self,
        c: CompanyId,
        k: ContactId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<crate::domain::audit::ContactAudit>, StoreError> {
        self.query_prefix(&keys::contact(c, k).pk, keys::AUDIT_PREFIX, limit, cursor, true).await
    }

    /// A building's deficiencies (staff), newest first.
    pub async fn building_deficiencies(
        &self,
        c: CompanyId,
        b: BuildingId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Deficiency>, StoreError> {
        self.query_prefix(&keys::building(c, b).pk, "DEFICIENCY#", limit, cursor, true).await
    }
}

impl Store {
    /// The company's contacts with this address (the contacts' GSI1 sorts by `<address>#<id>`).
    /// One round trip.
    pub async fn contacts_by_email(
        &self,
        c: CompanyId,
        email: &crate::foundation::email::Email,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :email)")
            .expression_attribute_values(":pk", AttributeValue::S(keys::contacts_of(c)))
            .expression_attribute_values(":email", AttributeValue::S(format!("{}#", email.as_str())))
            .send()
            .await
            .map_err(|e| StoreError::sdk(&e))?;
        Ok(out.items.unwrap_or_default().into_iter().filter_map(|i| serde_dynamo::from_item(i).ok()).collect())
    }
}
