//! libFuzzer target: imgstore_fuzz::targets::time.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgstore_fuzz::targets::time(data));
