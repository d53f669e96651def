//! Fault campaign: every write, sync (fsync, SQLite commit), rename and read
//! of an operation fails in turn, with ENOSPC, EIO or EACCES, on both
//! backends. After each:
//!
//! - the store in memory is what it was before the call when the call
//!   failed, and what a fault-free run gives when it succeeded (a fault
//!   on a best-effort step, such as deleting a freed layer blob, is
//!   swallowed and left for gc);
//! - its invariants hold (layer counts equal the recount from images, every
//!   image's layers exist, every name resolves);
//! - it reopens, with the same images, names and layers;
//! - `gc` succeeds, leaves it consistent (fsck clean), and a second `gc`
//!   removes nothing;
//! - the failed call, retried without a fault, succeeds and gives the same
//!   result as the fault-free run.
//!
//! Every write, sync and rename point is tried; reads every
//! `IMGSTORE_FAULT_READ_STEP`-th (default 4; 1 tries them all, as
//! `cargo xtask stress faults` does).
//! Needs `--features testkit` (on in `cargo xtask ci`).

#![cfg(feature = "testkit")]

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{corpus, open};
use imgstore::backend::StoreBackend;
use imgstore::backend::testkit::fault::{FaultClass, FaultError, FaultPlan, FaultyBackend};
use imgstore::fs::FsBackend;
use imgstore::sqlite::SqliteBackend;
use imgstore::{AnyBackend, Backend, Store};
use reliability::{State, state as snapshot};

type Op = fn(&Store, &Path) -> imgstore::Result<()>;

struct Scenario {
    name: &'static str,
    prepare: Op,
    op: Op,
}

const BASE: &str = "registry.demo.test/demo/base:v1";
const SIBLING: &str = "registry.demo.test/demo/sibling:v1";
const CHILD: &str = "registry.demo.test/demo/child:v1";

fn import_docker_base(store: &Store, corpus: &Path) -> imgstore::Result<()> {
    store
        .import_archive(corpus.join("docker/base.docker.tar"))
        .map(drop)
}

fn import_main(store: &Store, corpus: &Path) -> imgstore::Result<()> {
    store.import_oci_layout(corpus.join("oci/main")).map(drop)
}

fn main_with_garbage(store: &Store, corpus: &Path) -> imgstore::Result<()> {
    import_main(store, corpus)?;
    // Manifests and layers freed by rmi, and a stray blob, for gc to find.
    store.remove(SIBLING, false)?;
    store.untag(CHILD)?;
    store.content().set(b"a blob nothing uses")?;
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "import oci layout (4 images) over a docker-save image",
        prepare: import_docker_base,
        op: import_main,
    },
    Scenario {
        name: "import docker-save archive sharing 3 layers",
        prepare: import_docker_base,
        op: |store, corpus| {
            store
                .import_archive(corpus.join("docker/child.docker.tar"))
                .map(drop)
        },
    },
    Scenario {
        name: "import oci-archive",
        prepare: import_docker_base,
        op: |store, corpus| {
            store
                .import_archive(corpus.join("oci-archive/sibling.oci.tar"))
                .map(drop)
        },
    },
    Scenario {
        name: "tag (new name)",
        prepare: import_main,
        op: |store, _| store.tag(BASE, "example.test/copy:1").map(drop),
    },
    Scenario {
        name: "tag (move a name)",
        prepare: import_main,
        op: |store, _| store.tag(BASE, SIBLING).map(drop),
    },
    Scenario {
        name: "rmi by name (image and its own layer freed)",
        prepare: import_main,
        op: |store, _| store.remove(SIBLING, false).map(drop),
    },
    Scenario {
        name: "rmi by id (forced, several names)",
        prepare: |store, corpus| {
            import_main(store, corpus)?;
            store.tag(CHILD, "example.test/child:2").map(drop)
        },
        op: |store, _| {
            let id = store.resolve(CHILD)?;
            store.remove(id.as_str(), true).map(drop)
        },
    },
    Scenario {
        name: "pin",
        prepare: import_main,
        op: |store, _| store.pin(BASE).map(drop),
    },
    Scenario {
        name: "gc (freed layers, manifests, a stray blob)",
        prepare: main_with_garbage,
        op: |store, _| store.gc().map(drop),
    },
    Scenario {
        name: "fsck --repair (then gc)",
        prepare: main_with_garbage,
        op: |store, _| store.fsck(true).map(drop),
    },
];

