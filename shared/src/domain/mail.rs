//! An email as the product writes it: to whom, from which company (its display name and reply-to),
//! the subject, and the body as text and as HTML. Sending it is the SES adapter's business.

use maud::{html, DOCTYPE};

use super::company::{Brand, Company};
use crate::foundation::email::Email;

/// One email, as text and HTML.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: Email,
    pub from_name: Option<String>,
    pub reply_to: Option<Email>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// One-click unsubscribe (RFC 8058) for an optional email: the URL a POST to unsubscribes.
    pub list_unsubscribe: Option<String>,
}

impl Outgoing {
    /// An email from `company` (its display name and reply-to) with `text` as its plain body and
    /// the same text as HTML (escaped, links clickable) under the company's header: its logo (from
    /// `public_base_url`, the product's own origin) and accent colour. The subject is kept to one
    /// line.
    pub fn from_company(company: &Company, public_base_url: &str, to: Email, subject: &str, text: String) -> Self {
        Outgoing {
            to,
            from_name: Some(company.settings.sender_name.clone().unwrap_or_else(|| company.name.clone())),
            reply_to: company.settings.reply_to.clone(),
            subject: subject.replace(['\r', '\n'], " "),
            html: email_html(&company.brand(), public_base_url, &text, None),
            text,
            list_unsubscribe: None,
        }
    }

    /// The same email with the property's photo under the header (`cover`: an absolute URL).
    pub fn with_cover(mut self, company: &Company, public_base_url: &str, cover: &str) -> Self {
        self.html = email_html(&company.brand(), public_base_url, &self.text, Some(cover));
        self
    }

    /// Makes this an optional email that can be stopped in one click: the `List-Unsubscribe`
    /// URL, and a line saying so at the end of both bodies.
    pub fn unsubscribable(mut self, url: String) -> Self {
        let line = "You get this because you are on the inspection. To stop reminders and copies like it:";
        self.text.push_str(&format!("\n\n{line} {url}"));
        let footer = html! {
            p style="font-size:12px;color:#555;margin:0;padding:8px 24px 16px" { (line) " " a href=(url) { "Unsubscribe" } }
        }
        .into_string();
        if let Some(at) = self.html.rfind("</body>") {
            self.html.insert_str(at, &footer);
        }
        self.list_unsubscribe = Some(url);
        self
    }
}

/// Whether an email of `template_key` to someone in `role` is optional (reminders, and copies to
/// agents and others that are not the client's own business): those carry a one-click unsubscribe
/// and stop for an address that used it. What a person asked for (a link, a resend), what they
/// paid for and what their client role needs keep going.
pub fn optional(template_key: &str, role: super::inspection::Role) -> bool {
    use super::inspection::Role;
    if super::reminders::is_reminder(template_key) {
        return true;
    }
    role != Role::Client && !matches!(template_key, "full_access" | "report_resend")
}

/// The HTML part of an email whose text is `text`: the company's header (logo with its name as
/// the alternative text, accent colour; inline styles, as mail clients drop style sheets), then
/// the text escaped, line breaks kept, links clickable.
pub fn email_html(brand: &Brand, public_base_url: &str, text: &str, cover: Option<&str>) -> String {
    let accent = brand.accent_color.as_deref().unwrap_or(DEFAULT_ACCENT);
    html! {
        (DOCTYPE)
        html lang=(brand.language) {
            head { meta charset="utf-8"; title { (brand.name) } }
            body style="margin:0;padding:0;background:#f4f6f8;font-family:Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1d2733" {
                table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f6f8" {
                    tr { td align="center" style="padding:16px 8px" {
                        table role="presentation" width="100%" cellpadding="0" cellspacing="0"
                            style="max-width:600px;background:#ffffff;border:1px solid #dde3ea" {
                            tr { td style={ "background:" (accent) ";color:#ffffff;padding:16px 24px;font-size:18px;font-weight:600" } {
                                @if let Some(logo) = &brand.logo_url {
                                    img src={ (public_base_url) (logo) } alt=(brand.name) height="48"
                                        style="display:block;height:48px;max-width:240px;background:#ffffff;padding:4px;border:0";
                                } @else {
                                    (brand.name)
                                }
                            } }
                            @if let Some(cover) = cover {
                                tr { td style="padding:0" {
                                    img src=(cover) alt="The property" width="600"
                                        style="display:block;width:100%;max-width:600px;height:auto;border:0";
                                } }
                            }
                            tr { td style="padding:20px 24px;font-size:15px;line-height:1.5" {
                                @for (i, line) in text.split('\n').enumerate() {
                                    @if i > 0 { br; "\n" }
                                    @if let Some((label, url)) = labelled_link(line) {
                                        a href=(url) style={ "color:" (accent) ";font-weight:600" } { (label) }
                                    } @else {
                                        @for (j, word) in line.split(' ').enumerate() {
                                            @if j > 0 { " " }
                                            @if is_url(word) {
                                                a href=(word) style={ "color:" (accent) } { (word) }
                                            } @else {
                                                (word)
                                            }
                                        }
                                    }
                                }
                            } }
                        }
                    } }
                }
            }
        }
    }
    .into_string()
}

