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
        "photos": inspection.cover_photo.as_ref().or(inspection.cover_photo_url.as_ref()).into_iter().collect::<Vec<_>>(),
    })
}

/// Lines of a report, each with its style.
enum Line {
    Title(String),
    Heading(String),
    Text(String),
    Gap,
    /// A photo (its index in the report's images), shown `w` × `h` points, `x` from the left.
    Image {
        index: usize,
        w: f32,
        h: f32,
        x: f32,
    },
}

/// A photo ready to embed: a JPEG as it is (PDF readers decode it), or any PNG decoded to 8-bit
/// gray or RGB pixels (transparency laid on white).
pub struct Photo {
    width: u32,
    height: u32,
    colors: u8,
    data: PhotoData,
}

enum PhotoData {
    Jpeg(Vec<u8>),
    Pixels(Vec<u8>),
}

impl Photo {
    /// A JPEG or PNG from its bytes (by content, not by name); why not otherwise.
    pub fn decode(bytes: Vec<u8>) -> Result<Photo, String> {
        if bytes.starts_with(&[0xFF, 0xD8]) {
            let (width, height, colors) = jpeg_size(&bytes).ok_or("not a JPEG we can read")?;
            if colors != 1 && colors != 3 {
                return Err("a CMYK JPEG (save it as RGB)".into());
            }
            return Ok(Photo { width, height, colors, data: PhotoData::Jpeg(bytes) });
        }
        if bytes.starts_with(b"\x89PNG") {
            return png_pixels(&bytes);
        }
        Err("neither a JPEG nor a PNG".into())
    }

    /// The size it is shown at: as wide as half the column at most, at most 220 points tall,
    /// never enlarged beyond one point per pixel.
    fn shown(&self) -> (f32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = (COLUMN * 0.6 / w).min(220.0 / h).min(1.0);
        (w * scale, h * scale)
    }
}

/// Width, height and components of a JPEG, from its first start-of-frame marker.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32, u8)> {
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]]));
            let width = u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]]));
            return (width > 0 && height > 0).then_some((width, height, b[i + 9]));
        }
        i += 2 + len;
    }
    None
}

/// A PNG decoded to 8-bit gray or RGB (alpha composited on white).
fn png_pixels(bytes: &[u8]) -> Result<Photo, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG we can read: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("a PNG too large to read")?];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("not a PNG we can read: {e}"))?;
    let pixels = &buf[..info.buffer_size()];
    let on_white = |c: u8, a: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
    let (colors, data): (u8, Vec<u8>) = match info.color_type {
        png::ColorType::Grayscale => (1, pixels.to_vec()),
        png::ColorType::GrayscaleAlpha => (1, pixels.chunks_exact(2).map(|p| on_white(p[0], p[1])).collect()),
        png::ColorType::Rgb => (3, pixels.to_vec()),
        png::ColorType::Rgba => (
            3,
            pixels
                .chunks_exact(4)
                .flat_map(|p| [on_white(p[0], p[3]), on_white(p[1], p[3]), on_white(p[2], p[3])])
                .collect(),
        ),
        png::ColorType::Indexed => return Err("an indexed PNG the decoder did not expand".into()),
    };
    Ok(Photo { width: info.width, height: info.height, colors, data: PhotoData::Pixels(data) })
}

