//! SES (v1 API) adapter: every email the product sends goes through here, from the verified sender
//! identity, with the company's address as Reply-To.

use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::{Body, Content, Destination, Message, MessageTag, RawMessage};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::foundation::email::Email;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// SES refused this message for good (a rejected or suppressed address, an unverified
    /// sender): sending it again will fail again.
    #[error("SES rejected the email: {0}")]
    Rejected(String),
    /// SES did not answer in time, refused the connection or throttled: retry later.
    #[error("SES unavailable: {0}")]
    Unavailable(#[source] crate::foundation::problem::Transient),
    #[error("sending email failed: {0}")]
    Other(String),
}

impl MailError {
    fn sdk<E>(e: &aws_sdk_ses::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> Self
    where
        E: aws_sdk_ses::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let chain = crate::foundation::problem::error_chain(e);
        if crate::foundation::problem::is_transient(e) {
            return MailError::Unavailable(crate::foundation::problem::Transient(chain));
        }
        // Only what is wrong with this message itself is permanent: a malformed address, or content
        // SES refuses. A sender not verified (yet) or a paused account is the operator's to fix, and
        // the email waits for it (up to the outbox's attempts).
        let service = e.as_service_error();
        let message = service.and_then(|s| s.message()).unwrap_or_default().to_ascii_lowercase();
        match service.and_then(|s| s.code()) {
            Some("InvalidParameterValue") => MailError::Rejected(chain),
            // SES says "Email address is not verified" (or, for a raw message, that it has no
            // authority to send from the address): the sender, not this message.
            Some("MessageRejected") if !sender_not_allowed(&message) => MailError::Rejected(chain),
            _ => MailError::Other(chain),
        }
    }

    /// Whether sending the same email again cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Rejected(_))
    }
}

/// Whether a rejection's message is about the sender's identity (the operator's to fix).
fn sender_not_allowed(message: &str) -> bool {
    ["not verified", "authority to send", "not authorized to send"].iter().any(|m| message.contains(m))
}

#[derive(Clone, Debug)]
pub struct Mailer {
    client: aws_sdk_ses::Client,
    sender: Email,
    /// Every email is sent with this SES configuration set: its bounce, complaint and delivery
    /// events come back (SNS → the publish function) and its reputation metrics feed the alarms.
    configuration_set: Option<String>,
}

use crate::domain::mail::Outgoing;

impl Mailer {
    pub fn new(sdk: &aws_config::SdkConfig, sender: Email, configuration_set: Option<String>) -> Self {
        // A send is not idempotent (SES has no idempotency key): an attempt that timed out may
        // still be delivered, so the SDK must not repeat it on its own. The outbox retries later,
        // with a backoff, and each of its attempts is one send.
        // Its one attempt gets the whole operation budget.
        let timeouts = aws_sdk_ses::config::timeout::TimeoutConfig::builder()
            .connect_timeout(crate::adapters::aws::CONNECT_TIMEOUT)
            .operation_attempt_timeout(crate::adapters::aws::OPERATION_TIMEOUT)
            .operation_timeout(crate::adapters::aws::OPERATION_TIMEOUT)
            .build();
        let conf = aws_sdk_ses::config::Builder::from(sdk)
            .retry_config(aws_sdk_ses::config::retry::RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeouts)
            .interceptor(crate::adapters::roundtrips::OperationRecorder)
            .build();
        Mailer { client: aws_sdk_ses::Client::from_conf(conf), sender, configuration_set }
    }

