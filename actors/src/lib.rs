//! GitVista's actor system.
//!
//! - [`supervisor::Supervisor`] maps repository ids to [`repo_session::RepoSession`] addresses,
//!   starting sessions on first use and restarting ones that died.
//! - [`repo_session::RepoSession`] owns one repository: the loaded [`snapshot::Snapshot`] (shared
//!   with request handlers as an `Arc` and replaced whole on reload), its refresh sources (a
//!   filesystem watcher plus a polling fallback in local mode) and the viewers it broadcasts
//!   [`events::ViewerEvent`]s to, and the byte-bounded [`cache::SessionCaches`] of diffs and
//!   blames. Loading and reloading run on the blocking pool, never on the
//!   actor's thread.
//!
//! - [`budget::Budget`] bounds the sessions of a process (count and memory); the supervisor
//!   stops idle sessions to stay within it and refuses new ones when every session has viewers.
//! - [`clone_queue::CloneQueue`] is the only place `git` runs (hosted mode): bounded, hardened,
//!   one job per repository, with timeouts and a disk cap.
//! - [`freshen::Freshener`] fetches on demand (webhooks, start-up), coalescing per repository;
//!   [`pace`] says how often a session may fetch ([`pace::Pace`], decided above) and when a
//!   repository's webhook last delivered ([`pace::HookClock`]).
//! - [`eviction::EvictionActor`] stops idle sessions and deletes clones over the disk quota,
//!   least recently used first, keeping the ones being watched.
//! - Sessions may start from a history streamed from the remote before the clone lands (the
//!   first view), and hydrate a commits-only clone's file contents in the background.
//! - [`cache`], [`events`], [`viewer`], [`ids`] and [`snapshot`]: the byte-bounded caches, what
//!   viewers are sent (and its WebSocket message, encoded once per broadcast), a viewer as a
//!   session holds it (a [`viewer::ViewerSink`] events are handed to without waiting: a socket's
//!   queue, or an actor's mailbox), repository ids, and the loaded repository shared with
//!   handlers.
//!
//! Modules, bottom up: `ids`, `snapshot`, `cache`, `events`, `viewer`, `pace`, `budget`, `clone_queue`
//! (jobs, the queue, the git runner), `repo_session` (fetching, loading, viewers, watching),
//! `supervisor`, `freshen`, `eviction`.
//!
//! This crate stands on `gitcore` only and knows nothing of HTTP, storage or plans: hosting
//! adds how often each repository is fetched (a [`pace::PaceRule`]), the web layer routes and
//! WebSockets.

pub mod budget;
pub mod cache;
pub mod clone_queue;
pub mod events;
pub mod eviction;
pub mod freshen;
pub mod ids;
pub mod pace;
pub mod repo_session;
pub mod snapshot;
pub mod supervisor;
pub mod viewer;

pub use cache::{ByteCache, SessionCaches};
pub use events::{DeltaEvent, RefChangeEvent, ViewerEvent};
pub use ids::RepoId;
pub use repo_session::{RepoSession, SessionConfig, SessionError};
pub use snapshot::Snapshot;
pub use supervisor::Supervisor;
pub use viewer::{Delivery, Viewer, ViewerSink};
