//! Remote URLs for hosted mode: canonical form, repository ids, and the refusal list.
//!
//! Every URL a user pastes is hostile until proven otherwise. [`RemoteUrl::parse`] accepts only
//! `https://host/path` (and `git@host:path`, rewritten to https), plus `http://`, `git://` and
//! `ssh://` for hosts named in `GITVISTA_ALLOWED_HOSTS`; it refuses local paths, `file://`,
//! `ext::` and every other transport, a leading `-` (an option to git), credentials, control
//! characters and odd hosts. [`Policy::check_addresses`] then refuses hosts that resolve to
//! loopback, private, link-local, shared, multicast or cloud-metadata addresses (IPv4-mapped IPv6
//! included) unless the host is allowlisted. Each refusal is a [`UrlError`] whose message says
//! why, in a sentence.
//!
//! The canonical form drops a trailing `/` and `.git`, lowercases the scheme and host and drops a
//! default port; the repository id is the first 16 hex digits of the SHA-256 of it.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Nothing was given, or only spaces.
    #[error("Paste the URL of a Git repository")]
    Empty,
    /// Longer than [`MAX_URL`].
    #[error("The URL is longer than {MAX_URL} characters")]
    TooLong,
    /// Starts with `-`: git would read it as an option.
    #[error("A URL cannot start with '-'")]
    LeadingDash,
    /// Contains spaces or control characters.
    #[error("The URL contains spaces or control characters")]
    ControlCharacters,
    /// Contains Unicode direction controls, which make a URL display as another.
    #[error("The URL contains invisible text-direction characters; type it plainly")]
    DirectionControls,
    /// A port other than the scheme's default, on a host that is not allowlisted.
    #[error("Port {0} is not accepted; GitVista reaches remotes on their scheme's default port")]
    Port(u16),
    /// A path on the server's own disk.
    #[error("Local paths and file:// URLs are not accepted; paste the URL of a hosted repository")]
    LocalPath,
    /// A transport that runs commands or is not served (`ext::`, `fd::`, ...).
    #[error("The {0}:: transport is not accepted")]
    Transport(String),
    /// A scheme other than https (or one not enabled for this host).
    #[error("{0}:// URLs are not accepted here; use https://")]
    Scheme(String),
    /// User name or password in the URL.
    #[error(
        "URLs with a user name or password are not accepted; GitVista only reads public repositories"
    )]
    Credentials,
    /// Not a URL at all.
    #[error("This is not a URL: {0}")]
    Malformed(String),
    /// No host, or a host that is not a valid DNS name or address.
    #[error("The URL has no valid host")]
    BadHost,
    /// No repository path after the host.
    #[error("The URL names a host but no repository")]
    NoPath,
    /// Query strings and fragments have no place in a clone URL.
    #[error("The URL has a query or fragment; paste the repository's clone URL")]
    QueryOrFragment,
    /// The host is, or resolves to, an address the server must not reach.
    #[error(
        "{host} resolves to {addr}, an address on a private or local network; it is not reachable from here"
    )]
    PrivateAddress {
        /// The host as written.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
    },
    /// The host does not resolve.
    #[error("{0} does not resolve to any address")]
    Unresolvable(String),
}

/// Transport of an accepted URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `https://` (always allowed).
    Https,
    /// `http://` (allowlisted hosts only).
    Http,
    /// `git://` (allowlisted hosts only).
    Git,
    /// `ssh://` (allowlisted hosts only).
    Ssh,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Git => "git",
            Scheme::Ssh => "ssh",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Git => 9418,
            Scheme::Ssh => 22,
        }
    }
}

/// A remote URL that passed the syntactic checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// Its transport.
    pub scheme: Scheme,
    /// Lowercased host (IPv6 literals without brackets).
    pub host: String,
    /// The port to connect to.
    pub port: u16,
    /// The canonical URL (what git is given and what the id hashes).
    pub canonical: String,
}

/// Which hosts are exempt from the address checks (and may use http, git and ssh).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `host` or `host:port` entries, lowercased.
    pub allowed_hosts: Vec<(String, Option<u16>)>,
}

