//! Who the client is. The TCP peer, unless the peer is one of
//! `ROSTER_TRUSTED_PROXIES`: then the address that proxy reports in
//! `X-Forwarded-For` (or RFC 7239's `Forwarded`, as
//! `ROSTER_TRUSTED_PROXY_HEADER` says), read from the right past every
//! trusted proxy, since a client may put anything it likes at the left. A
//! header that does not parse is ignored whole, and the peer is the client.
//!
//! Limits count clients by network: an IPv4 address, or the /64 of an IPv6
//! address (what one host or one customer usually gets).
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which header a trusted proxy reports the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239)
    #[value(name = "forwarded")]
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// The proxies whose word on the client is taken, and how they give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all(self.header.name()) {
            hops.extend(value.as_bytes().split(|byte| *byte == b','));
        }
        // From the right, past every trusted proxy, to the first hop that is
        // not one: the client. What lies to its left the client wrote, and
        // is never read, so nothing there can make it someone else. A hop
        // that does not parse before that point makes the whole header
        // worthless: the peer is the client.
        let mut farthest = peer;
        for hop in hops.iter().rev() {
            let Ok(hop) = std::str::from_utf8(hop) else {
                return peer;
            };
            let address = match self.header {
                ForwardedHeader::XForwardedFor => Some(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            };
            let Some(address) = address.and_then(parse_node) else {
                return peer;
            };
            if !self.trusts(address) {
                return address;
            }
            farthest = address;
        }
        farthest
    }
}

/// The `for=` value of one element of a `Forwarded` header.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `192.0.2.7`, `2001:db8::7`, with a port
/// (`192.0.2.7:4711`, `[2001:db8::7]:4711`) or in brackets without one.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })
        .map(canonical)
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.7`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The network a client is counted under: its IPv4 address, or the /64 of
/// its IPv6 address (one host's usual allocation).
pub fn client_network(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// [`client_network`] as the limits store it: `203.0.113.7`, or
/// `2001:db8:1:2::/64`.
pub fn network_key(ip: IpAddr) -> String {
    match client_network(ip) {
        IpAddr::V6(network) => format!("{network}/64"),
        v4 => v4.to_string(),
    }
}

/// A `ROSTER_TRUSTED_PROXIES` entry: a network (`10.0.0.0/8`) or one
/// address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|network| network.trunc())
        .map_err(|_| "expected addresses or networks like 10.0.0.0/8 or 2001:db8::/32".to_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: ["10.0.0.0/8", "2001:db8:ffff::1"]
                .iter()
                .filter_map(|n| parse_network(n).ok())
                .collect(),
            header,
        }
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_networks() {
        assert_eq!(
            client_network(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(client_network(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(client_network(ip("10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(network_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            network_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(network_key(ip("2001:db8:1:3::1")), "2001:db8:1:3::/64");
        assert_eq!(network_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn a_trusted_proxy_is_believed_and_an_untrusted_peer_is_not() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        let forwarded = headers("x-forwarded-for", &["192.0.2.1"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &forwarded), ip("192.0.2.1"));
        assert_eq!(
            trusted.client(ip("198.51.100.9"), &forwarded),
            ip("198.51.100.9")
        );
        // No trusted proxies at all: the peer, whatever the header says.
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.2.3"), &forwarded),
            ip("10.1.2.3")
        );
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_chain_is_read_from_the_right_past_trusted_proxies() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        // The client claimed 1.1.1.1; the first proxy saw 192.0.2.1; the
        // second is trusted.
        let chain = headers("x-forwarded-for", &["1.1.1.1, 192.0.2.1", "10.0.0.2"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &chain), ip("192.0.2.1"));
        let all_trusted = headers("x-forwarded-for", &["10.0.0.5, 10.0.0.6"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &all_trusted), ip("10.0.0.5"));
        let with_ports = headers("x-forwarded-for", &["[2001:db8::7]:443, 192.0.2.1:80"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &with_ports), ip("192.0.2.1"));
        let mapped = headers("x-forwarded-for", &["::ffff:192.0.2.9"]);
        assert_eq!(
            trusted.client(ip("::ffff:10.1.2.3"), &mapped),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_itself_is_never_read() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        for header in [
            "garbage, 192.0.2.7",
            "unknown,192.0.2.7",
            "10.0.0.9, x, 192.0.2.7, 10.0.0.2",
        ] {
            let chain = headers("x-forwarded-for", &[header]);
            assert_eq!(
                trusted.client(ip("10.1.2.3"), &chain),
                ip("192.0.2.7"),
                "{header}"
            );
        }
        // Bytes that are no text, on the client's side of the chain, on its
        // own line or on the line the proxy appended to.
        for lines in [
            vec![&b"\xff\xfe"[..], b"192.0.2.7"],
            vec![b"\xff, 192.0.2.7"],
        ] {
            let mut chain = HeaderMap::new();
            for line in lines {
                if let Ok(value) = HeaderValue::from_bytes(line) {
                    chain.append("x-forwarded-for", value);
                }
            }
            assert_eq!(trusted.client(ip("10.1.2.3"), &chain), ip("192.0.2.7"));
        }
    }

    #[test]
    fn a_malformed_header_is_ignored_whole() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        for bad in [
            "192.0.2.1, not-an-address",
            "unknown",
            "",
            " , ",
            "192.0.2.1;for=1.1.1.1",
            "300.0.0.1",
        ] {
            let header = headers("x-forwarded-for", &[bad]);
            assert_eq!(
                trusted.client(ip("10.1.2.3"), &header),
                ip("10.1.2.3"),
                "{bad:?}"
            );
        }
        let mut binary = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(b"192.0.2.1\xff") {
            binary.insert("x-forwarded-for", value);
        }
        assert_eq!(trusted.client(ip("10.1.2.3"), &binary), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_is_read_when_configured_and_only_then() {
        let trusted = proxies(ForwardedHeader::Forwarded);
        let header = headers(
            "forwarded",
            &[r#"for=1.1.1.1, For="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#],
        );
        assert_eq!(
            trusted.client(ip("2001:db8:ffff::1"), &header),
            ip("2001:db8:cafe::17")
        );
        let malformed = headers("forwarded", &["proto=https"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &malformed), ip("10.1.2.3"));
        // What the client wrote left of itself is never read.
        let left = headers("forwarded", &["proto=https, for=192.0.2.8"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &left), ip("192.0.2.8"));
        // X-Forwarded-For is not read when Forwarded is the header.
        let other = headers("x-forwarded-for", &["192.0.2.1"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &other), ip("10.1.2.3"));
    }

    #[test]
    fn trusted_proxies_parse_networks_and_addresses() {
        assert_eq!(
            parse_network("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_network("10.1.2.3/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_network(" 192.0.2.1 ").map(|n| n.to_string()),
            Ok("192.0.2.1/32".into())
        );
        assert_eq!(
            parse_network("2001:db8::/32").map(|n| n.to_string()),
            Ok("2001:db8::/32".into())
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("proxy.example").is_err());
    }
}
