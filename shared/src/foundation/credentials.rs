//! Bearer secrets: tokenized portal links and staff API keys.
//!
//! Secrets come from the OS CSPRNG, are shown once, and are stored only as a SHA-256 hash (they
//! carry 128 random bits, so a fast hash is enough: there is nothing to brute-force). A malformed
//! secret is rejected by its shape alone, before any database read. Nothing here implements
//! `Display` or a revealing `Debug`, so a secret cannot end up in a log line by accident.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use ulid::Ulid;

use crate::foundation::ids::{parse_ulid, CompanyId, ContactId, InspectionId};

/// A configured secret (admin key, webhook signing secret). Debug never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Hex SHA-256 of a secret: what the table stores and looks up.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    fn of(secret: &str) -> Self {
        SecretHash(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        SecretHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with a stored hash.
    pub fn matches(&self, stored: &str) -> bool {
        ct_eq(self.0.as_bytes(), stored.as_bytes())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the secret, but it is still the lookup key: keep it out of logs too.
        f.write_str("SecretHash(<redacted>)")
    }
}

fn random_u128() -> u128 {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    u128::from_be_bytes(b)
}

/// What a tokenized link opens: a person's view of one inspection (`/p/`), or a building
/// contact's customer portal (`/c/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    Inspection(InspectionId),
    Contact(ContactId),
}

/// A tokenized link's secret: `<company ULID><scope ULID><128 random bits as 26 base32 chars>`,
/// 78 characters of Crockford base32. The ids inside are not secret (they appear in share links);
/// they let a request fetch the token, its company and its inspection in one batched read, which is
/// how a portal view stays within its round-trip budget. The 128 random bits are the secret.
pub struct Token {
    text: String,
    company: CompanyId,
    scope: Ulid,
}

impl Token {
    pub const LEN: usize = 78;

    pub fn generate(company: CompanyId, scope: TokenScope) -> Self {
        let scope = match scope {
            TokenScope::Inspection(i) => i.as_ulid(),
            TokenScope::Contact(c) => c.as_ulid(),
        };
        let secret = Ulid::from(random_u128());
        let text = format!("{}{}{}", company.as_ulid(), scope, secret).to_ascii_lowercase();
        Token { text, company, scope }
    }

    /// Shape check only: length, alphabet, and three well-formed ULIDs. No I/O.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != Self::LEN || !raw.is_ascii() {
            return None;
        }
        let company = parse_ulid(&raw[0..26])?;
        let scope = parse_ulid(&raw[26..52])?;
        parse_ulid(&raw[52..78])?;
        Some(Token { text: raw.to_ascii_lowercase(), company: CompanyId::from_ulid(company), scope })
    }

    pub fn company_id(&self) -> CompanyId {
        self.company
    }

    pub fn inspection_id(&self) -> InspectionId {
        InspectionId::from_ulid(self.scope)
    }

    pub fn contact_id(&self) -> ContactId {
        ContactId::from_ulid(self.scope)
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.text)
    }

    /// The secret itself, for building the one URL that carries it. Never log the result.
    pub fn reveal(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A staff API key: `isk_` + 43 base64url characters (256 random bits).
pub struct StaffKey(String);

impl StaffKey {
    const PREFIX: &'static str = "isk_";
    const LEN: usize = 4 + 43;

    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        StaffKey(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(b)))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(Self::PREFIX)?;
        if raw.len() != Self::LEN || URL_SAFE_NO_PAD.decode(rest).map(|b| b.len()) != Ok(32) {
            return None;
        }
        Some(StaffKey(raw.to_owned()))
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// Shown once, in the response that creates it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StaffKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaffKey(<redacted>)")
    }
}

/// A sign-in code or session cookie of "all my inspections" (`/me`): 256 random bits as 43
/// base64url characters, with a prefix saying which (`msi_`, `mss_`). Stored only as its hash.
pub struct MeSecret(String);

impl MeSecret {
    pub const SIGN_IN: &'static str = "msi_";
    pub const SESSION: &'static str = "mss_";
    /// A staff preview link (`/preview/<secret>`): one person's portal, read-only, once.
    pub const PREVIEW: &'static str = "spv_";
    /// A one-click unsubscribe link (`/u/<secret>`, RFC 8058): one address, one company's
    /// optional emails.
    pub const UNSUBSCRIBE: &'static str = "uns_";

