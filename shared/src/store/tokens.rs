//! Tokenized links, stored by the SHA-256 of the token.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{keys, Record, Store, StoreError, Write};
use crate::domain::company::Company;
use crate::domain::inspection::{Inspection, Role, TokenRef};
use crate::ids::{CompanyId, ContactId, InspectionId, PersonId, TokenId};
use crate::secrets::{Token, TokenScope};

/// What a token grants. Stored at `TOKEN#<sha256>`; deleting it revokes the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub token_id: TokenId,
    pub company_id: CompanyId,
    #[serde(default)]
    pub inspection_id: Option<InspectionId>,
    #[serde(default)]
    pub person_id: Option<PersonId>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// The stored hash, compared in constant time with the presented token's hash.
    pub token_hash: String,
    #[serde(with = "crate::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
}

impl TokenRecord {
    pub fn write(&self) -> Result<Write, StoreError> {
        Ok(Write::Create(Record::new(keys::token_by_stored_hash(&self.token_hash), "token", self)?))
    }
}

/// A freshly issued link for a person of an inspection: the secret (to put in one URL, once),
/// the record to store, and the reference the aggregate keeps.
pub struct IssuedToken {
    pub token: Token,
    pub record: TokenRecord,
}

impl IssuedToken {
    /// Issues a new link to the person at `idx` and records it on the aggregate; returns the
    /// writes that store it and delete the link it replaces (if any), for the same transaction as
    /// the aggregate.
    pub fn issue(
        inspection: &mut Inspection,
        idx: usize,
        now: OffsetDateTime,
    ) -> Result<(Self, Vec<Write>), StoreError> {
        let token = Token::generate(inspection.company_id, TokenScope::Inspection(inspection.id));
        let person = &mut inspection.people[idx];
        let record = TokenRecord {
            token_id: TokenId::new(),
            company_id: inspection.company_id,
            inspection_id: Some(inspection.id),
            person_id: Some(person.id),
            role: Some(person.role),
            contact_id: None,
            token_hash: token.hash().as_str().to_owned(),
            created_at: now,
        };
        let old = person.token.replace(TokenRef { id: record.token_id, hash: record.token_hash.clone() });
        let mut writes = vec![record.write()?];
        writes.extend(old.map(|t| Write::Delete(keys::token_by_stored_hash(&t.hash))));
        Ok((IssuedToken { token, record }, writes))
    }
}

/// Everything a portal request needs, read with its token.
pub struct PortalContext {
    pub token: TokenRecord,
    pub company: Company,
    pub inspection: Inspection,
}

impl PortalContext {
    /// Position of the token's holder in `inspection.people`.
    pub fn person_index(&self) -> usize {
        self.token.person_id.and_then(|p| self.inspection.person_index(p)).expect("checked by Store::portal")
    }

    pub fn person(&self) -> &crate::domain::inspection::Person {
        &self.inspection.people[self.person_index()]
    }
}

impl Store {
    /// Resolves a client/agent token: its record, company and inspection in one `BatchGetItem`
    /// (the ids come from the token itself). `None` for any token that does not open this
    /// inspection now: unknown, revoked, replaced by a re-issue, or naming another scope.
    pub async fn portal(&self, token: &Token) -> Result<Option<PortalContext>, StoreError> {
        let (company_id, inspection_id) = (token.company_id(), token.inspection_id());
        let hash = token.hash();
        let found = self
            .batch_get(&[keys::token(&hash), keys::company(company_id), keys::inspection(company_id, inspection_id)])
            .await?;
        let [Some(t), Some(c), Some(i)] = <[_; 3]>::try_from(found).map_err(|_| StoreError::Sdk("batch".into()))?
        else {
            return Ok(None);
        };
        let record: TokenRecord = serde_dynamo::from_item(t)?;
        let inspection: Inspection = serde_dynamo::from_item(i)?;
        let valid = hash.matches(&record.token_hash)
            && record.company_id == company_id
            && record.inspection_id == Some(inspection_id)
            && record.person_id.is_some_and(|p| inspection.token_holder(p, record.token_id).is_some());
        if !valid {
            return Ok(None);
        }
        Ok(Some(PortalContext { token: record, company: serde_dynamo::from_item(c)?, inspection }))
    }
}
