//! The dashboard's figures for one time window, from the commits of a view and their
//! [`HistoryStats`]. Every figure counts the view's commits by author date (UTC), merges aside
//! unless said otherwise, and people as the mailmap names them.
//!
//! - velocity: commits per week (weeks start on Monday, 00:00 UTC), each with the mean of it and
//!   the three weeks before (`avg`), the total, the mean per week and the best week;
//! - authors: commits per person, most first;
//! - heatmap: commits per weekday (0 is Sunday) and hour;
//! - merges: merge commits among all commits, in percent and per week;
//! - change size: lines changed (added plus deleted) per commit, in buckets, median and mean;
//! - rework: lines changed in a file that had been changed in the 21 days before (by author
//!   date), per week and over the window;
//! - hotspots: per unit (a path's first two segments), the commits touching it (`churnCount`),
//!   its rework rate, the share of its commits changing more than 50 files, its most frequent
//!   author and their share, and a risk score: 100 x (0.35 rework + 0.30 churn / p90 of churn,
//!   capped at 1 + 0.20 top author share + 0.15 large change share), `risk` from 70, `watch`
//!   from 40;
//! - deltas: the main figures against the window of the same length just before.

use std::collections::HashMap;

use super::HistoryStats;
use crate::graph::{CommitGraph, CommitIdx};

/// Seconds in a day and in a week.
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
/// A change to a file changed within this long before is rework.
const REWORK_WINDOW: i64 = 21 * DAY;
/// A commit changing more files than this is a large change.
const LARGE_CHANGE_FILES: usize = 50;
/// Hotspots listed.
const MAX_HOTSPOTS: usize = 20;
/// Authors listed.
const MAX_AUTHORS: usize = 100;
/// Change size buckets: (label, lowest lines, highest lines).
pub const SIZE_BUCKETS: [(&str, u64, u64); 5] = [
    ("0-10", 0, 10),
    ("11-50", 11, 50),
    ("51-200", 51, 200),
    ("201-1000", 201, 1000),
    ("1001+", 1001, u64::MAX),
];

/// A time window: author times `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First second in the window.
    pub start: i64,
    /// First second after it.
    pub end: i64,
}

impl Window {
    fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Window {
        Window {
            start: self.start - (self.end - self.start),
            end: self.start,
        }
    }
}

/// The Monday 00:00 UTC starting the week of `t`.
pub fn week_start(t: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday is 3 days later (mod 7).
    let days = t.div_euclid(DAY);
    (days - (days + 3).rem_euclid(7)) * DAY
}

/// One week of the velocity chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    /// Its Monday, 00:00 UTC.
    pub ts: i64,
    /// Commits.
    pub count: u64,
    /// Mean of this week and the three before it.
    pub avg: f64,
}

/// Commits per week.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Velocity {
    /// Every week of the window.
    pub weeks: Vec<Week>,
    /// Commits in the window.
    pub total_commits: u64,
    /// Mean commits per week.
    pub avg_per_week: f64,
    /// The week with the most commits (the earliest of equals).
    pub best_week: Option<(i64, u64)>,
}

/// A person and their commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorCount {
    /// Name (mailmapped).
    pub name: String,
    /// Email (mailmapped).
    pub email: String,
    /// Commits.
    pub count: u64,
}

/// Merge commits among all commits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merges {
    /// Merge commits.
    pub merge_count: u64,
    /// All commits, merges included.
    pub total_count: u64,
    /// Merges in percent of all commits.
    pub merge_percent: f64,
    /// Merges per week.
    pub merges_per_week: f64,
}

/// Lines changed per commit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeSize {
    /// Commits per bucket of [`SIZE_BUCKETS`].
    pub buckets: Vec<u64>,
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The mean.
    pub avg_size: f64,
}

/// Rework per week and over the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rework {
    /// (week start, rework lines / lines) for every week with lines changed.
    pub weeks: Vec<(i64, f64)>,
    /// Rework lines / lines over the window.
    pub avg_rate: f64,
}

/// A part of the tree that changes often.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    /// The unit: a path's first two segments.
    pub path: String,
    /// Commits touching it.
    pub churn_count: u64,
    /// Rework lines / lines changed in it.
    pub rework_rate: f64,
    /// Share of its commits that changed more than 50 files.
    pub large_change_share: f64,
    /// Its most frequent author (mailmapped).
    pub top_author: String,
    /// Their share of its commits.
    pub top_author_share: f64,
    /// 0 to 100.
    pub risk_score: u32,
    /// `risk`, `watch` or `ok`.
    pub status: &'static str,
    /// What to do about it.
    pub recommendation: String,
}

