//! GitVista: a live, interactive Git commit graph in the browser.
//!
//! The root package holds the command line (`main.rs` dispatches to [`cli`]), the validated
//! [`config::Config`], the server's startup ([`startup::Application`]), its HTTP [`routes`] and
//! the one error type they answer with ([`error::ApiError`]). Reading repositories is `gitcore`'s
//! job; keeping them loaded and live is `gitvista-actors`'.

pub mod auth;
pub mod billing;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod encoding;
pub mod error;
pub mod forge;
pub mod guard;
pub mod highlight;
pub mod hosted;
pub mod loadtest;
pub mod metrics;
pub mod remote;
pub mod routes;
pub mod startup;
pub mod store;
pub mod streaming;
pub mod telemetry;
pub mod webhooks;
