//! What a run found: the [`Report`], as JSON and as text.

use serde::Serialize;
use serde_json::json;

use super::LoadConfig;
use super::changes::Changes;
use super::deliveries::Deliveries;
use super::stats::{Percentiles, metric, round};
use super::target::Target;
use super::viewer::Outcome;

/// The JSON report (also printed as text).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The settings this run used.
    pub config: serde_json::Value,
    /// Viewers asked for, connected, failed, dropped before the end; connect time.
    pub viewers: ViewerReport,
    /// Changes made and how many reached every viewer that keeps up.
    pub changes: ChangeReport,
    /// Server stamp to viewer, viewers that keep up (ms).
    pub fanout_ms: Percentiles,
    /// Commit in the remote to viewer, viewers that keep up (ms).
    pub delivery_ms: Percentiles,
    /// Per change: commit in the remote to the last viewer that keeps up holding it (ms).
    pub last_viewer_ms: Percentiles,
    /// Per change: the server's stamp to the last viewer that keeps up holding it (ms), how long
    /// a delta takes to reach all of them.
    pub all_viewers_ms: Percentiles,
    /// (change, viewer) pairs a viewer that keeps up never received.
    pub lost: u64,
    /// The deliberately slow viewers.
    pub slow: SlowReport,
    /// Graph windows over HTTP.
    pub http: HttpReport,
    /// The server's resident memory from `/metrics`.
    pub server_rss_bytes: RssReport,
    /// Server memory per connected idle viewer (bytes).
    pub rss_per_viewer_bytes: f64,
    /// The server's own counters at the end (viewers dropped, resyncs, full mailboxes).
    pub server: serde_json::Value,
    /// The harness's own resident memory at the end (bytes).
    pub harness_rss_bytes: u64,
    /// The open-files limit the harness ran with.
    pub open_files_limit: u64,
    /// Errors by kind, with counts (first few messages kept).
    pub errors: Vec<String>,
    /// The same load against a bare broadcaster (`--peer`).
    pub peer: Option<super::peer::PeerReport>,
    /// The flood of badly signed deliveries sent during the run (`--bad-webhooks-per-sec`).
    pub bad_webhooks: Option<super::changes::FloodReport>,
    /// With `--tiers`: fan-out per web node (viewers that keep up), and each node's memory with
    /// the viewers connected.
    pub nodes: Vec<NodeReport>,
    /// `--soak`: each minute's memory, files, threads and p99s, and the growth after warm-up.
    pub soak: Option<super::soak::SoakReport>,
}

/// One node of a `--tiers` run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// `web` or `worker`.
    pub role: &'static str,
    /// Its base URL.
    pub base: String,
    /// Viewers connected to it (web nodes).
    pub viewers: usize,
    /// Server stamp (on the owning worker) to viewer, through this node (web nodes).
    pub fanout_ms: Option<Percentiles>,
    /// Resident memory with the viewers connected (bytes).
    pub rss_bytes: u64,
}

impl Report {
    /// Adds the per-node figures of a `--tiers` run.
    pub(super) fn add_nodes(
        &mut self,
        outcomes: &[Outcome],
        webs: &[(String, std::net::SocketAddr)],
        rss: &[(&'static str, String, u64)],
    ) {
        if rss.is_empty() {
            return;
        }
        for (role, base, bytes) in rss {
            let web = webs.iter().position(|(b, _)| b == base);
            let mine: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| Some(o.web) == web && o.connect.is_some())
                .collect();
            let fanout = web.map(|_| {
                Percentiles::of(
                    mine.iter()
                        .filter(|o| !o.slow)
                        .flat_map(|o| o.receipts.iter().map(|r| r.at_ms - r.server_ms as f64))
                        .collect(),
                )
            });
            self.nodes.push(NodeReport {
                role,
                base: base.clone(),
                viewers: mine.len(),
                fanout_ms: fanout,
                rss_bytes: *bytes,
            });
        }
    }
}

/// Viewers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerReport {
    /// Asked for.
    pub requested: usize,
    /// Held their summary.
    pub connected: usize,
    /// Never connected.
    pub failed: usize,
    /// Connected viewers that keep up but lost their connection before the end.
    pub dropped: usize,
    /// TCP connect to summary (ms).
    pub connect_ms: Percentiles,
}

/// Changes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    /// Commits made (and fetches asked for).
    pub made: usize,
    /// Changes every viewer that keeps up received.
    pub delivered_to_all: usize,
    /// Deltas received by viewers that keep up, all changes together.
    pub deliveries: usize,
    /// Ticks skipped because every repository still had a change on its way.
    pub skipped_ticks: u64,
}

