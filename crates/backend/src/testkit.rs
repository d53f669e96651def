//! The conformance suite every backend must pass unchanged (feature `testkit`).
//!
//! A backend crate describes how to open its store in a directory and how to
//! damage it on disk by implementing [`Harness`], then gets one `#[test]` per
//! case, each named after the behaviour it checks:
//!
//! ```ignore
//! struct Fs;
//!
//! impl imgstore_backend::testkit::Harness for Fs {
//!     type Backend = imgstore_fs::FsBackend;
//!     fn open(&self, dir: &Path) -> imgstore_backend::Result<Self::Backend> {
//!         imgstore_fs::FsBackend::open(dir)
//!     }
//!     fn corrupt(&self, dir: &Path, _: &Self::Backend, digest: &Digest, bytes: &[u8]) {
//!         std::fs::write(dir.join("content/sha256").join(digest.encoded()), bytes).unwrap();
//!     }
//!     fn plant_invalid_entry(&self, dir: &Path, _: &Self::Backend) {
//!         std::fs::write(dir.join("content/sha256/foobar"), b"x").unwrap();
//!     }
//! }
//!
//! imgstore_backend::conformance_tests!(Fs);
//! ```
//!
//! [`run_all`] runs every case in one test instead, and each case is also a
//! public function (`testkit::content::set_returns_sha256_digest(&harness)`).
//! The cases follow moby's `image/fs_test.go` (PEER_SEMANTICS §4) by error
//! *kind*, plus what the contract of [`StoreBackend`] and [`RecordStore`]
//! adds: concurrency, streaming, batches and preconditions, reopening.
//!
//! [`crash`] is the crash harness: a writer child process killed with
//! SIGKILL over and over, and the checks the parent runs after each kill.
//! [`fault`] is the fault injector: a backend wrapper that fails the Nth
//! write, sync, rename or read with ENOSPC, EIO or EACCES.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use imgstore_digest::Digest;

use crate::{Error, ErrorKind, RecordStore, Result, StoreBackend};

pub mod blob;
pub mod content;
pub mod crash;
pub mod fault;
pub mod metadata;
pub mod records;
mod rng;

pub use rng::{Generator, Rng};

/// How the suite opens and damages one backend.
///
/// Every case gets a fresh, empty directory; the backend keeps all of its
/// state somewhere inside it (in the directory itself or in a child of it).
/// A case drops the backend before it reopens the same directory, except
/// the `record_*` cases about several instances, which open a second
/// backend over the directory while the first is open: a backend must allow
/// that (processes share a store without reopening it).
pub trait Harness {
    /// The backend under test.
    type Backend: StoreBackend + RecordStore;

    /// Opens (creating if needed) the store kept in `dir`.
    fn open(&self, dir: &Path) -> Result<Self::Backend>;

    /// Replaces the stored bytes of `digest` with `bytes` behind the
    /// backend's back (a disk or database fault), so that the next read finds
    /// content that no longer hashes to its digest.
    fn corrupt(&self, dir: &Path, backend: &Self::Backend, digest: &Digest, bytes: &[u8]);

    /// Adds, behind the backend's back, one content entry whose name is not a
    /// valid digest (moby's test writes a file `content/sha256/foobar`).
    /// [`StoreBackend::walk`] must skip it. A backend whose storage cannot
    /// hold such an entry does nothing.
    fn plant_invalid_entry(&self, dir: &Path, backend: &Self::Backend);

    /// The fault point (see [`fault`]) of the first sync a `write_blob` of
    /// a few MiB reaches: for a backend writing a temp file, waiting for
    /// its early write-back; a database backend names its own.
    fn first_sync_of_a_large_write(&self) -> &'static str {
        "write-back: wait for a written chunk"
    }
}

/// Emits one `#[test]` per conformance case for a [`Harness`] value, so a
/// failure is reported under the name of the behaviour that broke.
///
/// ```ignore
/// imgstore_backend::conformance_tests!(MyHarness::default());
/// ```
///
/// The expression is evaluated once per test. Put the invocation in its own
/// module if the test names could clash with others of the same file.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::__testkit_cases! { __testkit_emit_tests { $harness } }
    };
}

