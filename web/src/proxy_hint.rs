//! A warning, once, for a server behind a proxy it was not told of.
//!
//! With `GITVISTA_PUBLIC_URL` on https, users reach the server through something that ends TLS
//! (Fly's proxy, Caddy, nginx). When requests then arrive over plain HTTP carrying a proxy's
//! forwarding headers and `GITVISTA_TRUSTED_PROXY` is unset, every client's address is the
//! proxy's: per-client budgets become one budget for everybody, and logs name the proxy. The
//! server keeps serving (the setting may be deliberate) and says so once, naming the header it
//! saw.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::HeaderMap;

/// Headers a proxy in front adds to name the client or the scheme it was reached by.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "fly-client-ip",
];

/// See the module documentation. The default never warns.
#[derive(Debug, Default)]
pub struct ProxyHint {
    /// The public URL is https and no proxy is trusted: the only case to look for.
    armed: bool,
    warned: AtomicBool,
}

impl Clone for ProxyHint {
    fn clone(&self) -> Self {
        ProxyHint {
            armed: self.armed,
            warned: AtomicBool::new(self.warned.load(Ordering::Relaxed)),
        }
    }
}

impl ProxyHint {
    /// Looks at requests only when `public_https` and no proxy is trusted.
    pub fn new(public_https: bool, proxy_trusted: bool) -> ProxyHint {
        ProxyHint {
            armed: public_https && !proxy_trusted,
            warned: AtomicBool::new(false),
        }
    }

    /// Logs the warning the first time a plain-HTTP request (`secure` false) carries a
    /// forwarding header; answers whether this call logged it.
    pub fn observe(&self, headers: &HeaderMap, secure: bool) -> bool {
        if !self.armed || secure || self.warned.load(Ordering::Relaxed) {
            return false;
        }
        let Some(name) = FORWARDING_HEADERS
            .iter()
            .find(|name| headers.contains_key(**name))
        else {
            return false;
        };
        if self.warned.swap(true, Ordering::Relaxed) {
            return false;
        }
        tracing::warn!(
            header = name,
            "GITVISTA_PUBLIC_URL is https and requests arrive over plain HTTP with a proxy's \
             {name} header, but GITVISTA_TRUSTED_PROXY is unset: every client's address is the \
             proxy's (one budget for all, logs naming the proxy). Set GITVISTA_TRUSTED_PROXY to \
             the header the proxy writes (see docs/configuration.md)"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn with(name: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static("203.0.113.7"),
        );
        h
    }

    #[test]
    fn it_warns_once_and_only_for_an_https_server_behind_an_untrusted_proxy() {
        let hint = ProxyHint::new(true, false);
        assert!(
            !hint.observe(&HeaderMap::new(), false),
            "no forwarding header"
        );
        assert!(!hint.observe(&with("x-forwarded-for"), true), "over TLS");
        assert!(hint.observe(&with("x-forwarded-for"), false));
        assert!(!hint.observe(&with("forwarded"), false), "once");
        for name in FORWARDING_HEADERS {
            let hint = ProxyHint::new(true, false);
            let header = HeaderName::from_static(name);
            let mut h = HeaderMap::new();
            h.insert(header, HeaderValue::from_static("x"));
            assert!(hint.observe(&h, false), "{name}");
        }
        assert!(!ProxyHint::new(true, true).observe(&with("x-forwarded-for"), false));
        assert!(!ProxyHint::new(false, false).observe(&with("x-forwarded-for"), false));
    }
}
