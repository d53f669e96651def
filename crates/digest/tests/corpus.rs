//! The digests of the image corpus (examples/images): image IDs are the hash
//! of the config bytes, chain IDs follow from the diff IDs.

use std::path::PathBuf;

use imgstore_digest::{Digest, chain_ids};

fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/images");
    assert!(
        dir.join("expected").is_dir(),
        "the image corpus is missing at {}: it is part of the repository",
        dir.display()
    );
    dir
}

#[test]
fn expected_ids_and_chain_ids_hold_for_every_corpus_image() {
    let corpus = corpus();
    let mut checked = 0;
    for entry in std::fs::read_dir(corpus.join("expected/images")).unwrap() {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        let config_digest = Digest::parse(expected["config_digest"].as_str().unwrap()).unwrap();
        let layout = if expected["name"] == "quirk" {
            "oci/quirk-unterminated"
        } else {
            "oci/main"
        };
        let config = std::fs::read(
            corpus
                .join(layout)
                .join("blobs/sha256")
                .join(config_digest.encoded()),
        )
        .unwrap();
        assert_eq!(
            Digest::from_bytes(&config).as_str(),
            expected["image_id"].as_str().unwrap()
        );
        let diff_ids: Vec<Digest> = expected["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| Digest::parse(d.as_str().unwrap()).unwrap())
            .collect();
        let want: Vec<&str> = expected["chain_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(
            chain_ids(&diff_ids)
                .iter()
                .map(Digest::as_str)
                .collect::<Vec<_>>(),
            want
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}
