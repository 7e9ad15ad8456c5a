//! A company (tenant). Everything else belongs to exactly one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::settings::Settings;
use super::{text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::CompanyId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
    /// Optimistic-concurrency counter: every save requires the revision it read.
    pub revision: u64,
    #[serde(default)]
    pub settings: Settings,
    /// Platform-admin flag: without it no deficiency is ever shown to customers.
    #[serde(default)]
    pub deficiency_visibility: bool,
    /// Emails of the company's staff users: people with these emails get no portal token.
    #[serde(default)]
    pub staff_emails: Vec<Email>,
    /// The webhook event types the company's enabled endpoints subscribe to (`*`: all), kept
    /// with every change of an endpoint: changes write only the events someone will receive.
    /// None for companies from before it was kept, until their next endpoint change: they
    /// write every event (the job drops what no endpoint wants).
    #[serde(default)]
    pub webhook_events: Option<Vec<String>>,
}

/// What frames a company's pages (see [`Company::brand`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brand {
    pub name: String,
    pub language: String,
    pub accent_color: Option<String>,
    /// On this origin (`/brand/<company>/logo`), when the company has a logo.
    pub logo_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    #[serde(default)]
    pub staff_emails: Vec<Email>,
}

impl Company {
    pub const MAX_STAFF: usize = 500;

    pub fn create(input: NewCompany, now: OffsetDateTime) -> Result<Company, DomainError> {
        let mut staff_emails = input.staff_emails;
        staff_emails.sort();
        staff_emails.dedup();
        if staff_emails.len() > Self::MAX_STAFF {
            return Err(DomainError::Invalid(format!("at most {} staff emails", Self::MAX_STAFF)));
        }
        Ok(Company {
            id: CompanyId::new(),
            name: text("name", &input.name, 200)?,
            created_at: now,
            revision: 0,
            settings: Settings::default(),
            deficiency_visibility: false,
            staff_emails,
            webhook_events: Some(Vec::new()),
        })
    }

    /// What frames the company's pages: language, accent colour, logo.
    pub fn brand(&self) -> Brand {
        let s = &self.settings;
        Brand {
            name: self.name.clone(),
            language: s.language().to_owned(),
            accent_color: s.accent_color.clone(),
            logo_url: s.logo.as_ref().map(|_| format!("/brand/{}/logo", self.id)),
        }
    }

    /// Whether a change should write a webhook event of `event_type` (an endpoint wants it).
    pub fn hears(&self, event_type: &str) -> bool {
        match &self.webhook_events {
            None => true,
            Some(types) => types.iter().any(|t| t == event_type || t == "*"),
        }
    }

    pub fn is_staff_email(&self, email: &Email) -> bool {
        self.staff_emails.binary_search(email).is_ok()
    }

    pub fn add_staff_email(&mut self, email: Email) -> Result<bool, DomainError> {
        match self.staff_emails.binary_search(&email) {
            Ok(_) => Ok(false),
            Err(_) if self.staff_emails.len() >= Self::MAX_STAFF => {
                Err(DomainError::Invalid(format!("at most {} staff emails", Self::MAX_STAFF)))
            }
            Err(pos) => {
                self.staff_emails.insert(pos, email);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_emails_are_normalised_and_matched() {
        let c = Company::create(
            NewCompany {
                name: " Acme Inspections ".into(),
                staff_emails: vec![
                    Email::parse("B@x.com").unwrap(),
                    Email::parse("a@x.com").unwrap(),
                    Email::parse("b@x.com").unwrap(),
                ],
            },
            crate::foundation::clock::now(),
        )
        .unwrap();
        assert_eq!(c.name, "Acme Inspections");
        assert_eq!(c.staff_emails.len(), 2);
        assert!(c.is_staff_email(&Email::parse("A@X.com").unwrap()));
        assert!(!c.is_staff_email(&Email::parse("client@x.com").unwrap()));
    }

    #[test]
    fn a_company_needs_a_name() {
        assert!(Company::create(
            NewCompany { name: "  ".into(), staff_emails: vec![] },
            crate::foundation::clock::now()
        )
        .is_err());
    }
}
