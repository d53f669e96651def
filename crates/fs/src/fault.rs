//! Fault injection points (feature `testkit`): each fsync and rename of the
//! backend first asks `imgstore_backend::testkit::fault::inject`, so a
//! fault campaign can fail it. Without the feature these are no-ops.

use std::io;

/// Before an fsync (of a file or a directory).
#[cfg(feature = "testkit")]
pub(crate) fn sync(point: &'static str) -> io::Result<()> {
    imgstore_backend::testkit::fault::inject(
        imgstore_backend::testkit::fault::FaultClass::Sync,
        point,
    )
}

/// Before a rename.
#[cfg(feature = "testkit")]
pub(crate) fn rename(point: &'static str) -> io::Result<()> {
    imgstore_backend::testkit::fault::inject(
        imgstore_backend::testkit::fault::FaultClass::Rename,
        point,
    )
}

/// Before an fsync (of a file or a directory).
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn sync(_point: &'static str) -> io::Result<()> {
    Ok(())
}

/// Before a rename.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn rename(_point: &'static str) -> io::Result<()> {
    Ok(())
}