    pub fn generate(prefix: &'static str) -> Self {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        MeSecret(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(b)))
    }

    /// Shape check only (prefix, length, alphabet). No I/O.
    pub fn parse(prefix: &'static str, raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(prefix)?;
        if rest.len() != 43 || URL_SAFE_NO_PAD.decode(rest).map(|b| b.len()) != Ok(32) {
            return None;
        }
        Some(MeSecret(raw.to_owned()))
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// Only into the email or the cookie that carries it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn me_secrets_are_checked_by_shape_and_never_shown() {
        let s = MeSecret::generate(MeSecret::SESSION);
        assert!(MeSecret::parse(MeSecret::SESSION, s.reveal()).is_some());
        assert!(MeSecret::parse(MeSecret::SIGN_IN, s.reveal()).is_none(), "a session is no sign-in code");
        assert!(MeSecret::parse(MeSecret::SESSION, &s.reveal()[..40]).is_none());
        assert!(MeSecret::parse(MeSecret::SESSION, &format!("{}!", &s.reveal()[..46])).is_none());
        assert_eq!(format!("{s:?}"), "MeSecret(<redacted>)");
        assert_ne!(s.hash().as_str(), MeSecret::generate(MeSecret::SESSION).hash().as_str());
    }

    #[test]
    fn tokens_round_trip_and_carry_their_scope() {
        let company = CompanyId::new();
        let inspection = InspectionId::new();
        let t = Token::generate(company, TokenScope::Inspection(inspection));
        assert_eq!(t.reveal().len(), Token::LEN);
        let parsed = Token::parse(t.reveal()).expect("parses");
        assert_eq!(parsed.company_id(), company);
        assert_eq!(parsed.inspection_id(), inspection);
        assert!(parsed.hash().matches(t.hash().as_str()));
        // Uppercase is the same token (base32 is case-insensitive) and hashes the same.
        assert!(Token::parse(&t.reveal().to_uppercase()).unwrap().hash().matches(t.hash().as_str()));
    }

    #[test]
    fn tokens_are_unique_and_unpredictable() {
        let company = CompanyId::new();
        let scope = TokenScope::Inspection(InspectionId::new());
        let a = Token::generate(company, scope);
        let b = Token::generate(company, scope);
        assert_ne!(a.reveal(), b.reveal());
        assert_ne!(a.hash().as_str(), b.hash().as_str());
    }

    #[test]
    fn malformed_tokens_are_rejected_by_shape() {
        let good = Token::generate(CompanyId::new(), TokenScope::Inspection(InspectionId::new()));
        let g = good.reveal().to_owned();
        let cases = [
            String::new(),
            g[..77].to_owned(),
            format!("{g}0"),
            format!("{}u", &g[..77]),             // 'u' is not Crockford base32
            format!("{}9{}", &g[..52], &g[53..]), // a ULID may not start above 7
            format!("{}é", &g[..76]),
        ];
        for bad in cases {
            assert!(Token::parse(&bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn staff_keys_have_a_fixed_shape() {
        let k = StaffKey::generate();
        assert!(k.reveal().starts_with("isk_"));
        assert!(StaffKey::parse(k.reveal()).unwrap().hash().matches(k.hash().as_str()));
        assert!(StaffKey::parse("isk_short").is_none());
        assert!(StaffKey::parse(&k.reveal().replace("isk_", "xsk_")).is_none());
    }

    #[test]
    fn debug_output_never_reveals_secrets() {
        let k = StaffKey::generate();
        let t = Token::generate(CompanyId::new(), TokenScope::Contact(ContactId::new()));
        let s = Secret::new("whsec_abc");
        let printed = format!("{k:?} {t:?} {s:?} {:?}", t.hash());
        assert!(!printed.contains(k.reveal()) && !printed.contains(t.reveal()) && !printed.contains("whsec_abc"));
        assert!(!printed.contains(t.hash().as_str()));
    }

    #[test]
    fn secret_comparison_is_exact() {
        let s = Secret::new("admin-key");
        assert!(s.matches("admin-key"));
        assert!(!s.matches("admin-ke"));
        assert!(!s.matches("admin-key "));
    }
}
