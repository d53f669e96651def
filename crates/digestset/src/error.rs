//! The error type of [`DigestSet::lookup`](crate::DigestSet::lookup).

use imgstore_digest::shorten;

/// Why a lookup found no single digest: go-digest's `ErrDigestNotFound` and
/// `ErrDigestAmbiguous`. Each names the query (cut to 150 bytes, so hostile
/// input cannot make a huge message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No digest in the set matches the query.
    #[error("no digest matches {query:?}")]
    NotFound {
        /// The query, shortened to at most 150 bytes.
        query: String,
    },
    /// More than one digest matches the query; a longer prefix is needed.
    #[error("more than one digest matches {query:?}")]
    Ambiguous {
        /// The query, shortened to at most 150 bytes.
        query: String,
    },
}

impl LookupError {
    pub(crate) fn not_found(query: &str) -> Self {
        LookupError::NotFound {
            query: shorten(query),
        }
    }

    pub(crate) fn ambiguous(query: &str) -> Self {
        LookupError::Ambiguous {
            query: shorten(query),
        }
    }

    /// The query that failed, as recorded in the error (at most 150 bytes).
    pub fn query(&self) -> &str {
        match self {
            LookupError::NotFound { query } | LookupError::Ambiguous { query } => query,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_queries_are_shortened_on_a_char_boundary() {
        let query = "é".repeat(100);
        let err = LookupError::not_found(&query);
        assert!(err.query().len() <= 150 + "…".len());
        assert!(err.query().ends_with('…'));
    }
}
