//! Validated settings for `gitvista open`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `gitvista open` serves and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (127.0.0.1 by default: local mode is for this machine only).
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// The repository served as `local`.
    pub repo_path: PathBuf,
    /// WebSocket heartbeat and queue limits.
    pub ws: WsSettings,
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
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            heartbeat: Duration::from_secs(5),
            client_timeout: Duration::from_secs(15),
            queue_frames: 64,
            queue_bytes: 1 << 20,
        }
    }
}
