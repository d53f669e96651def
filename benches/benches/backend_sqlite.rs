//! Criterion group `backend`, SQLite half: `backend/sqlite/*`.
//!
//! Workload: ~1.5 KiB JSON image configs (the size of a real Docker config).
//! Targets (see crates/sqlite): `get` at most 5 us; single `set` at least
//! 10k/s with `synchronous=NORMAL`; `set_batch_10k` at least 25k configs/s;
//! two reader threads at least 1.7x one thread's read rate while a writer
//! commits (compare `parallel_read_1thread` with `parallel_read_2threads`).
//!
//! The `floor_*` functions run bare rusqlite on the same data in the same run
//! (a prepared point read; one INSERT per WAL commit, NORMAL and FULL; 10k
//! INSERTs in one transaction), so the backend's overhead reads as a ratio
//! that holds however loaded the machine is.
//!
//! Run: `cargo bench -p imgstore-benches --bench backend_sqlite -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use imgstore_backend::StoreBackend;
use imgstore_digest::Digest;
use imgstore_sqlite::{SqliteBackend, SqliteOptions, Synchronous};
use rusqlite::Connection;

/// A ~1.5 KiB image config in Docker's shape, unique per `n`.
fn config(n: u64) -> Vec<u8> {
    let mut json = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","N={n}"],"Cmd":["/bin/sh","-c","echo {n}"],"WorkingDir":"/srv","Labels":{{"org.opencontainers.image.title":"bench-{n}"}}}},"rootfs":{{"type":"layers","diff_ids":["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}},"history":["#
    );
    let mut step = 0;
    while json.len() < 1450 {
        json.push_str(&format!(
            r#"{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop)  ENV STEP_{step}={n}","empty_layer":true}},"#
        ));
        step += 1;
    }
    json.push_str(
        r#"{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) WORKDIR /srv"}]}"#,
    );
    json.into_bytes()
}

fn open(dir: &tempfile::TempDir, synchronous: Synchronous) -> SqliteBackend {
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    SqliteBackend::open_with(dir.path().join("store.db"), options).expect("open the sqlite store")
}

/// A store holding `count` configs, and their digests.
fn filled(count: u64) -> (tempfile::TempDir, SqliteBackend, Vec<Digest>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = open(&dir, Synchronous::Normal);
    let configs: Vec<Vec<u8>> = (0..count).map(config).collect();
    let refs: Vec<&[u8]> = configs.iter().map(Vec::as_slice).collect();
    let digests = store.set_many(&refs).expect("fill the store");
    (dir, store, digests)
}

fn get(c: &mut Criterion) {
    let (dir, store, digests) = filled(10_000);
    let mut group = c.benchmark_group("backend/sqlite");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            next = (next + 7919) % digests.len();
            black_box(store.get(&digests[next]).expect("get"))
        })
    });
    // The same lookup on one plain connection: no pool, no hashing.
    let raw = Connection::open(dir.path().join("store.db")).expect("open directly");
    group.bench_function("floor_point_read", |b| {
        b.iter(|| {
            next = (next + 7919) % digests.len();
            let mut stmt = raw
                .prepare_cached("SELECT data FROM content WHERE digest = ?1")
                .expect("prepare");
            let data: Vec<u8> = stmt
                .query_row([digests[next].as_str()], |row| row.get(0))
                .expect("read");
            black_box(data)
        })
    });
    group.finish();
}

/// A bare WAL database with a table shaped like `content`.
fn floor_db(dir: &tempfile::TempDir, synchronous: &str) -> Connection {
    let conn = Connection::open(dir.path().join("floor.db")).expect("open floor db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, v BLOB)",
    )
    .expect("create floor table");
    conn
}

fn floor_insert(conn: &Connection, n: u64, data: &[u8]) {
    let key = format!("sha256:{n:064x}");
    conn.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(rusqlite::params![key, data]))
        .expect("floor insert");
}

fn floors(c: &mut Criterion) {
    let mut group = c.benchmark_group("backend/sqlite");
    group.throughput(Throughput::Elements(1));
    for (name, synchronous) in [
        ("floor_commit_normal", "NORMAL"),
        ("floor_commit_full", "FULL"),
    ] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let conn = floor_db(&dir, synchronous);
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    (n, config(n))
                },
                |(n, data)| floor_insert(&conn, n, &data),
                BatchSize::SmallInput,
            )
        });
    }
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    let dir = tempfile::tempdir().expect("a temp dir");
    let conn = floor_db(&dir, "NORMAL");
    let mut round = 0u64;
    group.bench_function("floor_batch_10k", |b| {
        b.iter_batched(
            || {
                round += 1;
                (0..10_000)
                    .map(|i| {
                        let n = round * 1_000_000 + i;
                        (n, config(n))
                    })
                    .collect::<Vec<_>>()
            },
            |configs| {
                conn.execute_batch("BEGIN").expect("begin");
                for (n, data) in &configs {
                    floor_insert(&conn, *n, data);
                }
                conn.execute_batch("COMMIT").expect("commit");
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn set(c: &mut Criterion) {
    let mut group = c.benchmark_group("backend/sqlite");
    group.throughput(Throughput::Elements(1));
    for (name, synchronous) in [
        ("set", Synchronous::Normal),
        ("set_full", Synchronous::Full),
    ] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open(&dir, synchronous);
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    config(n)
                },
                |data| black_box(store.set(&data).expect("set")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn set_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("backend/sqlite");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = open(&dir, Synchronous::Normal);
    let mut round = 0u64;
    group.bench_function("set_batch_10k", |b| {
        b.iter_batched(
            || {
                round += 1;
                (0..10_000)
                    .map(|i| config(round * 1_000_000 + i))
                    .collect::<Vec<_>>()
            },
            |configs| {
                let refs: Vec<&[u8]> = configs.iter().map(Vec::as_slice).collect();
                black_box(store.set_many(&refs).expect("set_many"))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Reads spread over `threads` threads while another thread commits one new
/// config every millisecond (a busy node pulling images); the time is wall
/// time for all `iters` reads, so throughput is the aggregate read rate.
fn parallel_read(c: &mut Criterion) {
    let (_dir, store, digests) = filled(10_000);
    let store = Arc::new(store);
    let digests = Arc::new(digests);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, commits) = (store.clone(), stop.clone(), commits.clone());
        thread::spawn(move || {
            let mut n = 1u64 << 40;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                store.set(&config(n)).expect("writer set");
                commits.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let mut group = c.benchmark_group("backend/sqlite");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        let name = if threads == 1 {
            "parallel_read_1thread".to_owned()
        } else {
            format!("parallel_read_{threads}threads")
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads);
                let start = Instant::now();
                thread::scope(|scope| {
                    for t in 0..threads {
                        let (store, digests) = (&store, &digests);
                        scope.spawn(move || {
                            let mut next = (t as usize * 4999) % digests.len();
                            for _ in 0..per_thread {
                                next = (next + 7919) % digests.len();
                                black_box(store.get(&digests[next]).expect("get"));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer thread panicked");
    assert!(
        commits.load(Ordering::Relaxed) > 0,
        "the writer never committed"
    );
}

criterion_group!(backend, get, set, set_batch, parallel_read, floors);
criterion_main!(backend);
