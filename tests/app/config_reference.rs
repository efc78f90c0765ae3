//! The configuration reference (`docs/configuration.md`) lists exactly the environment
//! variables the code reads: every `"GITVISTA_..."` (and `DATABASE_URL`, the forges' client
//! settings, `RUST_LOG`) named as a whole string literal in the crates' sources, and nothing
//! else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Prefixes of the variables GitVista reads.
const PREFIXES: [&str; 6] = [
    "GITVISTA_",
    "GITHUB_",
    "GITLAB_",
    "BITBUCKET_",
    "DATABASE_",
    "RUST_",
];

fn is_variable(text: &str) -> bool {
    PREFIXES.iter().any(|p| text.starts_with(p))
        && text.len() > 6
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !text.ends_with('_')
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every variable named as a whole string literal in the crates that run in production: the
/// root package and every crate beside it (a new one is read without anyone remembering), except
/// the test kit's fakes and the fuzz targets.
fn read_by_code() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    for entry in std::fs::read_dir(root).expect("read_dir").flatten() {
        let dir = entry.path();
        let name = entry.file_name();
        if dir.join("Cargo.toml").is_file() && name != "testkit" && name != "fuzz" {
            sources(&dir.join("src"), &mut files);
        }
    }
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source");
        // The pieces between quotes: a literal that is exactly a variable's name is one of them.
        for piece in text.split('"') {
            if is_variable(piece) {
                names.insert(piece.to_string());
            }
        }
    }
    names
}

/// Every variable in the first column of the reference's tables.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    let mut names = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or("");
        for piece in first.split('`').skip(1).step_by(2) {
            if is_variable(piece) {
                names.insert(piece.to_string());
            }
        }
    }
    names
}

#[test]
fn the_configuration_reference_lists_exactly_what_the_code_reads() {
    let code = read_by_code();
    let docs = documented();
    assert!(code.len() > 50, "the scan finds the variables: {code:?}");
    let missing: Vec<_> = code.difference(&docs).collect();
    assert!(
        missing.is_empty(),
        "read by the code, not in docs/configuration.md: {missing:?}"
    );
    let stale: Vec<_> = docs.difference(&code).collect();
    assert!(
        stale.is_empty(),
        "in docs/configuration.md, read by no code: {stale:?}"
    );
}