/// The dashboard for one window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The window.
    pub window: Option<Window>,
    /// Commits per week.
    pub velocity: Velocity,
    /// People, most commits first (at most 100).
    pub authors: Vec<AuthorCount>,
    /// People with commits in the window.
    pub active_authors: u64,
    /// Commits per weekday (0 is Sunday) and hour, UTC.
    pub heatmap: [[u64; 24]; 7],
    /// Merges.
    pub merges: Merges,
    /// Change sizes.
    pub change_size: ChangeSize,
    /// Rework.
    pub rework: Rework,
    /// Hotspots, riskiest first.
    pub hotspots: Vec<Hotspot>,
    /// Commits of the window whose changes are not known (none once the stats are extended).
    pub missing_stats: u64,
}

/// The unit a path counts toward: its first two segments.
pub fn unit_of(path: &str) -> &str {
    match path.match_indices('/').nth(1) {
        Some((i, _)) => &path[..i],
        None => path,
    }
}

fn mean(sum: f64, n: f64) -> f64 {
    if n == 0.0 { 0.0 } else { sum / n }
}

/// Rounds to `digits` decimals.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The figures of `window` over `commits` (the view's commits, any order).
pub fn report(
    graph: &CommitGraph,
    commits: &[CommitIdx],
    stats: &HistoryStats,
    window: Window,
) -> Report {
    let mut r = Report {
        window: Some(window),
        ..Report::default()
    };
    // Commits of the window (merges included for the merge figures), and the non-merge ones
    // from 21 days before it on, oldest first, for rework.
    let mut in_window: Vec<CommitIdx> = Vec::new();
    let mut lookback: Vec<(i64, CommitIdx)> = Vec::new();
    for &c in commits {
        let t = graph.author_time(c);
        if window.contains(t) {
            r.merges.total_count += 1;
            if graph.parents(c).len() > 1 {
                r.merges.merge_count += 1;
                continue;
            }
            in_window.push(c);
        }
        if graph.parents(c).len() <= 1 && window.start - REWORK_WINDOW <= t && t < window.end {
            lookback.push((t, c));
        }
    }
    lookback.sort_unstable_by_key(|&(t, c)| (t, c));
    let first_week = week_start(window.start);
    let weeks = ((week_start(window.end - 1) - first_week) / WEEK + 1).max(1) as usize;
    let mut per_week = vec![0u64; weeks];
    let mut by_author: HashMap<u32, u64> = HashMap::new();
    let mut sizes: Vec<u64> = Vec::with_capacity(in_window.len());
    for &c in &in_window {
        let t = graph.author_time(c);
        per_week[((week_start(t) - first_week) / WEEK) as usize] += 1;
        *by_author.entry(graph.author_id(c)).or_default() += 1;
        let day = t.div_euclid(DAY);
        let weekday = (day + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday (4).
        let hour = (t.rem_euclid(DAY) / 3600) as usize;
        r.heatmap[weekday][hour] += 1;
        match stats.changes(&graph.oid(c)) {
            Some(files) => sizes.push(
                files
                    .iter()
                    .map(|f| u64::from(f.added) + u64::from(f.deleted))
                    .sum(),
            ),
            None => r.missing_stats += 1,
        }
    }
    // Velocity.
    let total = in_window.len() as u64;
    r.velocity.total_commits = total;
    r.velocity.avg_per_week = round(total as f64 / weeks as f64, 2);
    for (i, &count) in per_week.iter().enumerate() {
        let from = i.saturating_sub(3);
        let avg = per_week[from..=i].iter().sum::<u64>() as f64 / (i - from + 1) as f64;
        let ts = first_week + i as i64 * WEEK;
        r.velocity.weeks.push(Week {
            ts,
            count,
            avg: round(avg, 2),
        });
        if count > 0 && r.velocity.best_week.is_none_or(|(_, best)| count > best) {
            r.velocity.best_week = Some((ts, count));
        }
    }
    // Authors.
    let people = graph.people();
    r.active_authors = by_author.len() as u64;
    let mut authors: Vec<AuthorCount> = by_author
        .into_iter()
        .map(|(p, count)| AuthorCount {
            name: people[p as usize].name.clone(),
            email: people[p as usize].email.clone(),
            count,
        })
        .collect();
    authors.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.email.cmp(&b.email))
    });
    authors.truncate(MAX_AUTHORS);
    r.authors = authors;
    // Merges.
    r.merges.merge_percent = round(
        mean(
            r.merges.merge_count as f64 * 100.0,
            r.merges.total_count as f64,
        ),
        1,
    );
    r.merges.merges_per_week = round(r.merges.merge_count as f64 / weeks as f64, 2);
    // Change size.
    r.change_size.buckets = SIZE_BUCKETS
        .iter()
        .map(|&(_, lo, hi)| sizes.iter().filter(|&&s| lo <= s && s <= hi).count() as u64)
        .collect();
    sizes.sort_unstable();
    r.change_size.median = match sizes.len() {
        0 => 0.0,
        n if n % 2 == 1 => sizes[n / 2] as f64,
        n => (sizes[n / 2 - 1] + sizes[n / 2]) as f64 / 2.0,
    };
    r.change_size.avg_size = round(
        mean(sizes.iter().sum::<u64>() as f64, sizes.len() as f64),
        1,
    );
    rework_and_hotspots(&mut r, graph, stats, &lookback, window, first_week, weeks);
    r
}

