//! Test helpers shared by GitVista's crates (a dev-dependency only): fixture repositories built
//! by the scripts in `gitcore/tests/fixtures/`, git with a fixed identity, and a `git daemon`
//! on loopback to clone from.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Builds fixture `name` (gitcore/tests/fixtures/NAME.sh) under `tmp`, once per directory.
pub fn fixture(name: &str, tmp: &Path) -> PathBuf {
    let dest = tmp.join(name);
    if dest.exists() {
        return dest;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gitcore/tests/fixtures")
        .join(format!("{name}.sh"));
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dest)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "fixture {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// Runs git in `dir` with a fixed identity and no user configuration; its stdout, trailing
/// whitespace removed. Panics if git fails.
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

/// A `git daemon` serving a directory on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct GitDaemon {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `git daemon --export-all` for `base` on 127.0.0.1 and waits until it accepts.
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return GitDaemon { child, port };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("git daemon did not start");
}