/// Runs store-level test functions against several backends: one module per
/// backend, one `#[test]` per case, each calling `case(open)` where `open`
/// opens that backend in a directory. For the stores above the backends
/// (layers, images, names), so each test body is written once.
///
/// ```ignore
/// fn open_fs(dir: &Path) -> Arc<FsBackend> { ... }
/// fn open_sqlite(dir: &Path) -> Arc<SqliteBackend> { ... }
/// fn register_is_idempotent<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) { ... }
///
/// imgstore_backend::backend_matrix!([register_is_idempotent, ...] sqlite => open_sqlite, fs => open_fs);
/// ```
#[macro_export]
macro_rules! backend_matrix {
    ($cases:tt $($backend:ident => $open:ident),+ $(,)?) => {
        $( $crate::backend_matrix!(@backend $backend $open $cases); )+
    };
    (@backend $backend:ident $open:ident [$($case:ident),* $(,)?]) => {
        mod $backend {
            $( #[test] fn $case() { super::$case(super::$open) } )*
        }
    };
}

/// The one list of cases; calls `$callback! { { args } module::case, ... }`.
#[doc(hidden)]
#[macro_export]
macro_rules! __testkit_cases {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! {
            { $($args)* }
            content::set_returns_sha256_digest,
            content::set_get_random_8k_round_trip,
            content::set_empty_is_invalid_argument,
            content::set_twice_keeps_one_copy,
            content::set_same_content_from_8_threads,
            content::get_absent_is_not_found,
            content::get_corrupted_is_data_corruption,
            content::contains_and_size,
            content::delete_removes_only_that_content,
            content::delete_missing_is_not_found_and_creates_nothing,
            content::delete_removes_metadata,
            content::walk_visits_each_digest_once,
            content::walk_empty_store_visits_nothing,
            content::walk_skips_invalid_entries,
            content::walk_stops_on_first_error,
            content::content_and_metadata_survive_reopen,
            metadata::metadata_set_get_per_digest,
            metadata::metadata_overwrite_replaces_value,
            metadata::metadata_missing_key_is_not_found_naming_key,
            metadata::metadata_on_absent_content_is_not_found,
            metadata::metadata_delete_missing_key_is_ok,
            metadata::metadata_bad_keys_refused_before_storage,
            blob::write_blob_32mib_round_trips,
            blob::write_blob_across_write_back_chunks_round_trips,
            blob::write_blob_failed_write_back_stores_nothing,
            blob::write_blob_matches_set,
            blob::deferred_writes_are_stored_at_once_and_survive_a_batch,
            blob::write_blob_wrong_expected_is_corruption_and_stores_nothing,
            blob::write_blob_expected_of_other_algorithm,
            blob::write_blob_empty_is_invalid_argument,
            blob::write_blob_reader_error_stores_nothing,
            blob::open_blob_absent_is_not_found,
            blob::open_blob_corrupted_fails_at_end,
            records::record_put_get_delete,
            records::record_empty_value_and_odd_keys,
            records::record_buckets_are_separate,
            records::record_scan_prefix_in_order,
            records::record_scan_stops_on_first_error,
            records::record_batch_later_put_wins,
            records::record_preconditions_map_to_kinds,
            records::record_preconditions_see_state_before_batch,
            records::record_failed_batch_changes_nothing,
            records::record_concurrent_create_only_one_wins,
            records::record_concurrent_compare_and_swap_counts_exactly,
            records::record_invalid_bucket_or_key_refused,
            records::records_survive_reopen,
            records::records_many_batches_survive_reopen,
            records::record_first_records_bounded_ordered_prefixed,
            records::record_change_counter_sees_every_batch,
            records::record_two_instances_see_each_others_batches,
            records::record_two_instances_compare_and_swap_counts_exactly,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __testkit_emit_tests {
    ({ $harness:expr } $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::$module::$case(&$harness)
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __testkit_emit_list {
    ({ $harness:ty } $($module:ident :: $case:ident),* $(,)?) => {
        vec![
            $(
                $crate::testkit::Case {
                    name: concat!(stringify!($module), "::", stringify!($case)),
                    run: $crate::testkit::$module::$case::<$harness>,
                },
            )*
        ]
    };
}

/// One named conformance case.
pub struct Case<H> {
    /// `module::case`, e.g. `content::get_absent_is_not_found`.
    pub name: &'static str,
    /// Runs the case; panics with a message when the backend fails it.
    pub run: fn(&H),
}

/// Every case, in the order [`run_all`] runs them.
pub fn cases<H: Harness>() -> Vec<Case<H>> {
    crate::__testkit_cases! { __testkit_emit_list { H } }
}

/// Runs every case against `harness`, printing each name to stderr first (so
/// the one that panics is the last one shown).
pub fn run_all<H: Harness>(harness: &H) {
    for case in cases::<H>() {
        eprintln!("testkit: {}", case.name);
        (case.run)(harness);
    }
}

// ---- helpers shared by the cases -------------------------------------------

/// A fresh temporary directory for one case.
pub(crate) fn scratch() -> tempfile::TempDir {
    match tempfile::Builder::new()
        .prefix("imgstore-testkit-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => panic!("testkit: cannot create a temporary directory: {e}"),
    }
}

/// Opens the store in `dir`, panicking with the error if it fails.
pub(crate) fn open<H: Harness>(harness: &H, dir: &Path) -> H::Backend {
    match harness.open(dir) {
        Ok(backend) => backend,
        Err(e) => panic!(
            "testkit: opening the store in {} failed: {e}",
            dir.display()
        ),
    }
}

/// Unwraps `result`, panicking with `what` and the error.
#[track_caller]
pub(crate) fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("testkit: {what} failed: {e} ({:?})", e.kind()),
    }
}

/// Asserts that `result` failed with `kind`, and returns the error.
#[track_caller]
pub(crate) fn fails<T: Debug>(result: Result<T>, kind: ErrorKind, what: &str) -> Error {
    match result {
        Ok(value) => panic!("testkit: {what}: expected {kind:?}, got Ok({value:?})"),
        Err(e) if e.kind() == kind => e,
        Err(e) => panic!(
            "testkit: {what}: expected {kind:?}, got {:?}: {e}",
            e.kind()
        ),
    }
}

/// Every path under `dir` (files and directories), relative to it.
pub(crate) fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(relative) = path.strip_prefix(base) {
                out.insert(relative.to_path_buf());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// All digests that `walk` reports, sorted, panicking on a walk error.
pub(crate) fn walked<B: StoreBackend + ?Sized>(backend: &B) -> Vec<Digest> {
    let mut seen = Vec::new();
    ok(
        backend.walk(&mut |d| {
            seen.push(d.clone());
            Ok(())
        }),
        "walk",
    );
    seen.sort();
    seen
}

/// Parses a digest literal of the suite.
#[track_caller]
pub(crate) fn digest(s: &str) -> Digest {
    match Digest::parse(s) {
        Ok(d) => d,
        Err(e) => panic!("testkit: bad digest literal {s}: {e}"),
    }
}
