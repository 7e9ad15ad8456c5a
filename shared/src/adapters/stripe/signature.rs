//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex>,…`, where each `v1`
//! is HMAC-SHA256 over `"{t}.{raw body}"` with the endpoint's signing secret. Inbound payment
//! webhooks are verified with it: any configured secret (several during rotation) may match any
//! `v1`; other schemes (`v0`) are ignored; comparisons are constant-time; a timestamp older than
//! the tolerance is refused. Our own outbound webhooks are signed the same way ([`sign`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::foundation::credentials::{ct_eq, Secret};

/// Stripe's default tolerance.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("unable to extract timestamp and signatures from the Stripe-Signature header")]
    Malformed,
    #[error("no signatures found with the expected scheme (v1)")]
    NoExpectedScheme,
    #[error("no signature matches the expected signature for the payload")]
    NoMatch,
    #[error("the timestamp is outside the tolerance zone")]
    TooOld,
    #[error("no webhook signing secret is configured")]
    NoSecrets,
}

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"`: what a sender puts in `v1`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a delivery; returns its timestamp. `tolerance` 0 disables the age check.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Secret],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.split_once('=') else { continue };
        match k.trim() {
            "t" => timestamp = v.trim().parse::<i64>().ok(),
            "v1" => candidates.push(v.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::NoExpectedScheme);
    }
    if secrets.is_empty() {
        return Err(SignatureError::NoSecrets);
    }
    let matched = secrets.iter().any(|secret| {
        let expected = sign(secret.expose(), timestamp, body);
        // Every candidate is compared, whatever matched before: no early exit to time.
        candidates.iter().fold(false, |acc, c| ct_eq(expected.as_bytes(), c.as_bytes()) | acc)
    });
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if tolerance > 0 && timestamp < now - tolerance {
        return Err(SignatureError::TooOld);
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cases of Stripe's own libraries' webhook tests (stripe-python `TestWebhookSignature`),
    // with signatures computed here independently of `sign` where it matters.
    const PAYLOAD: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    const SECRET: &str = "whsec_test_secret";

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    fn header(t: i64, v1: &str) -> String {
        format!("t={t},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
    }

    #[test]
    fn the_hmac_is_over_timestamp_dot_body() {
        // Known answer, computed with Python's hmac module:
        // hmac.new(b"whsec_test_secret", b"12345." + PAYLOAD, hashlib.sha256).hexdigest()
        let known = "2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e";
        assert_eq!(sign(SECRET, 12345, PAYLOAD), known);
        let h = format!("t=12345,v1={known}");
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), 12345, 300), Ok(12345));
    }

    #[test]
    fn raise_on_malformed_header() {
        let r = verify(Some("i'm not even a real signature header"), PAYLOAD, &secrets(&[SECRET]), 100, 300);
        assert_eq!(r, Err(SignatureError::Malformed));
        assert_eq!(verify(None, PAYLOAD, &secrets(&[SECRET]), 100, 300), Err(SignatureError::Missing));
        assert_eq!(verify(Some("t=abc,v1=00"), PAYLOAD, &secrets(&[SECRET]), 100, 300), Err(SignatureError::Malformed));
    }

    #[test]
    fn raise_on_no_signatures_with_expected_scheme() {
        let t = 1_700_000_000;
        let h = format!("t={t},v0={}", sign(SECRET, t, PAYLOAD));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t, 300), Err(SignatureError::NoExpectedScheme));
    }

    #[test]
    fn raise_on_no_valid_signatures_for_payload() {
        let t = 1_700_000_000;
        assert_eq!(
            verify(Some(&header(t, "bad_signature")), PAYLOAD, &secrets(&[SECRET]), t, 300),
            Err(SignatureError::NoMatch)
        );
        let other_body = verify(Some(&header(t, &sign(SECRET, t, PAYLOAD))), b"{}", &secrets(&[SECRET]), t, 300);
        assert_eq!(other_body, Err(SignatureError::NoMatch), "the body is signed");
        let other_t = verify(Some(&header(t + 1, &sign(SECRET, t, PAYLOAD))), PAYLOAD, &secrets(&[SECRET]), t, 300);
        assert_eq!(other_t, Err(SignatureError::NoMatch), "the timestamp is signed");
    }

    #[test]
    fn tolerance_edges() {
        let t = 1_700_000_000;
        let h = header(t, &sign(SECRET, t, PAYLOAD));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t + 300, 300), Ok(t), "exactly 300 s old");
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t + 301, 300), Err(SignatureError::TooOld));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t + 15, 10), Err(SignatureError::TooOld));
        assert_eq!(
            verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t + 1_000_000, 0),
            Ok(t),
            "no tolerance: no age check"
        );
    }

    #[test]
    fn header_contains_valid_signature_among_bad_ones() {
        let t = 1_700_000_000;
        let h = format!("t={t},v1=bad_signature,v1={},v1=another_bad", sign(SECRET, t, PAYLOAD));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&[SECRET]), t, 300), Ok(t));
    }

    #[test]
    fn any_configured_secret_may_match_during_rotation() {
        let t = 1_700_000_000;
        let h = header(t, &sign("whsec_new", t, PAYLOAD));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&["whsec_old", "whsec_new"]), t, 300), Ok(t));
        assert_eq!(verify(Some(&h), PAYLOAD, &secrets(&["whsec_old"]), t, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(Some(&h), PAYLOAD, &[], t, 300), Err(SignatureError::NoSecrets));
    }
}
