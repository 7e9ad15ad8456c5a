//! Company settings and the rules for changing them (docs/product.md).
//!
//! - `collect_payment_after_publish` is refused while `payments` is `third_party` (and `payments`
//!   cannot become `third_party` while it is on).
//! - Turning it on locks the release defaults for new inspections: payment required, deferred
//!   payment blocked. Inspections snapshot their requirements at creation, so nothing is retroactive.
//! - `deficiency_visibility` is not a setting staff can change: only the platform admin can.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{optional_text, text, DomainError};
use crate::foundation::email::Email;
use crate::foundation::ids::ServiceId;
use crate::foundation::money::{Cents, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentsMode {
    /// Clients pay in the portal through the payment provider ("Pay Now").
    Native,
    /// No online payment; the portal shows "Learn More".
    #[default]
    Disabled,
    /// Payment is handled by a third-party integration.
    ThirdParty,
}

/// The requirements a new inspection starts with unless its request says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseDefaults {
    pub require_payment: bool,
    pub require_agreement: bool,
    pub allow_deferred_payment: bool,
}

impl Default for ReleaseDefaults {
    fn default() -> Self {
        ReleaseDefaults { require_payment: true, require_agreement: true, allow_deferred_payment: false }
    }
}

/// Auto-publish at creation, per document type. Attachments are always published by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AutoPublish {
    pub inspection_reports: bool,
    pub service_reports: bool,
    pub proposals: bool,
    pub invoices: bool,
}

/// Whether listing agents and additional people may open reports (by default they see order
/// details only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ReportAccess {
    pub listing_agent: bool,
    pub additional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ContactDetails {
    pub phone: Option<String>,
    pub email: Option<Email>,
    pub website: Option<String>,
    pub address: Option<String>,
}

/// What staff may be alerted of by email (`staff_alerts`).
pub const STAFF_ALERT_EVENTS: &[&str] = &[
    "addon_requested",
    "agreement_signed",
    "payment_received",
    "payment_unmatched",
    "quote_requested",
    "email_bounced",
    "webhook_disabled",
    "document_parked",
];

/// One address that hears of some events (one email per event, or a digest of those one job run
/// found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffAlert {
    pub email: Email,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contractor {
    pub name: String,
    #[serde(default)]
    pub trade: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub website: Option<String>,
}

/// An add-on service the company offers in the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub id: ServiceId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: Cents,
}

/// A partner product (home warranty, insurance, …). No client data goes to the partner unless
/// the client asks for a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialOffer {
    pub id: ServiceId,
    pub partner: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Where a quote request goes, once the client consented. Without it, no quote can be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_email: Option<Email>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTemplate {
    pub subject: String,
    pub body: String,
}

/// Templates staff may customise; the keys are the moments the product sends email.
pub const EMAIL_TEMPLATE_KEYS: &[&str] = &[
    "inspection_scheduled",
    "inspection_rescheduled",
    "report_published",
    "wdi_report_published",
    "service_report_published",
    "proposal_published",
    "invoice_published",
    "agreement_published",
    "attachment_published",
    "report_ready",
    "report_resend",
    "full_access",
    "contact_invite",
    "inspection_cancelled",
    "inspection_reinstated",
    "payment_receipt",
    "refund_notice",
    "reminder_agreement",
    "reminder_payment",
    "reminder_payment_after_report",
    "reminder_inspection",
];

/// Reminders the every-minute job sends (each on or off, with its timing). All on by default,
/// as the anchors' automated actions are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reminders {
    /// To each client who has not signed, this many hours before the inspection.
    pub agreement_unsigned: bool,
    pub agreement_hours_before: u32,
    /// To the clients while a balance is due, this many hours before the inspection.
    pub payment_due: bool,
    pub payment_hours_before: u32,
    /// To the clients while a balance is due after a report is published: this many days after,
    /// then weekly, at most [`MAX_PAYMENT_REMINDERS_AFTER_REPORT`] times.
    pub payment_after_report: bool,
    pub payment_days_after_report: u32,
    /// To everyone with a link, the day before the inspection.
    pub inspection_day_before: bool,
}

