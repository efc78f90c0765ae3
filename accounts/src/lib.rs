//! GitVista's accounts floor: who a request is from and what they may hold.
//!
//! It owns the forge providers behind one trait, sign-in and sessions, the token cipher, the
//! access checks on private repositories, admin sign-ins, and plans and billing. Modules, bottom
//! up:
//!
//! - [`cipher`] keeps forge tokens at rest as AES-256-GCM ciphertexts bound to their user, under
//!   keys named by a key id so the key can be rotated; [`jwt`] signs and checks the session
//!   cookie's token (HS256), which names a row of the `sessions` table so a sign-out takes effect
//!   at once.
//! - [`provider::Provider`] is what accounts ask of a forge; [`github`], [`gitlab`] and
//!   [`bitbucket`] implement it; [`settings`] reads which forges are configured.
//! - [`billing`] (plans from subscriptions, the Stripe client) and [`accounts`] (sign-in,
//!   sessions, tokens, access, plans of users and teams), over the two above.
//! - [`confirm`] asks a forge whether a URL still names the repository tracked under it before a
//!   webhook's hint changes anything; [`admin`] holds the admin sign-ins.
//!
//! It stands on the store, the one error type and the actors' credential type; it knows nothing
//! of hosting, the cluster or HTTP routes (it answers `ApiError`s, and the web layer sets the
//! cookies).

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod billing;
pub mod bitbucket;
pub mod cipher;
pub use accounts::confirm;
pub mod github;
pub mod gitlab;
pub mod jwt;
pub mod provider;
pub mod settings;
