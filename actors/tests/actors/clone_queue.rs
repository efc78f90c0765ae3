//! The CloneQueue against a real `git daemon` on 127.0.0.1: clones, joins, fetches, deepening,
//! timeouts, the disk cap, failures and hostile "URLs".

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use gitvista_actors::RepoId;
use gitvista_actors::clone_queue::{
    CloneConfig, CloneQueue, CloneShape, Enqueue, GetStats, JobError, JobKind, JobProgress,
    ListJobs, Priority,
};

use crate::common::{fixture, git};
use gitvista_testkit::{GitDaemon, dripping_remote, git_daemon as daemon};

fn config(data: &Path) -> CloneConfig {
    CloneConfig {
        protocols: vec!["https".into(), "git".into()],
        ..CloneConfig::new(data)
    }
}

fn id(s: &str) -> RepoId {
    RepoId::parse(s).expect("id")
}

fn clone_job(repo: &str, url: String) -> Enqueue {
    Enqueue {
        id: id(repo),
        kind: JobKind::Clone {
            url,
            depth: None,
            shape: CloneShape::Everything,
        },
        priority: Priority::Interactive,
        progress: None,
        client: None,
    }
}

fn count(dir: &Path) -> u64 {
    git(dir, &["rev-list", "--all", "--count"])
        .parse()
        .expect("count")
}

fn tmp_is_empty(data: &Path) -> bool {
    std::fs::read_dir(data.join("tmp")).map_or(true, |mut d| d.next().is_none())
}

/// Source repositories under one served directory: `linear` (30 commits).
fn served() -> (tempfile::TempDir, PathBuf, GitDaemon) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    let src = fixture("linear", tmp.path()).join("repo");
    std::fs::rename(&src, serve.join("linear")).expect("move");
    let d = daemon(&serve);
    (tmp, serve, d)
}

struct Progress(std::sync::Arc<std::sync::Mutex<Vec<JobProgress>>>);
impl Actor for Progress {
    type Context = Context<Self>;

    /// The queue offers progress without waiting (`try_send`): room for every line of a job,
    /// or lines past the default 16 are dropped.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(100_000);
    }
}
impl Handler<JobProgress> for Progress {
    type Result = ();
    fn handle(&mut self, msg: JobProgress, _: &mut Context<Self>) {
        self.0.lock().expect("lock").push(msg);
    }
}

#[actix::test]
async fn clones_over_git_daemon_and_fetches_what_was_pushed() {
    let (tmp, serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = Progress(seen.clone()).start();
    let mut job = clone_job("abc", url.clone());
    job.progress = Some(progress.recipient());
    queue.send(job).await.expect("mailbox").expect("clones");
    let clone = data.join("repos/abc");
    assert!(clone.join("HEAD").is_file());
    assert_eq!(count(&clone), count(&serve.join("linear")));
    assert!(tmp_is_empty(&data), "nothing left in tmp/");
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|p| p.phase.contains("objects")),
        "progress lines arrive: {:?}",
        seen.lock().expect("lock")
    );

    // A commit pushed to the source arrives with the next fetch.
    let src = serve.join("linear");
    std::fs::write(src.join("new.txt"), "new").expect("write");
    git(&src, &["add", "new.txt"]);
    git(&src, &["commit", "-q", "-m", "after the clone"]);
    queue
        .send(Enqueue {
            id: id("abc"),
            kind: JobKind::Fetch,
            priority: Priority::Background,
            progress: None,
            client: None,
        })
        .await
        .expect("mailbox")
        .expect("fetches");
    assert_eq!(count(&clone), count(&src));
    assert_eq!(
        git(&clone, &["rev-parse", "refs/heads/main"]),
        git(&src, &["rev-parse", "HEAD"])
    );
    // A fetch for a repository never cloned is refused without running git.
    let err = queue
        .send(Enqueue {
            id: id("nope"),
            kind: JobKind::Fetch,
            priority: Priority::Background,
            progress: None,
            client: None,
        })
        .await
        .expect("mailbox")
        .expect_err("not cloned");
    assert_eq!(err, JobError::NotCloned(id("nope")));
}

#[actix::test]
async fn ten_requests_for_one_repository_start_one_clone() {
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let jobs: Vec<_> = (0..10)
        .map(|_| queue.send(clone_job("same", url.clone())))
        .collect();
    for j in jobs {
        j.await.expect("mailbox").expect("clones");
    }
    let stats = queue.send(GetStats).await.expect("mailbox");
    assert_eq!((stats.started, stats.joined), (1, 9), "{stats:?}");
}

