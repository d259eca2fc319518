//! Injected failures: the public [`Fault`] enum and the per-request planning that turns the
//! current fault into what to do with one request (including the `FailFirst` countdown).

use std::time::Duration;

/// A failure to inject, set with [`crate::MispDouble::set_fault`]. It applies to each request
/// received after the call (whatever its path), until another fault is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Normal MISP behaviour.
    #[default]
    None,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Read the request and never answer; the connection is closed when the double is dropped.
    Hang,
    /// Send the status line and headers (`200`, `Content-Length: 1000`), then nothing until the
    /// double is dropped.
    HangAfterHeaders,
    /// The normal answer, but its body is written one byte per interval.
    SlowBody(Duration),
    /// Any canned answer (with `Content-Length`; the connection stays usable).
    Status {
        /// HTTP status code.
        status: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// Body.
        body: String,
    },
    /// `200` with a `text/html` MISP-login-like page (what a proxy or a session redirect gives).
    Html,
    /// `500` with an HTML PHP "Maximum execution time exceeded" page.
    ServerErrorHtml,
    /// `200 application/json` with a body of exactly this many bytes: the start of a valid-looking
    /// restSearch answer, then padding inside a never-closed string. Streamed in chunks.
    Huge(usize),
    /// Read the request, then close the TCP connection with RST (`SO_LINGER` 0).
    Reset,
    /// `302` with `Location:` the same path (and query), forever.
    RedirectLoop,
    /// `429` with `X-Rate-Limit-Limit`/`-Remaining`/`-Reset` headers and MISP's JSON body.
    RateLimited {
        /// Value of `X-Rate-Limit-Reset` (seconds until the window resets).
        reset_secs: u64,
    },
    /// The next N requests get `500` JSON `{"name":"Internal error",...}`, then normal answers.
    FailFirst(usize),
}

/// What to do with one request, decided when it is received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Answer normally.
    Normal,
    /// Apply this fault (never `None` or `FailFirst`).
    Fault(Fault),
    /// This request is one of the `FailFirst` failures.
    FailThis,
}

/// Decides the plan for the next request and advances a `FailFirst` countdown.
pub(crate) fn plan(current: &mut Fault) -> Plan {
    match current {
        Fault::None => Plan::Normal,
        Fault::FailFirst(n) => {
            if *n > 0 {
                *n -= 1;
                Plan::FailThis
            } else {
                Plan::Normal
            }
        }
        other => Plan::Fault(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_first_counts_down() {
        let mut f = Fault::FailFirst(2);
        assert_eq!(plan(&mut f), Plan::FailThis);
        assert_eq!(plan(&mut f), Plan::FailThis);
        assert_eq!(plan(&mut f), Plan::Normal);
        assert_eq!(plan(&mut f), Plan::Normal);
        assert_eq!(f, Fault::FailFirst(0));
    }

    #[test]
    fn other_faults_repeat() {
        let mut f = Fault::Hang;
        assert_eq!(plan(&mut f), Plan::Fault(Fault::Hang));
        assert_eq!(plan(&mut f), Plan::Fault(Fault::Hang));
        let mut n = Fault::None;
        assert_eq!(plan(&mut n), Plan::Normal);
    }
}
