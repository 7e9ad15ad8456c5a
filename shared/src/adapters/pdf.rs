//! Reports the product renders itself from an inspection's stored data (auto-generated on submit,
//! and rebuilt on request — the "payload rebuild"): a JSON payload, and a multi-page PDF made from
//! it (laid out here, written with lopdf). Text is set in DejaVu Sans (`shared/fonts`, its licence
//! beside it), embedded as a subset of the glyphs the report uses with a ToUnicode map, so Latin,
//! Greek and Cyrillic names print as written and copy out of the PDF as text.

use serde_json::{json, Value};

use crate::domain::company::Company;
use crate::domain::customers::{Deficiency, DeficiencyStatus, Severity};
use crate::domain::document::Document;
use crate::domain::inspection::{Inspection, Role};

/// One finding as the report shows it: the inspector's (residential) or a deficiency recorded
/// against the report (commercial).
struct Entry<'a> {
    severity: Severity,
    title: &'a str,
    description: &'a str,
    location: Option<&'a str>,
    recommendation: Option<&'a str>,
    status: Option<DeficiencyStatus>,
    photos: &'a [String],
}

/// The rendered payload: everything the report shows, from the stored data only: the property,
/// the people, one section per service, and the findings — the inspector's recorded findings and
/// the deficiencies recorded against this report — most severe first, with their photos.
/// `findings_recorded` says whether anyone recorded findings at all: a report says "no
/// deficiencies" only when someone said so, never because nothing was recorded.
pub fn payload(company: &Company, inspection: &Inspection, doc: &Document, deficiencies: &[Deficiency]) -> Value {
    let zone = company.settings.time_zone.as_deref();
    let mut findings: Vec<Entry> = inspection
        .findings
        .iter()
        .flatten()
        .map(|f| Entry {
            severity: f.severity,
            title: &f.title,
            description: &f.description,
            location: f.location.as_deref(),
            recommendation: f.recommendation.as_deref(),
            status: None,
            photos: &f.photos,
        })
        .chain(deficiencies.iter().map(|d| Entry {
            severity: d.severity,
            title: &d.description,
            description: "",
            location: Some(d.location.as_str()).filter(|l| !l.is_empty()),
            recommendation: None,
            status: Some(d.status),
            photos: &[],
        }))
        .collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    json!({
        "title": doc.display_name(),
        "company": company.name,
        "address": inspection.address,
        "scheduled_at": crate::foundation::clock::rfc3339(inspection.scheduled_at),
        "scheduled_local": crate::foundation::local_time::date_time(inspection.scheduled_at, zone),
        "submitted_at": inspection.submitted_at.map(crate::foundation::clock::rfc3339),
        "inspectors": inspection.people.iter().filter(|p| p.role == Role::Inspector).map(|p| &p.name).collect::<Vec<_>>(),
        "clients": inspection.people.iter().filter(|p| p.role == Role::Client).map(|p| &p.name).collect::<Vec<_>>(),
        "services": inspection.services.iter().map(|s| json!({ "name": s.name, "description": s.description })).collect::<Vec<_>>(),
        "findings_recorded": inspection.findings.is_some() || !deficiencies.is_empty(),
        "summary": {
            "findings": findings.len(),
            "critical": count(Severity::Critical),
            "high": count(Severity::High),
            "medium": count(Severity::Medium),
            "low": count(Severity::Low),
            "unresolved": findings.iter().filter(|f| f.status == Some(DeficiencyStatus::Unresolved)).count(),
        },
        "findings": findings.iter().map(|f| json!({
            "severity": f.severity,
            "title": f.title,
            "description": f.description,
            "location": f.location,
            "recommendation": f.recommendation,
            "status": f.status,
            "photos": f.photos,
        })).collect::<Vec<_>>(),
        "photos": inspection.cover_photo_url.iter().collect::<Vec<_>>(),
    })
}

/// Lines of a report, each with its style.
enum Line {
    Title(String),
    Heading(String),
    Text(String),
    Gap,
}

/// The bundled font (DejaVu Sans; its licence is `shared/fonts/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

fn face() -> ttf_parser::Face<'static> {
    ttf_parser::Face::parse(FONT, 0).expect("the bundled font parses")
}

/// Width of the page's text column, in points (US Letter less one-inch margins).
const COLUMN: f32 = 468.0;
const BODY_SIZE: f32 = 10.0;

