//! Criterion group `backend`: the storage backends on ~1.5 KiB JSON image
//! configs. One function per backend; `backend/fs/*` here (the SQLite half,
//! `backend/sqlite/*`, is in `backend_sqlite.rs`).
//!
//! Targets for `imgstore-fs`: `get` <= 6 us; `get_metadata` <= 4 us;
//! `walk_per_entry` <= 1 us (a walk of 10k entries, reported per entry);
//! `set` within 1.2x of `floor_write_fsync_rename_dirsync`, the cost of the
//! bare system calls a durable atomic write needs (create, write, fsync,
//! rename, fsync of the directory), measured in the same run. Beside `get`
//! and `walk_per_entry`, `floor_open_read_close` and `floor_readdir_per_entry`
//! show what the system calls alone cost on the machine of the run.
//!
//! Run: `cargo bench -p imgstore-benches --bench backend -- --warm-up-time 1 --measurement-time 3`

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_fs::FsBackend;

/// Entries in the pre-filled stores.
const ENTRIES: u64 = 10_000;

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

/// An fs store holding `ENTRIES` configs, each with a `parent` metadata key,
/// laid out on disk directly (as Docker would have left them: no fsync per
/// file, so the fill takes a second, not a minute), then opened.
fn filled_fs() -> (tempfile::TempDir, FsBackend, Vec<Digest>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("imagedb");
    let content = root.join("content/sha256");
    let metadata = root.join("metadata/sha256");
    fs::create_dir_all(&content).expect("content dir");
    fs::create_dir_all(&metadata).expect("metadata dir");
    let mut digests = Vec::new();
    let mut parent: Option<Digest> = None;
    for n in 0..ENTRIES {
        let data = config(n);
        let digest = Digest::from_bytes(&data);
        fs::write(content.join(digest.encoded()), &data).expect("write config");
        let meta = metadata.join(digest.encoded());
        fs::create_dir(&meta).expect("metadata dir");
        let value = parent.as_ref().map_or("", Digest::as_str);
        fs::write(meta.join("parent"), value).expect("write parent");
        parent = Some(digest.clone());
        digests.push(digest);
    }
    let store = FsBackend::open(&root).expect("open the fs store");
    (dir, store, digests)
}

/// The floor under a durable atomic write: what `set` cannot avoid.
fn floor_write(dir: &Path, dir_file: &File, name: &str, data: &[u8]) {
    let temp = dir.join(format!(".tmp-{name}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .expect("create");
    file.write_all(data).expect("write");
    file.sync_all().expect("fsync");
    drop(file);
    fs::rename(&temp, dir.join(name)).expect("rename");
    dir_file.sync_all().expect("fsync dir");
}

fn fs_backend(c: &mut Criterion) {
    let (_dir, store, digests) = filled_fs();
    let mut group = c.benchmark_group("backend/fs");

    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 1) % digests.len();
            black_box(store.get(&digests[i]).expect("get"))
        })
    });

    let mut i = 0usize;
    group.bench_function("get_metadata", |b| {
        b.iter(|| {
            i = (i + 1) % digests.len();
            black_box(
                store
                    .get_metadata(&digests[i], "parent")
                    .expect("get_metadata"),
            )
        })
    });

    // What `get` cannot avoid: open, read, close (no hashing, no checks).
    let content = store.root().join("content/sha256");
    let paths: Vec<_> = digests.iter().map(|d| content.join(d.encoded())).collect();
    let mut buf = vec![0u8; 16 * 1024];
    group.bench_function("floor_open_read_close", |b| {
        b.iter(|| {
            i = (i + 1) % paths.len();
            let mut file = File::open(&paths[i]).expect("open");
            black_box(file.read(&mut buf).expect("read"))
        })
    });

    group.bench_function("contains", |b| {
        b.iter(|| {
            i = (i + 1) % digests.len();
            black_box(store.contains(&digests[i]).expect("contains"))
        })
    });

    // The reported time is per entry: each walk visits ENTRIES digests.
    group.bench_function("walk_per_entry", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut seen = 0u64;
                let started = Instant::now();
                store
                    .walk(&mut |d| {
                        black_box(d);
                        seen += 1;
                        Ok(())
                    })
                    .expect("walk");
                total += started.elapsed();
                assert_eq!(seen, ENTRIES);
            }
            total / ENTRIES as u32
        })
    });

    // What `walk` cannot avoid: reading the directory, per entry.
    group.bench_function("floor_readdir_per_entry", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let count = fs::read_dir(&content).expect("read_dir").count();
                total += started.elapsed();
                black_box(count);
            }
            total / ENTRIES as u32
        })
    });

    // `set` and its floor alternate in one run, on the same disk, same size.
    let floor_dir = tempfile::tempdir().expect("a temp dir");
    let floor_file = File::open(floor_dir.path()).expect("open floor dir");
    let mut n = ENTRIES;
    group.bench_function("floor_write_fsync_rename_dirsync", |b| {
        b.iter(|| {
            n += 1;
            floor_write(floor_dir.path(), &floor_file, &n.to_string(), &config(n));
        })
    });
    group.bench_function("set", |b| {
        b.iter(|| {
            n += 1;
            black_box(store.set(&config(n)).expect("set"))
        })
    });
    group.bench_function("set_existing", |b| {
        b.iter(|| {
            i = (i + 1) % digests.len();
            black_box(store.set(&config(i as u64)).expect("set"))
        })
    });

    let mut batch = Batch::new();
    batch.put(
        "names",
        "docker.io/library/busybox:latest",
        digests[0].as_str().as_bytes().to_vec(),
    );
    store.apply(&batch).expect("apply");
    group.bench_function("get_record", |b| {
        b.iter(|| {
            black_box(
                store
                    .get_record("names", "docker.io/library/busybox:latest")
                    .expect("get_record"),
            )
        })
    });
    group.bench_function("apply_put", |b| {
        b.iter(|| {
            n += 1;
            let mut batch = Batch::new();
            batch.put("names", &format!("bench:{}", n % 1000), config(n));
            store.apply(&batch).expect("apply")
        })
    });
    group.finish();
}

criterion_group!(benches, fs_backend);
criterion_main!(benches);
