//! Hostile and broken repositories: each problem is a typed error naming the file (and offset),
//! found in bounded time and memory, and the rest of the repository stays readable.

use std::path::{Path, PathBuf};

use gitcore::ObjectId;
use gitcore::graph::CommitGraph;
use gitcore::odb::idx::PackIndex;
use gitcore::odb::{Odb, OdbError, OdbOptions};
use gitcore::repo::Repository;
use sha1::{Digest, Sha1};

use crate::common::{fresh_fixture, git_lines, hash_of, oid};
use gitcore::oid::HashKind;

/// One crafted pack entry.
enum Entry {
    /// A whole object: type code (1 commit .. 4 tag) and its bytes.
    Base(u8, Vec<u8>),
    /// An object whose header announces `declared` bytes but whose stream holds `data`.
    Lying(u8, u64, Vec<u8>),
    /// A delta against the entry `distance` bytes back (raw, so it can be hostile).
    Ofs(u64, Vec<u8>),
    /// A delta against an object id.
    Ref(ObjectId, Vec<u8>),
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

fn entry_header(kind: u8, size: u64) -> Vec<u8> {
    let mut out = vec![(kind << 4) | (size & 15) as u8];
    let mut rest = size >> 4;
    while rest > 0 {
        *out.last_mut().expect("non-empty") |= 0x80;
        out.push((rest & 0x7f) as u8);
        rest >>= 7;
    }
    out
}

fn ofs_distance(mut d: u64) -> Vec<u8> {
    let mut bytes = vec![(d & 0x7f) as u8];
    d >>= 7;
    while d > 0 {
        d -= 1;
        bytes.push(0x80 | (d & 0x7f) as u8);
        d >>= 7;
    }
    bytes.reverse();
    bytes
}

fn delta_varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A delta that copies `size` bytes at `offset` of a `base_len`-byte base into a `result`-byte
/// object.
fn copy_delta(base_len: u64, result: u64, offset: u8, size: u8) -> Vec<u8> {
    let mut d = delta_varint(base_len);
    d.extend(delta_varint(result));
    d.extend([0x80 | 0x01 | 0x10, offset, size]);
    d
}

/// Writes `entries` (with the ids given) as a pack plus a v2 index into `objects/pack`, returning
/// the pack's path and each entry's offset.
fn write_pack(objects: &Path, entries: &[(ObjectId, Entry)]) -> (PathBuf, Vec<u64>) {
    let mut pack = b"PACK".to_vec();
    pack.extend(2u32.to_be_bytes());
    pack.extend((entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::new();
    for (_, e) in entries {
        let at = pack.len() as u64;
        offsets.push(at);
        match e {
            Entry::Base(kind, data) => {
                pack.extend(entry_header(*kind, data.len() as u64));
                pack.extend(zlib(data));
            }
            Entry::Lying(kind, declared, data) => {
                pack.extend(entry_header(*kind, *declared));
                pack.extend(zlib(data));
            }
            Entry::Ofs(distance, delta) => {
                pack.extend(entry_header(6, delta.len() as u64));
                pack.extend(ofs_distance(*distance));
                pack.extend(zlib(delta));
            }
            Entry::Ref(base, delta) => {
                pack.extend(entry_header(7, delta.len() as u64));
                pack.extend(base.as_bytes());
                pack.extend(zlib(delta));
            }
        }
    }
    let pack_sum = Sha1::digest(&pack).to_vec();
    pack.extend(&pack_sum);

    let mut sorted: Vec<(ObjectId, u64)> = entries
        .iter()
        .zip(&offsets)
        .map(|((id, _), &o)| (*id, o))
        .collect();
    sorted.sort();
    let mut idx = b"\xfftOc".to_vec();
    idx.extend(2u32.to_be_bytes());
    for b in 0..256u32 {
        let n = sorted
            .iter()
            .filter(|(id, _)| u32::from(id.first_byte()) <= b)
            .count() as u32;
        idx.extend(n.to_be_bytes());
    }
    for (id, _) in &sorted {
        idx.extend(id.as_bytes());
    }
    for _ in &sorted {
        idx.extend(0u32.to_be_bytes());
    }
    for (_, o) in &sorted {
        idx.extend((*o as u32).to_be_bytes());
    }
    idx.extend(&pack_sum);
    let idx_sum = Sha1::digest(&idx).to_vec();
    idx.extend(idx_sum);

    let dir = objects.join("pack");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let name = format!("pack-{}", hex(&pack_sum));
    let pack_path = dir.join(format!("{name}.pack"));
    std::fs::write(&pack_path, &pack).expect("write pack");
    std::fs::write(dir.join(format!("{name}.idx")), &idx).expect("write idx");
    (pack_path, offsets)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fake_id(n: u8) -> ObjectId {
    ObjectId::from_bytes([n; 20])
}

fn empty_objects() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let objects = tmp.path().join("objects");
    std::fs::create_dir_all(&objects).expect("mkdir");
    (tmp, objects)
}

/// Reads `id` from a database over `objects` and returns the error, checking it names the pack.
fn read_error(objects: &Path, options: OdbOptions, id: ObjectId) -> OdbError {
    let odb = Odb::open(objects, HashKind::Sha1, options).expect("opens");
    assert!(odb.problems().is_empty(), "{:?}", odb.problems());
    let mut reader = odb.reader();
    reader.read(&id).expect_err("read must fail")
}

fn assert_corrupt_in_pack(err: &OdbError, needle: &str) {
    match err {
        OdbError::Corrupt {
            path,
            offset,
            reason,
        } => {
            assert!(path.extension().is_some_and(|e| e == "pack"), "{err}");
            assert!(offset.is_some(), "{err}");
            assert!(reason.contains(needle), "{err}");
        }
        other => panic!("expected Corrupt({needle}), got {other}"),
    }
}

#[test]
fn delta_copying_out_of_range_is_corrupt() {
    let (_tmp, objects) = empty_objects();
    let base = b"0123456789".to_vec();
    let (_, offsets) = write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Base(3, base)),
            (fake_id(2), Entry::Ofs(0, Vec::new())), // placeholder, rewritten below
        ],
    );
    // Now the real pack: the delta's distance is known from the first pack's layout.
    std::fs::remove_dir_all(objects.join("pack")).expect("rm");
    let second_offset = offsets[1];
    write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Base(3, b"0123456789".to_vec())),
            (
                fake_id(2),
                Entry::Ofs(second_offset - offsets[0], copy_delta(10, 8, 5, 8)),
            ),
        ],
    );
    let err = read_error(&objects, OdbOptions::default(), fake_id(2));
    assert_corrupt_in_pack(&err, "out of a 10-byte base");
    // The base itself still reads.
    let odb = Odb::open(&objects, HashKind::Sha1, OdbOptions::default()).expect("opens");
    assert_eq!(
        odb.reader().read(&fake_id(1)).expect("base").1,
        b"0123456789"
    );
}

