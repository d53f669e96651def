//! Where a store lives when the user does not say.

use std::path::PathBuf;

/// The default store root: `$IMGSTORE_ROOT`, else `$XDG_DATA_HOME/imgstore`,
/// else `~/.local/share/imgstore` (the XDG default for user data), else
/// `./imgstore` when not even `$HOME` is set. Empty variables count as
/// unset, as the XDG specification says.
///
/// ```
/// let root = imgstore::default_root();
/// assert!(root.is_absolute() || root.ends_with("imgstore"));
/// ```
pub fn default_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(root) = var("IMGSTORE_ROOT") {
        return PathBuf::from(root);
    }
    let data = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("imgstore")
}
