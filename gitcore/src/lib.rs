//! gitcore: GitVista's pure-Rust reader of git repositories.
//!
//! The pieces, bottom up:
//! - [`oid::ObjectId`] names objects, by SHA-1 or SHA-256 ([`oid::HashKind`]: every reader is
//!   given the repository's); [`inflate::Inflater`] inflates zlib with a hard size bound.
//! - [`odb::Odb`] finds objects in loose files, packs (`.idx` v1/v2, multi-pack-index) and
//!   alternates; an [`odb::OdbReader`] per thread reads them, resolving delta chains through a
//!   bounded delta-base cache.
//! - [`object`] parses commits, tags and trees byte-exactly and tolerantly.
//! - [`discover::GitDir`] finds a repository (work tree, `.git` file, linked worktree, bare);
//!   [`repo::Repository`] is one with its object database; [`config`] reads its config file;
//!   [`format`] answers the object format, refuses by name a repository format or extension it
//!   cannot read, and says where its refs are kept.
//! - [`chunked`]: an append-only vector shared in chunks, so snapshots of a growing layout
//!   share all but their last chunk.
//! - [`refs::RefSnapshot`] reads loose and packed refs or a reftable stack ([`refs::reftable`]),
//!   symbolic refs, HEAD, the stash reflog and the `shallow` file.
//! - [`graph::CommitGraph`] holds every reachable commit compactly in topological order.
//! - [`layout::Layout`] assigns lanes for drawing and answers windows of rows in O(window).
//! - [`search`] answers history queries; [`worktree`] reads the index and computes status.
//! - [`diff`] compares trees (with renames) and blobs (unified hunks); [`blame`] finds the
//!   commit that last touched each line as `git blame` does (every parent or first parents,
//!   ignored revisions looked through).
//! - [`mailmap`] maps people to their canonical names and emails as `git log` does.
//!
//! gitcore is synchronous, never runs `git`, never fetches, and never panics on bad input: every
//! failure is a typed error naming the file (and offset, where there is one).

#![deny(missing_docs)]

pub mod analytics;
pub mod blame;
pub mod chunked;
pub mod config;
pub mod diff;
pub mod discover;
pub mod format;
pub mod graph;
pub mod inflate;
pub mod layout;
pub mod mailmap;
mod mmap;
pub mod object;
pub mod odb;
pub mod oid;
pub mod refs;
pub mod repo;
pub mod search;
pub mod upstream;
pub mod worktree;

pub use oid::ObjectId;
