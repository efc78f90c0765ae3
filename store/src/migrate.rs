//! Migrations, one process at a time: any number of nodes may start together against a new or
//! an older database, and each pending migration runs exactly once.
//!
//! The lock is held for the whole run and the list of pending migrations is read under it, so a
//! node that waited finds the work done and runs nothing:
//! - PostgreSQL: a session-level advisory lock ([`ADVISORY_LOCK_KEY`]) on a connection of its
//!   own, outside the pool, which is closed afterwards (so the lock goes with it whatever
//!   happened, and no pooled connection keeps it);
//! - SQLite: an exclusive `flock` on a file beside the database (`gitvista.db.migrate-lock`).
//!   SQLite's own write lock cannot be held over the run: a migration that rebuilds tables turns
//!   foreign keys off first, which SQLite ignores inside a transaction, so it opens its own.

use std::time::{Duration, Instant};

use diesel::RunQueryDsl as _;
use diesel::migration::MigrationConnection as _;
use diesel::r2d2::ManageConnection as _;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use super::{AnyConnection, Manager, Store, StoreError};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The PostgreSQL advisory lock migrations hold: "gitvista" in ASCII, a key no other program
/// sharing the database is likely to take.
pub const ADVISORY_LOCK_KEY: i64 = 0x6769_7476_6973_7461;

/// How long a process waits for another one's migrations before it gives up and says so.
pub const LOCK_WAIT: Duration = Duration::from_secs(300);

/// How often a waiting process tries the SQLite lock file again.
const FILE_LOCK_RETRY: Duration = Duration::from_millis(20);

/// The lock held while migrations run; released when dropped.
enum MigrationLock {
    /// The advisory lock lives as long as the connection that took it (the one migrating).
    Advisory,
    /// The lock file, locked (the lock goes when the file is closed).
    File(#[expect(dead_code, reason = "held for its lock, never read")] std::fs::File),
    /// An in-memory SQLite database: no other process can see it.
    Private,
}

impl Store {
    /// Runs the pending migrations under the migration lock; answers how many ran here (0
    /// when another process ran them while this one waited).
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let ran = self.with_migration_lock(|conn| match conn {
            AnyConnection::Sqlite(c) => {
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len())
            }
            AnyConnection::Postgresql(c) => c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len()),
        })?;
        if ran > 0 {
            tracing::info!(ran, backend = self.backend(), "database migrations ran");
        }
        Ok(ran)
    }

    /// Migrations this release has that the database has not run, read on a pooled connection
    /// (so an answer also says the database is reachable): 0 when the schema is this release's.
    pub fn pending_migrations(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            AnyConnection::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            AnyConnection::Postgresql(c) => {
                c.pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len())
            }
        };
        pending.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Runs the first `count` migrations only that have not run yet (to build a database as
    /// an older release left it, for upgrade tests); answers how many ran.
    pub fn migrate_first(&self, count: usize) -> Result<usize, StoreError> {
        self.with_migration_lock(|conn| {
            macro_rules! run {
                ($c:expr, $set:expr, $backend:ty) => {{
                    // The table of applied versions, which run_pending_migrations creates itself.
                    $c.setup()?;
                    let applied = $c.applied_migrations()?;
                    let mut all =
                        diesel::migration::MigrationSource::<$backend>::migrations(&$set)?;
                    all.sort_by_key(|m| m.name().version().to_string());
                    let mut ran = 0;
                    for m in all.iter().take(count) {
                        if !applied.contains(&m.name().version()) {
                            $c.run_migration(m.as_ref())?;
                            ran += 1;
                        }
                    }
                    Ok(ran)
                }};
            }
            match conn {
                AnyConnection::Sqlite(c) => run!(c, SQLITE_MIGRATIONS, diesel::sqlite::Sqlite),
                AnyConnection::Postgresql(c) => run!(c, POSTGRES_MIGRATIONS, diesel::pg::Pg),
            }
        })
    }

    /// Runs `work` on a connection of its own while this process holds the migration lock.
    fn with_migration_lock(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> diesel::migration::Result<usize>,
    ) -> Result<usize, StoreError> {
        let manager = &self.manager;
        let mut conn = manager
            .connect()
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        let waited = Instant::now();
        let _lock = lock(manager, &mut conn)?;
        let waited = waited.elapsed();
        if waited > Duration::from_millis(100) {
            tracing::info!(
                ms = waited.as_millis() as u64,
                "waited for another process's database migrations"
            );
        }
        work(&mut conn).map_err(|e| StoreError::Migration(e.to_string()))
    }
}

/// Takes the migration lock for `conn`'s database, waiting at most [`LOCK_WAIT`].
fn lock(manager: &Manager, conn: &mut AnyConnection) -> Result<MigrationLock, StoreError> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query(format!("SET lock_timeout = '{}s'", LOCK_WAIT.as_secs()))
                .execute(pg)?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})"))
                .execute(pg)
                .map_err(|e| {
                    StoreError::Migration(format!(
                        "another process has held the migration lock (advisory lock {ADVISORY_LOCK_KEY}) for {} s or more: {e}",
                        LOCK_WAIT.as_secs()
                    ))
                })?;
            diesel::sql_query("SET lock_timeout = 0").execute(pg)?;
            Ok(MigrationLock::Advisory)
        }
        AnyConnection::Sqlite(_) => {
            let Some(path) = sqlite_file(manager.url()) else {
                return Ok(MigrationLock::Private);
            };
            let lock_path = format!("{path}.migrate-lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| StoreError::Migration(format!("{lock_path}: {e}")))?;
            let deadline = Instant::now() + LOCK_WAIT;
            loop {
                match file.try_lock() {
                    Ok(()) => return Ok(MigrationLock::File(file)),
                    Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        std::thread::sleep(FILE_LOCK_RETRY);
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(StoreError::Migration(format!(
                            "another process has held {lock_path} for {} s or more",
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(StoreError::Migration(format!("locking {lock_path}: {e}")));
                    }
                }
            }
        }
    }
}

/// The file a SQLite URL names (`None`: a database in memory, which no other process shares).
fn sqlite_file(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    let path = path.strip_prefix("file:").unwrap_or(path);
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_urls_name_their_file_and_memory_names_none() {
        for (url, file, why) in [
            (
                "/data/gitvista.db",
                Some("/data/gitvista.db"),
                "a plain path",
            ),
            ("sqlite:///data/g.db", Some("/data/g.db"), "a sqlite:// URL"),
            (
                "file:/data/g.db?mode=rwc",
                Some("/data/g.db"),
                "a file: URI with a query",
            ),
            (":memory:", None, "SQLite's in-memory database"),
            (
                "file:x?mode=memory&cache=shared",
                None,
                "a shared in-memory database",
            ),
        ] {
            assert_eq!(sqlite_file(url), file, "{why}");
        }
    }
}