#[test]
fn ofs_delta_to_itself_or_before_the_pack_is_corrupt() {
    for distance in [0u64, 1 << 20] {
        let (_tmp, objects) = empty_objects();
        write_pack(
            &objects,
            &[
                (fake_id(1), Entry::Base(3, b"base".to_vec())),
                (fake_id(2), Entry::Ofs(distance, copy_delta(4, 4, 0, 4))),
            ],
        );
        let err = read_error(&objects, OdbOptions::default(), fake_id(2));
        assert_corrupt_in_pack(&err, "does not point backwards");
    }
}

#[test]
fn ref_delta_cycle_is_corrupt() {
    let (_tmp, objects) = empty_objects();
    write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Ref(fake_id(2), copy_delta(4, 4, 0, 4))),
            (fake_id(2), Entry::Ref(fake_id(1), copy_delta(4, 4, 0, 4))),
        ],
    );
    let err = read_error(&objects, OdbOptions::default(), fake_id(1));
    assert_corrupt_in_pack(&err, "loops");
    let odb = Odb::open(&objects, HashKind::Sha1, OdbOptions::default()).expect("opens");
    let err = odb
        .reader()
        .read_header(&fake_id(2))
        .expect_err("header fails too");
    assert!(matches!(err, OdbError::Corrupt { .. }), "{err}");
}

