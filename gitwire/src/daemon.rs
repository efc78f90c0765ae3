//! The git:// transport (`git daemon`, port 9418): one TCP connection to an address the caller
//! checked (a name is never resolved here), protocol v2 asked for in the first packet, then
//! commands on the same connection. Blocking; run it off async threads.
//!
//! Every read is bounded in time ([`Limits::stall`]: a server that sends nothing that long is
//! stalled), the whole exchange too ([`Limits::total`]), and so are the bytes received
//! ([`Limits::max_bytes`]: a server that never stops sending is cut off).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::pktline::Decoder;
use crate::v2::{
    Capabilities, FetchEvent, FetchRequest, FetchResponse, ProtocolError, RemoteRef, fetch_request,
    git_daemon_request, ls_refs_request, read_ls_refs,
};

/// Bounds on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connecting.
    pub connect: Duration,
    /// The longest silence from the server.
    pub stall: Duration,
    /// The whole exchange.
    pub total: Duration,
    /// Bytes received in all.
    pub max_bytes: u64,
    /// The low-speed rule git's clones obey here too: fewer than `.0` bytes a second over any
    /// `.1` stops the exchange (a server dripping a byte at a time).
    pub min_rate: Option<(u64, Duration)>,
}

/// Counts what arrives against [`Limits::min_rate`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateWindow {
    started: Instant,
    bytes: u64,
}

impl RateWindow {
    pub(crate) fn new() -> Self {
        RateWindow {
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Records `n` bytes; an error once a whole window passed below the rate.
    pub(crate) fn record(&mut self, n: usize, limits: &Limits) -> Result<(), WireError> {
        self.bytes += n as u64;
        let Some((rate, window)) = limits.min_rate else {
            return Ok(());
        };
        let elapsed = self.started.elapsed();
        if elapsed >= window {
            if self.bytes < rate.saturating_mul(window.as_secs().max(1)) {
                return Err(WireError::Timeout("the server sends too slowly"));
            }
            *self = RateWindow::new();
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_secs(10),
            stall: Duration::from_secs(30),
            total: Duration::from_secs(600),
            max_bytes: 2 << 30,
            min_rate: None,
        }
    }
}

/// Why an exchange failed, in the classes GitVista reports git's failures in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The server could not be reached, or the connection broke.
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
    /// The server sent nothing for [`Limits::stall`], or the exchange passed [`Limits::total`].
    #[error("the server took too long ({0})")]
    Timeout(&'static str),
    /// The server sent more than [`Limits::max_bytes`].
    #[error("the server sent more than {0} bytes")]
    TooLarge(u64),
    /// The server broke the protocol or reported an error.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// An HTTP server answered with this error status (401 and 403: a sign-in is needed;
    /// 404: no such repository).
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// The caller's handler refused an event (its own limits).
    #[error("{0}")]
    Refused(String),
}

/// A protocol v2 connection to a `git daemon`.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    dec: Decoder,
    caps: Capabilities,
    limits: Limits,
    started: Instant,
    received: u64,
    rate: RateWindow,
}

impl Connection {
    /// Connects to `addr` (already checked by the caller), asks for the repository at `path`
    /// on virtual host `host`, and reads the capability advertisement.
    pub fn open(
        addr: SocketAddr,
        host: &str,
        path: &str,
        limits: Limits,
    ) -> Result<Self, WireError> {
        let stream = TcpStream::connect_timeout(&addr, limits.connect)
            .map_err(|e| WireError::Unreachable(e.to_string()))?;
        stream
            .set_read_timeout(Some(limits.stall))
            .and_then(|()| stream.set_write_timeout(Some(limits.stall)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| WireError::Unreachable(e.to_string()))?;
        let mut c = Connection {
            stream,
            dec: Decoder::new(),
            caps: Capabilities::default(),
            limits,
            started: Instant::now(),
            received: 0,
            rate: RateWindow::new(),
        };
        c.send(&git_daemon_request(path, host))?;
        let mut caps = Capabilities::default();
        while !caps.read(&mut c.dec)? {
            c.fill()?;
        }
        c.caps = caps;
        Ok(c)
    }

    /// What the server offers.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.stream
            .write_all(bytes)
            .map_err(|e| WireError::Unreachable(e.to_string()))
    }

    /// Reads what the server sends next into the decoder.
    fn fill(&mut self) -> Result<(), WireError> {
        let Some(left) = self.limits.total.checked_sub(self.started.elapsed()) else {
            return Err(WireError::Timeout("the whole exchange"));
        };
        // No read outlasts the whole exchange's limit.
        let wait = self.limits.stall.min(left).max(Duration::from_millis(1));
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(|e| WireError::Unreachable(e.to_string()))?;
        let mut buf = [0u8; 65536];
        let n = match self.stream.read(&mut buf) {
            Ok(0) => {
                return Err(WireError::Protocol(ProtocolError::Ended("server's answer")));
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if self.started.elapsed() >= self.limits.total {
                    return Err(WireError::Timeout("the whole exchange"));
                }
                return Err(WireError::Timeout("no data from the server"));
            }
            Err(e) => return Err(WireError::Unreachable(e.to_string())),
        };
        self.received += n as u64;
        self.rate.record(n, &self.limits)?;
        if self.received > self.limits.max_bytes {
            return Err(WireError::TooLarge(self.limits.max_bytes));
        }
        self.dec.push(&buf[..n]);
        Ok(())
    }

    /// The refs under `prefixes` (all when empty), with symrefs and peeled tags.
    pub fn ls_refs(&mut self, prefixes: &[&str]) -> Result<Vec<RemoteRef>, WireError> {
        let hash = self.caps.object_format()?;
        let req = ls_refs_request(&self.caps, prefixes);
        self.send(&req)?;
        let mut refs = Vec::new();
        while read_ls_refs(&mut self.dec, hash, &mut refs)?.is_none() {
            self.fill()?;
        }
        Ok(refs)
    }

    /// Runs `req`, handing every event of the response to `on_event` as it arrives (the pack
    /// in pieces; an `Err` from the handler stops the exchange).
    pub fn fetch(
        &mut self,
        req: &FetchRequest,
        mut on_event: impl FnMut(FetchEvent) -> Result<(), String>,
    ) -> Result<(), WireError> {
        let body = fetch_request(&self.caps, req)?;
        self.send(&body)?;
        let mut response = FetchResponse::new();
        loop {
            match response.next_event(&mut self.dec)? {
                Some(FetchEvent::End) => return Ok(()),
                Some(e) => on_event(e).map_err(WireError::Refused)?,
                None => self.fill()?,
            }
        }
    }
}
