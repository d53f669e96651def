//! The conformance suite every backend must pass unchanged (feature `testkit`).