#[test]
fn delta_chain_deeper_than_the_cap_is_corrupt() {
    let (_tmp, objects) = empty_objects();
    // Each delta copies the whole 4-byte base; entries are laid out back to back, so compute the
    // distances from a first write.
    let mut entries = vec![(fake_id(0), Entry::Base(3, b"abcd".to_vec()))];
    for i in 1..=20u8 {
        entries.push((fake_id(i), Entry::Ofs(1, copy_delta(4, 4, 0, 4))));
    }
    let (_, offsets) = write_pack(&objects, &entries);
    std::fs::remove_dir_all(objects.join("pack")).expect("rm");
    let mut entries = vec![(fake_id(0), Entry::Base(3, b"abcd".to_vec()))];
    for i in 1..=20usize {
        entries.push((
            fake_id(i as u8),
            Entry::Ofs(offsets[i] - offsets[i - 1], copy_delta(4, 4, 0, 4)),
        ));
    }
    write_pack(&objects, &entries);
    let odb = Odb::open(&objects, HashKind::Sha1, OdbOptions::default()).expect("opens");
    assert_eq!(
        odb.reader().read(&fake_id(20)).expect("20 deep is fine").1,
        b"abcd"
    );
    let shallow_cap = OdbOptions {
        max_delta_depth: 10,
        ..OdbOptions::default()
    };
    let err = read_error(&objects, shallow_cap, fake_id(20));
    assert_corrupt_in_pack(&err, "deeper than 10");
}

#[test]
fn lying_sizes_and_zlib_bombs_are_refused_without_allocating_them() {
    let (_tmp, objects) = empty_objects();
    let bomb = vec![0u8; 64 << 20];
    write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Lying(3, 1 << 40, b"tiny".to_vec())),
            (fake_id(2), Entry::Lying(3, 1 << 19, b"tiny".to_vec())),
            (fake_id(3), Entry::Lying(3, 2, b"longer than two".to_vec())),
            (fake_id(4), Entry::Base(3, bomb)),
        ],
    );
    let limits = OdbOptions {
        max_object_size: 1 << 20,
        ..OdbOptions::default()
    };
    let err = read_error(&objects, limits, fake_id(1));
    assert!(
        matches!(err, OdbError::TooLarge { size, .. } if size == 1 << 40),
        "{err}"
    );
    let err = read_error(&objects, limits, fake_id(2));
    assert_corrupt_in_pack(&err, "announced 524288");
    let err = read_error(&objects, limits, fake_id(3));
    assert_corrupt_in_pack(&err, "past the announced size");
    let err = read_error(&objects, limits, fake_id(4));
    assert!(matches!(err, OdbError::TooLarge { .. }), "{err}");
}

#[test]
fn idx_offset_past_the_end_is_corrupt() {
    let (_tmp, objects) = empty_objects();
    let (pack, _) = write_pack(&objects, &[(fake_id(1), Entry::Base(3, b"x".to_vec()))]);
    // Point the only offset far past the pack and fix the index checksum.
    let idx_path = pack.with_extension("idx");
    let mut idx = std::fs::read(&idx_path).expect("read idx");
    let off_at = 8 + 1024 + 20 + 4;
    idx[off_at..off_at + 4].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
    let n = idx.len() - 20;
    let sum = Sha1::digest(&idx[..n]).to_vec();
    idx[n..].copy_from_slice(&sum);
    std::fs::write(&idx_path, &idx).expect("write idx");
    let err = read_error(&objects, OdbOptions::default(), fake_id(1));
    assert_corrupt_in_pack(&err, "outside the pack");
}

