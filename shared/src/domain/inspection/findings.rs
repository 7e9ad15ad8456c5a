//! What the inspector found, recorded for the report: each finding with its severity, title,
//! description, location, recommendation and photos. A report says "no deficiencies" only when
//! staff said so (an empty list given on purpose); an inspection nobody recorded findings for has
//! `None`, and generating its report is refused until someone does.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Inspection;
use crate::domain::{optional_text, text, DomainError};
use crate::foundation::ids::FindingId;

/// Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub recommendation: Option<String>,
    /// Photos: `https://` URLs, or S3 keys under the inspection's own prefix.
    #[serde(default)]
    pub photos: Vec<String>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// A finding as staff send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingInput {
    pub severity: Severity,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub recommendation: Option<String>,
    #[serde(default)]
    pub photos: Vec<String>,
}

pub const MAX_FINDINGS: usize = 500;
pub const MAX_PHOTOS: usize = 20;

impl Inspection {
    /// The S3 prefix this inspection's own photos live under.
    pub fn photo_prefix(&self) -> String {
        format!("companies/{}/inspections/{}/", self.company_id, self.id)
    }

    fn finding(&self, input: FindingInput, now: OffsetDateTime) -> Result<Finding, DomainError> {
        if input.photos.len() > MAX_PHOTOS {
            return Err(DomainError::Invalid(format!("findings[].photos: at most {MAX_PHOTOS} photos")));
        }
        let prefix = self.photo_prefix();
        for p in &input.photos {
            let ok = (p.starts_with("https://") && p.len() <= 2000 && !p.contains(char::is_whitespace))
                || (p.starts_with(&prefix) && p.len() <= 1024 && !p.contains(".."));
            if !ok {
                return Err(DomainError::Invalid(format!(
                    "findings[].photos: {p:?} is neither an https:// URL nor a key under {prefix}"
                )));
            }
        }
        Ok(Finding {
            id: FindingId::new(),
            severity: input.severity,
            title: text("findings[].title", &input.title, 300)?,
            description: optional_text("findings[].description", input.description.as_deref(), 10_000)?
                .unwrap_or_default(),
            location: optional_text("findings[].location", input.location.as_deref(), 300)?,
            recommendation: optional_text("findings[].recommendation", input.recommendation.as_deref(), 5000)?,
            photos: input.photos,
            recorded_at: now,
        })
    }

    /// Records one more finding (the list exists from then on).
    pub fn record_finding(&mut self, input: FindingInput, now: OffsetDateTime) -> Result<&Finding, DomainError> {
        let f = self.finding(input, now)?;
        let list = self.findings.get_or_insert_with(Vec::new);
        if list.len() >= MAX_FINDINGS {
            return Err(DomainError::Invalid(format!("at most {MAX_FINDINGS} findings")));
        }
        list.push(f);
        self.updated_at = now;
        Ok(self.findings.as_ref().and_then(|l| l.last()).expect("just pushed"))
    }

    /// Replaces every finding with `inputs` (an empty list: staff say there are none).
    pub fn set_findings(&mut self, inputs: Vec<FindingInput>, now: OffsetDateTime) -> Result<(), DomainError> {
        if inputs.len() > MAX_FINDINGS {
            return Err(DomainError::Invalid(format!("at most {MAX_FINDINGS} findings")));
        }
        let list = inputs.into_iter().map(|f| self.finding(f, now)).collect::<Result<Vec<_>, _>>()?;
        self.findings = Some(list);
        self.updated_at = now;
        Ok(())
    }

    /// Removes a finding; false when there is none with that id.
    pub fn remove_finding(&mut self, id: FindingId, now: OffsetDateTime) -> bool {
        let Some(list) = self.findings.as_mut() else { return false };
        let before = list.len();
        list.retain(|f| f.id != id);
        let removed = list.len() < before;
        if removed {
            self.updated_at = now;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{company, new_inspection};
    use super::*;

    fn input(json: &str) -> FindingInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn findings_are_none_until_recorded_and_an_empty_list_is_a_statement() {
        let c = company("{}");
        let now = crate::foundation::clock::now();
        let mut i = Inspection::create(new_inspection(""), &c, now).unwrap();
        assert_eq!(i.findings, None, "nobody said anything yet");
        i.set_findings(vec![], now).unwrap();
        assert_eq!(i.findings, Some(vec![]), "staff said: none");
        let photo = format!("{}photos/roof.jpg", i.photo_prefix());
        let f = i
            .record_finding(
                input(&format!(
                    r#"{{"severity": "high", "title": "Roof leak", "location": "Attic", "photos": ["{photo}", "https://cdn.test/a.jpg"]}}"#
                )),
                now,
            )
            .unwrap()
            .id;
        assert_eq!(i.findings.as_ref().unwrap().len(), 1);
        assert!(i.remove_finding(f, now) && !i.remove_finding(f, now));
    }

    #[test]
    fn bad_findings_are_refused_naming_the_field() {
        let c = company("{}");
        let now = crate::foundation::clock::now();
        let mut i = Inspection::create(new_inspection(""), &c, now).unwrap();
        for (bad, field) in [
            (r#"{"severity": "high", "title": " "}"#, "findings[].title"),
            (r#"{"severity": "low", "title": "x", "photos": ["http://insecure.test/a.jpg"]}"#, "findings[].photos"),
            (
                r#"{"severity": "low", "title": "x", "photos": ["companies/other/inspections/x/a.jpg"]}"#,
                "findings[].photos",
            ),
        ] {
            let err = i.record_finding(input(bad), now).unwrap_err();
            assert!(err.to_string().contains(field), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<FindingInput>(r#"{"severity": "dire", "title": "x"}"#).is_err());
        assert_eq!(i.findings, None, "nothing recorded");
    }
}
