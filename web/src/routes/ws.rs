//! WebSockets: one [`WsClient`] actor per connection, built on actix-ws.
//!
//! The client actor subscribes its socket to the repository's `RepoSession` as a
//! [`outbox::SocketViewer`]: each event's JSON envelope (`{"type": "summary" | "delta" | "status"
//! | "head" | "resync" | "error", ...}`), encoded once per broadcast and shared, goes straight
//! into the socket's bounded queue, which a writer task drains into actix-ws. The session never
//! waits for a browser: when a viewer's queue is full its events are dropped and it is told to
//! `resync` (re-fetch its windows) as soon as there is room; a viewer still full after that is
//! disconnected. The actor keeps the rest: heartbeats that drop browsers that stopped answering,
//! inbound frames ([`frames`]: checked at their headers), access checks and closing.

mod frames;
mod outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use gitvista_actors::repo_session::{RepoSession, Subscribe, Unsubscribe};
use gitvista_actors::{Snapshot, ViewerEvent};
use tokio::sync::{mpsc, oneshot};

use self::frames::{MAX_FRAME, limit_frames};
use self::outbox::{CutOff, Frame, Offer, Outbox, SocketViewer};

use crate::config::WsSettings;
use crate::metrics::register_queue;
use crate::routes::repo_param::RepoParam;
use crate::routes::{AppState, session, snapshot};
use gitvista_errors::ApiError;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One browser connection.
#[derive(Debug)]
pub struct WsClient {
    /// This viewer's id in its session; fixed.
    id: u64,
    /// The repository session it watches; it unsubscribes when stopping.
    repo: Addr<RepoSession>,
    /// The socket as the session holds it: frames to the writer task, bounded so a slow browser
    /// cannot grow memory, with the resync policy; the writer ends when the session and this
    /// actor have dropped it.
    viewer: Arc<SocketViewer>,
    /// When the browser last sent anything; checked by the heartbeat.
    last_seen: Instant,
    /// Heartbeat interval and timeout.
    settings: WsSettings,
    /// Fired to make the writer task give up on a stalled browser; dropping it unfired lets the
    /// writer flush what is queued (a close frame) and end.
    abort: Option<oneshot::Sender<()>>,
    /// `gitvista_ws_messages_received_total`, looked up once.
    received: metrics::Counter,
    /// Set by [`frames::limit_frames`] when the browser announced a frame or message over [`MAX_FRAME`].
    oversize: Arc<AtomicBool>,
    /// This socket's place in its client's count of open sockets; given back with the actor.
    _held: Option<crate::client::Held>,
    /// With sign-in on: whose socket it is, asked again every access recheck.
    access: Option<AccessWatch>,
    /// The version its opening summary described: the session says if it has moved on by
    /// the time this viewer subscribes.
    seen: Option<u64>,
}

/// Who watches, so a viewer who loses access (GitHub says no, their sign-in expired, the
/// repository went private) is told and closed.
#[derive(Debug, Clone)]
struct AccessWatch {
    accounts: Arc<gitvista_accounts::accounts::Accounts>,
    repo_id: String,
    viewer: Option<gitvista_accounts::accounts::Viewer>,
}

impl AccessWatch {
    /// The repository's row: `Err(())` when the store could not answer (the viewer is kept
    /// until it can).
    async fn repo(&self) -> Result<Option<gitvista_store::Repo>, ()> {
        let (store, rid) = (self.accounts.store.clone(), self.repo_id.clone());
        match actix_web::web::block(move || store.repo(&rid)).await {
            Ok(Ok(r)) => Ok(r),
            _ => Err(()),
        }
    }

