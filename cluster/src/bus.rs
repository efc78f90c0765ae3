//! Viewer events across nodes, on Redis/Valkey pub/sub (`repo:{id}:events`).
//!
//! - **Owners publish**: every event a worker's session sends its (local) viewers is published
//!   with the repository's epoch and a per-repository sequence number, in order, from one task.
//! - **Web nodes subscribe** to a repository's channel while one of their sessions has viewers,
//!   and relay what arrives to that session, which hands it to its WebSocket clients as usual.
//! - **Pub/sub is at-most-once**: a web node that sees a gap in the sequence, a new epoch (the
//!   repository moved), or whose connection dropped and came back (the `redis` crate's RESP3
//!   `ConnectionManager` resubscribes by itself) tells the affected viewers to `resync`: they
//!   fetch their windows again from the owner. Nothing else is needed for correctness, since
//!   the graph itself is on the owner.
//! - **Announcements** without a sequence: `moving` (the owner died; sent by whichever node
//!   re-placed the repository), `ready` (a new owner serves it: viewers resync), `access` (who
//!   may read it changed: every viewer's access is checked again).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use gitvista_actors::RepoId;
use gitvista_actors::events::{Interest, Published, Relay, ViewerEvent};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use serde::{Deserialize, Serialize};

/// The channel on which nodes tell each other to forget a revoked session or a changed user.
pub const REVOKED: &str = "sessions:revoked";

/// What a node does with a revocation another node sent.
pub type OnRevoked = Arc<dyn Fn(&str) + Send + Sync>;

/// Events waiting to be published before new ones are dropped (viewers resync on the gap).
const OUTBOX: usize = 10_000;

/// The channel of repository `id`.
pub fn channel(id: &str) -> String {
    format!("repo:{id}:events")
}

/// The repository a channel name is about.
fn channel_repo(name: &str) -> Option<&str> {
    name.strip_prefix("repo:")?.strip_suffix(":events")
}

/// What goes over a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    /// The owner's epoch (events and `ready`).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// The sequence number within the epoch (events only), from 1.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The WebSocket message (events).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The owner's snapshot version after the event (deltas).
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// An announcement: `moving`, `ready` or `access`.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An announcement about a repository to every web node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Its owner died; another worker will clone it.
    Moving,
    /// It is served (again) by its owner under `epoch`.
    Ready(i64),
    /// Who may read it changed.
    Access,
}

/// Sends an announcement.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Announce(pub RepoId, pub Announcement);

/// Something the Redis connection pushed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Push(PushInfo);

/// One web-node subscription.
#[derive(Debug)]
struct Sub {
    session: Recipient<Relay>,
    /// The last (epoch, seq) relayed.
    last: Option<(i64, u64)>,
    /// The connection dropped since: resync once the subscription is confirmed again.
    stale: bool,
    /// Redis confirmed the subscription. Until then what the owner publishes reaches nobody
    /// here, so the viewers that asked for it (their summary read before) resync then.
    confirmed: bool,
}

/// The fan-out of one node.
pub struct Bus {
    conn: ConnectionManager,
    /// Owner side: the epochs of the repositories this node owns.
    fences: Arc<super::Fences>,
    /// Owner side: the last sequence number published per repository.
    seqs: HashMap<RepoId, u64>,
    /// Owner side: to the publishing task, in order.
    outbox: tokio::sync::mpsc::Sender<(String, String)>,
    outbox_rx: Option<tokio::sync::mpsc::Receiver<(String, String)>>,
    /// Web side: subscriptions by repository id.
    subs: HashMap<String, Sub>,
    /// Told what other nodes revoked (`s:<session>` or `u:<user>`).
    on_revoked: Option<OnRevoked>,
    pushes: Option<tokio::sync::mpsc::UnboundedReceiver<PushInfo>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subs", &self.subs.len())
            .field("seqs", &self.seqs.len())
            .finish()
    }
}

/// `url` with RESP3 asked for (pushes and resubscription need it).
fn resp3(url: &str) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("GITVISTA_REDIS_URL: {e}"))?;
    if !u.query_pairs().any(|(k, _)| k == "protocol") {
        u.query_pairs_mut().append_pair("protocol", "resp3");
    }
    Ok(u.to_string())
}

impl Bus {
    /// A fan-out on the Redis/Valkey at `url` (connected on first use, and again after every
    /// loss), publishing with the epochs in `fences`.
    pub fn new(url: &str, fences: Arc<super::Fences>) -> Result<Bus, String> {
        let client = redis::Client::open(resp3(url)?).map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(tx)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_max_delay(std::time::Duration::from_secs(2));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?;
        let (outbox, outbox_rx) = tokio::sync::mpsc::channel(OUTBOX);
        Ok(Bus {
            conn,
            fences,
            seqs: HashMap::new(),
            outbox,
            outbox_rx: Some(outbox_rx),
            subs: HashMap::new(),
            on_revoked: None,
            pushes: Some(rx),
        })
    }

    /// With `on_revoked`, the bus listens for revocations other nodes send (and sends this
    /// node's with [`Revoke`]).
    pub fn with_revocations(mut self, on_revoked: OnRevoked) -> Bus {
        self.on_revoked = Some(on_revoked);
        self
    }

