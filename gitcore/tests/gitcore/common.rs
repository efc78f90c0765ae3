//! Fixture repositories and git helpers shared by the tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use gitcore::ObjectId;

/// Builds fixture `name` (fixtures/NAME.sh) into a fresh directory under `dest` and returns it.
/// Its repositories take git's defaults for new ones, which `GIT_DEFAULT_REF_FORMAT` and
/// `GIT_DEFAULT_HASH` set for a whole run (`scripts/test` runs the suite under git 3.0's too).
pub fn build_fixture_at(name: &str, dest: &Path) -> PathBuf {
    build_fixture_with(name, dest, &[])
}

/// [`build_fixture_at`] with `env` set for the script.
fn build_fixture_with(name: &str, dest: &Path, env: &[(&str, &str)]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.sh"));
    let _ = std::fs::remove_dir_all(dest);
    let out = Command::new("bash")
        .arg(&script)
        .arg(dest)
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "fixture {name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dest.to_path_buf()
}

/// A read-only fixture, built once per test process under the target directory. Tests that
/// change a repository must use [`fresh_fixture`] instead.
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let map = BUILT.get_or_init(|| {
        remove_stale_fixture_dirs();
        Mutex::new(HashMap::new())
    });
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fixtures-{}", std::process::id()))
        .join(name);
    let path = build_fixture_at(name, &dest);
    map.insert(name.to_string(), path.clone());
    path
}

/// Fixture directories of earlier test runs (older than an hour) are removed.
fn remove_stale_fixture_dirs() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old && e.file_name().to_string_lossy().starts_with("fixtures-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fixture built into a temporary directory the test owns (and may modify).
pub fn fresh_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = build_fixture_at(name, &tmp.path().join(name));
    (tmp, path)
}

/// [`fresh_fixture`] with its refs in files whatever the run's default (for tests that write
/// broken ref files by hand).
pub fn fresh_fixture_with_ref_files(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = build_fixture_with(
        name,
        &tmp.path().join(name),
        &[("GIT_DEFAULT_REF_FORMAT", "files")],
    );
    (tmp, path)
}

/// The stash reflog as `git reflog` shows it, newest first: "commit message" lines.
pub fn stash_with_messages(repo: &Path) -> Vec<String> {
    stash_reflog(repo, "%H %gs")
}

/// The stash reflog's commits, newest first (none without a stash), whatever the ref storage.
pub fn stash_entries(repo: &Path) -> Vec<String> {
    stash_reflog(repo, "%H")
}

/// The stash reflog in `format`, newest first (none without a stash).
fn stash_reflog(repo: &Path, format: &str) -> Vec<String> {
    let has = git_command(repo, &["rev-parse", "--verify", "-q", "refs/stash"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        git_lines(
            repo,
            &[
                "reflog",
                "show",
                &format!("--format={format}"),
                "refs/stash",
            ],
        )
    } else {
        Vec::new()
    }
}

/// Runs git in `dir` with the same hermetic environment as the fixtures; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = git_command(dir, args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A git command with the fixtures' environment.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        // The oracle reads what the clone holds, as gitcore does: never a lazy fetch from the
        // promisor remote (which would change the fixture under the test).
        .env("GIT_NO_LAZY_FETCH", "1")
        .env("LC_ALL", "C");
    cmd
}

/// git's output as text lines.
pub fn git_lines(dir: &Path, args: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&git(dir, args))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Parses a 40- or 64-hex id, panicking on anything else.
pub fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.trim().as_bytes()).expect("40- or 64-hex id")
}

/// The object format of the repository at `dir`, as git says.
pub fn hash_of(dir: &Path) -> gitcore::oid::HashKind {
    let name = String::from_utf8(git(dir, &["rev-parse", "--show-object-format"])).expect("utf-8");
    gitcore::oid::HashKind::from_name(name.trim()).expect("a format git knows")
}

/// Every repository the fixtures build, as (fixture, path inside it).
pub const REPOS: &[(&str, &str)] = &[
    ("linear", "repo"),
    ("merges", "repo"),
    ("search", "repo"),
    ("stash", "repo"),
    ("detached", "repo"),
    ("unborn", "repo"),
    ("unborn", "empty"),
    ("packed", "repo"),
    ("deep_deltas", "repo"),
    ("multipack", "repo"),
    ("clones", "src"),
    ("clones", "bare.git"),
    ("clones", "shallow"),
    ("clones", "partial"),
    ("clones", "treeless.git"),
    ("clones", "shared"),
    ("clones", "wt"),
    ("clones", "wt-detached"),
    ("commit_graph", "repo"),
    ("commit_graph", "full"),
    ("encodings", "repo"),
    ("oddities", "repo"),
    ("diffs", "repo"),
    ("idx_versions", "v1.git"),
    ("idx_versions", "large.git"),
    ("idx_versions", "v2.git"),
    ("forge", "repo"),
    ("forge_pack", "repo"),
    ("renames", "repo"),
    ("skew", "repo"),
    ("mailmap", "repo"),
    ("mailmap", "bare.git"),
];

/// Every fixture repository's path.
pub fn all_repos() -> Vec<(String, PathBuf)> {
    REPOS
        .iter()
        .map(|(f, sub)| (format!("{f}/{sub}"), fixture(f).join(sub)))
        .collect()
}
