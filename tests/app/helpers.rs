//! Shared by the integration tests: fixture repositories, git, and the server on a free port.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use gitvista::config::{Config, WsSettings};
use gitvista::startup::Application;

/// Builds fixture `name` (gitcore/tests/fixtures/NAME.sh) under `tmp`, once per directory.
pub fn fixture(name: &str, tmp: &Path) -> PathBuf {
    let dest = tmp.join(name);
    if dest.exists() {
        return dest;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gitcore/tests/fixtures")
        .join(format!("{name}.sh"));
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dest)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// Runs git in `dir` with a fixed identity and no user configuration; its stdout, trailing
/// newlines removed. Panics if git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

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
    let app = Application::build(Config {
        host: "127.0.0.1".parse().expect("address"),
        port: 0,
        mode: gitvista::config::Mode::Local {
            repo_path: repo.to_path_buf(),
        },
        ws,
    })
    .await
    .expect("builds");
    let port = app.port();
    let stopper = app.stopper();
    let task = actix_rt::spawn(app.run_until_stopped());
    (port, stopper, task)
}

/// Starts `gitvista open` on a free port; returns the child and its base URL.
pub fn spawn_binary(repo: &std::path::Path) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitvista"))
        .args(["open", "--no-browser", "--port", "0"])
        .arg(repo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
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
    (child, base)
}

/// A `git daemon` serving `base` on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct GitDaemon {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `git daemon --export-all` for `base` on 127.0.0.1.
pub fn git_daemon(base: &Path) -> GitDaemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            &base.display().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return GitDaemon { child, port };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("git daemon did not start");
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
    let app = Application::build(Config {
        host: "127.0.0.1".parse().expect("address"),
        port: 0,
        mode: gitvista::config::Mode::Hosted(Box::new(config)),
        ws: WsSettings::default(),
    })
    .await
    .expect("builds");
    let port = app.port();
    let stopper = app.stopper();
    let task = actix_rt::spawn(app.run_until_stopped());
    (port, stopper, task)
}
