//! Packs read as they arrive (`PackStream`), checked against git: every object of every
//! fixture pack with its id, offset, kind and content, whatever the chunk size; and hostile
//! packs (cut short, lying about their count, bombs, bad checksums) as typed errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gitcore::odb::stream::{PackStream, StreamLimits, StreamedObject};
use gitcore::odb::{ObjectKind, OdbError};
use gitcore::oid::HashKind;

use crate::common::{all_repos, git, git_lines, hash_of};

/// Every `.pack` under the fixture repositories' object directories.
fn packs() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (name, path) in all_repos() {
        for objects in [path.join(".git/objects/pack"), path.join("objects/pack")] {
            let Ok(rd) = std::fs::read_dir(&objects) else {
                continue;
            };
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "pack") {
                    out.push((name.clone(), e.path()));
                }
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// The object format of the repository holding `pack`.
fn hash_of_pack(pack: &Path) -> HashKind {
    let repo = pack
        .ancestors()
        .find(|p| p.join("HEAD").is_file())
        .expect("repository");
    hash_of(repo)
}

/// Streams `bytes`, a pack of SHA-1 ids, in chunks of `chunk`: the objects, or the first error.
fn stream(
    bytes: &[u8],
    chunk: usize,
    limits: StreamLimits,
) -> Result<Vec<StreamedObject>, OdbError> {
    stream_as(HashKind::Sha1, bytes, chunk, limits)
}

/// [`stream`] for a pack of ids of `hash`.
fn stream_as(
    hash: HashKind,
    bytes: &[u8],
    chunk: usize,
    limits: StreamLimits,
) -> Result<Vec<StreamedObject>, OdbError> {
    let mut s = PackStream::new(limits, hash);
    let mut out = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        s.push(c);
        while let Some(o) = s.next_object()? {
            out.push(o);
        }
    }
    s.end_of_input();
    while let Some(o) = s.next_object()? {
        out.push(o);
    }
    s.finish()?;
    Ok(out)
}

/// (offset, id) of each entry of `pack`, as `git show-index` reads them from its index.
fn index_of(pack: &Path) -> BTreeMap<u64, String> {
    let idx = pack.with_extension("idx");
    let out = std::process::Command::new("git")
        .arg("show-index")
        .arg(format!("--object-format={}", hash_of_pack(pack).name()))
        .stdin(std::fs::File::open(&idx).expect("idx"))
        .output()
        .expect("git show-index");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let offset = f.next().expect("offset").parse().expect("number");
            (offset, f.next().expect("id").to_string())
        })
        .collect()
}

#[test]
fn every_fixture_pack_streams_to_the_objects_git_indexed() {
    let packs = packs();
    assert!(packs.len() >= 5, "{packs:?}");
    for (name, pack) in packs {
        let bytes = std::fs::read(&pack).expect("read");
        let objects = stream_as(hash_of_pack(&pack), &bytes, 4096, StreamLimits::default())
            .unwrap_or_else(|e| panic!("{name} {}: {e}", pack.display()));
        let ours: BTreeMap<u64, String> =
            objects.iter().map(|o| (o.offset, o.id.to_hex())).collect();
        assert_eq!(ours, index_of(&pack), "{name}: ids and offsets");
        // Kinds and contents, as git reads them (a sample of each pack: the first 50).
        let repo = pack
            .ancestors()
            .find(|p| p.join("HEAD").is_file())
            .expect("repository");
        for o in objects.iter().take(50) {
            let hex = o.id.to_hex();
            assert_eq!(
                git_lines(repo, &["cat-file", "-t", &hex])[0],
                o.kind.as_str(),
                "{name} {hex}"
            );
            let content = git(repo, &["cat-file", o.kind.as_str(), &hex]);
            assert_eq!(&content[..], &o.data[..], "{name} {hex}");
        }
    }
}

#[test]
fn chunk_sizes_do_not_change_what_a_pack_streams_to() {
    let (name, pack) = packs()
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack");
    let bytes = std::fs::read(&pack).expect("read");
    let hash = hash_of_pack(&pack);
    let whole = stream_as(hash, &bytes, bytes.len(), StreamLimits::default()).expect("streams");
    for chunk in [1, 7, 100, 65536] {
        let ours = stream_as(hash, &bytes, chunk, StreamLimits::default()).expect("streams");
        assert_eq!(ours, whole, "{name}: chunks of {chunk}");
    }
}

/// The largest fixture pack's bytes, and the hash of its ids.
fn some_pack() -> (Vec<u8>, HashKind) {
    let (_, pack) = packs()
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack");
    (std::fs::read(&pack).expect("read"), hash_of_pack(&pack))
}

