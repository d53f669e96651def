//! Opening a store: the URL, the pool, the migrations; the retry loop every
//! call runs in; and the change lock shared by the nodes of one database.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use imgstore_backend::{Error, Result, Subject};
use postgres::types::Type;
use postgres::{Client, Config, NoTls};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use scheduled_thread_pool::ScheduledThreadPool;

use crate::error::{Failed, pool_error};
use crate::options::PostgresOptions;
use crate::schema;

pub(crate) type Manager = PostgresConnectionManager<NoTls>;
pub(crate) type Connection = PooledConnection<Manager>;

/// A store in one schema of a PostgreSQL database: content
/// ([`StoreBackend`](crate::StoreBackend)), metadata and records
/// ([`RecordStore`](crate::RecordStore)).
///
/// Cheap to clone (clones share one pool) and `Send + Sync`. Every call
/// takes a pooled connection; many processes on many machines may open the
/// same store. Calls retry through a lost connection or a restarting
/// server for up to [`PostgresOptions::retry_for`].
#[derive(Clone)]
pub struct PostgresBackend {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The URL without its password, for messages.
    pub(crate) url: String,
    pub(crate) options: PostgresOptions,
    pub(crate) pool: Pool<Manager>,
    /// The `change_counter` slot this instance's batches add to.
    pub(crate) counter_slot: i32,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("url", &self.inner.url)
            .field("schema", &self.inner.options.schema)
            .finish_non_exhaustive()
    }
}