#[derive(Default)]
struct Unit {
    commits: u64,
    lines: u64,
    rework: u64,
    large: u64,
    authors: HashMap<u32, u64>,
}

/// Rework per week and over the window, and the hotspots.
fn rework_and_hotspots(
    r: &mut Report,
    graph: &CommitGraph,
    stats: &HistoryStats,
    oldest_first: &[(i64, CommitIdx)],
    window: Window,
    first_week: i64,
    weeks: usize,
) {
    // When each path was last changed, walking oldest first (equal times are not "before").
    let mut last_change: Vec<i64> = vec![i64::MIN; stats.path_count()];
    let mut week_lines = vec![(0u64, 0u64); weeks];
    let (mut lines, mut rework) = (0u64, 0u64);
    let mut units: Vec<Unit> = (0..stats.unit_count()).map(|_| Unit::default()).collect();
    let mut touched: Vec<u32> = Vec::new();
    let mut seen_units: Vec<u32> = Vec::new();
    let mut k = 0;
    while k < oldest_first.len() {
        // Commits at one second see the changes before that second only.
        let t = oldest_first[k].0;
        let end = k + oldest_first[k..]
            .iter()
            .take_while(|&&(u, _)| u == t)
            .count();
        touched.clear();
        for &(_, c) in &oldest_first[k..end] {
            let Some(files) = stats.changes(&graph.oid(c)) else {
                continue;
            };
            let counted = window.contains(t);
            let large = files.len() > LARGE_CHANGE_FILES;
            seen_units.clear();
            let w = ((week_start(t) - first_week) / WEEK) as usize;
            for f in files {
                touched.push(f.path);
                if !counted {
                    continue;
                }
                let n = u64::from(f.added) + u64::from(f.deleted);
                let before = last_change[f.path as usize];
                let again = before != i64::MIN && t - before <= REWORK_WINDOW;
                week_lines[w].1 += n;
                lines += n;
                let u = stats.unit_of_path(f.path);
                let unit = &mut units[u as usize];
                unit.lines += n;
                if again {
                    week_lines[w].0 += n;
                    rework += n;
                    unit.rework += n;
                }
                if !seen_units.contains(&u) {
                    seen_units.push(u);
                }
            }
            for &u in &seen_units {
                let unit = &mut units[u as usize];
                unit.commits += 1;
                unit.large += u64::from(large);
                *unit.authors.entry(graph.author_id(c)).or_default() += 1;
            }
        }
        for &p in &touched {
            last_change[p as usize] = t;
        }
        k = end;
    }
    r.rework.weeks = week_lines
        .iter()
        .enumerate()
        .filter(|(_, w)| w.1 > 0)
        .map(|(i, &(again, n))| {
            (
                first_week + i as i64 * WEEK,
                round(again as f64 / n as f64, 4),
            )
        })
        .collect();
    r.rework.avg_rate = round(mean(rework as f64, lines as f64), 4);
    // Hotspots.
    let units: Vec<(&str, Unit)> = units
        .into_iter()
        .enumerate()
        .filter(|(_, u)| u.commits > 0)
        .map(|(i, u)| (stats.unit(i as u32), u))
        .collect();
    let mut churns: Vec<u64> = units.iter().map(|(_, u)| u.commits).collect();
    churns.sort_unstable();
    let p90 = match churns.len() {
        0 => 1,
        n => churns[(n * 9).div_ceil(10).max(1) - 1].max(1),
    };
    let people = graph.people();
    let mut hotspots: Vec<Hotspot> = units
        .into_iter()
        .map(|(path, u)| {
            let (top, top_count) = u
                .authors
                .iter()
                .map(|(&p, &n)| (p, n))
                .max_by(|a, b| {
                    a.1.cmp(&b.1)
                        .then_with(|| people[b.0 as usize].name.cmp(&people[a.0 as usize].name))
                })
                .unwrap_or((0, 0));
            let rework_rate = mean(u.rework as f64, u.lines as f64);
            let churn = (u.commits as f64 / p90 as f64).min(1.0);
            let owner = mean(top_count as f64, u.commits as f64);
            let large = mean(u.large as f64, u.commits as f64);
            let risk = (100.0 * (0.35 * rework_rate + 0.30 * churn + 0.20 * owner + 0.15 * large))
                .round() as u32;
            let status = if risk >= 70 {
                "risk"
            } else if risk >= 40 {
                "watch"
            } else {
                "ok"
            };
            let recommendation = recommend(status, rework_rate, churn, owner, large);
            Hotspot {
                path: path.to_string(),
                churn_count: u.commits,
                rework_rate: round(rework_rate, 4),
                large_change_share: round(large, 4),
                top_author: people
                    .get(top as usize)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                top_author_share: round(owner, 4),
                risk_score: risk,
                status,
                recommendation,
            }
        })
        .collect();
    hotspots.sort_by(|a, b| {
        b.risk_score
            .cmp(&a.risk_score)
            .then_with(|| b.churn_count.cmp(&a.churn_count))
            .then_with(|| a.path.cmp(&b.path))
    });
    hotspots.truncate(MAX_HOTSPOTS);
    r.hotspots = hotspots;
}