fn reason(e: OdbError) -> String {
    match e {
        OdbError::Corrupt { reason, offset, .. } => format!("{reason} @{offset:?}"),
        other => other.to_string(),
    }
}

#[test]
fn hostile_packs_are_typed_errors_with_their_offset() {
    let (good, hash) = some_pack();
    let limits = StreamLimits::default();
    let count = u32::from_be_bytes([good[8], good[9], good[10], good[11]]);
    let with_count = |n: u32| {
        let mut b = good.clone();
        b[8..12].copy_from_slice(&n.to_be_bytes());
        b
    };
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let mut after = good.clone();
    after.extend_from_slice(b"more");
    let cases: Vec<(Vec<u8>, StreamLimits, &str, &str)> = vec![
        (
            good[..good.len() / 3].to_vec(),
            limits,
            "ended after",
            "cut short",
        ),
        (
            good[..good.len() - 5].to_vec(),
            limits,
            "ended after",
            "cut inside the checksum",
        ),
        (
            with_count(count + 1),
            limits,
            "",
            "one object more announced than sent",
        ),
        (
            with_count(count - 1),
            limits,
            "",
            "one object fewer announced than sent",
        ),
        (flipped, limits, "", "a flipped byte"),
        (
            after,
            limits,
            "data after the end",
            "bytes after the trailer",
        ),
        (
            b"PACX\0\0\0\x02\0\0\0\x01".to_vec(),
            limits,
            "no PACK signature",
            "not a pack",
        ),
        (
            with_count(u32::MAX),
            StreamLimits {
                max_count: 1000,
                ..limits
            },
            "announces",
            "an absurd count",
        ),
        (
            good.clone(),
            StreamLimits {
                max_object: 16,
                ..limits
            },
            "over the limit",
            "an object over the size limit",
        ),
        (
            good.clone(),
            StreamLimits {
                max_kept: 1000,
                ..limits
            },
            "pass the limit",
            "more kept than allowed",
        ),
    ];
    for (bytes, limits, expected, why) in cases {
        let err = stream_as(hash, &bytes, 997, limits).expect_err(why);
        let r = reason(err);
        assert!(r.contains(expected), "{why}: {r}");
    }
}

#[test]
fn a_small_entry_that_inflates_without_end_is_stopped_at_its_announced_size() {
    // One blob announcing 10 bytes whose zlib stream holds a megabyte of zeros.
    let mut z = zlib_stored(&vec![0u8; 1 << 20]);
    let mut pack = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    pack.push(0x30 | 10); // blob, size 10
    pack.append(&mut z);
    let mut h = sha1_of(&pack);
    pack.append(&mut h);
    let err = stream(&pack, 4096, StreamLimits::default()).expect_err("a bomb");
    assert!(reason(err).contains("past the announced size"), "bomb");
    // The same entry honestly sized reads (and names itself as git would).
    let body = b"hello world";
    let mut pack = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    pack.push(0x30 | body.len() as u8);
    pack.append(&mut zlib_stored(body));
    let mut h = sha1_of(&pack);
    pack.append(&mut h);
    let objects = stream(&pack, 3, StreamLimits::default()).expect("reads");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].kind, ObjectKind::Blob);
    assert_eq!(
        objects[0].id.to_hex(),
        "95d09f2b10159347eece71399a7e2e907ea3df4f",
        "git hash-object of \"hello world\""
    );
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // zlib with stored blocks: no compressor needed in the tests (adler32 by hand).
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65535).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn sha1_of(data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("x");
    std::fs::write(&f, data).expect("write");
    let out = std::process::Command::new("sha1sum")
        .arg(&f)
        .output()
        .expect("sha1sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    (0..20)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A bare clone of fixture `name` (one pack, branches and tags), optionally shallow.
fn bare_clone(name: &str, depth: Option<u32>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("c.git");
    let src = crate::common::fixture(name).join("repo");
    let mut args = vec!["clone".to_string(), "-q".into(), "--bare".into()];
    match depth {
        Some(d) => args.extend([format!("--depth={d}"), "--no-single-branch".into()]),
        None => args.push("--no-local".into()),
    }
    args.push(format!("file://{}", src.display()));
    args.push(dest.to_str().expect("utf-8").into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git(tmp.path(), &args);
    (tmp, dest)
}

/// The graph `from_objects` builds from `repo`'s pack and refs, beside the one loaded from disk:
/// the same rows, refs and HEAD.
fn same_graph_as_on_disk(name: &str, repo: &Path) {
    use gitcore::graph::{CommitGraph, ListedRef, LoadOptions};
    let pack = std::fs::read_dir(repo.join("objects/pack"))
        .expect("packs")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("a pack");
    let objects = stream_as(
        hash_of(repo),
        &std::fs::read(&pack).expect("read"),
        8192,
        StreamLimits::default(),
    )
    .expect("streams");
    let refs: Vec<ListedRef> = git_lines(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname)",
        ],
    )
    .into_iter()
    .map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        ListedRef {
            name: f[0].to_string(),
            target: crate::common::oid(f[1]),
            peeled: f
                .get(2)
                .filter(|p| !p.is_empty())
                .map(|p| crate::common::oid(p)),
        }
    })
    .collect();
    let shallow: Vec<gitcore::ObjectId> = std::fs::read_to_string(repo.join("shallow"))
        .unwrap_or_default()
        .lines()
        .map(crate::common::oid)
        .collect();
    let disk_repo = gitcore::repo::Repository::discover(repo).expect("opens");
    let disk = CommitGraph::load_topology_with(
        &disk_repo,
        LoadOptions {
            use_commit_graph: false,
            scan_packs: true,
        },
    )
    .expect("loads");
    let ours = CommitGraph::from_objects(
        objects.iter().map(|o| (o.id, o.kind, &o.data[..])),
        &refs,
        disk.head().cloned(),
        shallow,
    );
    let rows = |g: &CommitGraph| (0..g.len()).map(|i| g.oid(i as u32)).collect::<Vec<_>>();
    assert_eq!(rows(&ours), rows(&disk), "{name}: rows");
    let refs_of = |g: &CommitGraph| {
        g.refs()
            .iter()
            .map(|r| (r.name.clone(), g.oid(r.commit)))
            .collect::<Vec<_>>()
    };
    assert_eq!(refs_of(&ours), refs_of(&disk), "{name}: refs");
    assert_eq!(ours.head_commit(), disk.head_commit(), "{name}: HEAD");
    assert_eq!(
        ours.shallow_count(),
        disk.shallow_count(),
        "{name}: shallow"
    );
}

