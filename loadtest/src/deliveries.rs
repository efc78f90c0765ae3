//! How the changes reached the viewers that keep up: latencies per (change, viewer) pair, per
//! change to the last viewer, and what was lost.

use super::changes::Changes;
use super::viewer::Outcome;

/// How the changes reached the viewers that keep up.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    /// Server stamp to viewer, per (change, viewer) and per unmatched delta (ms).
    pub(super) fanout: Vec<f64>,
    /// Commit to viewer, per (change, viewer) (ms).
    pub(super) delivery: Vec<f64>,
    /// Per change every viewer received: commit to the last of them (ms).
    pub(super) last_viewer: Vec<f64>,
    /// Per change every viewer received: server stamp to the last of them (ms).
    pub(super) all_viewers: Vec<f64>,
    /// (change, viewer) pairs owed and never received.
    pub(super) lost: u64,
    /// Changes every viewer received.
    pub(super) delivered_to_all: usize,
    /// (change, viewer) pairs received.
    pub(super) deliveries: usize,
}

impl Deliveries {
    /// From the viewers that keep up (`normal`), over `repos` repositories.
    pub(super) fn of(changes: &Changes, normal: &[&Outcome], repos: usize) -> Deliveries {
        let mut fanout = Vec::new();
        let mut delivery = Vec::new();
        let mut last_at = vec![0f64; changes.list.len()];
        let mut stamp = vec![0u64; changes.list.len()];
        let mut got = vec![0usize; changes.list.len()];
        let mut lost = 0u64;
        for o in normal {
            let mut received = vec![false; changes.list.len()];
            for r in &o.receipts {
                fanout.push(r.at_ms - r.server_ms as f64);
                if let Some(c) = r.change
                    && let Some(ch) = changes.list.get(c)
                    && !received[c]
                {
                    received[c] = true;
                    got[c] += 1;
                    delivery.push(r.at_ms - ch.made_ms);
                    last_at[c] = last_at[c].max(r.at_ms);
                    stamp[c] = r.server_ms;
                }
            }
            // Every change made on its repository while it was connected was owed to it.
            lost += changes
                .list
                .iter()
                .enumerate()
                .filter(|(c, ch)| {
                    ch.repo == o.repo && ch.made_ms >= o.connected_ms && !received[*c]
                })
                .count() as u64;
        }
        let mut per_repo = vec![0usize; repos];
        for o in normal {
            per_repo[o.repo] += 1;
        }
        let delivered_to_all = changes
            .list
            .iter()
            .enumerate()
            .filter(|(c, ch)| got[*c] >= per_repo[ch.repo])
            .count();
        let complete: Vec<usize> = (0..changes.list.len())
            .filter(|&c| got[c] > 0 && got[c] >= per_repo[changes.list[c].repo])
            .collect();
        let last_viewer: Vec<f64> = complete
            .iter()
            .map(|&c| last_at[c] - changes.list[c].made_ms)
            .collect();
        let all_viewers: Vec<f64> = complete
            .iter()
            .map(|&c| last_at[c] - stamp[c] as f64)
            .collect();
        Deliveries {
            fanout,
            delivery,
            last_viewer,
            all_viewers,
            lost,
            delivered_to_all,
            deliveries: got.iter().sum(),
        }
    }
}
