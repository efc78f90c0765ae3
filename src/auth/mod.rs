//! Accounts: who a request is from and what they may hold.
//!
//! [`cipher::TokenCipher`] keeps forge tokens at rest as AES-256-GCM ciphertexts bound to their
//! user, under keys named by a key id so the key can be rotated; [`jwt`] signs and checks the
//! session cookie's token (HS256), which names a row of the `sessions` table so a sign-out takes
//! effect at once.

pub mod accounts;
pub mod cipher;
pub mod github;
pub mod jwt;
pub mod settings;
