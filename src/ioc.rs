//! Indicators of compromise: their kinds, how each kind is normalised the way MISP stores it, which
//! values are worth a lookup at all (global IPs, real domains, well-formed hashes), and allowlists.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an indicator is, and therefore which MISP attribute types can answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IocKind {
    Ip,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
}

impl IocKind {
    pub const ALL: [IocKind; 6] = [
        IocKind::Ip,
        IocKind::Domain,
        IocKind::Url,
        IocKind::Md5,
        IocKind::Sha1,
        IocKind::Sha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IocKind::Ip => "ip",
            IocKind::Domain => "domain",
            IocKind::Url => "url",
            IocKind::Md5 => "md5",
            IocKind::Sha1 => "sha1",
            IocKind::Sha256 => "sha256",
        }
    }

    /// The MISP attribute types searched for this kind. MISP compares a value with both halves of
    /// composite attributes, so the type list is what keeps an IP from matching, say, a filename.
    pub fn misp_types(self) -> &'static [&'static str] {
        match self {
            IocKind::Ip => &[
                "ip-src",
                "ip-dst",
                "ip-src|port",
                "ip-dst|port",
                "domain|ip",
            ],
            IocKind::Domain => &["domain", "hostname", "domain|ip", "hostname|port"],
            IocKind::Url => &["url", "uri"],
            IocKind::Md5 => &["md5", "filename|md5", "malware-sample"],
            IocKind::Sha1 => &["sha1", "filename|sha1"],
            IocKind::Sha256 => &["sha256", "filename|sha256"],
        }
    }

    fn hash_len(self) -> Option<usize> {
        match self {
            IocKind::Md5 => Some(32),
            IocKind::Sha1 => Some(40),
            IocKind::Sha256 => Some(64),
            _ => None,
        }
    }
}

impl fmt::Display for IocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a normalised value of an enabled kind is never looked up. Alerts (extraction) and the
/// mirror (sync) apply the same test, so the mirror holds exactly what online mode could match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// Starts or ends with `%`, which MISP would read as a LIKE pattern.
    Wildcard,
    NotGlobal,
    Allowlisted,
}

pub fn exclusion(
    kind: IocKind,
    value: &str,
    cidrs: &[Cidr],
    domains: &[String],
) -> Option<Exclusion> {
    if value.starts_with('%') || value.ends_with('%') {
        return Some(Exclusion::Wildcard);
    }
    match kind {
        IocKind::Ip => {
            let ip = parse_ip(value)?;
            if !is_global(ip) {
                return Some(Exclusion::NotGlobal);
            }
            cidrs
                .iter()
                .any(|c| c.contains(ip))
                .then_some(Exclusion::Allowlisted)
        }
        IocKind::Domain => domains
            .iter()
            .any(|d| domain_allowed(value, d))
            .then_some(Exclusion::Allowlisted),
        _ => None,
    }
}

/// One normalised value to look up, with the alert field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: IocKind,
    pub value: String,
    pub field: String,
}

/// Parses an IP the way alerts write them (`[v6]`, surrounding blanks, IPv4-mapped IPv6) and
/// returns its canonical form: IPv4 dotted quad or compressed IPv6 (RFC 5952, as `Display` does).
pub fn parse_ip(raw: &str) -> Option<IpAddr> {
    let s = raw.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    // A zone index (`fe80::1%eth0`) only ever belongs to a link-local address.
    let s = s.split('%').next().unwrap_or(s);
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// True for addresses that can be someone else's host on the Internet. Private, loopback,
/// link-local, CGNAT, documentation, benchmarking, multicast and reserved ranges are never worth a
/// MISP lookup (and would leak internal topology to it).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Only global unicast (2000::/3) is routable; carve out the special blocks inside it.
    // 2001::/23 IETF protocol assignments (Teredo, ...) and 2001:db8::/32 documentation.
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || s[0] == 0x2002 // 6to4 relays: the embedded IPv4 is what matters
        || (s[0] == 0x3fff && s[1] < 0x1000); // 3fff::/20 documentation
    (s[0] & 0xe000) == 0x2000 && !special
}

