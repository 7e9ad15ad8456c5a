//! The dev mailbox: every email sent through SES, read back from moto (`/moto-api/data.json`),
//! listed with its links clickable. Served by the local gateway at `/_dev/mailbox` (HTML) and
//! `/_dev/mailbox.json`. Local only: there is no such page in the cloud.

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MailMessage {
    pub id: String,
    /// The envelope sender (SES's `Source`).
    pub from: String,
    pub to: Vec<String>,
    /// Decoded (RFC 2047), as a mail client shows it.
    pub subject: String,
    /// The text part, then the HTML part, decoded (for a raw message), or the one body SES kept.
    pub body: String,
    pub links: Vec<String>,
    /// The message's headers, decoded (raw messages only: SES's simple sends keep none).
    pub headers: Vec<(String, String)>,
    /// Parts that are neither the text nor the HTML body: a PDF, a calendar invitation.
    pub attachments: Vec<Attachment>,
    /// The message as SES received it (raw messages only).
    pub raw: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attachment {
    pub content_type: String,
    pub name: Option<String>,
    /// Decoded (text parts as UTF-8; others lossily, for inspection only).
    pub content: String,
    pub size: usize,
}

impl MailMessage {
    /// A decoded header (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Mailbox {
    moto_url: String,
    http: reqwest::Client,
}

/// Every http(s) URL in a text or HTML body, in order, without duplicates.
pub fn extract_links(body: &str) -> Vec<String> {
    let mut links: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = ["https://", "http://"].iter().filter_map(|p| rest.find(p)).min() {
        let tail = &rest[start..];
        let end = tail.find(|c: char| c.is_whitespace() || "\"'<>".contains(c)).unwrap_or(tail.len());
        let link = tail[..end].trim_end_matches(['.', ',', ')', ';']).replace("&amp;", "&");
        if !links.contains(&link) {
            links.push(link);
        }
        rest = &tail[end..];
    }
    links
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A MIME entity's headers (unfolded, encoded words decoded) and its body.
fn split_entity(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match raw.find("\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match raw.find("\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for (_, v) in &mut headers {
        *v = decode_words(v);
    }
    (headers, body)
}

/// RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`) decoded; whitespace between two
/// encoded words dropped, as the RFC says.
fn decode_words(v: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut last_was_word = false;
    for (i, token) in v.split(' ').enumerate() {
        let decoded = token.strip_prefix("=?").and_then(|t| t.strip_suffix("?=")).and_then(|t| {
            let mut parts = t.splitn(3, '?');
            let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
            let bytes = match encoding {
                "B" | "b" => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
                "Q" | "q" => quoted_printable(&text.replace('_', " ")),
                _ => return None,
            };
            String::from_utf8(bytes).ok()
        });
        match decoded {
            Some(d) => {
                if i > 0 && !last_was_word {
                    out.push(' ');
                }
                out.push_str(&d);
                last_was_word = true;
            }
            None => {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(token);
                last_was_word = false;
            }
        }
    }
    out
}

fn quoted_printable(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            let rest = &b[i + 1..];
            if rest.starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if rest.starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex =
                rest.get(..2).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A parameter of a header value (`boundary`, `name`, `filename`), unquoted.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The text, the HTML and the other parts of a MIME entity, decoded (multiparts walked).
fn walk(headers: &[(String, String)], body: &str, out: &mut (String, String, Vec<Attachment>)) {
    use base64::Engine;
    let content_type = find(headers, "content-type").unwrap_or("text/plain").to_owned();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence.starts_with("multipart/") {
        let Some(boundary) = param(&content_type, "boundary") else { return };
        let delimiter = format!("--{boundary}");
        for part in body.split(&delimiter).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.trim_start_matches("\r\n").trim_start_matches('\n');
            let (h, b) = split_entity(part);
            walk(&h, b, out);
        }
        return;
    }
    let bytes = match find(headers, "content-transfer-encoding").map(str::to_ascii_lowercase).as_deref() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(body.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .unwrap_or_default(),
        Some("quoted-printable") => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let disposition = find(headers, "content-disposition").unwrap_or_default();
    match essence.as_str() {
        "text/plain" if !disposition.starts_with("attachment") => out.0.push_str(&text),
        "text/html" if !disposition.starts_with("attachment") => out.1.push_str(&text),
        _ => out.2.push(Attachment {
            content_type,
            name: param(disposition, "filename")
                .or_else(|| param(find(headers, "content-type").unwrap_or_default(), "name")),
            size: bytes.len(),
            content: text,
        }),
    }
}

impl Mailbox {
    pub fn new(moto_url: impl Into<String>) -> Self {
        Mailbox { moto_url: moto_url.into().trim_end_matches('/').to_owned(), http: reqwest::Client::new() }
    }

    /// Messages in the order they were sent.
    pub async fn messages(&self) -> Result<Vec<MailMessage>, reqwest::Error> {
        // moto dumps every service's state here and sometimes fails (500) to serialize an S3 object
        // written at that very moment: read again.
        let url = format!("{}/moto-api/data.json", self.moto_url);
        let mut attempt = 0;
        let data: Value = loop {
            attempt += 1;
            match self.http.get(&url).send().await.and_then(|r| r.error_for_status()) {
                Ok(r) => break r.json().await?,
                Err(e) if attempt >= 5 => return Err(e),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await,
            }
        };
        let ses = &data["ses"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let mut out = Vec::new();
        for m in ses["Message"].as_array().into_iter().flatten() {
            let body = s(&m["body"]);
            out.push(MailMessage {
                id: s(&m["id"]),
                from: s(&m["source"]),
                to: m["destinations"]["ToAddresses"].as_array().into_iter().flatten().map(s).collect(),
                subject: s(&m["subject"]),
                links: extract_links(&body),
                body,
                headers: Vec::new(),
                attachments: Vec::new(),
                raw: String::new(),
            });
        }
        for m in ses["RawMessage"].as_array().into_iter().flatten() {
            let raw = s(&m["raw_data"]);
            let (headers, body) = split_entity(&raw);
            let mut parts = (String::new(), String::new(), Vec::new());
            walk(&headers, body, &mut parts);
            let (text, html, attachments) = parts;
            let body = format!("{text}\n\n{html}");
            out.push(MailMessage {
                id: s(&m["id"]),
                from: s(&m["source"]),
                // moto adds the To header's addresses to the envelope's: each once.
                to: m["destinations"].as_array().into_iter().flatten().map(s).fold(Vec::new(), |mut to, a| {
                    if !to.contains(&a) {
                        to.push(a);
                    }
                    to
                }),
                subject: find(&headers, "subject").unwrap_or_default().to_owned(),
                links: extract_links(&body),
                body,
                headers,
                attachments,
                raw,
            });
        }
        Ok(out)
    }

    pub async fn serve(&self, path: &str, query: Option<&str>) -> hyper::Response<Full<Bytes>> {
        let respond = |status: u16, ct: &str, body: String| {
            hyper::Response::builder()
                .status(status)
                .header("content-type", ct)
                .header("cache-control", "no-store")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        };
        let messages = match self.messages().await {
            Ok(m) => m,
            Err(e) => return respond(502, "text/plain", format!("could not read moto: {e}")),
        };
        match path {
            "/_dev/mailbox.json" => {
                respond(200, "application/json", serde_json::json!({ "messages": messages }).to_string())
            }
            "/_dev/mailbox" => {
                let page = query
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(1)
                    .max(1);
                respond(200, "text/html; charset=utf-8", render(&messages, page))
            }
            _ => respond(404, "text/plain", "not found".into()),
        }
    }
}

/// Messages shown per page of the dev mailbox.
const PER_PAGE: usize = 50;

fn render(messages: &[MailMessage], page: usize) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Dev mailbox</title>\
         <style>body{font:15px system-ui;margin:2rem;max-width:60rem}article{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}\
         h2{font-size:1.1rem;margin:0 0 .3rem}.meta{color:#555;font-size:.9rem}iframe{width:100%;height:14rem;border:1px solid #eee}\
         pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;font-size:.8rem;max-height:14rem;overflow:auto}</style>\
         </head><body><h1>Dev mailbox</h1><p class=meta>Emails sent through SES (moto), newest first. Local development only. \
         Emails wait in the outbox until the every-minute job runs: \
         <form method=post action=/_dev/run-jobs style=display:inline><button>Run it now</button></form></p>",
    );
    if messages.is_empty() {
        html.push_str("<p>No emails yet.</p>");
    }
    let pages = messages.len().div_ceil(PER_PAGE).max(1);
    let page = page.min(pages);
    for m in messages.iter().rev().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
        let from = m.header("from").unwrap_or(&m.from);
        html.push_str(&format!(
            "<article><h2>{}</h2><div class=meta>From {} to {}</div>",
            escape(&m.subject),
            escape(from),
            escape(&m.to.join(", "))
        ));
        for name in ["reply-to", "list-unsubscribe", "list-unsubscribe-post"] {
            if let Some(v) = m.header(name) {
                html.push_str(&format!("<div class=meta>{}: {}</div>", escape(name), escape(v)));
            }
        }
        html.push_str("<ul>");
        for l in &m.links {
            html.push_str(&format!("<li><a href=\"{0}\" target=_blank rel=noreferrer>{0}</a></li>", escape(l)));
        }
        html.push_str("</ul>");
        let (text, page_html) = match m.body.split_once("\n\n<") {
            Some((text, html)) if !m.raw.is_empty() => (text.to_owned(), format!("<{html}")),
            _ => (String::new(), m.body.clone()),
        };
        if !text.trim().is_empty() {
            html.push_str(&format!("<details><summary>Text part</summary><pre>{}</pre></details>", escape(&text)));
        }
        html.push_str(&format!(
            "<iframe title=\"HTML part\" sandbox=\"allow-popups allow-popups-to-escape-sandbox\" srcdoc=\"{}\"></iframe>",
            escape(&page_html)
        ));
        for a in &m.attachments {
            html.push_str(&format!(
                "<div class=meta>Attachment: {} ({}, {} bytes)</div>",
                escape(a.name.as_deref().unwrap_or("unnamed")),
                escape(&a.content_type),
                a.size
            ));
            if a.content_type.starts_with("text/calendar") {
                html.push_str(&format!("<pre>{}</pre>", escape(&a.content)));
            }
        }
        html.push_str("</article>");
    }
    if pages > 1 {
        html.push_str(&format!("<nav class=meta>Page {page} of {pages}: "));
        if page > 1 {
            html.push_str(&format!("<a href=\"/_dev/mailbox?page={}\">Newer</a> ", page - 1));
        }
        if page < pages {
            html.push_str(&format!("<a href=\"/_dev/mailbox?page={}\">Older</a>", page + 1));
        }
        html.push_str("</nav>");
    }
    html.push_str("</body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_html_and_text() {
        let body = r#"<p>Open <a href="http://127.0.0.1:3000/p/abc?x=1&amp;y=2">your portal</a>.</p> Or https://example.com/share/1."#;
        assert_eq!(extract_links(body), vec!["http://127.0.0.1:3000/p/abc?x=1&y=2", "https://example.com/share/1"]);
        assert!(extract_links("no links").is_empty());
    }

    #[test]
    fn raw_messages_are_decoded_as_a_mail_client_shows_them() {
        let raw = "Subject: =?UTF-8?B?UmXDp3U=?= =?UTF-8?B?IGTDqWrDoA==?=\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                   --b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
                   --b2\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\nQ2Fmw6kgaHR0cHM6Ly94LnRlc3QvcC8x\r\n\
                   --b2\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Caf=C3=A9</p>\r\n--b2--\r\n\
                   --b1\r\nContent-Type: text/calendar; method=REQUEST; name=\"invite.ics\"\r\nContent-Disposition: attachment; filename=\"invite.ics\"\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\nQkVHSU46VkNBTEVOREFS\r\n--b1--\r\n";
        let (headers, body) = split_entity(raw);
        assert_eq!(find(&headers, "subject"), Some("Reçu déjà"));
        let mut parts = (String::new(), String::new(), Vec::new());
        walk(&headers, body, &mut parts);
        assert_eq!(parts.0.trim(), "Café https://x.test/p/1");
        assert_eq!(parts.1.trim(), "<p>Café</p>");
        assert_eq!(parts.2.len(), 1);
        assert_eq!((parts.2[0].name.as_deref(), parts.2[0].content.as_str()), (Some("invite.ics"), "BEGIN:VCALENDAR"));
    }

    #[test]
    fn the_page_shows_fifty_newest_first_and_pages_back() {
        let messages: Vec<MailMessage> = (0..120)
            .map(|n| MailMessage {
                id: n.to_string(),
                from: "a@b.test".into(),
                to: vec!["c@d.test".into()],
                subject: format!("Message {n:03}"),
                body: String::new(),
                links: Vec::new(),
                headers: Vec::new(),
                attachments: Vec::new(),
                raw: String::new(),
            })
            .collect();
        let first = render(&messages, 1);
        assert!(first.contains("Message 119") && first.contains("Message 070") && !first.contains("Message 069"));
        assert!(first.contains("Page 1 of 3") && first.contains("?page=2\">Older"));
        let last = render(&messages, 3);
        assert!(last.contains("Message 000") && !last.contains("Message 020") && last.contains("?page=2\">Newer"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
