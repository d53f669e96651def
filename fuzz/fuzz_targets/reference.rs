//! libFuzzer target: imgstore_fuzz::targets::reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgstore_fuzz::targets::reference(data));
