//! GitVista's web layer, the top floor: every HTTP handler and middleware, the server's wiring
//! and what only a web server needs. Nothing imports it but the `gitvista` binary.
//!
//! Modules, bottom up:
//!
//! - [`config`] (the validated settings of `gitvista open` and `gitvista serve`), [`telemetry`]
//!   (logs), [`metrics`] (the Prometheus recorder and process gauges);
//! - [`client`] (who a request's client is: the peer, or a trusted proxy's header),
//!   [`guard`] (host and origin checks), [`proxy_hint`] (the warning, once, for an https server
//!   behind a proxy it does not trust), [`encoding`] (whole-body compression of the hot JSON
//!   routes), [`highlight`] (server-side syntax highlighting), [`forge`] (links from commit
//!   messages to the forge a repository lives on);
//! - [`routes`]: the route table and every handler: the request path (one middleware,
//!   `routes::admission`: the repository id parsed once from the decoded path, who may see it,
//!   where it lives), pages, the graph, objects, search, the work tree, the WebSocket, hosted
//!   repositories, accounts, teams, billing (and the Stripe receiver), the forges' webhook
//!   receivers, admin and metrics;
//! - [`startup`]: the server wired from the settings, in the order the middleware runs.
//!
//! It stands on every floor below: hosting, the cluster, accounts, the store, the actors and
//! `gitcore`, and answers their `ApiError`s as JSON.

pub mod client;
pub mod config;
pub mod encoding;
pub mod forge;
pub mod guard;
pub mod highlight;
pub mod metrics;
pub mod proxy_hint;
pub mod routes;
pub mod startup;
pub mod telemetry;
