//! A small blocking MISP client on ureq + rustls (ring, bundled Mozilla roots or the configured
//! CA file; no OpenSSL, no async runtime: every alert is a fresh process, so start-up cost is
//! what matters). It sends MISP's required headers (`Authorization`, `Accept: application/json`,
//! `Content-Type` on POST), follows no redirects, caps the body, and maps every failure to a
//! [`MispError`] that never contains the key.

use super::error::{ErrorKind, MispError};
use super::transport::{CoalescingConnector, LiteralFirstResolver};
use crate::settings::{ApiKey, MispSettings};
use serde_json::Value;
use std::io::ErrorKind as IoKind;
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::{Connector, DefaultConnector};

/// The largest answer we read. A lookup asks for at most `lookup.limit` attributes, which is far
/// below this; anything larger is a misbehaving server or proxy.
pub const MAX_BODY_BYTES: u64 = 8 << 20;
const USER_AGENT: &str = concat!("wazuh-misp/", env!("CARGO_PKG_VERSION"));

pub struct MispClient {
    agent: ureq::Agent,
    base_url: String,
    api_key: ApiKey,
    body_limit: u64,
}

/// A successful (2xx) answer.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl MispClient {
    /// `total` bounds each request from connect to the last body byte.
    pub fn new(
        base_url: &str,
        api_key: ApiKey,
        misp: &MispSettings,
        total: Duration,
    ) -> Result<MispClient, MispError> {
        let roots = match &misp.ca_file {
            Some(path) => RootCerts::new_with_certs(&load_ca_file(path)?),
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(!misp.verify_tls)
            .build();
        let connect = Duration::from_millis(misp.connect_timeout_ms).min(total);
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .no_delay(true)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(connect))
            .timeout_global(Some(total))
            // ureq's 128 KiB defaults cost page faults in a process that lives for one request;
            // the input buffer still holds the largest response head MISP sends.
            .input_buffer_size(64 * 1024)
            .output_buffer_size(16 * 1024)
            .build();
        let connector = DefaultConnector::new().chain(CoalescingConnector);
        let agent = ureq::Agent::with_parts(config, connector, LiteralFirstResolver::default());
        Ok(MispClient {
            agent,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            body_limit: MAX_BODY_BYTES,
        })
    }

    /// A larger cap for bulk reads (the mirror's sync pages), which are not one alert's answer.
    pub fn with_body_limit(mut self, bytes: u64) -> MispClient {
        self.body_limit = bytes;
        self
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Answer, MispError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            MispError::new(ErrorKind::Config, format!("cannot encode request: {e}"))
        })?;
        let result = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("Authorization", self.api_key.expose())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(&bytes[..]);
        self.finish(path, result)
    }

    pub fn get_json(&self, path: &str) -> Result<Answer, MispError> {
        let result = self
            .agent
            .get(format!("{}{path}", self.base_url))
            .header("Authorization", self.api_key.expose())
            .header("Accept", "application/json")
            .call();
        self.finish(path, result)
    }

    fn finish(
        &self,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, MispError> {
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let reset = header("x-rate-limit-reset").and_then(|v| v.trim().parse::<u64>().ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(self.body_limit)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&status) {
            return Ok(Answer { status, body });
        }
        let detail = describe_body(&body);
        let err = match status {
            300..=399 => {
                let to = location.unwrap_or_default();
                let kind = if to.contains("/users/login") {
                    ErrorKind::Auth
                } else {
                    ErrorKind::Protocol
                };
                MispError::new(
                    kind,
                    format!("{path} redirected to {to:?} (a login page means the key or the Accept header was not taken; otherwise check misp.url, e.g. http:// vs https://)"),
                )
            }
            401 | 403 => MispError::new(
                ErrorKind::Auth,
                format!("{path} refused the API key (HTTP {status}: {detail}): check that the key is valid, not expired, and that its user may use the API"),
            ),
            404 => MispError::new(
                ErrorKind::NotFound,
                format!("{path} not found (HTTP 404: {detail}): check misp.url, including any path prefix"),
            ),
            429 => {
                let mut e = MispError::new(
                    ErrorKind::RateLimited,
                    format!("MISP rate limit reached (HTTP 429{}): lower the alert volume or raise the role's rate limit",
                        reset.map(|r| format!(", resets in {r} s")).unwrap_or_default()),
                );
                e.retry_after = reset;
                e
            }
            500..=599 => MispError::new(
                ErrorKind::Server,
                format!("MISP failed on {path} (HTTP {status}: {detail})"),
            ),
            _ => MispError::new(
                ErrorKind::Protocol,
                format!("unexpected HTTP {status} on {path}: {detail}"),
            ),
        };
        Err(self.scrub(err.with_status(status)))
    }

    fn transport_error(&self, e: ureq::Error) -> MispError {
        use ureq::Error as E;
        let host = &self.base_url;
        let err = match &e {
            E::Timeout(phase) => MispError::new(
                ErrorKind::Timeout,
                format!("no complete answer from {host} in time ({phase})"),
            ),
            E::HostNotFound => MispError::new(
                ErrorKind::Connect,
                format!("cannot resolve the host of {host}"),
            ),
            E::ConnectionFailed => {
                MispError::new(ErrorKind::Connect, format!("cannot connect to {host}"))
            }
            E::BodyExceedsLimit(_) => MispError::new(
                ErrorKind::Protocol,
                format!(
                    "answer from {host} is larger than {} bytes",
                    self.body_limit
                ),
            ),
            E::Rustls(tls) => tls_error(host, tls),
            E::Tls(msg) => MispError::new(ErrorKind::Tls, format!("TLS with {host} failed: {msg}")),
            E::Io(io) => io_error(host, io),
            E::TooManyRedirects | E::RedirectFailed => {
                MispError::new(ErrorKind::Protocol, format!("{host} keeps redirecting"))
            }
            E::BadUri(_) | E::Http(_) => MispError::new(
                ErrorKind::Config,
                format!("misp.url {host} is not usable: {e}"),
            ),
            other => MispError::new(
                ErrorKind::Protocol,
                format!("talking to {host} failed: {other}"),
            ),
        };
        self.scrub(err)
    }

    /// Defence in depth: nothing MISP or a proxy echoes back may carry our key out.
    fn scrub(&self, mut err: MispError) -> MispError {
        let key = self.api_key.expose();
        if !key.is_empty() && err.message.contains(key) {
            err.message = err.message.replace(key, "****");
        }
        err
    }
}

