//! Fault injection: a backend wrapper that fails the Nth operation of a
//! chosen class with a chosen I/O error, and counts operations so a campaign
//! can try every point in turn.
//!
//! Four classes of operation:
//!
//! - [`FaultClass::Write`]: a call that changes the store (`set`,
//!   `write_blob`, `delete`, `set_metadata`, `delete_metadata`, `apply`),
//!   failed on entry by [`FaultyBackend`];
//! - [`FaultClass::Read`]: a call that reads (`get`, `get_many`,
//!   `get_metadata`, `get_metadata_many`, `contains`, `size`, `open_blob`,
//!   `walk`, `total_size`, `get_record`, `scan_records`, `first_records`),
//!   failed on entry;
//! - [`FaultClass::Sync`] and [`FaultClass::Rename`]: the fsyncs, SQLite
//!   commits and renames *inside* the real backends. The wrapper cannot reach
//!   them, so `imgstore-fs` and `imgstore-sqlite`, built with their feature
//!   `testkit`, call [`inject`] at each such point; [`inject`] consults the
//!   plan of the [`FaultyBackend`] call running on the current thread (none
//!   outside such a call, so the points cost one thread-local read and never
//!   fail in other tests).
//!
//! A [`FaultPlan`] is shared (`Arc`) by every wrapper of one store, so the
//! count runs across the content and image backends of a facade. It fails
//! one operation, once: the Nth of its class after [`FaultPlan::arm`].
//!
//! ```
//! use std::sync::Arc;
//! use imgstore_backend::testkit::fault::{FaultClass, FaultError, FaultPlan, FaultyBackend};
//! # use imgstore_backend::StoreBackend;
//! # fn demo<B: StoreBackend + imgstore_backend::RecordStore>(real: B) {
//! let plan = Arc::new(FaultPlan::new());
//! let store = FaultyBackend::new(real, Arc::clone(&plan));
//! plan.arm(FaultClass::Write, 2, FaultError::NoSpace);
//! assert!(store.set(b"one").is_ok());
//! assert!(store.set(b"two").is_err()); // ENOSPC
//! assert!(store.set(b"two").is_ok()); // fails once
//! assert_eq!(plan.count(FaultClass::Write), 3);
//! # }
//! ```

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

use imgstore_digest::Digest;

use crate::{Batch, BlobInfo, BlobReader, Error, RecordStore, Result, StoreBackend, Subject};

/// A class of operation a [`FaultPlan`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultClass {
    /// A call that changes the store, failed on entry.
    Write,
    /// An fsync (file or directory) or an SQLite commit inside a backend.
    Sync,
    /// A rename inside a backend (a temp file moved into place).
    Rename,
    /// A call that reads, failed on entry.
    Read,
}

impl FaultClass {
    /// Every class, in a fixed order.
    pub const ALL: [FaultClass; 4] = [
        FaultClass::Write,
        FaultClass::Sync,
        FaultClass::Rename,
        FaultClass::Read,
    ];

    fn index(self) -> usize {
        match self {
            FaultClass::Write => 0,
            FaultClass::Sync => 1,
            FaultClass::Rename => 2,
            FaultClass::Read => 3,
        }
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultClass::Write => "write",
            FaultClass::Sync => "sync",
            FaultClass::Rename => "rename",
            FaultClass::Read => "read",
        })
    }
}

/// The error an injected fault returns: the operating system's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// `ENOSPC`: no space left on device.
    NoSpace,
    /// `EIO`: input/output error.
    Io,
    /// `EACCES`: permission denied.
    PermissionDenied,
}

impl FaultError {
    /// Every error, in a fixed order.
    pub const ALL: [FaultError; 3] = [
        FaultError::NoSpace,
        FaultError::Io,
        FaultError::PermissionDenied,
    ];

