//! Who is asking: the address a request came from, reduced to what one client controls, and the
//! per-client budgets a server keeps (hosting's [`ClientKey`], [`RateLimiter`] and [`Gauge`]).
//!
//! The address is the socket's peer unless a [`TrustedProxy`] is configured
//! (`GITVISTA_TRUSTED_PROXY`) and the peer is one of its addresses: then it is the address the
//! proxy wrote into its header (`Fly-Client-IP`, or the right-most untrusted entry of
//! `X-Forwarded-For`).

use std::net::IpAddr;

use actix_web::HttpRequest;
pub use gitvista_hosting::client::{ClientKey, Gauge, Held, MAX_BUCKETS, RateLimiter};
use ipnet::IpNet;

/// A proxy whose header names the client: `HEADER` (trusted from any peer: only for servers
/// reachable through the proxy alone, such as Fly's `Fly-Client-IP`) or `HEADER@NET,NET...`
/// (trusted only from peers in those networks, e.g. `X-Forwarded-For@10.0.0.0/8,fdaa::/16`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    /// The header, lowercased.
    header: String,
    /// Peers whose header is believed; empty: every peer.
    from: Vec<IpNet>,
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (header, from) = match s.trim().split_once('@') {
            Some((h, nets)) => (h.trim(), Some(nets)),
            None => (s.trim(), None),
        };
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "GITVISTA_TRUSTED_PROXY: {header:?} is not a header name (e.g. Fly-Client-IP or X-Forwarded-For@10.0.0.0/8)"
            ));
        }
        let mut nets = Vec::new();
        for n in from.iter().flat_map(|f| f.split(',')).map(str::trim) {
            if n.is_empty() {
                continue;
            }
            let net = n
                .parse::<IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("GITVISTA_TRUSTED_PROXY: {n:?} is not an address or network")
                })?;
            nets.push(net);
        }
        if from.is_some() && nets.is_empty() {
            return Err("GITVISTA_TRUSTED_PROXY: no proxy addresses after '@'".into());
        }
        Ok(TrustedProxy {
            header: header.to_ascii_lowercase(),
            from: nets,
        })
    }
}

impl TrustedProxy {
    fn trusts(&self, peer: IpAddr) -> bool {
        self.from.is_empty() || self.from.iter().any(|n| n.contains(&peer))
    }

    fn listed(&self, addr: IpAddr) -> bool {
        self.from.iter().any(|n| n.contains(&addr))
    }
}

/// The client's address: the proxy's word for it when the peer is the trusted proxy, else the
/// socket peer. `None` only for requests without a peer (tests calling handlers directly).
pub fn client_addr(req: &HttpRequest, proxy: Option<&TrustedProxy>) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(proxy) = proxy.filter(|p| p.trusts(peer)) else {
        return Some(peer);
    };
    // Every value of the header, in order, then its comma-separated entries right to left: the
    // right-most entries were written by the proxies we trust, the left ones by whoever asked.
    let entries: Vec<&str> = req
        .headers()
        .get_all(proxy.header.as_str())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .iter()
        .rev()
        .filter_map(|e| parse_entry(e))
        .find(|a| !proxy.listed(*a))
        .or(Some(peer))
}

/// One entry of a forwarding header: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1`, `[2001:db8::1]:567`.
fn parse_entry(e: &str) -> Option<IpAddr> {
    if let Ok(a) = e.parse::<IpAddr>() {
        return Some(a);
    }
    if let Ok(sa) = e.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    e.trim_matches(['[', ']']).parse().ok()
}

/// Everything keyed by client a server holds.
#[derive(Debug)]
pub struct Clients {
    /// The proxy whose header names clients, if any.
    pub proxy: Option<TrustedProxy>,
    /// WebSockets open per client.
    pub websockets: Gauge,
    /// Admin sign-in attempts per client: 5 a minute, in bursts of 5.
    pub admin_logins: RateLimiter,
    /// Milliseconds of expensive work (diffs, blame, highlighting, searches that read objects)
    /// per client: `GITVISTA_WORK_MS_PER_SECOND` a second, in bursts of four seconds' worth.
    pub work: RateLimiter,
}

/// A client's burst of expensive work, in seconds of its rate.
pub const WORK_BURST_SECONDS: u32 = 4;

impl Clients {
    /// Budgets for a server whose clients may each hold `websockets` sockets and use
    /// `work_ms_per_second` of expensive work.
    pub fn new(proxy: Option<TrustedProxy>, websockets: usize, work_ms_per_second: u32) -> Clients {
        Clients {
            proxy,
            websockets: Gauge::new(websockets),
            admin_logins: RateLimiter::new(5, 5, MAX_BUCKETS),
            work: RateLimiter::new(
                work_ms_per_second.saturating_mul(60),
                work_ms_per_second.saturating_mul(WORK_BURST_SECONDS),
                MAX_BUCKETS,
            ),
        }
    }

    /// The key of the client behind `req`: its signed-in user, else its address (`None`
    /// without a peer).
    pub fn key(&self, req: &HttpRequest) -> Option<ClientKey> {
        use actix_web::HttpMessage as _;
        if let Some(v) = req
            .extensions()
            .get::<gitvista_accounts::accounts::Viewer>()
        {
            return Some(ClientKey::user(&v.user.id));
        }
        client_addr(req, self.proxy.as_ref()).map(ClientKey::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_proxy_header_counts_only_from_the_proxy() {
        let xff: TrustedProxy = "X-Forwarded-For@10.0.0.0/8".parse().expect("parses");
        let via_proxy = TestRequest::default()
            .peer_addr("10.1.2.3:4000".parse().expect("sa"))
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.9.9.9"))
            .to_http_request();
        // The right-most address the trusted proxies did not write: 6.6.6.6 was the client's lie.
        assert_eq!(client_addr(&via_proxy, Some(&xff)), Some(ip("203.0.113.9")));
        let direct = TestRequest::default()
            .peer_addr("198.51.100.1:4000".parse().expect("sa"))
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .to_http_request();
        assert_eq!(client_addr(&direct, Some(&xff)), Some(ip("198.51.100.1")));
        assert_eq!(client_addr(&direct, None), Some(ip("198.51.100.1")));
        let fly: TrustedProxy = "Fly-Client-IP".parse().expect("parses");
        let behind_fly = TestRequest::default()
            .peer_addr("172.16.0.2:4000".parse().expect("sa"))
            .insert_header(("Fly-Client-IP", "2001:db8::5"))
            .to_http_request();
        assert_eq!(
            client_addr(&behind_fly, Some(&fly)),
            Some(ip("2001:db8::5"))
        );
        let garbage = TestRequest::default()
            .peer_addr("172.16.0.2:4000".parse().expect("sa"))
            .insert_header(("Fly-Client-IP", "not-an-address"))
            .to_http_request();
        assert_eq!(client_addr(&garbage, Some(&fly)), Some(ip("172.16.0.2")));
        for bad in [
            "",
            "X Forwarded",
            "X-Forwarded-For@",
            "X-Forwarded-For@nonsense",
        ] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad:?}");
        }
    }
}