/// How wide `text` is at `size` points.
fn text_width(face: &ttf_parser::Face, text: &str, size: f32) -> f32 {
    let units: u32 =
        text.chars().map(|c| face.glyph_index(c).and_then(|g| face.glyph_hor_advance(g)).map_or(0, u32::from)).sum();
    units as f32 * size / f32::from(face.units_per_em())
}

/// Wraps `text` on word boundaries into lines at most `width` points wide at body size.
fn wrap(text: &str, width: f32) -> Vec<String> {
    let face = face();
    let mut out = vec![String::new()];
    for word in text.split_whitespace() {
        let last = out.last_mut().expect("one line");
        let candidate = if last.is_empty() { word.to_owned() } else { format!("{last} {word}") };
        if !last.is_empty() && text_width(&face, &candidate, BODY_SIZE) > width {
            out.push(word.to_owned());
        } else {
            *last = candidate;
        }
    }
    out
}

/// The PDF of a payload: a cover with the property and the people, a summary of the findings by
/// severity, one section per service, and every finding; as many US Letter pages as it takes,
/// numbered.
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
        Line::Title(s(&payload["title"])),
        Line::Text(s(&payload["address"])),
        Line::Text(format!("Prepared by {}", s(&payload["company"]))),
        Line::Text(format!("Inspected: {}", s(&payload["scheduled_local"]))),
        Line::Text(format!("Client(s): {}", list(&payload["clients"]))),
        Line::Text(format!("Inspector(s): {}", list(&payload["inspectors"]))),
        Line::Gap,
        Line::Heading("Summary".into()),
    ];
    let sum = &payload["summary"];
    let n = |k: &str| sum[k].as_u64().unwrap_or(0);
    let recorded = payload["findings_recorded"].as_bool().unwrap_or(false);
    lines.push(Line::Text(if recorded {
        format!(
            "{} finding(s): {} critical, {} high, {} medium, {} low.",
            n("findings"),
            n("critical"),
            n("high"),
            n("medium"),
            n("low")
        )
    } else {
        "Findings were not recorded with this report.".into()
    }));
    lines.push(Line::Gap);
    lines.push(Line::Heading("Scope: services performed".into()));
    for svc in payload["services"].as_array().into_iter().flatten() {
        for (i, l) in
            wrap(&format!("{}: {}", s(&svc["name"]), s(&svc["description"])), COLUMN - 12.0).into_iter().enumerate()
        {
            lines.push(Line::Text(if i == 0 { format!("- {l}") } else { format!("  {l}") }));
        }
    }
    lines.push(Line::Gap);
    lines.push(Line::Heading("Findings".into()));
    let findings = payload["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        lines.push(Line::Text(
            if recorded {
                "The inspector recorded no deficiencies."
            } else {
                "No findings were recorded with this report; ask the inspection company for them."
            }
            .into(),
        ));
    }
    let indented = |lines: &mut Vec<Line>, label: &str, text: String| {
        if !text.is_empty() {
            for l in wrap(&format!("{label}{text}"), COLUMN - 24.0) {
                lines.push(Line::Text(format!("    {l}")));
            }
        }
    };
    for (k, f) in findings.iter().enumerate() {
        let head = format!("{}. [{}] {}", k + 1, s(&f["severity"]).to_uppercase(), s(&f["title"]));
        for (i, l) in wrap(&head, COLUMN - 24.0).into_iter().enumerate() {
            lines.push(Line::Text(if i == 0 { l } else { format!("    {l}") }));
        }
        indented(&mut lines, "", s(&f["description"]));
        let status = s(&f["status"]);
        let loc = s(&f["location"]);
        let place = if loc.is_empty() { "-".to_owned() } else { loc };
        lines.push(Line::Text(if status.is_empty() {
            format!("    Location: {place}")
        } else {
            format!("    Location: {place}   Status: {status}")
        }));
        indented(&mut lines, "Recommendation: ", s(&f["recommendation"]));
        for p in f["photos"].as_array().into_iter().flatten() {
            indented(&mut lines, "Photo: ", s(p));
        }
    }
    let photos = payload["photos"].as_array().cloned().unwrap_or_default();
    if !photos.is_empty() {
        lines.push(Line::Gap);
        lines.push(Line::Heading("Photos".into()));
        for p in photos {
            lines.push(Line::Text(s(&p)));
        }
    }
    paged_pdf(&lines, &s(&payload["title"]))
}