/// Lower-cases a host name and strips one trailing dot (MISP stores them that way), and accepts it
/// only if it looks like a public DNS name: at least two labels, sane characters, no IP literal,
/// no local-only suffix.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 || parse_ip(s).is_some() {
        return None;
    }
    let s = s.to_ascii_lowercase();
    let mut labels = 0;
    for label in s.split('.') {
        labels += 1;
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80);
        if !valid {
            return None;
        }
    }
    const LOCAL_SUFFIXES: [&str; 6] = [
        ".local",
        ".localdomain",
        ".internal",
        ".lan",
        ".arpa",
        ".localhost",
    ];
    if labels < 2 || LOCAL_SUFFIXES.iter().any(|sfx| s.ends_with(sfx)) {
        return None;
    }
    Some(s)
}

/// What an absolute URL points at, so that its host can be looked up too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    Domain(String),
    Ip(IpAddr),
}

/// Accepts absolute URLs only (a bare path such as `/index.php` is no indicator) and returns the
/// URL trimmed, plus its host.
pub fn normalize_url(raw: &str) -> Option<(String, Option<UrlHost>)> {
    let s = raw.trim();
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        || rest.is_empty()
        || s.len() > 8192
        || s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = match parse_ip(host) {
        Some(ip) => Some(UrlHost::Ip(ip)),
        None => normalize_domain(host).map(UrlHost::Domain),
    };
    Some((s.to_string(), host))
}

/// Lower-case hex of exactly the length the kind requires; all-zero placeholders are dropped.
pub fn normalize_hash(raw: &str, kind: IocKind) -> Option<String> {
    let s = raw.trim();
    let len = kind.hash_len()?;
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) || s.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// The hash kind a bare hex digest of this length must be.
pub fn hash_kind_by_len(raw: &str) -> Option<IocKind> {
    match raw.trim().len() {
        32 => Some(IocKind::Md5),
        40 => Some(IocKind::Sha1),
        64 => Some(IocKind::Sha256),
        _ => None,
    }
}

/// Normalises a value already known to be of `kind`; `None` when it is not a valid one.
/// URLs are returned without their host (see [`normalize_url`]).
pub fn normalize(raw: &str, kind: IocKind) -> Option<String> {
    match kind {
        IocKind::Ip => parse_ip(raw).map(|ip| ip.to_string()),
        IocKind::Domain => normalize_domain(raw),
        IocKind::Url => normalize_url(raw).map(|(u, _)| u),
        IocKind::Md5 | IocKind::Sha1 | IocKind::Sha256 => normalize_hash(raw, kind),
    }
}

/// An IP network written `addr/prefix` (or a single address) in an allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..full] != ip[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        (net[full] & mask) == (ip[full] & mask)
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let bad =
            || format!("{s:?} is not an IP network (write it as 192.0.2.0/24 or 2001:db8::/32)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr = parse_ip(addr).ok_or_else(bad)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.addr, c.prefix)
    }
}

