//! Shared fixtures for the criterion suite in `benches/`.
