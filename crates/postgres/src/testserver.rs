//! A private PostgreSQL server for tests (feature `testkit`): `initdb` into
//! a temporary directory, `pg_ctl start` listening only on a unix socket in
//! that directory, `pg_ctl stop` when the [`TestServer`] drops (or, for the
//! [`shared`](TestServer::shared) one, when the test process exits).
//!
//! The binaries are Debian's (`/usr/lib/postgresql/<version>/bin`, the
//! newest installed), or those of `$IMGSTORE_PG_BIN`. `initdb` refuses to
//! run as root, so as root the server runs as the `postgres` user (which
//! the Debian package creates) through `runuser`, owning the directory;
//! otherwise as the current user. Every test gets a database or a schema
//! of its own on the one server of its test binary.
//!
//! ```no_run
//! use imgstore_postgres::testserver::TestServer;
//!
//! let server = TestServer::shared();
//! let url = server.create_database();
//! let store = imgstore_postgres::PostgresBackend::open(&url)?;
//! # Ok::<(), imgstore_backend::Error>(())
//! ```

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The port in the socket's name (`.s.PGSQL.5432`); the server listens on
/// no TCP port, so it cannot clash with another.
const PORT: u16 = 5432;

/// A running PostgreSQL server in a temporary directory.
#[derive(Debug)]
pub struct TestServer {
    dir: PathBuf,
    bin: PathBuf,
    /// Run the binaries as the `postgres` user (this process is root).
    as_postgres: bool,
    /// Names of databases and schemas created so far.
    created: AtomicU64,
    /// Stop on drop (not the shared server, which `atexit` stops).
    stop_on_drop: bool,
}

/// How [`TestServer::restart`] stops the server first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `-m fast`: sessions are ended, the server shuts down cleanly.
    Fast,
    /// `-m immediate`: the server is killed and recovers from its WAL on start.
    Immediate,
}

/// The directory of PostgreSQL's binaries.
fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("IMGSTORE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "testserver: no PostgreSQL binaries in /usr/lib/postgresql/*/bin; \
             `apt-get install postgresql` (what .ci/run does) or set IMGSTORE_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check(what: &str, output: io::Result<Output>) -> io::Result<()> {
    let output = output?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

impl TestServer {
    /// Starts a server of its own, stopped when the value drops. `durable`
    /// keeps PostgreSQL's defaults (`fsync`, `synchronous_commit`), for
    /// figures and restart tests; otherwise both are off, which tests that
    /// do not kill the server do not notice, faster.
    pub fn start(durable: bool) -> io::Result<TestServer> {
        let temp = tempfile::Builder::new()
            .prefix("imgstore-pg-")
            .tempdir()?
            .keep();
        let as_postgres = is_root();
        let server = TestServer {
            dir: temp,
            bin: find_bin(),
            as_postgres,
            created: AtomicU64::new(0),
            stop_on_drop: true,
        };
        if as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&server.dir)
                    .output(),
            )?;
        }
        check(
            "initdb",
            server
                .command("initdb")
                .args(["-D"])
                .arg(server.data())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .output(),
        )?;
        std::fs::create_dir_all(server.socket_dir())?;
        if as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(server.socket_dir())
                    .output(),
            )?;
        }
        let mut settings = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c port={PORT} \
             -c max_connections=300 -c shared_buffers=64MB",
            server.socket_dir().display()
        );
        if !durable {
            settings.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        check(
            "pg_ctl start",
            server
                .command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(server.data())
                .args(["-w", "-t", "60", "-l"])
                .arg(server.dir.join("server.log"))
                .arg("-o")
                .arg(settings)
                .stdout(Stdio::null())
                .output(),
        )?;
        Ok(server)
    }

    /// The server of this test process, started on first use (not durable:
    /// see [`start`](Self::start)) and stopped when the process exits.
    /// Panics with the reason when it cannot start: a test that needs it
    /// fails, never skips.
    pub fn shared() -> &'static TestServer {
        static SHARED: OnceLock<TestServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut server = match TestServer::start(false) {
                Ok(server) => server,
                Err(e) => panic!("testserver: cannot start PostgreSQL: {e}"),
            };
            server.stop_on_drop = false;
            extern "C" fn stop_shared() {
                if let Some(server) = SHARED.get() {
                    server.stop();
                }
            }
            // SAFETY: registers a plain function; it runs once at exit.
            unsafe { libc::atexit(stop_shared) };
            server
        })
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args([OsStr::new("-u"), OsStr::new("postgres"), OsStr::new("--")]);
            command.arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The URL of database `dbname` (key-value form, over the unix socket).
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={dbname}",
            self.socket_dir().display()
        )
    }

    /// A fresh name with `prefix`, unique on this server.
    fn fresh_name(&self, prefix: &str) -> String {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_{}_{n}", std::process::id())
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let name = self.fresh_name("test");
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} TEMPLATE template0 STRATEGY file_copy"),
        );
        self.url(&name)
    }

    /// Runs one SQL statement as the superuser in database `dbname`,
    /// panicking with the server's message when it fails.
    pub fn psql(&self, dbname: &str, sql: &str) {
        let mut client = match postgres::Client::connect(&self.url(dbname), postgres::NoTls) {
            Ok(client) => client,
            Err(e) => panic!("testserver: cannot connect to {dbname}: {e}"),
        };
        if let Err(e) = client.batch_execute(sql) {
            panic!("testserver: {sql}: {e}");
        }
    }

    /// Stops the server (`-m fast` or `-m immediate`) and starts it again
    /// with the same settings; connections are cut.
    pub fn restart(&self, mode: StopMode) -> io::Result<()> {
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        check(
            "pg_ctl restart",
            self.command("pg_ctl")
                .arg("restart")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-m", mode, "-l"])
                .arg(self.log())
                .stdout(Stdio::null())
                .output(),
        )
    }

    /// Stops the server and removes its directory. Best effort.
    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The directory the server keeps everything in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.stop_on_drop {
            self.stop();
        }
    }
}
