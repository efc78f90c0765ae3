//! gitcore's integration tests: real repositories built by `git` (fixtures/*.sh), with `git`
//! itself as the oracle for every answer.

mod analytics;
mod blame;
mod common;
mod config;
mod corrupt;
mod diff;
mod discover;
mod format;
mod graph;
mod layout;
mod mailmap;
mod newest;
mod objects;
mod refs;
mod reftable;
mod reload;
mod search;
mod stream;
mod upstream;
mod worktree;
