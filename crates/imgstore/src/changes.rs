//! The root's change count: one number in `<root>/store.changes`, mapped
//! into every process that opens the root, which every change made through
//! a [`Store`](crate::Store) moves while it holds the writers' lock.
//!
//! A long-lived process's CRI cache compares it with the count it was built
//! at before each use: one atomic load, where asking the backends
//! (`RecordStore::change_counter`: SQLite's `data_version` through a query,
//! the fs log's length through a `stat`) costs microseconds.
//!
//! The count is odd while a change is in progress: a change makes it odd
//! when it takes the lock and even again when it lets go, so a reader that
//! sees an even count equal to the one it built at knows no change ran
//! since. A process killed in a change leaves it odd; readers then ask the
//! backends, as without this file, until the next change ends. Changes made
//! by writing to the sub-stores directly (not through `Store`'s methods)
//! do not move it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// The mapped count (see the module docs).
pub(crate) struct ChangeCount {
    count: NonNull<AtomicU64>,
    /// Keeps the descriptor the mapping came from; the mapping itself
    /// outlives a close, but the file is this value's.
    _file: File,
}

// SAFETY: the mapping is only reached through `&AtomicU64`, whose
// operations are atomic across threads (and, for a lock-free 8-byte atomic
// on shared memory, across processes).
unsafe impl Send for ChangeCount {}
// SAFETY: as above.
unsafe impl Sync for ChangeCount {}

/// The size of the file: one count.
const LEN: usize = std::mem::size_of::<AtomicU64>();

impl ChangeCount {
    /// Opens (creating, 0600, zero) `<root>/store.changes` and maps it.
    pub(crate) fn open(root: &Path) -> io::Result<ChangeCount> {
        let file = crate::lock::open_private(&root.join("store.changes"))?;
        // Only ever grown: a mapping past the end of the file would fault.
        if file.metadata()?.len() < LEN as u64 {
            file.set_len(LEN as u64)?;
        }
        // SAFETY: a fresh shared mapping of the first LEN bytes of an open
        // file of at least that size; the kernel picks the (page-aligned,
        // so suitably aligned) address.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let count = NonNull::new(address.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(ChangeCount { count, _file: file })
    }

    fn atomic(&self) -> &AtomicU64 {
        // SAFETY: the mapping is LEN bytes, aligned, and stays mapped until
        // drop; every access to it is atomic.
        unsafe { self.count.as_ref() }
    }

    /// The count now.
    pub(crate) fn load(&self) -> u64 {
        self.atomic().load(Ordering::SeqCst)
    }

    /// A change starts (under the writers' lock): the count becomes odd. A
    /// count a killed change left odd stays so.
    pub(crate) fn begin(&self) {
        let count = self.atomic();
        let now = count.load(Ordering::SeqCst);
        if now.is_multiple_of(2) {
            count.store(now.wrapping_add(1), Ordering::SeqCst);
        }
    }

    /// The change ended (still under the lock): the count becomes even,
    /// and differs from every even count before.
    pub(crate) fn end(&self) {
        let count = self.atomic();
        let now = count.load(Ordering::SeqCst);
        count.store((now | 1).wrapping_add(1), Ordering::SeqCst);
    }
}

impl Drop for ChangeCount {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `open` made, which nothing
        // borrows any more (`&self` borrows ended with the value).
        unsafe { libc::munmap(self.count.as_ptr().cast(), LEN) };
    }
}

/// Whether a count says no change is in progress.
pub(crate) fn is_quiet(count: u64) -> bool {
    count.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_makes_the_count_odd_then_even_and_new_and_every_mapping_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let one = ChangeCount::open(dir.path()).unwrap();
        let other = ChangeCount::open(dir.path()).unwrap();
        assert_eq!(one.load(), 0);
        one.begin();
        assert_eq!(other.load(), 1);
        assert!(!is_quiet(other.load()));
        one.end();
        assert_eq!(other.load(), 2);
        // A change killed midway left it odd: the next keeps it odd while
        // it runs and makes it even, and new, when it ends.
        other.begin();
        other.begin();
        assert_eq!(one.load(), 3);
        one.end();
        assert_eq!(other.load(), 4);
        assert!(is_quiet(other.load()));
        let mode = std::fs::metadata(dir.path().join("store.changes"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap();
        assert_eq!(mode, 0o600);
    }
}
