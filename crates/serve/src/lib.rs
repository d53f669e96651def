//! `imgstore serve`: an image [`Store`] served to the real `docker` CLI.
//!
//! The Docker Engine API v1.41 (what Docker 20.10 speaks) image endpoints
//! over a unix socket, on hyper and tokio: `/_ping`, `/version`, `/info`,
//! `GET /images/json`, `/images/{name}/json`, `/images/{name}/history`,
//! `POST /images/{name}/tag`, `DELETE /images/{name}`, `POST /images/load`
//! (the body streamed into [`Store::import_reader`]), `GET /images/get` and
//! `/images/{name}/get` (streamed from [`Store::export_to_writer`]),
//! `POST /images/prune` and `GET /system/df`, with dockerd's JSON, status
//! codes and `{"message": …}` errors. The store is opened once by the
//! caller; every store call is blocking and runs on tokio's blocking pool.
//!
//! ```no_run
//! use imgstore::Store;
//! use imgstore_serve::{ServeOptions, serve};
//!
//! let store = Store::open("/var/lib/imgstore")?;
//! // Until SIGTERM or SIGINT; then in-flight requests finish.
//! serve(store, &ServeOptions::new("/run/imgstore/docker.sock"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Then `DOCKER_HOST=unix:///run/imgstore/docker.sock docker images`.
//!
//! With the feature `cri` and [`ServeOptions::cri_socket`], the CRI v1
//! ImageService ([`cri`]) answers on a second socket, from the same store.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at
//! once), request headers within [`HEADER_TIMEOUT`], request bodies of at
//! most [`MAX_BODY`] bytes except `load`'s, which is streamed through a
//! small queue and whose every chunk must arrive within [`BODY_TIMEOUT`].

mod api;
#[cfg(feature = "cri")]
pub mod cri;
mod docker;
mod stream;

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use imgstore::Store;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

pub use api::API_VERSION;

/// Connections served at once; a client beyond them is disconnected, so
/// idle or slow clients cannot pin memory without bound.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send a request's headers (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time within which each chunk of a request body must arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest request body accepted, except `POST /images/load`'s.
pub const MAX_BODY: usize = 1 << 20;

/// Where and how [`serve`] listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The unix socket of the Docker Engine API.
    pub docker_socket: PathBuf,
    /// The unix socket of the CRI v1 ImageService (gRPC), when wanted;
    /// needs the feature `cri`.
    pub cri_socket: Option<PathBuf>,
    /// The group that may use the sockets too (mode 0660); `None`: only
    /// their owner (mode 0600).
    pub socket_group: Option<u32>,
}

impl ServeOptions {
    /// Options for a socket at `docker_socket`, owner only.
    pub fn new(docker_socket: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            docker_socket: docker_socket.into(),
            cri_socket: None,
            socket_group: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The socket could not be made ready.
    #[error("{}: cannot {operation}: {source}", .path.display())]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// What failed (`bind`, `set the permissions of`).
        operation: &'static str,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Another server answers on the socket already.
    #[error("{}: another server is listening on this socket", .path.display())]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{}: exists and is not a socket", .path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// No group has this name.
    #[error("unknown group {name:?}")]
    UnknownGroup {
        /// The name given.
        name: String,
    },
    /// A CRI socket was asked for, but this build has no CRI service.
    #[error("this imgstore was built without the CRI ImageService (feature `cri`)")]
    NoCri,
    /// The gRPC server failed.
    #[error("the CRI server failed: {0}")]
    Cri(String),
    /// The runtime or the signal handlers could not start.
    #[error("cannot start the server: {0}")]
    Runtime(#[source] io::Error),
}

/// A group's ID from its name or number (`--socket-group`).
pub fn group_id(name_or_id: &str) -> Result<u32, ServeError> {
    if let Ok(id) = name_or_id.parse::<u32>() {
        return Ok(id);
    }
    let unknown = || ServeError::UnknownGroup {
        name: name_or_id.to_owned(),
    };
    // /etc/group rather than getgrnam: no unsafe, no NSS modules loaded
    // into the server.
    let groups = std::fs::read_to_string("/etc/group").map_err(|_| unknown())?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            Some((name, id))
        })
        .find(|(name, _)| *name == name_or_id)
        .map(|(_, id)| id)
        .ok_or_else(unknown)
}

