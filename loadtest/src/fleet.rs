//! The harness's own world when it has no `--target`: generated repositories in a temporary
//! directory, a `git daemon` serving them on loopback, and a `gitvista serve` child process (its
//! own process, so its memory and file descriptors are its own) that clones each of them. Changes
//! are commits into the daemon's repositories followed by an admin fetch, the path a push takes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// Generated repositories, the daemon serving them and the server cloning them; everything is
/// stopped and deleted when dropped.
#[derive(Debug)]
pub struct Fleet {
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// The admin token the server was started with.
    pub admin_token: String,
    /// The GitHub webhook secret the server was started with.
    pub webhook_secret: String,
    /// The bare repositories the daemon serves, by index.
    pub sources: Vec<PathBuf>,
    /// Their `git://127.0.0.1:PORT/...` URLs, by index.
    pub urls: Vec<String>,
    /// The server's log (its stderr), for the report when something fails (the first web
    /// node's, with tiers).
    pub server_log: PathBuf,
    /// With `--tiers`: every node, web nodes first (the first is `base`).
    pub nodes: Vec<FleetNode>,
    server: Child,
    /// Serves `sources`; stopped when dropped, after the servers.
    _daemon: gitvista_testkit::GitDaemon,
    /// With `--tiers`: the database made for the run, dropped at the end.
    database: Option<RunDatabase>,
    /// Holds the repositories, the data directory and the log; removed last.
    _dir: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        stop_gracefully(&mut self.server, Duration::from_secs(10));
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child {
                stop_gracefully(child, Duration::from_secs(10));
            }
        }
        if let Some(db) = self.database.take() {
            db.drop_it();
        }
    }
}

/// The web and worker nodes the harness starts instead of one server (`--tiers WxK`), on the
/// PostgreSQL and Redis/Valkey it is given.
#[derive(Debug, Clone)]
pub struct Tiers {
    /// Web nodes.
    pub webs: usize,
    /// Worker nodes.
    pub workers: usize,
    /// A PostgreSQL URL whose server the harness makes a database of its own on.
    pub database_url: String,
    /// Redis/Valkey.
    pub redis_url: String,
}

/// A node of the harness's cluster.
#[derive(Debug)]
pub struct FleetNode {
    /// `web` or `worker`.
    pub role: &'static str,
    /// Its base URL (a worker's internal address: `/metrics` answers there with the token).
    pub base: String,
    /// Its process (the first web node's is the fleet's `server`).
    child: Option<Child>,
}

/// A database made for one run and dropped after it.
#[derive(Debug)]
struct RunDatabase {
    admin_url: String,
    name: String,
}

impl RunDatabase {
    /// Makes `gitvista_loadtest_<pid>` on the server of `url`; answers it and its URL.
    fn create(url: &str) -> anyhow::Result<(RunDatabase, String)> {
        use diesel::{Connection, RunQueryDsl};
        let mut admin = url::Url::parse(url).context("--database-url")?;
        let name = format!("gitvista_loadtest_{}", std::process::id());
        admin.set_path("/postgres");
        let mut conn = diesel::PgConnection::establish(admin.as_str())
            .context("connecting to PostgreSQL (--database-url)")?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn)?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
        let mut run = admin.clone();
        run.set_path(&format!("/{name}"));
        Ok((
            RunDatabase {
                admin_url: admin.to_string(),
                name,
            },
            run.to_string(),
        ))
    }

    fn drop_it(self) {
        use diesel::{Connection, RunQueryDsl};
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// Runs `gitvista migrate` on the database at `url`, as an operator would before the nodes
/// start.
fn migrate(exe: &Path, data: &Path, url: &str) -> anyhow::Result<()> {
    let out = Command::new(exe)
        .arg("migrate")
        .arg("--data-dir")
        .arg(data)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .output()
        .context("running gitvista migrate")?;
    if !out.status.success() {
        bail!(
            "gitvista migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// SIGTERM (the server closes its sockets with 1001 and drains), then SIGKILL after `within`.
fn stop_gracefully(child: &mut Child, within: Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// git with a fixed identity and no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = git_command(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Load Test")
        .env("GIT_AUTHOR_EMAIL", "loadtest@example.com")
        .env("GIT_COMMITTER_NAME", "Load Test")
        .env("GIT_COMMITTER_EMAIL", "loadtest@example.com")
        .stdin(Stdio::null());
    cmd
}

/// A bare repository at `dest` with `commits` commits on `main` (each touching one of 20 files)
/// and three short topic branches, written with one `git fast-import`.
pub fn generate(dest: &Path, commits: usize, seed: usize) -> anyhow::Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    git(
        parent,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            &dest.to_string_lossy(),
        ],
    )?;
    let mut child = git_command(dest)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting git fast-import")?;
    let mut stream = Vec::new();
    let mut time = 1_700_000_000 + seed as u64 * 86_400;
    let mut commit = |stream: &mut Vec<u8>, branch: &str, mark: usize, from: usize, n: usize| {
        time += 60;
        let message = format!("change {n} in repository {seed}\n");
        let content = format!("line {n} of repository {seed}\n");
        let _ = write!(
            stream,
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter Load Test <loadtest@example.com> {time} +0000\ndata {}\n{message}",
            message.len()
        );
        if from > 0 {
            let _ = writeln!(stream, "from :{from}");
        }
        let _ = write!(
            stream,
            "M 100644 inline file{:02}.txt\ndata {}\n{content}\n",
            n % 20,
            content.len()
        );
    };
    for n in 1..=commits.max(1) {
        commit(&mut stream, "main", n, n - 1, n);
    }
    let mut mark = commits.max(1);
    for topic in 0..3 {
        let base = (commits.max(1) * (topic + 1)) / 4;
        for k in 0..2 {
            mark += 1;
            let from = if k == 0 { base.max(1) } else { mark - 1 };
            commit(&mut stream, &format!("topic-{topic}"), mark, from, mark);
        }
    }
    stream.extend_from_slice(b"done\n");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&stream)
            .context("writing to git fast-import")?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("git fast-import failed for {}", dest.display());
    }
    Ok(())
}

