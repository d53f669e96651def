//! containerd's CRI image store tests (PEER_SEMANTICS §7) as our own.

use imgstore_cri::{CriError, CriImage, ImageIndex, ImageResolver, RefCache};
use imgstore_image::ImageId;

const TAIL: &str = "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn id(first: char) -> ImageId {
    format!("sha256:{first}{TAIL}").parse().unwrap()
}

fn image(first: char, chain: &str, reference: &str, size: u64) -> CriImage {
    CriImage {
        chain_id: chain.into(),
        size,
        ..CriImage::new(id(first), reference)
    }
}

/// The first ⌈len/2⌉ characters, as the peer test truncates.
fn truncate(s: &str) -> &str {
    &s[..s.len().div_ceil(2)]
}

fn four_images() -> Vec<CriImage> {
    vec![
        image('1', "test-chain-id-1", "containerd.io/ref-1", 10),
        image('2', "test-chain-id-2abcd", "containerd.io/ref-2abcd", 20),
        image('3', "test-chain-id-4a333", "containerd.io/ref-4a333", 30),
        image('4', "test-chain-id-4abcd", "containerd.io/ref-4abcd", 40),
    ]
}

#[test]
fn internal_store_get_by_truncated_ids_and_delete_by_reference() {
    let mut index = ImageIndex::new();
    for img in four_images() {
        index.add(img).unwrap();
    }
    for img in four_images() {
        let full = img.id.clone().unwrap().to_string();
        let got = index.get(truncate(&full)).unwrap();
        assert_eq!(got.id, img.id);
        assert_eq!(got.chain_id, img.chain_id);
        assert_eq!(got.size, img.size);
        assert_eq!(got.references, img.references);
        let bare = &full[7..];
        assert_eq!(index.get(truncate(bare)).unwrap().id, img.id);
        let exact = img.id.clone().unwrap();
        assert_eq!(index.get_by_id(&exact).unwrap().id, img.id);
    }
    let absent: imgstore_image::ImageId = format!("sha256:{}", "f".repeat(64)).parse().unwrap();
    assert!(index.get_by_id(&absent).is_none());
    assert!(matches!(
        index.get("sha256"),
        Err(CriError::NotFound { .. })
    ));
    assert!(matches!(
        index.get("sha256:"),
        Err(CriError::NotFound { .. })
    ));
    assert_eq!(index.list().len(), 4);

    let mut remaining = 4;
    for img in four_images() {
        let full = img.id.clone().unwrap().to_string();
        let trunc = truncate(&full).to_owned();
        let old_ref = img.references[0].clone();
        let new_ref = format!("{old_ref}new");
        let renamed = CriImage {
            references: vec![new_ref.clone()],
            ..img.clone()
        };
        index.add(renamed.clone()).unwrap();
        let got = index.get(&trunc).unwrap();
        assert_eq!(got.references.len(), 2);
        assert!(got.references.contains(&old_ref) && got.references.contains(&new_ref));
        index.add(renamed).unwrap();
        assert_eq!(
            index.get(&trunc).unwrap().references.len(),
            2,
            "no duplicates"
        );
        index.delete(&trunc, &old_ref).unwrap();
        assert_eq!(
            index.get(&trunc).unwrap().references,
            std::slice::from_ref(&new_ref)
        );
        index.delete(&trunc, &new_ref).unwrap();
        assert!(matches!(index.get(&trunc), Err(CriError::NotFound { .. })));
        remaining -= 1;
        assert_eq!(index.list().len(), remaining);
    }
}

