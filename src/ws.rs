//! WebSockets: one [`WsClient`] actor per connection, built on actix-ws.
//!
//! The client actor subscribes to its repository's `RepoSession`, turns each event into a JSON
//! envelope (`{"type": "summary" | "delta" | "status" | "head" | "resync" | "error", ...}`) and hands it to a writer
//! task through a bounded queue. The session never waits for a browser: when a viewer's queue is
//! full its events are dropped and it is told to `resync` (re-fetch its windows) as soon as there
//! is room; a viewer still full after that is disconnected. Heartbeats drop browsers that stopped
//! answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use gitvista_actors::events::envelope;
use gitvista_actors::repo_session::{RepoSession, Subscribe, Unsubscribe};
use gitvista_actors::{Snapshot, ViewerEvent};
use tokio::sync::{mpsc, oneshot};

use crate::config::WsSettings;
use crate::error::ApiError;
use crate::routes::{AppState, session, snapshot};

/// An event larger than this is not sent: the viewer is told to `resync` (re-fetch its windows)
/// instead, which bounds what one connection can hold in the socket's frame channel.
const MAX_EVENT: usize = 256 * 1024;
/// Largest frame accepted from a browser (it only sends pings and small commands).
const MAX_FRAME: usize = 64 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Every live viewer's count of bytes queued and not yet written, for `/metrics`.
static QUEUES: std::sync::Mutex<Vec<std::sync::Weak<AtomicUsize>>> =
    std::sync::Mutex::new(Vec::new());

/// Adds a viewer's queue counter to [`QUEUES`]. Gone viewers are forgotten here too, whenever
/// the list is full, so it stays within twice the live viewers even if nobody scrapes.
fn register_queue(queued: &Arc<AtomicUsize>) {
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    if queues.len() == queues.capacity() {
        queues.retain(|q| q.strong_count() > 0);
    }
    queues.push(Arc::downgrade(queued));
}

/// (total, largest) bytes waiting in viewers' queues now; forgets viewers that are gone.
pub fn queued_bytes() -> (usize, usize) {
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    queues.retain(|q| q.strong_count() > 0);
    queues
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .map(|q| q.load(Ordering::Relaxed))
        .fold((0, 0), |(sum, max), n| (sum + n, max.max(n)))
}

/// A frame for the writer task.
#[derive(Debug)]
enum Frame {
    Text(String),
    Ping,
    Pong(actix_web::web::Bytes),
    Close(CloseReason),
}

/// What happened to an event offered to a viewer's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the browser.
    Queued,
    /// The queue was full: dropped, and the viewer now owes a `resync`.
    Dropped,
    /// The queue was still full after a drop (or the writer is gone): disconnect the viewer.
    Disconnect,
}

/// A viewer's outbound queue, bounded in frames and in bytes, and its falling-behind policy, apart
/// from the actor so the policy can be tested on its own.
#[derive(Debug)]
struct Outbox {
    /// Frames to the writer task.
    tx: mpsc::Sender<Frame>,
    /// Text bytes queued and not yet handed to the socket (the writer subtracts what it sends).
    queued: Arc<AtomicUsize>,
    /// Most text bytes queued at once.
    max_bytes: usize,
    /// Events were dropped: a `resync` is owed.
    behind: bool,
}

impl Outbox {
    fn new(tx: mpsc::Sender<Frame>, max_bytes: usize) -> Outbox {
        Outbox {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_bytes,
            behind: false,
        }
    }