/// Adds a commit on top of `main` in `repo` (as a push would); returns the old and new ids.
pub fn commit(repo: &Path, n: u64) -> anyhow::Result<(String, String)> {
    let old = git(repo, &["rev-parse", "main"])?;
    let new = git(
        repo,
        &[
            "commit-tree",
            "main^{tree}",
            "-p",
            &old,
            "-m",
            &format!("loadtest change {n}"),
        ],
    )?;
    git(repo, &["update-ref", "refs/heads/main", &new, &old])?;
    Ok((old, new))
}

/// A free TCP port on 127.0.0.1 (closed again before the caller binds it).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// 32 random hex digits from the kernel.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Fleet {
    /// Generates `repos` repositories of `commits` commits, serves them with `git daemon`,
    /// starts `gitvista serve` on loopback (or, with `tiers`, web and worker nodes on a database
    /// of the run's own) and waits until it answers. The repositories are not
    /// registered yet: POST [`Fleet::urls`] to the server.
    pub fn start(repos: usize, commits: usize, tiers: Option<Tiers>) -> anyhow::Result<Fleet> {
        let dir = tempfile::Builder::new()
            .prefix("gitvista-loadtest-")
            .tempdir()?;
        let sources_dir = dir.path().join("sources");
        std::fs::create_dir_all(&sources_dir)?;
        let sources: Vec<PathBuf> = (0..repos)
            .map(|i| sources_dir.join(format!("r{i:04}.git")))
            .collect();
        // A few generators at once: each is mostly one fast-import process.
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let chunk = sources.len().div_ceil(4).max(1);
            let workers: Vec<_> = sources
                .chunks(chunk)
                .enumerate()
                .map(|(c, part)| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        for (k, path) in part.iter().enumerate() {
                            generate(path, commits, c * chunk + k)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .map_err(|_| anyhow!("a generator thread panicked"))??;
            }
            Ok(())
        })?;

        let daemon =
            gitvista_testkit::start_git_daemon(&sources_dir).context("starting git daemon")?;
        let daemon_port = daemon.port;

        let admin_token = random_token()?;
        let webhook_secret = random_token()?;
        let server_log = dir.path().join("server.log");
        let exe = std::env::current_exe().context("finding the gitvista binary")?;
        let allowed = format!("127.0.0.1:{daemon_port}");
        let spawn = |role: Option<&str>,
                     data: &Path,
                     log: &Path,
                     extra: &[(&str, &str)]|
         -> anyhow::Result<(Child, String)> {
            let mut cmd = Command::new(&exe);
            cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
                .arg(data)
                .arg("--allowed-hosts")
                .arg(&allowed)
                .env("GITVISTA_ADMIN_TOKEN", &admin_token)
                .env("GITVISTA_GITHUB_WEBHOOK_SECRET", &webhook_secret)
                .env("GITVISTA_POSTS_PER_MINUTE", "1000000")
                .env("GITVISTA_WS_PER_CLIENT", "1000000")
                // Every repository is pasted from this one address at once.
                .env("GITVISTA_CLONES_PER_CLIENT", "1000000")
                .env("GITVISTA_QUEUE_MAX", "1000000")
                .env("GITVISTA_MAX_REPOS", "1000000")
                .env("GITVISTA_WORK_MS_PER_SECOND", "1000000")
                .env_remove("DATABASE_URL")
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or("warn".into()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(log)?);
            if let Some(role) = role {
                cmd.args(["--role", role]);
            }
            for (k, v) in extra {
                cmd.env(k, v);
            }
            let mut server = cmd.spawn().context("starting gitvista serve")?;
            // The first stdout line names the URL; the rest is drained so the server never
            // blocks on a full pipe.
            let (tx, rx) = std::sync::mpsc::channel();
            if let Some(out) = server.stdout.take() {
                std::thread::spawn(move || {
                    let mut lines = BufReader::new(out).lines();
                    let _ = tx.send(lines.next().and_then(Result::ok));
                    lines.for_each(drop);
                });
            }
            let base = rx
                .recv_timeout(Duration::from_secs(60))
                .ok()
                .flatten()
                .and_then(|line| {
                    line.split_whitespace()
                        .find(|w| w.starts_with("http://127.0.0.1:"))
                        .map(|u| u.trim_end_matches('/').to_string())
                });
            match base {
                Some(base) => Ok((server, base)),
                None => {
                    stop_gracefully(&mut server, Duration::from_secs(1));
                    bail!(
                        "gitvista serve did not start: {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    )
                }
            }
        };
        let mut nodes = Vec::new();
        let mut database = None;
        let started = match &tiers {
            None => spawn(None, &dir.path().join("data"), &server_log, &[]),
            Some(t) => (|| {
                let (db, url) = RunDatabase::create(&t.database_url)?;
                database = Some(db);
                // Migrated once, before the nodes start.
                migrate(&exe, &dir.path().join("migrate"), &url)?;
                let secret = random_token()?;
                let common = [
                    ("DATABASE_URL", url.as_str()),
                    ("GITVISTA_REDIS_URL", t.redis_url.as_str()),
                    ("GITVISTA_CLUSTER_SECRET", secret.as_str()),
                ];
                for w in 0..t.workers {
                    let internal = format!("127.0.0.1:{}", free_port()?);
                    let mut env = common.to_vec();
                    env.push(("GITVISTA_INTERNAL_ADDR", internal.as_str()));
                    let (child, base) = spawn(
                        Some("worker"),
                        &dir.path().join(format!("worker-{w}")),
                        &dir.path().join(format!("worker-{w}.log")),
                        &env,
                    )?;
                    nodes.push(FleetNode {
                        role: "worker",
                        base,
                        child: Some(child),
                    });
                }
                let mut first = None;
                for w in 0..t.webs.max(1) {
                    let log = if w == 0 {
                        server_log.clone()
                    } else {
                        dir.path().join(format!("web-{w}.log"))
                    };
                    let (child, base) = spawn(
                        Some("web"),
                        &dir.path().join(format!("web-{w}")),
                        &log,
                        &common,
                    )?;
                    if first.is_none() {
                        first = Some((child, base.clone()));
                        nodes.insert(
                            w,
                            FleetNode {
                                role: "web",
                                base,
                                child: None,
                            },
                        );
                    } else {
                        nodes.insert(
                            w,
                            FleetNode {
                                role: "web",
                                base,
                                child: Some(child),
                            },
                        );
                    }
                }
                first.context("no web node")
            })(),
        };
        let (server, base) = match started {
            Ok(s) => s,
            Err(e) => {
                for node in &mut nodes {
                    if let Some(child) = &mut node.child {
                        stop_gracefully(child, Duration::from_secs(1));
                    }
                }
                if let Some(db) = database.take() {
                    db.drop_it();
                }
                return Err(e);
            }
        };
        let urls = sources
            .iter()
            .filter_map(|p| p.file_name())
            .map(|name| format!("git://127.0.0.1:{daemon_port}/{}", name.to_string_lossy()))
            .collect();
        Ok(Fleet {
            base,
            admin_token,
            webhook_secret,
            sources,
            urls,
            server_log,
            nodes,
            server,
            _daemon: daemon,
            database,
            _dir: dir,
        })
    }

    /// The server's process id.
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_repositories_hold_main_and_three_topics() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("r.git");
        generate(&repo, 40, 3).expect("generates");
        assert_eq!(
            git(&repo, &["rev-list", "--count", "main"]).expect("git"),
            "40"
        );
        assert_eq!(
            git(&repo, &["rev-list", "--all", "--count"]).expect("git"),
            "46"
        );
        let branches = git(&repo, &["for-each-ref", "--format=%(refname:short)"]).expect("git");
        assert_eq!(branches, "main\ntopic-0\ntopic-1\ntopic-2");
        let before = git(&repo, &["rev-parse", "main"]).expect("git");
        let (old, new) = commit(&repo, 7).expect("commits");
        assert_eq!(old, before);
        assert_eq!(git(&repo, &["rev-parse", "main^"]).expect("git"), before);
        assert_eq!(git(&repo, &["rev-parse", "main"]).expect("git"), new);
    }
}