/// How long personal data is kept (docs/privacy.md): stored email bodies are dropped this many
/// days after the email was sent (its metadata stays), audit entries expire this many days after
/// they were written (DynamoDB TTL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    pub email_bodies_days: u32,
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { email_bodies_days: 90, audit_days: 730 }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPatch {
    #[serde(default, deserialize_with = "present")]
    pub email_bodies_days: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub audit_days: Option<u32>,
}

/// How many "payment still due" reminders follow a published report at most.
pub const MAX_PAYMENT_REMINDERS_AFTER_REPORT: u32 = 3;

impl Default for Reminders {
    fn default() -> Self {
        Reminders {
            agreement_unsigned: true,
            agreement_hours_before: 48,
            payment_due: true,
            payment_hours_before: 24,
            payment_after_report: true,
            payment_days_after_report: 3,
            inspection_day_before: true,
        }
    }
}

/// Each member left out stays as it is; `null` is refused (it would change nothing while
/// looking like "clear it").
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersPatch {
    #[serde(default, deserialize_with = "present")]
    pub agreement_unsigned: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub agreement_hours_before: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub payment_due: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub payment_hours_before: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub payment_after_report: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub payment_days_after_report: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub inspection_day_before: Option<bool>,
}

/// A member that is there must hold a value (`null` is an error, not "absent").
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Agreement terms used until a company writes its own.
pub const STANDARD_AGREEMENT_TERMS: &str = "\
1. The inspector will perform a visual, non-invasive inspection of the readily accessible areas of \
the property and report on their observed condition on the inspection date.
2. The inspection is not a guarantee, warranty or insurance policy, and does not cover latent or \
concealed defects.
3. The report is for the client's sole use. It is released once the fee is paid and this agreement \
is signed, as the inspection company requires.
4. The client agrees to pay the fee for the services listed above.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub payments: PaymentsMode,
    pub collect_payment_after_publish: bool,
    pub currency: Currency,
    pub release_defaults: ReleaseDefaults,
    pub customer_portal_enabled: bool,
    pub auto_publish: AutoPublish,
    pub auto_generate_inspection_reports: bool,
    pub report_access: ReportAccess,
    pub recommended_contractors_enabled: bool,
    pub recommended_contractors: Vec<Contractor>,
    /// Whether agents and other participants see each other's email addresses and phone numbers
    /// in the portal (clients always see everyone's; everyone sees the inspector's and the
    /// company's). Off by default: an agent's portal is not a contact list.
    pub show_participant_contacts: bool,
    pub contact: ContactDetails,
    /// Display name on outgoing mail; the address is always the platform's verified sender.
    pub sender_name: Option<String>,
    /// Where replies to portal emails go.
    pub reply_to: Option<Email>,
    pub email_templates: BTreeMap<String, EmailTemplate>,
    pub addon_catalog: Vec<Addon>,
    pub special_offers: Vec<SpecialOffer>,
    /// The terms of the inspection agreement clients sign (a standard text when unset).
    pub agreement_terms: Option<String>,
    /// IANA time zone pages and emails show times in (UTC when unset); JSON stays UTC.
    pub time_zone: Option<String>,
    /// How long a link works after it was issued, whatever happens (400 days when unset).
    pub link_lifetime_days: Option<u32>,
    /// Ports the company's webhook endpoints may use besides 443 (unprivileged ones, 1024 and
    /// up: an endpoint is a web server, not any service a public address happens to run).
    pub webhook_ports: Vec<u16>,
    /// The language of the company's pages (a BCP 47 tag such as `en`, `fr-CA`; `en` when
    /// unset): what `<html lang>` says, so screen readers pronounce the text right.
    pub language: Option<String>,
    /// The brand colour of the portal's header and buttons (`#rrggbb`); white text on it is at
    /// least 4.5:1.
    pub accent_color: Option<String>,
    /// The company's logo (a PNG or JPEG of at most 1 MiB, uploaded through
    /// `POST /staff/settings/logo`): its key in the bucket.
    pub logo: Option<String>,
    pub reminders: Reminders,
    pub retention: Retention,
    /// How long an inspection takes, for calendar invitations (default 180 minutes).
    pub inspection_duration_minutes: Option<u32>,
    pub staff_alerts: Vec<StaffAlert>,
}

