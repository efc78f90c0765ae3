//! Backups of the SQLite store, and putting one back.
//!
//! - [`Store::backup_to`] takes a consistent copy while the server runs: SQLite's `VACUUM INTO`
//!   reads one snapshot of the database in a read transaction (writers go on in the WAL) and
//!   writes a compact copy, first under a temporary name beside the target, renamed into place
//!   once complete, so a copy that exists is whole.
//! - [`restore_sqlite`] checks that a file is such a copy (a SQLite database with this store's
//!   tables and migrations) and puts it in place of a stopped server's database, keeping the
//!   database it replaces beside it. A node restored into a new data directory keeps the
//!   single node's id the copy names, so it owns its repositories again and clones them anew.
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`, `pg_restore`): see
//! docs/operations.md.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::{AnyConnection, Store, StoreError};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// What [`restore_sqlite`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the database it replaced was kept (`None`: there was none).
    pub previous: Option<PathBuf>,
    /// The node id written to the data directory (a single node's, when there was none).
    pub node_id: Option<String>,
}

/// Tables a GitVista store has (and diesel's record of its migrations).
const EXPECTED_TABLES: [&str; 4] = ["__diesel_schema_migrations", "repos", "users", "jobs"];

impl Store {
    /// A consistent copy of this SQLite database at `to`, taken while others keep writing.
    /// Refuses an existing `to` (nothing is overwritten) and PostgreSQL (use `pg_dump`).
    pub fn backup_to(&self, to: &Path) -> Result<(), StoreError> {
        if to.exists() {
            return Err(StoreError::Backup(format!(
                "{} exists already: back up to a new file",
                to.display()
            )));
        }
        let partial = to.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let target = partial
            .to_str()
            .ok_or_else(|| StoreError::Backup(format!("{} is not UTF-8", to.display())))?
            .replace('\'', "''");
        let mut conn = self.conn()?;
        match &mut *conn {
            AnyConnection::Sqlite(c) => {
                diesel::sql_query(format!("VACUUM INTO '{target}'")).execute(c)?;
            }
            AnyConnection::Postgresql(_) => {
                return Err(StoreError::Backup(
                    "this store is PostgreSQL: back it up with pg_dump (see docs/operations.md)"
                        .into(),
                ));
            }
        }
        drop(conn);
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&partial, to))
            .map_err(|e| StoreError::Backup(format!("{}: {e}", to.display())))
    }
}

/// Puts the backup `from` in place of the SQLite database `db` (the server must be stopped):
/// checks that `from` is a GitVista store, keeps the current database (with its WAL) beside it
/// as `<db>.before-restore-<unix time>`, and, when the data directory has no node id yet and the
/// copy names exactly one single node, writes that id so the node owns its repositories again.
pub fn restore_sqlite(from: &Path, db: &Path) -> Result<Restored, StoreError> {
    let fail = |what: String| StoreError::Backup(what);
    let dir = db
        .parent()
        .ok_or_else(|| fail(format!("{} has no directory", db.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(fail(format!(
            "{} holds unwritten changes: a server is running on this data directory (or stopped \
             without closing it); stop it first",
            wal.display()
        )));
    }
    // Checked as a copy first: the database in place is touched only when the copy is good.
    let staged = PathBuf::from(format!("{}.restoring", db.display()));
    std::fs::copy(from, &staged).map_err(|e| fail(format!("{}: {e}", from.display())))?;
    let checked = check_backup(&staged);
    let single = match checked {
        Ok(single) => single,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    let mut previous = None;
    if db.exists() {
        let now = super::now();
        let kept = PathBuf::from(format!("{}.before-restore-{now}", db.display()));
        std::fs::rename(db, &kept).map_err(|e| fail(format!("{}: {e}", db.display())))?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", db.display()));
            if side.exists() {
                let _ = std::fs::rename(&side, format!("{}{suffix}", kept.display()));
            }
        }
        previous = Some(kept);
    }
    std::fs::rename(&staged, db).map_err(|e| fail(format!("{}: {e}", db.display())))?;
    let id_file = dir.join("node-id");
    let mut node_id = None;
    if !id_file.exists()
        && let Some(id) = single
    {
        std::fs::write(&id_file, format!("{id}\n"))
            .map_err(|e| fail(format!("{}: {e}", id_file.display())))?;
        node_id = Some(id);
    }
    Ok(Restored { previous, node_id })
}

/// Whether `path` is a whole GitVista store; answers the id of its single node when it names
/// exactly one (role `all`).
fn check_backup(path: &Path) -> Result<Option<String>, StoreError> {
    let fail = |what: String| StoreError::Backup(format!("{}: {what}", path.display()));
    let mut head = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open(path).map_err(|e| fail(e.to_string()))?,
        &mut head,
    )
    .map_err(|_| fail("not a SQLite database".into()))?;
    if &head != b"SQLite format 3\0" {
        return Err(fail("not a SQLite database".into()));
    }
    let url = path
        .to_str()
        .ok_or_else(|| fail("the path is not UTF-8".into()))?;
    let mut c = diesel::SqliteConnection::establish(url).map_err(|e| fail(e.to_string()))?;
    let ok: Vec<Name> =
        diesel::sql_query("SELECT integrity_check AS name FROM pragma_integrity_check")
            .load(&mut c)
            .map_err(|e| fail(e.to_string()))?;
    if ok.first().map(|n| n.name.as_str()) != Some("ok") {
        return Err(fail("the database is damaged (integrity_check)".into()));
    }
    let tables: Vec<Name> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load(&mut c)
            .map_err(|e| fail(e.to_string()))?;
    for want in EXPECTED_TABLES {
        if !tables.iter().any(|t| t.name == want) {
            return Err(fail(format!("not a GitVista store (no {want} table)")));
        }
    }
    let singles: Vec<Name> = diesel::sql_query("SELECT id AS name FROM nodes WHERE role = 'all'")
        .load(&mut c)
        .unwrap_or_default();
    Ok(match singles.as_slice() {
        [one] => Some(one.name.clone()),
        _ => None,
    })
}
