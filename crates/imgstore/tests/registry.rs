//! Pull and push against a real registry (Debian's `docker-registry`,
//! started by each test on 127.0.0.1) with skopeo as the second judge, and
//! against a fake registry for the hostile cases: a manifest that does not
//! hash to its digest, a corrupt layer, a manifest over 4 MiB, a redirect
//! loop, the registry's error bodies; Basic auth (htpasswd) and the Bearer
//! token flow (a token server in the test, the registry trusting its
//! certificate) against the real registry too.

use std::process::Command;

use imgstore::backend::ErrorKind;
use imgstore::image::ImageStore;
use imgstore::registry::{
    ClientOptions, Credentials, LayerStatus, PROGRESS_STEP, PullEvent, PullOptions, PushOptions,
    PushStatus,
};
use imgstore::{Backend, Error, Platform, PlatformChoice, Store};

mod common;
#[path = "common/registry.rs"]
mod registry;

use common::{corpus, expected_image, open, snapshot, strings};
use registry::{FakeRegistry, RealRegistry, Reply, openssl, serve_layout, tls_certificates};

/// A store with the corpus's `oci/main` images.
fn corpus_store(dir: &std::path::Path) -> Store {
    let store = open(&dir.join("source"), Backend::Sqlite);
    store
        .import_oci_layout(corpus().join("oci/main"))
        .expect("import oci/main");
    store
}

/// The image `reference` names in `store`: its ID and diff IDs.
fn id_and_diff_ids(store: &Store, reference: &str) -> (String, Vec<String>) {
    let id = store
        .resolve(reference)
        .unwrap_or_else(|e| panic!("{reference}: {e}"));
    let image = store.image_store().get(&id).expect("image");
    (
        id.to_string(),
        image.diff_ids().iter().map(ToString::to_string).collect(),
    )
}

/// A pull's report and its events but the byte counts (the statuses
/// Docker prints when not on a terminal).
fn pull_events(store: &Store, reference: &str) -> (imgstore::registry::PullReport, Vec<PullEvent>) {
    let mut events = Vec::new();
    let report = store
        .pull_with_progress(reference, &PullOptions::default(), &mut |e| {
            if !matches!(e.status, LayerStatus::Downloading { .. }) {
                events.push(e.clone())
            }
        })
        .unwrap_or_else(|e| panic!("pull {reference}: {e}"));
    (report, events)
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run skopeo {args:?} (.ci/run installs it): {e}"));
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn push_then_pull_into_a_fresh_store_keeps_ids_diff_ids_and_manifests() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let corpus = corpus();
    for name in ["base", "child"] {
        let expected = expected_image(&corpus, name);
        let local = format!("registry.demo.test/demo/{name}:v1");
        let remote = format!("{}/demo/{name}:v1", registry.host);
        let mut events = Vec::new();
        let pushed = source
            .push_with_progress(&local, &remote, &PushOptions::default(), &mut |e| {
                if !matches!(e.status, PushStatus::Pushing { .. }) {
                    events.push(e.clone())
                }
            })
            .unwrap_or_else(|e| panic!("push {local}: {e}"));
        assert_eq!(pushed.digest.to_string(), expected["manifest_digest"]);
        assert_eq!(
            pushed.size,
            expected["manifest_size"].as_u64().expect("size")
        );
        assert_eq!(pushed.tag, "v1");
        assert_eq!(pushed.repository, format!("{}/demo/{name}", registry.host));
        // Top layer first, each Preparing, then Pushed or already there.
        let diff_ids = strings(&expected["diff_ids"]);
        let preparing: Vec<String> = events
            .iter()
            .filter(|e| e.status == PushStatus::Preparing)
            .map(|e| e.diff_id.to_string())
            .collect();
        let mut top_first = diff_ids.clone();
        top_first.reverse();
        assert_eq!(preparing, top_first);
        assert_eq!(events.len(), 2 * diff_ids.len());
    }

    let target = open(&dir.path().join("target"), Backend::Fs);
    for name in ["base", "child"] {
        let expected = expected_image(&corpus, name);
        let remote = format!("{}/demo/{name}:v1", registry.host);
        let report = target
            .pull(&remote, &PullOptions::default())
            .unwrap_or_else(|e| panic!("pull {remote}: {e}"));
        assert_eq!(report.name, remote);
        assert_eq!(report.digest.to_string(), expected["manifest_digest"]);
        assert!(!report.up_to_date);
        let (id, diff_ids) = id_and_diff_ids(&target, &remote);
        assert_eq!(id, expected["image_id"]);
        assert_eq!(diff_ids, strings(&expected["diff_ids"]));
        assert_eq!(report.images.len(), 1);
        assert_eq!(report.images[0].id.to_string(), expected["image_id"]);
    }
    // The pulled images export as the originals did: same names resolve.
    assert_eq!(target.images().expect("list images").len(), 2);
}