/// The photos a payload names that are stored with the inspection (keys under its prefix), in
/// order, without repeats: what the renderer may embed. (Photos given as `https://` addresses
/// are listed, never fetched: the renderer calls nobody's server.)
pub fn stored_photo_keys(payload: &Value, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let findings = payload["findings"].as_array().into_iter().flatten();
    let all = findings
        .flat_map(|f| f["photos"].as_array().cloned().unwrap_or_default())
        .chain(payload["photos"].as_array().cloned().unwrap_or_default());
    for p in all {
        if let Some(k) = p.as_str().filter(|k| k.starts_with(prefix)) {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_owned());
            }
        }
    }
    keys
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
/// severity, one section per service, and every finding with its photos (those in `photos`,
/// by key, embedded; any other listed); as many US Letter pages as it takes, numbered.
pub fn pdf(payload: &Value, photos: &std::collections::HashMap<String, Photo>) -> Vec<u8> {
    // Each photo embedded once, however often it is shown.
    let mut images: Vec<&Photo> = Vec::new();
    let mut index_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut photo_lines = |lines: &mut Vec<Line>, p: &str, indent: &str| match photos.get_key_value(p) {
        Some((key, photo)) => {
            let (w, h) = photo.shown();
            let index = *index_of.entry(key.as_str()).or_insert_with(|| {
                images.push(photo);
                images.len() - 1
            });
            lines.push(Line::Image { index, w, h, x: if indent.is_empty() { 72.0 } else { 90.0 } });
        }
        None => {
            for l in wrap(&format!("Photo: {p}"), COLUMN - 24.0) {
                lines.push(Line::Text(format!("{indent}{l}")));
            }
        }
    };
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
            photo_lines(&mut lines, &s(p), "    ");
        }
    }
    let cover = payload["photos"].as_array().cloned().unwrap_or_default();
    if !cover.is_empty() {
        lines.push(Line::Gap);
        lines.push(Line::Heading("Photos".into()));
        for p in cover {
            photo_lines(&mut lines, &s(&p), "");
        }
    }
    paged_pdf(&lines, &images, &s(&payload["title"]))
}

/// A photo on a page: (image index, x, y of its lower edge, width, height).
type Placed = (usize, f32, i64, f32, f32);

