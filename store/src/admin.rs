//! Admin sign-ins: the SHA-256 of each session's id and its expiry (see
//! the accounts floor's `auth::admin`). The ids themselves are never stored.

use diesel::prelude::*;

use super::schema::admin_sessions;
use super::{Store, StoreError};

impl Store {
    /// Records an admin session by its hash.
    pub fn add_admin_session(
        &self,
        hash: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        diesel::insert_into(admin_sessions::table)
            .values((
                admin_sessions::id_hash.eq(hash),
                admin_sessions::created_at.eq(created_at),
                admin_sessions::expires_at.eq(expires_at),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// The expiry of the admin session `hash`, if it exists.
    pub fn admin_session(&self, hash: &str) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn()?;
        Ok(admin_sessions::table
            .find(hash)
            .select(admin_sessions::expires_at)
            .first(&mut *conn)
            .optional()?)
    }

    /// Ends the admin session `hash`.
    pub fn remove_admin_session(&self, hash: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        diesel::delete(admin_sessions::table.find(hash)).execute(&mut *conn)?;
        Ok(())
    }

    /// Forgets admin sessions that expired before `now`.
    pub fn prune_admin_sessions(&self, now: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(
            diesel::delete(admin_sessions::table.filter(admin_sessions::expires_at.le(now)))
                .execute(&mut *conn)?,
        )
    }
}
