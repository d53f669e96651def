//! `SharedDigestSet` and the thread-safety of `DigestSet`.

mod common;

use std::sync::Arc;
use std::thread;

use common::{Outcome, outcome, random_sha256};
use imgstore_digestset::{DigestSet, SharedDigestSet};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn digest_set_and_shared_set_are_send_and_sync() {
    assert_send_sync::<DigestSet>();
    assert_send_sync::<SharedDigestSet>();
}

#[test]
fn shared_set_concurrent_writers_and_readers() {
    let set = Arc::new(SharedDigestSet::new());
    let batches: Vec<_> = (0..4).map(|t| random_sha256(250, 100 + t)).collect();
    let writers: Vec<_> = batches
        .iter()
        .cloned()
        .map(|batch| {
            let set = Arc::clone(&set);
            thread::spawn(move || {
                for d in &batch {
                    set.add(d);
                    assert_eq!(outcome(set.lookup(d.as_str())), Outcome::Found(d.clone()));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(set.len(), 1000);
    for d in batches.iter().flatten() {
        assert_eq!(
            outcome(set.lookup(&d.encoded()[..16])),
            Outcome::Found(d.clone())
        );
    }
}

#[test]
fn shared_set_str_methods_and_snapshot() {
    let set = SharedDigestSet::new();
    let d = random_sha256(1, 7).remove(0);
    set.add_str(d.as_str()).unwrap();
    assert!(set.add_str("sha256:abc").is_err());
    assert!(set.contains(&d));
    assert_eq!(set.digests(), std::slice::from_ref(&d));
    assert_eq!(set.short_code_table(12)[&d], &d.encoded()[..12]);
    assert_eq!(set.read().iter().count(), 1);
    assert_eq!(set.remove_str(d.as_str()), Ok(true));
    assert!(set.is_empty());
    set.write().add(&d);
    assert_eq!(set.into_inner().len(), 1);
}
