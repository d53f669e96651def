//! The backend figures of docs/ARCHITECTURE.md ("The PostgreSQL backend"),
//! against a durable server of its own (fsync on) over its unix socket:
//! `get` of a 1.5 KiB blob, single-client batch commits (one put with a
//! create-only precondition each), streaming a 64 MiB layer in and out as
//! chunk rows (what the backend does) and, for the comparison that chose
//! them, as a large object written and read 1 MiB at a time (`lo_put`,
//! `lo_get`) through the same client.
//!
//! ```text
//! cargo run --release -p imgstore-postgres --features testkit --example figures
//! ```

use std::io::Read;
use std::time::{Duration, Instant};

use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_postgres::testserver::TestServer;
use imgstore_postgres::{PostgresBackend, PostgresOptions};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start(true)?;
    let store = PostgresBackend::open(&server.create_database())?;

    let blob: Vec<u8> = (0..1536).map(|i| (i % 251) as u8).collect();
    let digest = store.set(&blob)?;
    let mut samples = Vec::new();
    for _ in 0..5000 {
        let began = Instant::now();
        let got = store.get(&digest)?;
        samples.push(began.elapsed());
        assert_eq!(got.len(), blob.len());
    }
    println!("get 1.5 KiB: median {:?}", median(samples));

    let url = server.create_database();
    for synchronous_commit in [true, false] {
        let options = PostgresOptions {
            synchronous_commit,
            ..PostgresOptions::default()
        };
        let store = PostgresBackend::open_with(&url, options)?;
        let batches = 5000;
        let began = Instant::now();
        for n in 0..batches {
            let key = format!("docker.io/library/image:{n}:{synchronous_commit}");
            let mut batch = Batch::new();
            batch.require_absent("names", &key);
            batch.put("names", &key, b"sha256:0123456789abcdef".to_vec());
            store.apply(&batch)?;
        }
        let elapsed = began.elapsed();
        println!(
            "batch commits, one client, synchronous_commit {}: {:.0}/s ({batches} in {elapsed:.2?})",
            if synchronous_commit { "on" } else { "off" },
            batches as f64 / elapsed.as_secs_f64()
        );
    }

    let layer: Vec<u8> = (0..64 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let began = Instant::now();
    let info = store.write_blob(None, &mut layer.as_slice())?;
    let written = began.elapsed();
    let began = Instant::now();
    let mut back = Vec::new();
    store.open_blob(&info.digest)?.read_to_end(&mut back)?;
    let read = began.elapsed();
    assert_eq!(back.len(), layer.len());
    println!(
        "64 MiB layer: write_blob {written:.2?} ({:.0} MiB/s), open_blob read {read:.2?} ({:.0} MiB/s)",
        64.0 / written.as_secs_f64(),
        64.0 / read.as_secs_f64()
    );

    // The alternative: one large object, written and read in 1 MiB pieces.
    let mut client = postgres::Client::connect(&server.create_database(), postgres::NoTls)?;
    let began = Instant::now();
    let mut tx = client.transaction()?;
    let oid: u32 = tx.query_one("SELECT lo_create(0)", &[])?.get(0);
    for (n, piece) in layer.chunks(1 << 20).enumerate() {
        let offset = (n as i64) << 20;
        tx.execute("SELECT lo_put($1, $2, $3)", &[&oid, &offset, &piece])?;
    }
    tx.commit()?;
    let written = began.elapsed();
    let began = Instant::now();
    let mut back = Vec::with_capacity(layer.len());
    for n in 0..64i64 {
        let piece: Vec<u8> = client
            .query_one(
                "SELECT lo_get($1, $2, $3)",
                &[&oid, &(n << 20), &(1i32 << 20)],
            )?
            .get(0);
        back.extend_from_slice(&piece);
    }
    let read = began.elapsed();
    assert_eq!(back, layer);
    println!(
        "64 MiB large object: lo_put {written:.2?} ({:.0} MiB/s), lo_get {read:.2?} ({:.0} MiB/s)",
        64.0 / written.as_secs_f64(),
        64.0 / read.as_secs_f64()
    );
    Ok(())
}
