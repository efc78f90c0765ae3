//! GitVista's metadata store, the lowest of the service's floors: diesel over SQLite (the
//! default, `gitvista.db` in the data directory) or PostgreSQL (`DATABASE_URL=postgres://...`),
//! one code path for both through a `MultiConnection`, pooled with r2d2, migrations embedded per
//! backend (`store/migrations/{sqlite,postgres}`, the same versions).
//!
//! It owns every table and the queries on them, bottom up: [`schema`], [`migrate`] (under a
//! lock), [`backup`] (SQLite copies taken while it runs, and put back), the repositories' rows
//! (here), [`accounts`] (users, forge connections, sessions,
//! sealed tokens), [`admin`] (admin sessions), [`billing`] (subscriptions, Stripe events),
//! [`teams`], [`webhooks`] (registrations, deliveries), [`jobs`] (the job queue every node
//! shares, and PostgreSQL's wake-ups for it), [`placement`] (nodes, owners, fences),
//! [`presence`] (nodes' sessions on PostgreSQL, gone with their process) and [`status`] (what
//! the admin status answer counts across tables).
//!
//! It imports no crate of GitVista's and knows nothing of HTTP, actors or plans: it stores
//! facts and answers queries; the floors above decide what they mean.
//!
//! Every call blocks: handlers run them on the blocking pool, actors through `spawn_blocking`;
//! never on an async worker or actor thread.

/// Writes a repository's state to the rows `$row` selects (one repository, fenced or not):
/// `state` (the error cleared, or set: `failure`) and a finished fetch (`fetched`); answers
/// whether it was written. One body for [`Store::set_state`] and its fenced twin, and so on.
macro_rules! write_repo {
    (state $conn:expr, $row:expr, $state:expr, $error:expr, $progress:expr) => {
        diesel::update($row)
            .set((
                repos::state.eq($state),
                repos::error_message.eq($error),
                repos::error_code.eq(None::<String>),
                repos::progress.eq($progress),
            ))
            .execute($conn)?
            == 1
    };
    (failure $conn:expr, $row:expr, $state:expr, $code:expr, $message:expr) => {
        diesel::update($row)
            .set((
                repos::state.eq($state),
                repos::error_message.eq(Some($message)),
                repos::error_code.eq(Some($code)),
                repos::progress.eq(None::<String>),
            ))
            .execute($conn)?
            == 1
    };
    (fetched $conn:expr, $row:expr, $commits:expr, $disk_bytes:expr) => {{
        let set = (
            repos::last_fetch_at.eq(Some($crate::now())),
            repos::disk_bytes.eq($disk_bytes),
        );
        let n = match $commits {
            Some(c) => diesel::update($row)
                .set((set, repos::commit_count.eq(c)))
                .execute($conn)?,
            None => diesel::update($row).set(set).execute($conn)?,
        };
        n == 1
    }};
}

pub mod accounts;
pub mod admin;
pub mod backup;
pub mod billing;
pub mod jobs;
pub mod migrate;
pub mod placement;
pub mod presence;
pub mod schema;
pub mod status;
pub mod teams;
pub mod webhooks;

use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};

use schema::repos;

/// A transaction that writes. On SQLite its first statement takes the write lock, waiting for
/// it up to the busy timeout, so what the transaction reads is never a snapshot another writer
/// changes before it writes: a plain (deferred) transaction that reads first and writes second
/// fails at once with "database is locked" when another connection committed in between, since
/// SQLite cannot wait then. On PostgreSQL it is a plain transaction.
pub(crate) fn write_transaction<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    conn.transaction(|c| {
        if let AnyConnection::Sqlite(_) = c {
            // Changes nothing, but takes the write lock (SQLite begins the write transaction at
            // the statement's start).
            diesel::sql_query("DELETE FROM nodes WHERE 0").execute(c)?;
        }
        f(c)
    })
}

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(diesel::PgConnection),
    /// SQLite.
    Sqlite(diesel::SqliteConnection),
}

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyConnection::Postgresql(_) => "AnyConnection::Postgresql",
            AnyConnection::Sqlite(_) => "AnyConnection::Sqlite",
        })
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting or pooling failed.
    #[error("database connection: {0}")]
    Connection(String),
    /// A query failed.
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migration(String),
    /// A backup could not be taken or put back.
    #[error("backup: {0}")]
    Backup(String),
}

