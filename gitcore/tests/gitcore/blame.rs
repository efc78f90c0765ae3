//! Blame against `git blame --porcelain`: every parent (git's default), first parents only, and
//! with revisions ignored (`--ignore-revs-file`), marks included.

use std::collections::HashSet;
use std::path::Path;

use gitcore::blame::{BlameError, BlameOptions, blame};
use gitcore::repo::Repository;

use crate::common::{fixture, git_command, git_lines, oid};

/// How git is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    FirstParent,
    /// Ignoring the revisions in this file (under the repository).
    Ignoring(&'static str),
}

/// (commit, original line, ignored, unblamable) per final line, from git.
fn git_blame(path: &Path, commit: &str, file: &str, mode: Mode) -> Vec<(String, u32, bool, bool)> {
    let mut args = vec![
        "-c",
        "blame.markIgnoredLines=true",
        "-c",
        "blame.markUnblamableLines=true",
        "blame",
        "--root",
    ];
    match mode {
        Mode::Plain => {}
        Mode::FirstParent => args.push("--first-parent"),
        Mode::Ignoring(list) => args.extend(["--ignore-revs-file", list]),
    }
    let mut porcelain = args.clone();
    porcelain.extend(["--porcelain", commit, "--", file]);
    let lines: Vec<(String, u32)> = git_lines(path, &porcelain)
        .into_iter()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let hash = f.next()?;
            // Lines that start with a full id (40 or 64 digits) open a commit's entry.
            gitcore::ObjectId::from_hex(hash.as_bytes())?;
            Some((hash.to_string(), f.next()?.parse().ok()?))
        })
        .collect();
    // The marks show in the human format: `*` unblamable, `?` ignored, before the hash.
    let mut human = args;
    human.extend(["-l", "-s", commit, "--", file]);
    let out = git_command(path, &human).output().expect("git runs");
    assert!(out.status.success());
    let marks: Vec<(bool, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let head: String = l
                .chars()
                .take_while(|c| matches!(c, '*' | '?' | '^'))
                .collect();
            (head.contains('?'), head.contains('*'))
        })
        .collect();
    assert_eq!(lines.len(), marks.len(), "{file} at {commit}");
    lines
        .into_iter()
        .zip(marks)
        .map(|((h, l), (ignored, unblamable))| (h, l, ignored, unblamable))
        .collect()
}

fn ours(
    path: &Path,
    commit: &str,
    file: &str,
    mode: Mode,
) -> Option<Vec<(String, u32, bool, bool)>> {
    let repo = Repository::discover(path).expect("opens");
    let ignore: HashSet<_> = match mode {
        Mode::Ignoring(list) => std::fs::read_to_string(path.join(list))
            .expect("list")
            .lines()
            .map(oid)
            .collect(),
        _ => HashSet::new(),
    };
    let options = BlameOptions {
        first_parent: mode == Mode::FirstParent,
        ignore,
        ..BlameOptions::default()
    };
    let b = match blame(&repo, oid(commit), file, options) {
        Ok(b) => b,
        Err(BlameError::NotFound { .. }) => return None,
        Err(e) => panic!("{file} {commit}: {e}"),
    };
    assert!(!b.partial);
    Some(
        b.lines
            .iter()
            .map(|l| (l.commit.to_hex(), l.orig_line, l.ignored, l.unblamable))
            .collect(),
    )
}

/// Our blame equals git's for `file` at the newest commits of the whole history.
fn check(name: &str, sub: &str, file: &str, modes: &[Mode]) {
    let path = fixture(name).join(sub);
    for commit in git_lines(&path, &["rev-list", "-n", "12", "HEAD"]) {
        for &mode in modes {
            let Some(ours) = ours(&path, &commit, file, mode) else {
                continue;
            };
            assert_eq!(
                ours,
                git_blame(&path, &commit, file, mode),
                "{name} {file} at {commit}, {mode:?}"
            );
        }
    }
}

#[test]
fn blame_equals_git_blame_with_every_parent_and_with_first_parents() {
    let cases = [
        ("diffs", "src/story.txt"),
        ("diffs", "docs/keep.md"),
        ("diffs", "src/deep/er/file.txt"),
        ("diffs", "docs/new-name.md"),
        ("deep_deltas", "big.txt"),
        ("merges", "a.txt"),
        ("merges", "d.txt"),
        // Moved with edits: followed by similarity, as git blame follows them.
        ("renames", "doc/setup.md"),
        ("renames", "doc/guide.md"),
        ("renames", "doc/book/book.toml"),
        ("renames", "doc/faq.md"),
        ("renames", "src/lib/core.c"),
        ("renames", "src/lib/io.c"),
        ("renames", "templates/two.tpl"),
        ("renames", "twins/q.txt"),
        ("renames", "bin/tool.sh"),
        ("renames", "limited/a-renamed.txt"),
        ("blame", "src/core.rs"),
        ("blame", "src/lib.rs"),
        ("blame", "docs/guide.md"),
    ];
    for (name, file) in cases {
        check(name, "repo", file, &[Mode::Plain, Mode::FirstParent]);
    }
}

