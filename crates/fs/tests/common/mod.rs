//! The testkit harness for `FsBackend`, shared by the test files.

use std::path::Path;

use imgstore_backend::Result;
use imgstore_backend::testkit::Harness;
use imgstore_digest::Digest;
use imgstore_fs::FsBackend;

/// Opens `FsBackend` on `<dir>/root` (a root that does not exist yet, as in
/// moby's tests) and damages its files directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fs;

impl Harness for Fs {
    type Backend = FsBackend;

    fn open(&self, dir: &Path) -> Result<FsBackend> {
        FsBackend::open(dir.join("root"))
    }

    fn corrupt(&self, dir: &Path, _: &FsBackend, digest: &Digest, bytes: &[u8]) {
        let path = dir.join("root/content/sha256").join(digest.encoded());
        if let Err(e) = std::fs::write(&path, bytes) {
            panic!("cannot overwrite {}: {e}", path.display());
        }
    }

    fn plant_invalid_entry(&self, dir: &Path, _: &FsBackend) {
        let path = dir.join("root/content/sha256/foobar");
        if let Err(e) = std::fs::write(&path, b"not a digest") {
            panic!("cannot write {}: {e}", path.display());
        }
    }
}
