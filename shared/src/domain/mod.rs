//! Pure domain rules: no I/O, so they can be tested exhaustively. Handlers parse requests into
//! these types, call these functions, and hand the results to the store.
//!
//! Only `foundation` is below this folder: nothing here may reach an adapter, a use case or the
//! web layer, and the time always comes in as an argument.

pub mod audit;
pub mod calendar;
pub mod company;
pub mod customers;
pub mod document;
pub mod gate;
pub mod inspection;
pub mod mail;
pub mod me;
pub mod payments;
pub mod portal;
pub mod reminders;
pub mod settings;
pub mod template_syntax;
pub mod templates;
pub mod webhook_events;
pub mod webhook_targets;

/// A text field: trimmed, non-empty when required, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    optional_text(field, Some(v), max).map(Option::unwrap_or_default)
}

pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, DomainError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => {
            Err(DomainError::Invalid(format!("{field} must be at most {max} characters")))
        }
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') => {
            Err(DomainError::Invalid(format!("{field} must not contain control characters")))
        }
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// Why a domain operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An invalid value (400).
    #[error("{0}")]
    Invalid(String),
    /// Valid on its own, but refused by a rule given the current state (409).
    #[error("{detail}")]
    Rule { code: &'static str, detail: String },
    /// Only the platform admin may do this (403).
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    pub fn rule(code: &'static str, detail: impl Into<String>) -> Self {
        DomainError::Rule { code, detail: detail.into() }
    }
}

impl From<DomainError> for crate::ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(d) => crate::ApiError::BadRequest(d),
            DomainError::Rule { code, detail } => crate::ApiError::Conflict { code, detail },
            DomainError::Forbidden(d) => crate::ApiError::Forbidden(d),
        }
    }
}

impl From<crate::foundation::money::InvalidMoney> for DomainError {
    fn from(e: crate::foundation::money::InvalidMoney) -> Self {
        DomainError::Invalid(e.to_string())
    }
}

impl From<crate::foundation::email::InvalidEmail> for DomainError {
    fn from(e: crate::foundation::email::InvalidEmail) -> Self {
        DomainError::Invalid(e.to_string())
    }
}