    /// Offers a delta or other event; skipped while a resync is owed (the browser re-fetches
    /// everything then).
    fn offer(&mut self, text: String) -> Offer {
        if self.behind {
            return self.try_resync();
        }
        let len = text.len();
        if self.queued.load(Ordering::Relaxed) + len > self.max_bytes {
            if self.tx.is_closed() {
                return Offer::Disconnect;
            }
            self.behind = true;
            return Offer::Dropped;
        }
        match self.tx.try_send(Frame::Text(text)) {
            Ok(()) => {
                self.queued.fetch_add(len, Ordering::Relaxed);
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.behind = true;
                metrics::counter!("gitvista_ws_resyncs_total").increment(1);
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Disconnect,
        }
    }

    /// Sends the owed `resync` if there is room now; a viewer that still has no room is dropped.
    fn try_resync(&mut self) -> Offer {
        const RESYNC: &str = r#"{"type":"resync"}"#;
        if self.queued.load(Ordering::Relaxed) + RESYNC.len() > self.max_bytes {
            return Offer::Disconnect;
        }
        match self.tx.try_send(Frame::Text(RESYNC.into())) {
            Ok(()) => {
                self.queued.fetch_add(RESYNC.len(), Ordering::Relaxed);
                self.behind = false;
                Offer::Queued
            }
            Err(_) => Offer::Disconnect,
        }
    }

    /// Control frames skip the policy: losing a ping is harmless.
    fn control(&self, frame: Frame) {
        let _ = self.tx.try_send(frame);
    }
}

/// One browser connection.
#[derive(Debug)]
pub struct WsClient {
    /// This viewer's id in its session; fixed.
    id: u64,
    /// The repository session it watches; it unsubscribes when stopping.
    repo: Addr<RepoSession>,
    /// Frames to the writer task, bounded so a slow browser cannot grow memory, with the
    /// resync policy; its writer task ends when this actor drops it.
    out: Outbox,
    /// When the browser last sent anything; checked by the heartbeat.
    last_seen: Instant,
    /// Heartbeat interval and timeout.
    settings: WsSettings,
    /// Fired to make the writer task give up on a stalled browser; dropping it unfired lets the
    /// writer flush what is queued (a close frame) and end.
    abort: Option<oneshot::Sender<()>>,
    /// `gitvista_ws_messages_received_total`, looked up once.
    received: metrics::Counter,
}

impl Actor for WsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.repo.do_send(Subscribe {
            id: self.id,
            viewer: ctx.address().recipient(),
        });
        ctx.run_interval(self.settings.heartbeat, |act, ctx| {
            if act.last_seen.elapsed() > act.settings.client_timeout {
                act.cut_off(ctx);
                return;
            }
            if act.out.behind && act.out.try_resync() == Offer::Disconnect {
                act.cut_off(ctx);
                return;
            }
            act.out.control(Frame::Ping);
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.repo.do_send(Unsubscribe { id: self.id });
        Running::Stop
    }
}

impl Handler<ViewerEvent> for WsClient {
    type Result = ();

    fn handle(&mut self, event: ViewerEvent, ctx: &mut Context<Self>) {
        let text = match &event {
            ViewerEvent::Delta(d) => d.json().to_string(),
            ViewerEvent::ReloadFailed(e) => {
                serde_json::json!({"type": "error", "error": e.as_str(), "code": "reload_failed"})
                    .to_string()
            }
            ViewerEvent::Status(s) => envelope("status", &crate::routes::worktree::status_json(s)),
            ViewerEvent::Head(h) => envelope("head", &**h),
            ViewerEvent::Remote(r) => envelope("status", &**r),
            ViewerEvent::Closing => {
                self.out.control(Frame::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
                ctx.stop();
                return;
            }
        };
        let text = if text.len() > MAX_EVENT {
            r#"{"type":"resync","reason":"too_large"}"#.to_string()
        } else {
            text
        };
        if self.out.offer(text) == Offer::Disconnect {
            self.cut_off(ctx);
        }
    }
}

impl WsClient {
    /// Drops a viewer that stopped reading or answering: the writer abandons whatever it was
    /// sending (and its queue) at once, and the actor stops.
    fn cut_off(&mut self, ctx: &mut Context<Self>) {
        metrics::counter!("gitvista_ws_viewers_dropped_total").increment(1);
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(());
        }
        ctx.stop();
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for WsClient {
    fn handle(&mut self, msg: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        self.received.increment(1);
        match msg {
            Ok(Message::Ping(bytes)) => self.out.control(Frame::Pong(bytes)),
            Ok(Message::Close(_)) | Err(_) => ctx.stop(),
            Ok(_) => {}
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn summary(snap: &Snapshot) -> String {
    serde_json::json!({
        "type": "summary",
        "version": snap.version,
        "commits": snap.graph.len(),
        "rows": snap.layout.len(),
        "width": snap.layout.width(),
        "head": gitvista_actors::events::HeadEvent::from_head(snap.graph.head()),
    })
    .to_string()
}

/// Refuses cross-site WebSocket hijacking: a browser always sends `Origin`, and it must name this
/// server's own host.
fn check_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get("origin") else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = req.connection_info().host().to_string();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    if origin_host.eq_ignore_ascii_case(&host) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin} is not this server"
        )))
    }
}