impl Policy {
    /// Parses `GITVISTA_ALLOWED_HOSTS` (comma-separated `host` or `host:port`).
    pub fn from_allowed_hosts(list: &str) -> Policy {
        let allowed_hosts = list
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                let h = h.to_ascii_lowercase();
                match h.rsplit_once(':') {
                    Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
                        match port.parse() {
                            Ok(p) => (host.trim_matches(['[', ']']).to_string(), Some(p)),
                            Err(_) => (h.clone(), None),
                        }
                    }
                    _ => (h.trim_matches(['[', ']']).to_string(), None),
                }
            })
            .collect();
        Policy { allowed_hosts }
    }

    /// Whether `host:port` is allowlisted.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.allowed_hosts
            .iter()
            .any(|(h, p)| h == host && p.is_none_or(|p| p == port))
    }

    /// Parses and checks `input` syntactically under this policy.
    pub fn parse(&self, input: &str) -> Result<RemoteUrl, UrlError> {
        RemoteUrl::parse(input, self)
    }

    /// Refuses a URL whose host is, or resolves (through `resolve`) to, an address the server
    /// must not reach, unless the host is allowlisted. `resolve` is injectable so tests never
    /// look up real names.
    pub fn check_addresses(
        &self,
        url: &RemoteUrl,
        resolve: impl FnOnce(&str, u16) -> std::io::Result<Vec<IpAddr>>,
    ) -> Result<(), UrlError> {
        if self.allows(&url.host, url.port) {
            return Ok(());
        }
        let addrs = match url.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => resolve(&url.host, url.port)
                .map_err(|_| UrlError::Unresolvable(url.host.clone()))?,
        };
        if addrs.is_empty() {
            return Err(UrlError::Unresolvable(url.host.clone()));
        }
        for addr in addrs {
            if !is_public(addr) {
                return Err(UrlError::PrivateAddress {
                    host: url.host.clone(),
                    addr,
                });
            }
        }
        Ok(())
    }
}

/// Resolves a host to its addresses (blocking); injectable so tests decide what names mean.
pub type Resolve = std::sync::Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;

impl Policy {
    /// What git may connect to for `url` (a canonical URL this policy accepted before): the host
    /// is resolved now, each address checked (unless the host is allowlisted), and git is pinned
    /// to the first one: `http.curloptResolve` for http(s), the address itself in a git:// URL. A
    /// name that resolved to a public address when it was pasted and to a private one now is
    /// refused here, before git runs. Blocking.
    pub fn target(&self, url: &str, resolve: &Resolve) -> Result<GitTarget, UrlError> {
        let parsed = self.parse(url)?;
        let first = self.pinned_address(&parsed, resolve)?;
        if parsed.host.parse::<IpAddr>().is_ok() {
            return Ok(GitTarget {
                url: parsed.canonical,
                config: Vec::new(),
            });
        }
        let literal = match first {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        Ok(match parsed.scheme {
            Scheme::Https | Scheme::Http => GitTarget {
                config: vec![format!(
                    "http.curloptResolve={}:{}:{literal}",
                    parsed.host, parsed.port
                )],
                url: parsed.canonical,
            },
            Scheme::Git => {
                let url = url::Url::parse(&parsed.canonical)
                    .ok()
                    .and_then(|mut u| {
                        u.set_ip_host(first).ok()?;
                        Some(u.to_string())
                    })
                    .ok_or_else(|| UrlError::Malformed(parsed.canonical.clone()))?;
                GitTarget {
                    url,
                    config: Vec::new(),
                }
            }
            // ssh is allowlisted-only; ssh resolves by itself and has no pinning knob here.
            Scheme::Ssh => GitTarget {
                url: parsed.canonical,
                config: Vec::new(),
            },
        })
    }
}

impl Policy {
    /// The address a connection to `parsed` goes to: an IP literal as it is, else the host
    /// resolved now and the first of its addresses; each checked (unless the host is
    /// allowlisted). Blocking.
    fn pinned_address(&self, parsed: &RemoteUrl, resolve: &Resolve) -> Result<IpAddr, UrlError> {
        if let Ok(ip) = parsed.host.parse::<IpAddr>() {
            self.check_addresses(parsed, |_, _| Ok(Vec::new()))?;
            return Ok(ip);
        }
        let addrs = resolve(&parsed.host, parsed.port)
            .map_err(|_| UrlError::Unresolvable(parsed.host.clone()))?;
        let first = *addrs
            .first()
            .ok_or_else(|| UrlError::Unresolvable(parsed.host.clone()))?;
        self.check_addresses(parsed, |_, _| Ok(addrs.clone()))?;
        Ok(first)
    }

