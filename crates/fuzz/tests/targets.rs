//! The fuzz targets on the stable toolchain, bounded for CI: proptest over
//! arbitrary bytes and shaped strings, and a short deterministic run of the
//! same mutation loop `cargo xtask fuzz` runs for millions of inputs.

use imgstore_fuzz::mutate::Rng;
use imgstore_fuzz::{Target, targets};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn digest_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        targets::digest(&data);
    }

    #[test]
    fn digest_shaped(s in "(sha256|sha384|sha512|[a-z0-9+._-]{0,8}):[0-9a-fA-F=_-]{0,130}") {
        targets::digest(s.as_bytes());
    }

    #[test]
    fn reference_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        targets::reference(&data);
    }

    #[test]
    fn reference_shaped(s in "([a-z0-9.-]{0,12}(:[0-9]{1,5})?/)?[a-z0-9._/-]{0,40}(:[A-Za-z0-9._-]{0,10})?(@sha256:[0-9a-f]{0,64})?") {
        targets::reference(s.as_bytes());
    }

    #[test]
    fn time_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        targets::time(&data);
    }

    #[test]
    fn time_shaped(s in "[0-9]{0,5}-?[0-9]{0,3}-?[0-9]{0,3}[Tt ]?[0-9]{0,3}:?[0-9]{0,3}:?[0-9]{0,3}(\\.[0-9]{0,12})?([Zz]|[+-][0-9\u{e9}]{0,3}:?[0-9\u{e9}]{0,3})?\\PC{0,2}") {
        targets::time(s.as_bytes());
    }

    #[test]
    fn filter_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        targets::filter(&data);
    }

    #[test]
    fn filter_shaped(s in "([a-z.\"|/]{0,10}(==|!=|~=)?[a-z.\"|/\\\\()+*^$\\[\\]]{0,12},?){0,4}(\n[a-z=~!,.]{0,10})?") {
        targets::filter(s.as_bytes());
    }
}

/// The mutation loop of `imgstore-fuzz`, `execs` inputs from a fixed seed;
/// a panic (or a refused import that changed the store) fails the test.
fn mutation_loop(target: Target, execs: usize) {
    let mut runner = target.runner().expect("runner");
    let seeds = target.seeds();
    let dict = target.dict();
    let mut rng = Rng::new(0x1_5eed);
    for seed in &seeds {
        runner.run(seed);
    }
    for _ in 0..execs {
        let mut input = rng.pick(&seeds).cloned().unwrap_or_default();
        target.mutate(&mut rng, &mut input, &dict, &seeds);
        runner.run(&input);
    }
    if let Some((imported, refused)) = runner.outcomes() {
        // Empty inputs (no mode byte) are not imports.
        assert!(imported + refused <= (execs + seeds.len()) as u64);
        assert!(imported + refused >= execs as u64 * 9 / 10);
        assert!(imported > 0, "{target:?}: the seeds import");
        assert!(refused > 0, "{target:?}: mutants are refused");
    }
}

#[test]
fn mutation_loop_stateless_targets() {
    for target in [
        Target::Digest,
        Target::Reference,
        Target::Filter,
        Target::Time,
    ] {
        mutation_loop(target, 20_000);
    }
}

#[test]
fn mutation_loop_oci_json() {
    mutation_loop(Target::OciJson, 2_000);
}

#[test]
fn mutation_loop_archive() {
    mutation_loop(Target::Archive, 2_000);
}

#[test]
fn reference_inputs_found_by_the_loop() {
    // `library/<64 hex>` parses; its familiar form reads as an image ID
    // (as in distribution): the target must not count that as a finding.
    targets::reference(format!("library/{}", "b".repeat(64)).as_bytes());
    targets::reference(b"docker.io/libraer.io/library/busybox:latest");
    let id = "5".repeat(64);
    assert!(imgstore::refs::reference::normalize(&format!("library/{id}")).is_ok());
    assert!(imgstore::refs::reference::normalize(&id).is_err());
}
