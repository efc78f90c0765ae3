//! gitwire against the real `git upload-pack` speaking protocol v2 (stateless, as smart HTTP
//! runs it): what it lists and sends is checked with git itself.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use gitcore::ObjectId;
use gitvista_testkit::{fixture, git};
use gitwire::pktline::Decoder;
use gitwire::v2::{
    Capabilities, FetchEvent, FetchRequest, FetchResponse, ProtocolError, RemoteRef, fetch_request,
    ls_refs_request, read_ls_refs,
};

/// `git upload-pack --stateless-rpc` on `repo` with protocol v2: the advertisement with
/// `advertise`, else the answer to `request`.
fn upload_pack(repo: &Path, request: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.arg("upload-pack").arg("--stateless-rpc");
    if request.is_none() {
        cmd.arg("--advertise-refs");
    }
    let mut child = cmd
        .arg(repo)
        .env("GIT_PROTOCOL", "version=2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("git upload-pack");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = request.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().expect("output");
    writer.join().expect("join").expect("write");
    out.stdout
}

fn caps(repo: &Path) -> Capabilities {
    let mut dec = Decoder::new();
    dec.push(&upload_pack(repo, None));
    let mut caps = Capabilities::default();
    assert!(caps.read(&mut dec).expect("advertisement"), "complete");
    caps
}

fn served(name: &str, tmp: &Path) -> std::path::PathBuf {
    let src = fixture(name, tmp).join("repo");
    let bare = gitvista_testkit::bare_clone(&src, &tmp.join(format!("{name}.git")));
    gitvista_testkit::allow_partial_clones(&bare);
    bare
}

fn list(repo: &Path, caps: &Capabilities, prefixes: &[&str]) -> Vec<RemoteRef> {
    let mut dec = Decoder::new();
    dec.push(&upload_pack(repo, Some(&ls_refs_request(caps, prefixes))));
    let mut refs = Vec::new();
    let hash = caps.object_format().expect("a known format");
    assert_eq!(read_ls_refs(&mut dec, hash, &mut refs), Ok(Some(())));
    refs
}

/// The pack and events of a fetch of `req` from `repo`, fed to the reader in small chunks.
fn fetch(repo: &Path, caps: &Capabilities, req: &FetchRequest) -> (Vec<u8>, Vec<FetchEvent>) {
    let response = upload_pack(repo, Some(&fetch_request(caps, req).expect("request")));
    let mut dec = Decoder::new();
    let mut reader = FetchResponse::new();
    let (mut pack, mut events) = (Vec::new(), Vec::new());
    for chunk in response.chunks(977) {
        dec.push(chunk);
        while let Some(e) = reader.next_event(&mut dec).expect("response") {
            match e {
                FetchEvent::Pack(b) => pack.extend_from_slice(&b),
                FetchEvent::End => break,
                other => events.push(other),
            }
        }
    }
    assert!(reader.ended(), "the response ended");
    (pack, events)
}

/// Indexes `pack` into a new bare repository with `refs`; answers its path.
fn store(tmp: &Path, name: &str, pack: &[u8], refs: &[RemoteRef]) -> std::path::PathBuf {
    let dir = tmp.join(name);
    git(tmp, &["init", "-q", "--bare", dir.to_str().expect("utf-8")]);
    let pack_path = dir.join("objects/pack/incoming.pack");
    std::fs::write(&pack_path, pack).expect("write");
    git(&dir, &["index-pack", pack_path.to_str().expect("utf-8")]);
    for r in refs {
        if let (Some(id), true) = (r.id, r.name.starts_with("refs/")) {
            git(&dir, &["update-ref", &r.name, &id.to_hex()]);
        }
    }
    dir
}

#[test]
fn ls_refs_lists_what_for_each_ref_lists_with_head_and_peeled_tags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = served("merges", tmp.path());
    let caps = caps(&repo);
    assert!(caps.fetch_has("filter"), "{caps:?}");
    assert!(caps.fetch_has("shallow"));
    let refs = list(&repo, &caps, &[]);
    let expected: Vec<String> = git(
        &repo,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname) %(*objectname)",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect();
    let ours: Vec<String> = refs
        .iter()
        .filter(|r| r.name != "HEAD")
        .map(|r| {
            format!(
                "{} {} {}",
                r.id.map(|i| i.to_hex()).unwrap_or_default(),
                r.name,
                r.peeled.map(|i| i.to_hex()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(ours, expected);
    let head = refs.iter().find(|r| r.name == "HEAD").expect("HEAD");
    assert_eq!(
        head.symref_target.as_deref(),
        Some(git(&repo, &["symbolic-ref", "HEAD"]).as_str())
    );
    // Prefixes narrow the listing.
    let heads = list(&repo, &caps, &["refs/heads/"]);
    assert!(!heads.is_empty() && heads.iter().all(|r| r.name.starts_with("refs/heads/")));
}

#[test]
fn a_commits_only_fetch_holds_every_commit_and_parent_git_lists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = served("merges", tmp.path());
    let caps = caps(&repo);
    let refs = list(&repo, &caps, &["refs/heads/", "refs/tags/"]);
    // Commits only: the tips that are commits (a tag naming a tree would want the tree).
    let commits: Vec<RemoteRef> = refs
        .into_iter()
        .filter(|r| {
            let id = r.peeled.or(r.id).expect("id");
            git(&repo, &["cat-file", "-t", &id.to_hex()]) == "commit"
        })
        .collect();
    let mut wants: Vec<ObjectId> = commits.iter().filter_map(|r| r.id).collect();
    wants.sort();
    wants.dedup();
    let (pack, events) = fetch(
        &repo,
        &caps,
        &FetchRequest {
            wants,
            filter: Some("tree:0".into()),
            ..FetchRequest::default()
        },
    );
    assert!(pack.starts_with(b"PACK"), "a pack");
    assert!(
        events.iter().any(|e| matches!(e, FetchEvent::Progress(_))),
        "progress arrives on band 2"
    );
    let got = store(tmp.path(), "treeless.git", &pack, &commits);
    assert_eq!(
        git(&got, &["rev-list", "--all", "--parents"]),
        git(&repo, &["rev-list", "--branches", "--tags", "--parents"])
    );
    let trees = git(&got, &["cat-file", "--batch-all-objects", "--batch-check"])
        .lines()
        .filter(|l| l.contains(" tree "))
        .count();
    assert_eq!(trees, 0, "commits only");
}

#[test]
fn a_deepened_fetch_says_which_commits_are_shallow_as_git_clone_depth_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = served("merges", tmp.path());
    let caps = caps(&repo);
    let heads = list(&repo, &caps, &["refs/heads/"]);
    let wants: Vec<ObjectId> = heads.iter().filter_map(|r| r.id).collect();
    let (_, events) = fetch(
        &repo,
        &caps,
        &FetchRequest {
            wants,
            filter: Some("tree:0".into()),
            deepen: Some(2),
            ..FetchRequest::default()
        },
    );
    let mut ours: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            FetchEvent::Shallow(id) => Some(id.to_hex()),
            _ => None,
        })
        .collect();
    ours.sort();
    let clone = tmp.path().join("shallow.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--depth=2",
            "--no-single-branch",
            "--no-tags",
            &format!("file://{}", repo.display()),
            clone.to_str().expect("utf-8"),
        ],
    );
    let mut theirs: Vec<String> = std::fs::read_to_string(clone.join("shallow"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    theirs.sort();
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs);
}

