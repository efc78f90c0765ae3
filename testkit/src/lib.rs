//! Test helpers shared by GitVista's crates (a dev-dependency only): fixture repositories built
//! by the scripts in `gitcore/tests/fixtures/`, git with a fixed identity, and a `git daemon`
//! on loopback to clone from; fakes of the forges and Stripe ([`forges`], [`github`],
//! [`stripe`]) and of Fly's proxy ([`fly`]), each speaking the real endpoints.

pub mod fly;
pub mod forges;

/// Serves `configure`'s routes on a free loopback port, from a thread and actix system of its
/// own with one worker (the fakes of forges and Stripe); answers the port and the server's
/// handle (stopping it stops the fake). Signals stay the process's.
pub(crate) fn serve_loopback<F>(configure: F) -> (u16, actix_web::dev::ServerHandle)
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(configure.clone())
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("binds loopback");
            let port = server.addrs()[0].port();
            let server = server.run();
            let _ = tx.send((port, server.handle()));
            let _ = server.await;
        });
    });
    rx.recv().expect("the fake server starts")
}
pub mod github;
mod proxies;
mod smart_http;

pub use proxies::{Gate, delayed_proxy, dripping_remote, gated_proxy, throttled_proxy};
pub mod stripe;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Builds fixture `name` (gitcore/tests/fixtures/NAME.sh) under `tmp`, once per directory.
pub fn fixture(name: &str, tmp: &Path) -> PathBuf {
    fixture_with(name, tmp, &[])
}

/// [`fixture`] with `env` set for its script: `("GIT_DEFAULT_HASH", "sha256")` makes its
/// repositories SHA-256 ones, as git 3.0 will by default.
pub fn fixture_with(name: &str, tmp: &Path, env: &[(&str, &str)]) -> PathBuf {
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
        .envs(env.iter().copied())
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
        // An oracle reads what a clone holds: never a lazy fetch from its promisor remote.
        .env("GIT_NO_LAZY_FETCH", "1")
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
        kill_group(&mut self.child);
    }
}

/// Kills a child started with `process_group(0)` and everything in its group: `git daemon` runs
/// `git-daemon` as a child of its own, which killing `git` alone would leave listening.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `git clone --bare` of `src` into `dest` (one pack, branches and tags); answers `dest`.
pub fn bare_clone(src: &Path, dest: &Path) -> PathBuf {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).expect("dir");
    git(
        parent,
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().expect("utf-8 path"),
            dest.to_str().expect("utf-8 path"),
        ],
    );
    dest.to_path_buf()
}

/// Feeds `stream` to `git fast-import --quiet` in `repo`.
pub fn fast_import(repo: &Path, stream: &str) {
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stream.as_bytes())
        .expect("write");
    assert!(child.wait().expect("git").success());
}

/// A history of `n` commits with long messages (so the commits-only pack spans many reads),
/// each changing one file,
/// on two branches and an annotated tag: `tmp/long.git`, bare, in one pack, serving partial
/// clones.
pub fn long_history(tmp: &Path, n: u32) -> PathBuf {
    let repo = tmp.join("long.git");
    git(tmp, &["init", "-q", "--bare", "-b", "main", "long.git"]);
    let mut stream = String::new();
    let body = "a longer explanation of the change, as forges' merge commits carry. ".repeat(12);
    for k in 1..=n {
        let branch = if k > n / 2 && k % 3 == 0 {
            "side"
        } else {
            "main"
        };
        let msg = format!("change {k}\n\n{body}\n");
        stream.push_str(&format!(
            "commit refs/heads/{branch}\nmark :{k}\ncommitter A <a@example.com> {} +0000\ndata {}\n{msg}",
            1_700_000_000 + u64::from(k) * 60,
            msg.len()
        ));
        if k > 1 {
            // Side commits branch off the main line; main goes on from its own last commit.
            let from = if branch == "side" && k % 3 == 0 && k - 3 > n / 2 {
                k - 3
            } else {
                (1..k)
                    .rev()
                    .find(|j| !(*j > n / 2 && j % 3 == 0))
                    .unwrap_or(1)
            };
            stream.push_str(&format!("from :{from}\n"));
        }
        // One file of fifty changes in each commit (trees and blobs a commits-only fetch
        // leaves out).
        let file = format!("version {k} of file {}\n", k % 50);
        stream.push_str(&format!(
            "M 100644 inline src/f{}.txt\ndata {}\n{file}\n",
            k % 50,
            file.len()
        ));
    }
    fast_import(&repo, &stream);
    git(&repo, &["tag", "-a", "-m", "release", "v1", "main~10"]);
    git(&repo, &["repack", "-adq"]);
    allow_partial_clones(&repo);
    repo
}

