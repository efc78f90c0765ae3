//! Accounts: who a request is from and what they may hold.
//!
//! [`cipher::TokenCipher`] keeps forge tokens at rest as AES-256-GCM ciphertexts bound to their
//! user, under keys named by a key id so the key can be rotated; [`jwt`] signs and checks the
//! session cookie's token (HS256), which names a row of the `sessions` table so a sign-out takes
//! effect at once. [`provider::Provider`] is what accounts ask of a forge; [`github`],
//! [`gitlab`] and [`bitbucket`] implement it; [`confirm`] asks a forge whether a URL still names
//! the repository tracked under it before a webhook's hint changes anything.

pub mod accounts;
pub mod admin;
pub mod bitbucket;
pub mod cipher;
pub mod confirm;
pub mod github;
pub mod gitlab;
pub mod jwt;
pub mod provider;
pub mod settings;
