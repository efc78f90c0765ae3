//! Integration tests of the `gitvista` binary and server.

mod accounts;
mod admin;
mod api;
mod attacks;
mod billing;
mod cluster;
mod deploy;
mod first_run;
mod forges;
mod helpers;
mod hints;
mod hosted;
mod loadtest;
mod log_command;
mod logs;
mod metrics;
mod money;
mod partial;
mod privacy;
mod signin;
mod store;
mod streaming;
mod teams;
mod tiers;
mod webhooks;
mod ws;