    /// The `io::Error` with the Linux errno (28, 5, 13).
    pub fn to_io_error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            FaultError::NoSpace => 28,
            FaultError::Io => 5,
            FaultError::PermissionDenied => 13,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    class: FaultClass,
    nth: u64,
    error: FaultError,
}

#[derive(Debug, Default)]
struct PlanState {
    counts: [u64; 4],
    armed: Option<Armed>,
    fired: Option<String>,
}

/// Which operation to fail, and the count of operations so far (see the
/// [module docs](self)).
#[derive(Debug, Default)]
pub struct FaultPlan {
    state: Mutex<PlanState>,
}

impl FaultPlan {
    /// A plan that counts and fails nothing.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets the counts and fails the `nth` (1-based) operation of `class`
    /// from now on with `error`, once.
    pub fn arm(&self, class: FaultClass, nth: u64, error: FaultError) {
        let mut state = self.lock();
        *state = PlanState {
            armed: Some(Armed { class, nth, error }),
            ..PlanState::default()
        };
    }

    /// Resets the counts and fails nothing (a dry run counts this way).
    pub fn reset(&self) {
        *self.lock() = PlanState::default();
    }

    /// Operations of `class` seen since the last `arm` or `reset`.
    pub fn count(&self, class: FaultClass) -> u64 {
        self.lock().counts[class.index()]
    }

    /// Where the armed fault fired (`"sync #3 (fs fsync temp file)"`), or
    /// `None` when it has not (yet).
    pub fn fired(&self) -> Option<String> {
        self.lock().fired.clone()
    }

    /// Counts one operation of `class` at `point`; fails it when it is the
    /// one armed.
    pub fn hit(&self, class: FaultClass, point: &str) -> io::Result<()> {
        let mut state = self.lock();
        let count = {
            let slot = &mut state.counts[class.index()];
            *slot += 1;
            *slot
        };
        match state.armed {
            Some(armed) if armed.class == class && armed.nth == count => {
                state.armed = None;
                state.fired = Some(format!("{class} #{count} ({point})"));
                Err(armed.error.to_io_error())
            }
            _ => Ok(()),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Vec<Arc<FaultPlan>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `plan` as this thread's plan, so [`inject`] points reached
/// inside count against it.
pub fn with_plan<T>(plan: &Arc<FaultPlan>, f: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().pop());
        }
    }
    CURRENT.with(|c| c.borrow_mut().push(Arc::clone(plan)));
    let _pop = Pop;
    f()
}

/// An injection point inside a backend: counts one operation of `class`
/// against the plan of the [`FaultyBackend`] call running on this thread,
/// and fails when that plan says so. Outside such a call: `Ok(())`.
pub fn inject(class: FaultClass, point: &'static str) -> io::Result<()> {
    let plan = CURRENT.with(|c| c.borrow().last().cloned());
    match plan {
        Some(plan) => plan.hit(class, point),
        None => Ok(()),
    }
}

/// A backend that forwards every call to `B`, failing the operations its
/// [`FaultPlan`] says (see the [module docs](self)).
#[derive(Debug)]
pub struct FaultyBackend<B> {
    inner: B,
    plan: Arc<FaultPlan>,
}

impl<B> FaultyBackend<B> {
    /// Wraps `inner`; `plan` may be shared with other wrappers.
    pub fn new(inner: B, plan: Arc<FaultPlan>) -> FaultyBackend<B> {
        FaultyBackend { inner, plan }
    }

    /// The backend wrapped.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<FaultPlan> {
        &self.plan
    }

    fn call<T>(
        &self,
        class: FaultClass,
        point: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.plan.hit(class, point).map_err(|e| {
            Error::io(
                point,
                Subject::Store(format!("(injected {class} fault)")),
                e,
            )
        })?;
        with_plan(&self.plan, f)
    }
}

