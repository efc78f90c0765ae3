//! Validated settings for `gitvista open` (local mode) and `gitvista serve` (hosted mode).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use gitvista_hosting::config::HostedConfig;

/// What the server serves and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (127.0.0.1 by default).
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Local or hosted.
    pub mode: Mode,
    /// WebSocket heartbeat and queue limits.
    pub ws: WsSettings,
    /// `GITVISTA_ADMIN_TOKEN`: enables `/api/admin/...` for holders of it (off when `None`);
    /// at least [`MIN_ADMIN_TOKEN`] bytes.
    pub admin_token: Option<String>,
    /// `GITVISTA_PUBLIC_URL`: the address users reach the server at (`https://gitvista.example`);
    /// state-changing requests must come from its origin, and an https one marks cookies `Secure`.
    pub public_url: Option<String>,
    /// `GITVISTA_TRUSTED_PROXY`: the header a proxy in front names clients with (see
    /// [`crate::client::TrustedProxy`]); `None`: the socket peer is the client.
    pub trusted_proxy: Option<crate::client::TrustedProxy>,
    /// `GITVISTA_WORK_MS_PER_SECOND`: milliseconds of expensive work (diffs, blame, highlighting,
    /// searches reading objects) each client may use per second, in bursts of four seconds' worth.
    pub work_ms_per_second: u32,
    /// Sign-in with the forges whose OAuth clients are configured, with the secrets it needs
    /// (hosted mode; read by `gitvista serve`, see [`gitvista_accounts::settings`]).
    pub auth: Option<std::sync::Arc<gitvista_accounts::settings::AuthSettings>>,
}

/// Shortest admin token accepted: 32 bytes, guessable by nobody in a web server's lifetime.
pub const MIN_ADMIN_TOKEN: usize = 32;

impl Config {
    /// Settings with defaults for everything but what is served and where.
    pub fn new(host: IpAddr, port: u16, mode: Mode) -> Config {
        Config {
            host,
            port,
            mode,
            ws: WsSettings::default(),
            admin_token: None,
            public_url: None,
            trusted_proxy: None,
            work_ms_per_second: 250,
            auth: None,
        }
    }

    /// The same settings with every configured path made absolute against the working
    /// directory, once, at start-up: git runs inside the data directory and is handed paths
    /// under it, so a relative one (the default `gitvista-data`) would name another place from
    /// there (`gitvista-data/gitvista-data/tmp/...`), and the server's own gitconfig would not
    /// be found at all.
    pub fn with_absolute_paths(mut self) -> std::io::Result<Config> {
        self.mode = match self.mode {
            Mode::Local {
                repo_path,
                commit_graph_hint_after,
                first_screen,
            } => Mode::Local {
                repo_path: std::path::absolute(repo_path)?,
                commit_graph_hint_after,
                first_screen,
            },
            Mode::Hosted(h) => Mode::Hosted(Box::new(h.with_absolute_paths()?)),
        };
        Ok(self)
    }

    /// Refuses settings the server must not start with, saying which and why.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.admin_token
            && t.len() < MIN_ADMIN_TOKEN
        {
            return Err(format!(
                "GITVISTA_ADMIN_TOKEN is {} bytes long; use at least {MIN_ADMIN_TOKEN} random bytes (e.g. `openssl rand -hex 32`)",
                t.len()
            ));
        }
        if let Some(u) = &self.public_url {
            self.public_origin()
                .ok_or_else(|| format!("GITVISTA_PUBLIC_URL {u:?} is not an http(s) URL"))?;
        }
        Ok(())
    }

    /// `scheme://host[:port]` of the public URL (lowercased), if one is configured and valid.
    pub fn public_origin(&self) -> Option<String> {
        let u = url::Url::parse(self.public_url.as_deref()?).ok()?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return None;
        }
        Some(u.origin().ascii_serialization().to_ascii_lowercase())
    }

    /// Whether users reach the server over https (so its cookies can be `Secure`).
    pub fn public_https(&self) -> bool {
        self.public_origin()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

/// Which product the server is.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `gitvista open`: one repository on this machine, served as `local`.
    Local {
        /// The repository.
        repo_path: PathBuf,
        /// A first view at least this slow without a commit-graph file gets the hint
        /// (`GITVISTA_COMMIT_GRAPH_HINT_MS`).
        commit_graph_hint_after: std::time::Duration,
        /// When the newest commits are shown while the whole history loads
        /// (`GITVISTA_FIRST_SCREEN_OBJECTS`, `GITVISTA_FIRST_SCREEN_ROWS`).
        first_screen: gitvista_actors::snapshot::FirstScreen,
    },
    /// `gitvista serve`: repositories pasted by users, cloned into the data directory.
    Hosted(Box<HostedConfig>),
}

impl Mode {
    /// `gitvista open` on `repo_path` with its defaults.
    pub fn local(repo_path: impl Into<PathBuf>) -> Mode {
        Mode::Local {
            repo_path: repo_path.into(),
            commit_graph_hint_after: gitvista_actors::snapshot::CommitGraphHint::WORTH_IT,
            first_screen: gitvista_actors::snapshot::FirstScreen::default(),
        }
    }
}

/// How WebSocket viewers are kept alive and bounded.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// How often the server pings; browsers answer with pongs.
    pub heartbeat: Duration,
    /// A browser silent this long (three missed heartbeats by default) is disconnected.
    pub client_timeout: Duration,
    /// Frames queued per viewer before it counts as falling behind.
    pub queue_frames: usize,
    /// Bytes of text queued per viewer before it counts as falling behind.
    pub queue_bytes: usize,
    /// WebSockets one client (an IPv4 address or IPv6 /64) may hold open at once
    /// (`GITVISTA_WS_PER_CLIENT`).
    pub per_client: usize,
    /// Viewers of a server that stops are told 1012 ("service restart": connect again, to
    /// another node) rather than 1001 ("going away"): hosted mode, where a stop is a deploy or
    /// a restart behind a load balancer; `gitvista open` goes away.
    pub stop_is_restart: bool,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            heartbeat: Duration::from_secs(5),
            client_timeout: Duration::from_secs(15),
            queue_frames: 64,
            queue_bytes: 1 << 20,
            per_client: 100,
            stop_is_restart: false,
        }
    }
}
