//! GitVista: a live, interactive Git commit graph in the browser.
//!
//! The root package holds the command line (see `main.rs`) and, as the server grows, the HTTP and
//! WebSocket glue, the metadata store and auth. Reading repositories is `gitcore`'s job.

pub mod cli;