    /// Whether the viewer may still read the repository, asking GitHub again when the last
    /// answer is older than the recheck interval. A signed-in viewer of a public repository
    /// they track has its visibility checked too (it may have gone private).
    async fn still_allowed(self) -> Result<(), &'static str> {
        use gitvista_accounts::accounts::Access;
        let a = &self.accounts;
        let mut repo = match self.repo().await {
            Ok(Some(r)) => r,
            Ok(None) => return Err("the repository was removed"),
            Err(()) => return Ok(()),
        };
        if let Some(v) = &self.viewer
            && !repo.is_private
        {
            a.notice_visibility(&repo, &v.user).await;
            // It may have gone private: read it again.
            match self.repo().await {
                Ok(Some(r)) => repo = r,
                Ok(None) => return Err("the repository was removed"),
                Err(()) => return Ok(()),
            }
        }
        match a.may_read(&repo, self.viewer.as_ref()).await {
            Access::Granted | Access::Unconfirmed(_) => Ok(()),
            // A visitor not signed in is refused only a private repository.
            Access::Denied if self.viewer.is_none() => {
                Err("the repository is private now; sign in with an account that can read it")
            }
            Access::Denied => Err("your GitHub account can no longer read this repository"),
        }
    }
}

impl Actor for WsClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.repo.do_send(Subscribe {
            id: self.id,
            viewer: Arc::clone(&self.viewer) as gitvista_actors::Viewer,
            seen: self.seen,
        });
        ctx.run_interval(self.settings.heartbeat, |act, ctx| {
            if act.last_seen.elapsed() > act.settings.client_timeout {
                act.cut_off(ctx);
                return;
            }
            let mut out = act.viewer.out();
            if out.behind && out.try_resync() == Offer::Disconnect {
                drop(out);
                act.cut_off(ctx);
                return;
            }
            out.control(Frame::Ping);
        });
        if let Some(watch) = &self.access {
            let every = watch.accounts.access_recheck.max(Duration::from_secs(1));
            ctx.run_interval(every, |act, ctx| act.check_access(ctx));
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.repo.do_send(Unsubscribe { id: self.id });
        self.viewer.out().close();
        Running::Stop
    }
}

impl Handler<ViewerEvent> for WsClient {
    type Result = ();

    fn handle(&mut self, event: ViewerEvent, ctx: &mut Context<Self>) {
        let message = match &event {
            ViewerEvent::AccessChanged => {
                self.check_access(ctx);
                return;
            }
            ViewerEvent::Closing => {
                self.viewer
                    .out()
                    .control(Frame::Close(if self.settings.stop_is_restart {
                        CloseReason {
                            code: CloseCode::Restart,
                            description: Some("server restarting: connect again".into()),
                        }
                    } else {
                        CloseReason {
                            code: CloseCode::Away,
                            description: Some("server shutting down".into()),
                        }
                    }));
                ctx.stop();
                return;
            }
            // Messages come through the socket viewer's queue; one sent here goes there too.
            other => match gitvista_actors::events::event_message(other) {
                Some(message) => message,
                None => return,
            },
        };
        if self.viewer.offer(&message) == Offer::Disconnect {
            self.cut_off(ctx);
        }
    }
}

impl Handler<CutOff> for WsClient {
    type Result = ();

    fn handle(&mut self, _: CutOff, ctx: &mut Context<Self>) {
        self.cut_off(ctx);
    }
}

impl WsClient {
    /// With sign-in on: asks whether the viewer may still read the repository, and closes the
    /// socket if not.
    fn check_access(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = self.access.clone() else {
            return;
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(watch.still_allowed()).map(|verdict, act, ctx| {
                if let Err(why) = verdict {
                    act.access_lost(why, ctx);
                }
            }),
        );
    }

    /// A final `status` saying why, then a close with 1008 ("policy violation").
    fn access_lost(&mut self, why: &'static str, ctx: &mut Context<Self>) {
        metrics::counter!("gitvista_ws_access_lost_total").increment(1);
        let mut out = self.viewer.out();
        let _ = out.offer(
            serde_json::json!({"type": "status", "state": "access_lost", "error": why, "code": "access_lost"})
                .to_string()
                .into(),
        );
        out.control(Frame::Close(CloseReason {
            code: CloseCode::Policy,
            description: Some("access lost".into()),
        }));
        ctx.stop();
    }

