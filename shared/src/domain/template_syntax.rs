//! The syntax of email templates: `{{placeholder}}`s, which ones exist, which are links (never in
//! a subject), and filling them in. Text only: what the values are is [`super::templates`]'
//! business, so settings can check a template without knowing inspections.

use std::collections::BTreeMap;

use super::DomainError;

pub const PLACEHOLDERS: &[&str] = &[
    "recipient_name",
    "client_name",
    "address",
    "inspection_date",
    "inspection_day",
    "company_name",
    "inspection_details_link",
    "report_link",
    "report_name",
    "report_status",
    "document_link",
    "document_name",
    "inspection_details_label",
    "my_inspections_link",
    "amount",
    "payment_date",
    "payment_method",
    "receipt_link",
];

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

/// Placeholders that become a live link: never in a subject (subjects are kept in the email
/// history and shown in inbox lists).
pub const LINK_PLACEHOLDERS: &[&str] =
    &["inspection_details_link", "report_link", "document_link", "my_inspections_link", "receipt_link"];

/// Refuses a subject with an unknown or a link placeholder.
pub fn check_subject(field: &str, text: &str) -> Result<(), DomainError> {
    check(field, text)?;
    match placeholders(text).into_iter().find(|p| LINK_PLACEHOLDERS.contains(p)) {
        Some(link) => Err(DomainError::Invalid(format!(
            "{field} may not hold the link placeholder {{{{{link}}}}}: links go in the body, never the subject"
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
    fn link_placeholders_are_refused_in_subjects() {
        for link in LINK_PLACEHOLDERS {
            let err = check_subject("s", &format!("Open {{{{{link}}}}}")).unwrap_err();
            assert!(err.to_string().contains("subject"), "{err}");
            assert!(check("b", &format!("Open {{{{{link}}}}}")).is_ok(), "bodies may");
        }
        assert!(check_subject("s", "Report for {{address}}").is_ok());
    }
}
