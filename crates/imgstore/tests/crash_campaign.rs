//! Whole-system crash campaign: a child process runs a random mix of
//! load (OCI layout, oci-archive, docker save), tag, rmi, pin/unpin and gc
//! on the facade, and writes each acknowledged operation to an fsynced
//! journal before it starts the next; the parent kills it with SIGKILL at
//! a random moment, then checks the store:
//!
//! - it opens;
//! - every acknowledged operation is there: each name points at the image
//!   the journal says, removed names stay removed, pins are kept; the one
//!   operation in flight at the kill either happened or did not;
//! - layer reference counts equal the recount from the images, every
//!   image's layers exist, every name resolves;
//! - `gc` succeeds and `fsck` then finds nothing.
//!
//! The next child reopens the same store, so recovery is exercised too
//! (some kills land while the child is still opening). Bounded here (CI:
//! `IMGSTORE_CRASH_KILLS`, default 50 per backend, within
//! `IMGSTORE_CRASH_SECONDS`, default 40); `cargo xtask stress crash [kills]`
//! runs thousands. `IMGSTORE_CRASH_SEED` replays a run. On PostgreSQL the
//! store lives in a database of the test's server: a kill cuts the child's
//! connections, and the server rolls back what was in flight and drops its
//! change lock.

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{corpus, open};
use imgstore::backend::ErrorKind;
use imgstore::backend::testkit::Rng;
use imgstore::backend::testkit::crash::{read_new_lines, self_test_command};
use imgstore::{Backend, Imported, Store};

const ENV_DIR: &str = "IMGSTORE_STORE_CRASH_DIR";
const ENV_JOURNAL: &str = "IMGSTORE_STORE_CRASH_JOURNAL";
const ENV_BACKEND: &str = "IMGSTORE_STORE_CRASH_BACKEND";
const ENV_RUN: &str = "IMGSTORE_STORE_CRASH_RUN";
const ENV_CORPUS: &str = "IMGSTORE_STORE_CRASH_CORPUS";
const ENV_DATABASE: &str = "IMGSTORE_STORE_CRASH_DATABASE";

/// The database of the postgres campaign, for every open of this process.
static DATABASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

const PINNED_LABEL: &str = "io.cri-containerd.pinned";

/// What the child loads, by short name.
const INPUTS: &[(&str, &str)] = &[
    ("oci-main", "oci/main"),
    ("docker-base", "docker/base.docker.tar"),
    ("docker-child", "docker/child.docker.tar"),
    ("oci-archive", "oci-archive/sibling.oci.tar"),
    ("quirk", "oci/quirk-unterminated"),
];

/// Names the child tags with.
const TAGS: &[&str] = &[
    "example.test/crash:0",
    "example.test/crash:1",
    "example.test/crash:2",
    "example.test/other:latest",
];

fn load(store: &Store, corpus: &Path, input: &str) -> imgstore::Result<Vec<Imported>> {
    let relative = INPUTS
        .iter()
        .find(|(name, _)| *name == input)
        .map(|(_, path)| *path)
        .unwrap_or(input);
    let path = corpus.join(relative);
    if relative.ends_with(".tar") {
        store.import_archive(path)
    } else {
        store.import_oci_layout(path)
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Fs => "fs",
        Backend::Postgres => "postgres",
    }
}

// ---- the child ----------------------------------------------------------

struct Journal {
    file: File,
    run: u64,
}

impl Journal {
    /// Appends one line; `sync` makes it durable before the next operation.
    fn line(&mut self, seq: u64, text: &str, sync: bool) {
        let line = format!("{} {seq} {text}\n", self.run);
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            eprintln!("crash child: journal: {e}");
            std::process::exit(3);
        }
    }
}