fn open_faulty(root: &Path, backend: Backend, plan: &Arc<FaultPlan>) -> imgstore::Result<Store> {
    let wrap = |inner: AnyBackend| {
        AnyBackend::Faulty(Box::new(FaultyBackend::new(inner, Arc::clone(plan))))
    };
    let (content, images) = match backend {
        Backend::Sqlite => (
            AnyBackend::Sqlite(SqliteBackend::open(root.join("content.db"))?),
            AnyBackend::Sqlite(SqliteBackend::open(root.join("images.db"))?),
        ),
        Backend::Fs => (
            AnyBackend::Fs(FsBackend::open(root.join("content"))?),
            AnyBackend::Fs(FsBackend::open(root.join("imagedb"))?),
        ),
        Backend::Postgres => panic!("the fault campaign runs on the local backends"),
    };
    Store::open_with_backends(root, "default", wrap(content), wrap(images))
}

/// Figures of one scenario on one backend.
#[derive(Debug, Default)]
struct Figures {
    points: [u64; 4],
    failed: u64,
    swallowed: u64,
}

struct Campaign {
    corpus: PathBuf,
    read_step: u64,
    problems: Vec<String>,
}

impl Campaign {
    fn check(&mut self, context: &str, store: &Store, want: &State, what: &str, strict: bool) {
        let got = snapshot(store);
        let unreferenced_only = || {
            got.images == want.images
                && got.names == want.names
                && want
                    .layers
                    .iter()
                    .all(|(k, v)| got.layers.get(k) == Some(v) || got.layers.contains_key(k))
        };
        if &got != want && (strict || !unreferenced_only()) {
            self.problems.push(format!(
                "{context}: {what}: the store differs from what it should be\n    got  {got:?}\n    want {want:?}"
            ));
        }
        for p in reliability::problems(store) {
            self.problems.push(format!("{context}: {what}: {p}"));
        }
    }

    fn run(&mut self, scenario: &Scenario, backend: Backend) -> Figures {
        let work = tempfile::tempdir().expect("tempdir");
        let template = work.path().join("template");
        {
            let store = open(&template, backend);
            (scenario.prepare)(&store, &self.corpus)
                .unwrap_or_else(|e| panic!("{}: prepare: {e}", scenario.name));
        }
        let before = snapshot(&open(&template, backend));
        reliability::wait_quiet(&template);

        // Dry run: counts the points, gives the state after success.
        let plan = Arc::new(FaultPlan::new());
        let dry = work.path().join("dry");
        reliability::copy_tree(&template, &dry);
        let mut figures = Figures::default();
        let after = {
            let store = open_faulty(&dry, backend, &plan).expect("open faulty");
            plan.reset();
            (scenario.op)(&store, &self.corpus)
                .unwrap_or_else(|e| panic!("{}: fault-free run: {e}", scenario.name));
            for class in FaultClass::ALL {
                figures.points[class as usize] = plan.count(class);
            }
            snapshot(&store)
        };
        let context = format!("{} on {backend:?}, no fault", scenario.name);
        self.check(&context, &open(&dry, backend), &after, "reopened", true);

        for class in FaultClass::ALL {
            let step = if class == FaultClass::Read {
                self.read_step
            } else {
                1
            };
            for nth in (1..=figures.points[class as usize]).step_by(step as usize) {
                let error = FaultError::ALL[(nth % 3) as usize];
                let context = format!(
                    "{} on {backend:?}, {class} #{nth} fails with {error:?}",
                    scenario.name
                );
                let root = work.path().join(format!("{class}-{nth}"));
                reliability::copy_tree(&template, &root);
                let store = open_faulty(&root, backend, &plan).expect("open faulty");
                plan.arm(class, nth, error);
                let result = (scenario.op)(&store, &self.corpus);
                let fired = plan.fired();
                plan.reset();
                if fired.is_none() {
                    self.problems
                        .push(format!("{context}: the point was not reached ({result:?})"));
                }
                let want = match &result {
                    Ok(()) => {
                        figures.swallowed += 1;
                        &after
                    }
                    Err(_) => {
                        figures.failed += 1;
                        &before
                    }
                };
                // A swallowed fault may leave unreferenced layers and blobs
                // for gc: the state must be exact after gc, consistent before.
                let strict = result.is_err();
                self.check(&context, &store, want, "in memory after the call", strict);
                drop(store);
                let store = open(&root, backend);
                self.check(&context, &store, want, "reopened", strict);
                match store.gc() {
                    Ok(_) => {}
                    Err(e) => self.problems.push(format!("{context}: gc failed: {e}")),
                }
                self.check(&context, &store, want, "after gc", true);
                for p in reliability::fsck_problems(&store) {
                    self.problems.push(format!("{context}: after gc: {p}"));
                }
                match store.gc() {
                    Ok(report) if report.blobs_removed == 0 && report.layers_removed == 0 => {}
                    Ok(report) => self
                        .problems
                        .push(format!("{context}: a second gc removed more: {report:?}")),
                    Err(e) => self.problems.push(format!("{context}: second gc: {e}")),
                }
                if result.is_err() {
                    match (scenario.op)(&store, &self.corpus) {
                        Ok(()) => self.check(&context, &store, &after, "retried", true),
                        Err(e) => self.problems.push(format!("{context}: retry failed: {e}")),
                    }
                }
                drop(store);
                let _ = std::fs::remove_dir_all(&root);
            }
        }
        figures
    }
}