impl<B: StoreBackend> StoreBackend for FaultyBackend<B> {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> Result<()>) -> Result<()> {
        self.call(FaultClass::Read, "walk", || self.inner.walk(visit))
    }
    fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.call(FaultClass::Read, "get", || self.inner.get(digest))
    }
    fn set(&self, data: &[u8]) -> Result<Digest> {
        self.call(FaultClass::Write, "set", || self.inner.set(data))
    }
    fn delete(&self, digest: &Digest) -> Result<()> {
        self.call(FaultClass::Write, "delete", || self.inner.delete(digest))
    }
    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> Result<()> {
        self.call(FaultClass::Write, "set_metadata", || {
            self.inner.set_metadata(digest, key, value)
        })
    }
    fn get_metadata(&self, digest: &Digest, key: &str) -> Result<Vec<u8>> {
        self.call(FaultClass::Read, "get_metadata", || {
            self.inner.get_metadata(digest, key)
        })
    }
    fn delete_metadata(&self, digest: &Digest, key: &str) -> Result<()> {
        self.call(FaultClass::Write, "delete_metadata", || {
            self.inner.delete_metadata(digest, key)
        })
    }
    fn contains(&self, digest: &Digest) -> Result<bool> {
        self.call(FaultClass::Read, "contains", || self.inner.contains(digest))
    }
    fn size(&self, digest: &Digest) -> Result<u64> {
        self.call(FaultClass::Read, "size", || self.inner.size(digest))
    }
    fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        self.call(FaultClass::Read, "open_blob", || {
            self.inner.open_blob(digest)
        })
    }
    fn get_many(&self, digests: &[Digest]) -> Vec<Result<Vec<u8>>> {
        match self.call(FaultClass::Read, "get_many", || Ok(())) {
            Ok(()) => with_plan(&self.plan, || self.inner.get_many(digests)),
            Err(e) => {
                let message = e.to_string();
                digests
                    .iter()
                    .map(|_| Err(injected_copy(&message)))
                    .collect()
            }
        }
    }
    fn total_size(&self) -> Result<u64> {
        self.call(FaultClass::Read, "total_size", || self.inner.total_size())
    }
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<Result<Vec<u8>>> {
        match self.call(FaultClass::Read, "get_metadata_many", || Ok(())) {
            Ok(()) => with_plan(&self.plan, || self.inner.get_metadata_many(digests, key)),
            Err(e) => {
                let message = e.to_string();
                digests
                    .iter()
                    .map(|_| Err(injected_copy(&message)))
                    .collect()
            }
        }
    }
    fn write_blob(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<BlobInfo> {
        self.call(FaultClass::Write, "write_blob", || {
            self.inner.write_blob(expected, reader)
        })
    }
    fn set_deferred(&self, data: &[u8]) -> Result<Digest> {
        self.call(FaultClass::Write, "set_deferred", || {
            self.inner.set_deferred(data)
        })
    }
    fn write_blob_deferred(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> Result<BlobInfo> {
        self.call(FaultClass::Write, "write_blob_deferred", || {
            self.inner.write_blob_deferred(expected, reader)
        })
    }
}

/// The injected error once per digest of a bulk read.
fn injected_copy(message: &str) -> Error {
    Error::io(
        "read",
        Subject::Store("(injected read fault)".to_owned()),
        io::Error::other(message.to_owned()),
    )
}

impl<B: RecordStore> RecordStore for FaultyBackend<B> {
    fn get_record(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.call(FaultClass::Read, "get_record", || {
            self.inner.get_record(bucket, key)
        })
    }
    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.call(FaultClass::Read, "scan_records", || {
            self.inner.scan_records(bucket, prefix, visit)
        })
    }
    fn apply(&self, batch: &Batch) -> Result<()> {
        self.call(FaultClass::Write, "apply", || self.inner.apply(batch))
    }
    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.call(FaultClass::Read, "first_records", || {
            self.inner.first_records(bucket, prefix, limit)
        })
    }
    fn change_counter(&self) -> Result<u64> {
        self.inner.change_counter()
    }
}
