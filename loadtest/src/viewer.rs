//! One simulated viewer: a WebSocket on a repository that records when each change's `delta`
//! reached it. A slow viewer has a tiny receive buffer and pauses after every message, the way a
//! stalled browser tab reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What viewers share with the harness: the changes made so far and their delivery counts.
#[derive(Debug)]
pub struct Ledger {
    /// Change index by the first 16 hex digits of its commit id.
    pub by_key: RwLock<HashMap<u64, usize>>,
    /// Viewers that keep up and received each change (by change index; fixed length).
    pub delivered: Vec<AtomicU32>,
    /// Per repository: the key of its latest change until a viewer of it has seen it (0: none).
    pub pending: Vec<AtomicU64>,
    /// A soak's fan-out latencies since its last sample (`None` outside a soak).
    pub fanout: Option<std::sync::Arc<crate::soak::Recent>>,
}

impl Ledger {
    /// Room for `changes` changes over `repos` repositories.
    pub fn new(changes: usize, repos: usize) -> Ledger {
        Ledger {
            by_key: RwLock::new(HashMap::new()),
            delivered: (0..changes).map(|_| AtomicU32::new(0)).collect(),
            pending: (0..repos).map(|_| AtomicU64::new(0)).collect(),
            fanout: None,
        }
    }
}

impl Ledger {
    /// Records that `hash` is change `change`, from now on matched in viewers' deltas; returns
    /// its key, or `None` for something that is not a commit id.
    pub fn expect(&self, hash: &str, change: usize) -> Option<u64> {
        let k = key(hash)?;
        self.by_key
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, change);
        Some(k)
    }
}

/// The first 16 hex digits of a commit id as a number.
pub fn key(hex: &str) -> Option<u64> {
    hex.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok())
}

/// Wall-clock milliseconds since the Unix epoch (the server stamps deltas on the same clock).
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One change as one viewer received it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// Change index; `None` for a delta the harness did not cause (a `--target`'s own pushes).
    pub change: Option<usize>,
    /// When it arrived (ms since the epoch).
    pub at_ms: f64,
    /// When the server stamped the delta (ms since the epoch).
    pub server_ms: u64,
}

/// How a viewer went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Repository index.
    pub repo: usize,
    /// Web node index.
    pub web: usize,
    /// Whether it was a deliberately slow viewer.
    pub slow: bool,
    /// From the TCP connect to the `summary` message, if it got that far.
    pub connect: Option<Duration>,
    /// When it was connected (ms since the epoch).
    pub connected_ms: f64,
    /// Why it failed or was disconnected before the end, if it was.
    pub error: Option<String>,
    /// The changes it received.
    pub receipts: Vec<Receipt>,
    /// Messages received.
    pub messages: u64,
    /// `resync` messages received (it fell behind and was told to re-fetch).
    pub resyncs: u32,
}

/// What a viewer needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `ws://host:port/api/repos/ID/ws`.
    pub url: String,
    /// The server's address.
    pub addr: SocketAddr,
    /// Repository index.
    pub repo: usize,
    /// Web node index (the server's, alone).
    pub web: usize,
    /// Pause after each message (a slow viewer), else `None`.
    pub slow: Option<Duration>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    added: Vec<&'a str>,
    #[serde(default)]
    time: u64,
}

