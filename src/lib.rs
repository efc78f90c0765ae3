//! GitVista: a live, interactive Git commit graph in the browser. This root package is the
//! `gitvista` binary: a thin command line ([`cli`], dispatched from `main.rs`) over the crates
//! beside it, floor by floor (bottom up; each imports only the floors below it, and Cargo
//! enforces it):
//!
//! - `gitcore` (reading repositories), `gitwire` (reading remotes over git's protocols),
//!   `gitvista-actors` (sessions, the clone queue, viewers' events: "fetch every N s", no plans);
//! - [`store`] (diesel over SQLite or PostgreSQL, migrations, the job queue) and [`error`] (the
//!   one error every floor above answers with);
//! - [`auth`] (accounts: forge providers, sessions, the token cipher, access checks, admin
//!   sign-in; [`billing`]: plans and Stripe);
//! - [`cluster`] (membership, the job runner, the Redis bus, signed node-to-node requests, for
//!   a `Node` that hosting implements);
//! - hosting: [`hosted`], [`remote`], [`streaming`], [`quota`], [`webhooks`] (the clone
//!   lifecycle, the URL policy, first views streamed, plans over lists, webhook logic);
//! - the web layer: [`routes`], [`startup`], [`config`], [`client`], [`guard`], [`encoding`],
//!   [`highlight`], [`forge`], [`metrics`], [`telemetry`];
//! - [`loadtest`], a client of the server over HTTP and WebSocket only.
//!
//! The re-exports below name those crates as the tests and the commands know them.

pub mod cli;

pub use gitvista_accounts as auth;
pub use gitvista_accounts::billing;
pub use gitvista_cluster as cluster;
pub use gitvista_errors as error;
pub use gitvista_hosting::hosted::quota;
pub use gitvista_hosting::{hosted, remote, streaming, webhooks};
pub use gitvista_loadtest as loadtest;
pub use gitvista_store as store;
pub use gitvista_web::{
    client, config, encoding, forge, guard, highlight, metrics, routes, startup, telemetry,
};
