//! A whole history streamed from `git daemon` and `git http-backend` into memory: the graph it
//! grows into equals the one gitcore loads from the served repository, and every graph shown
//! on the way is the newest part of it, cut where its parents have not come yet.

use std::net::SocketAddr;
use std::path::Path;

use gitcore::graph::{CommitGraph, LoadOptions};
use gitcore::odb::stream::StreamLimits;
use gitvista_testkit::{fixture, git, git_daemon, git_http};
use gitwire::daemon::{Limits, WireError};
use gitwire::history::{History, Target, stream_history};

fn served(name: &str, tmp: &Path) -> std::path::PathBuf {
    let src = fixture(name, tmp).join("repo");
    let bare = gitvista_testkit::bare_clone(&src, &tmp.join(format!("{name}.git")));
    gitvista_testkit::allow_partial_clones(&bare);
    bare
}

fn disk_graph(repo: &Path) -> CommitGraph {
    let disk_repo = gitcore::repo::Repository::discover(repo).expect("opens");
    CommitGraph::load_topology_with(
        &disk_repo,
        LoadOptions {
            use_commit_graph: false,
            scan_packs: true,
        },
    )
    .expect("loads")
}

fn rows(g: &CommitGraph) -> Vec<gitcore::ObjectId> {
    (0..g.len()).map(|i| g.oid(i as u32)).collect()
}

/// Streams `target`, checking every graph shown on the way; answers the history and how many
/// distinct partial graphs were seen.
fn stream_checked(target: &Target, final_rows: &[gitcore::ObjectId]) -> (History, usize) {
    let mut partial = 0;
    let mut last = 0;
    let history = stream_history(
        target,
        Limits::default(),
        StreamLimits::default(),
        |h: &History| {
            if h.is_complete() || h.commits() == last {
                return Ok(());
            }
            last = h.commits();
            let g = h.graph();
            assert!(g.problems().is_empty(), "{:?}", g.problems());
            assert_eq!(g.len(), h.commits());
            // Every commit shown is one of the history's, and the cut ones are marked.
            for i in 0..g.len() {
                assert!(final_rows.contains(&g.oid(i as u32)));
            }
            if g.len() < final_rows.len() {
                assert!(g.shallow_count() > 0, "a partial graph says it is cut");
                partial += 1;
            }
            Ok(())
        },
    )
    .map_err(|(e, _)| e)
    .expect("streams");
    (history, partial)
}

fn check_against_disk(name: &str, repo: &Path, target: &Target, want_partial: bool) {
    let disk = disk_graph(repo);
    let (history, partial) = stream_checked(target, &rows(&disk));
    assert!(history.is_complete());
    let ours = history.graph();
    assert_eq!(rows(&ours), rows(&disk), "{name}: rows");
    let refs_of = |g: &CommitGraph| {
        g.refs()
            .iter()
            .map(|r| (r.name.clone(), g.oid(r.commit)))
            .collect::<Vec<_>>()
    };
    assert_eq!(refs_of(&ours), refs_of(&disk), "{name}: refs");
    assert_eq!(ours.head_commit(), disk.head_commit(), "{name}: HEAD");
    assert_eq!(ours.shallow_count(), 0, "{name}: whole");
    // The commit set and parents are git's own.
    let mut lines: Vec<String> = (0..ours.len() as u32)
        .map(|i| {
            let mut l = ours.oid(i).to_hex();
            for p in ours.parents(i) {
                l.push(' ');
                l.push_str(&ours.oid(*p).to_hex());
            }
            l
        })
        .collect();
    lines.sort();
    let mut expected: Vec<String> = git(repo, &["rev-list", "--branches", "--tags", "--parents"])
        .lines()
        .map(str::to_string)
        .collect();
    expected.sort();
    assert_eq!(lines, expected, "{name}: commits and parents");
    if want_partial {
        assert!(
            partial >= 2,
            "{name}: the history was shown growing ({partial})"
        );
    }
    // Commits read from memory as from disk.
    let odb = gitcore::odb::Odb::held(history.objects(), history.hash(), Default::default());
    let mut reader = odb.reader();
    let head = ours.oid(ours.head_commit().expect("HEAD"));
    let (kind, data) = reader.read(&head).expect("in memory");
    assert_eq!(kind.as_str(), "commit");
    assert_eq!(
        gitcore::odb::stream::hash_object(history.hash(), kind, &data),
        head
    );
    assert_eq!(
        String::from_utf8_lossy(&data).trim_end(),
        git(repo, &["cat-file", "commit", &head.to_hex()])
    );
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_history_streamed_over_git_daemon_grows_into_the_graph_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = git_daemon(tmp.path());
    for name in ["merges", "forge_pack"] {
        let repo = served(name, tmp.path());
        let target = Target::Daemon {
            addr: local(d.port),
            host: "127.0.0.1".into(),
            path: format!("/{name}.git"),
        };
        check_against_disk(name, &repo, &target, false);
    }
    let repo = gitvista_testkit::long_history(tmp.path(), 4000);
    let target = Target::Daemon {
        addr: local(d.port),
        host: "127.0.0.1".into(),
        path: "/long.git".into(),
    };
    check_against_disk("long", &repo, &target, true);
}