fn is_url(word: &str) -> bool {
    word.starts_with("https://") || word.starts_with("http://")
}

/// A line that is a link with its label (`Sign & Pay: https://…`), or a link alone on its line:
/// the HTML shows the label (or what the link opens), not the address.
fn labelled_link(line: &str) -> Option<(String, &str)> {
    let line = line.trim();
    let (before, url) = line.rsplit_once(' ').map_or(("", line), |(b, u)| (b.trim(), u));
    if !is_url(url) {
        return None;
    }
    if let Some(label) = before.strip_suffix(':').filter(|l| !l.is_empty() && l.len() <= 60) {
        return Some((label.to_owned(), url));
    }
    if !before.is_empty() {
        return None;
    }
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let label = if path.contains("/receipts/") {
        "Open your receipt"
    } else if path.contains("/documents/") {
        "Open the document"
    } else if path.contains("/signin/") {
        "Sign in"
    } else if path.contains("/p/") || path.contains("/c/") {
        "Open your portal"
    } else if path.contains("/me/") {
        "All your inspections"
    } else {
        return Some((url.to_owned(), url));
    };
    Some((label.to_owned(), url))
}

/// The header colour of a company that chose none (the portal's own).
const DEFAULT_ACCENT: &str = "#17324d";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_part_escapes_the_text_and_makes_links_clickable() {
        let brand = Brand { name: "Müller & Co".into(), language: "de".into(), accent_color: None, logo_url: None };
        let mail = email_html(&brand, "https://portal.test", "Hi <b>\nhttps://x.test/p/a\"b", None);
        assert!(mail.contains("<a href=\"https://x.test/p/a&quot;b\"") && mail.contains("Hi &lt;b&gt;<br>"), "{mail}");
        assert!(mail.contains("lang=\"de\"") && mail.contains("Müller &amp; Co"), "{mail}");
    }

    #[test]
    fn links_show_their_label_not_their_address() {
        let brand = Brand { name: "Acme".into(), language: "en".into(), accent_color: None, logo_url: None };
        let text = "Sign & Pay: https://p.test/p/abc\n\nhttps://p.test/p/abc/documents/d1\nSee https://x.test now";
        let mail = email_html(&brand, "https://p.test", text, None);
        assert!(mail.contains(">Sign &amp; Pay</a>"), "{mail}");
        assert!(mail.contains("href=\"https://p.test/p/abc/documents/d1\"") && mail.contains(">Open the document</a>"));
        assert!(mail.contains(">https://x.test</a>"), "a link inside a sentence stays as it is");
    }

    #[test]
    fn the_html_part_carries_the_logo_from_the_product_s_origin_and_the_accent() {
        let brand = Brand {
            name: "Lakeside".into(),
            language: "en".into(),
            accent_color: Some("#7a1f5c".into()),
            logo_url: Some("/brand/c1/logo".into()),
        };
        let mail = email_html(
            &brand,
            "https://portal.test",
            "Hello https://portal.test/p/x",
            Some("https://portal.test/p/x/cover"),
        );
        assert!(mail.contains("<img src=\"https://portal.test/p/x/cover\" alt=\"The property\""), "{mail}");
        assert!(mail.contains("<img src=\"https://portal.test/brand/c1/logo\" alt=\"Lakeside\""), "{mail}");
        assert!(mail.contains("background:#7a1f5c") && mail.contains("color:#7a1f5c"), "{mail}");
    }
}