#[actix::test]
async fn a_shallow_first_clone_deepens_to_the_whole_history() {
    let (tmp, serve, d) = served();
    // Regression: `--depth` implies `--single-branch`, so a shallow-first clone held `main` only.
    git(&serve.join("linear"), &["branch", "side", "HEAD~10"]);
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let mut job = clone_job("shallow", url);
    job.kind = JobKind::Clone {
        url: format!("git://127.0.0.1:{}/linear", d.port),
        depth: Some(5),
        shape: CloneShape::Everything,
    };
    queue.send(job).await.expect("mailbox").expect("clones");
    let clone = data.join("repos/shallow");
    // Five from each branch tip.
    assert_eq!(count(&clone), 10);
    assert_eq!(
        git(
            &clone,
            &["for-each-ref", "--format=%(refname)", "refs/heads"]
        ),
        "refs/heads/main\nrefs/heads/side"
    );
    queue
        .send(Enqueue {
            id: id("shallow"),
            kind: JobKind::Deepen,
            priority: Priority::Background,
            progress: None,
            client: None,
        })
        .await
        .expect("mailbox")
        .expect("deepens");
    assert_eq!(count(&clone), count(&serve.join("linear")));
    assert!(!clone.join("shallow").exists());
}

#[actix::test]
async fn the_queue_lists_running_jobs_then_waiting_ones() {
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(CloneConfig {
        concurrency: 1,
        ..config(&data)
    })
    .start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let first = queue.send(clone_job("first", url.clone()));
    let second = queue.send(Enqueue {
        priority: Priority::Background,
        ..clone_job("second", url)
    });
    // Both messages are in the mailbox before ListJobs: one runs, one waits.
    let listing = queue.send(ListJobs);
    let (first, second, jobs) = tokio::join!(first, second, listing);
    let jobs = jobs.expect("mailbox");
    let summary: Vec<(&str, &str, bool, &str)> = jobs
        .iter()
        .map(|j| (j.id.as_str(), j.kind, j.running, j.priority))
        .collect();
    assert_eq!(
        summary,
        [
            ("first", "clone", true, "interactive"),
            ("second", "clone", false, "background")
        ]
    );
    assert_eq!(jobs[0].waiters, 1);
    first.expect("mailbox").expect("clones");
    second.expect("mailbox").expect("clones");
    assert!(queue.send(ListJobs).await.expect("mailbox").is_empty());
}

