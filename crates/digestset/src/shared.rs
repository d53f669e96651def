//! [`SharedDigestSet`]: a [`DigestSet`] behind an `RwLock`.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use imgstore_digest::{Digest, DigestError};

use crate::{DigestSet, LookupError};

/// A thread-safe [`DigestSet`]: the same operations on `&self`, as go-digest's
/// `Set` with its mutex. Lookups take a read lock, so readers never block each
/// other; `add`/`remove` take the write lock for O(log n) time.
///
/// Share it with an `Arc`. For many changes at once (restoring a store),
/// take [`write`](Self::write) once instead of locking per digest.
///
/// A panic while a lock is held cannot leave the set half-changed (no
/// operation panics part-way), so a poisoned lock is simply used again.
///
/// ```
/// use std::sync::Arc;
/// use imgstore_digest::Algorithm;
/// use imgstore_digestset::SharedDigestSet;
///
/// let set = Arc::new(SharedDigestSet::new());
/// let digest = Algorithm::Sha256.from_bytes(b"layer");
/// let writer = {
///     let (set, digest) = (Arc::clone(&set), digest.clone());
///     std::thread::spawn(move || set.add(&digest))
/// };
/// writer.join().unwrap();
/// assert_eq!(set.lookup(&digest.encoded()[..12]).unwrap(), digest);
/// ```
#[derive(Debug, Default)]
pub struct SharedDigestSet {
    inner: RwLock<DigestSet>,
}

impl SharedDigestSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The read lock, to run several reads (or [`DigestSet::iter`]) on one
    /// consistent state. Writers wait while it is held.
    pub fn read(&self) -> RwLockReadGuard<'_, DigestSet> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The write lock, to make several changes under one lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, DigestSet> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The set itself, lock removed.
    pub fn into_inner(self) -> DigestSet {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// [`DigestSet::add`] under the write lock.
    pub fn add(&self, digest: &Digest) -> bool {
        self.write().add(digest)
    }

    /// [`DigestSet::add_str`]; parses before taking the lock.
    pub fn add_str(&self, digest: &str) -> Result<(), DigestError> {
        let digest = Digest::parse(digest)?;
        self.add(&digest);
        Ok(())
    }

    /// [`DigestSet::remove`] under the write lock.
    pub fn remove(&self, digest: &Digest) -> bool {
        self.write().remove(digest)
    }

    /// [`DigestSet::remove_str`]; parses before taking the lock.
    pub fn remove_str(&self, digest: &str) -> Result<bool, DigestError> {
        let digest = Digest::parse(digest)?;
        Ok(self.remove(&digest))
    }

    /// [`DigestSet::contains`] under the read lock.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.read().contains(digest)
    }

    /// [`DigestSet::lookup`] under the read lock.
    pub fn lookup(&self, query: &str) -> Result<Digest, LookupError> {
        self.read().lookup(query)
    }

    /// [`DigestSet::len`].
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// [`DigestSet::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Every digest, in [`DigestSet::iter`] order, copied out under the read lock.
    pub fn digests(&self) -> Vec<Digest> {
        self.read().iter().collect()
    }

    /// [`DigestSet::short_code_table`] under the read lock.
    pub fn short_code_table(&self, min_len: usize) -> BTreeMap<Digest, String> {
        self.read().short_code_table(min_len)
    }
}

impl From<DigestSet> for SharedDigestSet {
    fn from(set: DigestSet) -> Self {
        SharedDigestSet {
            inner: RwLock::new(set),
        }
    }
}