/// Opens connections for r2d2, choosing the backend from the URL's scheme (diesel's own
/// `establish` would fall back to SQLite and create a file named after a PostgreSQL URL).
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
}

impl Manager {
    /// The database URL (a SQLite path, or `postgres://...`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        if is_postgres(&self.url) {
            diesel::PgConnection::establish(&self.url)
                .map(AnyConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError)
        } else {
            let mut c = diesel::SqliteConnection::establish(&self.url)
                .map_err(r2d2::Error::ConnectionError)?;
            // A busy writer waits, not fails (first: turning WAL on waits for the lock too, when
            // several processes open a new database at once); WAL lets readers and the writer
            // proceed together.
            for pragma in [
                "PRAGMA busy_timeout = 5000",
                "PRAGMA journal_mode = WAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
            ] {
                diesel::sql_query(pragma)
                    .execute(&mut c)
                    .map_err(r2d2::Error::QueryError)?;
            }
            Ok(AnyConnection::Sqlite(c))
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _: &mut AnyConnection) -> bool {
        false
    }
}

/// An insert's result as "inserted now" (true) or "the key was there already" (false): ON
/// CONFLICT is not expressible through a MultiConnection, so the unique key answers.
pub(crate) fn inserted_once(result: QueryResult<usize>) -> Result<bool, StoreError> {
    match result {
        Ok(n) => Ok(n == 1),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A repository row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = repos)]
pub struct Repo {
    /// 16 hex digits of SHA-256 of the canonical URL.
    pub id: String,
    /// The URL git clones.
    pub canonical_url: String,
    /// The URL as the user pasted it.
    pub display_url: String,
    /// Always false until private repositories arrive.
    pub is_private: bool,
    /// pending, cloning, ready, fetching, error, evicted.
    pub state: String,
    /// Why the last clone or fetch failed.
    pub error_message: Option<String>,
    /// The last progress line of a running clone.
    pub progress: Option<String>,
    /// Size of the clone.
    pub disk_bytes: i64,
    /// Commits in the clone.
    pub commit_count: i64,
    /// When the last fetch finished.
    pub last_fetch_at: Option<i64>,
    /// When someone last looked at it.
    pub last_access_at: Option<i64>,
    /// When it was first asked for.
    pub created_at: i64,
    /// The class of the last failure (`not_found`, `unreachable`, ...), with `error_message`.
    pub error_code: Option<String>,
    /// The worker whose disk holds the clone (`None`: not placed).
    pub owner: Option<String>,
    /// Grows with every change of owner (the owner's fencing token).
    pub epoch: i64,
}

#[derive(Insertable)]
#[diesel(table_name = repos)]
struct NewRepo<'a> {
    id: &'a str,
    canonical_url: &'a str,
    display_url: &'a str,
    state: &'a str,
    created_at: i64,
    last_access_at: Option<i64>,
    is_private: bool,
}

/// PostgreSQL connections a pool keeps open while idle (see [`Store::connect`]).
const IDLE_CONNECTIONS: u32 = 2;

