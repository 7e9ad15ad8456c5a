//! An email as the product writes it: to whom, from which company (its display name and reply-to),
//! the subject, and the body as text and as HTML. Sending it is the SES adapter's business.

use maud::{html, DOCTYPE};

use super::company::Company;
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
}

impl Outgoing {
    /// An email from `company` (its display name and reply-to) with `text` as its plain body and
    /// the same text as HTML (escaped, links clickable). The subject is kept to one line.
    pub fn from_company(company: &Company, to: Email, subject: &str, text: String) -> Self {
        Outgoing {
            to,
            from_name: Some(company.settings.sender_name.clone().unwrap_or_else(|| company.name.clone())),
            reply_to: company.settings.reply_to.clone(),
            subject: subject.replace(['\r', '\n'], " "),
            html: email_html(&text),
            text,
        }
    }
}

/// The HTML part of an email whose text is `text`: escaped, line breaks kept, links clickable.
pub fn email_html(text: &str) -> String {
    html! {
        (DOCTYPE)
        html {
            body style="font-family:sans-serif" {
                @for (i, line) in text.split('\n').enumerate() {
                    @if i > 0 { br; "\n" }
                    @for (j, word) in line.split(' ').enumerate() {
                        @if j > 0 { " " }
                        @if word.starts_with("https://") || word.starts_with("http://") {
                            a href=(word) { (word) }
                        } @else {
                            (word)
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_part_escapes_the_text_and_makes_links_clickable() {
        let mail = email_html("Hi <b>\nhttps://x.test/p/a\"b");
        assert!(mail.contains("<a href=\"https://x.test/p/a&quot;b\">") && mail.contains("Hi &lt;b&gt;<br>"), "{mail}");
    }
}
