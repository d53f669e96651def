//! Concurrency campaign: 8 threads in each of 2 processes on one root,
//! loading, tagging, removing, untagging, pinning, listing and collecting
//! the same images at once, on both backends.
//!
//! On SQLite both processes keep their `Store` open for the whole run and
//! change the root at the same time (`store.lock` makes each change start
//! from the other's latest state). The fs backend lets one process open a
//! root at a time, so there each process opens the store, runs its 8
//! threads for a slice of time, checks and closes it while the other waits
//! for the lock. Checked:
//!
//! - only documented refusals come back as errors (`Conflict`: pinned, in
//!   several repositories, a concurrent change; `NotFound`: a name another
//!   thread removed first; `FailedPrecondition`: tagging or pinning an image
//!   no name reaches);
//! - after every slice, with this process's threads joined (and, on
//!   SQLite, its view refreshed): layer reference counts equal the recount
//!   from the images, every image's layers and every name's image exist,
//!   the pinned image (`base`) and every image with a child image are still
//!   there (on fs also every layer's blob; on SQLite that is checked at the
//!   end, when the other process has stopped changing them);
//! - at the end, `gc` then `fsck` find nothing.
//!
//! On PostgreSQL the two processes are two "nodes": separate roots (no
//! file in common, so no `store.lock`), one database, both open at once;
//! the database's advisory lock orders their changes. The server, one of
//! the campaign's own with durable settings, is restarted
//! `IMGSTORE_CONCURRENCY_PG_RESTARTS` times (default 2) while they work
//! (`pg_ctl restart`, `-m fast` and `-m immediate` in turn): calls retry
//! through it, and a change whose change lock the restart ended stops with
//! `Conflict` (the lock's fence) instead of interleaving with the other
//! node's.
//!
//! Bounded here (`IMGSTORE_CONCURRENCY_SECONDS`, default 8 per backend);
//! `cargo xtask stress concurrency [minutes]` runs the long one.

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::corpus;
use imgstore::backend::ErrorKind;
use imgstore::backend::testkit::Rng;
use imgstore::backend::testkit::crash::self_test_command;
use imgstore::image::ImageStore;
use imgstore::{Backend, Options, Store};

const ENV_ROOT: &str = "IMGSTORE_CONCURRENCY_CHILD_ROOT";
const ENV_BACKEND: &str = "IMGSTORE_CONCURRENCY_CHILD_BACKEND";
const ENV_SECONDS: &str = "IMGSTORE_CONCURRENCY_CHILD_SECONDS";
const ENV_SEED: &str = "IMGSTORE_CONCURRENCY_CHILD_SEED";
const ENV_CORPUS: &str = "IMGSTORE_CONCURRENCY_CHILD_CORPUS";
const ENV_REPORT: &str = "IMGSTORE_CONCURRENCY_CHILD_REPORT";
const ENV_DATABASE: &str = "IMGSTORE_CONCURRENCY_CHILD_DATABASE";

/// The database of the postgres campaign, for every open of this process.
static DATABASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

const THREADS: usize = 8;
const BASE: &str = "registry.demo.test/demo/base:v1";
const CHILD: &str = "registry.demo.test/demo/child:v1";
const INPUTS: &[&str] = &[
    "oci/main",
    "docker/base.docker.tar",
    "docker/child.docker.tar",
    "oci-archive/sibling.oci.tar",
    "oci/quirk-unterminated",
];
const TAGS: &[&str] = &[
    "example.test/c:0",
    "example.test/c:1",
    "example.test/c:2",
    "example.test/d:latest",
];

/// What one process did.
#[derive(Debug, Default, Clone)]
struct Tally {
    ops: u64,
    slices: u64,
    refusals: BTreeMap<String, u64>,
    problems: Vec<String>,
}

impl Tally {
    fn to_text(&self) -> String {
        let mut out = format!("ops {}\nslices {}\n", self.ops, self.slices);
        for (kind, n) in &self.refusals {
            out.push_str(&format!("refused {kind} {n}\n"));
        }
        for p in &self.problems {
            out.push_str(&format!("problem {}\n", p.replace('\n', " ")));
        }
        out
    }

