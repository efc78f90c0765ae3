//! Command implementations behind the thin dispatcher in `main.rs`.

pub mod loadtest;
pub mod log;
pub mod open;
pub mod serve;