#[test]
fn one_object_can_be_wanted_and_a_filter_the_server_lacks_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = served("linear", tmp.path());
    let caps = caps(&repo);
    let blob: ObjectId =
        ObjectId::from_hex(git(&repo, &["rev-parse", "HEAD~3:file1.txt"]).as_bytes()).expect("id");
    let (pack, _) = fetch(
        &repo,
        &caps,
        &FetchRequest {
            wants: vec![blob],
            filter: Some("blob:none".into()),
            ..FetchRequest::default()
        },
    );
    let got = store(tmp.path(), "one.git", &pack, &[]);
    let size = git(&repo, &["cat-file", "-s", &blob.to_hex()]);
    assert_eq!(
        git(&got, &["cat-file", "--batch-all-objects", "--batch-check"]),
        format!("{blob} blob {size}"),
        "the one blob asked for, nothing else"
    );
    // A server without `filter`: the request is refused before anything is sent.
    git(&repo, &["config", "uploadpack.allowFilter", "false"]);
    let plain = self::caps(&repo);
    assert_eq!(
        fetch_request(
            &plain,
            &FetchRequest {
                wants: vec![blob],
                filter: Some("tree:0".into()),
                ..FetchRequest::default()
            }
        ),
        Err(ProtocolError::Missing("filter"))
    );
}

