//! Two small adjustments to ureq's connection handling for a process that makes one request and
//! exits (both use ureq's `unversioned` API, hence the `~3.5` pin in Cargo.toml):
//! - the request head and body leave in one write (one TLS record, one TCP segment for a normal
//!   lookup) instead of two, by holding output until ureq first waits for the answer;
//! - an IP-literal MISP URL is used as is, where ureq's resolver would start a thread to bound a
//!   DNS lookup that cannot happen.

use std::net::{IpAddr, SocketAddr};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};
use ureq::Error;

/// Wraps the outermost transport (TLS when there is one) so writes are coalesced.
#[derive(Debug, Default)]
pub struct CoalescingConnector;

impl Connector<Box<dyn Transport>> for CoalescingConnector {
    type Out = Coalescing;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|inner| Coalescing {
            inner,
            pending: Vec::new(),
        }))
    }
}

#[derive(Debug)]
pub struct Coalescing {
    inner: Box<dyn Transport>,
    pending: Vec<u8>,
}

impl Coalescing {
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        let mut sent = 0;
        while sent < self.pending.len() {
            let out = self.inner.buffers().output();
            let n = out.len().min(self.pending.len() - sent);
            out[..n].copy_from_slice(&self.pending[sent..sent + n]);
            self.inner.transmit_output(n, timeout)?;
            sent += n;
        }
        self.pending.clear();
        Ok(())
    }
}

impl Transport for Coalescing {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, _timeout: NextTimeout) -> Result<(), Error> {
        let out = self.inner.buffers().output();
        self.pending.extend_from_slice(&out[..amount]);
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Resolves IP literals directly and everything else with ureq's own (time-bounded) resolver.
#[derive(Debug, Default)]
pub struct LiteralFirstResolver(DefaultResolver);

impl Resolver for LiteralFirstResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        let literal = uri.authority().and_then(|a| {
            let host = a.host().trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = host.parse().ok()?;
            let port = a.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })?;
            Some(SocketAddr::new(ip, port))
        });
        match literal {
            Some(addr) => {
                let mut out = self.empty();
                out.push(addr);
                Ok(out)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}