    /// Closes with 1009 ("message too big"): the browser announced more than it may send.
    fn too_big(&mut self, ctx: &mut Context<Self>) {
        metrics::counter!("gitvista_ws_oversize_total").increment(1);
        self.viewer.out().control(Frame::Close(CloseReason {
            code: CloseCode::Size,
            description: Some(format!(
                "frames and messages are limited to {MAX_FRAME} bytes"
            )),
        }));
        ctx.stop();
    }

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
            Ok(Message::Ping(bytes)) => self.viewer.out().control(Frame::Pong(bytes)),
            Err(ProtocolError::Overflow) => self.too_big(ctx),
            Err(_) if self.oversize.load(Ordering::Relaxed) => self.too_big(ctx),
            Ok(Message::Close(_)) | Err(_) => ctx.stop(),
            Ok(_) => {}
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.oversize.load(Ordering::Relaxed) {
            self.too_big(ctx);
        }
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

/// `/api/repos/{id}/ws`: a summary on connect, then live events.
#[get("/api/repos/{id}/ws")]
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    id: RepoParam,
) -> Result<HttpResponse, actix_web::Error> {
    // A server that is stopping takes no new viewer: it is telling its own to go elsewhere.
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(HttpResponse::ServiceUnavailable()
            .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
            .json(serde_json::json!({
                "error": "this server is stopping: connect again",
                "code": "stopping",
            })));
    }
    // Cross-site WebSocket hijacking: a browser always sends `Origin`, and it must be ours.
    state.guard.origin.origin_matches(&req)?;
    let held = match state.clients.key(&req) {
        Some(client) => Some(
            state
                .clients
                .websockets
                .acquire(client)
                .ok_or_else(|| ApiError::TooManySockets(state.ws.per_client))?,
        ),
        None => None,
    };
    let web = state.hosted.clone().zip(state.forwarder.clone());
    let first = match &web {
        // A web node: the summary comes from the owner, the events through the fan-out.
        Some((h, fwd)) => {
            let rid = gitvista_actors::RepoId::parse(&id)
                .filter(|_| !crate::routes::hidden(&id))
                .ok_or_else(|| ApiError::UnknownRepo(id.to_string()))?;
            match fwd.owner_summary(h, &id).await? {
                Some(summary) => {
                    h.register_remote(&rid);
                    (summary.to_string(), summary["version"].as_u64())
                }
                // Owned by nobody yet: the clone's progress of a repository the store knows
                // (an evicted one cloned again), 404 for an id it does not (as a single node
                // answers, and as a repository this visitor may not see is answered).
                None => match super::hosted_not_served(&state, &id).await {
                    ApiError::Unavailable(_) => {
                        return clone_progress(&req, body, &state, id.into_string(), held).await;
                    }
                    refused => return Err(refused.into()),
                },
            }
        }
        None => match snapshot(&state, &id).await {
            Ok(snap) => (summary(&snap), Some(snap.version)),
            // Hosted mode, not served yet: stream the clone's progress instead.
            Err(ApiError::Unavailable(_)) if state.hosted.is_some() => {
                return clone_progress(&req, body, &state, id.into_string(), held).await;
            }
            Err(e) => return Err(e.into()),
        },
    };
    let repo = session(&state, &id).await?;
    let access = state
        .hosted
        .as_ref()
        .and_then(|h| h.accounts.clone())
        .map(|accounts| AccessWatch {
            accounts,
            repo_id: id.to_string(),
            viewer: crate::routes::account::viewer(&req),
        });
    let (body, oversize) = limit_frames(&req, body).await?;
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream.max_frame_size(MAX_FRAME);
    let settings = state.ws;
    let (tx, mut rx) = mpsc::channel::<Frame>(settings.queue_frames.max(2));
    let mut out = Outbox::new(tx, settings.queue_bytes);
    let (first, seen) = first;
    let _ = out.offer(first.into());
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
                        // Encoded from `String`s; checked, not trusted (a few ns a byte).
                        let Ok(text) = bytestring::ByteString::try_from(t) else {
                            queued.fetch_sub(len, Ordering::Relaxed);
                            return Ok(());
                        };
                        let sent = session.text(text).await;
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
        let me = ctx.address();
        WsClient {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            repo,
            viewer: Arc::new(SocketViewer::new(
                out,
                me.clone().recipient(),
                me.recipient(),
            )),
            last_seen: Instant::now(),
            settings,
            abort: Some(abort),
            received: metrics::counter!("gitvista_ws_messages_received_total"),
            oversize,
            _held: held,
            access,
            seen,
        }
    });
    Ok(response)
}

