//! The people of an inspection (clients, agents, the inspector, others) and the links they hold.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Inspection, Role};
use crate::domain::company::Company;
use crate::domain::{optional_text, text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::{PersonId, TokenId};

/// The link a person holds: its id (safe to audit) and the hash the token table is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    pub id: TokenId,
    pub hash: String,
    /// The one link "Get Full Access" keeps for this person (replaced by the next one; it never
    /// pushes out an emailed link).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_access: bool,
    /// The one link "all my inspections" (`/me`) keeps for this person (replaced by the next one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub me: bool,
    #[serde(
        default,
        with = "crate::foundation::clock::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub issued_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub role: Role,
    pub name: String,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The person's live links, oldest first. Every email carries a fresh one (only hashes are
    /// stored, so a link cannot be sent twice); at most [`MAX_LINKS_PER_PERSON`] stay live.
    #[serde(default)]
    pub tokens: Vec<TokenRef>,
    /// Staff revoked this person's links: no email, "Get Full Access" or other path gives them a
    /// new one until staff re-issue it.
    #[serde(default)]
    pub revoked: bool,
    /// Added with `"notify": false`: no automated emails (confirmation, reminders) for them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

pub const MAX_LINKS_PER_PERSON: usize = 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub role: Role,
    pub name: String,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<String>,
    /// `false`: no confirmation email for this person (default: one is sent).
    #[serde(default)]
    pub notify: Option<bool>,
}

pub const MAX_PEOPLE: usize = 20;

/// A new person, refused if the same email already holds the same role.
pub(super) fn person(existing: &[Person], p: PersonInput) -> Result<Person, DomainError> {
    if let Some(email) = &p.email {
        if existing.iter().any(|q| q.role == p.role && q.email.as_ref() == Some(email)) {
            return Err(DomainError::Invalid(format!("{email} is listed twice as {}", p.role.as_str())));
        }
    }
    Ok(Person {
        id: PersonId::new(),
        role: p.role,
        name: text("people[].name", &p.name, 200)?,
        email: p.email,
        phone: optional_text("people[].phone", p.phone.as_deref(), 40)?,
        tokens: Vec::new(),
        revoked: false,
        quiet: p.notify == Some(false),
    })
}

impl Inspection {
    /// Positions in `people` of those who get a tokenized link: everyone with an email that is
    /// not a staff user's.
    pub fn people_needing_tokens(&self, company: &Company) -> Vec<usize> {
        (0..self.people.len()).filter(|&i| self.needs_token(i, company)).collect()
    }

    /// Whether the person at `idx` is someone the portal emails: an address that is not a staff
    /// user's. A revoked person still is (their emails are created and then skipped, so staff
    /// see what they did not get).
    pub fn emailable(&self, idx: usize, company: &Company) -> bool {
        self.people.get(idx).and_then(|p| p.email.as_ref()).is_some_and(|e| !company.is_staff_email(e))
    }

    /// Whether the person at `idx` may hold a tokenized link.
    pub fn needs_token(&self, idx: usize, company: &Company) -> bool {
        self.people
            .get(idx)
            .filter(|p| !p.revoked)
            .and_then(|p| p.email.as_ref())
            .is_some_and(|e| !company.is_staff_email(e))
    }

    /// Adds a person; returns their position. Whether they get a link is
    /// [`Inspection::needs_token`].
    pub fn add_person(&mut self, input: PersonInput, now: OffsetDateTime) -> Result<usize, DomainError> {
        if self.people.len() >= MAX_PEOPLE {
            return Err(DomainError::Invalid(format!("at most {MAX_PEOPLE} people")));
        }
        let p = person(&self.people, input)?;
        self.people.push(p);
        self.updated_at = now;
        Ok(self.people.len() - 1)
    }

    /// Removes the person at `idx` (an index from [`Inspection::person_index`]); their links die
    /// with the writes the caller adds. Signatures they gave stay on the agreement as evidence.
    pub fn remove_person(&mut self, idx: usize, now: OffsetDateTime) -> Person {
        self.updated_at = now;
        self.people.remove(idx)
    }
}
