//! `PostgresBackend` passes the shared conformance suite of
//! `imgstore-backend` unchanged, against a real PostgreSQL server the test
//! starts (`imgstore_postgres::testserver`).

mod common;

imgstore_backend::conformance_tests!(common::Postgres);
