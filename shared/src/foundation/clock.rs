//! Time, in one place: RFC 3339 on the wire, UTC everywhere, and one [`Clock`] that the product
//! reads the time through.
//!
//! Product code never asks the operating system for the time: each function gets a [`Clock`] with
//! its [`crate::Config`] (the system clock on Lambda), and the store gets the same one. A test
//! moves its own app's clock (pin it to a calendar fact, or let a link outlive its lifetime)
//! without touching the machine's clock or any other test. SigV4 signing and presigned URLs stay
//! on the real clock, as AWS checks them against it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Where "now" comes from: the system clock, or the system clock moved by an offset that can be
/// changed while the functions run ([`Clock::adjustable`]). An adjustable clock keeps ticking from
/// where it was set, so timestamps still increase, leases still expire and backoffs still pass.
/// Clones share the offset: every function and store of one app read one time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The operating system's clock (what Lambda runs with).
    pub fn system() -> Self {
        Clock { offset_ms: None }
    }

    /// A clock that reads as the system clock until it is [`set`](Clock::set) or
    /// [`advance`](Clock::advance)d; for tests, one per app.
    pub fn adjustable() -> Self {
        Clock { offset_ms: Some(Arc::new(AtomicI64::new(0))) }
    }

    /// Now, in UTC, at the millisecond precision timestamps are stored with (so a value read back
    /// equals the value written).
    pub fn now(&self) -> OffsetDateTime {
        let offset = self.offset_ms.as_ref().map_or(0, |o| o.load(Ordering::SeqCst));
        truncate_to_millis(OffsetDateTime::now_utc() + Duration::milliseconds(offset))
    }

    /// Moves the clock so that it reads `t` now (and ticks on from there).
    ///
    /// # Panics
    /// On the system clock, which nothing may move.
    pub fn set(&self, t: OffsetDateTime) {
        let offset = self.offset_ms.as_ref().expect("only an adjustable clock can be moved");
        let ms = (t - OffsetDateTime::now_utc()).whole_milliseconds();
        offset.store(i64::try_from(ms).expect("within ±292 million years"), Ordering::SeqCst);
    }

    /// Moves the clock forward by `d` (backward when negative).
    ///
    /// # Panics
    /// On the system clock, which nothing may move.
    pub fn advance(&self, d: Duration) {
        let offset = self.offset_ms.as_ref().expect("only an adjustable clock can be moved");
        offset.fetch_add(i64::try_from(d.whole_milliseconds()).expect("within ±292 million years"), Ordering::SeqCst);
    }
}

fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t)
}

/// The system clock's now, for unit tests of this crate; product code uses its [`Clock`].
#[cfg(test)]
pub(crate) fn now() -> OffsetDateTime {
    Clock::system().now()
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
    fn an_adjustable_clock_moves_for_its_clones_only_and_keeps_ticking() {
        let system = Clock::system();
        let app = Clock::adjustable();
        let same_app = app.clone();
        let other_app = Clock::adjustable();
        // A deliberately historic instant: its meaning does not change with the calendar.
        let pinned = parse_rfc3339("2020-03-08T07:59:00Z").unwrap();
        app.set(pinned);
        let read = same_app.now();
        assert!(read >= pinned && read - pinned < Duration::seconds(5), "{read}");
        assert!((other_app.now() - system.now()).abs() < Duration::seconds(5), "another app's clock is untouched");
        app.advance(Duration::days(8));
        assert!(same_app.now() - pinned >= Duration::days(8));
        let (a, b) = (app.now(), {
            std::thread::sleep(std::time::Duration::from_millis(3));
            app.now()
        });
        assert!(b > a, "it ticks on from where it was set");
        assert_eq!(a.nanosecond() % 1_000_000, 0, "millisecond precision");
    }

    #[test]
    #[should_panic(expected = "only an adjustable clock")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(Duration::days(1));
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds_and_round_trip() {
        // Pinned instants (here and below): formatting, whatever today is.
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