#[test]
fn a_server_error_inside_the_pack_and_a_section_that_does_not_exist_are_typed_errors() {
    use gitwire::pktline::{PktError, encode};
    let mut stream = Vec::new();
    encode(b"packfile\n", &mut stream);
    encode(b"\x02Enumerating objects: 3\r", &mut stream);
    encode(b"\x01PACK", &mut stream);
    encode(b"\x03fatal: the disk is full\n", &mut stream);
    let mut dec = Decoder::new();
    dec.push(&stream);
    let mut r = FetchResponse::new();
    let mut seen = Vec::new();
    let err = loop {
        match r.next_event(&mut dec) {
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("needs no more bytes"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err,
        ProtocolError::Pkt(PktError::Server("fatal: the disk is full".into()))
    );
    assert_eq!(
        seen,
        [
            FetchEvent::Progress("Enumerating objects: 3".into()),
            FetchEvent::Pack(b"PACK".to_vec())
        ]
    );
    let mut stream = Vec::new();
    encode(b"surprise\n", &mut stream);
    let mut dec = Decoder::new();
    dec.push(&stream);
    assert!(matches!(
        FetchResponse::new().next_event(&mut dec),
        Err(ProtocolError::Unexpected { offset: 0, .. })
    ));
}

mod over_git_daemon {
    use std::net::SocketAddr;
    use std::time::Duration;

    use gitcore::object::CommitRef;
    use gitcore::odb::ObjectKind;
    use gitcore::odb::stream::{PackStream, StreamLimits};
    use gitvista_testkit::{Hostile, git, git_daemon, hostile_git_server};
    use gitwire::daemon::{Connection, Limits, WireError};
    use gitwire::pktline::PktError;
    use gitwire::v2::{FetchEvent, FetchRequest, ProtocolError};

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_commits_only_fetch_streamed_into_gitcore_is_every_commit_and_parent_git_lists() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = super::served("forge_pack", tmp.path());
        let d = git_daemon(tmp.path());
        let name = repo
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let mut c = Connection::open(
            local(d.port),
            "127.0.0.1",
            &format!("/{name}"),
            Limits::default(),
        )
        .expect("connects");
        let refs = c.ls_refs(&["refs/heads/", "refs/tags/"]).expect("lists");
        // Commit tips only (a ref to a tree or blob would want objects the filter drops).
        let mut wants: Vec<_> = refs
            .iter()
            .filter_map(|r| r.peeled.or(r.id))
            .filter(|id| git(&repo, &["cat-file", "-t", &id.to_hex()]) == "commit")
            .collect();
        wants.sort();
        wants.dedup();
        let hash = c.capabilities().object_format().expect("a known format");
        let mut pack = PackStream::new(StreamLimits::default(), hash);
        let mut lines = Vec::new();
        let take = |pack: &mut PackStream, lines: &mut Vec<String>| -> Result<(), String> {
            while let Some(o) = pack.next_object().map_err(|e| e.to_string())? {
                if o.kind == ObjectKind::Commit {
                    let c = CommitRef::parse(&o.data).map_err(|e| e.to_string())?;
                    let mut line = o.id.to_hex();
                    for p in c.parents() {
                        line.push(' ');
                        line.push_str(&p.to_hex());
                    }
                    lines.push(line);
                }
            }
            Ok(())
        };
        c.fetch(
            &FetchRequest {
                wants,
                filter: Some("tree:0".into()),
                ..FetchRequest::default()
            },
            |e| {
                if let FetchEvent::Pack(bytes) = e {
                    pack.push(&bytes);
                    take(&mut pack, &mut lines)?;
                }
                Ok(())
            },
        )
        .expect("fetches");
        pack.end_of_input();
        take(&mut pack, &mut lines).expect("the last objects");
        pack.finish().expect("a whole pack");
        lines.sort();
        let mut expected: Vec<String> =
            git(&repo, &["rev-list", "--branches", "--tags", "--parents"])
                .lines()
                .map(str::to_string)
                .collect();
        expected.sort();
        assert!(expected.len() > 10);
        assert_eq!(lines, expected);
    }

    fn fails(port: u16, limits: Limits) -> WireError {
        let opened = Connection::open(local(port), "127.0.0.1", "/x", limits);
        let mut c = match opened {
            Err(e) => return e,
            Ok(c) => c,
        };
        let want =
            gitcore::ObjectId::from_hex(b"0123456789012345678901234567890123456789").expect("id");
        c.fetch(
            &FetchRequest {
                wants: vec![want],
                ..FetchRequest::default()
            },
            |_| Ok(()),
        )
        .expect_err("a hostile server")
    }

    #[test]
    fn hostile_servers_are_typed_errors_in_bounded_time_and_memory() {
        let quick = Limits {
            stall: Duration::from_millis(500),
            total: Duration::from_secs(10),
            max_bytes: 1 << 20,
            ..Limits::default()
        };
        let started = std::time::Instant::now();
        assert_eq!(
            fails(hostile_git_server(Hostile::Stall), quick),
            WireError::Timeout("no data from the server")
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            fails(hostile_git_server(Hostile::EndlessAdvertisement), quick),
            WireError::Protocol(ProtocolError::TooMany { .. })
        ));
        assert_eq!(
            fails(hostile_git_server(Hostile::EndlessProgress), quick),
            WireError::TooLarge(1 << 20)
        );
        assert_eq!(
            fails(hostile_git_server(Hostile::BandError), quick),
            WireError::Protocol(ProtocolError::Pkt(PktError::Server(
                "fatal: out of memory".into()
            )))
        );
        assert!(matches!(
            fails(hostile_git_server(Hostile::OversizedPacket), quick),
            WireError::Protocol(ProtocolError::Pkt(PktError::TooLong { len: 0xfff1, .. }))
        ));
        assert!(matches!(
            fails(hostile_git_server(Hostile::BadLength), quick),
            WireError::Protocol(ProtocolError::Pkt(PktError::BadLength { .. }))
        ));
        // A drip (a byte every 50 ms, never silent for the stall limit) meets the low-speed
        // rule, and no read outlasts the whole exchange's limit.
        let started = std::time::Instant::now();
        assert_eq!(
            fails(
                hostile_git_server(Hostile::Drip),
                Limits {
                    min_rate: Some((1000, Duration::from_secs(1))),
                    ..quick
                }
            ),
            WireError::Timeout("the server sends too slowly")
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        let started = std::time::Instant::now();
        assert_eq!(
            fails(
                hostile_git_server(Hostile::Stall),
                Limits {
                    stall: Duration::from_secs(30),
                    total: Duration::from_millis(700),
                    ..quick
                }
            ),
            WireError::Timeout("the whole exchange")
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Nobody listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        assert!(matches!(fails(closed, quick), WireError::Unreachable(_)));
    }
}

mod over_smart_http {
    use std::time::Duration;

    use gitvista_testkit::{git, git_http};
    use gitwire::daemon::{Limits, WireError};
    use gitwire::http::HttpRemote;
    use gitwire::v2::{FetchEvent, FetchRequest};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn ls_refs_and_a_deepened_commits_only_fetch_over_http_backend_v2() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = super::served("merges", tmp.path());
        let http = git_http(tmp.path());
        let url = format!("http://127.0.0.1:{}/merges.git", http.port);
        rt().block_on(async {
            let remote = HttpRemote::open(&url, None, Limits::default())
                .await
                .expect("capabilities");
            assert!(remote.capabilities().fetch_has("filter"));
            let refs = remote.ls_refs(&["refs/heads/"]).await.expect("refs");
            let expected = git(
                &repo,
                &[
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    "refs/heads/",
                ],
            );
            let ours: Vec<String> = refs
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r.id.map(|i| i.to_hex()).unwrap_or_default(),
                        r.name
                    )
                })
                .collect();
            assert_eq!(ours.join("\n"), expected);
            let mut shallow = 0;
            let mut pack = Vec::new();
            remote
                .fetch(
                    &FetchRequest {
                        wants: refs.iter().filter_map(|r| r.id).collect(),
                        filter: Some("tree:0".into()),
                        deepen: Some(1),
                        ..FetchRequest::default()
                    },
                    |e| {
                        match e {
                            FetchEvent::Shallow(_) => shallow += 1,
                            FetchEvent::Pack(b) => pack.extend_from_slice(&b),
                            _ => {}
                        }
                        Ok(())
                    },
                )
                .await
                .expect("fetches");
            assert!(pack.starts_with(b"PACK"));
            // Depth 1: every branch tip is shallow (those with parents).
            assert!(shallow >= 1, "{shallow}");
        });
    }

    #[test]
    fn redirects_error_statuses_and_a_stalling_server_are_typed_errors() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for (n, s) in listener.incoming().enumerate() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let answer = match n {
                    0 => {
                        "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
                    }
                    1 => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                    _ => {
                        std::thread::sleep(Duration::from_secs(5));
                        ""
                    }
                };
                let _ = s.write_all(answer.as_bytes());
            }
        });
        let url = format!("http://127.0.0.1:{port}/x.git");
        let quick = Limits {
            stall: Duration::from_millis(500),
            total: Duration::from_secs(3),
            ..Limits::default()
        };
        rt().block_on(async {
            let e = HttpRemote::open(&url, None, quick)
                .await
                .expect_err("redirect");
            assert!(
                matches!(&e, WireError::Unreachable(m) if m.contains("redirect")),
                "{e}"
            );
            let e = HttpRemote::open(&url, None, quick).await.expect_err("404");
            assert_eq!(e, WireError::Status(404));
            let started = std::time::Instant::now();
            let e = HttpRemote::open(&url, None, quick)
                .await
                .expect_err("stall");
            assert!(matches!(e, WireError::Timeout(_)), "{e}");
            assert!(started.elapsed() < Duration::from_secs(4));
        });
    }
}