#[test]
fn a_history_streamed_over_http_backend_grows_into_the_graph_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let http = git_http(tmp.path());
    let repo = gitvista_testkit::long_history(tmp.path(), 4000);
    let target = Target::Http {
        url: format!("http://127.0.0.1:{}/long.git", http.port),
        pin: None,
    };
    check_against_disk("long over http", &repo, &target, true);
    let repo = served("merges", tmp.path());
    let target = Target::Http {
        url: format!("http://127.0.0.1:{}/merges.git", http.port),
        pin: None,
    };
    check_against_disk("merges over http", &repo, &target, false);
}

#[test]
fn a_sha256_history_streams_over_git_daemon_and_http_backend() {
    // git 3.0's default object format: the server advertises `object-format=sha256`, the
    // listing and the pack carry 32-byte ids.
    let tmp = tempfile::tempdir().expect("tempdir");
    let src =
        gitvista_testkit::fixture_with("merges", tmp.path(), &[("GIT_DEFAULT_HASH", "sha256")])
            .join("repo");
    let repo = gitvista_testkit::bare_clone(&src, &tmp.path().join("s256.git"));
    gitvista_testkit::allow_partial_clones(&repo);
    assert_eq!(git(&repo, &["rev-parse", "--show-object-format"]), "sha256");
    let d = git_daemon(tmp.path());
    let http = git_http(tmp.path());
    for target in [
        Target::Daemon {
            addr: local(d.port),
            host: "127.0.0.1".into(),
            path: "/s256.git".into(),
        },
        Target::Http {
            url: format!("http://127.0.0.1:{}/s256.git", http.port),
            pin: None,
        },
    ] {
        check_against_disk("sha256", &repo, &target, false);
        let (history, _) = stream_checked(&target, &rows(&disk_graph(&repo)));
        assert_eq!(history.hash(), gitcore::oid::HashKind::Sha256);
        let head = history.graph();
        let head = head.oid(head.head_commit().expect("HEAD"));
        assert_eq!(head.to_hex(), git(&repo, &["rev-parse", "HEAD"]));
    }
}

#[test]
fn a_stream_cut_short_keeps_what_came_and_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = git_daemon(tmp.path());
    let _repo = gitvista_testkit::long_history(tmp.path(), 4000);
    let target = Target::Daemon {
        addr: local(d.port),
        host: "127.0.0.1".into(),
        path: "/long.git".into(),
    };
    // The caller's limit: stop after the first thousand commits.
    let (e, kept) = stream_history(&target, Limits::default(), StreamLimits::default(), |h| {
        if h.commits() >= 1000 {
            Err("enough".into())
        } else {
            Ok(())
        }
    })
    .expect_err("stopped");
    assert!(
        matches!(e, WireError::Refused(ref m) if m == "enough"),
        "{e}"
    );
    let kept = kept.expect("what came");
    assert!(!kept.is_complete());
    let g = kept.graph();
    assert!(g.len() >= 1000 && g.len() < 4000, "{}", g.len());
    assert!(g.problems().is_empty());
    assert!(g.shallow_count() > 0);
    // A repository that is not there is a typed error before anything came.
    let missing = Target::Daemon {
        addr: local(d.port),
        host: "127.0.0.1".into(),
        path: "/nothing-here.git".into(),
    };
    let (e, kept) = stream_history(&missing, Limits::default(), StreamLimits::default(), |_| {
        Ok(())
    })
    .expect_err("no such repository");
    assert!(kept.is_none());
    assert!(!e.to_string().is_empty());
}

