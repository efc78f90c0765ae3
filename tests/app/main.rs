//! Integration tests of the `gitvista` binary and server.

mod log_command;
