//! Email templates with `{{placeholder}}`s: the company's own (settings) or the defaults here.
//!
//! Link placeholders resolve to the recipient's own tokenized portal routes (never to S3), so no
//! email can bypass the gate. Templates naming an unknown placeholder are refused when saved, so
//! an email never goes out with a raw `{{…}}` in it.

use std::collections::BTreeMap;

use super::settings::{EmailTemplate, Settings};
use super::DomainError;

pub const PLACEHOLDERS: &[&str] = &[
    "recipient_name",
    "client_name",
    "address",
    "inspection_date",
    "company_name",
    "inspection_details_link",
    "report_link",
    "report_name",
];

fn default_template(key: &str) -> (&'static str, &'static str) {
    match key {
        "full_access" => (
            "Your link to the inspection at {{address}}",
            "Hello {{recipient_name}},\n\nSomeone (hopefully you) asked for full access to the inspection at \
             {{address}} on {{inspection_date}}. This is your personal link; please do not forward it:\n\n\
             {{inspection_details_link}}\n\nIf you did not ask for it, you can ignore this email.\n\n{{company_name}}",
        ),
        "report_published" => (
            "Your inspection report for {{address}} is published",
            "Hello {{recipient_name}},\n\nThe {{report_name}} for {{address}} has been published. Open it in \
             your portal:\n\n{{report_link}}\n\nInspection details: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "report_ready" => (
            "Your inspection report for {{address}} is ready",
            "Hello {{recipient_name}},\n\nThank you: your {{report_name}} for {{address}} is now available:\n\n\
             {{report_link}}\n\n{{company_name}}",
        ),
        "report_resend" => (
            "Your {{report_name}} for {{address}}",
            "Hello {{recipient_name}},\n\nAs requested, your {{report_name}} for {{address}} is attached to this \
             email.\n\nYour portal: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "contact_invite" => (
            "Your customer portal at {{company_name}}",
            "Hello {{recipient_name}},\n\n{{company_name}} invited you to its customer portal, where you can see \
             your buildings' reports and open deficiencies:\n\n{{inspection_details_link}}\n\n{{company_name}}",
        ),
        _ => (
            "Your inspection at {{address}} on {{inspection_date}}",
            "Hello {{recipient_name}},\n\nYour inspection at {{address}} is scheduled for {{inspection_date}}. \
             Sign the agreement and pay here:\n\n{{inspection_details_link}}\n\n{{company_name}}",
        ),
    }
}

/// The placeholders a template text uses, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(after[..end].trim());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

/// Refuses a template that names an unknown placeholder.
pub fn check(field: &str, text: &str) -> Result<(), DomainError> {
    match placeholders(text).into_iter().find(|p| !PLACEHOLDERS.contains(p)) {
        Some(bad) => Err(DomainError::Invalid(format!(
            "{field} uses an unknown placeholder {{{{{bad}}}}}; known placeholders: {}",
            PLACEHOLDERS.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Replaces every `{{name}}` with its value (missing values become empty).
pub fn render(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                if let Some(v) = vars.get(after[..end].trim()) {
                    out.push_str(v);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The company's template for `key`, or the default.
pub fn template(settings: &Settings, key: &str) -> EmailTemplate {
    settings.email_templates.get(key).cloned().unwrap_or_else(|| {
        let (subject, body) = default_template(key);
        EmailTemplate { subject: subject.to_owned(), body: body.to_owned() }
    })
}

/// The placeholder values for one recipient of an inspection email. Both links are that
/// recipient's own portal routes.
pub fn inspection_vars(
    company: &super::company::Company,
    inspection: &super::inspection::Inspection,
    recipient: &super::inspection::Person,
    details_link: &str,
    report: Option<(&str, &str)>,
) -> BTreeMap<&'static str, String> {
    let clients: Vec<&str> = inspection
        .people
        .iter()
        .filter(|p| p.role == super::inspection::Role::Client)
        .map(|p| p.name.as_str())
        .collect();
    let date = inspection
        .scheduled_at
        .format(time::macros::format_description!("[month repr:long] [day padding:none], [year]"))
        .unwrap_or_default();
    let mut vars = BTreeMap::from([
        ("recipient_name", recipient.name.clone()),
        ("client_name", clients.join(", ")),
        ("address", inspection.address.clone()),
        ("inspection_date", date),
        ("company_name", company.name.clone()),
        ("inspection_details_link", details_link.to_owned()),
    ]);
    if let Some((name, link)) = report {
        vars.insert("report_name", name.to_owned());
        vars.insert("report_link", link.to_owned());
    }
    vars
}

/// A rendered email: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

pub fn render_email(settings: &Settings, key: &str, vars: &BTreeMap<&str, String>) -> Rendered {
    let t = template(settings, key);
    // A subject is one line, whatever the values held.
    let subject = render(&t.subject, vars).replace(['\r', '\n'], " ");
    Rendered { subject, text: render(&t.body, vars) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_and_unknown_ones_are_refused() {
        let vars = BTreeMap::from([("address", "12 Elm".to_owned()), ("recipient_name", "Jane".to_owned())]);
        assert_eq!(render("Hi {{recipient_name}}, {{ address }}!{{report_link}}", &vars), "Hi Jane, 12 Elm!");
        assert_eq!(render("dangling {{address", &vars), "dangling {{address");
        assert_eq!(placeholders("{{a}} x {{ b }}"), vec!["a", "b"]);
        assert!(check("t", "Open {{report_link}} or {{inspection_details_link}}").is_ok());
        let err = check("t", "Open {{s3_url}}").unwrap_err();
        assert!(err.to_string().contains("{{s3_url}}"), "{err}");
    }

    #[test]
    fn every_default_template_uses_only_known_placeholders() {
        for key in super::super::settings::EMAIL_TEMPLATE_KEYS {
            let (subject, body) = default_template(key);
            check(key, subject).unwrap();
            check(key, body).unwrap();
        }
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let mut s = Settings::default();
        s.email_templates
            .insert("full_access".into(), EmailTemplate { subject: "For {{address}}".into(), body: "x".into() });
        let vars = BTreeMap::from([("address", "1 A St\r\nBcc: evil@x.test".to_owned())]);
        assert_eq!(render_email(&s, "full_access", &vars).subject, "For 1 A St  Bcc: evil@x.test");
    }
}