/// Re-invoked by the campaign as the child; returns at once otherwise.
#[test]
fn crash_child() {
    let (Some(dir), Some(journal), Some(backend), Some(run), Some(corpus)) = (
        std::env::var_os(ENV_DIR),
        std::env::var_os(ENV_JOURNAL),
        std::env::var(ENV_BACKEND).ok(),
        std::env::var(ENV_RUN).ok(),
        std::env::var_os(ENV_CORPUS),
    ) else {
        return;
    };
    let corpus = PathBuf::from(corpus);
    let backend: Backend = backend.parse().expect("a backend name");
    if let Ok(url) = std::env::var(ENV_DATABASE)
        && !url.is_empty()
    {
        let _ = DATABASE.set(url);
    }
    let (run, seed) = run
        .split_once(':')
        .and_then(|(r, s)| Some((r.parse().ok()?, s.parse().ok()?)))
        .expect("run:seed");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)
        .expect("journal");
    let mut journal = Journal { file, run };
    let store = match Store::open_with(
        &dir,
        imgstore::Options {
            backend: Some(backend),
            database_url: DATABASE.get().cloned(),
            ..imgstore::Options::default()
        },
    ) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("crash child: open failed: {e}");
            std::process::exit(3);
        }
    };
    journal.line(0, "open", true);
    let mut rng = Rng::new(seed);
    for seq in 1.. {
        let names = store.names().unwrap_or_default();
        let pick = |rng: &mut Rng, items: &[String]| -> Option<String> {
            (!items.is_empty()).then(|| items[rng.range(0, items.len() as u64) as usize].clone())
        };
        let dice = rng.range(0, 100);
        let (begin, result): (String, imgstore::Result<String>) = match dice {
            0..30 => {
                let input = INPUTS[rng.range(0, INPUTS.len() as u64) as usize].0;
                journal.line(seq, &format!("begin load {input}"), false);
                let result = load(&store, &corpus, input).map(|imported| {
                    let mut out = String::from("load");
                    for image in imported {
                        for name in image.names {
                            out.push_str(&format!(" {name}={}", image.id));
                        }
                    }
                    out
                });
                (input.to_owned(), result)
            }
            30..55 => {
                let Some(source) = pick(&mut rng, &names) else {
                    continue;
                };
                let target = TAGS[rng.range(0, TAGS.len() as u64) as usize];
                journal.line(seq, &format!("begin tag {source} {target}"), false);
                let result = store
                    .tag(&source, target)
                    .map(|id| format!("tag {target}={id}"));
                (source, result)
            }
            55..75 => {
                let Some(name) = pick(&mut rng, &names) else {
                    continue;
                };
                journal.line(seq, &format!("begin rmi {name}"), false);
                let result = store.remove(&name, false).map(|_| format!("rmi {name}"));
                (name, result)
            }
            75..85 => {
                let Some(name) = pick(&mut rng, &names) else {
                    continue;
                };
                let pin = rng.chance(60);
                let verb = if pin { "pin" } else { "unpin" };
                journal.line(seq, &format!("begin {verb} {name}"), false);
                let result = if pin {
                    store.pin(&name)
                } else {
                    store.unpin(&name)
                }
                .map(|_| format!("{verb} {name}"));
                (name, result)
            }
            _ => {
                journal.line(seq, "begin gc", false);
                (String::new(), store.gc().map(|_| "gc".to_owned()))
            }
        };
        match result {
            Ok(done) => journal.line(seq, &format!("ok {done}"), true),
            // Documented refusals (a pinned image, a name gone): no change.
            Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                journal.line(seq, &format!("refused {:?}", e.kind()), true)
            }
            Err(e) => {
                eprintln!("crash child: {begin}: {e} ({:?})", e.kind());
                std::process::exit(3);
            }
        }
    }
}

// ---- the parent ---------------------------------------------------------

/// What the names must be, from the acknowledged operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    names: BTreeMap<String, String>,
    pinned: BTreeSet<String>,
}

impl Model {
    fn of(store: &Store) -> Model {
        let mut model = Model::default();
        for record in store.refs().list(store.namespace(), &[]).expect("names") {
            if let Ok(id) = store.resolve(&record.name) {
                model.names.insert(record.name.clone(), id.to_string());
            }
            if record.labels.get(PINNED_LABEL).map(String::as_str) == Some("pinned") {
                model.pinned.insert(record.name.clone());
            }
        }
        model
    }

    fn apply(&mut self, words: &[&str]) {
        match words {
            ["load", pairs @ ..] => {
                for pair in pairs {
                    if let Some((name, id)) = pair.split_once('=') {
                        self.names.insert(name.to_owned(), id.to_owned());
                    }
                }
            }
            ["tag", pair] => {
                if let Some((name, id)) = pair.split_once('=') {
                    self.names.insert(name.to_owned(), id.to_owned());
                }
            }
            ["rmi", name] => {
                self.names.remove(*name);
                self.pinned.remove(*name);
            }
            ["pin", name] => {
                self.pinned.insert((*name).to_owned());
            }
            ["unpin", name] => {
                self.pinned.remove(*name);
            }
            _ => {}
        }
    }
}

