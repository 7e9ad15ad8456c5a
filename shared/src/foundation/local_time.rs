//! Times as people read them: in the company's time zone (an IANA name in its settings) with the
//! zone's abbreviation, e.g. "Thursday, November 26, 2026 at 1:41 AM CST". JSON keeps RFC 3339
//! UTC; only pages, emails and the agreement text are local. The tz database is compiled in
//! (Lambda's images carry none), so a zone's rules, daylight saving included, are the same
//! everywhere.

use time::OffsetDateTime;

/// The zone called `name` (e.g. `America/Chicago`), if it exists.
pub fn zone(name: &str) -> Option<jiff::tz::TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    jiff::tz::TimeZone::get(name).ok()
}

fn zoned(t: OffsetDateTime, zone_name: Option<&str>) -> Option<jiff::Zoned> {
    let tz = zone_name.and_then(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let ts = jiff::Timestamp::from_second(t.unix_timestamp()).ok()?;
    Some(ts.to_zoned(tz))
}

/// "Thursday, November 26, 2026 at 1:41 AM CST".
pub fn date_time(t: OffsetDateTime, zone_name: Option<&str>) -> String {
    zoned(t, zone_name)
        .map(|z| z.strftime("%A, %B %-d, %Y at %-I:%M %p %Z").to_string())
        .unwrap_or_else(|| crate::foundation::clock::rfc3339(t))
}

/// "Thu, Nov 26" (the local day, short: for subjects).
pub fn short_day(t: OffsetDateTime, zone_name: Option<&str>) -> String {
    zoned(t, zone_name)
        .map(|z| z.strftime("%a, %b %-d").to_string())
        .unwrap_or_else(|| crate::foundation::clock::rfc3339(t))
}

/// "November 26, 2026" (the local date).
pub fn date(t: OffsetDateTime, zone_name: Option<&str>) -> String {
    zoned(t, zone_name)
        .map(|z| z.strftime("%B %-d, %Y").to_string())
        .unwrap_or_else(|| crate::foundation::clock::rfc3339(t))
}

/// [`date_time`] of an RFC 3339 string (as views carry it); the string itself if it does not parse.
pub fn date_time_of(rfc3339: &str, zone_name: Option<&str>) -> String {
    crate::foundation::clock::parse_rfc3339(rfc3339).map_or_else(|| rfc3339.to_owned(), |t| date_time(t, zone_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        crate::foundation::clock::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn local_time_with_the_abbreviation_across_a_dst_change() {
        let chicago = Some("America/Chicago");
        // Pinned instants, a calendar fact: before and after the end of daylight saving time
        // (November 1, 2026, 2:00 AM CDT). Pure formatting: today's date plays no part.
        assert_eq!(date_time(at("2026-10-31T14:30:00Z"), chicago), "Saturday, October 31, 2026 at 9:30 AM CDT");
        assert_eq!(date_time(at("2026-11-26T07:41:00Z"), chicago), "Thursday, November 26, 2026 at 1:41 AM CST");
        assert_eq!(date_time(at("2026-11-26T07:41:00Z"), None), "Thursday, November 26, 2026 at 7:41 AM UTC");
        assert_eq!(date(at("2026-11-26T03:00:00Z"), chicago), "November 25, 2026", "the local date");
        assert_eq!(
            date_time(at("2026-07-04T16:00:00Z"), Some("Europe/Berlin")),
            "Saturday, July 4, 2026 at 6:00 PM CEST"
        );
    }

    #[test]
    fn only_real_zones_are_accepted() {
        assert!(zone("America/Chicago").is_some());
        assert!(zone("UTC").is_some());
        for bad in ["", "Mars/Olympus", "../etc/passwd", "America/Chicago\n"] {
            assert!(zone(bad).is_none(), "{bad:?}");
        }
    }
}
