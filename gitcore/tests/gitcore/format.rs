//! The repository format, checked as git checks it: a format or extension this reader cannot
//! read is refused by name, never misread. git is the oracle for what is refused at all; what
//! git reads and gitcore does not (a compatibility object format) is refused with a sentence
//! saying so. The object format git names is the one gitcore answers.

use gitcore::format::FormatError;
use gitcore::repo::{RepoError, Repository};

use crate::common::git_command;

/// A new repository made by `git init ARGS` in a fresh directory (SHA-1 and refs in files
/// unless ARGS say otherwise, whatever the run's defaults), then `git config` pairs.
fn made(
    tmp: &std::path::Path,
    name: &str,
    init: &[&str],
    config: &[(&str, &str)],
) -> std::path::PathBuf {
    let mut args = vec!["init", "-q"];
    if !init.iter().any(|a| a.starts_with("--ref-format")) {
        args.push("--ref-format=files");
    }
    if !init.iter().any(|a| a.starts_with("--object-format")) {
        args.push("--object-format=sha1");
    }
    args.extend_from_slice(init);
    args.push(name);
    assert!(
        git_command(tmp, &args)
            .status()
            .expect("git runs")
            .success()
    );
    let dir = tmp.join(name);
    for (k, v) in config {
        assert!(
            git_command(&dir, &["config", k, v])
                .status()
                .expect("git runs")
                .success()
        );
    }
    dir
}

/// Whether git opens the repository, and what it says when it does not.
fn git_opens(dir: &std::path::Path) -> (bool, String) {
    let out = git_command(dir, &["rev-parse", "--git-dir"])
        .output()
        .expect("git runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ours(dir: &std::path::Path) -> Result<(), FormatError> {
    match Repository::discover(dir) {
        Ok(_) => Ok(()),
        Err(RepoError::Format { source, .. }) => Err(source),
        Err(other) => panic!("{}: {other}", dir.display()),
    }
}

#[test]
fn formats_and_extensions_git_refuses_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let v1 = ("core.repositoryformatversion", "1");
    for (name, config, expected, says) in [
        (
            "unknown",
            vec![v1, ("extensions.foo", "bar")],
            FormatError::UnknownExtension("foo".into()),
            "unknown repository extension found",
        ),
        (
            "v0-with-v1-only",
            vec![("extensions.objectformat", "sha1")],
            FormatError::VersionOneOnly("objectformat".into()),
            "v1-only extension found",
        ),
        (
            "newer",
            vec![("core.repositoryformatversion", "2")],
            FormatError::NewerVersion("2".into()),
            "repo version",
        ),
    ] {
        let dir = made(t, name, &[], &config);
        assert_eq!(ours(&dir), Err(expected), "{name}");
        let (opens, stderr) = git_opens(&dir);
        assert!(
            !opens && stderr.to_lowercase().contains(says),
            "{name}: git says {stderr:?}"
        );
    }
}

#[test]
fn extensions_git_knows_are_read_or_refused_with_a_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    // What git reads and gitcore reads too.
    for (name, config) in [
        ("v0-unknown-ignored", vec![("extensions.foo", "bar")]),
        (
            "v1-known",
            vec![
                ("core.repositoryformatversion", "1"),
                ("extensions.noop", "x"),
                ("extensions.worktreeconfig", "true"),
                ("extensions.partialclone", "origin"),
                ("extensions.objectformat", "sha1"),
                ("extensions.refstorage", "files"),
            ],
        ),
    ] {
        let dir = made(t, name, &[], &config);
        assert!(git_opens(&dir).0, "{name}: git opens it");
        assert_eq!(ours(&dir), Ok(()), "{name}");
    }
    // Refs in a reftable stack.
    let dir = made(t, "reftable", &["--ref-format=reftable"], &[]);
    assert!(git_opens(&dir).0, "reftable: git opens it");
    assert_eq!(ours(&dir), Ok(()), "reftable");
    // SHA-256 ids: read, and named so.
    let dir = made(t, "sha256", &["--object-format=sha256"], &[]);
    assert!(git_opens(&dir).0, "sha256: git opens it");
    assert_eq!(ours(&dir), Ok(()), "sha256");
    assert_eq!(
        gitcore::format::check(&dir.join(".git")),
        Ok(gitcore::oid::HashKind::Sha256)
    );
    let sha1 = made(t, "sha1", &[], &[]);
    assert_eq!(
        gitcore::format::check(&sha1.join(".git")),
        Ok(gitcore::oid::HashKind::Sha1)
    );
    // What git reads and gitcore does not: refused, saying what.
    let (extension, value) = ("compatobjectformat", "sha1");
    let dir = made(
        t,
        "compat",
        &["--object-format=sha256"],
        &[("extensions.compatObjectFormat", "sha1")],
    );
    assert!(git_opens(&dir).0, "compat: git opens it");
    match ours(&dir) {
        Err(FormatError::NotReadYet {
            extension: e,
            value: v,
            why,
        }) => {
            assert_eq!((e.as_str(), v.as_str()), (extension, value));
            assert!(why.contains("does not read"), "{why}");
        }
        other => panic!("compat: {other:?}"),
    }
    let message = Repository::discover(&dir).expect_err("refused").to_string();
    assert!(
        message.contains(&format!("extensions.{extension} = {value}")),
        "{message}"
    );
}
