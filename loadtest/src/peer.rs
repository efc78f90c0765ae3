//! The peer in the same run (`--peer`): the same viewers and the same pace of changes against a
//! bare broadcaster, a tokio-tungstenite server with one `tokio::sync::broadcast` channel per
//! repository and nothing else (no actors, no HTTP stack, no git, no queues of its own). It runs
//! as its own process (`gitvista loadtest-peer`, hidden), so its memory is its own, and is told
//! what to broadcast on its stdin. What separates GitVista's fan-out from it is what the actor
//! system, actix-web and the per-viewer policy cost.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;

use super::changes::{Change, Changes};
use super::deliveries::Deliveries;
use super::stats::Percentiles;
use super::viewer::{Ledger, Outcome, now_ms};
use super::{Crowd, LoadConfig};

/// Events a peer connection may fall behind by before it is told to resync.
const PEER_QUEUE: usize = 64;

/// Serves the peer on 127.0.0.1 until its stdin closes: prints `peer listening on ADDR`, then
/// broadcasts a delta naming `HASH` to repository `REPO`'s sockets for each `REPO HASH` line.
pub fn serve(repos: usize) -> anyhow::Result<()> {
    let repos = repos.clamp(1, super::MAX_REPOS);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("peer listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            let channels: Arc<Vec<broadcast::Sender<Utf8Bytes>>> = Arc::new(
                (0..repos)
                    .map(|_| broadcast::channel(PEER_QUEUE).0)
                    .collect(),
            );
            let senders = Arc::clone(&channels);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Some((repo, hash)) = line.split_once(' ') else {
                        continue;
                    };
                    let (Ok(repo), true) = (
                        repo.parse::<usize>(),
                        hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                    ) else {
                        continue;
                    };
                    let text = format!(
                        r#"{{"type":"delta","added":["{hash}"],"removed":[],"refs":[],"time":{}}}"#,
                        now_ms() as u64
                    );
                    if let Some(tx) = senders.get(repo) {
                        let _ = tx.send(Utf8Bytes::from(text));
                    }
                }
                // The harness closed stdin: it is done.
                std::process::exit(0);
            });
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(connection(stream, Arc::clone(&channels)));
            }
        })
}

/// One peer viewer: the summary, then every broadcast; a `resync` when it fell behind.
async fn connection(
    stream: tokio::net::TcpStream,
    channels: Arc<Vec<broadcast::Sender<Utf8Bytes>>>,
) {
    let path = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&path);
    #[expect(
        clippy::result_large_err,
        reason = "tungstenite's Callback fixes the error type"
    )]
    let callback = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        if let Ok(mut p) = seen.lock() {
            *p = req.uri().path().to_string();
        }
        Ok(resp)
    };
    // Small buffers, as GitVista's own sockets have: tungstenite's default read buffer is 128 KiB.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let repo = path
        .lock()
        .map(|p| p.trim_start_matches("/r").parse::<usize>().unwrap_or(0))
        .unwrap_or(0);
    let Some(tx) = channels.get(repo) else {
        return;
    };
    let mut rx = tx.subscribe();
    if ws
        .send(Message::Text(r#"{"type":"summary"}"#.into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => {
                let text = match event {
                    Ok(text) => text,
                    Err(broadcast::error::RecvError::Lagged(_)) => r#"{"type":"resync"}"#.into(),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if ws.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            inbound = ws.next() => match inbound {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The peer's figures, beside GitVista's in the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerReport {
    /// Viewers that held their summary.
    pub connected: usize,
    /// Changes broadcast.
    pub changes: usize,
    /// Stamp to viewer, viewers that keep up (ms).
    pub fanout_ms: Percentiles,
    /// Per change: stamp to the last viewer holding it (ms).
    pub all_viewers_ms: Percentiles,
    /// (change, viewer) pairs never received.
    pub lost: u64,
    /// The peer's resident memory per idle viewer (bytes).
    pub rss_per_viewer_bytes: f64,
}

/// The peer process, killed when dropped.
struct PeerProcess(Child);

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the same viewers (the slow ones included) and the same pace of changes against the peer
/// for the same duration.
pub(super) async fn measure(config: &LoadConfig, repos: usize) -> anyhow::Result<PeerReport> {
    let exe = std::env::current_exe().context("finding the gitvista binary")?;
    let mut child = Command::new(exe)
        .args(["loadtest-peer", "--repos", &repos.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the peer")?;
    let stdout = child.stdout.take();
    let mut stdin = child.stdin.take().context("the peer's stdin")?;
    let peer = PeerProcess(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .context("the peer did not start")??;
    let Some(addr) = line
        .trim()
        .strip_prefix("peer listening on ")
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    else {
        bail!("the peer said {line:?}");
    };
    let rss_before = crate::stats::resident_bytes_of(&peer.0.id().to_string());
    let max_changes = config.max_changes();
    let ledger = Arc::new(Ledger::new(max_changes, repos));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let paths: Vec<String> = (0..repos).map(|r| format!("/r{r}")).collect();
    eprintln!("loadtest: the peer (a bare tokio-tungstenite broadcaster)");
    let crowd = Crowd::connect(
        config,
        &paths,
        &[(format!("ws://{addr}"), addr)],
        &ledger,
        &stop_rx,
    )
    .await;
    let connected = crowd.connected;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = crate::stats::resident_bytes_of(&peer.0.id().to_string());

    let mut changes = Changes::default();
    let mut ticker = tokio::time::interval(config.change_interval);
    let started = Instant::now();
    while started.elapsed() < config.duration && changes.list.len() < max_changes {
        ticker.tick().await;
        let n = changes.list.len();
        let repo = n % repos;
        // Unique per change and never a real commit id.
        let hash = format!("{:016x}{:024x}", 0x9e37_79b9_7f4a_7c15u64 ^ n as u64, n);
        if ledger.expect(&hash, n).is_none() {
            bail!("bad change id {hash}");
        }
        changes.list.push(Change {
            repo,
            made_ms: now_ms(),
        });
        writeln!(stdin, "{repo} {hash}").context("writing to the peer")?;
    }
    crowd.drain(&changes, &ledger, super::DRAIN).await;
    let outcomes = crowd.finish(&stop_tx).await;
    drop(stdin);
    drop(peer);
    let normal: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.slow && o.connect.is_some())
        .collect();
    let d = Deliveries::of(&changes, &normal, repos);
    Ok(PeerReport {
        connected,
        changes: changes.list.len(),
        fanout_ms: Percentiles::of(d.fanout),
        all_viewers_ms: Percentiles::of(d.all_viewers),
        lost: d.lost,
        rss_per_viewer_bytes: if connected > 0 {
            super::stats::round(rss_idle.saturating_sub(rss_before) as f64 / connected as f64)
        } else {
            0.0
        },
    })
}