/// `/api/repos/{id}/ws`: a summary on connect, then live events.
#[get("/api/repos/{id}/ws")]
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    check_origin(&req)?;
    let snap = match snapshot(&state, &id).await {
        Ok(snap) => snap,
        // Hosted mode, not served yet: stream the clone's progress instead.
        Err(ApiError::Unavailable(_)) if state.hosted.is_some() => {
            return clone_progress(&req, body, &state, id.into_inner());
        }
        Err(e) => return Err(e.into()),
    };
    let repo = session(&state, &id).await?;
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream.max_frame_size(MAX_FRAME);
    let settings = state.ws;
    let (tx, mut rx) = mpsc::channel::<Frame>(settings.queue_frames.max(2));
    let mut out = Outbox::new(tx, settings.queue_bytes);
    let _ = out.offer(summary(&snap));
    let queued = Arc::clone(&out.queued);
    register_queue(&queued);
    // The writer: a send that cannot complete within the client timeout means the browser
    // stopped reading; the writer then ends, freeing the queue (the actor has stopped by then).
    let write_timeout = settings.client_timeout;
    // One handle per connection: the macro would look the series up at every message.
    let sent_total = metrics::counter!("gitvista_ws_messages_sent_total");
    let (abort, aborted) = oneshot::channel::<()>();
    actix_web::rt::spawn(async move {
        // Resolves only when fired: an unfired, dropped sender means "finish normally".
        let aborted = async move {
            if aborted.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(aborted);
        let mut reason = None;
        while let Some(frame) = tokio::select! {
            biased;
            () = &mut aborted => return,
            frame = rx.recv() => frame,
        } {
            let send = async {
                match frame {
                    Frame::Text(t) => {
                        let len = t.len();
                        let sent = session.text(t).await;
                        queued.fetch_sub(len, Ordering::Relaxed);
                        sent_total.increment(1);
                        sent
                    }
                    Frame::Ping => session.ping(b"").await,
                    Frame::Pong(b) => session.pong(&b).await,
                    Frame::Close(r) => {
                        reason = Some(r);
                        Ok(())
                    }
                }
            };
            let sent = tokio::select! {
                () = &mut aborted => return,
                sent = actix_web::rt::time::timeout(write_timeout, send) => sent,
            };
            match sent {
                Ok(Ok(())) if reason.is_none() => {}
                Ok(Ok(())) => break,
                _ => return,
            }
        }
        let _ = actix_web::rt::time::timeout(write_timeout, session.close(reason)).await;
    });
    WsClient::create(|ctx| {
        ctx.add_stream(stream);
        WsClient {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            repo,
            out,
            last_seen: Instant::now(),
            settings,
            abort: Some(abort),
            received: metrics::counter!("gitvista_ws_messages_received_total"),
        }
    });
    Ok(response)
}

