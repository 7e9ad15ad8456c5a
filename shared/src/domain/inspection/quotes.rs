//! Quote requests to a company's partners: shared only with the client's consent, recorded with
//! who, when, from where and the exact consent text.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Inspection;
use crate::domain::company::Company;
use crate::domain::{optional_text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::{PersonId, ServiceId};

/// A client asked a partner for a quote and agreed that their details go to it: who, when, from
/// where, and the exact consent text they were shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub offer_id: ServiceId,
    pub partner: String,
    pub offer_title: String,
    pub person_id: PersonId,
    pub person_name: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub requested_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub consent_text: String,
    #[serde(default)]
    pub message: Option<String>,
    /// What was shared with the partner, exactly.
    pub shared: SharedDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDetails {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub address: String,
}

/// What a client is shown, and agrees to, before a quote request shares anything.
pub fn quote_consent_text(company: &str, partner: &str, offer: &str) -> String {
    format!(
        "I agree that {company} shares my name, email address, phone number and the property address with \
         {partner} so that {partner} can send me a quote for {offer}. Nothing else is shared."
    )
}

impl Inspection {
    /// A client asks for a quote on a special offer, consenting to share their details with the
    /// partner. Returns the request and whether it is new (asking again changes nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn request_quote(
        &mut self,
        company: &Company,
        person: PersonId,
        offer: ServiceId,
        consent: bool,
        message: Option<&str>,
        from: (Option<String>, Option<String>),
        now: OffsetDateTime,
    ) -> Result<(QuoteRequest, bool), DomainError> {
        let o = company
            .settings
            .special_offers
            .iter()
            .find(|o| o.id == offer)
            .ok_or_else(|| DomainError::rule("no-such-offer", "this inspection has no such offer"))?;
        if o.partner_email.is_none() {
            return Err(DomainError::rule("quotes-unavailable", "this partner does not take quote requests here"));
        }
        if !consent {
            return Err(DomainError::Invalid(
                "consent must be true: nothing is shared with a partner without the client's consent".into(),
            ));
        }
        if let Some(existing) = self.quotes.iter().find(|q| q.offer_id == offer && q.person_id == person) {
            return Ok((existing.clone(), false));
        }
        let message = optional_text("message", message, 2000)?;
        let p = self.person(person).ok_or_else(|| DomainError::Invalid("unknown person".into()))?;
        let q = QuoteRequest {
            offer_id: offer,
            partner: o.partner.clone(),
            offer_title: o.title.clone(),
            person_id: person,
            person_name: p.name.clone(),
            requested_at: now,
            ip: from.0,
            user_agent: from.1,
            consent_text: quote_consent_text(&company.name, &o.partner, &o.title),
            message,
            shared: SharedDetails {
                name: p.name.clone(),
                email: p.email.clone(),
                phone: p.phone.clone(),
                address: self.address.clone(),
            },
        };
        self.quotes.push(q.clone());
        self.updated_at = now;
        Ok((q, true))
    }
}
