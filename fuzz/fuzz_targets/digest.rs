//! libFuzzer target: imgstore_fuzz::targets::digest.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgstore_fuzz::targets::digest(data));
