//! What MISP's TLS certificate looks like, for `doctor`: connect with rustls directly (ring
//! provider, no HTTP), record the chain the server presents, and judge it against the trust the
//! runtime uses (the bundled Mozilla roots, or `misp.ca_file`) and MISP's host name, without
//! letting a bad certificate stop us from reading it. The leaf's subject, issuer and validity
//! come from a minimal DER walk of its TBSCertificate (no X.509 crate for four fields).

use crate::civil::days_from_civil;
pub use crate::civil::format_utc;
use crate::settings::MispSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The parts of a certificate `doctor` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// `CN=…, O=…` (the attributes people recognise, in certificate order).
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// Why the chain does not verify against the configured trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustError {
    /// Not signed by a trusted root (self-signed, private CA, missing intermediate).
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// Valid, but not for the host name or IP address in misp.url.
    WrongName,
    /// misp.ca_file cannot be used.
    CaFile(String),
    Other(String),
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustError::UnknownIssuer => f.write_str("issued by a CA that is not trusted"),
            TrustError::Expired => f.write_str("expired"),
            TrustError::NotYetValid => f.write_str("not valid yet"),
            TrustError::WrongName => f.write_str("not valid for the host name in misp.url"),
            TrustError::CaFile(m) | TrustError::Other(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The server's own certificate; `None` if the server sent one we cannot read.
    pub leaf: Option<CertSummary>,
    /// Certificates the server sent, the leaf included.
    pub chain_len: usize,
    /// Verification against `trust` and the host name, as the runtime does it.
    pub verified: Result<(), TrustError>,
    /// "the bundled Mozilla roots" or "misp.ca_file <path>".
    pub trust: String,
    /// `TLSv1_3`, when the handshake finished.
    pub protocol: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("misp.url {0:?} is not an https:// URL")]
    NotHttps(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed before the server sent a certificate: {message}")]
    Handshake { addr: String, message: String },
}

/// Connects to `base_url` (https) and reports its certificate. `misp` gives the trust
/// (`ca_file`) and the connect timeout; `timeout` bounds the whole probe.
pub fn probe(
    base_url: &str,
    misp: &MispSettings,
    timeout: Duration,
) -> Result<TlsInfo, ProbeError> {
    let started = Instant::now();
    let (host, port) = host_port(base_url).ok_or_else(|| ProbeError::NotHttps(base_url.into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (roots, trust) = match &misp.ca_file {
        Some(path) => (load_roots(path), format!("misp.ca_file {}", path.display())),
        None => (
            Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
            "the bundled Mozilla roots".to_string(),
        ),
    };
    let inner = roots.and_then(|roots| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TrustError::CaFile(format!("misp.ca_file cannot be used: {e}")))
    });
    let recorder = Arc::new(Recorder {
        inner,
        provider: provider.clone(),
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Handshake {
            addr: host.clone(),
            message: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone()).map_err(|e| ProbeError::Resolve {
        host: host.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;

    let addr_text = format!("{host}:{port}");
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            host: host.clone(),
            source,
        })?
        .collect();
    let connect_timeout = Duration::from_millis(misp.connect_timeout_ms.max(1)).min(timeout);
    let mut last_err = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, connect_timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let mut tcp = tcp.ok_or(ProbeError::Connect {
        addr: addr_text.clone(),
        source: last_err,
    })?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    let _ = tcp.set_read_timeout(Some(left));
    let _ = tcp.set_write_timeout(Some(left));
    let _ = tcp.set_nodelay(true);

    let mut conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| ProbeError::Handshake {
            addr: addr_text.clone(),
            message: e.to_string(),
        })?;
    let mut handshake_error = None;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            handshake_error = Some(e.to_string());
            break;
        }
    }
    let protocol = (handshake_error.is_none())
        .then(|| conn.protocol_version().map(|v| format!("{v:?}")))
        .flatten();
    if handshake_error.is_none() {
        conn.send_close_notify();
        let _ = conn.complete_io(&mut tcp);
    }
    let seen = recorder
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some((chain, verified)) = seen else {
        return Err(ProbeError::Handshake {
            addr: addr_text,
            message: handshake_error.unwrap_or_else(|| "no certificate received".into()),
        });
    };
    Ok(TlsInfo {
        leaf: chain.first().and_then(|c| parse_certificate(c)),
        chain_len: chain.len(),
        verified,
        trust,
        protocol,
    })
}

