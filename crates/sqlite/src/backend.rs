//! Opening a database: the checks, pragmas, migrations, the reader pool and
//! the writer connection; and the maintenance calls on a whole store.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use imgstore_backend::{Error, Result, Subject};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::error::{pool_error, sql_error};
use crate::files::{BlobDir, sync_dir};
use crate::options::{SqliteOptions, Synchronous};
use crate::schema;

/// A store in one SQLite database: content ([`StoreBackend`](crate::StoreBackend)),
/// metadata and records ([`RecordStore`](crate::RecordStore)).
///
/// Cheap to clone (clones share one pool and one writer) and `Send + Sync`.
/// Reads take a connection from a pool and run in parallel; writes in this
/// process go through one connection in turn, and across processes SQLite's
/// write lock (waiting up to [`SqliteOptions::busy_timeout`]) orders them.
#[derive(Clone)]
pub struct SqliteBackend {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) options: SqliteOptions,
    pub(crate) readers: Pool<SqliteConnectionManager>,
    /// The in-process writer: holding the mutex is holding the right to write,
    /// so this process's threads queue here instead of in SQLite's busy handler.
    pub(crate) writer: Mutex<Connection>,
    /// Transactions this backend's writer committed: `PRAGMA data_version`
    /// on the writer counts only other connections' commits, so
    /// `change_counter` adds these.
    pub(crate) own_commits: AtomicU64,
    pub(crate) blobs: BlobDir,
}

/// What [`SqliteBackend::gc_orphan_files`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Files removed: temp files of interrupted writes and content files
    /// that no row names.
    pub removed_files: usize,
    /// Their total size.
    pub removed_bytes: u64,
}

/// The settings one connection actually runs with, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`: `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`; `None` for a level imgstore never sets (OFF, EXTRA).
    pub synchronous: Option<Synchronous>,
    /// `PRAGMA foreign_keys`: on, so deleting content deletes its metadata.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`.
    pub busy_timeout: Duration,
    /// `PRAGMA user_version`: the schema version.
    pub schema_version: u32,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// The pragmas every connection, reader or writer, runs with.
fn configure(conn: &Connection, options: &SqliteOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // `validate` checked that it fits.
    let mmap_size = i64::try_from(options.mmap_size).unwrap_or(0);
    conn.pragma_update(None, "mmap_size", mmap_size)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Sets `journal_mode=WAL` and returns the mode SQLite reports.
///
/// Leaving rollback mode needs an exclusive lock, and SQLite does not always
/// call the busy handler for it (a connection that would deadlock gets
/// `SQLITE_BUSY` at once), so several processes opening one old database at
/// the same moment retry here until `timeout` has passed.
fn switch_to_wal(conn: &Connection, timeout: Duration) -> rusqlite::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// The one thread every reader pool of the process opens its connections
/// on. r2d2 starts three threads per pool unless given one; a pool only
/// opens connections there (no reaper runs: see `open_with`), which takes
/// a millisecond, so one shared thread is plenty.
fn pool_thread() -> Arc<ScheduledThreadPool> {
    static THREAD: OnceLock<Arc<ScheduledThreadPool>> = OnceLock::new();
    Arc::clone(THREAD.get_or_init(|| {
        Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("imgstore-sqlite-pool")
                .build(),
        )
    }))
}