#[test]
fn pull_reuses_stored_layers_and_downloads_nothing_when_all_are_present() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    for name in ["base", "child"] {
        source
            .push(
                &format!("registry.demo.test/demo/{name}:v1"),
                &format!("{}/demo/{name}:v1", registry.host),
                &PushOptions::default(),
            )
            .expect("push");
    }
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let base = format!("{}/demo/base:v1", registry.host);
    let child = format!("{}/demo/child:v1", registry.host);
    let (report, events) = pull_events(&target, &base);
    let layers = expected_image(&corpus(), "base")["layer_count"]
        .as_u64()
        .expect("layer_count");
    assert_eq!(report.blobs_downloaded, layers + 1, "layers and config");
    // Every layer announced, downloaded (three at once, in any order),
    // then registered in order.
    let n = layers as usize;
    let statuses: Vec<LayerStatus> = events.iter().map(|e| e.status).collect();
    assert_eq!(statuses[..n], vec![LayerStatus::PullingFsLayer; n][..]);
    let order: Vec<&imgstore::digest::Digest> = events[..n].iter().map(|e| &e.layer).collect();
    let downloads = &events[n..3 * n];
    for pair in downloads.chunks(2) {
        assert_eq!(pair[0].status, LayerStatus::VerifyingChecksum);
        assert_eq!(pair[1].status, LayerStatus::DownloadComplete);
        assert_eq!(pair[0].layer, pair[1].layer);
    }
    let mut downloaded: Vec<&imgstore::digest::Digest> =
        downloads.iter().step_by(2).map(|e| &e.layer).collect();
    downloaded.sort();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(downloaded, sorted);
    let completed: Vec<&imgstore::digest::Digest> = events[3 * n..]
        .iter()
        .map(|e| {
            assert_eq!(e.status, LayerStatus::PullComplete);
            &e.layer
        })
        .collect();
    assert_eq!(completed, order);

    // child shares base's layers: only its own are downloaded.
    let (report, events) = pull_events(&target, &child);
    let child_layers = expected_image(&corpus(), "child")["layer_count"]
        .as_u64()
        .expect("layer_count");
    let already = events
        .iter()
        .filter(|e| e.status == LayerStatus::AlreadyExists)
        .count() as u64;
    assert_eq!(already, layers);
    assert_eq!(report.blobs_downloaded, child_layers - layers + 1);

    // Everything present: the manifest only, no blob, and (as Docker) no
    // line per layer.
    let before = snapshot(&target);
    let (report, events) = pull_events(&target, &child);
    assert_eq!(report.blobs_downloaded, 0);
    assert_eq!(report.requests, 1, "one GET of the manifest");
    assert!(report.up_to_date);
    assert_eq!(events, []);
    assert_eq!(snapshot(&target), before);

    // The same image by digest: a new name, nothing downloaded.
    let by_digest = format!("{}/demo/child@{}", registry.host, report.digest);
    let (report, events) = pull_events(&target, &by_digest);
    assert_eq!(report.blobs_downloaded, 0);
    assert!(!report.up_to_date);
    assert_eq!(report.name, by_digest);
    assert_eq!(events, []);
}

#[test]
fn skopeo_copies_into_the_registry_and_imgstore_pulls_the_corpus_ids() {
    let registry = RealRegistry::start();
    let corpus = corpus();
    let layout = corpus.join("oci/main");
    let expected = expected_image(&corpus, "sibling");
    let remote = format!("{}/skopeo/sibling:v1", registry.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!(
            "oci:{}:registry.demo.test/demo/sibling:v1",
            layout.display()
        ),
        &format!("docker://{remote}"),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    let report = store.pull(&remote, &PullOptions::default()).expect("pull");
    let (id, diff_ids) = id_and_diff_ids(&store, &remote);
    assert_eq!(id, expected["image_id"]);
    assert_eq!(diff_ids, strings(&expected["diff_ids"]));
    assert_eq!(report.digest.to_string(), expected["manifest_digest"]);
}

#[test]
fn skopeo_inspects_what_imgstore_pushes_with_the_same_digest() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/pushed/withenv:v2", registry.host);
    let report = source
        .push(
            "registry.demo.test/demo/withenv:v1",
            &remote,
            &PushOptions::default(),
        )
        .expect("push");
    let inspect: serde_json::Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]))
    .expect("skopeo inspect prints JSON");
    assert_eq!(inspect["Digest"], report.digest.to_string());
    let expected = expected_image(&corpus(), "withenv");
    assert_eq!(inspect["Digest"], expected["manifest_digest"]);
    let layers: Vec<String> = strings(&inspect["Layers"]);
    let expected_layers: Vec<String> = expected["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect();
    assert_eq!(layers, expected_layers);
}

#[test]
fn a_docker_save_image_pushes_its_synthesised_manifest_and_pulls_back_the_same_image() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = open(&dir.path().join("source"), Backend::Fs);
    let imported = source
        .import_archive(corpus().join("docker/base.docker.tar"))
        .expect("import docker save");
    let id = imported[0].id.clone();
    let remote = format!("{}/saved/base:latest", registry.host);
    let report = source
        .push(id.as_str(), &remote, &PushOptions::default())
        .expect("push by image ID");
    assert_eq!(report.digest, imported[0].manifest);
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let pulled = target.pull(&remote, &PullOptions::default()).expect("pull");
    assert_eq!(pulled.images[0].id, id);
    let source_image = source.image_store().get(&id).expect("image");
    let target_image = target.image_store().get(&id).expect("image");
    assert_eq!(source_image.diff_ids(), target_image.diff_ids());
}

#[test]
fn pushing_again_finds_every_layer_already_there() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/again/base:v1", registry.host);
    let local = "registry.demo.test/demo/base:v1";
    let first = source
        .push(local, &remote, &PushOptions::default())
        .expect("first push");
    let layers = expected_image(&corpus(), "base")["layer_count"]
        .as_u64()
        .expect("layer_count");
    assert_eq!(first.blobs_uploaded, layers + 1);
    let mut events = Vec::new();
    let second = source
        .push_with_progress(local, &remote, &PushOptions::default(), &mut |e| {
            events.push(e.status)
        })
        .expect("second push");
    assert_eq!(second.blobs_uploaded, 0);
    assert_eq!(second.digest, first.digest);
    assert_eq!(
        events
            .iter()
            .filter(|s| **s == PushStatus::LayerAlreadyExists)
            .count() as u64,
        layers
    );
}