/// Names the operation in flight at the kill may have changed, with the
/// value each may have if it did (`None`: removed).
fn uncertain(
    words: &[&str],
    model: &Model,
    inputs: &BTreeMap<String, Vec<(String, String)>>,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match words {
        ["load", input] => {
            for (name, id) in inputs.get(*input).into_iter().flatten() {
                out.insert(name.clone(), Some(id.clone()));
            }
        }
        ["tag", source, target] => {
            let id = model.names.get(*source).cloned();
            out.insert((*target).to_owned(), id);
        }
        ["rmi", name] => {
            out.insert((*name).to_owned(), None);
        }
        ["pin" | "unpin", name] => {
            out.insert((*name).to_owned(), model.names.get(*name).cloned());
        }
        _ => {}
    }
    out
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// What a campaign did.
#[derive(Debug, Default)]
struct Report {
    kills: u64,
    kills_during_open: u64,
    acknowledged: u64,
    refused: u64,
    in_flight: u64,
    slowest_open: Duration,
}

fn campaign(backend: Backend) {
    let corpus = corpus();
    let kills = env_number("IMGSTORE_CRASH_KILLS", 50);
    let budget = Duration::from_secs(env_number("IMGSTORE_CRASH_SECONDS", 40));
    let seed = env_number("IMGSTORE_CRASH_SEED", Rng::from_entropy().next_u64());
    let max_run_ms = env_number("IMGSTORE_CRASH_MAX_RUN_MS", 400);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("store");
    let journal = work.path().join("journal");
    if backend == Backend::Postgres {
        let _ = DATABASE.set(imgstore_postgres::testserver::TestServer::shared().create_database());
    }
    let stderr_path = work.path().join("child.stderr");

    // The names each input gives, from a scratch import.
    let mut inputs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    {
        let scratch = work.path().join("scratch");
        // Names do not depend on the backend: a postgres campaign's scratch
        // import needs no second database.
        let local = if backend == Backend::Postgres {
            Backend::Sqlite
        } else {
            backend
        };
        let store = open(&scratch, local);
        for (input, _) in INPUTS {
            let imported = load(&store, &corpus, input).expect("scratch import");
            let pairs = imported
                .iter()
                .flat_map(|i| i.names.iter().map(|n| (n.clone(), i.id.to_string())))
                .collect();
            inputs.insert((*input).to_owned(), pairs);
        }
    }

    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    let mut report = Report::default();
    let mut offset = 0u64;
    let fail = |work: tempfile::TempDir, run: u64, problems: &[String]| -> ! {
        let kept = work.keep();
        panic!(
            "crash campaign on {backend:?}: after kill {run} (seed {seed}, store kept in {}):\n  {}",
            kept.display(),
            problems.join("\n  ")
        );
    };
    let mut work = Some(work);
    for run in 1..=kills {
        if started.elapsed() >= budget {
            break;
        }
        let stderr = File::create(&stderr_path).expect("stderr file");
        let mut command = self_test_command("crash_child");
        command
            .env(ENV_DIR, &dir)
            .env(ENV_JOURNAL, &journal)
            .env(ENV_BACKEND, backend_name(backend))
            .env(ENV_RUN, format!("{run}:{}", rng.next_u64()))
            .env(ENV_CORPUS, &corpus)
            .env(ENV_DATABASE, DATABASE.get().cloned().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let spawned = Instant::now();
        let mut child = command.spawn().expect("spawn the child");
        let during_open = rng.chance(12);
        let mut lines = Vec::new();
        let ready = format!("{run} 0 open");
        if during_open {
            std::thread::sleep(Duration::from_micros(rng.range(0, 30_000)));
        } else {
            let deadline = spawned + Duration::from_secs(60);
            loop {
                lines.extend(read_new_lines(&journal, &mut offset));
                // A child killed in the middle of a journal line (seen once in
                // 1000 kills) leaves it unterminated, and the next child's
                // first line ends it: "<torn line><run> 0 open".
                if lines.iter().any(|line| line.ends_with(&ready)) {
                    report.slowest_open = report.slowest_open.max(spawned.elapsed());
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    let w = work.take().expect("work dir");
                    fail(
                        w,
                        run,
                        &[format!(
                            "the child exited ({status}) before opening:\n{text}"
                        )],
                    );
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let w = work.take().expect("work dir");
                    fail(
                        w,
                        run,
                        &["the child did not open the store within 60 s".to_owned()],
                    );
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, max_run_ms.max(1))));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let w = work.take().expect("work dir");
            fail(
                w,
                run,
                &[format!("the child stopped by itself ({status}):\n{text}")],
            );
        }
        let _ = child.kill();
        let _ = child.wait();
        lines.extend(read_new_lines(&journal, &mut offset));
        report.kills += 1;
        if !lines.contains(&ready) {
            report.kills_during_open += 1;
        }

        // Replay the journal: acknowledged operations into the model.
        let mut problems = Vec::new();
        let mut pending: Option<Vec<String>> = None;
        for line in &lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                [_, _, "open"] => {}
                [_, _, "begin", rest @ ..] => {
                    pending = Some(rest.iter().map(|s| (*s).to_owned()).collect())
                }
                [_, _, "ok", rest @ ..] => {
                    pending = None;
                    report.acknowledged += 1;
                    model.apply(rest);
                }
                [_, _, "refused", ..] => {
                    pending = None;
                    report.refused += 1;
                }
                _ => problems.push(format!("unreadable journal line {line:?}")),
            }
        }
        let in_flight = pending
            .as_ref()
            .map(|words| {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                uncertain(&words, &model, &inputs)
            })
            .unwrap_or_default();
        if pending.is_some() {
            report.in_flight += 1;
        }

        let every = imgstore::ImageQuery {
            all: true,
            filters: Vec::new(),
        };
        let options = imgstore::Options {
            backend: Some(backend),
            database_url: DATABASE.get().cloned(),
            ..imgstore::Options::default()
        };
        let store = match Store::open_with(&dir, options) {
            Ok(store) => store,
            Err(e) => {
                let w = work.take().expect("work dir");
                fail(w, run, &[format!("the store does not open: {e}")]);
            }
        };
        if let Err(e) = store.list_images(&every) {
            problems.push(format!("listing: {e}"));
        }
        let actual = Model::of(&store);
        let all: BTreeSet<&String> = model.names.keys().chain(actual.names.keys()).collect();
        for name in all {
            let want = model.names.get(name);
            let got = actual.names.get(name);
            match in_flight.get(name) {
                Some(maybe) => {
                    if got != want && got != maybe.as_ref() {
                        problems.push(format!(
                            "{name}: {got:?}, expected {want:?} or (in flight) {maybe:?}"
                        ));
                    }
                }
                None => {
                    if got != want {
                        problems.push(format!(
                            "{name}: {got:?}, the acknowledged operations say {want:?}"
                        ));
                    }
                    if model.pinned.contains(name) != actual.pinned.contains(name) {
                        problems.push(format!(
                            "{name}: pinned {}, the acknowledged operations say {}",
                            actual.pinned.contains(name),
                            model.pinned.contains(name)
                        ));
                    }
                }
            }
        }
        problems.extend(reliability::problems(&store));
        match store.gc() {
            Ok(_) => {}
            Err(e) => problems.push(format!("gc: {e}")),
        }
        problems.extend(reliability::problems(&store));
        problems.extend(reliability::fsck_problems(&store));
        if Model::of(&store) != actual {
            problems.push("gc changed names or pins".to_owned());
        }
        drop(store);
        if !problems.is_empty() {
            let w = work.take().expect("work dir");
            fail(w, run, &problems);
        }
        model = actual;
    }
    eprintln!(
        "crash campaign on {backend:?}: {} kills ({} during open) in {:.1?}, {} acknowledged operations intact, \
         {} documented refusals, {} in flight found whole or absent, 0 stores that failed to open, \
         0 fsck findings after gc; slowest child open {:.1?}; \
         {} names at the end (seed {seed})",
        report.kills,
        report.kills_during_open,
        started.elapsed(),
        report.acknowledged,
        report.refused,
        report.in_flight,
        report.slowest_open,
        model.names.len(),
    );
}

#[test]
fn crash_kills_lose_no_acknowledged_operation_sqlite() {
    campaign(Backend::Sqlite);
}

#[test]
fn crash_kills_lose_no_acknowledged_operation_fs() {
    campaign(Backend::Fs);
}

#[test]
fn crash_kills_lose_no_acknowledged_operation_postgres() {
    campaign(Backend::Postgres);
}