#[test]
fn internal_store_image_is_pinned_while_any_reference_is() {
    let (ref1, ref2) = ("containerd.io/ref-1", "containerd.io/ref-2");
    let id = id('1');
    let mut index = ImageIndex::new();
    index.add(image('1', "test-chain-id-1", ref1, 10)).unwrap();
    assert!(!index.get(id.as_str()).unwrap().pinned);
    assert!(!index.is_pinned(&id, ref1));
    index
        .add(CriImage {
            pinned: true,
            ..image('1', "test-chain-id-1", ref2, 10)
        })
        .unwrap();
    assert!(index.get(id.as_str()).unwrap().pinned);
    assert!(!index.is_pinned(&id, ref1));
    assert!(index.is_pinned(&id, ref2));
    index.pin(&id, ref1).unwrap();
    assert!(index.get(id.as_str()).unwrap().pinned);
    assert!(index.is_pinned(&id, ref1) && index.is_pinned(&id, ref2));
    index.unpin(&id, ref2).unwrap();
    assert!(
        index.get(id.as_str()).unwrap().pinned,
        "ref1 is still pinned"
    );
    assert!(index.is_pinned(&id, ref1) && !index.is_pinned(&id, ref2));
    index.unpin(&id, ref1).unwrap();
    assert!(!index.get(id.as_str()).unwrap().pinned);
    index.pin(&id, ref1).unwrap();
    index.delete(id.as_str(), ref1).unwrap();
    let left = index.get(id.as_str()).unwrap();
    assert!(!left.pinned, "deleting a pinned reference unpins it");
    assert_eq!(left.references, [ref2]);
    assert!(!index.is_pinned(&id, ref2));
}

/// Docker tags are case-sensitive: unlike containerd's store, deleting a
/// reference compares exactly, so a name differing only in case stays.
#[test]
fn delete_compares_references_exactly() {
    let mut index = ImageIndex::new();
    index
        .add(image('1', "c", "docker.io/library/app:v1", 1))
        .unwrap();
    index
        .add(image('1', "c", "docker.io/library/app:V1", 1))
        .unwrap();
    index
        .delete(id('1').as_str(), "DOCKER.IO/LIBRARY/APP:V1")
        .unwrap();
    assert_eq!(index.get(id('1').as_str()).unwrap().references.len(), 2);
    index
        .delete(id('1').as_str(), "docker.io/library/app:V1")
        .unwrap();
    assert_eq!(
        index.get(id('1').as_str()).unwrap().references,
        ["docker.io/library/app:v1"]
    );
}

/// References are ranked as containerd ranks them (most informative first,
/// then by normalised form) but kept as given: `busybox` and
/// `docker.io/library/busybox` are two references.
#[test]
fn references_are_ranked_most_informative_first_and_kept_as_given() {
    let mut index = ImageIndex::new();
    let digest = "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let refs = [
        "not a reference".to_owned(),
        "busybox".to_owned(),
        "docker.io/library/busybox".to_owned(),
        digest.to_owned(),
        format!("busybox:1.36@{digest}"),
        "busybox:1.36".to_owned(),
        format!("busybox@{digest}"),
    ];
    for r in &refs {
        index.add(CriImage::new(id('1'), r)).unwrap();
    }
    assert_eq!(
        index.get(id('1').as_str()).unwrap().references,
        [
            format!("busybox:1.36@{digest}"),
            "busybox:1.36".to_string(),
            format!("busybox@{digest}"),
            "busybox".to_string(),
            "docker.io/library/busybox".to_string(),
            digest.to_string(),
            "not a reference".to_string(),
        ]
    );
    index.delete(id('1').as_str(), "busybox").unwrap();
    let left = index.get(id('1').as_str()).unwrap();
    assert!(
        left.references
            .contains(&"docker.io/library/busybox".to_owned())
    );
    assert_eq!(left.references.len(), 6);
}

/// Two cache keys that normalise alike stay two: removing one leaves the
/// other resolving to an image `get` finds.
#[test]
fn keys_that_normalise_alike_are_two_references() {
    let cache = RefCache::new();
    for key in ["busybox", "docker.io/library/busybox"] {
        cache
            .update_with(key, Some(image('1', "c", key, 10)))
            .unwrap();
    }
    cache.update_with("busybox", None).unwrap();
    let id = cache.resolve("docker.io/library/busybox").unwrap();
    assert_eq!(
        cache.get(id.as_str()).unwrap().references,
        ["docker.io/library/busybox"]
    );
    cache
        .update_with("docker.io/library/busybox", None)
        .unwrap();
    assert!(cache.is_empty());
}