    /// The mailer a function's configuration asks for (none without `SENDER_EMAIL`).
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &crate::Config) -> Option<Self> {
        config.sender_email.clone().map(|s| Mailer::new(sdk, s, config.ses_configuration_set.clone()))
    }

    /// The address emails are sent from.
    pub fn sender(&self) -> &Email {
        &self.sender
    }

    pub fn client(&self) -> &aws_sdk_ses::Client {
        &self.client
    }

    /// Sends one email; returns the provider's message id.
    /// `From`: the company's display name (RFC 2047 when it is not plain ASCII: SES refuses raw
    /// UTF-8 in an address header) and the verified sender address.
    fn sender_header(&self, mail: &Outgoing) -> String {
        mailbox(mail.from_name.as_deref(), self.sender.as_str())
    }

    /// Sends `mail` with one attachment (a raw MIME message: text and HTML alternatives, then the
    /// file). Returns the SES message id.
    pub async fn send_with_attachment(
        &self,
        mail: &Outgoing,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
        tags: &[(&str, String)],
    ) -> Result<String, MailError> {
        self.send_raw(mail, Some((file_name, content_type, bytes)), tags).await
    }

    /// Sends `mail` as a raw MIME message (what carries an attachment or headers of its own, such
    /// as `List-Unsubscribe`); returns the SES message id.
    async fn send_raw(
        &self,
        mail: &Outgoing,
        attachment: Option<(&str, &str, &[u8])>,
        tags: &[(&str, String)],
    ) -> Result<String, MailError> {
        let raw = mime_message(&self.sender_header(mail), mail, attachment);
        let out = self
            .client
            .send_raw_email()
            .set_configuration_set_name(self.configuration_set.clone())
            .set_tags((!tags.is_empty()).then(|| message_tags(tags)).transpose()?)
            .source(self.sender.as_str())
            .destinations(mail.to.as_str())
            .raw_message(
                RawMessage::builder().data(Blob::new(raw)).build().map_err(|e| MailError::Other(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| MailError::sdk(&e))?;
        Ok(out.message_id().to_owned())
    }

    pub async fn send(&self, mail: &Outgoing) -> Result<String, MailError> {
        self.send_tagged(mail, &[]).await
    }

    /// Sends `mail` with SES message tags (they come back in its bounce, complaint and delivery
    /// events); returns the SES message id.
    pub async fn send_tagged(&self, mail: &Outgoing, tags: &[(&str, String)]) -> Result<String, MailError> {
        // SES's simple send takes no headers of the message's own: one-click unsubscribe goes raw.
        if mail.list_unsubscribe.is_some() {
            return self.send_raw(mail, None, tags).await;
        }
        let tags = message_tags(tags)?;
        let utf8 =
            |s: &str| Content::builder().data(s).charset("UTF-8").build().map_err(|e| MailError::Other(e.to_string()));
        let from = self.sender_header(mail);
        let out = self
            .client
            .send_email()
            .set_configuration_set_name(self.configuration_set.clone())
            .set_tags((!tags.is_empty()).then_some(tags))
            .source(from)
            .destination(Destination::builder().to_addresses(mail.to.as_str()).build())
            .set_reply_to_addresses(mail.reply_to.as_ref().map(|r| vec![r.to_string()]))
            .message(
                Message::builder()
                    .subject(utf8(&mail.subject)?)
                    .body(Body::builder().text(utf8(&mail.text)?).html(utf8(&mail.html)?).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| MailError::sdk(&e))?;
        Ok(out.message_id().to_owned())
    }
}

fn message_tags(tags: &[(&str, String)]) -> Result<Vec<MessageTag>, MailError> {
    tags.iter()
        .map(|(k, v)| MessageTag::builder().name(*k).value(v).build().map_err(|e| MailError::Other(e.to_string())))
        .collect()
}

/// A header's mailbox: `"Name" <address>` when the name is printable ASCII, otherwise the name as
/// RFC 2047 encoded words (`=?UTF-8?B?…?= <address>`), so "Québec Inspections" or "Müller
/// Prüfdienst" arrive as written. Line breaks, quotes and backslashes never reach the header.
pub fn mailbox(name: Option<&str>, address: &str) -> String {
    let name = name.map(|n| n.replace(['\r', '\n', '"', '\\'], " ").trim().to_owned()).filter(|n| !n.is_empty());
    match name {
        None => address.to_owned(),
        Some(n) if n.chars().all(|c| (' '..='~').contains(&c)) => format!("\"{n}\" <{address}>"),
        Some(n) => format!("{} <{address}>", encoded_words(&n, " ")),
    }
}

/// RFC 2047 `=?UTF-8?B?…?=` encoded words for header text that may hold any character: each word
/// at most 75 characters and made of whole characters (45 bytes → 60 base64 characters), joined
/// by `separator` (a space, or a folded line in a raw message).
pub fn encoded_words(text: &str, separator: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words.join(separator)
}

/// An attachment's file name as MIME parameters: an ASCII `filename="…"` every client reads, and
/// the exact name as RFC 2231 `filename*=UTF-8''…` when it is not plain ASCII.
fn file_name_params(param: &str, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '_' }).collect();
    if ascii == name {
        return format!("{param}=\"{ascii}\"");
    }
    let exact: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{param}=\"{ascii}\"; {param}*=UTF-8''{exact}")
}