/// Pulls `reference` into a fresh store and checks the store is
/// unchanged: the error.
fn refused_pull(reference: &str) -> Error {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    let err = refused_pull_from(&store, reference, &PullOptions::default());
    assert!(store.images().expect("list images").is_empty());
    err
}

/// Pulls `reference` into `store`, which must refuse and stay unchanged.
fn refused_pull_from(store: &Store, reference: &str, options: &PullOptions) -> Error {
    let before = snapshot(store);
    let err = store
        .pull(reference, options)
        .expect_err("the pull must be refused");
    assert_eq!(snapshot(store), before, "a refused pull changed the store");
    err
}

#[test]
fn a_manifest_that_does_not_hash_to_its_digest_is_refused() {
    let layout = corpus().join("oci/main");
    let honest = serve_layout(&layout);
    let fake = FakeRegistry::start(move |request| {
        let mut reply = honest(request);
        if request.path.contains("/manifests/") {
            // One byte changed: the registry lies about what it serves.
            if let Some(byte) = reply.body.iter_mut().find(|b| **b == b'2') {
                *byte = b'3';
            }
        }
        reply
    });
    let err = refused_pull(&format!("{}/demo/base:v1", fake.host));
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    let message = err.to_string();
    assert!(message.contains("hashes to"), "{message}");
    assert!(
        message.contains("sha256:011c9b513b96e67a3130e45e98d811d566e80c861da1a0b7af64a65b3f4bcdf4"),
        "{message}"
    );
}

#[test]
fn a_layer_that_does_not_hash_to_its_digest_is_refused_and_nothing_is_named() {
    let layout = corpus().join("oci/main");
    let expected = expected_image(&corpus(), "base");
    let top_layer = expected["layers"][2]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let honest = serve_layout(&layout);
    let fake = FakeRegistry::start(move |request| {
        let mut reply = honest(request);
        if request.method == "GET"
            && request.path.ends_with(&top_layer)
            && let Some(last) = reply.body.last_mut()
        {
            *last ^= 0xff;
        }
        reply
    });
    let err = refused_pull(&format!("{}/demo/base:v1", fake.host));
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
}

#[test]
fn a_manifest_over_four_mib_is_refused() {
    let fake = FakeRegistry::start(|request| {
        if request.path.contains("/manifests/") {
            Reply::new(200, vec![b' '; (4 << 20) + 1])
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        } else {
            Reply::new(200, "{}")
        }
    });
    let err = refused_pull(&format!("{}/big/image:v1", fake.host));
    assert_eq!(
        err.to_string(),
        format!(
            "http://{}/v2/big/image/manifests/v1: the manifest is more than 4194304 bytes",
            fake.host
        )
    );
}

#[test]
fn the_registry_error_body_is_shown() {
    let layout = corpus().join("oci/main");
    let fake = FakeRegistry::start(serve_layout(&layout));
    let err = refused_pull(&format!("{}/demo/absent:v9", fake.host));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "GET http://{}/v2/demo/absent/manifests/v9: 404: MANIFEST_UNKNOWN: manifest unknown",
            fake.host
        )
    );
}

#[test]
fn a_redirect_loop_is_refused_after_ten_hops() {
    let fake = FakeRegistry::start(|request| {
        Reply::new(302, "").header("Location", &format!("{}x", request.path))
    });
    let err = refused_pull(&format!("{}/loop/image:v1", fake.host));
    assert_eq!(
        err.to_string(),
        format!(
            "http://{}/v2/loop/image/manifests/v1: more than 10 redirects",
            fake.host
        )
    );
    assert_eq!(fake.seen().len(), 11);
}

#[test]
fn server_errors_are_retried_with_backoff_then_reported() {
    let fake = FakeRegistry::start(|_| Reply::new(503, "busy"));
    let err = refused_pull(&format!("{}/busy/image:v1", fake.host));
    assert_eq!(fake.seen().len(), 4, "four attempts");
    assert!(err.to_string().ends_with(": 503: busy"), "{err}");
}

#[test]
fn the_bearer_token_flow_fetches_a_token_per_scope_and_sends_it() {
    let layout = corpus().join("oci/main");
    let honest = serve_layout(&layout);
    let realm = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let realm_in = std::sync::Arc::clone(&realm);
    let fake = FakeRegistry::start(move |request| {
        if request.path.starts_with("/token?") {
            assert!(
                request.path.contains("service=fake-registry"),
                "{}",
                request.path
            );
            assert!(
                request
                    .path
                    .contains("scope=repository%3Ademo%2Fbase%3Apull"),
                "{}",
                request.path
            );
            return Reply::new(200, r#"{"token":"t0ken"}"#);
        }
        if request.header("Authorization") != Some("Bearer t0ken") {
            let realm = realm_in.lock().expect("realm").clone();
            return Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake-registry",scope="repository:demo/base:pull""#),
            );
        }
        honest(request)
    });
    *realm.lock().expect("realm") = format!("http://{}/token", fake.host);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    let reference = format!("{}/demo/base:v1", fake.host);
    store
        .pull(&reference, &PullOptions::default())
        .expect("pull with a token");
    let expected = expected_image(&corpus(), "base");
    assert_eq!(
        store.resolve(&reference).expect("pulled").to_string(),
        expected["image_id"]
    );
    let tokens = fake
        .seen()
        .iter()
        .filter(|r| r.path.starts_with("/token?"))
        .count();
    assert_eq!(tokens, 1, "one token for the one scope");
}

#[test]
fn a_bad_reference_is_refused_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    let err = store
        .pull("Upper/Case", &PullOptions::default())
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .starts_with("invalid reference \"Upper/Case\""),
        "{err}"
    );
}