/// Regression: a fetch asked for while one ran was dropped, so a push landing during a timed
/// fetch (after it had read the remote) waited for the next timer.
#[actix::test]
async fn a_fetch_asked_for_while_one_runs_runs_after_it() {
    use gitvista_actors::repo_session::{FetchConfig, FetchNow, GetSnapshot};
    use gitvista_actors::{RepoSession, SessionConfig};
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    queue
        .send(clone_job("watched", url))
        .await
        .expect("mailbox")
        .expect("clones");
    let session = RepoSession::new(SessionConfig {
        watch: false,
        status: false,
        poll_interval: Duration::from_secs(3600),
        fetch: Some(FetchConfig {
            // No timed fetch within the test: only the two asked for.
            with_viewers: Duration::from_secs(3600),
            recent: Duration::from_secs(3600),
            cold: Duration::from_secs(3600),
            ..FetchConfig::new(queue.clone(), id("watched"))
        }),
        ..SessionConfig::local(data.join("repos/watched"))
    })
    .start();
    session
        .send(GetSnapshot)
        .await
        .expect("mailbox")
        .expect("loads");
    // Both are in the mailbox before the first git process can end.
    session.do_send(FetchNow);
    session.do_send(FetchNow);
    let mut stats = queue.send(GetStats).await.expect("mailbox");
    for _ in 0..200 {
        stats = queue.send(GetStats).await.expect("mailbox");
        if stats.started >= 3 && stats.running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The clone, the first fetch, and the second one after it (not joined to it, not dropped).
    assert_eq!(
        (stats.started, stats.joined, stats.running),
        (3, 0, 0),
        "{stats:?}"
    );
}

#[actix::test]
async fn timeouts_size_caps_and_failures_leave_no_directory() {
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let url = format!("git://127.0.0.1:{}/linear", d.port);

    let slow = CloneQueue::new(CloneConfig {
        clone_timeout: Duration::from_millis(1),
        ..config(&data)
    })
    .start();
    let err = slow
        .send(clone_job("slow", url.clone()))
        .await
        .expect("mailbox")
        .expect_err("times out");
    assert!(matches!(err, JobError::Timeout { .. }), "{err}");
    assert!(!data.join("repos/slow").exists() && tmp_is_empty(&data));

    let small = CloneQueue::new(CloneConfig {
        max_bytes: 1000,
        ..config(&data)
    })
    .start();
    let err = small
        .send(clone_job("big", url.clone()))
        .await
        .expect("mailbox")
        .expect_err("too large");
    assert_eq!(err, JobError::TooLarge { limit: 1000 });
    assert!(!data.join("repos/big").exists() && tmp_is_empty(&data));

    let queue = CloneQueue::new(config(&data)).start();
    let err = queue
        .send(clone_job(
            "missing",
            format!("git://127.0.0.1:{}/no-such-repo", d.port),
        ))
        .await
        .expect("mailbox")
        .expect_err("fails");
    assert!(
        matches!(&err, JobError::Git { kind: "clone", message } if !message.is_empty()),
        "{err}"
    );
    assert!(!data.join("repos/missing").exists() && tmp_is_empty(&data));
}

#[actix::test]
async fn option_like_and_local_urls_never_execute_anything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let marker = tmp.path().join("pwned");
    let queue = CloneQueue::new(config(&data)).start();
    let local = fixture("linear", tmp.path()).join("repo");
    for (n, url) in [
        format!("--upload-pack=touch {}", marker.display()),
        format!("-u touch {}", marker.display()),
        format!("ext::sh -c touch% {}", marker.display()),
        local.display().to_string(),
        format!("file://{}", local.display()),
    ]
    .into_iter()
    .enumerate()
    {
        let err = queue
            .send(clone_job(&format!("evil{n}"), url.clone()))
            .await
            .expect("mailbox")
            .expect_err("refused by git");
        assert!(matches!(err, JobError::Git { .. }), "{url}: {err}");
        assert!(!marker.exists(), "{url} ran a command");
        assert!(!data.join(format!("repos/evil{n}")).exists());
    }
}

#[actix::test]
async fn git_never_runs_when_the_servers_git_config_cannot_be_written() {
    // Regression: the write error was ignored and git ran with its own defaults.
    let (_tmp, _serve, d) = served();
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(data.path().join("gitconfig")).expect("a directory in its place");
    let queue = CloneQueue::new(config(data.path())).start();
    let result = queue
        .send(clone_job(
            "a1",
            format!("git://127.0.0.1:{}/linear", d.port),
        ))
        .await
        .expect("mailbox");
    match result {
        Err(JobError::Io(why)) => assert!(why.contains("git configuration"), "{why}"),
        other => panic!("git ran anyway: {other:?}"),
    }
    assert_eq!(queue.send(GetStats).await.expect("stats").started, 0);
    assert!(!data.path().join("repos").join("a1").exists());
}

#[actix::test]
async fn a_cancelled_clone_is_killed_and_leaves_nothing() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let data = tempfile::tempdir().expect("tempdir");
    let queue = CloneQueue::new(config(data.path())).start();
    let job = queue.send(clone_job("c1", format!("git://127.0.0.1:{port}/never")));
    let waiting = actix::spawn(job);
    // The clone hangs on a remote that never answers until it is cancelled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(queue.send(ListJobs).await.expect("jobs").len(), 1);
    let cancelled = queue
        .send(gitvista_actors::clone_queue::Cancel(id("c1")))
        .await
        .expect("cancel");
    assert_eq!(cancelled, 1);
    let result = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("ends at once")
        .expect("task")
        .expect("mailbox");
    assert_eq!(result, Err(JobError::Cancelled));
    assert!(queue.send(ListJobs).await.expect("jobs").is_empty());
    assert!(tmp_is_empty(data.path()));
    assert!(!data.path().join("repos").join("c1").exists());
    drop(silent);
}

