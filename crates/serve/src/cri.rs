//! The CRI v1 ImageService (feature `cri`): what the kubelet asks an
//! image store, answered from the store's CRI cache ([`Store::cache`]) with
//! containerd's semantics: an unknown image's `ImageStatus` is an empty
//! response and its `RemoveImage` a success, references are listed as the
//! cache ranks them and pinned images say so.
//!
//! Bindings: `k8s-cri`'s `runtime.v1`, generated from k8s.io/cri-api.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use imgstore::cri::CriImage;
use imgstore::refs::reference::{Reference, familiar_parts};
use imgstore::{RemoveOptions, Store};
use k8s_cri::v1::image_service_server::{ImageService, ImageServiceServer};
use k8s_cri::v1::{
    FilesystemIdentifier, FilesystemUsage, Image, ImageFsInfoRequest, ImageFsInfoResponse,
    ImageSpec, ImageStatusRequest, ImageStatusResponse, Int64Value, ListImagesRequest,
    ListImagesResponse, PullImageRequest, PullImageResponse, RemoveImageRequest,
    RemoveImageResponse, UInt64Value,
};
use tonic::{Request, Response, Status};

/// The ImageService over one open store.
pub struct CriImageService {
    store: Arc<Store>,
}

impl CriImageService {
    /// The service, as a tonic server ready to be added to a router.
    pub fn server(store: Arc<Store>) -> ImageServiceServer<CriImageService> {
        ImageServiceServer::new(CriImageService { store })
    }

    /// Runs `call` on the blocking pool (every store call blocks).
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
    }
}

/// A facade error as a gRPC status of the same kind.
fn status(error: impl std::fmt::Display + HasKind) -> Status {
    use imgstore::backend::ErrorKind;
    let message = error.to_string();
    match error.error_kind() {
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::InvalidArgument => Status::invalid_argument(message),
        ErrorKind::AlreadyExists => Status::already_exists(message),
        ErrorKind::Conflict | ErrorKind::FailedPrecondition => Status::failed_precondition(message),
        _ => Status::internal(message),
    }
}

/// The errors [`status`] maps: the facade's and the CRI cache's.
trait HasKind {
    fn error_kind(&self) -> imgstore::backend::ErrorKind;
}

impl HasKind for imgstore::Error {
    fn error_kind(&self) -> imgstore::backend::ErrorKind {
        self.kind()
    }
}

impl HasKind for imgstore::cri::CriError {
    fn error_kind(&self) -> imgstore::backend::ErrorKind {
        self.kind()
    }
}

/// containerd's `localResolve`: an image ID (full, `sha256:`-less, or a
/// unique prefix), else a reference normalised as Docker does
/// (`busybox` is `docker.io/library/busybox:latest`). `None`: no such
/// image (or a string that is neither).
fn resolve(store: &Store, reference: &str) -> Result<Option<Arc<CriImage>>, Status> {
    let cache = store.cache().map_err(status)?;
    if !reference.is_empty()
        && reference
            .strip_prefix("sha256:")
            .unwrap_or(reference)
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
        && let Ok(image) = cache.get(reference)
    {
        return Ok(Some(image));
    }
    let Ok(normalized) = Reference::parse_normalized(reference) else {
        return Ok(None);
    };
    let named = cache
        .resolve(&normalized.to_string())
        .or_else(|_| cache.resolve(reference));
    Ok(named.ok().and_then(|id| cache.get_by_id(&id)))
}

