//! The inspection agreement: its exact text (versioned: a new version when the services change
//! after someone signed), and clients' signatures with the SHA-256 of the text they signed.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use super::{Inspection, Role};
use crate::domain::company::Company;
use crate::domain::{text, DomainError};
use crate::foundation::ids::PersonId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub person_id: PersonId,
    pub version: u32,
    pub typed_name: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub signed_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 of the exact agreement text signed.
    pub text_sha256: String,
}

/// Versioned agreement: a new version whenever the services change after someone signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub version: u32,
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// A signature as the client gives it, with where it came from.
#[derive(Debug, Clone)]
pub struct SignatureInput {
    pub typed_name: String,
    pub version: Option<u32>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Inspection {
    /// The exact agreement text of the current version: the company's terms and what this
    /// inspection is (property, date, clients, services, total). Its SHA-256 is kept with every
    /// signature, so what was signed can always be proven.
    pub fn agreement_text(&self, company: &Company) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(t, "INSPECTION AGREEMENT (version {})", self.agreement.version);
        let _ = writeln!(t, "Inspection company: {}", company.name);
        let _ = writeln!(t, "Property: {}", self.address);
        let _ = writeln!(
            t,
            "Scheduled: {}",
            crate::foundation::local_time::date_time(self.scheduled_at, company.settings.time_zone.as_deref())
        );
        let clients: Vec<&str> =
            self.people.iter().filter(|p| p.role == Role::Client).map(|p| p.name.as_str()).collect();
        let _ = writeln!(t, "Client(s): {}", clients.join(", "));
        let _ = writeln!(t, "Services:");
        for s in &self.services {
            let _ = writeln!(t, "  - {}: {}", s.name, crate::foundation::money::format(s.price_cents, self.currency));
        }
        let _ = writeln!(t, "Total: {}", crate::foundation::money::format(self.invoice_total(), self.currency));
        let _ = writeln!(t);
        t.push_str(company.settings.agreement_terms());
        t
    }

    /// A client signs the current agreement version. `seen_version`, when given, must be the
    /// current one (the services may have changed since the client read the text). Signing a
    /// version already signed changes nothing and returns false.
    pub fn sign_agreement(
        &mut self,
        company: &Company,
        signer: PersonId,
        input: SignatureInput,
        now: OffsetDateTime,
    ) -> Result<bool, DomainError> {
        let person = self.person(signer).ok_or_else(|| DomainError::Invalid("unknown signer".into()))?;
        if person.role != Role::Client {
            return Err(DomainError::Forbidden("only a client can sign the agreement".into()));
        }
        let typed_name = text("typed_name", &input.typed_name, 200)?;
        if let Some(v) = input.version {
            if v != self.agreement.version {
                return Err(DomainError::rule(
                    "agreement-changed",
                    format!(
                        "the agreement is now version {} (the services changed); read it again before signing",
                        self.agreement.version
                    ),
                ));
            }
        }
        let version = self.agreement.version;
        if self.agreement.signatures.iter().any(|s| s.person_id == signer && s.version == version) {
            return Ok(false);
        }
        let text_sha256 = hex::encode(sha2::Sha256::digest(self.agreement_text(company).as_bytes()));
        self.agreement.signatures.push(Signature {
            person_id: signer,
            version,
            typed_name,
            signed_at: now,
            ip: input.ip,
            user_agent: input.user_agent.map(|ua| ua.chars().take(512).collect()),
            text_sha256,
        });
        self.updated_at = now;
        Ok(true)
    }

    pub fn signed_by(&self, person: PersonId) -> bool {
        self.agreement.signatures.iter().any(|s| s.person_id == person && s.version == self.agreement.version)
    }

    /// Signed means every client signed the current version.
    pub fn agreement_signed(&self) -> bool {
        let mut clients = self.people.iter().filter(|p| p.role == Role::Client).peekable();
        clients.peek().is_some() && clients.all(|c| self.signed_by(c.id))
    }
}