#[test]
fn basic_auth_pushes_and_pulls_with_credentials_and_refuses_without() {
    let registry = RealRegistry::start_htpasswd("alice", "s3cret");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/private/base:v1", registry.host);
    let local = "registry.demo.test/demo/base:v1";

    let err = source
        .push(local, &remote, &PushOptions::default())
        .expect_err("anonymous push refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    // A HEAD's answer has no body: the status says it.
    assert!(err.to_string().ends_with(": 401"), "{err}");

    let mut wrong = ClientOptions::default();
    wrong.credentials = Some(Credentials {
        username: "alice".to_owned(),
        password: "wrong".to_owned(),
    });
    let mut options = PushOptions::default();
    options.client = wrong;
    let err = source
        .push(local, &remote, &options)
        .expect_err("a wrong password is refused");
    // A HEAD's answer has no body: the status says it.
    assert!(err.to_string().ends_with(": 401"), "{err}");

    let mut right = ClientOptions::default();
    right.credentials = Some(Credentials {
        username: "alice".to_owned(),
        password: "s3cret".to_owned(),
    });
    let mut options = PushOptions::default();
    options.client = right.clone();
    let pushed = source
        .push(local, &remote, &options)
        .expect("push with credentials");

    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let err = refused_pull_from(&target, &remote, &PullOptions::default());
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "GET http://{}/v2/private/base/manifests/v1: 401: UNAUTHORIZED: authentication required",
            registry.host
        )
    );
    let mut options = PullOptions::default();
    options.client = right;
    let pulled = target
        .pull(&remote, &options)
        .expect("pull with credentials");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        target.resolve(&remote).expect("pulled").to_string(),
        expected_image(&corpus(), "base")["image_id"]
    );
}

/// Writes an OCI layout whose `index.json` names (`v1`) an image index of
/// three platforms' images (one small plain layer each); the image IDs by
/// platform.
fn multi_platform_layout(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    use serde_json::json;
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    let blob = |media_type: &str, bytes: &[u8]| {
        let digest = imgstore::digest::Digest::from_bytes(bytes);
        std::fs::write(dir.join("blobs/sha256").join(digest.encoded()), bytes).expect("blob");
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    };
    let mut ids = Vec::new();
    let mut manifests = Vec::new();
    for platform in ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"] {
        let parts: Vec<&str> = platform.split('/').collect();
        // A tar of one 512-byte header block and the end blocks is enough
        // of a layer for the registry and the store.
        let layer = {
            let mut builder = tar::Builder::new(Vec::new());
            let contents = format!("built for {platform}\n");
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, "platform.txt", contents.as_bytes())
                .expect("tar");
            builder.into_inner().expect("tar")
        };
        let diff_id = imgstore::digest::Digest::from_bytes(&layer);
        let mut config = json!({
            "architecture": parts[1],
            "os": parts[0],
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        if let Some(variant) = parts.get(2) {
            config["variant"] = json!(variant);
        }
        let config = blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).expect("json"),
        );
        ids.push((
            platform,
            config["digest"].as_str().expect("digest").to_owned(),
        ));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [blob("application/vnd.oci.image.layer.v1.tar", &layer)],
        });
        let mut descriptor = blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).expect("json"),
        );
        descriptor["platform"] = json!({"os": parts[0], "architecture": parts[1]});
        if let Some(variant) = parts.get(2) {
            descriptor["platform"]["variant"] = json!(variant);
        }
        manifests.push(descriptor);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let mut top = blob(
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).expect("json"),
    );
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    let layout_index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&layout_index).expect("json"),
    )
    .expect("write index.json");
    ids
}

#[test]
fn a_multi_platform_index_copied_by_skopeo_pulls_the_platform_asked_for() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    let ids = multi_platform_layout(&layout);
    let remote = format!("{}/multi/app:v1", registry.host);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{remote}"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]);
    let index_digest = imgstore::digest::Digest::from_bytes(&raw);

    for (platform, id) in &ids {
        let store = open(
            &dir.path().join(platform.replace('/', "-")),
            Backend::Sqlite,
        );
        let options = PullOptions::with_platform(PlatformChoice::Exact(
            platform.parse::<Platform>().expect("platform"),
        ));
        let report = store.pull(&remote, &options).expect("pull");
        assert_eq!(report.digest, index_digest, "the name points at the index");
        assert_eq!(report.images.len(), 1);
        assert_eq!(&report.images[0].id.to_string(), id, "{platform}");
        assert_eq!(&store.resolve(&remote).expect("resolve").to_string(), id);
    }

    // Every platform: three images, the name on the index.
    let store = open(&dir.path().join("all"), Backend::Sqlite);
    let report = store
        .pull(&remote, &PullOptions::with_platform(PlatformChoice::All))
        .expect("pull every platform");
    assert_eq!(report.digest, index_digest);
    let mut pulled: Vec<String> = report.images.iter().map(|i| i.id.to_string()).collect();
    pulled.sort();
    let mut expected: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    expected.sort();
    assert_eq!(pulled, expected);
    assert_eq!(store.images().expect("list images").len(), 3);

    let store = open(&dir.path().join("windows"), Backend::Sqlite);
    let options = PullOptions::with_platform(PlatformChoice::Exact(
        "windows/amd64".parse::<Platform>().expect("platform"),
    ));
    let err = refused_pull_from(&store, &remote, &options);
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A fake registry serving the corpus whose downloads of `layer` are cut
/// in half: always, or only the first (a `Range` request gets the rest).
fn cutting_registry(layer: String, always: bool) -> FakeRegistry {
    let honest = serve_layout(&corpus().join("oci/main"));
    FakeRegistry::start(move |request| {
        let reply = honest(request);
        if request.method != "GET" || !request.path.ends_with(&layer) {
            return reply;
        }
        let full = reply.body.len();
        match request.header("Range") {
            Some(range) if !always => {
                let from: usize = range
                    .strip_prefix("bytes=")
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|r| r.parse().ok())
                    .expect("a Range of bytes=N-");
                Reply::new(206, reply.body[from..].to_vec()).header(
                    "Content-Range",
                    &format!("bytes {from}-{}/{full}", full - 1),
                )
            }
            _ => {
                // The announced length, then half the bytes and a close.
                let half = reply.body[..full / 2].to_vec();
                Reply::new(200, half).header("Content-Length", &full.to_string())
            }
        }
    })
}