    /// Where GitVista's own git client ([`gitwire`]) connects for `url`, by the same rules as
    /// [`Policy::target`]: the host resolved now, every address checked, the first one pinned.
    /// `None` for a transport it does not speak (ssh). Blocking.
    pub fn wire_target(
        &self,
        url: &str,
        resolve: &Resolve,
    ) -> Result<Option<gitwire::history::Target>, UrlError> {
        let parsed = self.parse(url)?;
        let addr = self.pinned_address(&parsed, resolve)?;
        let pin = std::net::SocketAddr::new(addr, parsed.port);
        Ok(match parsed.scheme {
            Scheme::Https | Scheme::Http => Some(gitwire::history::Target::Http {
                url: parsed.canonical,
                pin: Some(pin),
            }),
            Scheme::Git => {
                let path = url::Url::parse(&parsed.canonical)
                    .map_err(|_| UrlError::Malformed(parsed.canonical.clone()))?
                    .path()
                    .to_string();
                Some(gitwire::history::Target::Daemon {
                    addr: pin,
                    host: parsed.host,
                    path,
                })
            }
            Scheme::Ssh => None,
        })
    }
}

pub use gitvista_actors::clone_queue::GitTarget;

/// The resolver hosted mode checks names with: the system's, or one a test injects.
#[derive(Clone)]
pub struct Resolver(pub Resolve);

impl Default for Resolver {
    fn default() -> Self {
        Resolver(std::sync::Arc::new(system_resolve))
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// Resolves a host with the system resolver (blocking).
pub fn system_resolve(host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates, as of 2026), plus
/// multicast and the reserved 240/4: every block whose "globally reachable" is not plainly true.
/// 192.31.196.0/24 (AS112) and 192.175.48.0/24 (AS112 direct delegation) are globally reachable
/// anycast services, not hosts, and are refused too.
const SPECIAL_V4: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (carrier-grade NAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata: 169.254.169.254)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation (TEST-NET-1)
    "192.31.196.0/24", // AS112-v4
    "192.52.193.0/24", // AMT
    "192.88.99.0/24",  // deprecated 6to4 relay anycast
    "192.168.0.0/16",  // private
    "192.175.48.0/24", // direct delegation AS112
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation (TEST-NET-2)
    "203.0.113.0/24",  // documentation (TEST-NET-3)
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
];

/// The IANA IPv6 Special-Purpose Address Registry, plus multicast and the deprecated site-local
/// block. Blocks that embed an IPv4 address (mapped, NAT64, 6to4, Teredo) are refused whole:
/// the embedded address could be anything.
const SPECIAL_V6: &[&str] = &[
    "::/128",            // unspecified
    "::1/128",           // loopback
    "::/96",             // IPv4-compatible (deprecated)
    "::ffff:0:0/96",     // IPv4-mapped
    "::ffff:0:0:0/96",   // IPv4-translated (SIIT)
    "64:ff9b::/96",      // NAT64 well-known prefix
    "64:ff9b:1::/48",    // local-use NAT64
    "100::/64",          // discard-only
    "100:0:0:1::/64",    // dummy prefix
    "2001::/23",         // IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)
    "2001:db8::/32",     // documentation
    "2002::/16",         // 6to4
    "2620:4f:8000::/48", // direct delegation AS112
    "3fff::/20",         // documentation
    "5f00::/16",         // segment routing SIDs
    "fc00::/7",          // unique local (incl. fd00:ec2::254, a cloud metadata address)
    "fe80::/10",         // link-local
    "fec0::/10",         // site-local (deprecated)
    "ff00::/8",          // multicast
];

fn special_nets() -> &'static [ipnet::IpNet] {
    static NETS: std::sync::OnceLock<Vec<ipnet::IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| {
        SPECIAL_V4
            .iter()
            .chain(SPECIAL_V6)
            .filter_map(|n| n.parse().ok())
            .collect()
    })
}

/// Whether an address is on the public internet: in none of the IANA special-purpose blocks
/// ([`SPECIAL_V4`], [`SPECIAL_V6`]: loopback, private, link-local and cloud metadata, shared,
/// documentation, benchmarking, multicast, reserved, and every IPv6 form that embeds an IPv4
/// address).
pub fn is_public(addr: IpAddr) -> bool {
    !special_nets().iter().any(|n| n.contains(&addr))
}