fn campaign(backend: Backend) {
    let corpus = corpus();
    let read_step = std::env::var("IMGSTORE_FAULT_READ_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4u64)
        .max(1);
    let mut campaign = Campaign {
        corpus,
        read_step,
        problems: Vec::new(),
    };
    let mut total = [0u64; 4];
    let mut runs = 0u64;
    {
        for scenario in SCENARIOS {
            let figures = campaign.run(scenario, backend);
            eprintln!(
                "fault campaign: {:<55} {backend:<6?} write {:>3} sync {:>3} rename {:>3} read {:>4} | failed cleanly {:>4}, fault swallowed {:>3}",
                scenario.name,
                figures.points[0],
                figures.points[1],
                figures.points[2],
                figures.points[3],
                figures.failed,
                figures.swallowed,
            );
            for (t, p) in total.iter_mut().zip(figures.points) {
                *t += p;
            }
            runs += figures.failed + figures.swallowed;
        }
    }
    eprintln!(
        "fault campaign on {backend:?}: {runs} injected runs; points: write {}, sync {}, rename {}, read {} (read step {read_step}); {} problems",
        total[0],
        total[1],
        total[2],
        total[3],
        campaign.problems.len()
    );
    for p in &campaign.problems {
        eprintln!("PROBLEM {}", p.lines().next().unwrap_or(""));
    }
    let shown: Vec<&String> = campaign.problems.iter().take(6).collect();
    assert!(
        campaign.problems.is_empty(),
        "{} problems, first ones:\n{}",
        campaign.problems.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_fault_point_leaves_a_consistent_sqlite_store() {
    campaign(Backend::Sqlite);
}

#[test]
fn every_fault_point_leaves_a_consistent_fs_store() {
    campaign(Backend::Fs);
}

/// Regression: a config that could not be read (EIO) was taken for a bad
/// image, and `fsck --repair` then deleted the healthy image. Open reads no
/// config now (the image records are the index), so the read failures are
/// injected into fsck's own reads: whatever it reports, its repair never
/// deletes a healthy image or name.
#[test]
fn fsck_repair_keeps_an_image_a_read_failure_hid() {
    let corpus = corpus();
    for backend in [Backend::Sqlite, Backend::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        import_main(&open(dir.path(), backend), &corpus).expect("import");
        reliability::wait_quiet(dir.path());
        let plan = Arc::new(FaultPlan::new());
        let mut failed_some = false;
        for nth in 1..=40 {
            let Ok(store) = open_faulty(dir.path(), backend, &plan) else {
                continue;
            };
            plan.arm(FaultClass::Read, nth, FaultError::Io);
            let report = store.fsck(true);
            failed_some |= report.as_ref().map_or(true, |r| !r.is_clean());
            plan.reset();
            drop(store);
            let reopened = open(dir.path(), backend);
            assert_eq!(
                reopened.images().expect("list images").len(),
                4,
                "{backend:?}, read #{nth}: {report:?}"
            );
            assert_eq!(reopened.names().expect("names").len(), 4, "{report:?}");
            assert!(reopened.fsck(false).expect("fsck").is_clean());
        }
        assert!(
            failed_some,
            "{backend:?}: no read fault reached fsck's reads"
        );
    }
}
