//! Shared by the integration tests: fixture repositories, git, and the server on a free port.

use std::io::BufRead;
use std::path::Path;

use gitvista::config::{Config, WsSettings};
use gitvista::startup::Application;
pub use gitvista_testkit::{GitDaemon, fixture, git, git_daemon};

/// The admin token of the servers [`spawn_app`] and friends start.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// Starts the application for `repo` on a free loopback port; returns the port.
pub async fn spawn_app(repo: &Path) -> u16 {
    spawn_app_with_stopper(repo).await.0
}

/// Like [`spawn_app`], also returning what stops it gracefully and the server task.
pub async fn spawn_app_with_stopper(
    repo: &Path,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    spawn_app_with(repo, test_ws()).await
}

/// WebSocket settings for tests: the defaults, but any number of sockets per client (every test
/// client is 127.0.0.1; the per-client cap has tests of its own).
pub fn test_ws() -> WsSettings {
    WsSettings {
        per_client: 100_000,
        ..WsSettings::default()
    }
}

/// Like [`spawn_app_with_stopper`], with the given WebSocket settings.
pub async fn spawn_app_with(
    repo: &Path,
    ws: WsSettings,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    start(gitvista::config::Mode::local(repo), ws).await
}

/// A server process killed when dropped, so a failing test leaves none behind.
#[derive(Debug)]
pub struct Binary(pub std::process::Child);

impl std::ops::Deref for Binary {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Binary {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gitvista open` on a free port, without an admin token; returns the process and its
/// base URL.
pub fn spawn_binary(repo: &std::path::Path) -> (Binary, String) {
    spawn_binary_with(repo, |_| {})
}

/// [`spawn_binary`] with the command adjusted first (environment, where stderr goes).
pub fn spawn_binary_with(
    repo: &std::path::Path,
    adjust: impl FnOnce(&mut std::process::Command),
) -> (Binary, String) {
    spawn_command(
        |c| {
            c.args(["open", "--no-browser", "--port", "0"]).arg(repo);
        },
        adjust,
    )
}

/// Starts `gitvista serve` on a free port with `data_dir`, 127.0.0.1 allowlisted, without an
/// admin token unless `adjust` gives one; returns the process and its base URL.
pub fn spawn_serve_binary(
    data_dir: &std::path::Path,
    adjust: impl FnOnce(&mut std::process::Command),
) -> (Binary, String) {
    spawn_command(
        |c| {
            c.args([
                "serve",
                "--port",
                "0",
                "--allowed-hosts",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(data_dir)
            .env_remove("DATABASE_URL");
        },
        adjust,
    )
}

/// Runs the gitvista binary with `args` (then `adjust`) and waits for the URL it prints.
fn spawn_command(
    args: impl FnOnce(&mut std::process::Command),
    adjust: impl FnOnce(&mut std::process::Command),
) -> (Binary, String) {
    start_command(args, adjust).serving()
}

/// A gitvista process started and not yet waited for: several can start at the same instant,
/// then each is waited for ([`Starting::serving`]).
#[derive(Debug)]
pub struct Starting(Binary);

impl Starting {
    /// Waits for the URL the process prints once it serves; answers the process and its base
    /// URL. Panics when it exits instead (saying how).
    pub fn serving(mut self) -> (Binary, String) {
        let stdout = self.0.stdout.take().expect("stdout");
        let line = std::io::BufReader::new(stdout).lines().next();
        let Some(Ok(line)) = line else {
            let status = self.0.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!("gitvista exited before serving ({status})");
        };
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        (self.0, base)
    }
}

/// Starts the gitvista binary with `args` (then `adjust`), its stdout piped, stderr discarded
/// unless `adjust` says otherwise, without an admin token unless `adjust` gives one.
pub fn start_command(
    args: impl FnOnce(&mut std::process::Command),
    adjust: impl FnOnce(&mut std::process::Command),
) -> Starting {
    // `GITVISTA_BENCH_BIN` runs another build (a release one, for figures measured by a test).
    let binary = std::env::var_os("GITVISTA_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_gitvista").into());
    let mut command = std::process::Command::new(binary);
    args(&mut command);
    command
        .env_remove("GITVISTA_ADMIN_TOKEN")
        .env("GITVISTA_WS_PER_CLIENT", "100000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    adjust(&mut command);
    Starting(Binary(command.spawn().expect("starts")))
}

/// Hosted mode's settings for tests: `data_dir`, 127.0.0.1 allowlisted.
pub fn hosted_config(data_dir: &Path) -> gitvista::config::HostedConfig {
    gitvista::config::HostedConfig {
        allowed_hosts: "127.0.0.1".into(),
        ..gitvista::config::HostedConfig::new(data_dir)
    }
}

/// Starts hosted mode on a free loopback port with `data_dir`, allowlisting 127.0.0.1.
pub async fn spawn_hosted(
    data_dir: &Path,
    database_url: Option<String>,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    spawn_hosted_with(gitvista::config::HostedConfig {
        database_url,
        ..hosted_config(data_dir)
    })
    .await
}

/// Starts hosted mode with `config` on a free loopback port.
pub async fn spawn_hosted_with(
    config: gitvista::config::HostedConfig,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    start(gitvista::config::Mode::Hosted(Box::new(config)), test_ws()).await
}

/// Builds and runs the application in `mode` on a free loopback port, with the admin token
/// [`ADMIN_TOKEN`]; returns the port, what stops it, and the server task.
/// Starts the application in `mode` on a free loopback port with the test WebSocket settings.
pub async fn spawn_mode(mode: gitvista::config::Mode) -> u16 {
    start(mode, test_ws()).await.0
}

async fn start(
    mode: gitvista::config::Mode,
    ws: WsSettings,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    let mut config = Config::new("127.0.0.1".parse().expect("address"), 0, mode);
    config.ws = ws;
    config.admin_token = Some(ADMIN_TOKEN.into());
    let app = Application::build(config).await.expect("builds");
    let port = app.port();
    let stopper = app.stopper();
    let task = actix_rt::spawn(app.run_until_stopped());
    (port, stopper, task)
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// How long a well-behaved client waits before asking again after a 429 or 503: the answer's
/// `Retry-After` in seconds, 1 without one, at most 5.
pub(crate) fn retry_after(resp: &reqwest::Response) -> std::time::Duration {
    let secs = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        .min(5);
    std::time::Duration::from_secs(secs)
}
