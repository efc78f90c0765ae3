//! Shared by the integration tests: fixture repositories, git, and the server on a free port.

use std::io::BufRead;
use std::path::Path;

use gitvista::config::{Config, WsSettings};
use gitvista::startup::Application;
pub use gitvista_testkit::{GitDaemon, fixture, git, git_daemon};

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
    spawn_app_with(repo, WsSettings::default()).await
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
    start(
        gitvista::config::Mode::Local {
            repo_path: repo.to_path_buf(),
        },
        ws,
    )
    .await
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
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"));
    command
        .args(["open", "--no-browser", "--port", "0"])
        .arg(repo)
        .env_remove("GITVISTA_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    adjust(&mut command);
    let mut child = command.spawn().expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Binary(child), base)
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
    start(
        gitvista::config::Mode::Hosted(Box::new(config)),
        WsSettings::default(),
    )
    .await
}

/// Builds and runs the application in `mode` on a free loopback port, with the admin token
/// "test-admin-token"; returns the port, what stops it, and the server task.
async fn start(
    mode: gitvista::config::Mode,
    ws: WsSettings,
) -> (
    u16,
    gitvista::startup::Stopper,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    let app = Application::build(Config {
        host: "127.0.0.1".parse().expect("address"),
        port: 0,
        mode,
        ws,
        admin_token: Some("test-admin-token".into()),
    })
    .await
    .expect("builds");
    let port = app.port();
    let stopper = app.stopper();
    let task = actix_rt::spawn(app.run_until_stopped());
    (port, stopper, task)
}