/// Lets clients of the served repository `repo` make partial clones and fetch single objects,
/// as GitHub and GitLab do (`uploadpack.allowFilter`, `uploadpack.allowAnySHA1InWant`).
pub fn allow_partial_clones(repo: &Path) {
    git(repo, &["config", "uploadpack.allowFilter", "true"]);
    git(repo, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
}

/// Starts `git daemon --export-all` for `base` on 127.0.0.1 and waits until it accepts.
pub fn git_daemon(base: &Path) -> GitDaemon {
    start_git_daemon(base).expect("git daemon")
}

/// [`git_daemon`] for callers that report errors rather than panic (the load harness): starts
/// `git daemon --export-all` for `base` on a free port of 127.0.0.1 and waits up to 10 s until
/// it accepts connections.
pub fn start_git_daemon(base: &Path) -> std::io::Result<GitDaemon> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
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
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(GitDaemon { child, port });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(&mut child);
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "git daemon did not accept connections within 10 s",
    ))
}

/// A smart-HTTP git server on a free loopback port: a minimal HTTP/1.0 front for
/// `git http-backend` (CGI) serving the repositories under a directory; stopped when dropped.
#[derive(Debug)]
pub struct GitHttp {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves the repositories under `root` over smart HTTP (`http://127.0.0.1:PORT/NAME`).
pub fn git_http(root: &Path) -> GitHttp {
    serve_git_http(root, None)
}

/// Decides whether an HTTP Basic user and password may read (a private repository's server).
pub type BasicCheck = dyn Fn(&str, &str) -> bool + Send + Sync;

/// [`git_http`] behind HTTP Basic auth: a request without credentials, or with ones `check`
/// refuses, gets `401` with `WWW-Authenticate: Basic` (as GitHub answers git for a private
/// repository).
pub fn git_http_basic(root: &Path, check: std::sync::Arc<BasicCheck>) -> GitHttp {
    serve_git_http(root, Some(check))
}

fn serve_git_http(root: &Path, auth: Option<std::sync::Arc<BasicCheck>>) -> GitHttp {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let root = root.clone();
            let auth = auth.clone();
            std::thread::spawn(move || {
                let _ = serve_cgi(conn, &root, auth.as_deref());
            });
        }
    });
    GitHttp { port, stop }
}

/// One request: parse it, run `git http-backend`, relay its answer, close.
fn serve_cgi(
    conn: std::net::TcpStream,
    root: &Path,
    auth: Option<&BasicCheck>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("GET").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; n];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            reader.read_line(&mut crlf)?;
        }
    }
    if let Some(check) = auth {
        use base64::Engine as _;
        let pair = header("authorization")
            .and_then(|h| h.strip_prefix("Basic ").map(str::to_string))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let allowed = pair
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .is_some_and(|(user, password)| check(user, password));
        if !allowed {
            let mut conn = conn;
            conn.write_all(
                b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return conn.flush();
        }
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = header("content-type") {
        cmd.env("CONTENT_TYPE", t);
    }
    if let Some(e) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    if let Some(p) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body)?;
    }
    let out = child.wait_with_output()?;
    let (head, rest) = split_cgi(&out.stdout);
    let head = String::from_utf8_lossy(head);
    let mut status = "200 OK".to_string();
    let mut conn = conn;
    let mut response = Vec::new();
    let mut lines = Vec::new();
    for l in head.lines() {
        match l.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            _ => lines.push(l.to_string()),
        }
    }
    write!(response, "HTTP/1.0 {status}\r\n")?;
    for l in lines {
        write!(response, "{l}\r\n")?;
    }
    write!(
        response,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        rest.len()
    )?;
    response.extend_from_slice(rest);
    conn.write_all(&response)?;
    conn.flush()
}

/// A CGI program's answer split into its header block (with an optional `Status:` line) and its
/// body, at the first blank line (CRLF or LF).
pub fn split_cgi(out: &[u8]) -> (&[u8], &[u8]) {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    match split {
        Some((i, n)) => (&out[..i], &out[i + n..]),
        None => (out, &[]),
    }
}

/// Commits in a full bare clone of `source` (branches and tags, as a hosted clone holds them,
/// without the replace refs and other namespaces a clone leaves behind); the clone goes in `tmp`.
pub fn full_clone_count(tmp: &Path, source: &Path) -> u64 {
    let full = tmp.join(format!(
        "full-{}.git",
        source
            .file_name()
            .map_or("repo".into(), |n| n.to_string_lossy())
    ));
    if !full.exists() {
        bare_clone(source, &full);
    }
    git(&full, &["rev-list", "--all", "--count"])
        .parse()
        .expect("a count")
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            crate::github::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}

