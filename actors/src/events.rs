//! What viewers receive from a [`crate::RepoSession`].

use std::sync::{Arc, OnceLock};

use actix::Message;
use bytes::Bytes;
use gitcore::graph::{GraphDelta, RefChange};
use gitcore::refs::Head;
use serde::Serialize;

/// A ref change as viewers see it (hex ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum RefChangeEvent {
    /// A new ref.
    Created {
        /// Ref name.
        name: String,
        /// Commit it points at.
        to: String,
    },
    /// A ref that moved.
    Moved {
        /// Ref name.
        name: String,
        /// Previous commit.
        from: String,
        /// New commit.
        to: String,
    },
    /// A deleted ref.
    Deleted {
        /// Ref name.
        name: String,
        /// Commit it pointed at.
        from: String,
    },
}

/// HEAD as viewers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadEvent {
    /// The branch HEAD is on (full ref name), if any.
    pub branch: Option<String>,
    /// The commit HEAD points at, if any.
    pub commit: Option<String>,
}

impl HeadEvent {
    /// From gitcore's HEAD.
    pub fn from_head(head: Option<&Head>) -> HeadEvent {
        HeadEvent {
            branch: head.and_then(|h| h.branch()).map(str::to_string),
            commit: head.and_then(Head::target).map(|t| t.to_hex()),
        }
    }
}

/// One reload's changes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaEvent {
    /// Snapshot version after the change.
    pub version: u64,
    /// New commits, newest first.
    pub added: Vec<String>,
    /// Commits no longer reachable.
    pub removed: Vec<String>,
    /// Ref changes by name.
    pub refs: Vec<RefChangeEvent>,
    /// HEAD after the change, when it changed.
    pub head: Option<HeadEvent>,
    /// Rows moved for another reason than commits added on top: re-fetch windows.
    pub rewritten: bool,
    /// Number of rows after the change.
    pub rows: usize,
    /// The server's clock when the change was found, in milliseconds since the Unix epoch (a
    /// viewer on the same clock can tell how long the delta took to reach it).
    pub time: u64,
    /// The `{"type":"delta",...}` envelope, encoded once and shared by every viewer's socket.
    #[serde(skip)]
    encoded: OnceLock<Bytes>,
}

impl DeltaEvent {
    /// From gitcore's delta.
    pub fn new(version: u64, delta: &GraphDelta, rows: usize) -> DeltaEvent {
        let hex = |ids: &[gitcore::ObjectId]| ids.iter().map(|i| i.to_hex()).collect();
        DeltaEvent {
            version,
            added: hex(&delta.added),
            removed: hex(&delta.removed),
            refs: delta
                .refs
                .iter()
                .map(|c| match c {
                    RefChange::Created { name, to } => RefChangeEvent::Created {
                        name: name.clone(),
                        to: to.to_hex(),
                    },
                    RefChange::Moved { name, from, to } => RefChangeEvent::Moved {
                        name: name.clone(),
                        from: from.to_hex(),
                        to: to.to_hex(),
                    },
                    RefChange::Deleted { name, from } => RefChangeEvent::Deleted {
                        name: name.clone(),
                        from: from.to_hex(),
                    },
                })
                .collect(),
            head: delta
                .head
                .as_ref()
                .map(|(_, after)| HeadEvent::from_head(after.as_ref())),
            rewritten: delta.rewritten,
            rows,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            encoded: OnceLock::new(),
        }
    }

    /// The WebSocket message for this delta, `{"type":"delta", ...fields}`; encoded by the first
    /// viewer that needs it and shared by the others.
    pub fn json(&self) -> &str {
        // Encoded from a `String`: always UTF-8.
        std::str::from_utf8(self.message()).unwrap_or_default()
    }

    /// [`DeltaEvent::json`] as bytes every socket shares (a clone is a reference count).
    pub fn message(&self) -> &Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(envelope("delta", self)))
    }
}

/// `{"type": kind, ...fields of value}`: the envelope of every WebSocket message.
pub fn envelope(kind: &str, value: &impl Serialize) -> String {
    let mut v = serde_json::to_value(value).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("type".into(), kind.into());
    }
    v.to_string()
}

/// The WebSocket message of a viewer event that is one (not a control such as a close or an
/// access check): what the local socket and the cluster's bus send alike. Deltas and relayed
/// messages are shared as they are; other events are encoded here.
pub fn event_message(event: &ViewerEvent) -> Option<Bytes> {
    let text = match event {
        ViewerEvent::Delta(d) => return Some(d.message().clone()),
        ViewerEvent::Encoded(b) => return Some(b.clone()),
        ViewerEvent::ReloadFailed(e) => serde_json::json!({
            "type": "error",
            "error": e.as_str(),
            "code": "reload_failed",
        })
        .to_string(),
        ViewerEvent::Status(s) => envelope("status", &work_status_json(s)),
        ViewerEvent::Head(h) => envelope("head", &**h),
        ViewerEvent::Remote(r) => envelope("status", &**r),
        ViewerEvent::Behind(version) => serde_json::json!({
            "type": "resync",
            "reason": "changed",
            "version": version,
        })
        .to_string(),
        ViewerEvent::AccessChanged | ViewerEvent::Closing => return None,
    };
    Some(Bytes::from(text))
}

