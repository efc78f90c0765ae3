//! Validated settings for `gitvista open`.

use std::net::IpAddr;
use std::path::PathBuf;

/// What `gitvista open` serves and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (127.0.0.1 by default: local mode is for this machine only).
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// The repository served as `local`.
    pub repo_path: PathBuf,
}