/// The store: a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    /// What the pool connects with (migrations open a connection of their own).
    manager: Manager,
    backend: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store {
    /// Opens (and migrates) the store at `url`: `postgres://...`, or a SQLite file path.
    pub fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let store = Store::connect(url, max_connections)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects without migrating.
    pub fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let manager = Manager {
            url: url.to_string(),
        };
        // PostgreSQL connections are opened as work needs them and closed after 10 idle
        // minutes, down to this many: an idle node holds two (and its listener), not its whole
        // pool, so many nodes fit in the server's `max_connections`. SQLite's are files of this
        // process: the whole pool is opened at once and kept (no file count that moves).
        let min_idle = is_postgres(url).then(|| max_connections.clamp(1, IDLE_CONNECTIONS));
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(min_idle)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager.clone())
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        Ok(Store {
            pool,
            manager,
            backend: if is_postgres(url) {
                "postgres"
            } else {
                "sqlite"
            },
        })
    }

    /// "postgres" or "sqlite".
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Connection(e.to_string()))
    }

    /// The repository `id`, inserting it as `pending` if new; answers it and whether it was
    /// created by this call (a concurrent insert of the same id loses quietly and reads the
    /// winner's row).
    pub fn upsert_repo(
        &self,
        id: &str,
        canonical_url: &str,
        display_url: &str,
    ) -> Result<(Repo, bool), StoreError> {
        self.upsert_repo_as(id, canonical_url, display_url, None)
    }

    /// [`Store::upsert_repo`], setting its visibility when `private` is given (what GitHub
    /// just said), on a new row and on a known one.
    pub fn upsert_repo_as(
        &self,
        id: &str,
        canonical_url: &str,
        display_url: &str,
        private: Option<bool>,
    ) -> Result<(Repo, bool), StoreError> {
        let mut conn = self.conn()?;
        let inserted = diesel::insert_into(repos::table)
            .values(&NewRepo {
                id,
                canonical_url,
                display_url,
                state: "pending",
                created_at: now(),
                last_access_at: Some(now()),
                is_private: private.unwrap_or(false),
            })
            .execute(&mut *conn);
        let created = inserted_once(inserted)?;
        if let (false, Some(p)) = (created, private) {
            diesel::update(repos::table.find(id))
                .set(repos::is_private.eq(p))
                .execute(&mut *conn)?;
        }
        let repo = repos::table
            .find(id)
            .select(Repo::as_select())
            .first(&mut *conn)?;
        Ok((repo, created))
    }

    /// The repository `id`.
    pub fn repo(&self, id: &str) -> Result<Option<Repo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .find(id)
            .select(Repo::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    /// Every repository, most recently accessed first.
    pub fn repos(&self) -> Result<Vec<Repo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .order((repos::last_access_at.desc(), repos::id))
            .select(Repo::as_select())
            .load(&mut *conn)?)
    }

    /// How many repositories are in each state.
    pub fn count_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .group_by(repos::state)
            .select((repos::state, diesel::dsl::count_star()))
            .order(repos::state)
            .load(&mut *conn)?)
    }

    /// The repositories among `ids` (unknown ids are skipped).
    pub fn repos_with_ids(&self, ids: &[String]) -> Result<Vec<Repo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .filter(repos::id.eq_any(ids))
            .order(repos::id)
            .select(Repo::as_select())
            .load(&mut *conn)?)
    }

    /// Repositories in one of `states`.
    pub fn repos_in(&self, states: &[&str]) -> Result<Vec<Repo>, StoreError> {
        let mut conn = self.conn()?;
        Ok(repos::table
            .filter(repos::state.eq_any(states))
            .order(repos::id)
            .select(Repo::as_select())
            .load(&mut *conn)?)
    }

    /// Sets the state, clearing or setting the error and progress.
    pub fn set_state(
        &self,
        id: &str,
        state: &str,
        error: Option<&str>,
        progress: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(state &mut *conn, repos::table.find(id), state, error, progress))
    }

    /// Sets the state with a failure: its class (`code`) and the sentence users see.
    pub fn set_failure(
        &self,
        id: &str,
        state: &str,
        code: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(failure &mut *conn, repos::table.find(id), state, code, message))
    }

    /// Records a finished clone or fetch (`commits`: `None` keeps the count, for a fetch no
    /// session loaded afterwards).
    pub fn set_fetched(
        &self,
        id: &str,
        commits: Option<i64>,
        disk_bytes: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(write_repo!(fetched &mut *conn, repos::table.find(id), commits, disk_bytes))
    }

    /// Records that someone looked at the repository.
    pub fn touch(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        Ok(diesel::update(repos::table.find(id))
            .set(repos::last_access_at.eq(Some(now())))
            .execute(&mut *conn)?
            == 1)
    }

    /// Deletes the repository row (and its jobs, access rows and hook registrations; the hooks
    /// themselves are removed from the forge before).
    pub fn delete_repo(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let id = id.to_string();
        crate::write_transaction(&mut conn, |c| {
            diesel::delete(schema::jobs::table.filter(schema::jobs::repo_id.eq(&id))).execute(c)?;
            diesel::delete(schema::repo_access::table.filter(schema::repo_access::repo_id.eq(&id)))
                .execute(c)?;
            diesel::delete(
                schema::webhook_registrations::table
                    .filter(schema::webhook_registrations::repo_id.eq(&id)),
            )
            .execute(c)?;
            Ok(diesel::delete(repos::table.find(&id)).execute(c)? == 1)
        })
    }
}
