//! containerd's label rules (`pkg/labels`) and namespace identifiers
//! (`pkg/identifiers`).

use crate::RefsError;

/// The most bytes a label's key and value may hold together.
pub const MAX_LABEL_SIZE: usize = 4096;

/// The longest namespace identifier, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 76;

/// Label key prefixes that belong to containerd and its CRI plugin.
pub const RESERVED_LABEL_PREFIXES: [&str; 2] = ["containerd.io/", "io.cri-containerd"];

/// Checks one label as containerd does: key and value together at most
/// [`MAX_LABEL_SIZE`] bytes, else [`RefsError::LabelTooLong`] (`InvalidArgument`).
///
/// ```
/// use imgstore_refs::validate_label;
///
/// assert!(validate_label("s", &"s".repeat(4095)).is_ok());
/// assert!(validate_label("s", &"s".repeat(4096)).is_err());
/// ```
pub fn validate_label(key: &str, value: &str) -> Result<(), RefsError> {
    let size = key.len() + value.len();
    if size > MAX_LABEL_SIZE {
        return Err(RefsError::LabelTooLong {
            key: key.chars().take(10).collect(),
            size,
        });
    }
    Ok(())
}

/// True for keys under a prefix that containerd reserves for itself
/// (`containerd.io/…`, `io.cri-containerd…`). The store does not refuse them
/// (containerd's own clients set `containerd.io/gc.ref.*` on images); a tool
/// that takes labels from users can.
///
/// ```
/// use imgstore_refs::is_reserved_label_key;
///
/// assert!(is_reserved_label_key("containerd.io/gc.ref.content"));
/// assert!(!is_reserved_label_key("containerd.io"));
/// assert!(!is_reserved_label_key("io.containerd.something"));
/// ```
pub fn is_reserved_label_key(key: &str) -> bool {
    RESERVED_LABEL_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// Checks a namespace: empty is [`RefsError::NamespaceRequired`]
/// (`FailedPrecondition`, as containerd's "namespace is required"); otherwise it
/// must be a containerd identifier, `^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$` of at
/// most [`MAX_NAMESPACE_LEN`] bytes, else [`RefsError::InvalidNamespace`].
///
/// ```
/// use imgstore_refs::validate_namespace;
///
/// assert!(validate_namespace("k8s.io").is_ok());
/// assert!(validate_namespace("a/b").is_err());
/// ```
pub fn validate_namespace(namespace: &str) -> Result<(), RefsError> {
    if namespace.is_empty() {
        return Err(RefsError::NamespaceRequired);
    }
    let invalid = |reason: String| RefsError::InvalidNamespace {
        namespace: namespace.chars().take(100).collect(),
        reason,
    };
    if namespace.len() > MAX_NAMESPACE_LEN {
        return Err(invalid(format!(
            "greater than maximum length ({MAX_NAMESPACE_LEN} characters)"
        )));
    }
    let well_formed = namespace
        .split(['.', '_', '-'])
        .all(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric()));
    if !well_formed {
        return Err(invalid(
            "must match pattern ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$".to_owned(),
        ));
    }
    Ok(())
}
