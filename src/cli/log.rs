//! `gitvista log`: every commit `git rev-list --all` walks, children before parents.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use gitcore::graph::{CommitGraph, RefKind};

/// Output formats of `gitvista log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `HASH PARENT...`, the lines of `git rev-list --all --parents`.
    Parents,
    /// `HASH subject`.
    Oneline,
    /// One JSON object per line: hash, parents, author, authorTime, summary.
    Json,
}

/// Loads the repository at `path` and prints its commits to stdout. Problems met while loading
/// (a broken ref, a missing object) go to stderr; they do not stop the listing.
pub fn run(path: &Path, format: LogFormat) -> anyhow::Result<()> {
    let repo = super::discover(path)?;
    let mut graph = CommitGraph::load(&repo).context("cannot load the commit graph")?;
    // Names as `git log` shows them: through the mailmap, with the user's git configuration.
    graph.use_mailmap(std::sync::Arc::new(gitcore::mailmap::Mailmap::read(
        &repo,
        None,
        gitcore::mailmap::UserConfig::Read,
    )));
    for p in graph.problems() {
        eprintln!("warning: {p}");
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let included = rev_list_all_set(&graph);
    let rows: Vec<u32> = (0..graph.len())
        .map_while(|row| graph.at_row(row))
        .filter(|&i| included[i as usize])
        .collect();
    // Formatting costs as much as loading: it runs on every core, a block of rows at a time, and
    // the blocks are written in order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    const BLOCK: usize = 8192;
    for block in rows.chunks(BLOCK * threads) {
        let parts: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = block
                .chunks(BLOCK)
                .map(|part| {
                    let graph = &graph;
                    scope.spawn(move || {
                        let mut buf = Vec::with_capacity(part.len() * 200);
                        for &i in part {
                            // Writing to a Vec cannot fail.
                            let _ = write_commit(&mut buf, graph, i, format);
                        }
                        buf
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for part in parts {
            if let Err(e) = out.write_all(&part) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The commits `git rev-list --all` walks: everything in the graph except what only older stash
/// entries (`stash@{1}` and beyond) reach.
fn rev_list_all_set(graph: &CommitGraph) -> Vec<bool> {
    let mut seen = vec![false; graph.len()];
    let mut stack: Vec<u32> = graph
        .refs()
        .iter()
        .filter(|r| r.kind != RefKind::Stash || r.name == "stash@{0}" || r.name == "refs/stash")
        .map(|r| r.commit)
        .chain(graph.head_commit())
        .collect();
    while let Some(c) = stack.pop() {
        if std::mem::replace(&mut seen[c as usize], true) {
            continue;
        }
        stack.extend(graph.parents(c).iter().copied());
    }
    seen
}

fn write_commit(
    out: &mut impl Write,
    graph: &CommitGraph,
    i: u32,
    format: LogFormat,
) -> io::Result<()> {
    match format {
        LogFormat::Parents => {
            write!(out, "{}", graph.oid(i))?;
            for &p in graph.parents(i) {
                write!(out, " {}", graph.oid(p))?;
            }
            writeln!(out)
        }
        LogFormat::Oneline => writeln!(out, "{} {}", graph.oid(i), graph.summary(i)),
        LogFormat::Json => {
            let author = graph.author(i);
            let line = JsonCommit {
                hash: graph.oid(i).to_hex(),
                parents: graph
                    .parents(i)
                    .iter()
                    .map(|&p| graph.oid(p).to_hex())
                    .collect(),
                author: &author.name,
                author_email: &author.email,
                author_time: graph.author_time(i),
                summary: graph.summary(i),
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)
        }
    }
}

/// One line of `--format json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonCommit<'a> {
    // In alphabetical order, as earlier versions printed them.
    author: &'a str,
    author_email: &'a str,
    author_time: i64,
    hash: String,
    parents: Vec<String>,
    summary: &'a str,
}
