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
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub links: Vec<String>,
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

fn header(raw: &str, name: &str) -> Option<String> {
    raw.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
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
            });
        }
        for m in ses["RawMessage"].as_array().into_iter().flatten() {
            let raw = s(&m["raw_data"]);
            out.push(MailMessage {
                id: s(&m["id"]),
                from: s(&m["source"]),
                to: m["destinations"].as_array().into_iter().flatten().map(s).collect(),
                subject: header(&raw, "subject").unwrap_or_default(),
                links: extract_links(&raw),
                body: raw,
            });
        }
        Ok(out)
    }

    pub async fn serve(&self, path: &str) -> hyper::Response<Full<Bytes>> {
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
            "/_dev/mailbox" => respond(200, "text/html; charset=utf-8", render(&messages)),
            _ => respond(404, "text/plain", "not found".into()),
        }
    }
}

fn render(messages: &[MailMessage]) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>Dev mailbox</title>\
         <style>body{font:15px system-ui;margin:2rem;max-width:60rem}article{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}\
         h2{font-size:1.1rem;margin:0 0 .3rem}.meta{color:#555;font-size:.9rem}iframe{width:100%;height:14rem;border:1px solid #eee}</style>\
         </head><body><h1>Dev mailbox</h1><p class=meta>Emails sent through SES (moto), newest first. Local development only. \
         Emails wait in the outbox until the every-minute job runs: \
         <form method=post action=/_dev/run-jobs style=display:inline><button>Run it now</button></form></p>",
    );
    if messages.is_empty() {
        html.push_str("<p>No emails yet.</p>");
    }
    for m in messages.iter().rev() {
        html.push_str(&format!(
            "<article><h2>{}</h2><div class=meta>From {} to {}</div><ul>",
            escape(&m.subject),
            escape(&m.from),
            escape(&m.to.join(", "))
        ));
        for l in &m.links {
            html.push_str(&format!("<li><a href=\"{0}\" target=_blank rel=noreferrer>{0}</a></li>", escape(l)));
        }
        html.push_str(&format!(
            "</ul><iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\" srcdoc=\"{}\"></iframe></article>",
            escape(&m.body)
        ));
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
    fn html_is_escaped() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