/// containerd's `toCRIImage`: tags and digest names from the references,
/// the user of the config (a number is a uid, else a name).
fn to_cri_image(image: &CriImage) -> Image {
    let mut repo_tags = Vec::new();
    let mut repo_digests = Vec::new();
    for reference in &image.references {
        // Stored names are in full form: sliced, not parsed (a parse of
        // each was most of a ListImages of 10k images).
        let (digest, tag, full) = match familiar_parts(reference) {
            Some(parts) => (
                parts.digest.is_some(),
                parts.tag.is_some(),
                reference.clone(),
            ),
            None => match Reference::parse_normalized(reference) {
                Ok(parsed) => (
                    parsed.digest().is_some(),
                    parsed.tag().is_some(),
                    parsed.to_string(),
                ),
                Err(_) => continue,
            },
        };
        if digest {
            repo_digests.push(full);
        } else if tag {
            repo_tags.push(full);
        }
    }
    let id = image
        .id
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let user = image
        .spec
        .as_ref()
        .and_then(|spec| spec.field("config"))
        .and_then(|config| config.get("User"))
        .and_then(|user| user.as_str())
        .unwrap_or_default();
    // `user:group`: the user part.
    let user = user.split(':').next().unwrap_or_default();
    let (uid, username) = match user.parse::<i64>() {
        Ok(uid) => (Some(Int64Value { value: uid }), String::new()),
        Err(_) => (None, user.to_owned()),
    };
    Image {
        id: id.clone(),
        repo_tags,
        repo_digests,
        size: image.size,
        uid,
        username,
        spec: Some(ImageSpec {
            image: id,
            ..ImageSpec::default()
        }),
        pinned: image.pinned,
    }
}

/// containerd's verbose `info`: the chain ID and the image config.
fn verbose_info(image: &CriImage) -> std::collections::HashMap<String, String> {
    let spec = image
        .spec
        .as_ref()
        .and_then(|spec| serde_json::from_slice::<serde_json::Value>(spec.raw()).ok())
        .unwrap_or(serde_json::Value::Null);
    let info = serde_json::json!({ "chainID": image.chain_id, "imageSpec": spec });
    std::collections::HashMap::from([("info".to_owned(), info.to_string())])
}

#[tonic::async_trait]
impl ImageService for CriImageService {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let wanted = request
            .into_inner()
            .filter
            .and_then(|filter| filter.image)
            .map(|spec| spec.image)
            .filter(|image| !image.is_empty());
        let images = self
            .blocking(move |store| {
                Ok(match wanted {
                    Some(reference) => resolve(store, &reference)?
                        .map(|image| vec![to_cri_image(&image)])
                        .unwrap_or_default(),
                    None => store
                        .cache()
                        .map_err(status)?
                        .list()
                        .iter()
                        .map(|image| to_cri_image(image))
                        .collect(),
                })
            })
            .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let request = request.into_inner();
        let reference = request.image.map(|spec| spec.image).unwrap_or_default();
        let verbose = request.verbose;
        let response = self
            .blocking(move |store| {
                Ok(match resolve(store, &reference)? {
                    Some(image) => ImageStatusResponse {
                        image: Some(to_cri_image(&image)),
                        info: if verbose {
                            verbose_info(&image)
                        } else {
                            Default::default()
                        },
                    },
                    // containerd: an unknown image is no error.
                    None => ImageStatusResponse::default(),
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn pull_image(
        &self,
        _request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        Err(Status::unimplemented(
            "imgstore serve does not pull yet: use `imgstore pull`",
        ))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let reference = request
            .into_inner()
            .image
            .map(|spec| spec.image)
            .unwrap_or_default();
        self.blocking(move |store| {
            let Some(image) = resolve(store, &reference)? else {
                // containerd: removing what is not there succeeds.
                return Ok(());
            };
            let Some(id) = &image.id else {
                return Ok(());
            };
            // Every name of the image goes, as containerd deletes them all.
            let options = RemoveOptions {
                force: true,
                prune: true,
            };
            match store.remove_with(&id.to_string(), &options) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == imgstore::backend::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(status(e)),
            }
        })
        .await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let root = self.store.root().to_path_buf();
        let (bytes, inodes) = tokio::task::spawn_blocking({
            let root = root.clone();
            move || usage_of(root)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| i64::try_from(now.as_nanos()).unwrap_or(i64::MAX));
        let usage = FilesystemUsage {
            timestamp,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: root.display().to_string(),
            }),
            used_bytes: Some(UInt64Value { value: bytes }),
            inodes_used: Some(UInt64Value { value: inodes }),
        };
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}

/// The bytes and inodes used under `root` (the kubelet's image GC reads
/// them): every file's allocated size, every file and directory once.
fn usage_of(root: PathBuf) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        inodes += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                inodes += 1;
                bytes += meta.blocks() * 512;
            }
        }
    }
    (bytes, inodes)
}
