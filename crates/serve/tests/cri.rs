//! The CRI v1 ImageService as the kubelet (and crictl) use it, through a
//! tonic client of the same `k8s-cri` bindings on a unix socket, against
//! a server on a store loaded from the corpus.

#![cfg(feature = "cri")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use imgstore::Store;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::{
    ImageFilter, ImageFsInfoRequest, ImageSpec, ImageStatusRequest, ListImagesRequest,
    RemoveImageRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

const BASE: &str = "registry.demo.test/demo/base:v1";
const CHILD: &str = "registry.demo.test/demo/child:v1";
const SIBLING: &str = "registry.demo.test/demo/sibling:v1";
const BASE_ID: &str = "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb";
const SIBLING_ID: &str = "sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408";

fn corpus(relative: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/images")
        .join(relative);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

/// A store with the corpus's three images, served on a socket in `dir`;
/// the server stops when the returned sender is dropped.
async fn start(
    dir: &Path,
) -> (
    ImageServiceClient<Channel>,
    Arc<Store>,
    tokio::sync::oneshot::Sender<()>,
) {
    let store = Store::open_with(
        dir.join("store"),
        imgstore::Options {
            create: true,
            ..imgstore::Options::default()
        },
    )
    .expect("open store");
    for input in [
        "docker/docker-save-multi.docker.tar",
        "oci-archive/sibling.oci.tar",
    ] {
        store.import(corpus(input)).expect("import");
    }
    let store = Arc::new(store);
    let socket = dir.join("cri.sock");
    let listener = imgstore_serve::bind(&socket, None).expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(imgstore_serve::serve_cri(
        Arc::clone(&store),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let channel = Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect");
    (ImageServiceClient::new(channel), store, stop)
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_owned(),
        ..ImageSpec::default()
    })
}

async fn status(
    client: &mut ImageServiceClient<Channel>,
    image: &str,
    verbose: bool,
) -> k8s_cri::v1::ImageStatusResponse {
    client
        .image_status(ImageStatusRequest {
            image: spec(image),
            verbose,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
}

#[tokio::test]
async fn list_images_gives_every_image_with_its_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut client, _store, _stop) = start(dir.path()).await;
    let mut images = client
        .list_images(ListImagesRequest { filter: None })
        .await
        .expect("ListImages")
        .into_inner()
        .images;
    images.sort_by(|a, b| a.id.cmp(&b.id));
    let summary: Vec<(String, Vec<String>, Vec<String>, bool)> = images
        .iter()
        .map(|image| {
            (
                image.id.clone(),
                image.repo_tags.clone(),
                image.repo_digests.clone(),
                image.pinned,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                SIBLING_ID.to_owned(),
                vec![SIBLING.to_owned()],
                vec![],
                false
            ),
            (BASE_ID.to_owned(), vec![BASE.to_owned()], vec![], false),
            (
                "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4"
                    .to_owned(),
                vec![CHILD.to_owned()],
                vec![],
                false
            ),
        ]
    );
    for image in &images {
        assert_eq!(
            image.spec.as_ref().map(|s| s.image.as_str()),
            Some(image.id.as_str())
        );
        assert!(image.size > 0, "{image:?}");
    }
    // A filter: the image it names only.
    let filtered = client
        .list_images(ListImagesRequest {
            filter: Some(ImageFilter { image: spec(BASE) }),
        })
        .await
        .expect("ListImages")
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].id, BASE_ID);
}

#[tokio::test]
async fn image_status_resolves_names_and_ids_and_is_empty_for_unknown_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut client, _store, _stop) = start(dir.path()).await;
    for name in [BASE, BASE_ID, "ccb28a06ca54", &BASE_ID[7..]] {
        let response = status(&mut client, name, false).await;
        let image = response.image.unwrap_or_else(|| panic!("{name}: no image"));
        assert_eq!(image.id, BASE_ID, "{name}");
        assert_eq!(image.repo_tags, [BASE]);
        assert!(response.info.is_empty());
    }
    // containerd: an unknown image (or a string that names none) is an
    // empty response, not an error.
    for unknown in ["nope:1", "docker.io/library/nope", "NOT A NAME", ""] {
        let response = status(&mut client, unknown, true).await;
        assert_eq!(response.image, None, "{unknown}");
        assert!(response.info.is_empty());
    }
    let verbose = status(&mut client, SIBLING, true).await;
    let info: serde_json::Value =
        serde_json::from_str(verbose.info.get("info").expect("info")).expect("info is JSON");
    assert!(
        info["chainID"]
            .as_str()
            .is_some_and(|c| c.starts_with("sha256:")),
        "{info}"
    );
    assert_eq!(info["imageSpec"]["architecture"], "amd64");
}

