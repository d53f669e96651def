//! `FsBackend` passes the shared conformance suite of `imgstore-backend`.

mod common;

imgstore_backend::conformance_tests!(common::Fs);