/// A work tree's status as JSON: porcelain columns per path plus counts.
pub fn work_status_json(s: &gitcore::worktree::WorkStatus) -> serde_json::Value {
    let count = |f: &dyn Fn(char, char) -> bool| {
        s.entries.iter().filter(|e| f(e.index, e.worktree)).count()
    };
    let conflict =
        |x: char, y: char| x == 'U' || y == 'U' || (x == 'A' && y == 'A') || (x == 'D' && y == 'D');
    serde_json::json!({
        "entries": s.entries.iter().map(|e| serde_json::json!({
            "path": e.path,
            "index": e.index.to_string(),
            "worktree": e.worktree.to_string(),
        })).collect::<Vec<_>>(),
        "staged": count(&|x, y| !conflict(x, y) && x != ' ' && x != '?'),
        "unstaged": count(&|x, y| !conflict(x, y) && y != ' ' && y != '?'),
        "untracked": count(&|x, _| x == '?'),
        "conflicted": count(&|x, y| conflict(x, y)),
        "truncated": s.truncated,
    })
}

/// A message to a viewer. Shared (`Arc`) so a broadcast to thousands of viewers clones nothing.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum ViewerEvent {
    /// The repository changed.
    Delta(Arc<DeltaEvent>),
    /// The session could not reload; the previous snapshot is still served.
    ReloadFailed(Arc<String>),
    /// The work tree's status changed (local mode); also sent to each new viewer.
    Status(Arc<gitcore::worktree::WorkStatus>),
    /// HEAD is on another branch, or detached and moved (sent after the delta that records it;
    /// a delta's own `head` field covers the branch HEAD is on advancing).
    Head(Arc<HeadEvent>),
    /// The server is shutting down: close the connection ("going away").
    Closing,
    /// Hosted mode: the repository's fetch state changed.
    Remote(Arc<RemoteState>),
    /// Who may read the repository changed: each viewer's access is checked again now.
    AccessChanged,
    /// A message already encoded for the WebSocket (relayed from another node): UTF-8 JSON.
    Encoded(Bytes),
    /// The history is at this version, past the one the viewer was told of when it subscribed:
    /// it reads the repository again (`resync`), as after a reconnect.
    Behind(u64),
}

/// An event a repository's owner sends its viewers, handed to the cluster's fan-out as well
/// (viewers on other nodes get it from there).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Published {
    /// The repository.
    pub id: crate::RepoId,
    /// What its local viewers got.
    pub event: ViewerEvent,
}

/// A session fed by another node (a web node's): its first viewer arrived (watch its events
/// from now on, handing them to `session`) or its last left.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Interest {
    /// Start relaying the repository's events to `session`.
    Watch {
        /// The repository.
        id: crate::RepoId,
        /// Where its events go.
        session: actix::Recipient<Relay>,
    },
    /// Stop.
    Unwatch {
        /// The repository.
        id: crate::RepoId,
    },
}

/// An event from the repository's owner, for a remote session's viewers.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Relay {
    /// The event.
    pub event: ViewerEvent,
    /// The owner's snapshot version after it, for a delta: a viewer subscribing later whose
    /// summary named another version is told to read again.
    pub version: Option<u64>,
}

impl Relay {
    /// An event that moves no version (an announcement, a status).
    pub fn event(event: ViewerEvent) -> Relay {
        Relay {
            event,
            version: None,
        }
    }
}

/// How a session takes part in a cluster.
#[derive(Debug, Clone)]
pub enum ClusterLink {
    /// It serves the repository from this node's disk: its viewer events are published too.
    Owner {
        /// The repository.
        id: crate::RepoId,
        /// The fan-out.
        publish: actix::Recipient<Published>,
    },
    /// Another node serves it: no snapshot here; its viewers' events come from the fan-out.
    Remote {
        /// The repository.
        id: crate::RepoId,
        /// Told when the first viewer arrives and the last leaves.
        interest: actix::Recipient<Interest>,
    },
}

/// Where a hosted repository's fetching stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteState {
    /// `fetching`, `cloning` (shown from the remote while the clone runs) or `ready`.
    pub state: &'static str,
    /// Why the last fetch failed, if it did.
    pub error: Option<String>,
    /// Fetches that failed in a row.
    pub failures: u32,
    /// What the clone holds: `commits`, `trees` or `complete` (what is missing is fetched
    /// when a request needs it, and by the hydration in the background).
    pub contents: &'static str,
    /// Percent of the hydration that runs now, if one does.
    pub hydrating: Option<u8>,
}