impl RemoteUrl {
    /// Checks `input` syntactically and canonicalises it (no name resolution here).
    pub fn parse(input: &str, policy: &Policy) -> Result<RemoteUrl, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        if input.len() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        if input.starts_with('-') {
            return Err(UrlError::LeadingDash);
        }
        if input.chars().any(is_direction_control) {
            return Err(UrlError::DirectionControls);
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(UrlError::ControlCharacters);
        }
        if input.starts_with('/')
            || input.starts_with('.')
            || input.starts_with('~')
            || input.starts_with('\\')
            || input.to_ascii_lowercase().starts_with("file:")
            || input.as_bytes().get(1) == Some(&b':') && input.as_bytes()[0].is_ascii_alphabetic()
        {
            return Err(UrlError::LocalPath);
        }
        if let Some((transport, _)) = input.split_once("::")
            && !transport.contains('/')
            && !transport.contains(':')
        {
            return Err(UrlError::Transport(transport.to_ascii_lowercase()));
        }
        // scp-like `git@host:owner/repo`: git's ssh shorthand, served as https.
        let input = match scp_like(input) {
            Some((host, path)) => format!("https://{host}/{path}"),
            None => input.to_string(),
        };
        let parsed = url::Url::parse(&input).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => UrlError::LocalPath,
            other => UrlError::Malformed(other.to_string()),
        })?;
        let scheme = match parsed.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "git" => Scheme::Git,
            "ssh" => Scheme::Ssh,
            "file" => return Err(UrlError::LocalPath),
            other => return Err(UrlError::Scheme(other.to_string())),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(UrlError::QueryOrFragment);
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                let ok = !d.is_empty()
                    && d.len() <= 253
                    && d.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                if !ok {
                    return Err(UrlError::BadHost);
                }
                d
            }
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(UrlError::BadHost),
        };
        let port = parsed.port().unwrap_or(scheme.default_port());
        if scheme != Scheme::Https && !policy.allows(&host, port) {
            return Err(UrlError::Scheme(scheme.as_str().to_string()));
        }
        if port != scheme.default_port() && !policy.allows(&host, port) {
            return Err(UrlError::Port(port));
        }
        let mut path = parsed.path().trim_end_matches('/').to_string();
        if let Some(p) = path.strip_suffix(".git") {
            path = p.trim_end_matches('/').to_string();
        }
        if path.is_empty() || path == "/" {
            return Err(UrlError::NoPath);
        }
        if path.split('/').any(|s| s == "..") || path.contains("/-") {
            return Err(UrlError::Malformed(
                "a path segment may not be '..' or start with '-'".into(),
            ));
        }
        // These forges treat owner and repository names case-insensitively: one repository, one
        // id, one clone, however it is capitalised.
        if CASE_INSENSITIVE_FORGES.contains(&host.as_str()) {
            path = path.to_ascii_lowercase();
        }
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let port_part = match parsed.port() {
            Some(p) if p != scheme.default_port() => format!(":{p}"),
            _ => String::new(),
        };
        let canonical = format!("{}://{host_part}{port_part}{path}", scheme.as_str());
        Ok(RemoteUrl {
            scheme,
            host,
            port,
            canonical,
        })
    }

    /// The repository id: the first 16 hex digits of SHA-256 of the canonical URL.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.canonical.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Hosts whose owner and repository names are case-insensitive.
const CASE_INSENSITIVE_FORGES: &[&str] =
    &["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"];

/// Unicode's bidirectional formatting characters (embeddings, overrides, isolates and marks):
/// invisible, and able to make `evil.example/x` display as something else on the dashboard.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `user@host:path` (no scheme, a colon before the first slash) as (host, path).
fn scp_like(input: &str) -> Option<(String, String)> {
    if input.contains("://") {
        return None;
    }
    let (userhost, path) = input.split_once(':')?;
    let (_, host) = userhost.rsplit_once('@')?;
    if host.is_empty() || host.contains('/') || path.starts_with('/') && path.starts_with("//") {
        return None;
    }
    Some((
        host.to_ascii_lowercase(),
        path.trim_start_matches('/').to_string(),
    ))
}

#[cfg(test)]
mod tests;