#[test]
fn a_download_cut_short_resumes_with_a_range_request() {
    let expected = expected_image(&corpus(), "base");
    let layer = expected["layers"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let fake = cutting_registry(layer.clone(), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    let reference = format!("{}/demo/base:v1", fake.host);
    store
        .pull(&reference, &PullOptions::default())
        .expect("the pull resumes");
    assert_eq!(
        store.resolve(&reference).expect("pulled").to_string(),
        expected["image_id"]
    );
    let ranges: Vec<String> = fake
        .seen()
        .iter()
        .filter(|r| r.path.ends_with(&layer))
        .filter_map(|r| r.header("Range").map(str::to_owned))
        .collect();
    let half = expected["layers"][0]["size"].as_u64().expect("size") / 2;
    assert_eq!(ranges, [format!("bytes={half}-")]);
}

#[test]
fn a_download_cut_short_every_time_fails_after_three_resumes_and_changes_nothing() {
    let expected = expected_image(&corpus(), "base");
    let layer = expected["layers"][1]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let fake = cutting_registry(layer.clone(), true);
    let err = refused_pull(&format!("{}/demo/base:v1", fake.host));
    let message = err.to_string();
    assert!(message.contains("3 resumes"), "{message}");
    assert!(message.contains(&layer), "{message}");
    let gets = fake
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&layer))
        .count();
    assert_eq!(gets, 4, "the download and three resumes");
}

/// base64 (RFC 4648), standard or URL-safe without padding (JWT).
fn base64(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if !url_safe {
                out.push('=');
            }
        }
    }
    out
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// A token server as Docker Hub's auth service works: it grants what the
/// scope asks, as an RS256 JWT whose `x5c` header carries a certificate
/// the registry trusts (`rootcertbundle`). Returns the server and the
/// registry's `auth:` section.
fn token_server(dir: &std::path::Path) -> (FakeRegistry, String) {
    let key = dir.join("token.key");
    let cert = dir.join("token.crt");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=imgstore-test-issuer",
        "-keyout",
        key.to_str().expect("path"),
        "-out",
        cert.to_str().expect("path"),
    ]);
    let der = openssl(&[
        "x509",
        "-in",
        cert.to_str().expect("path"),
        "-outform",
        "DER",
    ]);
    let x5c = base64(&der, false);
    let key_path = key.to_str().expect("path").to_owned();
    let sign_dir = dir.to_path_buf();
    let server = FakeRegistry::start(move |request| {
        let query = request.path.split_once('?').map_or("", |(_, q)| q);
        let mut access = Vec::new();
        let mut service = String::new();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match name {
                "service" => service = value,
                "scope" => {
                    let parts: Vec<&str> = value.splitn(3, ':').collect();
                    access.push(serde_json::json!({
                        "type": parts[0],
                        "name": parts[1],
                        "actions": parts[2].split(',').collect::<Vec<_>>(),
                    }));
                }
                _ => {}
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": "imgstore-test-issuer",
            "sub": "alice",
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", access.len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64(&serde_json::to_vec(&header).expect("json"), true),
            base64(&serde_json::to_vec(&claims).expect("json"), true)
        );
        let input = sign_dir.join(format!("input-{}", now));
        std::fs::write(&input, &signing_input).expect("write");
        let signature = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &key_path,
            input.to_str().expect("path"),
        ]);
        let token = format!("{signing_input}.{}", base64(&signature, true));
        Reply::new(200, serde_json::json!({"token": token}).to_string())
            .header("Content-Type", "application/json")
    });
    let auth = format!(
        "auth:\n  token:\n    realm: http://{}/token\n    service: imgstore-test-registry\n    \
         issuer: imgstore-test-issuer\n    rootcertbundle: {}\n",
        server.host,
        cert.display()
    );
    (server, auth)
}

#[test]
fn the_bearer_flow_against_a_token_authenticated_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tokens, auth) = token_server(dir.path());
    let registry = RealRegistry::start_with_config(move |_| auth);
    let source = corpus_store(dir.path());
    let remote = format!("{}/demo/base:v1", registry.host);
    let mut client = ClientOptions::default();
    client.credentials = Some(Credentials {
        username: "alice".to_owned(),
        password: "s3cret".to_owned(),
    });
    let mut push = PushOptions::default();
    push.client = client.clone();
    let pushed = source
        .push("registry.demo.test/demo/base:v1", &remote, &push)
        .expect("push with a token");
    let target = open(&dir.path().join("target"), Backend::Fs);
    let mut pull = PullOptions::default();
    pull.client = client;
    let pulled = target.pull(&remote, &pull).expect("pull with a token");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        target.resolve(&remote).expect("pulled").to_string(),
        expected_image(&corpus(), "base")["image_id"]
    );
    let seen = tokens.seen();
    let scopes: Vec<&str> = seen
        .iter()
        .map(|r| r.path.split_once("scope=").map_or("", |(_, s)| s))
        .collect();
    // One token per scope and client: push's, then pull's.
    assert_eq!(
        scopes,
        [
            "repository%3Ademo%2Fbase%3Apull%2Cpush",
            "repository%3Ademo%2Fbase%3Apull"
        ]
    );
    assert!(
        seen.iter()
            .all(|r| r.header("Authorization") == Some("Basic YWxpY2U6czNjcmV0")),
        "the credentials go to the token endpoint"
    );
}

