//! Time, in one place: RFC 3339 on the wire, UTC everywhere.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, in UTC, at the millisecond precision timestamps are stored with (so a value read back
/// equals the value written).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t)
}

/// RFC 3339 in UTC with a fixed shape (`YYYY-MM-DDTHH:MM:SS.mmmZ`, always three fraction
/// digits), so stored timestamps also sort as strings. (`time`'s own RFC 3339 formatter trims
/// trailing zeros: `…:56.77Z` would sort after `…:56.771Z` and `…:56Z` after `…:56.5Z`, so a
/// key range "up to now" could miss what was written in the same second.)
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// serde helpers for `OffsetDateTime` as RFC 3339 strings (UTC, millisecond precision).
pub mod serde_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        super::parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time"))
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds_and_round_trip() {
        let t = parse_rfc3339("2026-05-01T09:30:00.123456-05:00").unwrap();
        let s = rfc3339(t);
        assert_eq!(s, "2026-05-01T14:30:00.123Z");
        assert_eq!(parse_rfc3339(&s).unwrap().unix_timestamp(), t.unix_timestamp());
        assert!(parse_rfc3339("tomorrow").is_none());
    }

    #[test]
    fn stored_timestamps_sort_as_strings_like_the_times_they_are() {
        let base = parse_rfc3339("2026-11-23T15:50:56Z").unwrap();
        assert_eq!(rfc3339(base), "2026-11-23T15:50:56.000Z");
        assert_eq!(rfc3339(base + time::Duration::milliseconds(770)), "2026-11-23T15:50:56.770Z");
        let times: Vec<_> = (0..2_500).map(|ms| base + time::Duration::milliseconds(ms * 7 % 2_500)).collect();
        for a in &times[..200] {
            for b in &times {
                assert_eq!(rfc3339(*a).cmp(&rfc3339(*b)), a.cmp(b), "{a} vs {b}");
            }
        }
    }
}
