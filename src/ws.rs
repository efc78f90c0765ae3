//! WebSockets: one [`WsClient`] actor per connection, built on actix-ws.
//!
//! The client actor subscribes to its repository's `RepoSession`, turns each event into a JSON
//! envelope (`{"type": "summary" | "delta" | "status" | "head" | "resync" | "error", ...}`) and hands it to a writer
//! task through a bounded queue. The session never waits for a browser: when a viewer's queue is
//! full its events are dropped and it is told to `resync` (re-fetch its windows) as soon as there
//! is room; a viewer still full after that is disconnected. Heartbeats drop browsers that stopped
//! answering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use gitvista_actors::repo_session::{RepoSession, Subscribe, Unsubscribe};
use gitvista_actors::supervisor::GetSession;
use gitvista_actors::{RepoId, Snapshot, ViewerEvent};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::routes::{AppState, snapshot};

/// How often the server pings; browsers answer with pongs.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A browser silent for this long (three missed heartbeats) is disconnected.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Frames queued per viewer before it counts as falling behind.
const QUEUE: usize = 64;
/// Largest frame accepted from a browser (it only sends pings and small commands).
const MAX_FRAME: usize = 64 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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

/// A viewer's bounded outbound queue and its falling-behind policy, apart from the actor so the
/// policy can be tested on its own.
#[derive(Debug)]
struct Outbox {
    /// Frames to the writer task.
    tx: mpsc::Sender<Frame>,
    /// Events were dropped: a `resync` is owed.
    behind: bool,
}

impl Outbox {
    /// Offers a delta or other event; skipped while a resync is owed (the browser re-fetches
    /// everything then).
    fn offer(&mut self, text: String) -> Offer {
        if self.behind {
            return self.try_resync();
        }
        match self.tx.try_send(Frame::Text(text)) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.behind = true;
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Disconnect,
        }
    }

    /// Sends the owed `resync` if there is room now; a viewer that still has no room is dropped.
    fn try_resync(&mut self) -> Offer {
        match self.tx.try_send(Frame::Text(r#"{"type":"resync"}"#.into())) {
            Ok(()) => {
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
}

impl Actor for WsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.repo.do_send(Subscribe {
            id: self.id,
            viewer: ctx.address().recipient(),
        });
        ctx.run_interval(HEARTBEAT, |act, ctx| {
            if act.last_seen.elapsed() > CLIENT_TIMEOUT {
                act.out.control(Frame::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("heartbeat timeout".into()),
                }));
                ctx.stop();
                return;
            }
            if act.out.behind && act.out.try_resync() == Offer::Disconnect {
                ctx.stop();
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
            ViewerEvent::Delta(d) => envelope("delta", &**d),
            ViewerEvent::ReloadFailed(e) => {
                serde_json::json!({"type": "error", "error": e.as_str(), "code": "reload_failed"})
                    .to_string()
            }
            ViewerEvent::Status(s) => envelope("status", &crate::routes::worktree::status_json(s)),
            ViewerEvent::Head(h) => envelope("head", &**h),
            ViewerEvent::Closing => {
                self.out.control(Frame::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
                ctx.stop();
                return;
            }
        };
        if self.out.offer(text) == Offer::Disconnect {
            ctx.stop();
        }
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for WsClient {
    fn handle(&mut self, msg: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
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

/// `{"type": kind, ...fields of value}`.
fn envelope(kind: &str, value: &impl serde::Serialize) -> String {
    let mut v = serde_json::to_value(value).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("type".into(), kind.into());
    }
    v.to_string()
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
    let snap = snapshot(&state, &id).await?;
    let repo_id = RepoId::parse(&id).ok_or_else(|| ApiError::UnknownRepo(id.to_string()))?;
    let repo = state
        .supervisor
        .send(GetSession(repo_id))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|_| ApiError::UnknownRepo(id.to_string()))?;
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream.max_frame_size(MAX_FRAME);
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
    let _ = tx.try_send(Frame::Text(summary(&snap)));
    actix_web::rt::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let sent = match frame {
                Frame::Text(t) => session.text(t).await,
                Frame::Ping => session.ping(b"").await,
                Frame::Pong(b) => session.pong(&b).await,
                Frame::Close(reason) => {
                    let _ = session.close(Some(reason)).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = session.close(None).await;
    });
    WsClient::create(|ctx| {
        ctx.add_stream(stream);
        WsClient {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            repo,
            out: Outbox { tx, behind: false },
            last_seen: Instant::now(),
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_then_resyncs_then_disconnects() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = Outbox { tx, behind: false };
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
}