fn io_error(host: &str, io: &std::io::Error) -> MispError {
    let inner_tls = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(tls) = inner_tls {
        return tls_error(host, tls);
    }
    let kind = match io.kind() {
        IoKind::TimedOut | IoKind::WouldBlock => ErrorKind::Timeout,
        IoKind::InvalidData => ErrorKind::Protocol,
        _ => ErrorKind::Connect,
    };
    let what = match kind {
        ErrorKind::Timeout => "timed out",
        ErrorKind::Protocol => "sent an invalid answer",
        _ => "connection failed",
    };
    MispError::new(kind, format!("{host}: {what}: {io}"))
}

fn tls_error(host: &str, e: &rustls::Error) -> MispError {
    let hint = match e {
        rustls::Error::InvalidCertificate(_) => {
            ": if MISP uses a private or self-signed certificate, set misp.ca_file to its CA bundle (PEM)"
        }
        _ => "",
    };
    MispError::new(ErrorKind::Tls, format!("TLS with {host} failed: {e}{hint}"))
}

fn load_ca_file(path: &std::path::Path) -> Result<Vec<Certificate<'static>>, MispError> {
    let config = |msg: String| MispError::new(ErrorKind::Config, msg);
    let pem = std::fs::read(path)
        .map_err(|e| config(format!("cannot read misp.ca_file {}: {e}", path.display())))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(config(format!(
            "misp.ca_file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// A short, printable summary of an error body: MISP's JSON `message`/`name`, or an HTML title.
fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let trimmed = text.trim_start();
    let summary = if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        ["message", "name", "errors"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "JSON without a message".into())
    } else if trimmed.starts_with('<') {
        let lower = trimmed.to_ascii_lowercase();
        match (lower.find("<title>"), lower.find("</title>")) {
            (Some(a), Some(b)) if b > a + 7 => {
                format!("an HTML page titled {:?}", trimmed[a + 7..b].trim())
            }
            _ => "an HTML page".into(),
        }
    } else if trimmed.is_empty() {
        "empty body".into()
    } else {
        trimmed.to_string()
    };
    summary
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::describe_body;

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            describe_body(br#"{"name":"Authentication failed.","message":"Authentication failed. Please make sure","url":"/x"}"#),
            "Authentication failed. Please make sure"
        );
        assert_eq!(
            describe_body(b"<html><head><TITLE> 502 Bad Gateway </title></head></html>"),
            "an HTML page titled \"502 Bad Gateway\""
        );
        assert_eq!(describe_body(b""), "empty body");
        assert_eq!(describe_body(&[b'x'; 1000]).len(), 200);
    }
}