/// `url` with any password removed, for messages and for what a store root
/// records: `postgres://user:secret@host/db` becomes
/// `postgres://user@host/db`; a `password=...` word of the key-value form
/// and a `password` query parameter are dropped.
///
/// ```
/// use imgstore_postgres::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/images"), "postgres://app@db:5432/images");
/// assert_eq!(redact_url("host=/run/pg dbname=images password=x"), "host=/run/pg dbname=images");
/// assert_eq!(redact_url("postgresql://db/images?password=x&sslmode=disable"), "postgresql://db/images?sslmode=disable");
/// ```
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority_end, _) = rest
            .char_indices()
            .find(|(_, c)| matches!(c, '/' | '?'))
            .unwrap_or((rest.len(), ' '));
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info
                    .split_once(':')
                    .map_or(user_info, |(user, _)| user);
                format!("{user}@{host}")
            }
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| !pair.starts_with("password="))
                    .collect();
                if kept.is_empty() {
                    path.to_owned()
                } else {
                    format!("{path}?{}", kept.join("&"))
                }
            }
            None => tail.to_owned(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    url.split_whitespace()
        .filter(|word| !word.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one thread every pool of the process opens its connections on (r2d2
/// starts three per pool unless given one).
fn pool_thread() -> Arc<ScheduledThreadPool> {
    static THREAD: OnceLock<Arc<ScheduledThreadPool>> = OnceLock::new();
    Arc::clone(THREAD.get_or_init(|| {
        Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("imgstore-postgres-pool")
                .build(),
        )
    }))
}

/// The `application_name` connections announce, which the change lock's
/// timeout message shows for the holder: `imgstore <pid>@<host>`.
fn application_name() -> String {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer given.
    let named = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let end = host.iter().position(|b| *b == 0).unwrap_or(host.len());
    let host = if named {
        String::from_utf8_lossy(&host[..end]).into_owned()
    } else {
        "unknown-host".to_owned()
    };
    // At most 63 bytes are kept by the server.
    let mut name = format!("imgstore {}@{host}", std::process::id());
    name.truncate(63);
    name
}

impl PostgresBackend {
    /// Opens the store in schema `imgstore` of the database at `url` with
    /// default options. See [`open_with`](Self::open_with).
    pub fn open(url: &str) -> Result<PostgresBackend> {
        PostgresBackend::open_with(url, PostgresOptions::default())
    }

    /// Opens (creating if needed) the store in schema `options.schema` of
    /// the database at `url` (`postgres://user@host:port/db`, or the
    /// key-value form `host=/run/postgresql dbname=db`), migrating an older
    /// schema forward.
    ///
    /// `InvalidArgument` for an unusable URL or options (the message never
    /// shows the password); `FailedPrecondition`, with the database left as
    /// it was, for a store of a newer imgstore; `Io` (retryable) when the
    /// server cannot be reached within `options.retry_for`.
    pub fn open_with(url: &str, options: PostgresOptions) -> Result<PostgresBackend> {
        options.validate()?;
        let shown = redact_url(url);
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::invalid_argument(&shown, format!("not a PostgreSQL URL: {e}")))?;
        // The store's schema first: every statement names its tables bare.
        let mut search_path = format!("-c search_path={}", options.schema);
        if !options.synchronous_commit {
            search_path.push_str(" -c synchronous_commit=off");
        }
        let session_options = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {search_path}"),
            _ => search_path,
        };
        config.options(&session_options);
        if config.get_application_name().is_none() {
            config.application_name(&application_name());
        }
        config.connect_timeout(options.connect_timeout);
        let subject = Subject::Store(format!("database {shown} schema {}", options.schema));
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(0))
            // A checkout test is a round trip per call; a connection the
            // server dropped fails its next call, which is retried, and
            // `has_broken` keeps it out of the pool.
            .test_on_check_out(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .thread_pool(pool_thread())
            .connection_timeout(options.connect_timeout)
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        let counter_slot = (std::process::id() as u64 % schema::COUNTER_SLOTS) as i32;
        let backend = PostgresBackend {
            inner: Arc::new(Inner {
                url: shown,
                options,
                pool,
                counter_slot,
            }),
        };
        backend.migrate_to(schema::SCHEMA_VERSION, &subject)?;
        Ok(backend)
    }

    /// Migrates the store to `version` (tests build old stores with it).
    #[doc(hidden)]
    #[cfg(feature = "testkit")]
    pub fn open_at_version(
        url: &str,
        options: PostgresOptions,
        version: u32,
    ) -> Result<PostgresBackend> {
        // Opening migrates to the newest version, so build the pool by hand.
        let backend = PostgresBackend::open_unmigrated(url, options)?;
        let subject = backend.subject();
        backend.migrate_to(version, &subject)?;
        Ok(backend)
    }

    #[cfg(feature = "testkit")]
    fn open_unmigrated(url: &str, options: PostgresOptions) -> Result<PostgresBackend> {
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::invalid_argument(url, format!("not a PostgreSQL URL: {e}")))?;
        config.options(&format!("-c search_path={}", options.schema));
        let pool = Pool::builder()
            .max_size(2)
            .thread_pool(pool_thread())
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                url: redact_url(url),
                options,
                pool,
                counter_slot: 0,
            }),
        })
    }

    fn migrate_to(&self, version: u32, subject: &Subject) -> Result<()> {
        let schema_name = self.inner.options.schema.clone();
        self.run(|client| {
            schema::migrate(client, &schema_name, version, subject).map_err(|error| Failed {
                may_retry: error.is_retryable(),
                error,
            })
        })
        .map(drop)
    }

    /// The URL the store was opened with, without its password.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    /// The schema version of the store.
    pub fn schema_version(&self) -> Result<u32> {
        let subject = self.subject();
        let schema_name = self.inner.options.schema.clone();
        self.run(|client| {
            schema::read_version(client, &schema_name, &subject).map_err(|error| Failed {
                may_retry: error.is_retryable(),
                error,
            })
        })
    }

    /// The subject of errors about the store as a whole.
    pub(crate) fn subject(&self) -> Subject {
        Subject::Store(format!(
            "database {} schema {}",
            self.inner.url, self.inner.options.schema
        ))
    }

    /// A pooled connection.
    pub(crate) fn connection(&self) -> Result<Connection> {
        self.inner
            .pool
            .get()
            .map_err(|e| pool_error(self.subject(), &e))
    }

    /// Runs `attempt` on a pooled connection, again on a fresh one after a
    /// transient failure (see [`Failed::may_retry`]), pausing 10 ms, then
    /// twice as long each time up to half a second, for at most
    /// [`PostgresOptions::retry_for`]. The last failure is returned as it is.
    pub(crate) fn run<T>(
        &self,
        mut attempt: impl FnMut(&mut Client) -> Result<T, Failed>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.inner.options.retry_for;
        let mut pause = Duration::from_millis(10);
        loop {
            let failed = match self.connection() {
                Ok(mut conn) => match attempt(&mut conn) {
                    Ok(value) => return Ok(value),
                    Err(failed) => failed,
                },
                Err(error) => Failed {
                    error,
                    may_retry: true,
                },
            };
            if !failed.may_retry || Instant::now() + pause > deadline {
                return Err(failed.error);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The key of the change lock of this store: a hash of its schema name,
    /// so the stores of one database lock apart.
    fn change_lock_key(&self) -> i64 {
        fnv1a(&[
            b"imgstore change lock\0",
            self.inner.options.schema.as_bytes(),
        ])
    }

    /// Takes the store's change lock: a session-level advisory lock held by
    /// a connection of its own until the [`ChangeLock`] drops, so one
    /// change at a time runs on the store, whichever node runs it (the
    /// `store.lock` file of a root cannot span machines). Waits at most
    /// `timeout`: then [`LockError::TimedOut`] names the sessions holding
    /// it (their `application_name`, `imgstore <pid>@<host>`, and address).
    /// A holder that dies (SIGKILL, a lost machine) releases the lock with
    /// its connection. So does a server restart while this process goes
    /// on: while the lock is held, every batch and content delete of this
    /// process on this database checks in its transaction that the session
    /// that took it still holds it, and fails with `Conflict` otherwise,
    /// so the change in progress stops instead of interleaving with
    /// another node's.
    pub fn lock_changes(&self, timeout: Duration) -> Result<ChangeLock, LockError> {
        let key = self.change_lock_key();
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut conn = self.connection().map_err(LockError::Backend)?;
        loop {
            let taken = conn
                .query_typed_one(
                    "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
                    &[(&key, Type::INT8)],
                )
                .and_then(|row| Ok((row.try_get::<_, bool>(0)?, row.try_get::<_, i32>(1)?)));
            match taken {
                Ok((true, pid)) => {
                    let fence = Fence {
                        url: self.inner.url.clone(),
                        key,
                        pid,
                    };
                    held_fences().push(fence.clone());
                    return Ok(ChangeLock { conn, fence });
                }
                Ok((false, _)) => {}
                Err(e) => {
                    // A lost connection: wait on a fresh one, within the timeout.
                    let error =
                        crate::error::pg_error("take the change lock of", self.subject(), e);
                    if !error.is_retryable() || start.elapsed() >= timeout {
                        return Err(LockError::Backend(error));
                    }
                    drop(conn);
                    std::thread::sleep(pause);
                    conn = self.connection().map_err(LockError::Backend)?;
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::TimedOut {
                    waited,
                    holders: lock_holders(&mut conn, key),
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// 64-bit FNV-1a of the parts, as an advisory lock key: the same on every
/// machine and build (std's hasher is seeded per process).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xFF;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// The sessions holding advisory lock `key`, as `pg_stat_activity` shows
/// them: `session 1234 (imgstore 77@node-a) from 10.0.0.5`.
fn lock_holders(conn: &mut Client, key: i64) -> String {
    // A bigint key is stored as classid (high 32 bits), objid (low 32 bits), objsubid 1.
    let (high, low) = ((key as u64 >> 32) as i64, (key as u64 & 0xFFFF_FFFF) as i64);
    let rows = conn.query_typed(
        "SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local')
         FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.classid::bigint = $1 AND l.objid::bigint = $2",
        &[(&high, Type::INT8), (&low, Type::INT8)],
    );
    let holders: Vec<String> = rows
        .unwrap_or_default()
        .iter()
        .filter_map(|row| {
            let pid: i32 = row.try_get(0).ok()?;
            let name: String = row.try_get(1).ok()?;
            let from: String = row.try_get(2).ok()?;
            Some(match name.as_str() {
                "" => format!("session {pid} from {from}"),
                name => format!("session {pid} ({name}) from {from}"),
            })
        })
        .collect();
    if holders.is_empty() {
        "an unknown session".to_owned()
    } else {
        holders.join(", ")
    }
}

/// The change lock of a store ([`PostgresBackend::lock_changes`]), released
/// on drop.
pub struct ChangeLock {
    conn: Connection,
    fence: Fence,
}

/// A change lock this process holds: the database, the lock's key and the
/// server process (session) holding it. While it is held, every batch of
/// this process on that database checks in its transaction that the same
/// session still holds it ([`PostgresBackend::fences`]): a server restart
/// ends the session and frees the lock for another node, and the change in
/// progress must then stop rather than interleave with that node's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    url: String,
    key: i64,
    pid: i32,
}

/// The change locks this process holds.
fn held_fences() -> std::sync::MutexGuard<'static, Vec<Fence>> {
    static HELD: std::sync::Mutex<Vec<Fence>> = std::sync::Mutex::new(Vec::new());
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PostgresBackend {
    /// The change locks this process holds on this backend's database, as
    /// the columns `pg_locks` shows them: classid (the key's high 32
    /// bits), objid (its low 32 bits), pid.
    pub(crate) fn fences(&self) -> (Vec<i64>, Vec<i64>, Vec<i32>) {
        let held = held_fences();
        let mine = held.iter().filter(|fence| fence.url == self.inner.url);
        let mut columns = (Vec::new(), Vec::new(), Vec::new());
        for fence in mine {
            columns.0.push((fence.key as u64 >> 32) as i64);
            columns.1.push((fence.key as u64 & 0xFFFF_FFFF) as i64);
            columns.2.push(fence.pid);
        }
        columns
    }
}

impl fmt::Debug for ChangeLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeLock")
            .field("key", &self.fence.key)
            .finish_non_exhaustive()
    }
}

impl Drop for ChangeLock {
    fn drop(&mut self) {
        {
            let mut held = held_fences();
            if let Some(at) = held.iter().position(|fence| *fence == self.fence) {
                held.remove(at);
            }
        }
        let key = self.fence.key;
        let released = self
            .conn
            .query_typed_one("SELECT pg_advisory_unlock($1)", &[(&key, Type::INT8)]);
        if released.is_err() {
            // The connection goes back to the pool: it must not keep the
            // lock. One that is gone took the lock with it.
            let _ = self.conn.batch_execute("SELECT pg_advisory_unlock_all()");
        }
    }
}

/// Why [`PostgresBackend::lock_changes`] did not take the lock.
#[derive(Debug)]
pub enum LockError {
    /// Other sessions held it for the whole timeout.
    TimedOut {
        /// How long the call waited.
        waited: Duration,
        /// Who holds it (see [`PostgresBackend::lock_changes`]).
        holders: String,
    },
    /// The database failed.
    Backend(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://u:p@h/db?password=x&application_name=a"),
            "postgres://u@h/db?application_name=a"
        );
        assert_eq!(redact_url("postgres://h:5432"), "postgres://h:5432");
        assert_eq!(redact_url("postgres://u@h"), "postgres://u@h");
        assert_eq!(redact_url("postgres://u:p%40q@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("user=u password=p host=h"), "user=u host=h");
    }

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(fnv1a(&[b"a"]), fnv1a(&[b"a"]));
        assert_ne!(fnv1a(&[b"a", b"b"]), fnv1a(&[b"ab"]));
    }
}
