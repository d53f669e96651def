//! Fault injection points for backends (feature `testkit`): each fsync and
//! rename of a backend first asks `testkit::fault::inject`,
//! so a fault campaign can fail it. Without the feature these are no-ops.

use std::io;

/// Before an fsync (of a file or a directory).
#[cfg(feature = "testkit")]
pub fn sync(point: &'static str) -> io::Result<()> {
    crate::testkit::fault::inject(crate::testkit::fault::FaultClass::Sync, point)
}

/// Before a rename.
#[cfg(feature = "testkit")]
pub fn rename(point: &'static str) -> io::Result<()> {
    crate::testkit::fault::inject(crate::testkit::fault::FaultClass::Rename, point)
}

/// Before an fsync (of a file or a directory).
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub fn sync(_point: &'static str) -> io::Result<()> {
    Ok(())
}

/// Before a rename.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub fn rename(_point: &'static str) -> io::Result<()> {
    Ok(())
}