/// Serves `store` on the sockets of `options` until SIGTERM or SIGINT,
/// then stops accepting, lets the requests in flight finish and removes
/// the sockets. Blocks the calling thread (it runs its own tokio runtime).
pub fn serve(store: Store, options: &ServeOptions) -> Result<(), ServeError> {
    if options.cri_socket.is_some() && !cfg!(feature = "cri") {
        return Err(ServeError::NoCri);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let store = Arc::new(store);
        let docker = bind(&options.docker_socket, options.socket_group)?;
        let cri = match &options.cri_socket {
            Some(path) => Some(bind(path, options.socket_group)?),
            None => None,
        };
        let signal = shutdown_signal().map_err(ServeError::Runtime)?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let docker = serve_docker(Arc::clone(&store), docker, until_stopped(stopped.clone()));
        let result = match cri {
            #[cfg(feature = "cri")]
            Some(cri) => {
                let cri = serve_cri(store, cri, until_stopped(stopped));
                tokio::join!(docker, cri).1
            }
            _ => {
                docker.await;
                Ok(())
            }
        };
        // Gone with the server: a stale socket would refuse the next start's
        // connection test only after a timeout.
        let _ = std::fs::remove_file(&options.docker_socket);
        if let Some(path) = &options.cri_socket {
            let _ = std::fs::remove_file(path);
        }
        result
    })
}

/// Serves the CRI v1 ImageService on `listener` until `shutdown`
/// resolves, then lets the calls in flight finish.
#[cfg(feature = "cri")]
pub async fn serve_cri(
    store: Arc<Store>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(64)
        .add_service(cri::CriImageService::server(store))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            shutdown,
        )
        .await
        .map_err(|e| ServeError::Cri(e.to_string()))
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// A listening socket at `path`, mode 0600 (0660 and the group with a
/// socket group). A socket left by a server that died is replaced; one a
/// server answers on is refused.
pub fn bind(path: &Path, socket_group: Option<u32>) -> Result<UnixListener, ServeError> {
    let socket_error = |operation: &'static str| {
        move |source| ServeError::Socket {
            path: path.to_path_buf(),
            operation,
            source,
        }
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServeError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::SocketInUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(socket_error("remove the stale socket"))?;
    }
    // Bound in a private directory beside it and renamed into place, so
    // that the socket is never reachable with looser permissions.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let staging = tempdir_beside(parent.unwrap_or(Path::new("."))).map_err(socket_error("bind"))?;
    let staged = staging.join("docker.sock");
    let result = (|| {
        let listener = UnixListener::bind(&staged).map_err(socket_error("bind"))?;
        let mode = match socket_group {
            Some(group) => {
                std::os::unix::fs::chown(&staged, None, Some(group))
                    .map_err(socket_error("give its group to"))?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .map_err(socket_error("set the permissions of"))?;
        std::fs::rename(&staged, path).map_err(socket_error("move into place"))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// A new 0700 directory in `parent` (`.imgstore-serve-<pid>-<n>`).
fn tempdir_beside(parent: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    for attempt in 0..100u32 {
        let dir = parent.join(format!(".imgstore-serve-{}-{attempt}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free staging directory name",
    ))
}

/// Serves the Docker Engine API on `listener` until `shutdown` resolves,
/// then waits for the connections' requests in flight to finish.
pub async fn serve_docker(
    store: Arc<Store>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, a client that hung up: the
                // listener itself is fine; a pause keeps an error from spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            continue;
        };
        let store = Arc::clone(&store);
        let service = service_fn(move |request| docker::handle(Arc::clone(&store), request));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
