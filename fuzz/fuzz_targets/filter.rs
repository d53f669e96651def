//! libFuzzer target: imgstore_fuzz::targets::filter.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgstore_fuzz::targets::filter(data));
