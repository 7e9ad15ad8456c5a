//! Email templates with `{{placeholder}}`s: the company's own (settings) or the defaults here.
//!
//! Link placeholders resolve to the recipient's own tokenized portal routes (never to S3), so no
//! email can bypass the gate. Templates naming an unknown placeholder are refused when saved, so
//! an email never goes out with a raw `{{…}}` in it.

use std::collections::BTreeMap;

use super::settings::{EmailTemplate, Settings};
pub use super::template_syntax::{check, check_subject, placeholders, render, LINK_PLACEHOLDERS, PLACEHOLDERS};

/// The template announcing a published document of `kind`: an invoice email never speaks of a
/// report.
pub fn published_template_key(kind: super::document::DocumentKind) -> &'static str {
    use super::document::DocumentKind as K;
    match kind {
        K::InspectionReport => "report_published",
        K::WdiReport => "wdi_report_published",
        K::ServiceReport => "service_report_published",
        K::Proposal => "proposal_published",
        K::Invoice => "invoice_published",
        K::Agreement => "agreement_published",
        K::Attachment | K::BuildingAttachment => "attachment_published",
    }
}

fn default_template(key: &str) -> (&'static str, &'static str) {
    match key {
        "full_access" => (
            "Your link: {{address}}",
            "Hello {{recipient_name}},\n\nSomeone (hopefully you) asked for full access to the inspection at \
             {{address}} on {{inspection_date}}. This is your personal link; please do not forward it:\n\n\
             {{inspection_details_link}}\n\nIf you did not ask for it, you can ignore this email.\n\n{{company_name}}",
        ),
        "wdi_report_published" => (
            "WDI report ready: {{address}}",
            "Hello {{recipient_name}},\n\nThe {{document_name}} for {{address}} has been published. Open it in \
             your portal:\n\n{{document_link}}\n\nInspection details: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "service_report_published" => (
            "Service report ready: {{address}}",
            "Hello {{recipient_name}},\n\nThe {{document_name}} for {{address}} has been published. Open it in \
             your portal:\n\n{{document_link}}\n\nInspection details: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "proposal_published" => (
            "Proposal: {{address}}",
            "Hello {{recipient_name}},\n\n{{company_name}} sent you a proposal for {{address}}: {{document_name}}.\n\n\
             {{document_link}}\n\nInspection details: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "invoice_published" => (
            "Invoice: {{address}}",
            "Hello {{recipient_name}},\n\nYour invoice for the inspection at {{address}} is available: \
             {{document_name}}.\n\n{{document_link}}\n\n{{inspection_details_label}}: {{inspection_details_link}}\n\n\
             {{company_name}}",
        ),
        "agreement_published" => (
            "Agreement: {{address}}",
            "Hello {{recipient_name}},\n\nThe inspection agreement for {{address}} is available: {{document_name}}.\n\n\
             {{document_link}}\n\n{{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "attachment_published" => (
            "New document: {{address}}",
            "Hello {{recipient_name}},\n\nA new document was added to the inspection at {{address}}: \
             {{document_name}}.\n\n{{document_link}}\n\nInspection details: {{inspection_details_link}}\n\n\
             {{company_name}}",
        ),
        "inspection_rescheduled" => (
            "New date: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nThe inspection has changed: it is now at {{address}} on \
             {{inspection_date}}.\n\n{{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "report_published" => (
            "Report ready: {{address}}",
            "Hello {{recipient_name}},\n\nThe {{report_name}} for {{address}} is ready. {{report_status}} \
             Your portal:\n\n{{report_link}}\n\nInspection details: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "report_ready" => (
            "Your report is open: {{address}}",
            "Hello {{recipient_name}},\n\nThank you: your {{report_name}} for {{address}} is now available:\n\n\
             {{report_link}}\n\n{{company_name}}",
        ),
        "report_resend" => (
            "{{report_name}}: {{address}}",
            "Hello {{recipient_name}},\n\nAs requested, your {{report_name}} for {{address}} is attached to this \
             email.\n\nYour portal: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "payment_receipt" => (
            "Receipt: {{amount}}, {{address}}",
            "Hello {{recipient_name}},\n\nThank you: we received {{amount}} on {{payment_date}} ({{payment_method}}) \
             for the inspection at {{address}}.\n\nYour receipt, to print or save: {{receipt_link}}\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "refund_notice" => (
            "Refund: {{amount}}, {{address}}",
            "Hello {{recipient_name}},\n\nWe have refunded {{amount}} in all for the inspection at {{address}} \
             ({{payment_method}}, {{payment_date}}). Depending on your bank it can take a few days to appear.\n\n\
             Your portal: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "inspection_cancelled" => (
            "Cancelled: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nThe inspection at {{address}} on {{inspection_date}} has been cancelled. \
             If you have questions, or paid already, please contact us: our details are in your portal.\n\n\
             {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "inspection_reinstated" => (
            "Back on: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nThe inspection at {{address}} is back on, for {{inspection_date}}.\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "reminder_agreement" => (
            "Please sign: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nYour inspection at {{address}} is on {{inspection_date}}. The inspection \
             agreement is not signed yet; please read and sign it before then:\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "reminder_payment" => (
            "Payment due: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nYour inspection at {{address}} is on {{inspection_date}}, and its \
             payment is still due. You can pay in your portal:\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "reminder_payment_after_report" => (
            "Payment due to open your report: {{address}}",
            "Hello {{recipient_name}},\n\nYour inspection report for {{address}} is ready, and the payment is \
             still due. The report opens in your portal once it is paid:\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "reminder_inspection" => (
            "Tomorrow: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nA reminder: the inspection at {{address}} is on {{inspection_date}}.\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
        "contact_invite" => (
            "Your customer portal: {{company_name}}",
            "Hello {{recipient_name}},\n\n{{company_name}} invited you to its customer portal, where you can see \
             your buildings' reports and open deficiencies:\n\n{{inspection_details_link}}\n\n{{company_name}}",
        ),
        _ => (
            "{{inspection_details_label}}: {{address}}, {{inspection_day}}",
            "Hello {{recipient_name}},\n\nYour inspection at {{address}} is scheduled for {{inspection_date}}. \
             Your portal has the details, the agreement, payment and, later, your reports.\n\n\
             {{inspection_details_label}}: {{inspection_details_link}}\n\n{{company_name}}",
        ),
    }
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
    let date = crate::foundation::local_time::date_time(inspection.scheduled_at, company.settings.time_zone.as_deref());
    let mut vars = BTreeMap::from([
        ("recipient_name", recipient.name.clone()),
        ("client_name", clients.join(", ")),
        ("address", inspection.address.clone()),
        ("inspection_date", date),
        (
            "inspection_day",
            crate::foundation::local_time::short_day(inspection.scheduled_at, company.settings.time_zone.as_deref()),
        ),
        ("company_name", company.name.clone()),
        ("inspection_details_link", details_link.to_owned()),
        ("inspection_details_label", details_label(company, inspection, recipient).to_owned()),
    ]);
    if let Some((name, link)) = report {
        for (n, l) in [("report_name", "report_link"), ("document_name", "document_link")] {
            vars.insert(n, name.to_owned());
            vars.insert(l, link.to_owned());
        }
    }
    vars
}

/// "Sign & Pay" when this client has something to sign or pay, else "Your inspection".
pub fn details_label(
    company: &super::company::Company,
    inspection: &super::inspection::Inspection,
    recipient: &super::inspection::Person,
) -> &'static str {
    use super::portal::{payment_panel, PaymentState};
    if recipient.role != super::inspection::Role::Client {
        return "Your inspection";
    }
    let unsigned = inspection.requirements.require_agreement && !inspection.signed_by(recipient.id);
    let due = payment_panel(company, inspection, true, true).state == PaymentState::Due
        && inspection.requirements.require_payment;
    match (unsigned, due) {
        (true, true) => "Sign & Pay",
        (true, false) => "Sign the agreement",
        (false, true) => "Pay",
        (false, false) => "Your inspection",
    }
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
    fn every_default_template_uses_only_known_placeholders() {
        for key in super::super::settings::EMAIL_TEMPLATE_KEYS {
            let (subject, body) = default_template(key);
            check_subject(key, subject).unwrap();
            check(key, body).unwrap();
        }
    }

    /// Subjects fit in 78 characters with the demo's values (a long address, a long company
    /// name, the longest labels), the essential first.
    #[test]
    fn every_default_subject_fits_78_characters() {
        let vars = BTreeMap::from([
            ("recipient_name", "Jane Homebuyer".to_owned()),
            ("client_name", "Jane Homebuyer".to_owned()),
            ("address", "1428 Elm Street, Springfield".to_owned()),
            ("inspection_date", "Wednesday, September 30, 2026 at 10:30 AM CDT".to_owned()),
            ("inspection_day", "Wed, Sep 30".to_owned()),
            ("company_name", "Lakeside Home Inspections".to_owned()),
            ("inspection_details_label", "Sign the agreement".to_owned()),
            ("report_name", "Residential Inspection Report".to_owned()),
            ("document_name", "Residential Inspection Report".to_owned()),
            ("amount", "$1,450.00".to_owned()),
        ]);
        let s = Settings::default();
        for key in super::super::settings::EMAIL_TEMPLATE_KEYS {
            let subject = render_email(&s, key, &vars).subject;
            assert!(subject.chars().count() <= 78, "{key}: {subject:?} is {} characters", subject.chars().count());
            assert!(!subject.contains("{{"), "{key}: {subject}");
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