/// Lays lines out on pages (a page break when one is full) and writes the PDF with lopdf.
fn paged_pdf(lines: &[Line], title: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{dictionary, Document, Object, Stream, StringFormat};
    const TOP: i64 = 740;
    const BOTTOM: i64 = 72;
    // (bold, size, y, text) per page.
    let mut pages: Vec<Vec<(bool, i64, i64, String)>> = vec![Vec::new()];
    let mut y = TOP;
    for line in lines {
        let (bold, size, step, text) = match line {
            Line::Title(t) => (true, 20, 30, t.clone()),
            Line::Heading(t) => (true, 14, 22, t.clone()),
            Line::Text(t) => (false, 10, 14, t.clone()),
            Line::Gap => (false, 10, 10, String::new()),
        };
        if y - step < BOTTOM {
            pages.push(Vec::new());
            y = TOP;
        }
        y -= step;
        pages.last_mut().expect("a page").push((bold, size, y, text));
    }
    let total = pages.len();
    for (n, page) in pages.iter_mut().enumerate() {
        page.push((false, 9, 40, format!("{title} \u{2013} page {} of {total}", n + 1)));
    }

    // Every character as a glyph of the subset (2-byte codes, Identity-H), remembering which
    // character each glyph stands for (the ToUnicode map that makes the text copyable).
    let face = face();
    let mut glyphs = subsetter::GlyphRemapper::new();
    let mut unicode: std::collections::BTreeMap<u16, char> = std::collections::BTreeMap::new();
    let mut encode = |text: &str| -> Vec<u8> {
        let mut codes = Vec::with_capacity(text.len() * 2);
        for c in text.chars().filter(|c| !c.is_control()) {
            let old = face.glyph_index(c).map_or(0, |g| g.0);
            let new = glyphs.remap(old);
            if old != 0 {
                unicode.entry(new).or_insert(c);
            }
            codes.extend(new.to_be_bytes());
        }
        codes
    };
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.new_object_id();
    let mut kids: Vec<Object> = Vec::new();
    for page in &pages {
        let mut ops = Vec::new();
        for (bold, size, y, text) in page {
            if text.is_empty() {
                continue;
            }
            ops.push(Operation::new("BT", vec![]));
            ops.push(Operation::new("Tf", vec!["F1".into(), (*size).into()]));
            // Bold: the outline stroked as well as filled.
            ops.push(Operation::new("Tr", vec![if *bold { 2 } else { 0 }.into()]));
            ops.push(Operation::new("w", vec![Object::Real(if *bold { 0.35 } else { 0.0 })]));
            ops.push(Operation::new("Td", vec![72.into(), (*y).into()]));
            ops.push(Operation::new("Tj", vec![Object::String(encode(text), StringFormat::Hexadecimal)]));
            ops.push(Operation::new("ET", vec![]));
        }
        let content = Content { operations: ops }.encode().unwrap_or_default();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
        kids.push(page_id.into());
    }
    let Ok(subset) = subsetter::subset(FONT, 0, &glyphs) else {
        return text_pdf(&[title.to_owned()]);
    };
    let scale = |units: i32| i64::from(units) * 1000 / i64::from(face.units_per_em());
    let widths: Vec<Object> = glyphs
        .remapped_gids()
        .map(|old| scale(face.glyph_hor_advance(ttf_parser::GlyphId(old)).map_or(0, i32::from)).into())
        .collect();
    let name = "AAAAAA+DejaVuSans";
    let bbox = face.global_bounding_box();
    let file_id = doc.add_object(Stream::new(dictionary! { "Length1" => subset.len() as i64 }, subset));
    let descriptor = doc.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => Object::Name(name.into()),
        "Flags" => 32,
        "FontBBox" => vec![
            scale(bbox.x_min.into()).into(), scale(bbox.y_min.into()).into(),
            scale(bbox.x_max.into()).into(), scale(bbox.y_max.into()).into(),
        ],
        "ItalicAngle" => 0,
        "Ascent" => scale(face.ascender().into()),
        "Descent" => scale(face.descender().into()),
        "CapHeight" => scale(face.capital_height().unwrap_or(face.ascender()).into()),
        "StemV" => 80,
        "FontFile2" => file_id,
    });
    let cid_font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => Object::Name(name.into()),
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor,
        "W" => vec![0.into(), Object::Array(widths)],
        "CIDToGIDMap" => "Identity",
    });
    let to_unicode = doc.add_object(Stream::new(dictionary! {}, to_unicode_cmap(&unicode).into_bytes()));
    doc.objects.insert(
        font_id,
        Object::Dictionary(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => Object::Name(name.into()),
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![cid_font.into()],
            "ToUnicode" => to_unicode,
        }),
    );
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => total as i64,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    doc.compress();
    let mut out = Vec::new();
    if doc.save_to(&mut out).is_err() {
        return text_pdf(&[title.to_owned()]);
    }
    out
}

