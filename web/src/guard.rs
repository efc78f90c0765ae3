//! Checks every request passes before any route sees it: in local mode the `Host` must name this
//! machine (a page whose name was rebound to 127.0.0.1 is refused, WebSockets included), and a
//! request that changes state (anything but GET, HEAD and OPTIONS) must come from this server's
//! own pages (`Sec-Fetch-Site` or `Origin`), so another site cannot make a visitor's browser
//! post, delete or act as an admin. Both answer 403 with a JSON error.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError};

use gitvista_errors::ApiError;

/// Which `Host` headers local mode answers: `localhost`, `127.0.0.1`, `[::1]` and the address
/// given to `--host`, each with the bound port; any IP literal when bound to every interface
/// (an IP literal cannot be rebound).
#[derive(Debug, Clone)]
pub struct HostCheck {
    names: Vec<String>,
    any_ip_literal: bool,
    port: u16,
}

impl HostCheck {
    /// The names local mode answers when bound to `host:port`.
    pub fn local(host: std::net::IpAddr, port: u16) -> HostCheck {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
        let literal = match host {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        if !names.contains(&literal) {
            names.push(literal);
        }
        HostCheck {
            names,
            any_ip_literal: host.is_unspecified(),
            port,
        }
    }

    /// Whether a `Host` header value names this server.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = split_host_port(&host);
        let port_ok = match port {
            Some(p) => p == self.port,
            None => self.port == 80,
        };
        if !port_ok {
            return false;
        }
        self.names.iter().any(|n| n == name)
            || (self.any_ip_literal
                && name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok())
    }
}

/// `name:port` → (`name`, port); IPv6 literals keep their brackets.
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(end) = host.rfind(']') {
        let (name, rest) = host.split_at(end + 1);
        return (name, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match host.rsplit_once(':') {
        Some((name, port)) => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (host, None),
        },
        None => (host, None),
    }
}

/// This server's own origin as browsers write it: `GITVISTA_PUBLIC_URL`'s when configured,
/// else whatever `Host` the request named (the scheme is not compared then: behind a proxy
/// that terminates TLS the server cannot know it).
#[derive(Debug, Clone, Default)]
pub struct OriginCheck {
    /// `scheme://host[:port]` of `GITVISTA_PUBLIC_URL`, lowercased.
    pub public_origin: Option<String>,
}

impl OriginCheck {
    /// Whether a browser's request came from this server's own pages. Requests without
    /// `Sec-Fetch-Site` and `Origin` come from programs, not pages, and pass.
    pub fn same_origin(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if let Some(site) = req.headers().get("sec-fetch-site") {
            return match site.to_str().unwrap_or_default() {
                "same-origin" | "none" => Ok(()),
                other => Err(ApiError::Forbidden(format!(
                    "a request from another site ({other}) cannot change anything here"
                ))),
            };
        }
        self.origin_matches(req)
    }

    /// The `Origin` header, when present, names this server.
    pub fn origin_matches(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let ok = match &self.public_origin {
            Some(own) => origin == *own,
            None => {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let origin_host = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .unwrap_or("");
                !host.is_empty() && origin_host == host
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "origin {origin} is not this server"
            )))
        }
    }
}

/// What the guard checks, per server.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Local mode's `Host` check (`None` in hosted mode, which answers for any name).
    pub host: Option<HostCheck>,
    /// Cross-site request checks.
    pub origin: OriginCheck,
    /// Not a check: the warning for an https server behind a proxy it does not trust.
    pub proxy_hint: crate::proxy_hint::ProxyHint,
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: the `Host` check, then the origin check for state-changing requests.
pub async fn check(
    guard: std::sync::Arc<Guard>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<
    ServiceResponse<actix_web::body::EitherBody<impl MessageBody + 'static>>,
    actix_web::Error,
> {
    guard
        .proxy_hint
        .observe(req.headers(), req.app_config().secure());
    let refusal = (|| {
        if let Some(hosts) = &guard.host {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if !hosts.allows(host) {
                return Err(ApiError::Forbidden(format!(
                    "this server answers to localhost only, not to host {host:?} (start it with --host to serve another address)"
                )));
            }
        }
        if changes_state(req.method()) {
            guard.origin.same_origin(req.request())?;
        }
        Ok(())
    })();
    match refusal {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => {
            let resp = e.error_response();
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_mode_answers_only_its_own_names_and_port() {
        let h = HostCheck::local("127.0.0.1".parse().expect("ip"), 8080);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "rebind.attacker.example:8080",
            "localhost:8081",
            "localhost",
            "127.0.0.2:8080",
            "",
            "localhost.attacker.example:8080",
            "[::1]",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let lan = HostCheck::local("192.168.1.5".parse().expect("ip"), 8080);
        assert!(lan.allows("192.168.1.5:8080"));
        assert!(!lan.allows("10.0.0.1:8080"));
        let any = HostCheck::local("0.0.0.0".parse().expect("ip"), 80);
        assert!(any.allows("10.0.0.1"));
        assert!(any.allows("[fe80::1]"));
        assert!(!any.allows("evil.example"));
    }
}