#[test]
fn ignored_revisions_hand_their_lines_on_as_git_blame_does() {
    // The reformat the repository lists, with every parent and with first parents.
    for file in ["src/core.rs", "src/lib.rs"] {
        check(
            "blame",
            "repo",
            file,
            &[Mode::Ignoring(".git-blame-ignore-revs")],
        );
    }
    // Each commit of the history ignored on its own, and all but the roots at once, in
    // histories of heavy edits, moves, renames and merges.
    for (name, files) in [
        ("blame", &["src/core.rs", "docs/guide.md"][..]),
        (
            "renames",
            &[
                "doc/faq.md",
                "doc/setup.md",
                "src/lib/core.c",
                "doc/guide.md",
            ][..],
        ),
        ("diffs", &["src/story.txt", "docs/keep.md"][..]),
    ] {
        let (_tmp, path) = crate::common::fresh_fixture(name);
        let path = path.join("repo");
        let head = git_lines(&path, &["rev-parse", "HEAD"]).remove(0);
        let history = git_lines(&path, &["rev-list", "--no-merges", "HEAD"]);
        let roots = git_lines(&path, &["rev-list", "--max-parents=0", "HEAD"]);
        let mut lists: Vec<Vec<String>> = history.iter().map(|c| vec![c.clone()]).collect();
        lists.push(
            history
                .iter()
                .filter(|c| !roots.contains(c))
                .cloned()
                .collect(),
        );
        let mut looked_through = 0;
        for list in lists {
            std::fs::write(path.join("../ignored"), list.join("\n") + "\n").expect("writes");
            for file in files {
                let mode = Mode::Ignoring("../ignored");
                if let Some(ours) = ours(&path, &head, file, mode) {
                    looked_through += ours.iter().filter(|l| l.2 || l.3).count();
                    assert_eq!(
                        ours,
                        git_blame(&path, &head, file, mode),
                        "{name} {file} {list:?}"
                    );
                }
            }
        }
        assert!(
            looked_through > 20,
            "{name}: {looked_through} lines looked through"
        );
    }
}

#[test]
fn blame_cap_reports_partial_and_missing_paths_are_errors() {
    let path = fixture("deep_deltas").join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let head = oid(&git_lines(&path, &["rev-parse", "HEAD"])[0]);
    let capped = blame(
        &repo,
        head,
        "big.txt",
        BlameOptions {
            max_commits: 5,
            ..BlameOptions::default()
        },
    )
    .expect("blames");
    assert!(capped.partial);
    assert_eq!(capped.lines.len(), 2000);
    let err = blame(&repo, head, "no/such/file", BlameOptions::default()).expect_err("missing");
    assert!(matches!(err, BlameError::NotFound { .. }), "{err}");
    let diffs = fixture("diffs").join("repo");
    let repo = Repository::discover(&diffs).expect("opens");
    let head = oid(&git_lines(&diffs, &["rev-parse", "HEAD"])[0]);
    let bin = blame(&repo, head, "blob.bin", BlameOptions::default()).expect("blames");
    assert!(bin.binary && bin.lines.is_empty());
    let err = blame(&repo, head, "src", BlameOptions::default()).expect_err("a directory");
    assert!(matches!(err, BlameError::NotFound { .. }));
}

