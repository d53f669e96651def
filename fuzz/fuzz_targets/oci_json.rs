//! libFuzzer target: the oci_json import target (one scratch store per process).
#![no_main]

use std::sync::Mutex;

use imgstore_fuzz::{Runner, Target};

static RUNNER: Mutex<Option<Runner>> = Mutex::new(None);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut guard = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(Target::OciJson.runner().expect("scratch directory for the store"));
    }
    if let Some(runner) = guard.as_mut() {
        runner.run(data);
    }
});