#[test]
fn an_object_format_git_does_not_know_and_ids_of_the_other_length_are_refused() {
    use gitcore::oid::HashKind;
    use gitwire::pktline::{FLUSH, encode};
    let advertised = |format: Option<&str>| {
        let mut bytes = Vec::new();
        encode(b"version 2\n", &mut bytes);
        encode(b"ls-refs=unborn\n", &mut bytes);
        if let Some(f) = format {
            encode(format!("object-format={f}\n").as_bytes(), &mut bytes);
        }
        bytes.extend_from_slice(FLUSH);
        let mut dec = Decoder::new();
        dec.push(&bytes);
        let mut caps = Capabilities::default();
        assert!(caps.read(&mut dec).expect("advertisement"));
        caps
    };
    assert_eq!(advertised(None).object_format(), Ok(HashKind::Sha1));
    assert_eq!(
        advertised(Some("sha256")).object_format(),
        Ok(HashKind::Sha256)
    );
    assert_eq!(
        advertised(Some("sha512")).object_format(),
        Err(ProtocolError::ObjectFormat("sha512".into()))
    );
    // A listing whose ids are not of the advertised length is malformed, whichever way round.
    for (hash, id) in [
        (HashKind::Sha1, "a".repeat(64)),
        (HashKind::Sha256, "a".repeat(40)),
    ] {
        let mut bytes = Vec::new();
        encode(format!("{id} refs/heads/main\n").as_bytes(), &mut bytes);
        bytes.extend_from_slice(FLUSH);
        let mut dec = Decoder::new();
        dec.push(&bytes);
        let err = read_ls_refs(&mut dec, hash, &mut Vec::new()).expect_err("wrong length");
        assert!(
            matches!(err, ProtocolError::Unexpected { .. }),
            "{hash:?}: {err}"
        );
        let mut dec = Decoder::new();
        let mut ok = Vec::new();
        encode(
            format!("{} refs/heads/main\n", "a".repeat(hash.hex_len())).as_bytes(),
            &mut ok,
        );
        ok.extend_from_slice(FLUSH);
        dec.push(&ok);
        let mut refs = Vec::new();
        assert_eq!(read_ls_refs(&mut dec, hash, &mut refs), Ok(Some(())));
        assert_eq!(refs[0].id.map(|i| i.kind()), Some(hash));
    }
}
