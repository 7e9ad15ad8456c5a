//! Calendar invitations (RFC 5545) for an inspection: the confirmation and each reschedule carry
//! a `METHOD:REQUEST`, a cancellation a `METHOD:CANCEL`, all with the inspection's one `UID` and a
//! `SEQUENCE` that grows with each change, so a calendar updates its one event instead of adding
//! another. Times are in the company's zone (`DTSTART;TZID=…` with its `VTIMEZONE`, built from the
//! compiled-in tz database: the transitions around the inspection), or UTC when it has none.

use time::OffsetDateTime;

use super::company::Company;
use super::inspection::{Inspection, Person};

/// What the invitation does to the event in the recipient's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

/// How an invitation is sent: what it does, the portal's host name (for the `UID`), the address
/// replies go to (the organizer), the recipient's portal link, and when.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    pub method: Method,
    pub host: &'a str,
    pub organizer: &'a str,
    pub link: &'a str,
    pub now: OffsetDateTime,
}

/// The invitation for `person`.
pub fn invitation(company: &Company, inspection: &Inspection, person: &Person, how: &Sending) -> String {
    let Sending { method, host, organizer, link, now } = *how;
    let zone_name = company.settings.time_zone.as_deref();
    let zone = zone_name.and_then(crate::foundation::local_time::zone);
    let start = inspection.scheduled_at;
    let minutes = company.settings.inspection_duration_minutes();
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Inspection Portal//Client portal//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        format!("METHOD:{}", if method == Method::Cancel { "CANCEL" } else { "REQUEST" }),
    ];
    let dtstart = match (&zone, zone_name) {
        (Some(tz), Some(name)) => {
            lines.extend(vtimezone(tz, name, start));
            format!("DTSTART;TZID={name}:{}", local(tz, start))
        }
        _ => format!("DTSTART:{}", utc(start)),
    };
    lines.extend([
        "BEGIN:VEVENT".to_owned(),
        format!("UID:inspection-{}@{host}", inspection.id),
        format!("SEQUENCE:{}", inspection.calendar_sequence),
        format!("DTSTAMP:{}", utc(now)),
        dtstart,
        format!("DURATION:PT{}H{}M", minutes / 60, minutes % 60),
        format!("SUMMARY:{}", text(&format!("Inspection at {} ({})", inspection.address, company.name))),
        format!("LOCATION:{}", text(&inspection.address)),
        format!("DESCRIPTION:{}", text(&format!("Your inspection portal: {link}"))),
        format!("URL:{link}"),
        format!("ORGANIZER;CN={}:mailto:{organizer}", param(&company.name)),
    ]);
    if let Some(email) = &person.email {
        lines.push(format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:mailto:{}",
            param(&person.name),
            email.as_str()
        ));
    }
    lines.push(format!("STATUS:{}", if method == Method::Cancel { "CANCELLED" } else { "CONFIRMED" }));
    lines.extend(["END:VEVENT".to_owned(), "END:VCALENDAR".to_owned()]);
    lines.iter().map(|l| fold(l)).collect::<Vec<_>>().join("")
}

/// `YYYYMMDDTHHMMSSZ`.
fn utc(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn timestamp(t: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// The local `YYYYMMDDTHHMMSS` of `t` in `tz`.
fn local(tz: &jiff::tz::TimeZone, t: OffsetDateTime) -> String {
    timestamp(t).to_zoned(tz.clone()).strftime("%Y%m%dT%H%M%S").to_string()
}

/// `±HHMM`.
fn offset(o: jiff::tz::Offset) -> String {
    let s = o.seconds();
    let sign = if s < 0 { '-' } else { '+' };
    format!("{sign}{:02}{:02}", s.abs() / 3600, s.abs() % 3600 / 60)
}

/// The zone's definition around `at`: the transition in effect then and the next one (a calendar
/// needs no more to place the event), or one fixed offset for a zone without transitions.
fn vtimezone(tz: &jiff::tz::TimeZone, name: &str, at: OffsetDateTime) -> Vec<String> {
    let ts = timestamp(at);
    let mut out = vec!["BEGIN:VTIMEZONE".to_owned(), format!("TZID:{name}")];
    let transitions: Vec<_> = tz.preceding(ts).take(1).chain(tz.following(ts).take(1)).collect();
    if transitions.is_empty() {
        let info = tz.to_offset_info(ts);
        let o = offset(info.offset());
        out.extend([
            "BEGIN:STANDARD".to_owned(),
            "DTSTART:19700101T000000".to_owned(),
            format!("TZOFFSETFROM:{o}"),
            format!("TZOFFSETTO:{o}"),
            format!("TZNAME:{}", info.abbreviation()),
            "END:STANDARD".to_owned(),
        ]);
    }
    for t in transitions {
        let before = tz.to_offset_info(t.timestamp() - jiff::SignedDuration::from_secs(1)).offset();
        let kind = if t.dst().is_dst() { "DAYLIGHT" } else { "STANDARD" };
        // DTSTART is the local time the change happens at, on the clock before it.
        let onset = t.timestamp().to_zoned(jiff::tz::TimeZone::fixed(before)).strftime("%Y%m%dT%H%M%S").to_string();
        out.extend([
            format!("BEGIN:{kind}"),
            format!("DTSTART:{onset}"),
            format!("TZOFFSETFROM:{}", offset(before)),
            format!("TZOFFSETTO:{}", offset(t.offset())),
            format!("TZNAME:{}", t.abbreviation()),
            format!("END:{kind}"),
        ]);
    }
    out.push("END:VTIMEZONE".to_owned());
    out
}

/// A TEXT value: backslash, semicolon, comma and line breaks escaped.
fn text(s: &str) -> String {
    s.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace("\r\n", "\\n").replace(['\n', '\r'], "\\n")
}

/// A parameter value, quoted (no double quotes or control characters inside).
fn param(s: &str) -> String {
    format!("\"{}\"", s.chars().filter(|c| *c != '"' && !c.is_control()).collect::<String>())
}

/// One content line, folded at 75 octets (never inside a UTF-8 character), ending in CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        for l in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end(), line);
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(text("12 Elm St, Apt 3; back\nside"), "12 Elm St\\, Apt 3\\; back\\nside");
    }
}