/// One image with many references: each update is a tree insert, and the
/// counts and order come out right.
#[test]
fn ten_thousand_references_on_one_image() {
    let cache = RefCache::new();
    let names: Vec<String> = (0..10_000)
        .map(|i| format!("docker.io/library/app:t{i:05}"))
        .collect();
    for name in &names {
        cache
            .update_with(name, Some(image('1', "c", name, 10)))
            .unwrap();
    }
    let got = cache.get_by_id(&id('1')).unwrap();
    assert_eq!(got.references, names);
    assert_eq!(cache.reference_count(&id('1')), 10_000);
    for name in &names[..9_999] {
        cache.update_with(name, None).unwrap();
    }
    assert_eq!(
        cache.get_by_id(&id('1')).unwrap().references,
        [names[9_999].clone()]
    );
}

#[test]
fn ambiguous_prefix_is_passed_through() {
    let mut index = ImageIndex::new();
    index.add(image('1', "a", "r1", 1)).unwrap();
    index
        .add(CriImage::new(
            format!("sha256:1{}", "0".repeat(63)).parse().unwrap(),
            "r2",
        ))
        .unwrap();
    assert!(matches!(index.get("1"), Err(CriError::Ambiguous { .. })));
}

/// The outer store's cases (§7.3): each starts from one image under ref-1.
fn fake_store() -> RefCache {
    let cache = RefCache::new();
    cache
        .update_with(
            "containerd.io/ref-1",
            Some(image('1', "test-chain-id-1", "containerd.io/ref-1", 10)),
        )
        .unwrap();
    cache
}

fn sorted_refs(cache: &RefCache, id: &ImageId) -> Vec<String> {
    let mut refs = cache.get(id.as_str()).unwrap().references.clone();
    refs.sort();
    refs
}

#[test]
fn update_of_a_reference_that_does_not_exist_goes_away() {
    let cache = fake_store();
    cache.update_with("containerd.io/ref-2", None).unwrap();
    assert_eq!(cache.list().len(), 1);
    assert_eq!(cache.resolve("containerd.io/ref-1").unwrap(), id('1'));
    assert!(matches!(
        cache.resolve("containerd.io/ref-2"),
        Err(CriError::NotFound { .. })
    ));
}

#[test]
fn new_reference_for_an_existing_image() {
    let cache = fake_store();
    cache
        .update_with(
            "containerd.io/ref-2",
            Some(image('1', "test-chain-id-1", "containerd.io/ref-2", 10)),
        )
        .unwrap();
    assert_eq!(cache.list().len(), 1);
    assert_eq!(
        sorted_refs(&cache, &id('1')),
        ["containerd.io/ref-1", "containerd.io/ref-2"]
    );
    assert_eq!(cache.resolve("containerd.io/ref-1").unwrap(), id('1'));
    assert_eq!(cache.resolve("containerd.io/ref-2").unwrap(), id('1'));
}

#[test]
fn new_reference_for_a_new_image() {
    let cache = fake_store();
    cache
        .update_with(
            "containerd.io/ref-2",
            Some(image('9', "test-chain-id-2", "containerd.io/ref-2", 20)),
        )
        .unwrap();
    assert_eq!(cache.list().len(), 2);
    assert_eq!(cache.resolve("containerd.io/ref-1").unwrap(), id('1'));
    assert_eq!(cache.resolve("containerd.io/ref-2").unwrap(), id('9'));
}

#[test]
fn existing_reference_moves_to_a_new_image_and_the_old_one_goes() {
    let cache = fake_store();
    cache
        .update_with(
            "containerd.io/ref-1",
            Some(image('9', "test-chain-id-2", "containerd.io/ref-1", 20)),
        )
        .unwrap();
    let list = cache.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, Some(id('9')));
    assert_eq!(list[0].references, ["containerd.io/ref-1"]);
    assert_eq!(cache.resolve("containerd.io/ref-1").unwrap(), id('9'));
    assert!(cache.get(id('1').as_str()).is_err());
}

#[test]
fn existing_reference_goes_away_with_its_image() {
    let cache = fake_store();
    cache.update_with("containerd.io/ref-1", None).unwrap();
    assert!(cache.list().is_empty());
    assert!(matches!(
        cache.resolve("containerd.io/ref-1"),
        Err(CriError::NotFound { .. })
    ));
}

