//! Where outbound webhooks may be delivered: on AWS `https://` to public addresses only; on a
//! laptop also `http://` to the loopback test receivers. Checked when staff save an endpoint and
//! again, on the resolved address, at every delivery.

use std::net::IpAddr;

/// Where deliveries may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// AWS: `https://` only, public addresses only.
    Cloud,
    /// A laptop: also `http://127.0.0.1` / `http://localhost` (the test receivers).
    Local,
}

impl Targets {
    pub fn for_base_url(public_base_url: &str) -> Targets {
        if public_base_url.starts_with("http://127.0.0.1") || public_base_url.starts_with("http://localhost") {
            Targets::Local
        } else {
            Targets::Cloud
        }
    }

    /// Checks an endpoint URL's shape (when staff save it): scheme, a host, no credentials.
    pub fn check_url(self, url: &str) -> Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|_| "not a URL".to_owned())?;
        let host = parsed.host_str().ok_or("the URL has no host")?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the URL may not carry credentials".into());
        }
        match (parsed.scheme(), self) {
            ("https", _) => {}
            ("http", Targets::Local) if is_loopback_name(host) => return Ok(()),
            _ => return Err("webhook URLs must use https://".into()),
        }
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            if !(is_public(ip) || self == Targets::Local && ip.is_loopback()) {
                return Err("webhook URLs may not point at private, loopback or link-local addresses".into());
            }
        }
        Ok(())
    }
}

fn is_loopback_name(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Whether an address is on the public internet (not private, loopback, link-local, shared,
/// documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_targets_are_https_and_public_in_the_cloud() {
        let cloud = Targets::Cloud;
        assert!(cloud.check_url("https://hooks.example.com/portal").is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://10.0.0.5/x",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://user:pw@hooks.example.com/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert!(cloud.check_url(bad).is_err(), "{bad}");
        }
        assert!(Targets::Local.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(Targets::Local.check_url("http://192.168.1.5/hook").is_err());
        assert_eq!(Targets::for_base_url("http://127.0.0.1:3000"), Targets::Local);
        assert_eq!(Targets::for_base_url("https://portal.example.com"), Targets::Cloud);
        for ip in ["100.64.0.1", "192.168.0.1", "172.16.3.4", "0.0.0.0", "::ffff:10.0.0.1", "fe80::1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()) && is_public("2606:4700::1111".parse().unwrap()));
    }
}
