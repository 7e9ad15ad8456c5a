//! Demo data for `scripts/dev`, created through the public HTTP API exactly as an integrator
//! would: a company, its settings, and an inspection with a client, a buyer's agent and an
//! inspector who is a staff user (and so gets no link).

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Demo {
    pub company_id: String,
    pub staff_api_key: String,
    pub inspection_id: String,
    pub client_link: String,
    pub agent_link: String,
    /// The seller's agent: order details only.
    pub listing_agent_link: String,
    pub share_link: String,
    /// The published inspection report (locked until paid and signed).
    pub report_id: String,
    /// A building contact's customer portal.
    pub contact_link: String,
}

#[derive(Debug, thiserror::Error)]
#[error("seeding demo data: {0}")]
pub struct SeedError(String);

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Value,
) -> Result<Value, SeedError> {
    let resp =
        http.request(method, &url).bearer_auth(key).json(&body).send().await.map_err(|e| SeedError(e.to_string()))?;
    let status = resp.status();
    let value: Value = resp.json().await.map_err(|e| SeedError(e.to_string()))?;
    if !status.is_success() {
        return Err(SeedError(format!("{url} answered {status}: {value}")));
    }
    Ok(value)
}

pub async fn seed(base: &str, admin_key: &str) -> Result<Demo, SeedError> {
    let http = reqwest::Client::new();
    let company = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/admin/companies"),
        admin_key,
        json!({ "name": "Lakeside Home Inspections", "staff_emails": ["ivan@lakeside-inspections.test"] }),
    )
    .await?;
    let key = company["staff_api_key"].as_str().unwrap_or_default().to_owned();
    call(
        &http,
        reqwest::Method::PATCH,
        format!("{base}/staff/settings"),
        &key,
        json!({
            "payments": "native",
            "customer_portal_enabled": true,
            "recommended_contractors_enabled": true,
            "recommended_contractors": [{ "name": "Northside Roofing", "trade": "Roofing", "phone": "555-0142" }],
            "contact": { "phone": "555-0100", "email": "office@lakeside-inspections.test", "website": "https://lakeside-inspections.test" },
            "sender_name": "Lakeside Home Inspections",
            "time_zone": "America/Chicago",
            "accent_color": "#1f5f8b",
            "addon_catalog": [
                { "name": "Radon test", "description": "48-hour continuous radon monitoring", "price_cents": 15000 },
                { "name": "Sewer scope", "description": "Camera inspection of the main sewer line", "price_cents": 20000 }
            ],
            "special_offers": [{ "partner": "HomeShield", "title": "1-year home warranty", "description": "Covers major systems and appliances", "partner_email": "quotes@homeshield.test" }]
        }),
    )
    .await?;
    let scheduled =
        portal_shared::foundation::clock::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(3));
    let inspection = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/staff/inspections"),
        &key,
        json!({
            "address": "1428 Elm Street, Springfield",
            "scheduled_at": scheduled,
            "services": [{ "name": "Residential Inspection", "description": "Full home inspection", "price_cents": 45000 }],
            "people": [
                { "role": "client", "name": "Jane Homebuyer", "email": "jane@example.com" },
                { "role": "buyer_agent", "name": "Bob Realtor", "email": "bob@realty.test" },
                { "role": "listing_agent", "name": "Lena Lister", "email": "lena@sellers-realty.test" },
                { "role": "inspector", "name": "Ivan Inspector", "email": "ivan@lakeside-inspections.test" }
            ]
        }),
    )
    .await?;
    let link = |role: &str| {
        inspection["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["role"] == role)
            .and_then(|l| l["url"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let inspection_id = inspection["inspection_id"].as_str().unwrap_or_default();
    let company_id = company["company_id"].as_str().unwrap_or_default().to_owned();
    let doc = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/staff/inspections/{inspection_id}/documents"),
        &key,
        json!({ "kind": "inspection_report", "title": "Inspection report", "template_name": "Residential Inspection" }),
    )
    .await?;
    let report_id = doc["document_id"].as_str().unwrap_or_default().to_owned();
    let pdf = demo_pdf("Residential Inspection Report - 1428 Elm Street, Springfield");
    let status = crate::uploads::post_file(&http, &doc["upload"], &pdf, "application/pdf")
        .await
        .map_err(|e| SeedError(e.to_string()))?;
    if !status.is_success() {
        return Err(SeedError(format!("uploading the demo PDF answered {status}")));
    }
    for step in ["uploaded", "publish"] {
        call(&http, reqwest::Method::POST, format!("{base}/staff/documents/{report_id}/{step}"), &key, json!({}))
            .await?;
    }
    let contact_link = seed_customer(&http, base, admin_key, &company_id, &key).await?;
    Ok(Demo {
        contact_link,
        report_id,
        company_id: company["company_id"].as_str().unwrap_or_default().to_owned(),
        staff_api_key: key,
        inspection_id: inspection["inspection_id"].as_str().unwrap_or_default().to_owned(),
        client_link: link("client"),
        agent_link: link("buyer_agent"),
        listing_agent_link: link("listing_agent"),
        share_link: inspection["share_url"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Uploads `pdf` as a new document of the inspection and publishes it; returns its id.
async fn publish_pdf(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    inspection: &str,
    doc: Value,
    pdf: Vec<u8>,
) -> Result<String, SeedError> {
    let d =
        call(http, reqwest::Method::POST, format!("{base}/staff/inspections/{inspection}/documents"), key, doc).await?;
    let id = d["document_id"].as_str().unwrap_or_default().to_owned();
    let status = crate::uploads::post_file(http, &d["upload"], &pdf, "application/pdf")
        .await
        .map_err(|e| SeedError(e.to_string()))?;
    if !status.is_success() {
        return Err(SeedError(format!("uploading a demo PDF answered {status}")));
    }
    for step in ["uploaded", "publish"] {
        call(http, reqwest::Method::POST, format!("{base}/staff/documents/{id}/{step}"), key, json!({})).await?;
    }
    Ok(id)
}

/// Commercial demo: two buildings, an inspection with a published fire-alarm report and its
/// deficiencies, and a facilities contact invited to the customer portal. Returns their link.
async fn seed_customer(
    http: &reqwest::Client,
    base: &str,
    admin_key: &str,
    company: &str,
    key: &str,
) -> Result<String, SeedError> {
    call(
        http,
        reqwest::Method::PATCH,
        format!("{base}/admin/companies/{company}"),
        admin_key,
        json!({ "deficiency_visibility": true }),
    )
    .await?;
    let mut buildings = Vec::new();
    for (name, address) in [("Harbor Tower", "100 Harbor Way"), ("Mill Street Offices", "22 Mill Street")] {
        let b = call(
            http,
            reqwest::Method::POST,
            format!("{base}/staff/buildings"),
            key,
            json!({ "name": name, "address": address }),
        )
        .await?;
        buildings.push(b["id"].as_str().unwrap_or_default().to_owned());
    }
    let when = portal_shared::foundation::clock::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::days(7));
    let i = call(http, reqwest::Method::POST, format!("{base}/staff/buildings/{}/inspections", buildings[0]), key,
        json!({ "address": "100 Harbor Way", "scheduled_at": when, "services": [{ "name": "Annual fire alarm inspection", "price_cents": 90000 }] })).await?;
    let inspection = i["inspection_id"].as_str().unwrap_or_default();
    let report = publish_pdf(
        http,
        base,
        key,
        inspection,
        json!({ "kind": "inspection_report", "title": "Fire alarm", "template_name": "Annual Fire Alarm Inspection" }),
        demo_pdf("Annual Fire Alarm Inspection Report - Harbor Tower"),
    )
    .await?;
    for (text, severity, location) in [
        ("Pull station obstructed by storage", "high", "Level 2, east stair"),
        ("Smoke detector past its replacement date", "medium", "Level 5 corridor"),
        ("Strobe not synchronized", "low", "Lobby"),
    ] {
        call(
            http,
            reqwest::Method::POST,
            format!("{base}/staff/buildings/{}/deficiencies", buildings[0]),
            key,
            json!({ "report_id": report, "description": text, "severity": severity, "location": location }),
        )
        .await?;
    }
    let contact = call(
        http,
        reqwest::Method::POST,
        format!("{base}/staff/contacts"),
        key,
        json!({
        "name": "Fran Facilities", "email": "fran@harbor-tower.test",
        "permissions": { "inspection_reports": true, "invoices": true }, "building_ids": buildings }),
    )
    .await?;
    let id = contact["contact_id"].as_str().unwrap_or_default();
    // The invitation goes through the outbox (its link is made when the job sends it, and only
    // the email carries it); the link printed for the demo is one staff issue by hand.
    call(http, reqwest::Method::POST, format!("{base}/staff/contacts/{id}/invite"), key, json!({})).await?;
    let link = call(http, reqwest::Method::POST, format!("{base}/staff/contacts/{id}/token"), key, json!({})).await?;
    Ok(link["url"].as_str().unwrap_or_default().to_owned())
}

/// A small, valid one-page PDF showing `title`.
pub fn demo_pdf(title: &str) -> Vec<u8> {
    portal_shared::adapters::pdf::text_pdf(&[title.to_owned()])
}