#[test]
fn a_tls_registry_is_trusted_through_its_certs_d_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [ca, cert, key] = tls_certificates(dir.path(), "right");
    let registry = RealRegistry::start_tls(&cert, &key);
    let port = registry.host.rsplit_once(':').expect("port").1.to_owned();
    let host = format!("localhost:{port}");
    // Docker's layout: certs.d/<host:port>/ca.crt.
    let certs = dir.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&host)).expect("mkdir");
    std::fs::copy(&ca, certs.join(&host).join("ca.crt")).expect("copy ca.crt");
    let mut client = ClientOptions::default();
    client.certs_dir = Some(certs);

    let source = corpus_store(dir.path());
    let remote = format!("{host}/secure/base:v1");
    let mut push = PushOptions::default();
    push.client = client.clone();
    let pushed = source
        .push("registry.demo.test/demo/base:v1", &remote, &push)
        .expect("push over TLS");
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let mut pull = PullOptions::default();
    pull.client = client;
    let pulled = target.pull(&remote, &pull).expect("pull over TLS");
    assert_eq!(pulled.digest, pushed.digest);

    // Another CA's certificate in certs.d: refused, naming the problem.
    let [other_ca, ..] = tls_certificates(dir.path(), "other");
    let other = dir.path().join("other-certs.d");
    std::fs::create_dir_all(other.join(&host)).expect("mkdir");
    std::fs::copy(&other_ca, other.join(&host).join("ca.crt")).expect("copy ca.crt");
    let mut pull = PullOptions::default();
    pull.client.certs_dir = Some(other);
    let store = open(&dir.path().join("refused"), Backend::Sqlite);
    let err = refused_pull_from(&store, &remote, &pull);
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.to_string()
            .starts_with(&format!("GET https://{host}/v2/secure/base/manifests/v1: ")),
        "{err}"
    );
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn a_push_to_another_repository_of_the_registry_mounts_the_blobs() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let first = format!("{}/demo/base:v1", registry.host);
    source
        .tag("registry.demo.test/demo/base:v1", &first)
        .expect("tag");
    source
        .push(&first, &first, &PushOptions::default())
        .expect("first push");
    let second = format!("{}/copies/base:v1", registry.host);
    let mut events = Vec::new();
    let report = source
        .push_with_progress(&first, &second, &PushOptions::default(), &mut |e| {
            events.push(e.clone())
        })
        .expect("second push");
    assert_eq!(report.blobs_uploaded, 0, "everything mounted");
    let mounted: Vec<Option<&str>> = events
        .iter()
        .filter(|e| e.status != PushStatus::Preparing)
        .map(|e| {
            assert_eq!(e.status, PushStatus::Mounted);
            e.mounted_from.as_deref()
        })
        .collect();
    let layers = expected_image(&corpus(), "base")["layer_count"]
        .as_u64()
        .expect("layer_count");
    assert_eq!(mounted, vec![Some("demo/base"); layers as usize]);
    // The mounted repository serves the image.
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let pulled = target.pull(&second, &PullOptions::default()).expect("pull");
    assert_eq!(pulled.digest, report.digest);
}

#[test]
fn a_manifest_whose_layers_differ_from_the_configs_diff_ids_is_refused() {
    use imgstore::digest::Digest;
    let layer = b"not even a tar, never downloaded".to_vec();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [
            Digest::from_bytes(&layer).to_string(),
            Digest::from_bytes(b"a second diff").to_string(),
        ]},
    })
    .to_string();
    let config_digest = Digest::from_bytes(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": Digest::from_bytes(&layer).to_string(), "size": layer.len()}],
    })
    .to_string();
    let manifest_digest = Digest::from_bytes(manifest.as_bytes());
    let expected = format!(
        "manifest {manifest_digest}: 1 layers, but config {config_digest} lists 2 diff IDs"
    );
    let blob_path = format!("/blobs/{config_digest}");
    let config_path = blob_path.clone();
    let fake = FakeRegistry::start(move |request| {
        if request.path.contains("/manifests/") {
            Reply::new(200, manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", manifest_digest.as_str())
        } else if request.path.ends_with(&blob_path) {
            Reply::new(200, config.clone())
        } else {
            Reply::new(404, "")
        }
    });
    let err = refused_pull(&format!("{}/odd/image:v1", fake.host));
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.to_string(), expected);
    // No layer blob was requested: the plan refused before any download.
    assert!(
        fake.seen()
            .iter()
            .all(|r| !r.path.contains("/blobs/") || r.path.ends_with(&config_path))
    );
}

#[test]
fn layers_beyond_the_concurrent_downloads_wait() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/demo/child:v1", registry.host);
    source
        .push(
            "registry.demo.test/demo/child:v1",
            &remote,
            &PushOptions::default(),
        )
        .expect("push");
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let mut options = PullOptions::default();
    options.max_concurrent_downloads = 2;
    let mut events = Vec::new();
    let report = target
        .pull_with_progress(&remote, &options, &mut |e| events.push(e.clone()))
        .expect("pull");
    let expected = expected_image(&corpus(), "child");
    let layers: Vec<String> = expected["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect();
    let waiting: Vec<String> = events
        .iter()
        .filter(|e| e.status == LayerStatus::Waiting)
        .map(|e| e.layer.to_string())
        .collect();
    assert_eq!(waiting, layers[2..]);
    assert_eq!(report.images[0].id.to_string(), expected["image_id"]);
}

