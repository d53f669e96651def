//! The record store's snapshot index and log overlay: what a reopened
//! backend (or one following another's writes) reads is what was written,
//! across compactions, and a snapshot that cannot be indexed still opens.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use imgstore_backend::{Batch, RecordStore};
use imgstore_digest::Algorithm;
use imgstore_fs::FsBackend;

type Model = BTreeMap<(String, String), Vec<u8>>;

const BUCKETS: [&str; 3] = ["a", "names", "z"];

/// xorshift64: a fixed sequence, so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key(rng: &mut Rng) -> String {
    // Keys share prefixes ("p03/", "p03/1"), so prefix scans cross both
    // snapshot and log records.
    format!("p{:02}/{}", rng.below(40), rng.below(60))
}

/// Everything `store` holds, read every way the backend offers, checked
/// against `model`.
fn check(store: &FsBackend, model: &Model, rng: &mut Rng, when: &str) {
    for bucket in BUCKETS {
        let expected: Vec<(String, Vec<u8>)> = model
            .iter()
            .filter(|((b, _), _)| b == bucket)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        let mut scanned = Vec::new();
        store
            .scan_records(bucket, "", &mut |k, v| {
                scanned.push((k.to_owned(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(scanned, expected, "{when}: scan of {bucket}");
        for _ in 0..20 {
            let prefix = match rng.below(4) {
                0 => format!("p{:02}", rng.below(40)),
                1 => format!("p{:02}/", rng.below(40)),
                2 => format!("p{:02}/{}", rng.below(40), rng.below(6)),
                _ => format!("p{}", rng.below(4)),
            };
            let limit = rng.below(8) as usize;
            let want: Vec<_> = expected
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .take(limit)
                .cloned()
                .collect();
            let got = store.first_records(bucket, &prefix, limit).unwrap();
            assert_eq!(
                got, want,
                "{when}: first {limit} of {bucket} under {prefix}"
            );
        }
        for _ in 0..50 {
            let k = key(rng);
            assert_eq!(
                store.get_record(bucket, &k).unwrap(),
                model.get(&(bucket.to_owned(), k.clone())).cloned(),
                "{when}: {bucket}/{k}"
            );
        }
    }
}

#[test]
fn reopening_after_many_batches_reads_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = root.join("records/log");
    let snapshot = root.join("records/snapshot");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model = Model::new();
    let mut writer = FsBackend::open(&root).unwrap();
    // Follows the writer's batches and compactions without reopening.
    let follower = FsBackend::open(&root).unwrap();
    let mut compactions = 0;
    for round in 0..12 {
        for _ in 0..40 {
            let mut batch = Batch::new();
            for _ in 0..rng.below(12) + 1 {
                let bucket = BUCKETS[rng.below(3) as usize];
                let k = key(&mut rng);
                if rng.below(4) == 0 {
                    batch.delete(bucket, &k);
                    model.remove(&(bucket.to_owned(), k));
                } else {
                    // Values large enough for the log to be compacted a few times.
                    let len = rng.below(1500) as usize;
                    let value = format!("{round}:{}", "v".repeat(len)).into_bytes();
                    batch.put(bucket, &k, value.clone());
                    model.insert((bucket.to_owned(), k), value);
                }
            }
            let before = fs::metadata(&log).unwrap().len();
            writer.apply(&batch).unwrap();
            if fs::metadata(&log).unwrap().len() < before {
                compactions += 1;
            }
        }
        check(
            &follower,
            &model,
            &mut rng,
            &format!("round {round}, follower"),
        );
        check(&writer, &model, &mut rng, &format!("round {round}, writer"));
        if round % 3 == 2 {
            drop(writer);
            writer = FsBackend::open(&root).unwrap();
            check(
                &writer,
                &model,
                &mut rng,
                &format!("round {round}, reopened"),
            );
        }
    }
    assert!(compactions >= 2, "compacted {compactions} times");
    assert!(snapshot.exists());
    assert!(
        fs::metadata(&log).unwrap().len() > 16,
        "the last checks read a snapshot and a log"
    );
    drop((writer, follower));
    let store = FsBackend::open(&root).unwrap();
    check(&store, &model, &mut rng, "last reopen");
}

fn op(out: &mut Vec<u8>, bucket: &str, key: &str, value: Option<&[u8]>) {
    out.push(if value.is_some() { 1 } else { 2 });
    out.push(bucket.len() as u8);
    out.extend_from_slice(bucket.as_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    if let Some(value) = value {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
}

/// Writes a version 1 snapshot (sha256), as earlier versions did, and an
/// empty log of its generation.
fn write_snapshot(records: &Path, generation: u64, payload: &[u8]) {
    let mut bytes = b"IMGRSNP1".to_vec();
    bytes.extend_from_slice(&generation.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Algorithm::Sha256.from_bytes(payload).hash_bytes());
    bytes.extend_from_slice(payload);
    fs::write(records.join("snapshot"), bytes).unwrap();
    let mut log = b"IMGRLOG1".to_vec();
    log.extend_from_slice(&generation.to_le_bytes());
    fs::write(records.join("log"), log).unwrap();
}

fn all(store: &FsBackend, bucket: &str) -> Vec<(String, String)> {
    store
        .first_records(bucket, "", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_snapshot_out_of_order_is_decoded_whole_and_rewritten_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    drop(FsBackend::open(&root).unwrap());
    let records = root.join("records");
    // Keys out of order, buckets out of order, a key twice (the later one
    // counts) and a delete: nothing this code writes, all of it decodable.
    let mut payload = Vec::new();
    op(&mut payload, "b", "z", Some(b"1"));
    op(&mut payload, "b", "a", Some(b"2"));
    op(&mut payload, "a", "m", Some(b"3"));
    op(&mut payload, "b", "k", Some(b"old"));
    op(&mut payload, "b", "k", Some(b"4"));
    op(&mut payload, "b", "gone", Some(b"5"));
    op(&mut payload, "b", "gone", None);
    write_snapshot(&records, 7, &payload);
    let expected_b = pairs(&[("a", "2"), ("k", "4"), ("z", "1")]);
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(all(&store, "b"), expected_b);
    assert_eq!(all(&store, "a"), pairs(&[("m", "3")]));
    assert_eq!(store.get_record("b", "gone").unwrap(), None);
    assert_eq!(
        store.get_record("b", "k").unwrap().as_deref(),
        Some(&b"4"[..])
    );
    // Opening rewrote it in order, as the next generation, in version 2.
    let snapshot = fs::read(records.join("snapshot")).unwrap();
    assert_eq!(snapshot[8..16], 8u64.to_le_bytes());
    assert_eq!(&snapshot[..8], b"IMGRSNP2");
    let mut batch = Batch::new();
    batch.put("b", "c", b"6".to_vec()).delete("b", "z");
    store.apply(&batch).unwrap();
    drop(store);
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(
        all(&store, "b"),
        pairs(&[("a", "2"), ("c", "6"), ("k", "4")])
    );
    assert_eq!(all(&store, "a"), pairs(&[("m", "3")]));
}

#[test]
fn a_snapshot_in_order_is_read_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    drop(FsBackend::open(&root).unwrap());
    let records = root.join("records");
    let mut payload = Vec::new();
    for (bucket, key, value) in [
        ("a", "0", "first"),
        ("a", "x", "1"),
        ("b", "p", "2"),
        ("b", "p/1", "3"),
        ("b", "p/2", "4"),
        ("b", "q", "5"),
    ] {
        op(&mut payload, bucket, key, Some(value.as_bytes()));
    }
    write_snapshot(&records, 3, &payload);
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(
        store.first_records("b", "p/", 5).unwrap(),
        vec![
            ("p/1".to_owned(), b"3".to_vec()),
            ("p/2".to_owned(), b"4".to_vec())
        ]
    );
    assert_eq!(store.first_records("b", "p", 2).unwrap().len(), 2);
    assert_eq!(
        store.get_record("a", "0").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(store.get_record("c", "x").unwrap(), None);
    // Indexed as it is: not rewritten on open.
    let snapshot = fs::read(records.join("snapshot")).unwrap();
    assert_eq!(snapshot[8..16], 3u64.to_le_bytes());
    // A delete and a put over the snapshot, seen before and after a reopen.
    let mut batch = Batch::new();
    batch.delete("b", "p/1").put("b", "p/0", b"6".to_vec());
    store.apply(&batch).unwrap();
    let expected = pairs(&[("p", "2"), ("p/0", "6"), ("p/2", "4"), ("q", "5")]);
    assert_eq!(all(&store, "b"), expected);
    drop(store);
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(all(&store, "b"), expected);
}

#[test]
fn a_damaged_snapshot_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    drop(FsBackend::open(&root).unwrap());
    let records = root.join("records");
    let mut payload = Vec::new();
    op(&mut payload, "a", "x", Some(b"1"));
    write_snapshot(&records, 1, &payload);
    let path = records.join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let e = FsBackend::open(&root).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // A payload that passes its checksum but does not decode.
    write_snapshot(&records, 1, &payload[..payload.len() - 1]);
    let e = FsBackend::open(&root).unwrap_err();
    assert!(e.to_string().contains("does not decode"), "{e}");
    // Version 2 (CRC-32): written by the compaction of a snapshot out of
    // order on open. Damage to the payload or to the generation is found.
    let mut payload = Vec::new();
    op(&mut payload, "a", "y", Some(b"2"));
    op(&mut payload, "a", "x", Some(b"1"));
    write_snapshot(&records, 1, &payload);
    drop(FsBackend::open(&root).unwrap());
    let good = fs::read(&path).unwrap();
    assert_eq!(&good[..8], b"IMGRSNP2");
    for at in [good.len() - 1, 8, 16, 30] {
        let mut bytes = good.clone();
        bytes[at] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let e = FsBackend::open(&root).unwrap_err();
        assert!(e.to_string().contains("checksum"), "byte {at}: {e}");
    }
    let mut bytes = good.clone();
    bytes[2] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let e = FsBackend::open(&root).unwrap_err();
    assert!(e.to_string().contains("header"), "{e}");
    fs::write(&path, &good).unwrap();
    let store = FsBackend::open(&root).unwrap();
    assert_eq!(all(&store, "a"), pairs(&[("x", "1"), ("y", "2")]));
}