#[test]
fn a_graph_from_streamed_objects_is_the_graph_loaded_from_disk() {
    for name in [
        "merges",
        "linear",
        "many_parents",
        "skew",
        "forge_pack",
        "search",
    ] {
        let (_tmp, repo) = bare_clone(name, None);
        same_graph_as_on_disk(name, &repo);
    }
    for name in ["merges", "forge_pack"] {
        let (_tmp, repo) = bare_clone(name, Some(2));
        same_graph_as_on_disk(&format!("{name}, depth 2"), &repo);
    }
}

/// A valid pack of `n` one-byte blobs (each a different byte, so distinct objects cycle).
fn tiny_objects(n: u32) -> Vec<u8> {
    let mut pack = b"PACK\0\0\0\x02".to_vec();
    pack.extend_from_slice(&n.to_be_bytes());
    for i in 0..n {
        pack.push(0x30 | 1); // blob, size 1
        pack.append(&mut zlib_stored(&[(i % 251) as u8]));
    }
    let mut h = sha1_of(&pack);
    pack.append(&mut h);
    pack
}

#[test]
fn millions_of_tiny_objects_count_what_keeping_them_costs() {
    use gitcore::odb::stream::KEPT_OBJECT_COST;
    // 2,000 one-byte blobs are 2,000 bytes of objects but hold far more: with a budget of
    // 100 KB they are refused (each costs its byte and KEPT_OBJECT_COST).
    let pack = tiny_objects(2_000);
    let budget = 100_000;
    let limits = StreamLimits {
        max_kept: budget,
        ..StreamLimits::default()
    };
    let err = stream(&pack, 4096, limits).expect_err("over the budget");
    assert!(reason(err).contains("pass the limit"), "tiny objects");
    // Within a budget that fits them, they read.
    let fits = 2_000 * (1 + KEPT_OBJECT_COST);
    let limits = StreamLimits {
        max_kept: fits,
        ..StreamLimits::default()
    };
    assert_eq!(stream(&pack, 4096, limits).expect("fits").len(), 2_000);
    // A header announcing more objects than the count allows is refused before any entry is
    // read.
    let limits = StreamLimits {
        max_count: 1_000_000,
        ..StreamLimits::for_memory(budget)
    };
    let mut header = b"PACK\0\0\0\x02".to_vec();
    header.extend_from_slice(&5_000_000u32.to_be_bytes());
    let mut s = PackStream::new(limits, HashKind::Sha1);
    s.push(&header);
    let err = s.next_object().expect_err("announced too many");
    assert!(reason(err).contains("announces 5000000 objects"), "count");
}
