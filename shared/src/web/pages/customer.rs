//! The customer portal of a building contact (`/c/{token}`): their buildings, published documents
//! and open deficiencies.

use maud::html;

use super::layout;

/// The customer portal: the contact's buildings, their documents (opened through the gate), and
/// the open deficiencies' first page when visible. `base` is the page's path (`/c/<token>`).
pub fn customer(
    v: &crate::usecases::customer_portal::CustomerView,
    deficiencies: &[serde_json::Value],
    base: Option<&str>,
) -> String {
    let building_name = |d: &serde_json::Value| {
        v.buildings
            .iter()
            .find(|b| Some(b.id.to_string().as_str()) == d["building_id"].as_str())
            .map(|b| b.name.as_str())
            .unwrap_or("")
    };
    let text = |d: &serde_json::Value, k: &str| d[k].as_str().unwrap_or("").to_owned();
    let main = html! {
        @if base.is_none() { div.notice { "Staff preview: exactly what this contact sees. Read-only." } }
        @for b in &v.buildings {
            section {
                h2 { (b.name) }
                p.muted { (b.address) }
                @if b.documents.is_empty() {
                    p.muted { "No published documents yet." }
                } @else {
                    table {
                        tr { th scope="col" { "Document" } th scope="col" { "Open" } }
                        @for d in &b.documents {
                            tr {
                                td { (d.title) }
                                td { @if let Some(base) = base { a.button href={ (base) "/documents/" (d.document_id) } { "View" } } }
                            }
                        }
                    }
                }
            }
        }
        @if v.deficiencies_visible {
            section {
                h2 { "Open deficiencies" }
                @if deficiencies.is_empty() {
                    p.muted { "None." }
                } @else {
                    table {
                        tr { th scope="col" { "Building" } th scope="col" { "Severity" } th scope="col" { "Description" } th scope="col" { "Location" } }
                        @for d in deficiencies {
                            tr {
                                td { (building_name(d)) }
                                td { (text(d, "severity")) }
                                td { (text(d, "description")) }
                                td { (text(d, "location")) }
                            }
                        }
                    }
                }
            }
        }
    };
    let name = v.contact["name"].as_str().unwrap_or("");
    let company = v.company["name"].as_str().unwrap_or("");
    let title = format!("{company} \u{2014} customer portal");
    layout(&super::Chrome::of(&v.brand), &title, company, &format!("Customer portal of {name}"), None, main)
}
