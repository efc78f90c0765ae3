//! Percentiles and the `/metrics` lines the harness reads.

use serde::Serialize;

/// Percentiles of a set of durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many values.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted here); all zero when empty.
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let rank = (p * values.len() as f64).ceil() as usize;
            round(values[rank.clamp(1, values.len()) - 1])
        };
        Percentiles {
            count: values.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: round(values[values.len() - 1]),
        }
    }
}

/// Two decimals are all a millisecond figure needs.
pub fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The value of an unlabelled sample `name` in Prometheus text (a cluster node's only label,
/// `node`, aside), if present.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let bare = match key.split_once('{') {
            Some((k, labels)) => {
                let labels = labels.strip_suffix('}')?;
                let only_node = labels.starts_with("node=\"")
                    && labels.ends_with('"')
                    && labels.matches('"').count() == 2;
                only_node.then_some(k)?
            }
            None => key,
        };
        (bare == name).then(|| value.trim().parse().ok())?
    })
}

/// Resident memory in bytes of process `pid` (a number, or `self`), from /proc (0 if unknown).
pub fn resident_bytes_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(f64::from).rev().collect());
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
    }

    #[test]
    fn reads_unlabelled_samples_only() {
        let text = "# TYPE gitvista_viewers gauge\ngitvista_viewers 12\n\
                    gitvista_cache_bytes{cache=\"diff\"} 5\ngitvista_process_resident_bytes 1.5e6\n";
        assert_eq!(metric(text, "gitvista_viewers"), Some(12.0));
        assert_eq!(metric(text, "gitvista_process_resident_bytes"), Some(1.5e6));
        assert_eq!(metric(text, "gitvista_cache_bytes"), None);
        assert_eq!(metric(text, "gitvista_view"), None);
        let node = "gitvista_viewers{node=\"node-1-ab\"} 3\ngitvista_x{node=\"n\",k=\"v\"} 1\n";
        assert_eq!(metric(node, "gitvista_viewers"), Some(3.0));
        assert_eq!(metric(node, "gitvista_x"), None);
    }
}