/// How a [`hostile_git_server`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Accepts and then sends nothing.
    Stall,
    /// Advertises capabilities without end.
    EndlessAdvertisement,
    /// Answers a fetch with a pack section of progress text without end.
    EndlessProgress,
    /// Answers a fetch with an error on side-band 3.
    BandError,
    /// Sends a packet whose length is over 65,520 bytes.
    OversizedPacket,
    /// Sends a length that is not hexadecimal.
    BadLength,
    /// Answers a fetch with progress one byte every 50 ms (never silent long enough to stall).
    Drip,
    /// Answers `ls-refs` with one branch, then a fetch with a valid pack announcing five million
    /// one-byte blobs and sends them as fast as they are read (13 bytes each on the wire).
    TinyObjects,
}

/// One side-band-1 packet of `data` (at most 65,515 bytes).
fn band_one(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 5).into_bytes();
    out.push(1);
    out.extend_from_slice(data);
    out
}

/// A one-byte blob's pack entry: its header and the byte as a stored zlib block.
fn tiny_entry(byte: u8) -> [u8; 13] {
    let (a, b) = (1 + u32::from(byte), 1 + u32::from(byte));
    let adler = ((b << 16) | a).to_be_bytes();
    [
        0x31, 0x78, 0x01, 0x01, 0x01, 0x00, 0xfe, 0xff, byte, adler[0], adler[1], adler[2],
        adler[3],
    ]
}

/// A git:// server on 127.0.0.1 that speaks just enough protocol v2 to misbehave as `how`
/// says (for every connection, until the process ends); answers its port.
pub fn hostile_git_server(how: Hostile) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
    std::thread::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let caps = format!(
                    "{}{}{}0000",
                    pkt("version 2\n"),
                    pkt("ls-refs=unborn\n"),
                    pkt("fetch=shallow filter\n")
                );
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                match how {
                    Hostile::Stall => std::thread::sleep(Duration::from_secs(60)),
                    Hostile::EndlessAdvertisement => {
                        let _ = s.write_all(pkt("version 2\n").as_bytes());
                        while std::time::Instant::now() < deadline
                            && s.write_all(pkt("agent=x\n").as_bytes()).is_ok()
                        {
                        }
                    }
                    Hostile::OversizedPacket => {
                        let _ = s.write_all(b"fff1version 2\n");
                    }
                    Hostile::BadLength => {
                        let _ = s.write_all(b"00g0version 2\n");
                    }
                    Hostile::Drip => {
                        let _ = s.write_all(caps.as_bytes());
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(pkt("packfile\n").as_bytes());
                        let line = pkt(&format!("\u{2}Counting objects: {}\r", "9".repeat(1000)));
                        for b in line.as_bytes().iter().cycle() {
                            if std::time::Instant::now() > deadline || s.write_all(&[*b]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    Hostile::TinyObjects => {
                        let _ = s.write_all(caps.as_bytes());
                        let _ = s.read(&mut buf);
                        let head = format!("{} refs/heads/main\n", "1".repeat(40));
                        let _ = s.write_all(format!("{}0000", pkt(&head)).as_bytes());
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(pkt("packfile\n").as_bytes());
                        let mut header = b"PACK\0\0\0\x02".to_vec();
                        header.extend_from_slice(&5_000_000u32.to_be_bytes());
                        let _ = s.write_all(&band_one(&header));
                        let mut sent = 0u32;
                        while sent < 5_000_000 && std::time::Instant::now() < deadline {
                            let batch: Vec<u8> = (0..5_000u32)
                                .flat_map(|i| tiny_entry(((sent + i) % 251) as u8))
                                .collect();
                            if s.write_all(&band_one(&batch)).is_err() {
                                break;
                            }
                            sent += 5_000;
                        }
                    }
                    Hostile::EndlessProgress | Hostile::BandError => {
                        let _ = s.write_all(caps.as_bytes());
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(pkt("packfile\n").as_bytes());
                        if how == Hostile::BandError {
                            let _ = s.write_all(pkt("\u{3}fatal: out of memory\n").as_bytes());
                            std::thread::sleep(Duration::from_secs(5));
                        } else {
                            let line =
                                pkt(&format!("\u{2}Counting objects: {}\r", "9".repeat(1000)));
                            while std::time::Instant::now() < deadline
                                && s.write_all(line.as_bytes()).is_ok()
                            {
                            }
                        }
                    }
                }
            });
        }
    });
    port
}