/// Base64 in 76-character lines, as MIME wants.
fn base64_lines(bytes: &[u8]) -> String {
    let b64 = STANDARD.encode(bytes);
    let mut out = String::with_capacity(b64.len() + b64.len() / 76 * 2 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// The raw message: headers (with RFC 8058's `List-Unsubscribe` pair for an optional email), the
/// text and HTML alternatives, and the attachment if any (`name`, content type, bytes).
fn mime_message(from: &str, mail: &Outgoing, attachment: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let boundary = format!("mixed-{}", ulid::Ulid::new());
    let alt = format!("alt-{}", ulid::Ulid::new());
    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\nTo: {}\r\n", mail.to));
    if let Some(r) = &mail.reply_to {
        m.push_str(&format!("Reply-To: {r}\r\n"));
    }
    m.push_str(&format!("Subject: {}\r\nMIME-Version: 1.0\r\n", encoded_words(&mail.subject, "\r\n ")));
    if let Some(url) = &mail.list_unsubscribe {
        let url: String = url.chars().filter(|c| !c.is_control() && *c != '>').collect();
        m.push_str(&format!("List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    }
    if attachment.is_some() {
        m.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"));
        m.push_str(&format!("--{boundary}\r\n"));
    }
    m.push_str(&format!("Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n"));
    for (ct, body) in [("text/plain", &mail.text), ("text/html", &mail.html)] {
        m.push_str(&format!(
            "--{alt}\r\nContent-Type: {ct}; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            base64_lines(body.as_bytes())
        ));
    }
    m.push_str(&format!("--{alt}--\r\n"));
    if let Some((file_name, content_type, bytes)) = attachment {
        let file_name: String = file_name.chars().filter(|c| !c.is_control()).collect();
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: {content_type}; {}\r\n\
             Content-Disposition: attachment; {}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            file_name_params("name", &file_name),
            file_name_params("filename", &file_name),
            base64_lines(bytes)
        ));
        m.push_str(&format!("--{boundary}--\r\n"));
    }
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_base64_mime_parts() {
        let mail = Outgoing {
            to: Email::parse("jane@example.com").unwrap(),
            from_name: None,
            reply_to: None,
            subject: "Your report\r\nBcc: x@y".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            list_unsubscribe: None,
        };
        let raw =
            String::from_utf8(mime_message("a@b.test", &mail, Some(("R\"eport.pdf", "application/pdf", b"%PDF-1.4"))))
                .unwrap();
        assert!(raw.contains("Subject: =?UTF-8?B?"), "{raw}");
        assert!(!raw.contains("Bcc:"), "no header injection through the subject");
        assert!(raw.contains("filename=\"R_eport.pdf\""), "{raw}");
        assert!(raw.contains(&STANDARD.encode(b"%PDF-1.4")));
        assert!(raw.trim_end().ends_with("--"));
    }

    /// The words of an RFC 2047 header value, decoded (what a mail client shows).
    fn decoded(header: &str) -> String {
        header
            .split_whitespace()
            .map(|w| {
                let b64 = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
                assert!(w.len() <= 75, "encoded words are at most 75 characters: {w}");
                String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn accented_display_names_are_rfc_2047_encoded_and_plain_ones_quoted() {
        for name in ["Québec Inspections", "Müller Prüfdienst GmbH", "Ελληνικές Επιθεωρήσεις", "Инспекция 🏠"]
        {
            let header = mailbox(Some(name), "portal@inspection-portal.test");
            assert!(header.is_ascii(), "SES refuses raw UTF-8 in an address header: {header}");
            let (words, address) = header.rsplit_once(' ').unwrap();
            assert_eq!(address, "<portal@inspection-portal.test>");
            assert_eq!(decoded(words), name);
        }
        let long = "Société d'Inspection Générale du Québec et des Îles-de-la-Madeleine";
        assert_eq!(decoded(mailbox(Some(long), "a@b.test").rsplit_once(' ').unwrap().0), long, "split on characters");
        assert_eq!(mailbox(Some("Acme \"Home\"\r\nBcc: x@y"), "a@b.test"), "\"Acme  Home   Bcc: x@y\" <a@b.test>");
        assert_eq!(mailbox(None, "a@b.test"), "a@b.test");
        assert_eq!(mailbox(Some("  "), "a@b.test"), "a@b.test");
    }

    #[test]
    fn accented_file_names_keep_an_ascii_fallback_and_the_exact_name() {
        assert_eq!(file_name_params("filename", "Report.pdf"), "filename=\"Report.pdf\"");
        assert_eq!(
            file_name_params("filename", "Rapport – Québec.pdf"),
            "filename=\"Rapport _ Qu_bec.pdf\"; filename*=UTF-8''Rapport%20%E2%80%93%20Qu%C3%A9bec.pdf"
        );
        let mail = Outgoing {
            to: Email::parse("jane@example.com").unwrap(),
            from_name: None,
            reply_to: None,
            subject: "Ihr Prüfbericht für Müllerstraße 12, Grünwald – bitte lesen und unterschreiben".into(),
            text: "Hallo".into(),
            html: "<p>Hallo</p>".into(),
            list_unsubscribe: None,
        };
        let raw =
            String::from_utf8(mime_message("a@b.test", &mail, Some(("Prüfbericht.pdf", "application/pdf", b"%PDF-"))))
                .unwrap();
        assert!(raw.is_ascii(), "a raw message is 7-bit: {raw}");
        let subject = raw.split("Subject: ").nth(1).unwrap().split("\r\nMIME-Version").next().unwrap();
        assert_eq!(decoded(subject), mail.subject, "a long subject folds into several words");
        assert!(raw.contains("filename*=UTF-8''Pr%C3%BCfbericht.pdf"), "{raw}");
    }
}
