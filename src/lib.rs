//! GitVista: a live, interactive Git commit graph in the browser.
//!
//! Reading repositories is `gitcore`'s job, reading remotes `gitwire`'s, keeping repositories
//! loaded and live `gitvista-actors`'. This root package holds the rest, floor by floor (bottom
//! up; a module imports from its floor and the ones below):
//!
//! - **Store**: [`store`] (diesel over SQLite or PostgreSQL, migrations under a lock, the job
//!   queue, placement, billing, teams, webhooks, admin sessions).
//! - **Accounts**: [`auth`] (forge providers, the token cipher, sessions, access checks, admin
//!   sign-in, asking a forge whether a URL is still the repository tracked under it),
//!   [`billing`] (Stripe, plans, quotas), [`forge`] (which forge a URL is on).
//! - **Hosting**: [`remote`] (the URL policy), [`streaming`] (the first view streamed from the
//!   remote), [`hosted`] (the clone lifecycle, budgets, eviction), [`webhooks`] (verification,
//!   events, hints confirmed with the forge, registration), [`client`] (budgets per client).
//! - **Wire formats**: [`wire`] (a viewer event's WebSocket text, a work tree's status, a
//!   repository's row), which the cluster's bus and the routes both send.
//! - **Cluster**: [`cluster`] (membership, placement, the Redis bus, forwarding, signed
//!   node-to-node requests).
//! - **Web layer**: [`routes`] (every HTTP handler and middleware), [`guard`] (host and origin
//!   checks), [`encoding`], [`highlight`], [`error`] (the one error type every route answers
//!   with), [`metrics`], [`startup`] (wiring the server), [`config`] (the validated settings),
//!   [`telemetry`] (logs).
//! - **Commands**: [`cli`] (`main.rs` dispatches to it) and [`loadtest`] (a client of the server
//!   over HTTP and WebSocket).
//!
//! Issue 32 moves these floors into crates of their own so Cargo enforces the direction; until
//! then some edges still run upward (listed there).

pub use gitvista_accounts as auth;
pub use gitvista_accounts::billing;
pub mod cli;
pub mod client;
pub use gitvista_cluster as cluster;
pub mod config;
pub mod encoding;
pub use gitvista_errors as error;
pub mod forge;
pub mod guard;
pub mod highlight;
pub use gitvista_hosting::hosted;
pub use gitvista_loadtest as loadtest;
pub mod metrics;
pub use gitvista_hosting::quota;
pub use gitvista_hosting::remote;
pub mod routes;
pub mod startup;
pub use gitvista_hosting::streaming;
pub use gitvista_store as store;
pub mod telemetry;
pub use gitvista_hosting::webhooks;
