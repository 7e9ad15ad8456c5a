//! SES (v1 API) adapter: every email the product sends goes through here, from the verified sender
//! identity, with the company's address as Reply-To.

use aws_sdk_ses::types::{Body, Content, Destination, Message};

use crate::email::Email;

#[derive(Debug, thiserror::Error)]
#[error("sending email failed: {0}")]
pub struct MailError(pub String);

#[derive(Clone, Debug)]
pub struct Mailer {
    client: aws_sdk_ses::Client,
    sender: Email,
}

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

impl Mailer {
    pub fn new(sdk: &aws_config::SdkConfig, sender: Email) -> Self {
        Mailer { client: aws_sdk_ses::Client::new(sdk), sender }
    }

    pub fn client(&self) -> &aws_sdk_ses::Client {
        &self.client
    }

    /// Sends one email; returns the provider's message id.
    pub async fn send(&self, mail: &Outgoing) -> Result<String, MailError> {
        let utf8 = |s: &str| Content::builder().data(s).charset("UTF-8").build().map_err(|e| MailError(e.to_string()));
        let from = match &mail.from_name {
            // Quote the display name; strip characters that would break the header.
            Some(name) => format!("\"{}\" <{}>", name.replace(['"', '\\', '\r', '\n'], ""), self.sender),
            None => self.sender.to_string(),
        };
        let out = self
            .client
            .send_email()
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
            .map_err(|e| MailError(crate::problem::error_chain(&e)))?;
        Ok(out.message_id().to_owned())
    }
}
