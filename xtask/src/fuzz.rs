//! `cargo xtask fuzz [target|all] [--execs N | --seconds S] [--seed X]`: the
//! stable-toolchain fuzz loop (`crates/fuzz`, binary `imgstore-fuzz`) in a
//! release build. Targets: digest, reference, filter, time, oci_json, archive
//! (default: all, 10 million executions each). Findings (panics, inputs
//! over 1 s) are saved under `fuzz-findings/`; a heap over 1 GiB aborts.
//! With a nightly toolchain and cargo-fuzz, `fuzz/` holds the same targets
//! for libFuzzer.

use crate::cargo;

/// Runs the fuzz loop with `args` passed through.
pub fn fuzz(args: &[String]) -> Result<(), String> {
    let mut command = vec![
        "run",
        "--release",
        "--package",
        "imgstore-fuzz",
        "--bin",
        "imgstore-fuzz",
        "--",
        "run",
    ];
    let mut rest: Vec<&str> = args.iter().map(String::as_str).collect();
    if rest.first().is_none_or(|a| a.starts_with("--")) {
        rest.insert(0, "all");
    }
    command.extend(rest);
    cargo(&command, &[])
}
