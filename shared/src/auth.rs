//! Who is calling: the platform admin (a configured key) or a company's staff (a stored key hash).

use lambda_http::Request;

use crate::http::bearer;
use crate::ids::{CompanyId, KeyId};
use crate::secrets::StaffKey;
use crate::store::Store;
use crate::{ApiError, Config};

/// An authenticated staff caller; every query it makes is scoped to `company_id`.
#[derive(Debug, Clone, Copy)]
pub struct Staff {
    pub company_id: CompanyId,
    /// Which key: recorded in audit entries (never the key itself).
    pub key_id: KeyId,
}

pub fn admin(config: &Config, req: &Request) -> Result<(), ApiError> {
    let presented = bearer(req).ok_or(ApiError::Unauthorized)?;
    match &config.platform_admin_key {
        Some(key) if key.matches(presented) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// One GetItem for a well-formed key; a malformed one is refused without touching the table.
pub async fn staff(store: &Store, req: &Request) -> Result<Staff, ApiError> {
    let key = bearer(req).and_then(StaffKey::parse).ok_or(ApiError::Unauthorized)?;
    let hash = key.hash();
    let record = store.staff_key(&hash).await?.ok_or(ApiError::Unauthorized)?;
    tracing::debug!(key_id = %record.key_id, company_id = %record.company_id, "staff key accepted");
    Ok(Staff { company_id: record.company_id, key_id: record.key_id })
}