    /// Hands `wire` to the publishing task; a full outbox drops it (the gap makes viewers
    /// resync).
    fn publish(&self, id: &str, wire: &Wire) {
        let Ok(text) = serde_json::to_string(wire) else {
            return;
        };
        if self.outbox.try_send((channel(id), text)).is_err() {
            metrics::counter!("gitvista_bus_publish_errors_total", "reason" => "outbox_full")
                .increment(1);
        }
    }

    /// Tells the viewers of subscription `id` to fetch their windows again.
    fn resync(sub: &Sub, reason: &str) {
        metrics::counter!("gitvista_bus_resyncs_total", "reason" => reason.to_string())
            .increment(1);
        let text = serde_json::json!({"type": "resync", "reason": reason}).to_string();
        let _ = sub
            .session
            .try_send(Relay::event(ViewerEvent::Encoded(Bytes::from(text))));
    }

    /// A message on a repository's channel, for this node's viewers of it.
    fn receive(&mut self, id: &str, wire: Wire) {
        let Some(sub) = self.subs.get_mut(id) else {
            return;
        };
        metrics::counter!("gitvista_bus_received_total").increment(1);
        match (wire.kind.as_deref(), wire.epoch, wire.seq) {
            (Some("access"), _, _) => {
                let _ = sub
                    .session
                    .try_send(Relay::event(ViewerEvent::AccessChanged));
            }
            (Some("moving"), _, _) => {
                sub.last = None;
                let text = serde_json::json!({"type": "status", "state": "moving"}).to_string();
                let _ = sub
                    .session
                    .try_send(Relay::event(ViewerEvent::Encoded(Bytes::from(text))));
            }
            (Some("ready"), Some(epoch), _) => {
                sub.last = Some((epoch, 0));
                Bus::resync(sub, "moved");
                let text = serde_json::json!({"type": "status", "state": "ready"}).to_string();
                let _ = sub
                    .session
                    .try_send(Relay::event(ViewerEvent::Encoded(Bytes::from(text))));
            }
            (None, Some(epoch), Some(seq)) => {
                let in_order = match sub.last {
                    None => true,
                    Some((e, s)) => e == epoch && seq == s + 1,
                };
                sub.last = Some((epoch, seq));
                if !in_order {
                    Bus::resync(sub, "gap");
                } else if let Some(text) = wire.text {
                    let _ = sub.session.try_send(Relay {
                        event: ViewerEvent::Encoded(Bytes::from(text)),
                        version: wire.version,
                    });
                }
            }
            _ => {}
        }
    }
}

impl Actor for Bus {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Pushes from Redis (messages, subscription confirmations, disconnections) come to the
        // actor in order.
        if let Some(mut pushes) = self.pushes.take() {
            let me = ctx.address();
            actix::spawn(async move {
                while let Some(p) = pushes.recv().await {
                    if me.try_send(Push(p)).is_err() && !me.connected() {
                        return;
                    }
                }
            });
        }
        if self.on_revoked.is_some() {
            let mut conn = self.conn.clone();
            actix::spawn(async move {
                if let Err(e) = conn.subscribe(REVOKED).await {
                    tracing::warn!(error = %e, "could not listen for revoked sessions");
                }
            });
        }
        // One task publishes, so the channel keeps the order the session sent.
        if let Some(mut rx) = self.outbox_rx.take() {
            let mut conn = self.conn.clone();
            actix::spawn(async move {
                while let Some((channel, text)) = rx.recv().await {
                    match conn.publish::<_, _, usize>(&channel, &text).await {
                        Ok(_) => metrics::counter!("gitvista_bus_published_total").increment(1),
                        Err(e) => {
                            metrics::counter!("gitvista_bus_publish_errors_total", "reason" => "redis")
                                .increment(1);
                            tracing::warn!(error = %e, "could not publish a viewer event");
                        }
                    }
                }
            });
        }
    }
}

impl Handler<Published> for Bus {
    type Result = ();

    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        let text = match &msg.event {
            ViewerEvent::AccessChanged => {
                self.publish(
                    msg.id.as_str(),
                    &Wire {
                        epoch: None,
                        seq: None,
                        text: None,
                        version: None,
                        kind: Some("access".into()),
                    },
                );
                return;
            }
            other => match gitvista_actors::events::event_message(other)
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
            {
                Some(t) => t,
                None => return,
            },
        };
        // Only the owner publishes, under its current epoch.
        let Some(fence) = self.fences.get(msg.id.as_str()) else {
            return;
        };
        let seq = self.seqs.entry(msg.id.clone()).or_insert(0);
        *seq += 1;
        let wire = Wire {
            epoch: Some(fence.epoch),
            seq: Some(*seq),
            text: Some(text),
            version: match &msg.event {
                ViewerEvent::Delta(d) => Some(d.version),
                _ => None,
            },
            kind: None,
        };
        self.publish(msg.id.as_str(), &wire);
    }
}

/// Tells the other nodes to forget a revoked session (`s:<id>`) or a changed user (`u:<id>`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Revoke(pub String);

