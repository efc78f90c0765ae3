//! Actor tests against real repositories changed by `git` while sessions watch them, and real
//! clones from a `git daemon` on loopback.

mod clone_queue;
mod common;
mod first_screen;
mod session;
mod watching;