#[actix::test]
async fn a_remote_that_drips_a_byte_a_second_is_stopped_at_the_low_speed_limit() {
    let drip = dripping_remote(60);
    let data = tempfile::tempdir().expect("tempdir");
    let queue = CloneQueue::new(CloneConfig {
        low_speed_time: Duration::from_secs(2),
        ..config(data.path())
    })
    .start();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        queue.send(clone_job("d1", format!("git://127.0.0.1:{drip}/x"))),
    )
    .await
    .expect("stopped long before the 10-minute timeout")
    .expect("mailbox");
    match result {
        Err(e @ JobError::Stalled { .. }) => {
            assert_eq!(
                e.class(),
                gitvista_actors::clone_queue::FailureClass::Timeout
            )
        }
        other => panic!("expected a stall, got {other:?}"),
    }
    assert!(tmp_is_empty(data.path()));
}

#[actix::test]
async fn slow_pasted_clones_cannot_take_the_slot_kept_for_watched_fetches() {
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    queue
        .send(clone_job("ready", url))
        .await
        .expect("mailbox")
        .expect("clones");
    // Two pasted clones of a remote that drips: with two slots, only one may run.
    let drip = dripping_remote(30);
    let a = actix::spawn(queue.send(clone_job("drip-a", format!("git://127.0.0.1:{drip}/a"))));
    let b = actix::spawn(queue.send(clone_job("drip-b", format!("git://127.0.0.1:{drip}/b"))));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = queue.send(ListJobs).await.expect("mailbox");
    let running: Vec<&str> = jobs
        .iter()
        .filter(|j| j.running)
        .map(|j| j.id.as_str())
        .collect();
    assert_eq!(running.len(), 1, "{jobs:?}");
    // A fetch for viewers takes the kept slot at once and finishes while a drip still runs.
    let fetched = tokio::time::timeout(
        Duration::from_secs(10),
        queue.send(Enqueue {
            id: id("ready"),
            kind: JobKind::Fetch,
            priority: Priority::Watched,
            progress: None,
            client: None,
        }),
    )
    .await
    .expect("the watched fetch did not wait for the drips")
    .expect("mailbox");
    fetched.expect("fetches");
    assert!(
        queue
            .send(ListJobs)
            .await
            .expect("mailbox")
            .iter()
            .any(|j| j.id.starts_with("drip") && j.running),
        "a drip still holds its slot"
    );
    queue
        .send(gitvista_actors::clone_queue::Cancel(id("drip-a")))
        .await
        .expect("mailbox");
    queue
        .send(gitvista_actors::clone_queue::Cancel(id("drip-b")))
        .await
        .expect("mailbox");
    let _ = (a.await, b.await);
}

#[actix::test]
async fn the_queue_admits_a_few_jobs_per_client_and_a_bounded_number_in_all() {
    use gitvista_actors::clone_queue::{Admit, QueueFull};
    let drip = dripping_remote(30);
    let data = tempfile::tempdir().expect("tempdir");
    let queue = CloneQueue::new(CloneConfig {
        concurrency: 1,
        per_client: 2,
        max_waiting: 3,
        ..config(data.path())
    })
    .start();
    let admit = |c: &str| queue.send(Admit { client: c.into() });
    let job = |name: &str, c: &str| Enqueue {
        client: Some(c.into()),
        ..clone_job(name, format!("git://127.0.0.1:{drip}/{name}"))
    };
    assert_eq!(admit("1.2.3.4").await.expect("mailbox"), Ok(()));
    let mut pending = Vec::new();
    for name in ["j1", "j2"] {
        pending.push(actix::spawn(queue.send(job(name, "1.2.3.4"))));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        admit("1.2.3.4").await.expect("mailbox"),
        Err(QueueFull::Client(2))
    );
    assert_eq!(
        admit("5.6.7.8").await.expect("mailbox"),
        Ok(()),
        "another client may"
    );
    for (name, c) in [("j3", "5.6.7.8"), ("j4", "9.9.9.9"), ("j5", "8.8.8.8")] {
        pending.push(actix::spawn(queue.send(job(name, c))));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        admit("7.7.7.7").await.expect("mailbox"),
        Err(QueueFull::Total(4))
    );
    for name in ["j1", "j2", "j3", "j4", "j5"] {
        queue
            .send(gitvista_actors::clone_queue::Cancel(id(name)))
            .await
            .expect("mailbox");
    }
    for p in pending {
        let _ = p.await;
    }
}

