//! Sending a file to a presigned S3 POST (`{"method": "POST", "url", "fields"}`) as a browser
//! form would: the fields first, then the `file` part. Used by the demo seed, the tests and the
//! benchmark.

/// POSTs `bytes` as `content_type`; returns the status S3 answered.
pub async fn post_file(
    http: &reqwest::Client,
    upload: &serde_json::Value,
    bytes: &[u8],
    content_type: &str,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let boundary = format!("----portal{}", ulid::Ulid::new());
    let mut body: Vec<u8> = Vec::with_capacity(bytes.len() + 2048);
    let fields = upload["fields"].as_object().cloned().unwrap_or_default();
    for (name, value) in &fields {
        let value = if name == "Content-Type" { content_type } else { value.as_str().unwrap_or_default() };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.pdf\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = upload["url"].as_str().unwrap_or_default();
    let resp = http
        .post(url)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await?;
    Ok(resp.status())
}