/// True when `domain` is `allowed` itself or one of its subdomains.
pub fn domain_allowed(domain: &str, allowed: &str) -> bool {
    let allowed = allowed.trim_end_matches('.');
    domain.eq_ignore_ascii_case(allowed)
        || (domain.len() > allowed.len()
            && domain.as_bytes()[domain.len() - allowed.len() - 1] == b'.'
            && domain[domain.len() - allowed.len()..].eq_ignore_ascii_case(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_canonicalised_and_unmapped() {
        assert_eq!(
            parse_ip("::ffff:185.220.101.47").unwrap().to_string(),
            "185.220.101.47"
        );
        assert_eq!(
            parse_ip(" 2A0D:5600:0024:0000:0000:0000:0000:ABCD ")
                .unwrap()
                .to_string(),
            "2a0d:5600:24::abcd"
        );
        assert_eq!(
            parse_ip("[2001:4860::8888]").unwrap().to_string(),
            "2001:4860::8888"
        );
        assert!(parse_ip("999.1.1.1").is_none());
        assert!(parse_ip("example.com").is_none());
    }

    #[test]
    fn only_global_ips_are_worth_a_lookup() {
        for private in [
            "10.1.2.3",
            "127.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.5",
            "100.64.1.1",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.251",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "3fff:fff::1",
        ] {
            assert!(
                !is_global(parse_ip(private).unwrap()),
                "{private} is not global"
            );
        }
        for public in [
            "185.220.101.47",
            "8.8.8.8",
            "172.32.0.1",
            "2a0d:5600:24::abcd",
            "2606:4700::1111",
            "3ff0::1",
        ] {
            assert!(is_global(parse_ip(public).unwrap()), "{public} is global");
        }
    }

    #[test]
    fn domains_are_lowercased_and_local_names_dropped() {
        assert_eq!(
            normalize_domain("Malware-Drop.RU.").unwrap(),
            "malware-drop.ru"
        );
        assert!(normalize_domain("wpad").is_none());
        assert!(normalize_domain("desktop-01.corp.local").is_none());
        assert!(normalize_domain("1.0.0.127.in-addr.arpa").is_none());
        assert!(normalize_domain("10.0.0.1").is_none());
        assert!(normalize_domain("bad domain.com").is_none());
        assert!(normalize_domain("%evil.com").is_none());
        assert!(normalize_domain("a..b").is_none());
    }

    #[test]
    fn urls_need_a_scheme_and_give_their_host() {
        let (u, h) = normalize_url("http://Malware-Drop.ru:8080/payload.exe?x=1").unwrap();
        assert_eq!(u, "http://Malware-Drop.ru:8080/payload.exe?x=1");
        assert_eq!(h, Some(UrlHost::Domain("malware-drop.ru".into())));
        let (_, h) = normalize_url("https://user@[2a0d:5600:24::abcd]:443/").unwrap();
        assert_eq!(h, Some(UrlHost::Ip("2a0d:5600:24::abcd".parse().unwrap())));
        assert!(normalize_url("/index.php").is_none());
        assert!(normalize_url("http://").is_none());
        assert!(normalize_url("http://a b/").is_none());
    }

    #[test]
    fn hashes_need_the_exact_length_and_hex() {
        assert_eq!(
            normalize_hash("44D88612FEA8A8F36DE82E1278ABB02F", IocKind::Md5).unwrap(),
            "44d88612fea8a8f36de82e1278abb02f"
        );
        assert!(normalize_hash("44D88612FEA8A8F36DE82E1278ABB02", IocKind::Md5).is_none());
        assert!(normalize_hash("zzd88612fea8a8f36de82e1278abb02f", IocKind::Md5).is_none());
        assert!(normalize_hash(&"0".repeat(64), IocKind::Sha256).is_none());
        assert!(normalize_hash("-", IocKind::Sha1).is_none());
        assert_eq!(hash_kind_by_len(&"a".repeat(40)), Some(IocKind::Sha1));
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c = Cidr::try_from("185.220.100.0/22".to_string()).unwrap();
        assert!(c.contains("185.220.101.47".parse().unwrap()));
        assert!(!c.contains("185.220.104.1".parse().unwrap()));
        let one = Cidr::try_from("8.8.8.8".to_string()).unwrap();
        assert!(one.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::try_from("2a0d:5600::/29".to_string()).unwrap();
        assert!(v6.contains("2a0d:5600:24::abcd".parse().unwrap()));
        assert!(!v6.contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::try_from("10.0.0.0/33".to_string()).is_err());
        assert!(Cidr::try_from("ten".to_string()).is_err());
    }

    #[test]
    fn allowlisted_domains_cover_subdomains_only() {
        assert!(domain_allowed("update.microsoft.com", "microsoft.com"));
        assert!(domain_allowed("microsoft.com", "Microsoft.com."));
        assert!(!domain_allowed("evilmicrosoft.com", "microsoft.com"));
    }
}
