//! Analytics against git: per-commit changes against `git log --numstat`, and the dashboard's
//! figures against `git log --no-merges --format=%at`, `git shortlog -sne` and numstat.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use gitcore::analytics::HistoryStats;
use gitcore::analytics::report::{SIZE_BUCKETS, Window, report, unit_of, week_start};
use gitcore::graph::CommitGraph;
use gitcore::mailmap::{Mailmap, UserConfig};
use gitcore::repo::Repository;

use crate::common::{fixture, git, git_lines};

type Numstat = BTreeMap<String, Vec<(String, u32, u32)>>;

/// `git log --all --no-merges --numstat -z`: commit -> (new path, added, deleted), sorted.
fn git_numstat(path: &Path) -> Numstat {
    let out = git(
        path,
        &[
            "--no-replace-objects",
            "log",
            "--all",
            "--no-merges",
            "--numstat",
            "-z",
            "--format=%x01%H",
        ],
    );
    let mut all = Numstat::new();
    for record in out.split(|&b| b == 1).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let hex_len = text
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(text.len());
        let (hash, rest) = text.split_at(hex_len);
        let mut fields: Vec<&str> = rest.trim_start_matches('\n').split('\0').collect();
        let mut files = Vec::new();
        let mut i = 0;
        while i < fields.len() {
            let f = fields[i].trim_start_matches('\n');
            if f.is_empty() {
                i += 1;
                continue;
            }
            let mut parts = f.splitn(3, '\t');
            let added = parts.next().unwrap_or("0");
            let deleted = parts.next().unwrap_or("0");
            let mut name = parts.next().unwrap_or("").to_string();
            if name.is_empty() {
                // A rename: the old path, then the new one.
                name = fields.get(i + 2).copied().unwrap_or_default().to_string();
                i += 2;
            }
            let n = |s: &str| s.parse::<u32>().unwrap_or(0);
            files.push((name, n(added), n(deleted)));
            i += 1;
        }
        fields.clear();
        files.sort();
        all.insert(hash.to_string(), files);
    }
    all
}

fn load(path: &Path) -> (Repository, CommitGraph, HistoryStats) {
    let repo = Repository::discover(path).expect("opens");
    let mut graph = CommitGraph::load(&repo).expect("loads");
    graph.use_mailmap(std::sync::Arc::new(Mailmap::read(
        &repo,
        None,
        UserConfig::Ignore,
    )));
    let all: Vec<u32> = (0..graph.len() as u32).collect();
    let mut stats = HistoryStats::default();
    stats.extend(&repo, &graph, &all).expect("stats");
    (repo, graph, stats)
}

const FIXTURES: &[&str] = &[
    "renames",
    "diffs",
    "forge",
    "blame",
    "mailmap",
    "merges",
    "deep_deltas",
];

#[test]
fn each_commit_changes_the_files_and_lines_git_log_numstat_counts() {
    for name in FIXTURES {
        let path = fixture(name).join("repo");
        let (_, graph, stats) = load(&path);
        let theirs = git_numstat(&path);
        let mut compared = 0;
        for (hash, files) in &theirs {
            let id = crate::common::oid(hash);
            let i = graph.find(&id).expect("in graph");
            assert!(graph.parents(i).len() <= 1);
            let mut ours: Vec<(String, u32, u32)> = stats
                .changes(&id)
                .expect("known")
                .iter()
                .map(|f| (stats.path(f.path).to_string(), f.added, f.deleted))
                .collect();
            ours.sort();
            assert_eq!(&ours, files, "{name} {hash}");
            compared += 1;
        }
        assert!(compared > 3, "{name}");
    }
}

#[test]
fn extending_computes_only_the_commits_not_known() {
    let path = fixture("blame").join("repo");
    let (repo, graph, mut stats) = load(&path);
    let all: Vec<u32> = (0..graph.len() as u32).collect();
    assert_eq!(stats.extend(&repo, &graph, &all).expect("again"), 0);
    let mut fresh = HistoryStats::default();
    let half: Vec<u32> = all.iter().copied().filter(|c| c % 2 == 0).collect();
    let first = fresh.extend(&repo, &graph, &half).expect("half");
    let second = fresh.extend(&repo, &graph, &all).expect("rest");
    assert_eq!(first + second, stats.len());
}