/// A private repository's server (smart HTTP behind Basic auth) is read with the credential the
/// lookup gives for that one job: without one git fails as `auth_required`; with the current
/// token it clones and fetches; when the lookup says nobody's credential works, no git runs and
/// the job fails as `auth_required` with the lookup's sentence. The token is in no file of the
/// clone.
#[actix::test]
async fn a_private_remote_is_read_with_the_credential_of_each_job() {
    use gitvista_actors::clone_queue::{Credential, Credentials, FailureClass};
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().expect("tempdir");
    let serve = tmp.path().join("serve");
    std::fs::create_dir_all(&serve).expect("dir");
    let src = fixture("linear", tmp.path()).join("repo");
    std::fs::rename(&src, serve.join("secret")).expect("move");
    let token = Arc::new(Mutex::new("ghu_first-token".to_string()));
    let current = Arc::clone(&token);
    let http = gitvista_testkit::git_http_basic(
        &serve,
        Arc::new(move |user: &str, password: &str| {
            user == "x-access-token" && password == *current.lock().expect("lock")
        }),
    );
    let url = format!("http://127.0.0.1:{}/secret", http.port);
    let job = |kind: JobKind| Enqueue {
        id: id("priv"),
        kind,
        priority: Priority::Interactive,
        progress: None,
        client: None,
    };
    let clone = JobKind::Clone {
        url: url.clone(),
        depth: None,
        shape: CloneShape::Everything,
    };

    // Anonymously: refused by the server.
    let data = tmp.path().join("anon");
    let anon = CloneQueue::new(CloneConfig {
        protocols: vec!["https".into(), "http".into()],
        ..CloneConfig::new(&data)
    })
    .start();
    let err = anon
        .send(job(clone.clone()))
        .await
        .expect("mailbox")
        .expect_err("needs credentials");
    assert_eq!(err.class(), FailureClass::AuthRequired, "{err}");
    assert!(!data.join("repos/priv").exists());

    // With the lookup's credential, which names whatever token is current at each job.
    let lookups = Arc::new(Mutex::new(0));
    let (asked, given, refuse) = (
        Arc::clone(&lookups),
        Arc::clone(&token),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let refusing = Arc::clone(&refuse);
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(CloneConfig {
        protocols: vec!["https".into(), "http".into()],
        credentials: Some(Credentials(Arc::new(move |rid: RepoId| {
            assert_eq!(rid.as_str(), "priv");
            *asked.lock().expect("lock") += 1;
            let answer = if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                Err("no user who tracks it can read it any more".to_string())
            } else {
                Ok(Some(Credential::basic(
                    "x-access-token",
                    &given.lock().expect("lock"),
                )))
            };
            Box::pin(async move { answer })
        }))),
        ..CloneConfig::new(&data)
    })
    .start();
    queue
        .send(job(clone))
        .await
        .expect("mailbox")
        .expect("clones with the token");
    let cloned = data.join("repos/priv");
    assert_eq!(count(&cloned), count(&serve.join("secret")));
    // The token rotates (a refresh); the next fetch asks again and uses the new one.
    *token.lock().expect("lock") = "ghu_second-token".to_string();
    let s = serve.join("secret");
    std::fs::write(s.join("new.txt"), "new").expect("write");
    git(&s, &["add", "new.txt"]);
    git(&s, &["commit", "-q", "-m", "after the clone"]);
    queue
        .send(job(JobKind::Fetch))
        .await
        .expect("mailbox")
        .expect("fetches with the new token");
    assert_eq!(count(&cloned), count(&s));
    assert_eq!(*lookups.lock().expect("lock"), 2, "one lookup per job");
    // No file of the clone holds either token (nor its base64 form).
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).expect("read");
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("ghu_") && !text.contains("eC1hY2Nlc3MtdG9rZW46"),
                    "{} holds a token",
                    e.path().display()
                );
            }
        }
    }
    // Nobody's credential works: git does not run, and the job says why.
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = queue
        .send(job(JobKind::Fetch))
        .await
        .expect("mailbox")
        .expect_err("no credential");
    assert_eq!(err.class(), FailureClass::AuthRequired);
    assert!(err.to_string().contains("can read it any more"), "{err}");
}

fn job(repo: &str, kind: JobKind) -> Enqueue {
    Enqueue {
        id: id(repo),
        kind,
        priority: Priority::Interactive,
        progress: None,
        client: None,
    }
}

/// Objects git lists in `dir` that are not there (`git cat-file --batch-check` of `all`).
fn absent(dir: &Path, all: &[String]) -> usize {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .args(["cat-file", "--batch-check"])
        .current_dir(dir)
        .env("GIT_NO_LAZY_FETCH", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = all.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("output");
    writer.join().expect("join").expect("write");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(" missing"))
        .count()
}