/// A small deterministic generator (xorshift), so a failure names its case.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn ignored_rewrites_of_every_shape_match_git_line_for_line() {
    // Lines made of few words, so that many are alike and the heuristic's certainties, tie
    // breaks and order of matching decide; each file rewritten by one ignored commit that
    // edits, splits, joins, duplicates, drops, inserts and swaps lines.
    const WORDS: &[&str] = &[
        "let", "value", "item", "fn", "return", "self", "match", "Some", "None", "x", "y", "map",
        "{", "}", "(", ")", "=", "+", "//", "TODO",
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let git = |args: &[&str]| crate::common::git(&repo, args);
    git(&["init", "-q", "-b", "main"]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let line = |rng: &mut Rng| -> String {
        let n = 1 + rng.below(6);
        let indent = "    ".repeat(rng.below(3));
        let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        format!("{indent}{}", words.join(" "))
    };
    let cases = 60;
    let mut after: Vec<Vec<String>> = Vec::new();
    for case in 0..cases {
        // Every fourth file is rewritten whole: long hunks, where the search's reach matters.
        let whole = case % 4 == 0;
        let len = if whole {
            40 + rng.below(80)
        } else {
            5 + rng.below(40)
        };
        let before: Vec<String> = (0..len).map(|_| line(&mut rng)).collect();
        std::fs::write(repo.join(format!("f{case}.txt")), before.join("\n") + "\n").expect("w");
        let mut b: Vec<String> = Vec::new();
        let mut i = 0;
        while i < before.len() {
            let l = &before[i];
            match rng.below(if whole { 8 } else { 10 }) {
                0 | 3 if whole => b.push(l.to_uppercase()),
                0 => b.push(l.to_uppercase()),
                1 if l.len() > 6 => {
                    let (x, y) = l.split_at(l.len() / 2);
                    b.push(x.to_string());
                    b.push(format!("    {y}"));
                }
                2 if i + 1 < before.len() => {
                    b.push(format!("{l} {}", before[i + 1].trim()));
                    i += 1;
                }
                3 => {
                    b.push(l.clone());
                    b.push(l.replace(' ', "_"));
                }
                4 => {}
                5 => {
                    b.push(line(&mut rng));
                    b.push(l.clone());
                }
                6 if i + 1 < before.len() => {
                    b.push(before[i + 1].clone());
                    b.push(l.clone());
                    i += 1;
                }
                7 => b.push(format!("{}{}", l, ";")),
                _ => b.push(l.clone()),
            }
            i += 1;
        }
        after.push(b);
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "before"]);
    for (case, b) in after.iter().enumerate() {
        std::fs::write(repo.join(format!("f{case}.txt")), b.join("\n") + "\n").expect("w");
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "rewrite"]);
    let head = git_lines(&repo, &["rev-parse", "HEAD"]).remove(0);
    std::fs::write(tmp.path().join("ignored"), format!("{head}\n")).expect("writes");
    let mode = Mode::Ignoring("../ignored");
    let mut moved = 0;
    for case in 0..cases {
        let file = format!("f{case}.txt");
        let ours = ours(&repo, &head, &file, mode).expect("blames");
        moved += ours.iter().filter(|l| l.2).count();
        assert_eq!(ours, git_blame(&repo, &head, &file, mode), "case {case}");
    }
    assert!(moved > 200, "{moved} lines looked through");
}

#[test]
fn the_ignore_list_comes_from_the_blamed_tree_or_blame_ignore_revs_file() {
    let (_tmp, path) = crate::common::fresh_fixture("blame");
    let path = path.join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let head = oid(&git_lines(&path, &["rev-parse", "HEAD"])[0]);
    let reformat = oid(&git_lines(&path, &["rev-parse", ":/cargo fmt"])[0]);
    let listed = gitcore::blame::ignore_revs(&repo, head).expect("a list");
    assert_eq!(listed.source, ".git-blame-ignore-revs");
    assert_eq!(listed.revs, HashSet::from([reformat]));
    // Before the list was committed there is none.
    assert_eq!(gitcore::blame::ignore_revs(&repo, reformat), None);
    // blame.ignoreRevsFile wins, read from the work tree; comments and junk are skipped.
    let merge = git_lines(&path, &["rev-parse", ":/Auto merge of #2"]).remove(0);
    std::fs::write(
        path.join("revs.txt"),
        format!("# our list\n{merge} # the second merge\nnot-a-hash\n\n"),
    )
    .expect("writes");
    crate::common::git(&path, &["config", "blame.ignoreRevsFile", "revs.txt"]);
    let listed = gitcore::blame::ignore_revs(&repo, head).expect("a list");
    assert_eq!(listed.source, "revs.txt");
    assert_eq!(listed.revs, HashSet::from([oid(&merge)]));
}

#[test]
fn an_ignore_list_over_one_mebibyte_is_read_as_empty() {
    let (_tmp, path) = crate::common::fresh_fixture("blame");
    let path = path.join("repo");
    let repo = Repository::discover(&path).expect("opens");
    let head = oid(&git_lines(&path, &["rev-parse", "HEAD"])[0]);
    let merge = git_lines(&path, &["rev-parse", ":/Auto merge of #2"]).remove(0);
    let list = |bytes: usize| {
        let mut text = format!("{merge}\n");
        text.push_str(&"#".repeat(bytes - text.len() - 1));
        text.push('\n');
        std::fs::write(path.join("revs.txt"), text).expect("writes");
        gitcore::blame::ignore_revs(&repo, head)
            .expect("a list")
            .revs
    };
    crate::common::git(&path, &["config", "blame.ignoreRevsFile", "revs.txt"]);
    assert_eq!(list(1 << 20), HashSet::from([oid(&merge)]));
    assert!(list((1 << 20) + 1).is_empty());
}