#[test]
fn wrong_idx_checksum_truncated_and_wrong_pack_checksum_are_named() {
    let (_tmp, repo) = fresh_fixture("packed");
    let repo = repo.join("repo");
    let pack_dir = repo.join(".git/objects/pack");
    let pack = std::fs::read_dir(&pack_dir)
        .expect("pack dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("a pack");
    let idx_path = pack.with_extension("idx");

    // Wrong idx checksum.
    let original_idx = std::fs::read(&idx_path).expect("idx");
    let mut bad = original_idx.clone();
    bad[8 + 1024 + 3] ^= 0xff;
    std::fs::write(&idx_path, &bad).expect("write");
    let err = PackIndex::open(&idx_path, hash_of(&repo)).expect_err("checksum mismatch");
    assert!(
        matches!(&err, OdbError::Corrupt { path, .. } if path == &idx_path),
        "{err}"
    );
    assert!(err.to_string().contains("checksum"), "{err}");

    // Only the trailing checksum wrong: opened without checking it (a first screen), the index
    // reads as before; checked (every whole load), it is refused and its pack set aside.
    let mut trailer = original_idx.clone();
    let last = trailer.len() - 1;
    trailer[last] ^= 0xff;
    std::fs::write(&idx_path, &trailer).expect("write");
    let hash = hash_of(&repo);
    assert!(PackIndex::open(&idx_path, hash).is_err());
    let unchecked = PackIndex::open_checking(&idx_path, hash, false).expect("opens unchecked");
    let good = PackIndex::from_bytes(&idx_path, original_idx.clone(), hash).expect("valid");
    assert_eq!(unchecked.len(), good.len());
    let head = oid(git_lines(&repo, &["rev-parse", "HEAD"])[0].as_str());
    let unchecked_odb = Odb::open(
        &repo.join(".git/objects"),
        hash,
        OdbOptions {
            verify_index_checksums: false,
            ..OdbOptions::default()
        },
    )
    .expect("opens");
    assert!(
        unchecked_odb.problems().is_empty(),
        "{:?}",
        unchecked_odb.problems()
    );
    assert!(unchecked_odb.reader().read(&head).is_ok());
    let checked =
        Odb::open(&repo.join(".git/objects"), hash, OdbOptions::default()).expect("opens");
    assert!(
        checked.problems().iter().any(|p| p.contains("checksum")),
        "{:?}",
        checked.problems()
    );
    std::fs::write(&idx_path, &original_idx).expect("restore");

    // Wrong pack checksum, then a truncated pack: the pack is set aside, loose objects still load.
    let original_pack = std::fs::read(&pack).expect("pack");
    let mut bad = original_pack.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    for (what, bytes) in [
        ("checksum", bad),
        (
            "truncated",
            original_pack[..original_pack.len() / 2].to_vec(),
        ),
    ] {
        std::fs::write(&pack, &bytes).expect("write");
        let r = Repository::discover(&repo).expect("opens despite the bad pack");
        let name = pack
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(
            r.odb().problems().iter().any(|p| p.contains(&name)),
            "{what}: {:?}",
            r.odb().problems()
        );
        let graph = CommitGraph::load(&r).expect("loads what is readable");
        let head = oid(&git_lines(&repo, &["rev-parse", "HEAD"])[0]);
        assert!(
            graph.find(&head).is_some(),
            "{what}: the loose tip is still read"
        );
        assert!(
            !graph.problems().is_empty(),
            "{what}: missing packed parents are reported"
        );
    }
}

#[test]
fn broken_refs_missing_objects_and_commits_without_tree_are_reported_and_the_rest_loads() {
    let (_tmp, repo) = crate::common::fresh_fixture_with_ref_files("linear");
    let repo = repo.join("repo");
    let expected = git_lines(&repo, &["rev-list", "--all"]).len();
    std::fs::write(
        repo.join(".git/refs/heads/broken"),
        "1234567890123456789012345678901234567890\n",
    )
    .expect("write ref");
    std::fs::write(repo.join(".git/refs/heads/garbage"), "not a ref at all\n").expect("write");
    let mut packed = std::fs::read_to_string(repo.join(".git/packed-refs")).unwrap_or_default();
    packed.push_str("this line is garbage\n^also garbage\n");
    packed.push_str(&format!(
        "{} refs/tags/fine\n",
        git_lines(&repo, &["rev-parse", "HEAD~2"])[0]
    ));
    std::fs::write(repo.join(".git/packed-refs"), packed).expect("write packed-refs");
    let no_tree = git_command_stdin(
        &repo,
        &[
            "hash-object",
            "-t",
            "commit",
            "-w",
            "--literally",
            "--stdin",
        ],
        b"author X <x@y> 1 +0000\ncommitter X <x@y> 1 +0000\n\nno tree\n",
    );
    std::fs::write(repo.join(".git/refs/heads/no-tree"), &no_tree).expect("write ref");

    let r = Repository::discover(&repo).expect("opens");
    let graph = CommitGraph::load(&r).expect("loads");
    assert_eq!(graph.len(), expected, "every good commit is still there");
    let problems = graph.problems().join("\n");
    assert!(
        problems.contains("refs/heads/broken") && problems.contains("missing"),
        "{problems}"
    );
    assert!(problems.contains("refs/heads/garbage"), "{problems}");
    assert!(
        problems.contains("packed-refs:") && problems.contains("malformed"),
        "{problems}"
    );
    assert!(
        problems.contains(no_tree.trim()) && problems.contains("tree"),
        "{problems}"
    );
    assert!(graph.refs().iter().any(|r| r.name == "refs/tags/fine"));
}

#[test]
fn corrupt_loose_object_names_its_file() {
    let (_tmp, repo) = fresh_fixture("linear");
    let repo = repo.join("repo");
    let head = git_lines(&repo, &["rev-parse", "HEAD"])[0].clone();
    let path = repo.join(".git/objects").join(&head[..2]).join(&head[2..]);
    let mut perms = std::fs::metadata(&path).expect("loose").permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "test rewrites a loose object"
    )]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("chmod");
    std::fs::write(&path, b"\x78\x9cgarbage").expect("write");
    let r = Repository::discover(&repo).expect("opens");
    let err = r.odb().reader().read(&oid(&head)).expect_err("corrupt");
    match &err {
        OdbError::Corrupt { path: p, .. } => assert_eq!(p, &path),
        other => panic!("expected Corrupt, got {other}"),
    }
    let graph = CommitGraph::load(&r).expect("loads");
    assert!(
        graph.problems().iter().any(|p| p.contains(&head[2..])),
        "{:?}",
        graph.problems()
    );
}