#[test]
fn the_figures_equal_what_git_log_and_shortlog_give() {
    for name in ["blame", "mailmap", "forge", "renames"] {
        let path = fixture(name).join("repo");
        let (_, graph, stats) = load(&path);
        let all: Vec<u32> = (0..graph.len() as u32).collect();
        // The whole history, then its second half.
        let times: Vec<i64> = git_lines(
            &path,
            &["--no-replace-objects", "log", "--all", "--format=%at"],
        )
        .iter()
        .map(|t| t.parse().expect("time"))
        .collect();
        let (lo, hi) = (
            *times.iter().min().expect("commits"),
            *times.iter().max().expect("commits") + 1,
        );
        for window in [
            Window { start: lo, end: hi },
            Window {
                start: (lo + hi) / 2,
                end: hi,
            },
        ] {
            let r = report(&graph, &all, &stats, window);
            let inside = |t: i64| window.start <= t && t < window.end;
            // Velocity and the heatmap: `git log --no-merges --format=%at`.
            let at: Vec<i64> = git_lines(
                &path,
                &[
                    "--no-replace-objects",
                    "log",
                    "--all",
                    "--no-merges",
                    "--format=%at",
                ],
            )
            .iter()
            .map(|t| t.parse().expect("time"))
            .filter(|&t| inside(t))
            .collect();
            assert_eq!(r.velocity.total_commits, at.len() as u64, "{name}");
            let mut weeks: BTreeMap<i64, u64> = BTreeMap::new();
            for &t in &at {
                *weeks.entry(week_start(t)).or_default() += 1;
            }
            // Weekday (0 is Sunday) and hour as git formats the author date in UTC.
            let mut heat = [[0u64; 24]; 7];
            let out = crate::common::git_command(
                &path,
                &[
                    "--no-replace-objects",
                    "log",
                    "--all",
                    "--no-merges",
                    "--date=format-local:%w %H",
                    "--format=%at %ad",
                ],
            )
            .env("TZ", "UTC")
            .output()
            .expect("git runs");
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = l.split(' ').collect();
                if inside(f[0].parse().expect("time")) {
                    heat[f[1].parse::<usize>().expect("weekday")]
                        [f[2].parse::<usize>().expect("hour")] += 1;
                }
            }
            for w in &r.velocity.weeks {
                assert_eq!(
                    w.count,
                    weeks.get(&w.ts).copied().unwrap_or(0),
                    "{name} week {}",
                    w.ts
                );
            }
            assert_eq!(
                r.velocity.weeks.iter().map(|w| w.count).sum::<u64>(),
                at.len() as u64
            );
            assert_eq!(r.heatmap, heat, "{name}");
            // Authors: `git shortlog -sne --no-merges`, mailmapped.
            let shortlog = git_lines(
                &path,
                &[
                    "--no-replace-objects",
                    "shortlog",
                    "-sne",
                    "--no-merges",
                    "--all",
                    &format!("--since=@{}", window.start),
                    &format!("--until=@{}", window.end - 1),
                ],
            );
            let theirs: BTreeMap<String, u64> = shortlog
                .iter()
                .map(|l| {
                    let (n, who) = l.trim().split_once('\t').expect("count and name");
                    (who.to_string(), n.parse().expect("count"))
                })
                .collect();
            let ours: BTreeMap<String, u64> = r
                .authors
                .iter()
                .map(|a| (format!("{} <{}>", a.name, a.email), a.count))
                .collect();
            // shortlog's --since/--until are by committer date: compare only on the whole window.
            if window.start == lo {
                assert_eq!(ours, theirs, "{name}");
            }
            // Merges.
            let merges = git_lines(
                &path,
                &[
                    "--no-replace-objects",
                    "log",
                    "--all",
                    "--merges",
                    "--format=%at",
                ],
            )
            .iter()
            .filter(|t| inside(t.parse().expect("time")))
            .count() as u64;
            assert_eq!(r.merges.merge_count, merges, "{name}");
            assert_eq!(r.merges.total_count, merges + at.len() as u64);
            // Change sizes, rework and hotspot churn from numstat.
            let numstat = git_numstat(&path);
            let when: HashMap<String, i64> = git_lines(
                &path,
                &[
                    "--no-replace-objects",
                    "log",
                    "--all",
                    "--no-merges",
                    "--format=%H %at",
                ],
            )
            .iter()
            .map(|l| {
                let (h, t) = l.split_once(' ').expect("hash and time");
                (h.to_string(), t.parse().expect("time"))
            })
            .collect();
            let mut sizes: Vec<u64> = numstat
                .iter()
                .filter(|(h, _)| inside(when[*h]))
                .map(|(_, files)| files.iter().map(|f| u64::from(f.1 + f.2)).sum())
                .collect();
            sizes.sort_unstable();
            let buckets: Vec<u64> = SIZE_BUCKETS
                .iter()
                .map(|&(_, lo, hi)| sizes.iter().filter(|&&s| lo <= s && s <= hi).count() as u64)
                .collect();
            assert_eq!(r.change_size.buckets, buckets, "{name}");
            let mut ordered: Vec<(i64, &String)> = numstat.keys().map(|h| (when[h], h)).collect();
            ordered.sort();
            let (mut lines, mut again) = (0u64, 0u64);
            let mut last: HashMap<&str, i64> = HashMap::new();
            let mut churn: BTreeMap<String, u64> = BTreeMap::new();
            let mut k = 0;
            while k < ordered.len() {
                let t = ordered[k].0;
                let group: Vec<&String> = ordered[k..]
                    .iter()
                    .take_while(|e| e.0 == t)
                    .map(|e| e.1)
                    .collect();
                k += group.len();
                let mut touched = Vec::new();
                for h in group {
                    let mut units = std::collections::BTreeSet::new();
                    for (p, a, d) in &numstat[h] {
                        touched.push(p.as_str());
                        if !inside(t) {
                            continue;
                        }
                        let n = u64::from(a + d);
                        lines += n;
                        if last.get(p.as_str()).is_some_and(|&b| t - b <= 21 * 86_400) {
                            again += n;
                        }
                        units.insert(unit_of(p).to_string());
                    }
                    for u in units {
                        *churn.entry(u).or_default() += 1;
                    }
                }
                for p in touched {
                    last.insert(p, t);
                }
            }
            let rate = if lines == 0 {
                0.0
            } else {
                again as f64 / lines as f64
            };
            assert!(
                (r.rework.avg_rate - rate).abs() < 1e-4,
                "{name}: {} vs {rate}",
                r.rework.avg_rate
            );
            for h in &r.hotspots {
                assert_eq!(
                    Some(&h.churn_count),
                    churn.get(&h.path),
                    "{name} {}",
                    h.path
                );
                assert!(h.risk_score <= 100);
            }
        }
    }
}