/// A socket for a hosted repository that is still cloning: `status` messages (state, progress
/// text and percent, error) every 250 ms until it is ready (then `resync`: reconnect for the
/// graph) or failed, then a normal close. Bounded by the clone timeout.
fn clone_progress(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    id: String,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(hosted) = state.hosted.clone() else {
        return Err(ApiError::UnknownRepo(id).into());
    };
    let (response, mut session, _stream) = actix_ws::handle(req, body)?;
    let limit = hosted.config.clone_timeout + Duration::from_secs(60);
    actix_web::rt::spawn(async move {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < limit {
            let Ok(mut status) = crate::routes::hosted::status_json(&hosted, &id).await else {
                break;
            };
            status["type"] = "status".into();
            let text = status.to_string();
            if text != last {
                if session.text(text.clone()).await.is_err() {
                    return;
                }
                last = text;
            }
            match status["state"].as_str() {
                Some("ready") => {
                    let _ = session.text(r#"{"type":"resync","reason":"ready"}"#).await;
                    break;
                }
                Some("error") => break,
                _ => actix_web::rt::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let _ = session.close(Some(CloseCode::Normal.into())).await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_registry_forgets_gone_viewers_without_a_scrape() {
        // Regression: gone viewers were only forgotten by /metrics, so a server nobody scraped
        // kept an entry (and its counter's allocation) for every connection ever made.
        let live: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::new(AtomicUsize::new(1))).collect();
        for q in &live {
            register_queue(q);
        }
        for _ in 0..100_000 {
            register_queue(&Arc::new(AtomicUsize::new(0)));
        }
        let len = QUEUES.lock().map(|q| q.len()).unwrap_or(usize::MAX);
        // Other tests in this process may hold a few viewers too.
        assert!(len < 1_000, "{len} entries for 10 live viewers");
        let (total, largest) = queued_bytes();
        assert!(total >= 10 && largest >= 1, "{total} {largest}");
    }

    #[test]
    fn a_full_queue_drops_then_resyncs_then_disconnects() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = Outbox::new(tx, 1 << 20);
        assert_eq!(out.offer("1".into()), Offer::Queued);
        assert_eq!(out.offer("2".into()), Offer::Queued);
        // The browser reads nothing: the third event is dropped and a resync is owed.
        assert_eq!(out.offer("3".into()), Offer::Dropped);
        assert!(out.behind);
        // Still no room for the resync: the viewer is cut off.
        assert_eq!(out.offer("4".into()), Offer::Disconnect);
        // A browser that catches up gets the resync instead of the events it missed.
        let _ = rx.try_recv();
        let _ = rx.try_recv();
        assert_eq!(out.offer("5".into()), Offer::Queued);
        assert!(!out.behind);
        match rx.try_recv() {
            Ok(Frame::Text(t)) => assert_eq!(t, r#"{"type":"resync"}"#),
            other => panic!("expected the resync, got {other:?}"),
        }
        drop(rx);
        assert_eq!(out.offer("6".into()), Offer::Disconnect);
    }

    #[test]
    fn a_queue_over_its_byte_bound_counts_as_full() {
        let (tx, _rx) = mpsc::channel(100);
        let mut out = Outbox::new(tx, 10);
        assert_eq!(out.offer("12345".into()), Offer::Queued);
        assert_eq!(out.offer("12345".into()), Offer::Queued);
        assert_eq!(out.offer("1".into()), Offer::Dropped, "11 bytes > 10");
        // Still no byte room for the resync: cut off.
        assert_eq!(out.offer("2".into()), Offer::Disconnect);
        let (tx, _rx) = mpsc::channel(100);
        let mut out = Outbox::new(tx, 40);
        assert_eq!(out.offer("x".repeat(30)), Offer::Queued);
        assert_eq!(out.offer("x".repeat(30)), Offer::Dropped);
        // The writer sent the first: room again, and the resync goes first.
        out.queued.store(0, Ordering::Relaxed);
        assert_eq!(out.offer("x".into()), Offer::Queued);
        assert!(!out.behind);
        assert_eq!(
            out.queued.load(Ordering::Relaxed),
            r#"{"type":"resync"}"#.len()
        );
    }
}