/// containerd reconciles only the pinned state here; we also take the size
/// the reference now reaches (it may be another manifest of the config),
/// so a restart, which rebuilds the cache, does not change it.
#[test]
fn same_image_update_reconciles_pinned_and_size() {
    let cache = fake_store();
    let pinned = CriImage {
        pinned: true,
        ..image('1', "test-chain-id-1", "containerd.io/ref-1", 10)
    };
    cache
        .update_with("containerd.io/ref-1", Some(pinned))
        .unwrap();
    assert!(cache.get(id('1').as_str()).unwrap().pinned);
    cache
        .update_with(
            "containerd.io/ref-1",
            Some(image('1', "x", "containerd.io/ref-1", 99)),
        )
        .unwrap();
    let img = cache.get(id('1').as_str()).unwrap();
    assert!(!img.pinned);
    assert_eq!(
        (img.chain_id.as_str(), img.size),
        ("test-chain-id-1", 99),
        "pinning and size change, nothing else"
    );
}

struct Fixed(Vec<(String, ImageId)>);

impl ImageResolver for Fixed {
    fn resolve(&self, reference: &str) -> Result<Option<CriImage>, CriError> {
        Ok(self
            .0
            .iter()
            .find(|(r, _)| r == reference)
            .map(|(r, id)| CriImage::new(id.clone(), r)))
    }
}

#[test]
fn rebuild_and_update_go_through_the_resolver() {
    let mut resolver = Fixed(vec![
        ("a:1".into(), id('1')),
        ("b:1".into(), id('1')),
        ("c:1".into(), id('2')),
    ]);
    let cache = RefCache::rebuild(&resolver, ["a:1", "b:1", "c:1", "gone:1"]).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get(id('1').as_str()).unwrap().references.len(), 2);
    resolver.0.retain(|(r, _)| r != "c:1");
    cache.update(&resolver, "c:1").unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn concurrent_readers_and_a_writer() {
    let cache = std::sync::Arc::new(fake_store());
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    assert_eq!(cache.resolve("containerd.io/ref-1").unwrap(), id('1'));
                }
            })
        })
        .collect();
    for n in 0..200 {
        let reference = format!("containerd.io/extra-{n}");
        cache
            .update_with(
                &reference,
                Some(image('1', "test-chain-id-1", &reference, 10)),
            )
            .unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(cache.get(id('1').as_str()).unwrap().references.len(), 201);
}

/// Two names of one config through manifests of different sizes: the
/// image's size is the one of its first reference, whatever the order of
/// updates (ours, not containerd's, which keeps the last one added).
#[test]
fn the_size_of_an_image_with_two_manifests_follows_its_first_reference() {
    let (a, b) = ("docker.io/library/app:a", "docker.io/library/app:b");
    for order in [[(a, 10), (b, 20)], [(b, 20), (a, 10)]] {
        let mut index = ImageIndex::new();
        for (reference, size) in order {
            index
                .add(image('1', "chain", reference, size))
                .expect("add");
        }
        let got = index.get_by_id(&id('1')).expect("image");
        assert_eq!(got.references, [a, b]);
        assert_eq!(got.size, 10, "{order:?}");
        index.delete(id('1').as_str(), a).expect("delete a");
        assert_eq!(index.get_by_id(&id('1')).expect("image").size, 20);
        index.add(image('1', "chain", a, 10)).expect("add a again");
        assert_eq!(index.get_by_id(&id('1')).expect("image").size, 10);
    }
}

/// A name that moves to another manifest of the same config (a `docker
/// save` of an image first loaded from an OCI layout) takes that
/// manifest's size along.
#[test]
fn a_name_moved_to_another_manifest_of_the_same_image_updates_its_size() {
    let cache = RefCache::new();
    let reference = "docker.io/library/app:v1";
    cache
        .update_with(reference, Some(image('1', "chain", reference, 3044)))
        .expect("first manifest");
    cache
        .update_with(reference, Some(image('1', "chain", reference, 20599)))
        .expect("second manifest");
    let got = cache.get_by_id(&id('1')).expect("image");
    assert_eq!((got.references.len(), got.size), (1, 20599));
}