/// Receive buffer of a slow viewer's socket: small, so the server notices it falling behind.
const SLOW_RECV_BUFFER: u32 = 4096;
/// How long a slow viewer reads what is left at the stop.
const SLOW_DRAIN: Duration = Duration::from_secs(2);
/// A connect (TCP + upgrade + summary) that takes longer than this has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connects, reports the connect through `connected` (`true` on success), then records deltas
/// until `stop` turns true or the server closes the socket.
pub async fn run(
    plan: Plan,
    ledger: Arc<Ledger>,
    connected: tokio::sync::mpsc::UnboundedSender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut outcome = Outcome {
        repo: plan.repo,
        web: plan.web,
        slow: plan.slow.is_some(),
        ..Outcome::default()
    };
    let started = Instant::now();
    let socket = tokio::time::timeout(CONNECT_TIMEOUT, connect(&plan)).await;
    let mut ws = match socket {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            outcome.error = Some(format!("connect: {e}"));
            let _ = connected.send(false);
            return outcome;
        }
        Err(_) => {
            outcome.error = Some("connect: timed out".into());
            let _ = connected.send(false);
            return outcome;
        }
    };
    // The summary comes first; a viewer is connected once it holds it.
    let first = tokio::time::timeout(CONNECT_TIMEOUT, ws.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"summary\"") => {
            outcome.messages += 1;
            outcome.connect = Some(started.elapsed());
            outcome.connected_ms = now_ms();
            let _ = connected.send(true);
        }
        other => {
            outcome.error = Some(format!("no summary on connect: {other:?}"));
            let _ = connected.send(false);
            return outcome;
        }
    }
    let mut stopped = false;
    // At the stop, a slow viewer reads what is still on its way (bounded), to learn whether
    // the server told it to resync or cut it off while it was not reading.
    let mut drain_until = None;
    loop {
        let msg = match drain_until {
            Some(deadline) => match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(msg) => msg,
                Err(_) => break,
            },
            None => tokio::select! {
                msg = ws.next() => msg,
                _ = stop.wait_for(|s| *s) => {
                    stopped = true;
                    if plan.slow.is_none() {
                        break;
                    }
                    drain_until = Some(tokio::time::Instant::now() + SLOW_DRAIN);
                    continue;
                }
            },
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                outcome.error = Some(format!("closed by the server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                outcome.error = Some(format!("socket error: {e}"));
                break;
            }
            None => {
                outcome.error = Some("the server closed the connection".into());
                break;
            }
        };
        outcome.messages += 1;
        let at_ms = now_ms();
        if let Ok(env) = serde_json::from_str::<Envelope<'_>>(text.as_str()) {
            match env.kind {
                "delta" => record(&plan, &ledger, &mut outcome, &env, at_ms),
                "resync" => outcome.resyncs += 1,
                _ => {}
            }
        }
        if let Some(pause) = plan.slow
            && !stopped
        {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => {
                    stopped = true;
                    drain_until = Some(tokio::time::Instant::now() + SLOW_DRAIN);
                }
            }
        }
    }
    outcome
}

fn record(plan: &Plan, ledger: &Ledger, outcome: &mut Outcome, env: &Envelope<'_>, at_ms: f64) {
    let by_key = ledger.by_key.read().unwrap_or_else(|e| e.into_inner());
    let mut matched = false;
    for hash in &env.added {
        let Some(k) = key(hash) else { continue };
        let Some(&change) = by_key.get(&k) else {
            continue;
        };
        matched = true;
        if let Some(recent) = &ledger.fanout {
            recent.push(at_ms - env.time as f64);
        }
        outcome.receipts.push(Receipt {
            change: Some(change),
            at_ms,
            server_ms: env.time,
        });
        if plan.slow.is_none()
            && let Some(count) = ledger.delivered.get(change)
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(p) = ledger.pending.get(plan.repo) {
            let _ = p.compare_exchange(k, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    if !matched {
        outcome.receipts.push(Receipt {
            change: None,
            at_ms,
            server_ms: env.time,
        });
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(plan: &Plan) -> anyhow::Result<Socket> {
    let socket = if plan.addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if plan.slow.is_some() {
        socket.set_recv_buffer_size(SLOW_RECV_BUFFER)?;
    }
    let stream = socket.connect(plan.addr).await?;
    stream.set_nodelay(true)?;
    // Small buffers: ten thousand viewers in one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(8 << 20));
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(plan.url.as_str(), stream, Some(config))
            .await?;
    Ok(ws)
}
