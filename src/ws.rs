//! WebSockets: one [`WsClient`] actor per connection, built on actix-ws.
//!
//! The client actor subscribes to its repository's `RepoSession`, turns each event into a JSON
//! envelope (`{"type": "summary" | "delta" | "resync" | "error", ...}`) and hands it to a writer
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

/// One browser connection.
#[derive(Debug)]
pub struct WsClient {
    /// This viewer's id in its session; fixed.
    id: u64,
    /// The repository session it watches; it unsubscribes when stopping.
    repo: Addr<RepoSession>,
    /// Frames to the writer task; bounded so a slow browser cannot grow memory.
    out: mpsc::Sender<Frame>,
    /// When the browser last sent anything; checked by the heartbeat.
    last_seen: Instant,
    /// Events were dropped because the queue was full: a `resync` is owed.
    behind: bool,
}

impl WsClient {
    fn send_text(&mut self, text: String, ctx: &mut Context<Self>) {
        match self.out.try_send(Frame::Text(text)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) if self.behind => {
                // Still full after being told to resync: this viewer cannot keep up.
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.behind = true,
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }
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
                let _ = act.out.try_send(Frame::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("heartbeat timeout".into()),
                }));
                ctx.stop();
                return;
            }
            if act.behind
                && act
                    .out
                    .try_send(Frame::Text(r#"{"type":"resync"}"#.into()))
                    .is_ok()
            {
                act.behind = false;
            }
            let _ = act.out.try_send(Frame::Ping);
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
        };
        if self.behind {
            // The browser re-fetches everything on resync; this delta adds nothing.
            return;
        }
        self.send_text(text, ctx);
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for WsClient {
    fn handle(&mut self, msg: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match msg {
            Ok(Message::Ping(bytes)) => {
                let _ = self.out.try_send(Frame::Pong(bytes));
            }
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
            out: tx,
            last_seen: Instant::now(),
            behind: false,
        }
    });
    Ok(response)
}
