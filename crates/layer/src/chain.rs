//! `ChainId`: the identity of a layer together with everything below it.

use std::fmt;
use std::str::FromStr;

use imgstore_digest::{Digest, DigestError, chain_id};

/// An image-spec ChainID: for the bottom layer its diff ID, above it
/// `sha256("<parent chain id> <diff id>")`. Always a valid digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ChainId(Digest);

impl ChainId {
    /// The chain ID of a bottom layer: its diff ID.
    pub fn base(diff_id: Digest) -> ChainId {
        ChainId(diff_id)
    }

    /// The chain ID of the layer `diff_id` stacked on this chain.
    pub fn child(&self, diff_id: &Digest) -> ChainId {
        // chain_id of two elements always exists; the fallback is unreachable.
        ChainId(chain_id(&[self.0.clone(), diff_id.clone()]).unwrap_or_else(|| diff_id.clone()))
    }

    /// The chain ID of a whole stack given bottom-up; `None` for no layers.
    pub fn of(diff_ids: &[Digest]) -> Option<ChainId> {
        chain_id(diff_ids).map(ChainId)
    }

    /// The chain ID as a digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The `sha256:…` string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<Digest> for ChainId {
    fn from(digest: Digest) -> ChainId {
        ChainId(digest)
    }
}

impl FromStr for ChainId {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s).map(ChainId)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.as_str())
    }
}