/// Lays lines out on pages (a page break when one is full) and writes the PDF with lopdf.
fn paged_pdf(lines: &[Line], images: &[&Photo], title: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{dictionary, Document, Object, Stream, StringFormat};
    const TOP: i64 = 740;
    const BOTTOM: i64 = 72;
    // (bold, size, y, text) per page, and (image, y, w, h) per page.
    let mut pages: Vec<Vec<(bool, i64, i64, String)>> = vec![Vec::new()];
    let mut placed: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = TOP;
    for line in lines {
        let (bold, size, step, text) = match line {
            Line::Title(t) => (true, 20, 30, t.clone()),
            Line::Heading(t) => (true, 14, 22, t.clone()),
            Line::Text(t) => (false, 10, 14, t.clone()),
            Line::Gap => (false, 10, 10, String::new()),
            Line::Image { h, .. } => (false, 0, h.ceil() as i64 + 8, String::new()),
        };
        if y - step < BOTTOM {
            pages.push(Vec::new());
            placed.push(Vec::new());
            y = TOP;
        }
        y -= step;
        match line {
            Line::Image { index, w, h, x } => placed.last_mut().expect("a page").push((*index, *x, y + 4, *w, *h)),
            _ => pages.last_mut().expect("a page").push((bold, size, y, text)),
        }
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
    // Each photo once, as an image XObject (`/Im<n>`).
    let mut xobjects = lopdf::Dictionary::new();
    for (n, photo) in images.iter().enumerate() {
        let mut dict = dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => i64::from(photo.width),
            "Height" => i64::from(photo.height),
            "ColorSpace" => if photo.colors == 1 { "DeviceGray" } else { "DeviceRGB" },
            "BitsPerComponent" => 8,
        };
        let stream = match &photo.data {
            PhotoData::Jpeg(bytes) => {
                dict.set("Filter", "DCTDecode");
                // Already compressed: kept as it is.
                Stream::new(dict, bytes.clone()).with_compression(false)
            }
            PhotoData::Pixels(pixels) => Stream::new(dict, pixels.clone()),
        };
        xobjects.set(format!("Im{n}"), doc.add_object(stream));
    }
    let mut kids: Vec<Object> = Vec::new();
    for (page, shown) in pages.iter().zip(&placed) {
        let mut ops = Vec::new();
        for (index, x, y, w, h) in shown {
            ops.push(Operation::new("q", vec![]));
            let m = [Object::Real(*w), 0.into(), 0.into(), Object::Real(*h), Object::Real(*x), (*y).into()];
            ops.push(Operation::new("cm", m.to_vec()));
            ops.push(Operation::new("Do", vec![Object::Name(format!("Im{index}").into_bytes())]));
            ops.push(Operation::new("Q", vec![]));
        }
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
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id }, "XObject" => xobjects });
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
        let pdf = pdf(&payload, &Default::default());
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

    /// A JPEG of `w` × `h` (a gradient), as a camera would hand it over.
    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let pixels: Vec<u8> =
            (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, 120])).collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 85).encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    /// A PNG of `w` × `h` with transparency.
    fn png_rgba(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(png::ColorType::Rgba);
        e.set_depth(png::BitDepth::Eight);
        let pixels: Vec<u8> = (0..w * h).flat_map(|i| [200, (i % 255) as u8, 30, (i % 200) as u8]).collect();
        e.write_header().unwrap().write_image_data(&pixels).unwrap();
        out
    }

    #[test]
    fn stored_photos_are_embedded_as_images_scaled_to_the_page_and_others_listed() {
        let prefix = "companies/c/inspections/i/";
        let (big, small, hosted) =
            (format!("{prefix}photos/a.jpg"), format!("{prefix}photos/b.png"), "https://photos.test/c.jpg");
        let findings = json!([{ "severity": "high", "title": "Cracked flue", "photos": [big, small, hosted] }]);
        let payload = json!({ "title": "Report", "address": "1 Main", "company": "Acme", "scheduled_local": "Thursday",
            "clients": [], "inspectors": [], "services": [], "summary": { "findings": 1 }, "findings_recorded": true,
            "findings": findings, "photos": [big] });
        assert_eq!(stored_photo_keys(&payload, prefix), vec![big.clone(), small.clone()], "stored ones, once each");
        let photos = std::collections::HashMap::from([
            (big.clone(), Photo::decode(jpeg(1600, 1200)).unwrap()),
            (small.clone(), Photo::decode(png_rgba(40, 30)).unwrap()),
        ]);
        let out = pdf(&payload, &photos);
        let doc = lopdf::Document::load_mem(&out).unwrap();
        let mut images: Vec<(i64, i64, String)> = doc
            .objects
            .values()
            .filter_map(|o| o.as_stream().ok())
            .filter(|s| s.dict.get(b"Subtype").and_then(|v| v.as_name()).ok() == Some(b"Image".as_slice()))
            .map(|s| {
                let n = |k: &[u8]| s.dict.get(k).and_then(|v| v.as_i64()).unwrap();
                let filter =
                    s.dict.get(b"Filter").and_then(|v| v.as_name()).map(|f| String::from_utf8_lossy(f).into_owned());
                (n(b"Width"), n(b"Height"), filter.unwrap_or_default())
            })
            .collect();
        images.sort();
        // The JPEG as it came (once, though shown twice); the PNG decoded and deflated.
        assert_eq!(images, vec![(40, 30, "FlateDecode".into()), (1600, 1200, "DCTDecode".into())]);
        let text = extracted(&out);
        assert!(text.contains("Photo: https://photos.test/c.jpg"), "a hosted photo is listed: {text}");
        assert!(!text.contains("photos/a.jpg") && !text.contains("photos/b.png"), "stored ones are shown, not named");
        // Shown within the column, not at 1600 points.
        let (w, h) = Photo::decode(jpeg(1600, 1200)).unwrap().shown();
        assert!(w <= COLUMN * 0.6 + 0.01 && h <= 220.0 && (w / h - 4.0 / 3.0).abs() < 0.01, "{w} x {h}");
        assert_eq!(Photo::decode(png_rgba(40, 30)).unwrap().shown(), (40.0, 30.0), "never enlarged");
        assert!(Photo::decode(b"GIF89a....".to_vec()).is_err());
        assert!(Photo::decode(vec![0xFF, 0xD8, 0xFF]).is_err(), "a truncated JPEG");
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
        let pdf = pdf(&payload, &Default::default());
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
