//! Integration tests of the `gitvista` binary and server.

mod api;
mod helpers;
mod log_command;
mod store;
mod ws;