/// A socket for a hosted repository that is still cloning: `status` messages (state, progress
/// text and percent, error) as they change, until it is ready or its history is served from the
/// remote while the clone runs (then `resync`: reconnect for the graph) or failed, then a
/// normal close. Every socket of one repository watches one feed
/// ([`gitvista_hosting::hosted::Hosted::progress_feed`]); the socket keeps reading the browser (a close or
/// silence past the heartbeat timeout ends it at once) and pings like a viewer's.
async fn clone_progress(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    id: String,
    held: Option<crate::client::Held>,
) -> Result<HttpResponse, actix_web::Error> {
    use futures_util::StreamExt;
    let Some(hosted) = state.hosted.clone() else {
        return Err(ApiError::UnknownRepo(id).into());
    };
    let (body, oversize) = limit_frames(req, body).await?;
    let (response, mut session, stream) = actix_ws::handle(req, body)?;
    let mut stream = stream.max_frame_size(MAX_FRAME);
    let mut feed = hosted.progress_feed(&id);
    let settings = state.ws;
    let limit = hosted.config.clone_timeout + Duration::from_secs(60);
    actix_web::rt::spawn(async move {
        let _held = held;
        let deadline = actix_web::rt::time::sleep(limit);
        tokio::pin!(deadline);
        let mut heartbeat = actix_web::rt::time::interval(settings.heartbeat);
        let mut last_seen = Instant::now();
        let mut reason: Option<CloseReason> = Some(CloseCode::Normal.into());
        // The current value first, then every change.
        feed.mark_changed();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Ping(b))) => {
                        last_seen = Instant::now();
                        if session.pong(&b).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Err(e)) => {
                        if matches!(e, ProtocolError::Overflow) || oversize.load(Ordering::Relaxed) {
                            reason = Some(CloseReason {
                                code: CloseCode::Size,
                                description: Some(format!("frames and messages are limited to {MAX_FRAME} bytes")),
                            });
                            break;
                        }
                        return;
                    }
                    Some(Ok(_)) => last_seen = Instant::now(),
                },
                changed = feed.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let Some(status) = feed.borrow_and_update().clone() else {
                        continue;
                    };
                    if session.text(status.text.clone()).await.is_err() {
                        return;
                    }
                    match status.state.as_str() {
                        "ready" => {
                            let _ = session.text(r#"{"type":"resync","reason":"ready"}"#).await;
                            break;
                        }
                        "error" | "gone" => break,
                        // Shown from the remote while the clone runs: the page connects again
                        // as a viewer, for each growth of the history as it comes.
                        _ if status.served => {
                            let _ = session.text(r#"{"type":"resync","reason":"served"}"#).await;
                            break;
                        }
                        _ => {}
                    }
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > settings.client_timeout {
                        return;
                    }
                    if session.ping(b"").await.is_err() {
                        return;
                    }
                }
                () = &mut deadline => break,
            }
        }
        let _ = actix_web::rt::time::timeout(settings.client_timeout, session.close(reason)).await;
    });
    Ok(response)
}
