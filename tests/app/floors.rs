//! The house's floors hold: each crate depends only on the floors below it (Cargo forbids
//! circles between crates; this says which direction each edge may run), the lowest floors pull
//! in no server, database or network machinery, and no two sibling modules of any crate import
//! each other, directly or around a circle. A module and its own children are one room and may
//! refer to each other; siblings may not go round.
//!
//! Read from `cargo metadata` and from the sources, so a new crate or module is covered without
//! anyone remembering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The GitVista crates each crate may depend on (normal dependencies; tests may use more).
const MAY_DEPEND_ON: [(&str, &[&str]); 11] = [
    ("gitcore", &[]),
    ("gitwire", &["gitcore"]),
    ("gitvista-actors", &["gitcore"]),
    ("gitvista-store", &[]),
    ("gitvista-errors", &["gitcore", "gitvista-store"]),
    (
        "gitvista-accounts",
        &["gitvista-store", "gitvista-errors", "gitvista-actors"],
    ),
    ("gitvista-cluster", &["gitvista-store", "gitvista-actors"]),
    (
        "gitvista-hosting",
        &[
            "gitcore",
            "gitwire",
            "gitvista-actors",
            "gitvista-store",
            "gitvista-errors",
            "gitvista-accounts",
            "gitvista-cluster",
        ],
    ),
    (
        "gitvista-web",
        &[
            "gitcore",
            "gitvista-actors",
            "gitvista-store",
            "gitvista-errors",
            "gitvista-accounts",
            "gitvista-cluster",
            "gitvista-hosting",
        ],
    ),
    // A client of the server: HTTP and WebSocket only; its world comes from the test kit.
    ("gitvista-loadtest", &["gitvista-testkit"]),
    ("gitvista-testkit", &[]),
];

/// Outside crates a floor may not use: the reader has no network, actors or database; the
/// actors no HTTP server and no database; the store no actors and no HTTP.
const MAY_NOT_USE: [(&str, &[&str]); 4] = [
    (
        "gitcore",
        &["actix", "actix-web", "diesel", "tokio", "reqwest", "redis"],
    ),
    ("gitwire", &["actix", "actix-web", "diesel", "redis"]),
    (
        "gitvista-actors",
        &["actix-web", "diesel", "reqwest", "redis"],
    ),
    (
        "gitvista-store",
        &["actix", "actix-web", "reqwest", "redis"],
    ),
];

/// A workspace member: its name, its directory and its dependencies with their kinds (`None`
/// for normal ones, `dev` or `build`).
type Package = (String, PathBuf, Vec<(String, Option<String>)>);

/// Every workspace member, from `cargo metadata`.
fn packages() -> Vec<Package> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest"));
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| {
                    (
                        d["name"].as_str().expect("name").to_string(),
                        d["kind"].as_str().map(str::to_string),
                    )
                })
                .collect();
            (
                p["name"].as_str().expect("name").to_string(),
                manifest.parent().expect("dir").to_path_buf(),
                deps,
            )
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_the_floors_below_it() {
    let ours: BTreeSet<&str> = MAY_DEPEND_ON.iter().map(|(c, _)| *c).collect();
    let mut seen = BTreeSet::new();
    for (name, _, deps) in packages() {
        seen.insert(name.clone());
        if name == "gitvista" || name.ends_with("-fuzz") {
            continue;
        }
        let allowed = MAY_DEPEND_ON
            .iter()
            .find(|(c, _)| *c == name)
            .unwrap_or_else(|| panic!("{name} is a new crate: say which floors it stands on"))
            .1;
        for (dep, kind) in &deps {
            if kind.is_none() && ours.contains(dep.as_str()) {
                assert!(
                    allowed.contains(&dep.as_str()),
                    "{name} may not depend on {dep} (it may: {allowed:?})"
                );
            }
        }
        if let Some((_, banned)) = MAY_NOT_USE.iter().find(|(c, _)| *c == name) {
            for (dep, kind) in &deps {
                assert!(
                    kind.is_some() || !banned.contains(&dep.as_str()),
                    "{name} may not use {dep}"
                );
            }
        }
    }
    for (name, _) in MAY_DEPEND_ON {
        assert!(seen.contains(name), "{name} is gone: update the floors");
    }
}

