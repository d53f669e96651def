//! `SqliteBackend` passes the shared conformance suite of `imgstore-backend`
//! unchanged: with the default options, and with every blob in a file.

mod common;

mod default_options {
    imgstore_backend::conformance_tests!(super::common::Sqlite::DEFAULT);
}

mod every_blob_in_a_file {
    imgstore_backend::conformance_tests!(super::common::Sqlite::FILES);
}
