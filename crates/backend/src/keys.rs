//! Validation of the names a caller passes in: the one place that decides
//! which metadata keys, buckets and record keys are safe.

use crate::{Error, Result};

/// A metadata key: 1..=128 bytes of `[A-Za-z0-9_.-]`, not `.` or `..`, not
/// starting with `.tmp-` (the fs backend's temp-file prefix). moby's keys
/// (`parent`, `lastUpdated`, `builtLocally`) all pass; nothing that could
/// name another directory does.
pub fn validate_metadata_key(key: &str) -> Result<()> {
    validate_name(key, 128, "metadata key")
}

/// A bucket name: 1..=64 bytes of `[a-z0-9_.-]`, not `.` or `..`.
pub fn validate_bucket(bucket: &str) -> Result<()> {
    validate_name(bucket, 64, "bucket")?;
    if bucket.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid_argument(
            bucket,
            "bucket names are lower case",
        ));
    }
    Ok(())
}

/// A record key: 1..=4096 bytes of any UTF-8 without NUL. Backends encode keys
/// themselves, so `/` and `..` are allowed here (image names contain `/`).
pub fn validate_record_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_argument(key, "record key is empty"));
    }
    if key.len() > 4096 {
        return Err(Error::invalid_argument(
            key,
            "record key is longer than 4096 bytes",
        ));
    }
    if key.contains('\0') {
        return Err(Error::invalid_argument(key, "record key contains NUL"));
    }
    Ok(())
}

fn validate_name(name: &str, max: usize, what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_argument(name, format!("{what} is empty")));
    }
    if name.len() > max {
        return Err(Error::invalid_argument(
            name,
            format!("{what} is longer than {max} bytes"),
        ));
    }
    if name == "." || name == ".." || name.starts_with(".tmp-") {
        return Err(Error::invalid_argument(name, format!("{what} is reserved")));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid_argument(
            name,
            format!("{what} may not contain {bad:?}"),
        ));
    }
    Ok(())
}