/// The corpus image `name`'s layers, bottom first: (digest, size).
fn corpus_layers(name: &str) -> Vec<(imgstore::digest::Digest, u64)> {
    expected_image(&corpus(), name)["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            let digest = l["digest"]
                .as_str()
                .expect("digest")
                .parse()
                .expect("digest");
            (digest, l["size"].as_u64().expect("size"))
        })
        .collect()
}

#[test]
fn a_pull_reports_each_layers_bytes_between_its_docker_statuses() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/demo/base:v1", registry.host);
    source
        .push(
            "registry.demo.test/demo/base:v1",
            &remote,
            &PushOptions::default(),
        )
        .expect("push");
    let layers = corpus_layers("base");
    assert!(layers.iter().all(|(_, size)| *size < PROGRESS_STEP));

    // One download at a time: the whole sequence is fixed.
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let mut options = PullOptions::default();
    options.max_concurrent_downloads = 1;
    let mut events = Vec::new();
    target
        .pull_with_progress(&remote, &options, &mut |e| events.push(e.clone()))
        .expect("pull");
    let event = |layer: &imgstore::digest::Digest, status| PullEvent {
        layer: layer.clone(),
        status,
    };
    let mut expected = Vec::new();
    for (layer, _) in &layers {
        expected.push(event(layer, LayerStatus::PullingFsLayer));
    }
    for (layer, _) in &layers[1..] {
        expected.push(event(layer, LayerStatus::Waiting));
    }
    for (layer, size) in &layers {
        for current in [0, *size] {
            let total = *size;
            expected.push(event(layer, LayerStatus::Downloading { current, total }));
        }
        expected.push(event(layer, LayerStatus::VerifyingChecksum));
        expected.push(event(layer, LayerStatus::DownloadComplete));
    }
    for (layer, _) in &layers {
        expected.push(event(layer, LayerStatus::PullComplete));
    }
    assert_eq!(events, expected);
}

#[test]
fn a_push_reports_each_layers_bytes_before_pushed() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/demo/base:v1", registry.host);
    // One upload at a time: the whole sequence is fixed.
    let mut options = PushOptions::default();
    options.max_concurrent_uploads = 1;
    let mut events = Vec::new();
    source
        .push_with_progress(
            "registry.demo.test/demo/base:v1",
            &remote,
            &options,
            &mut |e| events.push((e.layer.clone(), e.status)),
        )
        .expect("push");
    let mut top_first = corpus_layers("base");
    top_first.reverse();
    let mut expected: Vec<_> = top_first
        .iter()
        .map(|(layer, _)| (layer.clone(), PushStatus::Preparing))
        .collect();
    for (layer, _) in &top_first[1..] {
        expected.push((layer.clone(), PushStatus::Waiting));
    }
    for (layer, size) in &top_first {
        for current in [0, *size] {
            let total = *size;
            expected.push((layer.clone(), PushStatus::Pushing { current, total }));
        }
        expected.push((layer.clone(), PushStatus::Pushed));
    }
    assert_eq!(events, expected);
}

/// An image of three layers of random bytes (`sizes`, uncompressed tar
/// layers), imported from an OCI layout made here; its name.
fn random_layers_store(dir: &std::path::Path, sizes: &[usize]) -> (Store, String) {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let write_blob = |bytes: &[u8]| {
        let digest = imgstore::digest::Algorithm::Sha256.from_bytes(bytes);
        std::fs::write(blobs.join(digest.encoded()), bytes).expect("write blob");
        (digest.to_string(), bytes.len())
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut layers = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let mut data = vec![0u8; *size];
        for byte in &mut data {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = seed as u8;
        }
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("file{i}"), &data[..])
            .expect("tar");
        layers.push(write_blob(&tar.into_inner().expect("tar")));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>()},
    });
    let (config_digest, config_size) = write_blob(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s
        })).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size) = write_blob(manifest.to_string().as_bytes());
    let name = "registry.demo.test/demo/random:v1";
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let store = open(&dir.join("source"), Backend::Sqlite);
    store.import_oci_layout(&layout).expect("import");
    (store, name.to_owned())
}

#[test]
fn blobs_above_the_chunk_size_are_pushed_in_chunks_that_skopeo_reads_back() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Layers of 1, 2.5 and 0.1 MiB in 1 MiB chunks: 2 + 3 PATCHes; the
    // smallest layer and the config go whole.
    let (source, local) = random_layers_store(dir.path(), &[1 << 20, 5 << 19, 100 << 10]);
    let remote = format!("{}/chunked/random:v1", registry.host);
    let mut options = PushOptions::default();
    options.chunk_size = 1 << 20;
    let pushed = source
        .push(&local, &remote, &options)
        .expect("push in chunks");
    assert_eq!(pushed.blobs_uploaded, 4);
    assert_eq!(pushed.chunks_uploaded, 2 + 3);

    // skopeo reads back the manifest and every blob under its digest.
    let inspect: serde_json::Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]))
    .expect("manifest JSON");
    // A dir: copy keeps the blobs as they are (oci: would compress them).
    let copied = dir.path().join("copied");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{remote}"),
        &format!("dir:{}", copied.display()),
    ]);
    for layer in inspect["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        let bytes =
            std::fs::read(copied.join(&digest["sha256:".len()..])).expect("blob copied by skopeo");
        assert_eq!(
            imgstore::digest::Algorithm::Sha256
                .from_bytes(&bytes)
                .to_string(),
            digest
        );
        assert_eq!(bytes.len() as u64, layer["size"].as_u64().expect("size"));
    }
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let pulled = target.pull(&remote, &PullOptions::default()).expect("pull");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        pulled.images[0].id,
        source.resolve(&local).expect("source image")
    );
}