/// Creates the database file, mode 0600, unless it exists, and its missing
/// parent directories, mode 0700, whatever the umask. SQLite creates the
/// `-wal` and `-shm` files with the database file's mode, so they are 0600
/// too.
fn create_private(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path` with default options.
    /// See [`open_with`](Self::open_with).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend> {
        SqliteBackend::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`, its parent
    /// directories and its blob directory `<path>.blobs`; migrates an older
    /// schema forward and removes leftovers of interrupted writes.
    ///
    /// `FailedPrecondition`, with the database left as it was, when it has a
    /// schema newer than [`schema::SCHEMA_VERSION`], belongs to another
    /// application, or is not SQLite; `InvalidArgument` for unusable options;
    /// `Io` (retryable when the database stayed busy) otherwise.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteBackend> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let subject = store_subject(&path);
        create_private(&path).map_err(|e| Error::io("create", subject.clone(), e))?;
        let mut writer =
            Connection::open(&path).map_err(|e| sql_error("open", subject.clone(), e))?;
        writer
            .busy_timeout(options.busy_timeout)
            .map_err(|e| sql_error("configure", subject.clone(), e))?;
        // Before anything that writes (journal_mode does): a newer or foreign
        // database stays untouched.
        let version = schema::check_openable(&writer, &subject)?;
        let journal_mode = switch_to_wal(&writer, options.busy_timeout)
            .map_err(|e| sql_error("switch to WAL", subject.clone(), e))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(Error::FailedPrecondition {
                subject,
                reason: format!("cannot use WAL (journal_mode stays {journal_mode})"),
            });
        }
        configure(&writer, &options).map_err(|e| sql_error("configure", subject.clone(), e))?;
        // Only an old schema takes the write lock: a current database opens
        // even while another process writes.
        if version < schema::SCHEMA_VERSION {
            schema::migrate(&mut writer, &subject)?;
        }

        let blobs = BlobDir::beside(&path);
        blobs.create().map_err(|e| {
            Error::io(
                "create blob directory",
                Subject::Store(blobs.root().display().to_string()),
                e,
            )
        })?;

        let init_options = options.clone();
        // Readers never create the database: a connection the pool opens on
        // its thread after this backend is dropped (and the database
        // deleted) must fail, not leave an empty database behind.
        let reader_flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
        let manager = SqliteConnectionManager::file(&path)
            .with_flags(reader_flags)
            .with_init(move |conn| {
                configure(conn, &init_options)?;
                // Negative: KiB rather than pages.
                conn.pragma_update(
                    None,
                    "cache_size",
                    -i64::from(init_options.reader_cache_kib),
                )
            });
        let readers = Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            // A checkout test is a round trip per read; SQLite connections do not go stale.
            .test_on_check_out(false)
            // Nor do they need replacing: without these two r2d2 schedules
            // no reaper, which would outlive the pool on the shared thread.
            .idle_timeout(None)
            .max_lifetime(None)
            .thread_pool(pool_thread())
            .connection_timeout(options.busy_timeout.max(Duration::from_millis(100)))
            .build(manager)
            .map_err(|e| pool_error(subject.clone(), e))?;

        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                path,
                options,
                readers,
                writer: Mutex::new(writer),
                own_commits: AtomicU64::new(0),
                blobs,
            }),
        };
        // Cleaning is best effort here: a database that another process keeps
        // busy still opens, and its leftovers go at the next clean.
        match backend.gc_orphan_files() {
            Err(e) if !e.is_retryable() => return Err(e),
            _ => {}
        }
        Ok(backend)
    }

    /// Makes every transaction committed so far durable against a power
    /// loss, which `synchronous=NORMAL` alone does not, and folds the
    /// write-ahead log into the database: a `TRUNCATE` checkpoint syncs the
    /// log, copies it into the database and empties it when no reader in
    /// another process still needs it (then frames stay in the log, synced).
    /// After a bulk write (a load) this keeps the next process from paying
    /// for it: a large log is read through on every page lookup, and the
    /// next commit would copy it. `Io` when the checkpoint fails.
    pub fn checkpoint(&self) -> Result<()> {
        self.writer()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| sql_error("checkpoint", self.subject(), e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The directory of blob files, `<path>.blobs`.
    pub fn blob_dir(&self) -> &Path {
        self.inner.blobs.root()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// Removes what interrupted writes left behind: temp files no live writer
    /// holds, and content files that no row names (a crash between the rename
    /// of a blob file and the commit of its row, or after a delete's commit).
    /// Runs on open; safe while other threads and processes write.
    pub fn gc_orphan_files(&self) -> Result<GcReport> {
        let blobs = &self.inner.blobs;
        let dir_subject = || Subject::Store(blobs.root().display().to_string());
        let (removed_files, removed_bytes) = blobs
            .clean_tmp()
            .map_err(|e| Error::io("clean temp files in", dir_subject(), e))?;
        let mut report = GcReport {
            removed_files,
            removed_bytes,
        };

        // Under the write lock: a writer renames its file into place and
        // commits its row inside one write transaction, so here every file
        // either has its committed row or is an orphan.
        let mut conn = self.writer();
        let tx = self.begin(&mut conn)?;
        let files = blobs
            .content_files()
            .map_err(|e| Error::io("list blob files in", dir_subject(), e))?;
        {
            let mut named_by_row = tx
                .prepare_cached("SELECT data IS NULL FROM content WHERE digest = ?1")
                .map_err(|e| sql_error("prepare", self.subject(), e))?;
            for (hex, size) in files {
                let external: Option<bool> = named_by_row
                    .query_row([format!("sha256:{hex}")], |row| row.get(0))
                    .optional()
                    .map_err(|e| sql_error("read", self.subject(), e))?;
                if external == Some(true) {
                    continue;
                }
                match fs::remove_file(blobs.content_dir().join(&hex)) {
                    Ok(()) => {
                        report.removed_files += 1;
                        report.removed_bytes += size;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::io("remove orphan blob file in", dir_subject(), e));
                    }
                }
            }
        }
        if report.removed_files > 0 {
            sync_dir(blobs.content_dir())
                .map_err(|e| Error::io("sync blob directory", dir_subject(), e))?;
        }
        tx.rollback()
            .map_err(|e| sql_error("end transaction on", self.subject(), e))?;
        Ok(report)
    }

    /// The settings of the writer connection, as SQLite reports them.
    pub fn writer_settings(&self) -> Result<ConnectionSettings> {
        let conn = self.writer();
        self.settings_of(&conn)
    }

    /// The settings of a pooled reader connection, as SQLite reports them.
    pub fn reader_settings(&self) -> Result<ConnectionSettings> {
        let conn = self.reader()?;
        self.settings_of(&conn)
    }

    fn settings_of(&self, conn: &Connection) -> Result<ConnectionSettings> {
        let read = || -> rusqlite::Result<ConnectionSettings> {
            let journal_mode: String =
                conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
            let foreign_keys: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
            let busy_ms: u32 = conn.pragma_query_value(None, "busy_timeout", |r| r.get(0))?;
            let schema_version: u32 =
                conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok(ConnectionSettings {
                journal_mode,
                synchronous: Synchronous::from_level(synchronous),
                foreign_keys,
                busy_timeout: Duration::from_millis(u64::from(busy_ms)),
                schema_version,
            })
        };
        read().map_err(|e| sql_error("read settings of", self.subject(), e))
    }

    /// The subject of errors about the database as a whole.
    pub(crate) fn subject(&self) -> Subject {
        store_subject(&self.inner.path)
    }

    /// A pooled reader connection.
    pub(crate) fn reader(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        self.inner
            .readers
            .get()
            .map_err(|e| pool_error(self.subject(), e))
    }

    /// The writer connection; a panic of an earlier holder rolled its
    /// transaction back, so a poisoned lock still guards a usable connection.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `BEGIN IMMEDIATE`: takes SQLite's write lock now (waiting up to
    /// `busy_timeout`), so the checks made inside hold until the commit.
    pub(crate) fn begin<'c>(&self, conn: &'c mut Connection) -> Result<Transaction<'c>> {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error("begin a write transaction on", self.subject(), e))
    }
}

fn store_subject(path: &Path) -> Subject {
    Subject::Store(format!("database {}", path.display()))
}