/// `https://host[:port][/prefix]` gives the host (IPv6 without brackets) and the port.
fn host_port(base_url: &str) -> Option<(String, u16)> {
    let rest = base_url.trim().strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), 443),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TrustError> {
    let pem = std::fs::read(path).map_err(|e| {
        TrustError::CaFile(format!("cannot read misp.ca_file {}: {e}", path.display()))
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(TrustError::CaFile(format!(
            "misp.ca_file {} holds no usable PEM certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// Lets every handshake through, recording the chain and what the real verifier thinks of it.
#[derive(Debug)]
struct Recorder {
    inner: Result<Arc<WebPkiServerVerifier>, TrustError>,
    provider: Arc<CryptoProvider>,
    #[allow(clippy::type_complexity)]
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, Result<(), TrustError>)>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = match &self.inner {
            Ok(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(trust_error),
            Err(e) => Err(e.clone()),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((chain, verified));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn trust_error(e: rustls::Error) -> TrustError {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => TrustError::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TrustError::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TrustError::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TrustError::WrongName
            }
            other => TrustError::Other(format!("invalid certificate: {other:?}")),
        },
        other => TrustError::Other(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal DER reader: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
// OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name, validity SEQUENCE
// { notBefore Time, notAfter Time }, subject Name, … }, … }

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: (tag, contents, what follows). Definite lengths only, as DER requires.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = tlv(input)?;
    (t == tag).then_some((content, rest))
}

/// Subject, issuer and validity of a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Option<CertSummary> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, absent for v1.
    if let Some((0xa0, _, after)) = tlv(rest) {
        rest = after;
    }
    let (_, _serial, after) = tlv(rest)?;
    let (_alg, after) = expect(after, SEQUENCE)?;
    let (issuer, after) = expect(after, SEQUENCE)?;
    let (validity, after) = expect(after, SEQUENCE)?;
    let (subject, _) = expect(after, SEQUENCE)?;
    let (t1, nb, v) = tlv(validity)?;
    let (t2, na, _) = tlv(v)?;
    Some(CertSummary {
        subject: name_summary(subject),
        issuer: name_summary(issuer),
        not_before: parse_time(t1, nb)?,
        not_after: parse_time(t2, na)?,
    })
}

fn name_summary(mut name: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((SET, set, after)) = tlv(name) {
        name = after;
        let mut set = set;
        while let Some((atv, after)) = expect(set, SEQUENCE) {
            set = after;
            let Some((oid, value)) = expect(atv, OID) else {
                continue;
            };
            let Some((tag, text, _)) = tlv(value) else {
                continue;
            };
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
                _ => continue,
            };
            let text = if tag == 0x1e {
                // BMPString: UTF-16BE.
                let units: Vec<u16> = text
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                String::from_utf8_lossy(text).into_owned()
            };
            let text: String = text.chars().filter(|c| !c.is_control()).collect();
            parts.push(format!("{label}={text}"));
        }
    }
    if parts.is_empty() {
        "(empty)".into()
    } else {
        parts.join(", ")
    }
}

/// UTCTime `YYMMDDHHMM[SS]Z` (years 1950-2049) or GeneralizedTime `YYYYMMDDHHMMSS[.f]Z`.
fn parse_time(tag: u8, bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_suffix('Z')?;
    let digits = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy = digits(text.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (digits(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    let rest = rest.split('.').next()?;
    let month = digits(rest.get(0..2)?)?;
    let day = digits(rest.get(2..4)?)?;
    let hour = digits(rest.get(4..6)?)?;
    let minute = digits(rest.get(6..8)?)?;
    let second = match rest.get(8..10) {
        Some(s) => digits(s)?,
        None if rest.len() == 8 => 0,
        None => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20991231235959Z"),
            Some(4_102_444_799)
        );
        assert_eq!(parse_time(GENERALIZED_TIME, b"20991231235959"), None);
        assert_eq!(parse_time(UTC_TIME, b"991301000000Z"), None);
    }

    #[test]
    fn reads_an_rcgen_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["misp.example.org".into()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "misp.example.org");
        dn.push(rcgen::DnType::OrganizationName, "Example CERT");
        params.distinguished_name = dn;
        params.not_before = rcgen::date_time_ymd(2020, 1, 2);
        params.not_after = rcgen::date_time_ymd(2051, 3, 4);
        let cert = params.self_signed(&key).unwrap();
        let s = parse_certificate(cert.der()).unwrap();
        assert_eq!(s.subject, "CN=misp.example.org, O=Example CERT");
        assert_eq!(s.issuer, s.subject);
        assert_eq!(format_utc(s.not_before), "2020-01-02 00:00:00 UTC");
        // 2051 is past UTCTime's range: GeneralizedTime.
        assert_eq!(format_utc(s.not_after), "2051-03-04 00:00:00 UTC");
        assert_eq!(parse_certificate(&cert.der()[..40]), None);
    }

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            host_port("https://misp.test"),
            Some(("misp.test".into(), 443))
        );
        assert_eq!(
            host_port("https://127.0.0.1:8443/misp"),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(host_port("https://[::1]:9/"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://misp.test"), None);
        assert_eq!(host_port("https://:1"), None);
    }
}