/// The ToUnicode CMap: which character each glyph code stands for (UTF-16BE, as PDF wants).
fn to_unicode_cmap(unicode: &std::collections::BTreeMap<u16, char>) -> String {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<(&u16, &char)> = unicode.iter().collect();
    for chunk in entries.chunks(100) {
        cmap.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for (code, c) in chunk {
            let utf16: String = c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("{u:04X}")).collect();
            cmap.push_str(&format!("<{code:04X}> <{utf16}>\n"));
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap
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

    /// The text of a PDF as a reader extracts it (poppler's `pdftotext`, which `scripts/test`
    /// installs): what the ToUnicode map says each glyph is.
    fn extracted(pdf: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("pdftotext")
            .args(["-layout", "-", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("pdftotext (poppler-utils)");
        child.stdin.take().unwrap().write_all(pdf).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "pdftotext read the PDF");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn latin_greek_and_cyrillic_text_prints_and_extracts_as_written() {
        let names =
            ["Café Müller – Prüfdienst GmbH", "Québec: Île d'Orléans", "Ελληνικές Επιθεωρήσεις", "Инспекция дома"];
        let findings: Vec<Value> = names
            .iter()
            .map(|n| json!({ "severity": "high", "title": format!("Fissure près de la cheminée ({n})"), "location": "Sous-sol" }))
            .collect();
        let payload = json!({ "title": "Rapport d'inspection", "address": "12 rue Saint-Jean, Québec", "company": names[0],
            "scheduled_local": "Thursday", "clients": [names[2], names[3]], "inspectors": ["Zoë Ångström"], "services": [],
            "summary": { "findings": 4, "high": 4 }, "findings_recorded": true, "findings": findings, "photos": [] });
        let pdf = pdf(&payload);
        let text = extracted(&pdf);
        for shown in names.iter().copied().chain([
            "12 rue Saint-Jean, Québec",
            "Zoë Ångström",
            "Sous-sol",
            "près de la cheminée",
        ]) {
            assert!(text.contains(shown), "{shown} in {text}");
        }
        assert!(pdf.len() < 120_000, "a subset of the font, not all of it: {} bytes", pdf.len());
    }

    #[test]
    fn long_lines_wrap_inside_the_page() {
        let face = face();
        let long = "Efflorescence and hairline cracking observed along the north foundation wall; ".repeat(6);
        for line in wrap(&long, COLUMN) {
            assert!(text_width(&face, &line, BODY_SIZE) <= COLUMN, "{line}");
        }
        assert!(wrap(&long, COLUMN).len() > 3);
    }

    #[test]
    fn long_reports_run_over_several_numbered_pages() {
        let findings: Vec<Value> = (0..80)
            .map(|i| json!({ "severity": "high", "title": format!("Finding number {i} with a long description that needs wrapping across more than one line of the page"), "location": "Basement", "status": "unresolved" }))
            .collect();
        let payload = json!({ "title": "Annual Fire Alarm Inspection Report", "address": "1 Main", "company": "Acme",
            "scheduled_local": "Thursday", "clients": ["C"], "inspectors": ["I"], "services": [], "summary": { "findings": 80 }, "findings_recorded": true,
            "findings": findings, "photos": ["https://photos.test/1.jpg"] });
        let pdf = pdf(&payload);
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let pages = doc.get_pages().len();
        assert!(pages >= 4, "{pages} pages");
        let text = extracted(&pdf);
        assert!(text.contains(&format!("page {pages} of {pages}")), "{text}");
        assert!(text.contains("Finding number 79") && text.contains("https://photos.test/1.jpg"));
    }

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
