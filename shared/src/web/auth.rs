//! Who is calling: the platform admin (a configured key) or a company's staff (a stored key hash).

use lambda_http::Request;

use crate::adapters::store::Store;
use crate::foundation::credentials::StaffKey;
use crate::foundation::ids::{CompanyId, KeyId};
use crate::web::http::bearer;
use crate::ApiError;
#[cfg(feature = "secrets-manager")]
use crate::Config;

/// An authenticated staff caller; every query it makes is scoped to `company_id`.
#[derive(Debug, Clone)]
pub struct Staff {
    pub company_id: CompanyId,
    /// Which key: recorded in audit entries (never the key itself).
    pub key_id: KeyId,
    /// Whom the key was made for (`POST /staff/keys {"name"}`).
    pub key_name: Option<String>,
}

impl Staff {
    /// This caller in an audit entry; `as_person` when acting as (previewing) that person.
    pub fn actor(&self, as_person: Option<crate::foundation::ids::PersonId>) -> crate::domain::audit::Actor {
        crate::domain::audit::Actor::Staff { key_id: self.key_id, key_name: self.key_name.clone(), as_person }
    }
}

/// How often a key's "last used" time is written (not on every request: that would be a write
/// per call).
pub const LAST_USED_RESOLUTION: time::Duration = time::Duration::hours(1);

/// The platform admin: the bearer key must be the one in the admin key's secret (read through
/// the process's cache; no request without a bearer key reads it).
#[cfg(feature = "secrets-manager")]
pub async fn admin(
    secrets: &crate::adapters::secrets_manager::Secrets,
    config: &Config,
    req: &Request,
) -> Result<(), ApiError> {
    let presented = bearer(req).ok_or(ApiError::Unauthorized)?;
    let Some(id) = &config.platform_admin_key else { return Err(ApiError::Unauthorized) };
    match secrets.value(id).await? {
        Some(key) if key.matches(presented) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// One GetItem for a well-formed key; a malformed one is refused without touching the table.
pub async fn staff(store: &Store, req: &Request) -> Result<Staff, ApiError> {
    let key = bearer(req).and_then(StaffKey::parse).ok_or(ApiError::Unauthorized)?;
    let hash = key.hash();
    let record = store.staff_key(&hash).await?.ok_or(ApiError::Unauthorized)?;
    if record.company_deleted {
        return Err(ApiError::NotFound);
    }
    if record.is_unlisted() {
        // A key from before keys were listed: list it now, so it can be seen and revoked.
        store.list_unlisted_staff_key(&hash, &record).await?;
        tracing::info!(key_id = %record.key_id, company_id = %record.company_id, "unlisted staff key listed");
    }
    tracing::debug!(key_id = %record.key_id, company_id = %record.company_id, "staff key accepted");
    let now = store.clock().now();
    if record.last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION) {
        store.touch_staff_key(&hash, now).await?;
    }
    Ok(Staff { company_id: record.company_id, key_id: record.key_id, key_name: record.name })
}