/// Slow viewers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowReport {
    /// How many.
    pub viewers: usize,
    /// Messages they read.
    pub messages: u64,
    /// `resync`s they were sent.
    pub resyncs: u64,
    /// How many the server cut off.
    pub disconnected: usize,
    /// Server stamp to slow viewer (ms).
    pub fanout_ms: Percentiles,
}

/// HTTP windows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpReport {
    /// Sent.
    pub requests: usize,
    /// Failed or non-2xx.
    pub errors: usize,
    /// From each request's scheduled time to its whole body (ms).
    pub latency_ms: Percentiles,
}

/// Server memory.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RssReport {
    /// Repositories loaded, no viewers.
    pub before: u64,
    /// All viewers connected, nothing changing.
    pub idle: u64,
    /// Highest seen during the changes.
    pub peak: u64,
    /// All viewers gone.
    pub after: u64,
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site gathering every measurement"
)]
pub(super) fn summarize(
    config: &LoadConfig,
    target: &Target,
    changes: &Changes,
    outcomes: &[Outcome],
    http: (usize, usize, Vec<f64>),
    rss: RssReport,
    counters: &str,
    limit: u64,
    connected: usize,
) -> Report {
    let normal: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.slow && o.connect.is_some())
        .collect();
    let slow: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.slow && o.connect.is_some())
        .collect();
    let d = Deliveries::of(changes, &normal, target.repos.len());
    let slow_fanout: Vec<f64> = slow
        .iter()
        .flat_map(|o| o.receipts.iter().map(|r| r.at_ms - r.server_ms as f64))
        .collect();
    let mut errors: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for o in outcomes.iter().filter(|o| !o.slow) {
        if let Some(e) = &o.error {
            let kind = e.split(':').next().unwrap_or(e).to_string();
            let entry = errors.entry(kind).or_insert((0, e.clone()));
            entry.0 += 1;
        }
    }
    let (requests, http_errors, latencies) = http;
    let counter = |name: &str| metric(counters, name).unwrap_or(0.0);
    Report {
        config: json!({
            "target": target.base,
            "webNodes": target.webs.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(),
            "selfHosted": target.fleet.is_some(),
            "tiers": config.tiers.as_ref().map(|t| format!("{}x{}", t.webs, t.workers)),
            "viewers": config.viewers,
            "repos": target.repos.len(),
            "durationSecs": config.duration.as_secs_f64(),
            "slowFraction": config.slow_fraction,
            "slowPauseMs": config.slow_pause.as_millis() as u64,
            "changeIntervalMs": config.change_interval.as_millis() as u64,
            "httpRate": config.http_rate,
            "commitsPerRepo": target.fleet.as_ref().map(|_| config.commits),
            "changeVia": config.change_via,
            "badWebhooksPerSec": config.bad_webhooks_per_sec,
            "rowsPerRepo": target.repos.iter().map(|r| r.rows).max().unwrap_or(0),
        }),
        viewers: ViewerReport {
            requested: config.viewers,
            connected,
            failed: outcomes.iter().filter(|o| o.connect.is_none()).count(),
            dropped: normal.iter().filter(|o| o.error.is_some()).count(),
            connect_ms: Percentiles::of(
                outcomes
                    .iter()
                    .filter_map(|o| o.connect)
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .collect(),
            ),
        },
        changes: ChangeReport {
            made: changes.list.len(),
            delivered_to_all: d.delivered_to_all,
            deliveries: d.deliveries,
            skipped_ticks: changes.skipped,
        },
        fanout_ms: Percentiles::of(d.fanout),
        delivery_ms: Percentiles::of(d.delivery),
        last_viewer_ms: Percentiles::of(d.last_viewer),
        all_viewers_ms: Percentiles::of(d.all_viewers),
        lost: d.lost,
        slow: SlowReport {
            viewers: slow.len(),
            messages: slow.iter().map(|o| o.messages).sum(),
            resyncs: slow.iter().map(|o| u64::from(o.resyncs)).sum(),
            disconnected: slow.iter().filter(|o| o.error.is_some()).count(),
            fanout_ms: Percentiles::of(slow_fanout),
        },
        http: HttpReport {
            requests,
            errors: http_errors,
            latency_ms: Percentiles::of(latencies),
        },
        rss_per_viewer_bytes: if connected > 0 {
            round(rss.idle.saturating_sub(rss.before) as f64 / connected as f64)
        } else {
            0.0
        },
        server_rss_bytes: rss,
        server: json!({
            "viewersDroppedTotal": counter("gitvista_ws_viewers_dropped_total"),
            "resyncsTotal": counter("gitvista_ws_resyncs_total"),
            "mailboxFullTotal": counter("gitvista_viewer_mailbox_full_total"),
            "eventsSentTotal": counter("gitvista_events_sent_total"),
            "viewers": counter("gitvista_viewers"),
        }),
        harness_rss_bytes: crate::stats::resident_bytes_of("self"),
        open_files_limit: limit,
        errors: errors
            .into_iter()
            .map(|(kind, (n, example))| format!("{n} x {kind} (e.g. {example})"))
            .collect(),
        peer: None,
        bad_webhooks: None,
        nodes: Vec::new(),
        soak: None,
    }
}