/// What to do about a unit, by its strongest factor.
fn recommend(status: &str, rework: f64, churn: f64, owner: f64, large: f64) -> String {
    if status == "ok" {
        return "No action needed.".to_string();
    }
    let factors = [
        (
            0.35 * rework,
            "Much of its change is rework: review designs before code, and add tests where the same lines keep changing.",
        ),
        (
            0.30 * churn,
            "It changes more than most of the tree: consider splitting it, or a code owner to review its changes.",
        ),
        (
            0.20 * owner,
            "One person makes most of its changes: pair on it or review across the team to spread the knowledge.",
        ),
        (
            0.15 * large,
            "Large changes reach it often: split big commits so each can be reviewed.",
        ),
    ];
    factors
        .iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|f| f.1.to_string())
        .unwrap_or_default()
}

/// One figure against the window before.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The figure's name (`totalCommits`, `avgPerWeek`, `activeAuthors`, `mergePercent`,
    /// `medianChangeSize`, `reworkRate`).
    pub name: &'static str,
    /// This window's value.
    pub current: f64,
    /// The previous window's.
    pub previous: f64,
    /// The change in percent of the previous value (`None` when that was 0).
    pub change_percent: Option<f64>,
}

/// The main figures of `current` against `previous`.
pub fn deltas(current: &Report, previous: &Report) -> Vec<Delta> {
    let figures = |r: &Report| {
        [
            ("totalCommits", r.velocity.total_commits as f64),
            ("avgPerWeek", r.velocity.avg_per_week),
            ("activeAuthors", r.active_authors as f64),
            ("mergePercent", r.merges.merge_percent),
            ("medianChangeSize", r.change_size.median),
            ("reworkRate", r.rework.avg_rate),
        ]
    };
    figures(current)
        .into_iter()
        .zip(figures(previous))
        .map(|((name, c), (_, p))| Delta {
            name,
            current: c,
            previous: p,
            change_percent: (p != 0.0).then(|| round((c - p) / p * 100.0, 1)),
        })
        .collect()
}

/// A few sentences on what stands out.
pub fn signals(current: &Report, deltas: &[Delta]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = deltas.iter().find(|d| d.name == "totalCommits")
        && let Some(change) = d.change_percent
        && change.abs() >= 20.0
    {
        out.push(format!(
            "Velocity {} {:.0}% against the previous period ({} commits, {} before).",
            if change > 0.0 { "up" } else { "down" },
            change.abs(),
            d.current,
            d.previous
        ));
    }
    if let Some(top) = current.authors.first()
        && current.velocity.total_commits >= 10
    {
        let share = top.count as f64 * 100.0 / current.velocity.total_commits as f64;
        if share >= 50.0 {
            out.push(format!(
                "{} wrote {share:.0}% of the commits: knowledge is concentrated.",
                top.name
            ));
        }
    }
    if let Some(h) = current.hotspots.first()
        && h.status != "ok"
    {
        out.push(format!(
            "Riskiest area: {} (risk {}, {} commits).",
            h.path, h.risk_score, h.churn_count
        ));
    }
    if current.rework.avg_rate >= 0.3 {
        out.push(format!(
            "{:.0}% of the lines changed were changed again within 21 days.",
            current.rework.avg_rate * 100.0
        ));
    }
    if current.merges.merge_percent >= 40.0 {
        out.push(format!(
            "{:.0}% of the commits are merges.",
            current.merges.merge_percent
        ));
    }
    out
}
