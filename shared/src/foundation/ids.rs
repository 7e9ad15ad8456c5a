//! Identifier newtypes. Every id is a ULID (sortable by creation time); each entity gets its own
//! type so a document id can never be passed where an inspection id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

fn next_ulid() -> Ulid {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    GENERATOR.lock().unwrap_or_else(|e| e.into_inner()).generate().unwrap_or_else(|_| Ulid::new())
}

macro_rules! ulid_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// A new id from the current time and the OS CSPRNG (unguessable: share links carry ids).
            pub fn new() -> Self {
                Self(Ulid::new())
            }

            /// An id strictly greater than every earlier one from this process, so records made in
            /// the same millisecond still sort in creation order. Consecutive ids differ by one:
            /// only for ids that are never looked up by outsiders (audit entries).
            pub fn new_monotonic() -> Self {
                Self(next_ulid())
            }

            pub fn as_ulid(&self) -> Ulid {
                self.0
            }

            pub fn from_ulid(u: Ulid) -> Self {
                Self(u)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                parse_ulid(s).map(Self).ok_or(InvalidId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

ulid_id!(
    /// A tenant: an inspection company.
    CompanyId,
    /// A staff API key (the key's id, not the secret).
    KeyId,
    InspectionId,
    PersonId,
    ServiceId,
    DocumentId,
    /// A tokenized link (the token's id, safe to log and audit; never the token).
    TokenId,
    BuildingId,
    ContactId,
    DeficiencyId,
    /// A finding of a residential inspection, recorded for its report.
    FindingId,
    AuditId,
);

/// Exactly 26 Crockford base32 characters (case-insensitive) encoding at most 128 bits: the
/// first character is 0–7. The `ulid` crate alone accepts larger first characters.
pub fn parse_ulid(s: &str) -> Option<Ulid> {
    if s.len() != 26 || !matches!(s.as_bytes()[0], b'0'..=b'7') {
        return None;
    }
    Ulid::from_string(s).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected a 26-character ULID)")]
pub struct InvalidId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id = InspectionId::new();
        assert_eq!(id.to_string().parse::<InspectionId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<InspectionId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "abc",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVV",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FA!",
        ] {
            assert!(bad.parse::<CompanyId>().is_err(), "{bad:?} parsed");
        }
        assert!("01arz3ndektsv4rrffq69g5fav".parse::<CompanyId>().is_ok());
    }
}