pub const DEFAULT_LINK_LIFETIME_DAYS: u32 = 400;

/// The contrast ratio of white text on `#rrggbb` (WCAG 2 relative luminance); None when it is
/// not such a colour.
pub fn contrast_with_white(color: &str) -> Option<f64> {
    let hex = color.strip_prefix('#').filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))?;
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).ok()?) / 255.0;
        Some(if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) })
    };
    let l = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (l + 0.05))
}

impl Settings {
    /// The pages' language (`en` when unset).
    /// The addresses that hear of `event`.
    pub fn alerted_of<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Email> + 'a {
        self.staff_alerts.iter().filter(move |a| a.events.iter().any(|e| e == event)).map(|a| &a.email)
    }

    pub fn inspection_duration_minutes(&self) -> u32 {
        self.inspection_duration_minutes.unwrap_or(180)
    }

    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or("en")
    }
}

/// A partial update: absent fields are left as they are. Lists replace the whole list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub payments: Option<PaymentsMode>,
    pub collect_payment_after_publish: Option<bool>,
    pub currency: Option<Currency>,
    pub release_defaults: Option<ReleaseDefaultsPatch>,
    pub customer_portal_enabled: Option<bool>,
    pub auto_publish: Option<AutoPublishPatch>,
    pub auto_generate_inspection_reports: Option<bool>,
    pub report_access: Option<ReportAccessPatch>,
    pub recommended_contractors_enabled: Option<bool>,
    pub recommended_contractors: Option<Vec<Contractor>>,
    pub show_participant_contacts: Option<bool>,
    pub contact: Option<ContactDetails>,
    pub sender_name: Option<String>,
    pub reply_to: Option<Email>,
    pub email_templates: Option<BTreeMap<String, EmailTemplate>>,
    pub addon_catalog: Option<Vec<AddonInput>>,
    pub special_offers: Option<Vec<SpecialOfferInput>>,
    pub agreement_terms: Option<String>,
    pub time_zone: Option<String>,
    pub link_lifetime_days: Option<u32>,
    pub webhook_ports: Option<Vec<u16>>,
    pub language: Option<String>,
    pub accent_color: Option<String>,
    pub logo: Option<String>,
    pub reminders: Option<RemindersPatch>,
    pub retention: Option<RetentionPatch>,
    pub inspection_duration_minutes: Option<u32>,
    pub staff_alerts: Option<Vec<StaffAlert>>,
    /// Accepted only to refuse it clearly: this flag belongs to the platform admin.
    pub deficiency_visibility: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseDefaultsPatch {
    pub require_payment: Option<bool>,
    pub require_agreement: Option<bool>,
    pub allow_deferred_payment: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoPublishPatch {
    pub inspection_reports: Option<bool>,
    pub service_reports: Option<bool>,
    pub proposals: Option<bool>,
    pub invoices: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportAccessPatch {
    pub listing_agent: Option<bool>,
    pub additional: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddonInput {
    /// Keep an existing add-on's id when editing it; new ones get an id.
    pub id: Option<ServiceId>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialOfferInput {
    pub id: Option<ServiceId>,
    pub partner: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub partner_email: Option<Email>,
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

impl Settings {
    /// Applies a patch and checks every rule; the current settings are untouched on error.
    pub fn apply(&self, patch: SettingsPatch) -> Result<Settings, DomainError> {
        if patch.deficiency_visibility.is_some() {
            return Err(DomainError::Forbidden(
                "deficiency_visibility can only be changed by the platform admin".into(),
            ));
        }
        let (payments_patch, defaults_patch) = (patch.payments, patch.release_defaults);
        let mut s = self.clone();
        set(&mut s.payments, patch.payments);
        set(&mut s.collect_payment_after_publish, patch.collect_payment_after_publish);
        set(&mut s.currency, patch.currency);
        if let Some(p) = patch.release_defaults {
            set(&mut s.release_defaults.require_payment, p.require_payment);
            set(&mut s.release_defaults.require_agreement, p.require_agreement);
            set(&mut s.release_defaults.allow_deferred_payment, p.allow_deferred_payment);
        }
        set(&mut s.customer_portal_enabled, patch.customer_portal_enabled);
        if let Some(p) = patch.auto_publish {
            set(&mut s.auto_publish.inspection_reports, p.inspection_reports);
            set(&mut s.auto_publish.service_reports, p.service_reports);
            set(&mut s.auto_publish.proposals, p.proposals);
            set(&mut s.auto_publish.invoices, p.invoices);
        }
        set(&mut s.auto_generate_inspection_reports, patch.auto_generate_inspection_reports);
        if let Some(p) = patch.report_access {
            set(&mut s.report_access.listing_agent, p.listing_agent);
            set(&mut s.report_access.additional, p.additional);
        }
        set(&mut s.recommended_contractors_enabled, patch.recommended_contractors_enabled);
        set(&mut s.show_participant_contacts, patch.show_participant_contacts);
        if let Some(list) = patch.recommended_contractors {
            s.recommended_contractors = list.into_iter().map(validate_contractor).collect::<Result<_, _>>()?;
        }
        if let Some(c) = patch.contact {
            s.contact = ContactDetails {
                phone: optional_text("contact.phone", c.phone.as_deref(), 40)?,
                email: c.email,
                website: optional_text("contact.website", c.website.as_deref(), 300)?,
                address: optional_text("contact.address", c.address.as_deref(), 500)?,
            };
        }
        if let Some(name) = patch.sender_name {
            s.sender_name = optional_text("sender_name", Some(&name), 100)?;
        }
        if patch.reply_to.is_some() {
            s.reply_to = patch.reply_to;
        }
        if let Some(templates) = patch.email_templates {
            for (key, t) in templates {
                if !EMAIL_TEMPLATE_KEYS.contains(&key.as_str()) {
                    return Err(DomainError::Invalid(format!(
                        "unknown email template {key:?}; known templates: {}",
                        EMAIL_TEMPLATE_KEYS.join(", ")
                    )));
                }
                let subject = text(&format!("email_templates.{key}.subject"), &t.subject, 200)?;
                let body = text(&format!("email_templates.{key}.body"), &t.body, 20_000)?;
                super::template_syntax::check_subject(&format!("email_templates.{key}.subject"), &subject)?;
                super::template_syntax::check(&format!("email_templates.{key}.body"), &body)?;
                s.email_templates.insert(key, EmailTemplate { subject, body });
            }
        }
        if let Some(list) = patch.addon_catalog {
            if list.len() > 100 {
                return Err(DomainError::Invalid("addon_catalog may hold at most 100 add-ons".into()));
            }
            s.addon_catalog = list
                .into_iter()
                .map(|a| {
                    Ok(Addon {
                        id: a.id.unwrap_or_default(),
                        name: text("addon_catalog[].name", &a.name, 200)?,
                        description: optional_text("addon_catalog[].description", Some(&a.description), 5000)?
                            .unwrap_or_default(),
                        price_cents: Cents::price(a.price_cents)?,
                    })
                })
                .collect::<Result<_, DomainError>>()?;
        }
        if let Some(list) = patch.special_offers {
            s.special_offers = list
                .into_iter()
                .map(|o| {
                    Ok(SpecialOffer {
                        id: o.id.unwrap_or_default(),
                        partner: text("special_offers[].partner", &o.partner, 200)?,
                        title: text("special_offers[].title", &o.title, 200)?,
                        description: optional_text("special_offers[].description", Some(&o.description), 5000)?
                            .unwrap_or_default(),
                        partner_email: o.partner_email,
                    })
                })
                .collect::<Result<_, DomainError>>()?;
        }
        if let Some(terms) = patch.agreement_terms {
            s.agreement_terms = optional_text("agreement_terms", Some(&terms), 50_000)?;
        }
        if let Some(tz) = patch.time_zone {
            let tz = tz.trim();
            crate::foundation::local_time::zone(tz).ok_or_else(|| {
                DomainError::Invalid(format!("time_zone {tz:?} is not an IANA time zone such as America/Chicago"))
            })?;
            s.time_zone = Some(tz.to_owned());
        }
        if let Some(color) = patch.accent_color {
            let color = color.trim().to_ascii_lowercase();
            let ratio = crate::domain::settings::contrast_with_white(&color)
                .ok_or_else(|| DomainError::Invalid(format!("accent_color {color:?} is not a colour like #1f6feb")))?;
            if ratio < 4.5 {
                return Err(DomainError::Invalid(format!(
                    "accent_color {color}: white text on it has a contrast of {ratio:.2}:1; it must be at least 4.5:1 \
                     (choose a darker colour)"
                )));
            }
            s.accent_color = Some(color);
        }
        if let Some(lang) = patch.language {
            let lang = lang.trim();
            let mut parts = lang.split('-');
            let primary_ok =
                parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
            let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
            if !primary_ok || !rest_ok || lang.len() > 35 {
                return Err(DomainError::Invalid(format!(
                    "language {lang:?} is not a language tag such as en or fr-CA"
                )));
            }
            s.language = Some(lang.to_owned());
        }
        if let Some(alerts) = patch.staff_alerts {
            if alerts.len() > 10 {
                return Err(DomainError::Invalid("staff_alerts: at most 10 addresses".into()));
            }
            for a in &alerts {
                if let Some(bad) = a.events.iter().find(|e| !STAFF_ALERT_EVENTS.contains(&e.as_str())) {
                    return Err(DomainError::Invalid(format!(
                        "staff_alerts: {bad:?} is not an event; events are {}",
                        STAFF_ALERT_EVENTS.join(", ")
                    )));
                }
                if a.events.is_empty() {
                    return Err(DomainError::Invalid(format!("staff_alerts: {} hears no event", a.email)));
                }
            }
            s.staff_alerts = alerts;
        }
        if let Some(mut ports) = patch.webhook_ports {
            ports.sort_unstable();
            ports.dedup();
            if ports.len() > 10 || ports.iter().any(|p| *p < 1024) {
                return Err(DomainError::Invalid(
                    "webhook_ports: at most 10 ports, each 1024 or above (443 is always allowed)".into(),
                ));
            }
            s.webhook_ports = ports;
        }
        if let Some(r) = patch.reminders {
            let m = &mut s.reminders;
            set(&mut m.agreement_unsigned, r.agreement_unsigned);
            set(&mut m.agreement_hours_before, r.agreement_hours_before);
            set(&mut m.payment_due, r.payment_due);
            set(&mut m.payment_hours_before, r.payment_hours_before);
            set(&mut m.payment_after_report, r.payment_after_report);
            set(&mut m.payment_days_after_report, r.payment_days_after_report);
            set(&mut m.inspection_day_before, r.inspection_day_before);
            let hours_ok = |h: u32| (1..=14 * 24).contains(&h);
            if !hours_ok(m.agreement_hours_before) || !hours_ok(m.payment_hours_before) {
                return Err(DomainError::Invalid(
                    "reminders: agreement_hours_before and payment_hours_before must be between 1 and 336".into(),
                ));
            }
            if !(1..=30).contains(&m.payment_days_after_report) {
                return Err(DomainError::Invalid(
                    "reminders: payment_days_after_report must be between 1 and 30".into(),
                ));
            }
        }
        if let Some(r) = patch.retention {
            set(&mut s.retention.email_bodies_days, r.email_bodies_days);
            set(&mut s.retention.audit_days, r.audit_days);
            if !(1..=3650).contains(&s.retention.email_bodies_days) || !(30..=3650).contains(&s.retention.audit_days) {
                return Err(DomainError::Invalid(
                    "retention: email_bodies_days must be between 1 and 3650, audit_days between 30 and 3650".into(),
                ));
            }
        }
        if let Some(minutes) = patch.inspection_duration_minutes {
            if !(15..=1440).contains(&minutes) {
                return Err(DomainError::Invalid("inspection_duration_minutes must be between 15 and 1440".into()));
            }
            s.inspection_duration_minutes = Some(minutes);
        }
        if let Some(days) = patch.link_lifetime_days {
            if !(1..=3650).contains(&days) {
                return Err(DomainError::Invalid("link_lifetime_days must be between 1 and 3650".into()));
            }
            s.link_lifetime_days = Some(days);
        }
        s.check_rules(self, payments_patch, defaults_patch)?;
        Ok(s)
    }

    pub fn link_lifetime(&self) -> time::Duration {
        time::Duration::days(i64::from(self.link_lifetime_days.unwrap_or(DEFAULT_LINK_LIFETIME_DAYS)))
    }

    pub fn agreement_terms(&self) -> &str {
        self.agreement_terms.as_deref().unwrap_or(STANDARD_AGREEMENT_TERMS)
    }

    fn check_rules(
        &mut self,
        before: &Settings,
        payments_patch: Option<PaymentsMode>,
        defaults_patch: Option<ReleaseDefaultsPatch>,
    ) -> Result<(), DomainError> {
        if self.collect_payment_after_publish && self.payments == PaymentsMode::ThirdParty {
            return Err(if payments_patch == Some(PaymentsMode::ThirdParty) && before.collect_payment_after_publish {
                DomainError::rule(
                    "settings-conflict",
                    "payments cannot be third_party while collect_payment_after_publish is enabled; turn that off first",
                )
            } else {
                DomainError::rule(
                    "settings-conflict",
                    "collect_payment_after_publish cannot be enabled while payments is third_party",
                )
            });
        }
        if self.collect_payment_after_publish {
            let d = defaults_patch.unwrap_or_default();
            if d.require_payment == Some(false) {
                return Err(DomainError::rule(
                    "settings-conflict",
                    "require_payment is locked on while collect_payment_after_publish is enabled",
                ));
            }
            if d.allow_deferred_payment == Some(true) {
                return Err(DomainError::rule(
                    "settings-conflict",
                    "allow_deferred_payment is blocked while collect_payment_after_publish is enabled",
                ));
            }
            // Enabling it locks the defaults for every inspection scheduled from now on.
            self.release_defaults.require_payment = true;
            self.release_defaults.allow_deferred_payment = false;
        }
        Ok(())
    }
}

fn validate_contractor(c: Contractor) -> Result<Contractor, DomainError> {
    Ok(Contractor {
        name: text("recommended_contractors[].name", &c.name, 200)?,
        trade: optional_text("recommended_contractors[].trade", c.trade.as_deref(), 100)?,
        phone: optional_text("recommended_contractors[].phone", c.phone.as_deref(), 40)?,
        email: c.email,
        website: optional_text("recommended_contractors[].website", c.website.as_deref(), 300)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> SettingsPatch {
        serde_json::from_str(json).expect("valid patch")
    }

    #[test]
    fn reminders_change_one_member_at_a_time_and_refuse_null_and_odd_timings() {
        let s = Settings::default().apply(patch(r#"{"reminders": {"payment_hours_before": 36}}"#)).unwrap();
        assert_eq!(s.reminders, Reminders { payment_hours_before: 36, ..Reminders::default() });
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"reminders": {"payment_due": null}}"#).is_err());
        assert!(Settings::default().apply(patch(r#"{"reminders": {"agreement_hours_before": 0}}"#)).is_err());
        assert!(Settings::default().apply(patch(r#"{"reminders": {"payment_days_after_report": 31}}"#)).is_err());
    }

    #[test]
    fn collect_after_publish_is_refused_while_payments_are_third_party() {
        let s = Settings { payments: PaymentsMode::ThirdParty, ..Default::default() };
        let err = s.apply(patch(r#"{"collect_payment_after_publish": true}"#)).unwrap_err();
        assert!(matches!(err, DomainError::Rule { code: "settings-conflict", .. }), "{err:?}");
        // Also when both arrive in one request.
        let err = Settings::default()
            .apply(patch(r#"{"payments": "third_party", "collect_payment_after_publish": true}"#))
            .unwrap_err();
        assert!(matches!(err, DomainError::Rule { .. }));
    }

    #[test]
    fn payments_cannot_become_third_party_while_collecting_after_publish() {
        let s = Settings::default().apply(patch(r#"{"collect_payment_after_publish": true}"#)).unwrap();
        let err = s.apply(patch(r#"{"payments": "third_party"}"#)).unwrap_err();
        assert!(err.to_string().contains("turn that off first"), "{err}");
    }

    #[test]
    fn enabling_collect_after_publish_locks_the_release_defaults() {
        let s = Settings {
            release_defaults: ReleaseDefaults {
                require_payment: false,
                require_agreement: false,
                allow_deferred_payment: true,
            },
            payments: PaymentsMode::Native,
            ..Default::default()
        };
        let s = s.apply(patch(r#"{"collect_payment_after_publish": true}"#)).unwrap();
        assert!(s.release_defaults.require_payment);
        assert!(!s.release_defaults.allow_deferred_payment);
        assert!(!s.release_defaults.require_agreement, "agreement default is not touched");
        for bad in [
            r#"{"release_defaults": {"require_payment": false}}"#,
            r#"{"release_defaults": {"allow_deferred_payment": true}}"#,
        ] {
            assert!(matches!(s.apply(patch(bad)), Err(DomainError::Rule { .. })), "{bad}");
        }
        // Turning it off unlocks them again.
        let off = s
            .apply(patch(
                r#"{"collect_payment_after_publish": false, "release_defaults": {"allow_deferred_payment": true}}"#,
            ))
            .unwrap();
        assert!(off.release_defaults.allow_deferred_payment);
    }

    #[test]
    fn deficiency_visibility_is_admin_only() {
        let err = Settings::default().apply(patch(r#"{"deficiency_visibility": true}"#)).unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"payments": "bitcoin"}"#).is_err());
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"colour": "blue"}"#).is_err());
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"auto_publish": {"attachments": true}}"#).is_err());
        let err = Settings::default()
            .apply(patch(r#"{"addon_catalog": [{"name": "Radon", "price_cents": -5}]}"#))
            .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)));
        let err = Settings::default()
            .apply(patch(r#"{"email_templates": {"marketing": {"subject": "s", "body": "b"}}}"#))
            .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)));
    }

    #[test]
    fn partial_patches_leave_other_fields_alone() {
        let s = Settings::default()
            .apply(patch(r#"{"payments": "native", "auto_publish": {"inspection_reports": true}}"#))
            .unwrap();
        let s2 = s.apply(patch(r#"{"auto_publish": {"invoices": true}}"#)).unwrap();
        assert_eq!(s2.payments, PaymentsMode::Native);
        assert!(s2.auto_publish.inspection_reports && s2.auto_publish.invoices);
        assert!(!s2.auto_publish.proposals);
    }

    #[test]
    fn addons_keep_their_ids_or_get_new_ones() {
        let s = Settings::default()
            .apply(patch(r#"{"addon_catalog": [{"name": "Radon test", "description": "48h", "price_cents": 15000}]}"#))
            .unwrap();
        let id = s.addon_catalog[0].id;
        let s2 = s
            .apply(patch(&format!(r#"{{"addon_catalog": [{{"id": "{id}", "name": "Radon", "price_cents": 12000}}]}}"#)))
            .unwrap();
        assert_eq!(s2.addon_catalog[0].id, id);
        assert_eq!(s2.addon_catalog[0].price_cents.get(), 12000);
    }
}