impl Handler<Revoke> for Bus {
    type Result = ();

    fn handle(&mut self, Revoke(what): Revoke, _: &mut Context<Self>) {
        if self.outbox.try_send((REVOKED.to_string(), what)).is_err() {
            metrics::counter!("gitvista_bus_publish_errors_total", "reason" => "outbox_full")
                .increment(1);
        }
    }
}

impl Handler<Announce> for Bus {
    type Result = ();

    fn handle(&mut self, Announce(id, what): Announce, _: &mut Context<Self>) {
        let (kind, epoch) = match what {
            Announcement::Moving => ("moving", None),
            Announcement::Ready(epoch) => {
                // A new owner (or a new life of this one) numbers from 1 again.
                self.seqs.remove(&id);
                ("ready", Some(epoch))
            }
            Announcement::Access => ("access", None),
        };
        self.publish(
            id.as_str(),
            &Wire {
                epoch,
                seq: None,
                text: None,
                version: None,
                kind: Some(kind.into()),
            },
        );
    }
}

impl Handler<Interest> for Bus {
    type Result = ();

    fn handle(&mut self, msg: Interest, ctx: &mut Context<Self>) {
        let mut conn = self.conn.clone();
        match msg {
            Interest::Watch { id, session } => {
                let key = id.as_str().to_string();
                let new = !self.subs.contains_key(&key);
                match self.subs.get_mut(&key) {
                    Some(sub) => sub.session = session,
                    None => {
                        self.subs.insert(
                            key.clone(),
                            Sub {
                                session,
                                last: None,
                                stale: false,
                                confirmed: false,
                            },
                        );
                    }
                }
                if new {
                    metrics::gauge!("gitvista_bus_subscriptions").increment(1.0);
                    ctx.spawn(
                        actix::fut::wrap_future::<_, Self>(async move {
                            conn.subscribe(channel(&key)).await
                        })
                        .map(|r, _, _| {
                            if let Err(e) = r {
                                tracing::warn!(error = %e, "could not subscribe to a repository's events");
                            }
                        }),
                    );
                }
            }
            Interest::Unwatch { id } => {
                if self.subs.remove(id.as_str()).is_some() {
                    metrics::gauge!("gitvista_bus_subscriptions").decrement(1.0);
                    let name = channel(id.as_str());
                    actix::spawn(async move {
                        let _ = conn.unsubscribe(name).await;
                    });
                }
            }
        }
    }
}

/// A bulk string as text.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

impl Handler<Push> for Bus {
    type Result = ();

    fn handle(&mut self, Push(info): Push, _: &mut Context<Self>) {
        match info.kind {
            PushKind::Message => {
                let (Some(name), Some(payload)) = (
                    info.data.first().and_then(text),
                    info.data.get(1).and_then(text),
                ) else {
                    return;
                };
                if name == REVOKED {
                    if let Some(forget) = &self.on_revoked {
                        forget(&payload);
                    }
                    return;
                }
                let Some(id) = channel_repo(&name) else {
                    return;
                };
                match serde_json::from_str::<Wire>(&payload) {
                    Ok(wire) => {
                        let id = id.to_string();
                        self.receive(&id, wire);
                    }
                    Err(_) => {
                        tracing::warn!(channel = %name, "an unreadable message on a repository channel")
                    }
                }
            }
            PushKind::Disconnection => {
                tracing::warn!(
                    subscriptions = self.subs.len(),
                    "lost the Redis connection; viewers resync once it is back"
                );
                metrics::counter!("gitvista_bus_disconnections_total").increment(1);
                for sub in self.subs.values_mut() {
                    sub.stale = true;
                }
            }
            PushKind::Subscribe => {
                // Confirmed again after a reconnection: what was published meanwhile is lost.
                let Some(id) = info.data.first().and_then(text) else {
                    return;
                };
                let Some(sub) = channel_repo(&id).and_then(|id| self.subs.get_mut(id)) else {
                    return;
                };
                if !std::mem::replace(&mut sub.confirmed, true) {
                    sub.stale = false;
                    Bus::resync(sub, "subscribed");
                } else if std::mem::take(&mut sub.stale) {
                    sub.last = None;
                    Bus::resync(sub, "reconnected");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_is_compact_and_round_trips() {
        let w = Wire {
            epoch: Some(3),
            seq: Some(9),
            text: Some(r#"{"type":"delta"}"#.into()),
            version: Some(4),
            kind: None,
        };
        let s = serde_json::to_string(&w).expect("json");
        assert_eq!(s, r#"{"e":3,"s":9,"t":"{\"type\":\"delta\"}","v":4}"#);
        assert_eq!(serde_json::from_str::<Wire>(&s).expect("back"), w);
        assert_eq!(channel("00000000000000ab"), "repo:00000000000000ab:events");
        assert_eq!(
            channel_repo("repo:00000000000000ab:events"),
            Some("00000000000000ab")
        );
        assert_eq!(channel_repo("other"), None);
        assert_eq!(
            resp3("redis://127.0.0.1:6379").expect("url"),
            "redis://127.0.0.1:6379?protocol=resp3"
        );
    }
}