impl Report {
    /// The report as a few lines of text.
    pub fn text(&self) -> String {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
                x.p50, x.p95, x.p99, x.max, x.count
            )
        };
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        format!(
            "viewers: {} of {} connected ({} failed, {} dropped); connect {}\n\
             changes: {} made, {} reached every viewer that keeps up, {} lost\n\
             fan-out (server stamp to viewer): {}\n\
             delivery (commit in the remote to viewer, incl. fetch): {}\n\
             last viewer per change, from the commit: {}; from the server stamp: {}\n\
             slow viewers: {} (read {} messages, {} resyncs, {} cut off); fan-out {}\n\
             graph windows: {} requests, {} errors; {}\n\
             server RSS: before {:.1} MiB, idle with viewers {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; {:.1} KiB per viewer\n\
             harness RSS {:.1} MiB; open-files limit {}{}{}{}{}",
            self.viewers.connected,
            self.viewers.requested,
            self.viewers.failed,
            self.viewers.dropped,
            p(&self.viewers.connect_ms),
            self.changes.made,
            self.changes.delivered_to_all,
            self.lost,
            p(&self.fanout_ms),
            p(&self.delivery_ms),
            p(&self.last_viewer_ms),
            p(&self.all_viewers_ms),
            self.slow.viewers,
            self.slow.messages,
            self.slow.resyncs,
            self.slow.disconnected,
            p(&self.slow.fanout_ms),
            self.http.requests,
            self.http.errors,
            p(&self.http.latency_ms),
            mib(self.server_rss_bytes.before),
            mib(self.server_rss_bytes.idle),
            mib(self.server_rss_bytes.peak),
            mib(self.server_rss_bytes.after),
            self.rss_per_viewer_bytes / 1024.0,
            mib(self.harness_rss_bytes),
            self.open_files_limit,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!("\nerrors: {}", self.errors.join("; "))
            },
            self.nodes
                .iter()
                .map(|n| match &n.fanout_ms {
                    Some(f) => format!(
                        "\n{} {}: {} viewers, fan-out {}, RSS {:.1} MiB",
                        n.role,
                        n.base,
                        n.viewers,
                        p(f),
                        mib(n.rss_bytes)
                    ),
                    None => format!("\n{} {}: RSS {:.1} MiB", n.role, n.base, mib(n.rss_bytes)),
                })
                .collect::<String>(),
            self.bad_webhooks.map_or(String::new(), |f| format!(
                "\nbad deliveries ({} a second asked): {} sent, {} refused with 401, {} otherwise",
                f.per_sec, f.sent, f.refused, f.other
            )),
            self.peer.as_ref().map_or(String::new(), |peer| format!(
                "\npeer (bare tokio-tungstenite broadcaster, same load): {} connected, {} changes, {} lost; fan-out {}; all viewers {}; {:.1} KiB per viewer",
                peer.connected,
                peer.changes,
                peer.lost,
                p(&peer.fanout_ms),
                p(&peer.all_viewers_ms),
                peer.rss_per_viewer_bytes / 1024.0
            ))
        ) + &self.soak.as_ref().map_or(String::new(), soak_text)
    }
}

/// A soak's minutes as lines, then its growth.
fn soak_text(soak: &super::soak::SoakReport) -> String {
    let mut out = String::from(
        "
soak: minute, RSS MiB, open files, threads, windows p99 ms, fan-out p99 ms, pasted ready",
    );
    for m in &soak.minutes {
        out.push_str(&format!(
            "
  {:>3} {:>8.1} {:>6} {:>4} {:>8.1} {:>8.1} {:>3}/{}",
            m.minute,
            m.rss_bytes as f64 / 1048576.0,
            m.open_files,
            m.threads,
            m.windows.p99,
            m.fanout.p99,
            m.pasted_ready,
            m.pasted
        ));
    }
    out.push_str(&format!(
        "
soak: RSS grows {:.1} KiB a minute after minute {}; open files {} -> {}, threads {} -> {}",
        soak.rss_growth_per_minute_bytes / 1024.0,
        super::soak::WARM_UP_MINUTES,
        soak.open_files.0,
        soak.open_files.1,
        soak.threads.0,
        soak.threads.1
    ));
    out
}