/// A crate's modules: path (`["hosted", "clones"]`) to file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .expect("under src")
                    .with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                out.insert(parts, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The code of a file without comments and without its unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file refers to: `crate::a::b`, `super::a`, `self::a`, a child's name, and
/// the members of `use crate::{a, b::c}` groups.
fn references(me: &[String], text: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut refs = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && let Some(after) = rest.strip_prefix("crate::") {
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for part in group[..end].split(',') {
                    refs.push(ident(part.trim()));
                }
            } else {
                refs.push(ident(after));
            }
        } else if boundary && rest.starts_with("super::") {
            let mut n = 0;
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                n += 1;
                tail = t;
            }
            let mut path: Vec<String> = me[..me.len().saturating_sub(n)].to_vec();
            path.extend(ident(tail));
            refs.push(path);
            i += rest.len() - tail.len();
            continue;
        } else if boundary && bytes[i].is_ascii_lowercase() && (i < 2 || &bytes[i - 2..i] != b"::")
        {
            let word = ident(rest);
            if let Some(first) = word.first()
                && children.contains(first)
                && rest[first.len()..].starts_with("::")
            {
                let mut path = me.to_vec();
                path.push(first.clone());
                refs.push(path);
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    refs
}

/// Circles among the children of each module (strongly connected components of more than one).
fn sibling_circles(mods: &BTreeMap<Vec<String>, PathBuf>) -> Vec<Vec<String>> {
    // parent -> child -> children it refers to
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (me, path) in mods {
        let children: BTreeSet<String> = mods
            .keys()
            .filter(|k| k.len() == me.len() + 1 && k.starts_with(me))
            .map(|k| k[me.len()].clone())
            .collect();
        for target in references(me, &code(path), &children) {
            // The deepest module the path names.
            let Some(target) = (1..=target.len())
                .rev()
                .map(|k| target[..k].to_vec())
                .find(|k| mods.contains_key(k))
            else {
                continue;
            };
            // The nearest common ancestor's children on each side.
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common >= me.len() || common >= target.len() {
                continue; // itself, an ancestor or a descendant: one room
            }
            edges
                .entry(me[..common].to_vec())
                .or_default()
                .entry(me[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    let mut circles = Vec::new();
    for (parent, graph) in &edges {
        for component in strongly_connected(graph) {
            circles.push(
                component
                    .iter()
                    .map(|c| {
                        let mut path = parent.clone();
                        path.push(c.clone());
                        path.join("::")
                    })
                    .collect(),
            );
        }
    }
    circles
}

/// Tarjan's strongly connected components of more than one node.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, n: &'a str) {
        let i = s.index.len();
        s.index.insert(n, i);
        s.low.insert(n, i);
        s.stack.push(n);
        s.on.insert(n);
        if let Some(next) = s.graph.get(n) {
            for m in next {
                if !s.index.contains_key(m.as_str()) {
                    visit(s, m);
                    let l = s.low[m.as_str()].min(s.low[n]);
                    s.low.insert(n, l);
                } else if s.on.contains(m.as_str()) {
                    let l = s.index[m.as_str()].min(s.low[n]);
                    s.low.insert(n, l);
                }
            }
        }
        if s.low[n] == s.index[n] {
            let mut component = Vec::new();
            while let Some(m) = s.stack.pop() {
                s.on.remove(m);
                component.push(m.to_string());
                if m == n {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for n in graph.keys() {
        if !s.index.contains_key(n.as_str()) {
            visit(&mut s, n);
        }
    }
    s.out
}

#[test]
fn no_two_sibling_modules_of_any_crate_import_each_other_around_a_circle() {
    let mut found = Vec::new();
    for (name, dir, _) in packages() {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        for circle in sibling_circles(&modules(&src)) {
            found.push(format!("{name}: {}", circle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").expect("lib");
    std::fs::write(src.join("a.rs"), "use crate::b::Thing;\n").expect("a");
    std::fs::write(src.join("b.rs"), "pub fn f() { super::c::g() }\n").expect("b");
    std::fs::write(src.join("c.rs"), "use crate::{a::X, b};\n").expect("c");
    std::fs::create_dir(src.join("d")).expect("d");
    std::fs::write(src.join("d.rs"), "mod e;\nuse e::Y;\n").expect("d.rs");
    std::fs::write(src.join("d/e.rs"), "use super::Z;\n").expect("e");
    let circles = sibling_circles(&modules(src));
    assert_eq!(circles, vec![vec!["a", "b", "c"]], "{circles:?}");
}
