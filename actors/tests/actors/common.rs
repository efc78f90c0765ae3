//! Helpers shared by the actor tests (from gitvista-testkit).

pub use gitvista_testkit::{fixture, git};