#[test]
fn a_chunked_upload_sends_each_range_then_the_digest() {
    // The fake registry accepts every upload request: the requests show
    // the chunks' ranges, each sent to the Location the last answer gave.
    let registry = FakeRegistry::start(|request| match request.method.as_str() {
        "HEAD" => Reply::new(404, ""),
        "POST" => Reply::new(202, "").header("Location", "/v2/c/blobs/uploads/u0"),
        "PATCH" => {
            let end = request
                .header("Content-Range")
                .and_then(|r| r.split_once('-'));
            let next = format!("/v2/c/blobs/uploads/u{}", end.map_or("", |(_, end)| end));
            Reply::new(202, "").header("Location", &next)
        }
        _ => Reply::new(201, ""),
    });
    let client =
        imgstore::registry::Client::new(&registry.host, &ClientOptions::default()).expect("client");
    let blob = vec![7u8; 2500];
    let digest = imgstore::digest::Algorithm::Sha256.from_bytes(&blob);
    let patches = client
        .put_blob("c", &digest, 2500, &mut &blob[..], 1000)
        .expect("chunked upload");
    assert_eq!(patches, 3);
    let seen: Vec<(String, String, Option<String>, Option<String>)> = registry
        .seen()
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.header("Content-Range").map(str::to_owned),
                r.header("Content-Length").map(str::to_owned),
            )
        })
        .collect();
    let patch = |path: &str, range: &str, length: &str| {
        (
            "PATCH".to_owned(),
            path.to_owned(),
            Some(range.to_owned()),
            Some(length.to_owned()),
        )
    };
    assert_eq!(
        seen,
        vec![
            (
                "POST".to_owned(),
                "/v2/c/blobs/uploads/".to_owned(),
                None,
                Some("0".to_owned())
            ),
            patch("/v2/c/blobs/uploads/u0", "0-999", "1000"),
            patch("/v2/c/blobs/uploads/u999", "1000-1999", "1000"),
            patch("/v2/c/blobs/uploads/u1999", "2000-2499", "500"),
            (
                "PUT".to_owned(),
                format!(
                    "/v2/c/blobs/uploads/u2499?digest=sha256%3A{}",
                    digest.encoded()
                ),
                None,
                Some("0".to_owned())
            ),
        ]
    );
    // A chunk size of 0: the blob goes whole, in the PUT.
    let patches = client
        .put_blob("c", &digest, 2500, &mut &blob[..], 0)
        .expect("monolithic upload");
    assert_eq!(patches, 0);
    let seen = registry.seen();
    let last: Vec<(&str, Option<&str>)> = seen[5..]
        .iter()
        .map(|r| (r.method.as_str(), r.header("Content-Length")))
        .collect();
    assert_eq!(last, [("POST", Some("0")), ("PUT", Some("2500"))]);
}

#[test]
fn an_untrusted_certificate_is_refused_by_default_and_accepted_without_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [_, cert, key] = tls_certificates(dir.path(), "untrusted");
    let registry = RealRegistry::start_tls(&cert, &key);
    let port = registry.host.rsplit_once(':').expect("port").1.to_owned();
    let host = format!("localhost:{port}");
    let remote = format!("{host}/secure/base:v1");
    // No certs.d for it; the system's roots do not know the test's CA.
    let certs = dir.path().join("certs.d");
    let source = corpus_store(dir.path());
    let mut push = PushOptions::default();
    push.client.certs_dir = Some(certs.clone());
    let before = snapshot(&source);
    let err = source
        .push("registry.demo.test/demo/base:v1", &remote, &push)
        .expect_err("an untrusted certificate");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(
        err.to_string(),
        format!(
            "HEAD https://{host}/v2/secure/base/blobs/{}: the registry's certificate is not \
             trusted (invalid peer certificate: UnknownIssuer); trust its CA in {} or the \
             system's roots, or do not verify it (--tls-verify=false)",
            corpus_layers("base")[2].0,
            certs.join(&host).join("ca.crt").display()
        )
    );
    assert_eq!(snapshot(&source), before);

    // --tls-verify=false: pushed and pulled over HTTPS, unverified.
    push.client.tls_verify = false;
    let pushed = source
        .push("registry.demo.test/demo/base:v1", &remote, &push)
        .expect("push without verification");
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let mut pull = PullOptions::default();
    pull.client.certs_dir = Some(certs.clone());
    let err = refused_pull_from(&target, &remote, &pull);
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    pull.client.tls_verify = false;
    let pulled = target
        .pull(&remote, &pull)
        .expect("pull without verification");
    assert_eq!(pulled.digest, pushed.digest);

    // --insecure-registry HOST does the same.
    let again = open(&dir.path().join("again"), Backend::Sqlite);
    let mut pull = PullOptions::default();
    pull.client.certs_dir = Some(certs);
    pull.client.insecure_registries = vec![host.clone()];
    let pulled = again
        .pull(&remote, &pull)
        .expect("pull from an insecure registry");
    assert_eq!(pulled.digest, pushed.digest);
}

#[test]
fn an_insecure_registry_that_speaks_plain_http_is_reached_after_https_fails() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = corpus_store(dir.path());
    let remote = format!("{}/plain/base:v1", registry.host);
    let mut push = PushOptions::default();
    push.client.tls_verify = false;
    let pushed = source
        .push("registry.demo.test/demo/base:v1", &remote, &push)
        .expect("push over plain HTTP after HTTPS failed");
    let target = open(&dir.path().join("target"), Backend::Sqlite);
    let mut pull = PullOptions::default();
    pull.client.insecure_registries = vec![registry.host.clone()];
    let pulled = target.pull(&remote, &pull).expect("pull");
    assert_eq!(pulled.digest, pushed.digest);
    // The manifest GET: once over HTTPS (refused), once over HTTP.
    assert_eq!(pulled.requests, 2 + pulled.blobs_downloaded * 2);
}