    fn from_text(text: &str) -> Tally {
        let mut tally = Tally::default();
        for line in text.lines() {
            let words: Vec<&str> = line.splitn(3, ' ').collect();
            match words.as_slice() {
                ["ops", n] => tally.ops = n.parse().unwrap_or(0),
                ["slices", n] => tally.slices = n.parse().unwrap_or(0),
                ["refused", kind, n] => {
                    tally
                        .refusals
                        .insert((*kind).to_owned(), n.parse().unwrap_or(0));
                }
                ["problem", rest @ ..] => tally.problems.push(rest.join(" ")),
                _ => {}
            }
        }
        tally
    }

    fn add(&mut self, other: &Tally) {
        self.ops += other.ops;
        self.slices += other.slices;
        for (kind, n) in &other.refusals {
            *self.refusals.entry(kind.clone()).or_default() += n;
        }
        self.problems.extend(other.problems.iter().cloned());
    }
}

fn load(store: &Store, corpus: &Path, input: &str) -> imgstore::Result<()> {
    let path = corpus.join(input);
    if input.ends_with(".tar") {
        store.import_archive(path).map(drop)
    } else {
        store.import_oci_layout(path).map(drop)
    }
}

/// One random operation; `Err` only for an undocumented error.
fn one_op(store: &Store, corpus: &Path, rng: &mut Rng) -> Result<Option<ErrorKind>, String> {
    let names = store.names().map_err(|e| format!("names: {e}"))?;
    let pick = |rng: &mut Rng| -> Option<String> {
        (!names.is_empty()).then(|| names[rng.range(0, names.len() as u64) as usize].clone())
    };
    let dice = rng.range(0, 100);
    let (what, result): (String, imgstore::Result<()>) = match dice {
        0..18 => {
            let input = INPUTS[rng.range(0, INPUTS.len() as u64) as usize];
            (format!("load {input}"), load(store, corpus, input))
        }
        18..36 => {
            let Some(source) = pick(rng) else {
                return Ok(None);
            };
            let target = TAGS[rng.range(0, TAGS.len() as u64) as usize];
            (
                format!("tag {source} {target}"),
                store.tag(&source, target).map(drop),
            )
        }
        36..50 => {
            let Some(name) = pick(rng) else {
                return Ok(None);
            };
            if rng.chance(30) {
                let Ok(id) = store.resolve(&name) else {
                    return Ok(Some(ErrorKind::NotFound));
                };
                (
                    format!("rmi {id}"),
                    store.remove(id.as_str(), false).map(drop),
                )
            } else {
                (format!("rmi {name}"), store.remove(&name, false).map(drop))
            }
        }
        50..75 => {
            let images = store.images().expect("list images");
            for name in &names {
                match store.resolve(name) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("resolve {name}: {e}")),
                }
            }
            let _ = images.len();
            return Ok(None);
        }
        75..86 => {
            let Some(name) = pick(rng) else {
                return Ok(None);
            };
            if name == BASE {
                return Ok(None);
            }
            if rng.chance(50) {
                (format!("pin {name}"), store.pin(&name).map(drop))
            } else {
                (format!("unpin {name}"), store.unpin(&name).map(drop))
            }
        }
        86..95 => {
            let Some(name) = pick(rng) else {
                return Ok(None);
            };
            if name == BASE {
                return Ok(None);
            }
            (format!("untag {name}"), store.untag(&name).map(drop))
        }
        _ => ("gc".to_owned(), store.gc().map(drop)),
    };
    match result {
        Ok(()) => Ok(None),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::Conflict | ErrorKind::NotFound | ErrorKind::FailedPrecondition
            ) =>
        {
            Ok(Some(e.kind()))
        }
        Err(e) => Err(format!("{what}: {e} ({:?})", e.kind())),
    }
}

