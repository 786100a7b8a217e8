//! Where a webhook is delivered, and which addresses roster will not call.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest webhook URL accepted.
pub const URL_MAX_LENGTH: usize = 2048;

/// An `http` or `https` URL with a host, no credentials and no fragment;
/// when private targets are not allowed, not a private, loopback or
/// link-local address nor `localhost`. (A name that resolves to such an
/// address is refused when it is called: see [`is_public`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

/// The refusal of a private target.
pub const PRIVATE_TARGET: &str = "Private, loopback and link-local addresses are refused \
     (ROSTER_WEBHOOK_ALLOW_PRIVATE_TARGETS).";

fn too_long() -> Vec<String> {
    vec![format!(
        "Ensure this field has no more than {URL_MAX_LENGTH} characters."
    )]
}

impl WebhookUrl {
    pub fn parse(text: &str, allow_private: bool) -> Result<Self, Vec<String>> {
        let text = text.trim();
        if text.len() > URL_MAX_LENGTH {
            return Err(too_long());
        }
        let invalid = || vec!["Enter a valid http or https URL.".to_owned()];
        let url = Url::parse(text).map_err(|_| invalid())?;
        let credentials = !url.username().is_empty() || url.password().is_some();
        if !matches!(url.scheme(), "http" | "https") || credentials || url.fragment().is_some() {
            return Err(invalid());
        }
        let public = match url.host() {
            None => return Err(invalid()),
            Some(Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.');
                name != "localhost" && !name.ends_with(".localhost")
            }
        };
        if !public && !allow_private {
            return Err(vec![PRIVATE_TARGET.to_owned()]);
        }
        // Parsing escapes what it must: the stored form is what must fit.
        if url.as_str().len() > URL_MAX_LENGTH {
            return Err(too_long());
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Whether `ip` is an address on the public internet: not loopback,
/// private, link-local, shared (carrier NAT), unspecified, broadcast,
/// multicast, documentation or reserved, nor an IPv6 form of such an IPv4
/// address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // NAT64 and 6to4 carry an IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return is_public_v4(embedded(high, low)),
        [0x2002, high, low, ..] => return is_public_v4(embedded(high, low)),
        // IPv4-compatible (deprecated) addresses.
        [0, 0, 0, 0, 0, 0, high, low] => return is_public_v4(embedded(high, low)),
        _ => {}
    }
    let first = segments[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || (first == 0x2001 && segments[1] == 0x0db8)
        // Teredo (an IPv4 address, obfuscated) and local-use NAT64.
        || (first == 0x2001 && segments[1] == 0)
        || (first == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        || first == 0x0100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::7f00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
        ] {
            assert!(
                !is_public(private.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{private}"
            );
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(
                is_public(public.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{public}"
            );
        }
    }

    #[test]
    fn webhook_urls_are_checked() {
        let refused = |text: &str| WebhookUrl::parse(text, false).err();
        assert_eq!(
            WebhookUrl::parse(" https://hooks.example.com/in ", false)
                .map(|u| u.as_str().to_owned()),
            Ok("https://hooks.example.com/in".to_owned())
        );
        for private in [
            "http://127.0.0.1:9/",
            "http://[::1]/",
            "http://localhost/",
            "http://a.localhost./",
            "http://169.254.169.254/latest",
            "http://0x7f.1/",
        ] {
            assert_eq!(
                refused(private),
                Some(vec![PRIVATE_TARGET.to_owned()]),
                "{private}"
            );
            assert!(WebhookUrl::parse(private, true).is_ok(), "{private}");
        }
        for invalid in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#x",
            "/relative",
            "https://",
            "",
        ] {
            assert_eq!(
                refused(invalid),
                Some(vec!["Enter a valid http or https URL.".to_owned()]),
                "{invalid}"
            );
        }
        assert!(
            refused(&format!(
                "https://example.com/{}",
                "a".repeat(URL_MAX_LENGTH)
            ))
            .is_some()
        );
        // Short as typed, long once escaped.
        let escaped = format!("https://example.com/{}", "é".repeat(1_000));
        assert!(escaped.len() < URL_MAX_LENGTH);
        assert_eq!(refused(&escaped), Some(too_long()));
    }
}
