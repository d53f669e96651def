//! image-spec chain IDs: the identity of a stack of layers.

use crate::{Algorithm, Digest};

/// The chain ID of a stack of layers given bottom-up by their diff IDs:
/// `ChainID(L0) = L0`, `ChainID(L0..Ln) = sha256("<ChainID(L0..Ln-1)> <Ln>")`.
/// `None` for an empty list (image-spec returns `""`).
///
/// ```
/// use imgstore_digest::{chain_id, Digest};
/// let foo = Digest::from_bytes(b"foo");
/// let bar = Digest::from_bytes(b"bar");
/// assert_eq!(chain_id(&[foo.clone()]), Some(foo.clone()));
/// assert_eq!(
///     chain_id(&[foo, bar]).unwrap().as_str(),
///     "sha256:9abe30faa5bc3b839df938728ef8d9af0bcbe042db6d46fc4d816ae64d60a786"
/// );
/// ```
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let (first, rest) = diff_ids.split_first()?;
    Some(rest.iter().fold(first.clone(), |parent, diff_id| {
        next_link(parent.as_str(), diff_id.as_str())
    }))
}

/// The chain ID of every prefix of `diff_ids`: element `i` is the chain ID of
/// layers `0..=i`. Empty in, empty out.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => next_link(parent.as_str(), diff_id.as_str()),
        };
        out.push(next);
    }
    out
}

/// image-spec's `ChainID` on strings, without validating them: one element
/// comes back unchanged (even `sha256:a` or bare hex), an empty list gives
/// `None`. moby passes config `diff_ids` through this as they are.
pub fn chain_id_unchecked<S: AsRef<str>>(diff_ids: &[S]) -> Option<String> {
    let (first, rest) = diff_ids.split_first()?;
    Some(
        rest.iter()
            .fold(first.as_ref().to_owned(), |parent, diff_id| {
                next_link(&parent, diff_id.as_ref()).as_str().to_owned()
            }),
    )
}

/// sha256 of `"<parent> <diff_id>"`, one space, no newline.
fn next_link(parent: &str, diff_id: &str) -> Digest {
    let mut digester = Algorithm::Sha256.digester();
    digester.update(parent.as_bytes());
    digester.update(b" ");
    digester.update(diff_id.as_bytes());
    digester.finish()
}