/// What must hold with no operation of this process running; `disk`
/// when no other process is changing the root either.
/// What must hold between slices while the other process goes on: fsck's
/// checks (every derived record recomputed and compared), which run under
/// the change lock and so see no change half done, and the pinned chain.
fn quiet_checks(store: &Store) -> Vec<String> {
    let mut problems: Vec<String> = match store.fsck(false) {
        Ok(report) => report
            .problems
            .iter()
            .map(|problem| format!("fsck: {problem}"))
            .collect(),
        Err(e) => vec![format!("fsck: {e}")],
    };
    match store.resolve(BASE) {
        Ok(id) if store.image_store().get(&id).is_ok() => {}
        other => problems.push(format!("the pinned image {BASE} is gone: {other:?}")),
    }
    for (id, _) in store.image_store().map().expect("map") {
        if let Ok(parent) = store.image_store().get_parent(&id)
            && store.image_store().get(&parent).is_err()
        {
            problems.push(format!("{parent}, the parent of {id}, was removed"));
        }
    }
    problems
}

fn open_store(root: &Path, backend: Backend) -> imgstore::Result<Store> {
    Store::open_with(
        root,
        Options {
            backend: Some(backend),
            database_url: DATABASE.get().cloned(),
            ..Options::default()
        },
    )
}

/// One process's share: 8 threads for a slice, check, again, on one open
/// store; the other process works on the same root at the same time (both
/// backends: nothing is kept in memory that its changes could make stale).
fn worker_process(root: &Path, backend: Backend, corpus: &Path, seconds: u64, seed: u64) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut kept: Option<Store> = None;
    while Instant::now() < deadline {
        let store = match kept.take() {
            Some(store) => store,
            None => match open_store(root, backend) {
                Ok(store) => store,
                Err(e) => {
                    tally.problems.push(format!("open: {e}"));
                    return tally;
                }
            },
        };
        let slice = Duration::from_millis(rng.range(100, 600));
        let shared = Mutex::new(Tally::default());
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let seed = rng.next_u64();
                let (store, shared) = (&store, &shared);
                scope.spawn(move || {
                    let mut rng = Rng::new(seed);
                    let mut local = Tally::default();
                    let until = Instant::now() + slice;
                    while Instant::now() < until {
                        local.ops += 1;
                        match one_op(store, corpus, &mut rng) {
                            Ok(None) => {}
                            Ok(Some(kind)) => {
                                *local.refusals.entry(format!("{kind:?}")).or_default() += 1
                            }
                            Err(problem) => local.problems.push(problem),
                        }
                    }
                    shared.lock().expect("tally").add(&local);
                });
            }
        });
        tally.add(&shared.into_inner().expect("tally"));
        tally.slices += 1;
        tally.problems.extend(quiet_checks(&store));
        if !tally.problems.is_empty() {
            return tally;
        }
        kept = Some(store);
    }
    tally
}

/// Re-invoked by the campaign as the second process; returns at once otherwise.
#[test]
fn concurrency_child() {
    let (Some(root), Some(backend), Some(seconds), Some(seed), Some(corpus), Some(report)) = (
        std::env::var_os(ENV_ROOT),
        std::env::var(ENV_BACKEND).ok(),
        std::env::var(ENV_SECONDS).ok(),
        std::env::var(ENV_SEED).ok(),
        std::env::var_os(ENV_CORPUS),
        std::env::var_os(ENV_REPORT),
    ) else {
        return;
    };
    let backend: Backend = backend.parse().expect("a backend name");
    if let Ok(url) = std::env::var(ENV_DATABASE)
        && !url.is_empty()
    {
        let _ = DATABASE.set(url);
    }
    let tally = worker_process(
        Path::new(&root),
        backend,
        Path::new(&corpus),
        seconds.parse().expect("seconds"),
        seed.parse().expect("seed"),
    );
    std::fs::write(report, tally.to_text()).expect("report");
}

