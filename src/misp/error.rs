//! Every way talking to MISP can fail, sorted into the documented kinds that error events carry
//! (`connect, tls, timeout, auth, not_found, rate_limited, server, protocol, config`), each with a
//! message that says what to do next.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// DNS, refused or reset connections.
    Connect,
    /// Handshake or certificate verification.
    Tls,
    /// No complete answer within the time allowed.
    Timeout,
    /// 401/403, or a redirect to MISP's login page.
    Auth,
    /// 404: wrong base URL or path prefix.
    NotFound,
    /// 429.
    RateLimited,
    /// 5xx.
    Server,
    /// An answer that is not MISP JSON: HTML, malformed, oversized, unexpected status.
    Protocol,
    /// Our own settings cannot be used (CA file, URL).
    Config,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Config => "config",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("MISP {}: {message}", kind.as_str())]
pub struct MispError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
    /// Seconds to wait, from a 429's `X-Rate-Limit-Reset`.
    pub retry_after: Option<u64>,
}

impl MispError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        MispError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}
