//! Reports the product renders itself from an inspection's stored data (auto-generated on submit,
//! and rebuilt on request — the "payload rebuild"): a JSON payload and a small PDF made from it.

use serde_json::{json, Value};

use crate::domain::company::Company;
use crate::domain::document::Document;
use crate::domain::inspection::{Inspection, Role};

/// The rendered payload: everything the report shows, from the stored data only.
pub fn payload(company: &Company, inspection: &Inspection, doc: &Document) -> Value {
    json!({
        "title": doc.display_name(),
        "company": company.name,
        "address": inspection.address,
        "scheduled_at": crate::clock::rfc3339(inspection.scheduled_at),
        "submitted_at": inspection.submitted_at.map(crate::clock::rfc3339),
        "inspectors": inspection.people.iter().filter(|p| p.role == Role::Inspector).map(|p| &p.name).collect::<Vec<_>>(),
        "clients": inspection.people.iter().filter(|p| p.role == Role::Client).map(|p| &p.name).collect::<Vec<_>>(),
        "services": inspection.services.iter().map(|s| json!({ "name": s.name, "description": s.description })).collect::<Vec<_>>(),
    })
}

/// The PDF of a payload: one page of text lines.
pub fn pdf(payload: &Value) -> Vec<u8> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![
        s(&payload["title"]),
        format!("{} - {}", s(&payload["address"]), s(&payload["company"])),
        format!("Inspected: {}", s(&payload["scheduled_at"])),
        format!("Client(s): {}", list(&payload["clients"])),
        format!("Inspector(s): {}", list(&payload["inspectors"])),
        "Services:".to_owned(),
    ];
    for svc in payload["services"].as_array().into_iter().flatten() {
        lines.push(format!("  - {}: {}", s(&svc["name"]), s(&svc["description"])));
    }
    text_pdf(&lines)
}

/// A valid one-page PDF showing `lines` (byte offsets computed, so viewers open it). Characters
/// outside printable ASCII are dropped.
pub fn text_pdf(lines: &[String]) -> Vec<u8> {
    let mut stream = String::from("BT /F1 12 Tf 72 740 Td 16 TL");
    for line in lines {
        let clean: String = line.chars().filter(|c| (' '..='~').contains(c) && !"()\\".contains(*c)).collect();
        stream.push_str(&format!(" ({clean}) Tj T*"));
    }
    stream.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", n + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdfs_have_a_correct_cross_reference_table() {
        let pdf = text_pdf(&["Hello (world)".to_owned(), "Caf\u{e9}".to_owned()]);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(text[startxref..].starts_with("xref"));
        for (n, line) in text[startxref..].lines().skip(3).take(5).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(text[off..].starts_with(&format!("{} 0 obj", n + 1)), "object {}", n + 1);
        }
        assert!(text.contains("(Hello world) Tj") && text.contains("(Caf) Tj"));
    }
}