fn campaign(backend: Backend) {
    let corpus = corpus();
    let seconds: u64 = std::env::var("IMGSTORE_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("IMGSTORE_CONCURRENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Rng::from_entropy().next_u64());
    let work = tempfile::tempdir().expect("tempdir");
    let root: PathBuf = work.path().join("store");
    // The second process's root: the same one, except for the two nodes
    // of a postgres store, which share only the database.
    let mut child_root = root.clone();
    let restarts: u64 = std::env::var("IMGSTORE_CONCURRENCY_PG_RESTARTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut server = None;
    if backend == Backend::Postgres {
        let url = if restarts > 0 {
            let own = imgstore_postgres::testserver::TestServer::start(true)
                .expect("a durable PostgreSQL server of the campaign's own");
            let url = own.create_database();
            server = Some(own);
            url
        } else {
            imgstore_postgres::testserver::TestServer::shared().create_database()
        };
        let _ = DATABASE.set(url);
        child_root = work.path().join("second-node");
    }
    {
        let store = open_store(&root, backend).expect("open the store");
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        store.pin(BASE).expect("pin");
        store.set_parent(CHILD, BASE).expect("parent");
    }
    let report = work.path().join("child-report");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let child_seed = rng.next_u64();
    let mut child = self_test_command("concurrency_child")
        .env(ENV_ROOT, &child_root)
        .env(ENV_BACKEND, backend.name())
        .env(ENV_DATABASE, DATABASE.get().cloned().unwrap_or_default())
        .env(ENV_SECONDS, seconds.to_string())
        .env(ENV_SEED, child_seed.to_string())
        .env(ENV_CORPUS, &corpus)
        .env(ENV_REPORT, &report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the second process");
    let worker_seed = rng.next_u64();
    let mut restarted = 0;
    let mut tally = std::thread::scope(|scope| {
        if let Some(server) = &server {
            let restarted = &mut restarted;
            scope.spawn(move || {
                for n in 0..restarts {
                    std::thread::sleep(Duration::from_secs(seconds) / (restarts as u32 + 1));
                    let mode = if n % 2 == 0 {
                        imgstore_postgres::testserver::StopMode::Fast
                    } else {
                        imgstore_postgres::testserver::StopMode::Immediate
                    };
                    server.restart(mode).expect("restart the server");
                    *restarted += 1;
                }
            });
        }
        worker_process(&root, backend, &corpus, seconds, worker_seed)
    });
    let status = child.wait().expect("wait for the second process");
    let theirs = Tally::from_text(&std::fs::read_to_string(&report).unwrap_or_default());
    if !status.success() {
        tally
            .problems
            .push(format!("the second process failed: {status}"));
    }
    tally.add(&theirs);
    let every = imgstore::ImageQuery {
        all: true,
        filters: Vec::new(),
    };
    let store = open_store(&root, backend).expect("open the store");
    if let Err(e) = store.list_images(&every) {
        tally.problems.push(format!("listing: {e}"));
    }
    // Alone on the root now: the whole-store checks, blobs included.
    tally.problems.extend(reliability::problems(&store));
    tally.problems.extend(quiet_checks(&store));
    match store.gc() {
        Ok(_) => {}
        Err(e) => tally.problems.push(format!("final gc: {e}")),
    }
    tally.problems.extend(reliability::problems(&store));
    tally.problems.extend(quiet_checks(&store));
    tally.problems.extend(reliability::fsck_problems(&store));
    eprintln!(
        "concurrency campaign on {backend:?}: {THREADS} threads x 2 processes for {:.1?}: {} operations in {} slices \
         (second process: {} operations, {} slices), documented refusals {:?}, {} images and {} layers at the end, \
         {restarted} server restarts, {} problems (seed {seed})",
        started.elapsed(),
        tally.ops,
        tally.slices,
        theirs.ops,
        theirs.slices,
        tally.refusals,
        store.images().expect("list images").len(),
        store.layers().len().expect("layer records"),
        tally.problems.len(),
    );
    if !tally.problems.is_empty() {
        let kept = work.keep();
        panic!(
            "concurrency campaign on {backend:?} (seed {seed}, store kept in {}):\n  {}",
            kept.display(),
            tally.problems.join("\n  ")
        );
    }
}

#[test]
fn eight_threads_two_processes_lose_no_reference_sqlite() {
    campaign(Backend::Sqlite);
}

#[test]
fn eight_threads_two_processes_lose_no_reference_fs() {
    campaign(Backend::Fs);
}

#[test]
fn eight_threads_two_nodes_on_one_database_lose_no_reference_postgres() {
    campaign(Backend::Postgres);
}