fn objects_of(dir: &Path) -> Vec<String> {
    git(dir, &["rev-list", "--objects", "--all"])
        .lines()
        .map(|l| l[..40].to_string())
        .collect()
}

#[actix::test]
async fn a_commits_only_clone_fetches_new_commits_objects_on_demand_and_hydrates_whole() {
    let (tmp, serve, d) = served();
    let src = serve.join("linear");
    gitvista_testkit::allow_partial_clones(&src);
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    queue
        .send(job(
            "tl",
            JobKind::Clone {
                url: url.clone(),
                depth: Some(2),
                shape: CloneShape::CommitsOnly,
            },
        ))
        .await
        .expect("mailbox")
        .expect("clones");
    let clone = data.join("repos/tl");
    // Every commit with its parents (no depth: commits only is the whole history), no tree.
    assert_eq!(
        git(&clone, &["rev-list", "--all", "--parents"]),
        git(&src, &["rev-list", "--all", "--parents"])
    );
    assert_eq!(
        gitcore::repo::Repository::discover(&clone)
            .expect("opens")
            .contents(),
        gitcore::repo::Contents::CommitsOnly
    );
    let head_tree = git(&src, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(absent(&clone, std::slice::from_ref(&head_tree)), 1);

    // A push arrives with the next fetch (through the promisor remote: by URL, git would look
    // for the blobs of the new commit's tree and fail).
    std::fs::write(src.join("new.txt"), "new").expect("write");
    git(&src, &["add", "new.txt"]);
    git(&src, &["commit", "-q", "-m", "after the clone"]);
    queue
        .send(job("tl", JobKind::Fetch))
        .await
        .expect("mailbox")
        .expect("fetches a commits-only clone");
    assert_eq!(
        git(&clone, &["rev-list", "--all", "--parents"]),
        git(&src, &["rev-list", "--all", "--parents"])
    );

    // One request's objects: a tree comes with its subtrees, a named blob with it, no other blob.
    let old_tree = git(&src, &["rev-parse", "HEAD~3^{tree}"]);
    let blob = git(&src, &["rev-parse", "HEAD~3:file1.txt"]);
    for ids in [vec![old_tree.clone()], vec![blob.clone()]] {
        queue
            .send(job("tl", JobKind::Objects { ids }))
            .await
            .expect("mailbox")
            .expect("fetches the objects");
    }
    assert_eq!(absent(&clone, &[old_tree.clone(), blob.clone()]), 0);
    let blobs_of_tree: Vec<String> = git(&src, &["ls-tree", "-r", &old_tree])
        .lines()
        .filter(|l| l.contains(" blob "))
        .map(|l| l.split_whitespace().nth(2).expect("id").to_string())
        .filter(|b| *b != blob)
        .collect();
    assert_eq!(
        absent(&clone, &blobs_of_tree),
        blobs_of_tree.len(),
        "blobs not asked for stay out"
    );
    // The new pack is a promisor pack (git's repack keeps it with the others).
    let promisors = std::fs::read_dir(clone.join("objects/pack"))
        .expect("packs")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".promisor"))
        .count();
    assert!(promisors >= 2, "{promisors} promisor packs");
    // An object the remote does not have: git's own words, no retry.
    let err = queue
        .send(job(
            "tl",
            JobKind::Objects {
                ids: vec!["0123456789012345678901234567890123456789".into()],
            },
        ))
        .await
        .expect("mailbox")
        .expect_err("no such object");
    assert!(
        matches!(&err, JobError::Git { message, .. } if message.contains("not our ref")),
        "{err:?}"
    );
    // Ids are checked before git runs.
    let err = queue
        .send(job(
            "tl",
            JobKind::Objects {
                ids: vec!["--upload-pack=touch /tmp/x".into()],
            },
        ))
        .await
        .expect("mailbox")
        .expect_err("refused");
    assert!(matches!(err, JobError::Io(_)), "{err:?}");

    // Hydration: a fresh clone with every object moves into place.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = Progress(seen.clone()).start();
    let mut hydrate = job("tl", JobKind::Hydrate { blobs: true });
    hydrate.priority = Priority::Background;
    hydrate.progress = Some(progress.recipient());
    queue
        .send(hydrate)
        .await
        .expect("mailbox")
        .expect("hydrates");
    assert_eq!(absent(&clone, &objects_of(&src)), 0, "every object is here");
    assert_eq!(
        gitcore::repo::Repository::discover(&clone)
            .expect("opens")
            .contents(),
        gitcore::repo::Contents::Complete
    );
    assert_eq!(
        git(&clone, &["config", "remote.origin.url"]),
        url,
        "the canonical URL, not the pinned one"
    );
    assert!(tmp_is_empty(&data), "nothing left in tmp/");
    // Progress messages are delivered to the recipient's mailbox, maybe after the job's answer.
    let received = || {
        seen.lock()
            .expect("lock")
            .iter()
            .any(|p| p.phase == "Receiving objects")
    };
    for _ in 0..100 {
        if received() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(received(), "hydration progress arrives: {:?}", seen.lock());
}