fn git_command_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = crate::common::git_command(dir, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    let out = child.wait_with_output().expect("git ends");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_crafted_index_is_a_typed_error_naming_the_file_and_offset() {
    // A real work tree whose index has a valid checksum but an entry whose fields run into it.
    let (_tmp, path) = fresh_fixture("worktree");
    let path = path.join("repo");
    let mut data = b"DIRC".to_vec();
    data.extend(2u32.to_be_bytes());
    data.extend(1u32.to_be_bytes());
    data.extend([0u8; 50]);
    let sum = Sha1::digest(&data);
    data.extend_from_slice(&sum);
    let index = path.join(".git/index");
    std::fs::write(&index, &data).expect("write");
    let repo = Repository::discover(&path).expect("opens");
    let err = gitcore::worktree::status(&repo, gitcore::worktree::StatusOptions::default())
        .expect_err("a crafted index is an error");
    let text = err.to_string();
    assert!(text.contains("index") && text.contains("offset"), "{text}");
    // The history is still readable.
    assert!(CommitGraph::load(&repo).is_ok());
}

#[test]
fn a_delta_announcing_a_gigabyte_is_corrupt_without_reserving_it() {
    // 10 bytes of delta claim a 1 GiB result; the reader must refuse it as corrupt (it makes 3
    // bytes) without allocating the claim first.
    let (_tmp, objects) = empty_objects();
    let mut delta = delta_varint(10);
    delta.extend(delta_varint(1 << 30));
    delta.extend([0x03, b'a', b'b', b'c']);
    let (_, offsets) = write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Base(3, b"0123456789".to_vec())),
            (fake_id(2), Entry::Ofs(0, Vec::new())),
        ],
    );
    std::fs::remove_dir_all(objects.join("pack")).expect("rm");
    write_pack(
        &objects,
        &[
            (fake_id(1), Entry::Base(3, b"0123456789".to_vec())),
            (fake_id(2), Entry::Ofs(offsets[1] - offsets[0], delta)),
        ],
    );
    let options = OdbOptions {
        max_object_size: 2 << 30,
        ..OdbOptions::default()
    };
    let err = read_error(&objects, options, fake_id(2));
    assert_corrupt_in_pack(&err, "announced");
}

#[test]
fn a_commit_graph_or_multi_pack_index_of_the_other_hash_is_refused_by_name() {
    use gitcore::graph::commit_graph_file::CommitGraphFile;
    // A single commit-graph file (a chain of the other hash already fails on its layer names).
    let graph = crate::common::fixture("commit_graph").join("full");
    let midx = crate::common::fixture("multipack").join("repo");
    for (repo, what) in [(&graph, "commit-graph"), (&midx, "multi-pack-index")] {
        let hash = hash_of(repo);
        let other = match hash {
            HashKind::Sha1 => HashKind::Sha256,
            HashKind::Sha256 => HashKind::Sha1,
        };
        let objects = repo.join(".git/objects");
        let said = if what == "commit-graph" {
            assert!(
                CommitGraphFile::open(&objects, hash)
                    .expect("opens")
                    .is_some()
            );
            CommitGraphFile::open(&objects, other)
                .expect_err("the other hash")
                .to_string()
        } else {
            assert!(
                Odb::open(&objects, hash, OdbOptions::default())
                    .expect("opens")
                    .problems()
                    .is_empty()
            );
            Odb::open(&objects, other, OdbOptions::default())
                .expect("opens")
                .problems()
                .join("\n")
        };
        assert!(
            said.contains(&format!(
                "hash version {} is not the repository's ({} for {})",
                hash.file_version(),
                other.file_version(),
                other.name()
            )),
            "{what}: {said}"
        );
    }
}
