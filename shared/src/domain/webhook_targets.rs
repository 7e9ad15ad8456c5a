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

    /// Checks an endpoint URL's shape (when staff save it, and at each delivery): scheme, a host,
    /// no credentials, port 443 or one of `ports` (the company's `webhook_ports`).
    pub fn check_url(self, url: &str, ports: &[u16]) -> Result<(), String> {
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
        // The standard port only (or one the company allows): an endpoint is a web server, not
        // any service a public address happens to run. (Only the local test receivers, above,
        // are exempt.)
        if parsed.port().is_some_and(|p| p != 443 && !ports.contains(&p)) {
            return Err(
                "webhook URLs use port 443 (leave the port out), or a port the company's webhook_ports setting allows"
                    .into(),
            );
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
/// documentation, multicast, reserved or unspecified). IPv6 transition addresses that carry an
/// IPv4 address inside (NAT64, 6to4, Teredo, IPv4-compatible) are refused as a whole: what they
/// reach is decided by a gateway, not by the address we checked.
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
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
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
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1)) // NAT64
                || s[0] == 0x2002 // 6to4
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (::a.b.c.d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_targets_are_https_and_public_in_the_cloud() {
        let cloud = Targets::Cloud;
        assert!(cloud.check_url("https://hooks.example.com/portal", &[]).is_ok());
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
            assert!(cloud.check_url(bad, &[]).is_err(), "{bad}");
        }
        assert!(Targets::Local.check_url("http://127.0.0.1:9000/hook", &[]).is_ok());
        assert!(Targets::Local.check_url("http://192.168.1.5/hook", &[]).is_err());
        assert_eq!(Targets::for_base_url("http://127.0.0.1:3000"), Targets::Local);
        assert_eq!(Targets::for_base_url("https://portal.example.com"), Targets::Cloud);
        for ip in ["100.64.0.1", "192.168.0.1", "172.16.3.4", "0.0.0.0", "::ffff:10.0.0.1", "fe80::1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()) && is_public("2606:4700::1111".parse().unwrap()));
    }

    #[test]
    fn addresses_that_tunnel_to_ipv4_and_reserved_ranges_are_not_public() {
        for ip in [
            "64:ff9b::a00:1",                       // NAT64 of 10.0.0.1
            "64:ff9b::5db8:d822",                   // NAT64 of a public address: a gateway decides, refused too
            "64:ff9b:1::a00:1",                     // local-use NAT64
            "2002:a00:1::1",                        // 6to4 of 10.0.0.1
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "::a00:1",                              // IPv4-compatible 10.0.0.1
            "::5db8:d822",                          // IPv4-compatible, even of a public address
            "fec0::1",                              // site-local
            "192.0.0.8",                            // IETF protocol assignments
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
            let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
            assert!(Targets::Cloud.check_url(&format!("https://{host}/hook"), &[]).is_err(), "{ip}");
        }
        assert!(is_public("2a00:1450:4001::200e".parse().unwrap()), "an ordinary public IPv6 address");
        assert!(is_public("2001:4860:4860::8888".parse().unwrap()), "2001::/16 outside Teredo's /32 is public");
    }

    #[test]
    fn cloud_endpoints_use_the_standard_port() {
        assert!(Targets::Cloud.check_url("https://hooks.example.com:443/x", &[]).is_ok());
        for url in
            ["https://hooks.example.com:8443/x", "https://hooks.example.com:22/", "https://hooks.example.com:6379/"]
        {
            let err = Targets::Cloud.check_url(url, &[]).unwrap_err();
            assert!(err.contains("443"), "{url}: {err}");
        }
        assert!(Targets::Local.check_url("http://127.0.0.1:41234/hook", &[]).is_ok(), "the local test receivers");
        // A company that allows 8443 may use it; nothing else opens.
        assert!(Targets::Cloud.check_url("https://hooks.example.com:8443/x", &[8443]).is_ok());
        assert!(Targets::Cloud.check_url("https://hooks.example.com:6379/x", &[8443]).is_err());
    }
}