#[actix::test]
async fn a_commits_only_clone_of_a_server_that_does_not_filter_stops_at_once() {
    let (tmp, _serve, d) = served();
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let err = queue
        .send(job(
            "nf",
            JobKind::Clone {
                url: url.clone(),
                depth: None,
                shape: CloneShape::CommitsOnly,
            },
        ))
        .await
        .expect("mailbox")
        .expect_err("no filter");
    assert_eq!(err, JobError::NoFilter);
    assert!(!data.join("repos/nf").exists());
    assert!(tmp_is_empty(&data));
}

#[actix::test]
async fn object_fetches_run_beside_a_clone_that_holds_the_only_slot() {
    let (tmp, serve, d) = served();
    gitvista_testkit::allow_partial_clones(&serve.join("linear"));
    let drip = dripping_remote(60);
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(CloneConfig {
        concurrency: 1,
        ..config(&data)
    })
    .start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    queue
        .send(job(
            "ob",
            JobKind::Clone {
                url,
                depth: None,
                shape: CloneShape::CommitsOnly,
            },
        ))
        .await
        .expect("mailbox")
        .expect("clones");
    // A clone that never ends holds the one slot.
    let stuck = queue.send(clone_job("st", format!("git://127.0.0.1:{drip}/x")));
    let stuck = tokio::spawn(stuck);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tree = git(&serve.join("linear"), &["rev-parse", "HEAD^{tree}"]);
    tokio::time::timeout(
        Duration::from_secs(20),
        queue.send(job(
            "ob",
            JobKind::Objects {
                ids: vec![tree.clone()],
            },
        )),
    )
    .await
    .expect("not held up by the clone")
    .expect("mailbox")
    .expect("fetches");
    assert_eq!(absent(&data.join("repos/ob"), &[tree]), 0);
    assert_eq!(
        queue
            .send(gitvista_actors::clone_queue::Cancel(id("st")))
            .await
            .expect("mailbox"),
        1
    );
    let _ = stuck.await;
}

#[actix::test]
async fn a_ref_naming_a_tree_fails_a_commits_only_clone_and_a_clone_without_blobs_holds_it() {
    let (tmp, serve, d) = served();
    let src = serve.join("linear");
    gitvista_testkit::allow_partial_clones(&src);
    // As Linux's v2.6.11-tree: a tag naming a tree, which the tree:0 filter leaves out.
    let tree = git(&src, &["rev-parse", "HEAD~2^{tree}"]);
    git(&src, &["tag", "a-tree", &tree]);
    let data = tmp.path().join("data");
    let queue = CloneQueue::new(config(&data)).start();
    let url = format!("git://127.0.0.1:{}/linear", d.port);
    let clone = |shape| {
        job(
            "rt",
            JobKind::Clone {
                url: url.clone(),
                depth: None,
                shape,
            },
        )
    };
    let err = queue
        .send(clone(CloneShape::CommitsOnly))
        .await
        .expect("mailbox")
        .expect_err("a ref names a tree");
    assert_eq!(err, JobError::RefToTree);
    assert!(tmp_is_empty(&data));
    queue
        .send(clone(CloneShape::NoBlobs))
        .await
        .expect("mailbox")
        .expect("commits and trees");
    let repo = data.join("repos/rt");
    assert_eq!(absent(&repo, std::slice::from_ref(&tree)), 0);
    assert_eq!(
        gitcore::repo::Repository::discover(&repo)
            .expect("opens")
            .contents(),
        gitcore::repo::Contents::NoBlobs
    );
}