#[tokio::test]
async fn remove_image_removes_every_name_and_succeeds_for_unknown_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut client, store, _stop) = start(dir.path()).await;
    client
        .remove_image(RemoveImageRequest {
            image: spec("nope:1"),
        })
        .await
        .expect("removing an unknown image succeeds");
    store.tag(SIBLING, "second/name:v2").expect("tag");
    client
        .remove_image(RemoveImageRequest {
            image: spec(SIBLING),
        })
        .await
        .expect("RemoveImage");
    assert_eq!(status(&mut client, SIBLING, false).await.image, None);
    assert_eq!(
        status(&mut client, "second/name:v2", false).await.image,
        None
    );
    assert_eq!(status(&mut client, SIBLING_ID, false).await.image, None);
    let left = client
        .list_images(ListImagesRequest { filter: None })
        .await
        .expect("ListImages")
        .into_inner()
        .images;
    assert_eq!(left.len(), 2);
    // Twice: still a success.
    client
        .remove_image(RemoveImageRequest {
            image: spec(SIBLING),
        })
        .await
        .expect("RemoveImage again");
}

#[tokio::test]
async fn pinned_images_say_so_and_image_fs_info_measures_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut client, store, _stop) = start(dir.path()).await;
    store.pin(BASE).expect("pin");
    let image = status(&mut client, BASE, false).await.image.expect("image");
    assert!(image.pinned);
    assert!(
        !status(&mut client, SIBLING, false)
            .await
            .image
            .expect("image")
            .pinned
    );
    let info = client
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .expect("ImageFsInfo")
        .into_inner();
    assert_eq!(info.image_filesystems.len(), 1);
    let usage = &info.image_filesystems[0];
    assert_eq!(
        usage.fs_id.as_ref().map(|id| PathBuf::from(&id.mountpoint)),
        Some(store.root().to_path_buf())
    );
    assert!(
        usage.used_bytes.as_ref().is_some_and(|b| b.value > 10_000),
        "{usage:?}"
    );
    assert!(
        usage.inodes_used.as_ref().is_some_and(|i| i.value > 3),
        "{usage:?}"
    );
    assert!(usage.timestamp > 1_600_000_000_000_000_000);
}

/// Timings on a large store (not run by default): `IMGSTORE_BENCH_STORE=DIR
/// cargo test --release -p imgstore-serve --features cri --test cri --
/// --ignored --nocapture`. Times, through the tonic client on the socket,
/// `ImageStatus` of names spread over the store, `ListImages`, and 8
/// concurrent clients of `ImageStatus`; prints the percentiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs IMGSTORE_BENCH_STORE, a large store"]
async fn timings_on_a_large_store() {
    use std::time::{Duration, Instant};
    let root =
        PathBuf::from(std::env::var_os("IMGSTORE_BENCH_STORE").expect("IMGSTORE_BENCH_STORE"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&root).expect("open the bench store"));
    let socket = dir.path().join("cri.sock");
    let listener = imgstore_serve::bind(&socket, None).expect("bind");
    tokio::spawn(imgstore_serve::serve_cri(
        Arc::clone(&store),
        listener,
        std::future::pending(),
    ));
    let connect = || {
        let socket = socket.clone();
        async move {
            let channel = Endpoint::try_from("http://[::]:50051")
                .expect("endpoint")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(socket).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                }))
                .await
                .expect("connect");
            ImageServiceClient::new(channel)
        }
    };
    let mut client = connect().await;
    let names: Vec<String> = store.names().expect("names");
    let percentiles = |mut times: Vec<Duration>| {
        times.sort();
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        format!(
            "p50 {:?} p99 {:?} max {:?} (n={})",
            at(0.5),
            at(0.99),
            at(1.0),
            times.len()
        )
    };
    let mut times = Vec::new();
    for name in names.iter().step_by((names.len() / 1000).max(1)) {
        let start = Instant::now();
        let image = status(&mut client, name, false).await.image;
        times.push(start.elapsed());
        assert!(image.is_some(), "{name}");
    }
    println!("ImageStatus, {} names: {}", names.len(), percentiles(times));
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let listed = client
            .list_images(ListImagesRequest { filter: None })
            .await
            .expect("ListImages")
            .into_inner()
            .images;
        times.push(start.elapsed());
        assert!(!listed.is_empty());
    }
    println!("ListImages: {}", percentiles(times));
    let started = Instant::now();
    let mut clients = Vec::new();
    for worker in 0..8 {
        let mut client = connect().await;
        let names = names.clone();
        clients.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for name in names.iter().skip(worker).step_by(8).take(2000) {
                let start = Instant::now();
                client
                    .image_status(ImageStatusRequest {
                        image: spec(name),
                        verbose: false,
                    })
                    .await
                    .expect("ImageStatus");
                times.push(start.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.expect("client"));
    }
    let count = all.len();
    println!(
        "8 concurrent clients, {count} ImageStatus in {:?} ({:.0}/s): {}",
        started.elapsed(),
        count as f64 / started.elapsed().as_secs_f64(),
        percentiles(all)
    );
}
