//! `.mailmap` against `git log --format='%aN <%aE>'` and `%cN <%cE>`, from every source git reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gitcore::graph::CommitGraph;
use gitcore::mailmap::{Mailmap, UserConfig};
use gitcore::object::{CommitRef, decode_text};
use gitcore::odb::ObjectKind;
use gitcore::repo::Repository;
use gitcore::search::{Query, search};

use crate::common::{fixture, git_command, git_lines, oid};

/// What git shows for each commit: (author, committer), mapped.
fn git_people(path: &std::path::Path) -> BTreeMap<String, (String, String)> {
    // git complains (and reads nothing) about the symlinked .mailmap: that is the case tested.
    let out = git_command(
        path,
        &["log", "--all", "--format=%H%x00%aN <%aE>%x00%cN <%cE>"],
    )
    .output()
    .expect("git runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\0').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn load(path: &std::path::Path) -> (Repository, CommitGraph) {
    let repo = Repository::discover(path).expect("opens");
    let mut graph = CommitGraph::load(&repo).expect("loads");
    graph.use_mailmap(Arc::new(Mailmap::read(&repo, None, UserConfig::Ignore)));
    (repo, graph)
}

#[test]
fn authors_and_committers_are_mapped_as_git_log_maps_them_from_every_source() {
    for sub in ["repo", "bare.git", "withblob", "symlinked"] {
        let path = fixture("mailmap").join(sub);
        let (repo, graph) = load(&path);
        let expected = git_people(&path);
        assert_eq!(graph.len(), expected.len(), "{sub}");
        let mut reader = repo.odb().reader();
        let mut buf = Vec::new();
        for i in 0..graph.len() as u32 {
            let hex = graph.oid(i).to_hex();
            let (author, committer) = &expected[&hex];
            let a = graph.author(i);
            assert_eq!(&format!("{} <{}>", a.name, a.email), author, "{sub} {hex}");
            reader
                .read_kind(&graph.oid(i), ObjectKind::Commit, &mut buf)
                .expect("reads");
            let c = CommitRef::parse(&buf).expect("parses");
            let p = gitcore::graph::Person::through(
                graph.mailmap(),
                &decode_text(c.committer.name, c.encoding),
                &decode_text(c.committer.email, c.encoding),
            );
            assert_eq!(
                &format!("{} <{}>", p.name, p.email),
                committer,
                "{sub} {hex}"
            );
        }
    }
}

#[test]
fn each_source_counts_and_the_mapping_changes_what_rows_show() {
    let names = |sub: &str| -> BTreeSet<String> {
        let (_, graph) = load(&fixture("mailmap").join(sub));
        graph.people().iter().map(|p| p.name.clone()).collect()
    };
    // The work tree's .mailmap, then mailmap.file over it.
    let repo = names("repo");
    assert!(repo.contains("René Scharfe") && repo.contains("Johnny Doe"));
    assert!(!repo.contains("Rene Scharfe") && !repo.contains("John Doe"));
    // A bare clone: HEAD:.mailmap, and no mailmap.file.
    assert!(names("bare.git").contains("John Doe"));
    // mailmap.blob after the work tree's file.
    assert!(names("withblob").contains("Blob Bob"));
    // A symlinked .mailmap is not read.
    assert!(names("symlinked").contains("Rene Scharfe"));
    // Two raw people mapped to one are one person: equal ids.
    let (_, graph) = load(&fixture("mailmap").join("repo"));
    let bobs: BTreeSet<u32> = (0..graph.len() as u32)
        .filter(|&i| graph.author(i).email == "bob@new.example")
        .map(|i| graph.author_id(i))
        .collect();
    assert_eq!(bobs.len(), 1);
}

#[test]
fn author_searches_match_mapped_identities_as_git_log_does() {
    let path = fixture("mailmap").join("repo");
    let (repo, graph) = load(&path);
    for (q, pattern) in [
        ("author:rene@example.org", "rene@example.org"),
        ("author:old.example", "old.example"),
        ("author:johnny", "johnny"),
        ("author:proper", "proper"),
    ] {
        let query = Query::parse(q, 1_700_100_000).expect("parses");
        let ours: BTreeSet<String> = search(repo.odb(), &graph, &query)
            .expect("searches")
            .iter()
            .map(|&c| graph.oid(c).to_hex())
            .collect();
        let theirs: BTreeSet<String> = git_lines(
            &path,
            &[
                "log",
                "--all",
                "-i",
                &format!("--author={pattern}"),
                "--format=%H",
            ],
        )
        .into_iter()
        .collect();
        assert_eq!(ours, theirs, "{q}");
    }
}

#[test]
fn a_reload_keeps_the_map_and_maps_people_it_meets_for_the_first_time() {
    let (_tmp, path) = crate::common::fresh_fixture("mailmap");
    let path = path.join("repo");
    let (_, graph) = load(&path);
    let mut cmd = git_command(
        &path,
        &["commit", "-q", "--allow-empty", "-m", "new person"],
    );
    cmd.env("GIT_AUTHOR_NAME", "rene")
        .env("GIT_AUTHOR_EMAIL", "Rene@Old.Example");
    assert!(cmd.status().expect("git runs").success());
    let repo = Repository::discover(&path).expect("opens");
    let (next, delta) = graph.reload(&repo).expect("reloads");
    assert_eq!(delta.added.len(), 1);
    let i = next.find(&delta.added[0]).expect("found");
    assert_eq!(next.author(i).name, "René Scharfe");
    let head = git_lines(&path, &["rev-parse", "HEAD"]);
    assert_eq!(next.oid(i), oid(&head[0]));
}

#[test]
fn a_mailmap_over_four_mebibytes_is_skipped_and_one_at_the_limit_is_read() {
    let (_tmp, path) = crate::common::fresh_fixture("mailmap");
    let path = path.join("repo");
    let first = "Huge Name <rene@old.example>\n";
    let names_with = |bytes: usize| -> BTreeSet<String> {
        let mut text = first.to_string();
        // Comment lines up to the size asked for.
        while text.len() < bytes {
            let line = "# padding padding padding padding padding padding padding padding\n";
            text.push_str(&line[..line.len().min(bytes - text.len())]);
        }
        assert_eq!(text.len(), bytes);
        std::fs::write(path.join(".mailmap"), text).expect("writes");
        let (_, graph) = load(&path);
        graph.people().iter().map(|p| p.name.clone()).collect()
    };
    assert!(names_with(4 << 20).contains("Huge Name"));
    assert!(!names_with((4 << 20) + 1).contains("Huge Name"));
}