#[test]
fn a_remote_sending_millions_of_tiny_objects_is_stopped_before_memory_grows() {
    use gitvista_testkit::{Hostile, hostile_git_server};
    let port = hostile_git_server(Hostile::TinyObjects);
    let target = Target::Daemon {
        addr: local(port),
        host: "127.0.0.1".into(),
        path: "/tiny.git".into(),
    };
    // The first view's budget (64 MiB here): every entry costs what holding it costs, however
    // small (a new object its id, kind, offset and place in the tables; these one-byte blobs
    // repeat 251 objects, and each repeat costs its offset's entry in a table), so the stream
    // stops long before the five million announced have come.
    let limits = StreamLimits::for_memory(64 << 20);
    let (e, _) =
        stream_history(&target, Limits::default(), limits, |_| Ok(())).expect_err("stopped");
    assert!(e.to_string().contains("pass the limit"), "{e}");
    // A count limit refuses the header itself.
    let counted = StreamLimits {
        max_count: 1_000_000,
        ..limits
    };
    let (e, _) =
        stream_history(&target, Limits::default(), counted, |_| Ok(())).expect_err("refused");
    assert!(e.to_string().contains("announces 5000000 objects"), "{e}");
}

#[test]
fn commits_sent_as_deltas_are_held_compressed_and_read_back_as_git_has_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = git_daemon(tmp.path());
    // Commits whose long messages repeat, repacked so that git stores most as deltas of
    // others; upload-pack sends them so.
    let repo = gitvista_testkit::long_history(tmp.path(), 3000);
    git(&repo, &["repack", "-adfq", "--window=50"]);
    let checks = git(
        &repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(deltabase)",
        ],
    );
    let deltified = checks
        .lines()
        .filter(|l| {
            l.starts_with("commit ") && !l.ends_with("0000000000000000000000000000000000000000")
        })
        .count();
    assert!(deltified > 1000, "{deltified} commits stored as deltas");
    let target = Target::Daemon {
        addr: local(d.port),
        host: "127.0.0.1".into(),
        path: "/long.git".into(),
    };
    let history = stream_history(&target, Limits::default(), StreamLimits::default(), |_| {
        Ok(())
    })
    .map_err(|(e, _)| e)
    .expect("streams");
    // Held in far fewer bytes than the objects themselves (about 900 bytes a commit here).
    assert!(
        history.held_bytes() < history.commits() * 300,
        "{} bytes for {} commits",
        history.held_bytes(),
        history.commits()
    );
    // Every commit reads back byte for byte as git has it.
    let odb = gitcore::odb::Odb::held(history.objects(), history.hash(), Default::default());
    let mut reader = odb.reader();
    let all = git(&repo, &["rev-list", "--all"]);
    let ids: Vec<&str> = all.lines().collect();
    assert_eq!(ids.len(), 3000);
    let mut batch = std::process::Command::new("git")
        .args(["cat-file", "--batch"])
        .current_dir(&repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git cat-file");
    let input = ids.join("\n") + "\n";
    let mut stdin = batch.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).expect("writes");
    });
    let out = batch.wait_with_output().expect("git cat-file runs");
    writer.join().expect("written");
    let mut rest = &out.stdout[..];
    for id in &ids {
        let header_end = rest.iter().position(|&b| b == b'\n').expect("header");
        let header = std::str::from_utf8(&rest[..header_end]).expect("utf-8");
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("size");
        let body = &rest[header_end + 1..header_end + 1 + size];
        rest = &rest[header_end + 2 + size..];
        let oid = gitcore::ObjectId::from_hex(id.as_bytes()).expect("id");
        let (kind, data) = reader.read(&oid).expect("held");
        assert_eq!(kind.as_str(), "commit");
        assert_eq!(&data[..], body, "{id}");
    }
}
