//! Tokenized links, stored by the SHA-256 of the token.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::inspection::Role;
use crate::ids::{CompanyId, ContactId, InspectionId, PersonId, TokenId};

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
