//! WebSockets: one [`WsClient`] actor per connection, built on actix-ws.
//!
//! The client actor subscribes to its repository's `RepoSession`, turns each event into a JSON
//! envelope (`{"type": "summary" | "delta" | "status" | "head" | "resync" | "error", ...}`) and hands it to a writer
//! task through a bounded queue. The session never waits for a browser: when a viewer's queue is
//! full its events are dropped and it is told to `resync` (re-fetch its windows) as soon as there
//! is room; a viewer still full after that is disconnected. Heartbeats drop browsers that stopped
//! answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use gitvista_actors::repo_session::{RepoSession, Subscribe, Unsubscribe};
use gitvista_actors::{Snapshot, ViewerEvent};
use tokio::sync::{mpsc, oneshot};

use crate::config::WsSettings;
use crate::metrics::register_queue;
use crate::routes::repo_param::RepoParam;
use crate::routes::{AppState, session, snapshot};
use gitvista_errors::ApiError;

/// An event larger than this is not sent: the viewer is told to `resync` (re-fetch its windows)
/// instead, which bounds what one connection can hold in the socket's frame channel.
const MAX_EVENT: usize = 256 * 1024;
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
    /// Set by [`FrameLimit`] when the browser announced a frame or message over [`MAX_FRAME`].
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
            viewer: ctx.address().recipient(),
            seen: self.seen,
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
        if let Some(watch) = &self.access {
            let every = watch.accounts.access_recheck.max(Duration::from_secs(1));
            ctx.run_interval(every, |act, ctx| act.check_access(ctx));
        }
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
            ViewerEvent::AccessChanged => {
                self.check_access(ctx);
                return;
            }
            ViewerEvent::Closing => {
                self.out.control(Frame::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
                ctx.stop();
                return;
            }
            other => match gitvista_actors::events::event_text(other) {
                Some(text) => text,
                None => return,
            },
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
        let _ = self.out.offer(
            serde_json::json!({"type": "status", "state": "access_lost", "error": why, "code": "access_lost"})
                .to_string(),
        );
        self.out.control(Frame::Close(CloseReason {
            code: CloseCode::Policy,
            description: Some("access lost".into()),
        }));
        ctx.stop();
    }

    /// Closes with 1009 ("message too big"): the browser announced more than it may send.
    fn too_big(&mut self, ctx: &mut Context<Self>) {
        metrics::counter!("gitvista_ws_oversize_total").increment(1);
        self.out.control(Frame::Close(CloseReason {
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
            Ok(Message::Ping(bytes)) => self.out.control(Frame::Pong(bytes)),
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

/// Wraps a WebSocket's inbound bytes so that a frame header, or the running total of a
/// fragmented message, announcing more than [`MAX_FRAME`] ends the stream at once, before its
/// payload is buffered (actix-ws checks the size only once the whole frame is in memory, so a
/// header declaring 2^40 bytes followed by a stream of payload would grow the server without
/// bound). Answers the wrapped payload and the flag set when that happened.
async fn limit_frames(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(web::Payload, Arc<AtomicBool>), actix_web::Error> {
    use actix_web::FromRequest;
    let oversize = Arc::new(AtomicBool::new(false));
    let limited = FrameLimit {
        inner: body,
        scan: FrameScan::default(),
        oversize: Arc::clone(&oversize),
        ended: false,
    };
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
    > = Box::pin(limited);
    let mut payload = actix_web::dev::Payload::Stream { payload: boxed };
    let body = web::Payload::from_request(req, &mut payload).await?;
    Ok((body, oversize))
}

/// Where a scan of client-to-server frames stands (RFC 6455 section 5.2).
#[derive(Debug, Default)]
struct FrameScan {
    /// The current frame header's bytes so far (at most 14).
    header: [u8; 14],
    /// How many of them there are.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
    /// Bytes of the data message being received (its frames so far).
    message: u64,
}

impl FrameScan {
    /// Passes `bytes`; `Err` as soon as a header or a message's total exceeds `max`.
    fn feed(&mut self, mut bytes: &[u8], max: u64) -> Result<(), ()> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = (self.payload_left.min(bytes.len() as u64)) as usize;
                self.payload_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let len7 = self.header[1] & 0x7f;
            let ext = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
            if self.have < 2 + ext + mask {
                continue;
            }
            let len = match ext {
                2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(b)
                }
                _ => u64::from(len7),
            };
            let fin = self.header[0] & 0x80 != 0;
            let opcode = self.header[0] & 0x0f;
            self.have = 0;
            if len > max {
                return Err(());
            }
            if opcode < 8 {
                // Text, binary or a continuation: count the message they build.
                self.message = if opcode == 0 { self.message + len } else { len };
                if self.message > max {
                    return Err(());
                }
                if fin {
                    self.message = 0;
                }
            }
            self.payload_left = len;
        }
        Ok(())
    }
}

/// The stream [`limit_frames`] wraps around a socket's payload.
struct FrameLimit {
    inner: web::Payload,
    scan: FrameScan,
    oversize: Arc<AtomicBool>,
    ended: bool,
}

impl futures_util::Stream for FrameLimit {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.scan.feed(&bytes, MAX_FRAME as u64).is_err() {
                    this.ended = true;
                    this.oversize.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
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
                None => return clone_progress(&req, body, &state, id.into_string(), held).await,
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
    let _ = out.offer(first);
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

#[cfg(test)]
mod tests {
    use super::*;

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
