//! `Store`: the stores composed over two backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use imgstore_cri::{ManifestTarget, NameTarget, RefCache, images_of};
use imgstore_fs::FsBackend;
use imgstore_image::{ImageId, ImageStore, Summary};
use imgstore_layer::LayerStore;
use imgstore_postgres::{PostgresBackend, PostgresOptions};
use imgstore_refs::{RefStore, validate_namespace};
use imgstore_sqlite::SqliteBackend;

use crate::changes::{ChangeCount, is_quiet};
use crate::lock::{Change, StoreLock};
use crate::name_index::NameOfImage;
use crate::{AnyBackend, Result};
use imgstore_backend::RecordStore;
use std::sync::Mutex;

/// The CRI cache of every name of `namespace`, derived afresh from the name
/// index (one scan of the namespace's entries: what each name may mean,
/// with its size and pinned state, by the one platform rule) and the
/// config of the image each name means, as the resolver picks it
/// ([`imgstore_cri::images_of`]: the first stored candidate whose config
/// reads).
pub(crate) fn rebuild_cache(
    namespace: &str,
    content: &AnyBackend,
    images: &Images,
) -> Result<RefCache> {
    let entries = crate::name_index::entries_in(content, namespace)?;
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    let targets = entries
        .iter()
        .map(|(_, entry)| {
            entry.chosen.map(|chosen| NameTarget {
                candidates: entry
                    .candidates
                    .get(chosen..)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| ManifestTarget {
                        id: c.id.clone(),
                        size: c.size,
                    })
                    .collect(),
                pinned: entry.pinned,
            })
        })
        .collect();
    let resolved = images_of(images, &names, targets)?;
    Ok(RefCache::from_resolved(&names, resolved)?)
}

/// The image store of a [`Store`]: configs and per-image metadata in their
/// own backend, layers in the layer store.
pub type Images = imgstore_image::Store<AnyBackend, LayerStore<AnyBackend>>;

/// Which backend a [`Store`] keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// SQLite: `<root>/content.db` (blobs, layer records, names) and
    /// `<root>/images.db` (image configs and their metadata).
    #[default]
    Sqlite,
    /// Files in moby's layout: `<root>/content/` (blobs, layer records,
    /// names) and `<root>/imagedb/` (image configs and their metadata).
    Fs,
    /// PostgreSQL: the schemas `imgstore_content` (blobs, layer records,
    /// names) and `imgstore_images` (image configs and their metadata) of
    /// the database [`Options::database_url`] names, which many nodes may
    /// share; the root keeps only `store.json` and temporary files.
    Postgres,
}

impl Backend {
    /// What the backend keeps at the root, as [`Backend`]'s variants say.
    pub(crate) fn files(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &["content.db", "images.db"],
            Backend::Fs => &["content", "imagedb"],
            Backend::Postgres => &[],
        }
    }

    /// The backend's name, as `store.json` and `--backend` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Fs => "fs",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = ();

    /// `sqlite`, `fs` or `postgres`.
    fn from_str(name: &str) -> std::result::Result<Backend, ()> {
        match name {
            "sqlite" => Ok(Backend::Sqlite),
            "fs" => Ok(Backend::Fs),
            "postgres" => Ok(Backend::Postgres),
            _ => Err(()),
        }
    }
}

/// How [`Store::open_with`] opens a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The backend. `None` (the default): the one the root records, or
    /// SQLite for a new root. A backend other than the recorded one is
    /// [`Error::BackendMismatch`](crate::Error::BackendMismatch).
    pub backend: Option<Backend>,
    /// The namespace of the names (containerd's; `default` by default).
    /// Images are shared by every namespace: one is in use while a name of
    /// any namespace reaches it (never deleted from another), and a
    /// namespace sees the images its names reach plus those no name of any
    /// namespace reaches.
    pub namespace: String,
    /// Create the store when the root holds none (the default). When
    /// false, a missing store is [`Error::NoStore`](crate::Error::NoStore) and nothing is
    /// created: what read-only commands want, so a mistyped root is an
    /// error rather than a new empty store.
    pub create: bool,
    /// How long a change waits for another
    /// process's change to finish before failing with
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) naming the holder (60 s by default).
    pub lock_timeout: Duration,
    /// The database of a [`Backend::Postgres`] store
    /// (`postgres://user@host/db`): needed to create one; later opens may
    /// leave it out, and then use the URL the root recorded (without its
    /// password), or give it (with a password) naming the same database.
    /// Ignored by the other backends.
    pub database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: None,
            namespace: "default".to_owned(),
            create: true,
            lock_timeout: Duration::from_secs(60),
            database_url: None,
        }
    }
}

/// [`Store`]'s cache stamp when nothing vouches for the cache: odd, so
/// never a quiet change count.
const NOT_STAMPED: u64 = u64::MAX;

/// A local image store: content, layers, images, names and the CRI cache,
/// composed as DESIGN.md's "How the facade composes the stores" says.
///
/// Changes go through the methods of `Store`, which take the root's change
/// lock. The sub-stores it hands out ([`content`](Store::content),
/// [`layers`](Store::layers), [`image_store`](Store::image_store),
/// [`refs`](Store::refs)) are for reading: a change made through one of
/// them bypasses that lock and the name index.
///
/// Two backend instances: one for content (every blob: index, manifest,
/// config, layer) and records (layer records, names), one dedicated to the
/// image store, which restores by walking its backend's content and so must
/// not see layer blobs. `Send + Sync`.
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) namespace: String,
    pub(crate) content: Arc<AnyBackend>,
    pub(crate) layers: Arc<LayerStore<AnyBackend>>,
    pub(crate) images: Images,
    pub(crate) refs: RefStore<AnyBackend>,
    /// The CRI cache of the namespace, built on first use by
    /// [`cache`](Store::cache) and rebuilt when the records changed since.
    cache: RefCache,
    /// The backends' change counters the cache was built at (`None`: not
    /// built).
    cache_built_at: Mutex<Option<(u64, u64)>>,
    /// The root's change count the cache is known current at
    /// ([`NOT_STAMPED`]: ask the backends).
    cache_stamp: AtomicU64,
    /// Serialises changes, in this process and between processes sharing
    /// the root, so one's undo never meets another's changes and no change
    /// works from a stale view.
    lock: StoreLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("namespace", &self.namespace)
            .field("images", &self.images.len())
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`, namespace `default`:
    /// the backend the root records, SQLite for a new root.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(root, Options::default())
    }

    /// Opens the store at `root` with `options` (see [`Options`]: the
    /// backend, whether to create a missing store, the namespace).
    ///
    /// The root is checked first: created 0700 when missing (and
    /// `options.create`), refused when another user owns it or others may
    /// write it ([`Error::UnsafeRoot`](crate::Error::UnsafeRoot)); its recorded backend is used, and
    /// recorded when it is new ([`Error::BackendMismatch`](crate::Error::BackendMismatch) when
    /// `options.backend` says otherwise).
    ///
    /// Reads `store.json` and the `meta/schema` record, nothing per image
    /// or name; a store of the previous format is upgraded once.
    pub fn open_with(root: impl AsRef<Path>, options: Options) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        validate_namespace(&options.namespace)?;
        let prepared = crate::root::prepare(&root, &options)?;
        // Temporary files of interrupted imports; a root this process may
        // not write (a read-only listing) keeps them, for gc.
        let _ = crate::tmpdir::leftover_temp_files(&root, true);
        let (content, image_backend) = match prepared.backend {
            Backend::Sqlite => (
                AnyBackend::Sqlite(SqliteBackend::open(root.join("content.db"))?),
                AnyBackend::Sqlite(SqliteBackend::open(root.join("images.db"))?),
            ),
            Backend::Fs => (
                AnyBackend::Fs(FsBackend::open(root.join("content"))?),
                AnyBackend::Fs(FsBackend::open(root.join("imagedb"))?),
            ),
            Backend::Postgres => {
                let url = prepared.database_url.as_deref().unwrap_or_default();
                let open =
                    |schema| PostgresBackend::open_with(url, PostgresOptions::with_schema(schema));
                (
                    AnyBackend::Postgres(open("imgstore_content")?),
                    AnyBackend::Postgres(open("imgstore_images")?),
                )
            }
        };
        if prepared.unrecorded {
            // Of two opens creating one root at once, the first record wins.
            let recorded =
                crate::root::record(&root, prepared.backend, prepared.database_url.as_deref())?;
            if recorded != prepared.backend {
                return Err(crate::Error::BackendMismatch {
                    root,
                    recorded,
                    requested: prepared.backend,
                });
            }
        }
        Store::assemble(
            root,
            options.namespace,
            options.lock_timeout,
            content,
            image_backend,
        )
    }

    /// Opens a store over backends the caller opened (feature `testkit`:
    /// the fault campaigns wrap them in `AnyBackend::Faulty`): `content`
    /// for blobs, layer records and names, `images` for the image store
    /// alone, as [`open_with`](Self::open_with) would open them in `root`.
    #[cfg(feature = "testkit")]
    pub fn open_with_backends(
        root: impl AsRef<Path>,
        namespace: &str,
        content: AnyBackend,
        images: AnyBackend,
    ) -> Result<Store> {
        validate_namespace(namespace)?;
        Store::assemble(
            root.as_ref().to_path_buf(),
            namespace.to_owned(),
            Options::default().lock_timeout,
            content,
            images,
        )
    }

    fn assemble(
        root: PathBuf,
        namespace: String,
        lock_timeout: Duration,
        content: AnyBackend,
        image_backend: AnyBackend,
    ) -> Result<Store> {
        // A PostgreSQL store's nodes share no file: their lock is in the database.
        let lock = match content.as_postgres() {
            Some(database) => StoreLock::in_database(database.clone(), lock_timeout),
            None => StoreLock::open(&root, lock_timeout)?,
        };
        let content = Arc::new(content);
        // Nothing per image is read: each store reads its records on demand.
        let layers = Arc::new(LayerStore::open(Arc::clone(&content))?);
        let images = imgstore_image::Store::open(Arc::new(image_backend), Arc::clone(&layers))?;
        let refs = RefStore::open(Arc::clone(&content))?;
        let store = Store {
            root,
            namespace,
            content,
            layers,
            images,
            refs,
            cache: RefCache::new(),
            cache_built_at: Mutex::new(None),
            cache_stamp: AtomicU64::new(NOT_STAMPED),
            lock,
        };
        store.upgrade_if_needed()?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The namespace of the names this store reads and writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The content backend: every blob, layer records and names.
    /// For reading: see [`Store`] on changes made through it.
    pub fn content(&self) -> &Arc<AnyBackend> {
        &self.content
    }

    /// The layer store.
    /// For reading: see [`Store`] on changes made through it.
    pub fn layers(&self) -> &Arc<LayerStore<AnyBackend>> {
        &self.layers
    }

    /// The image store.
    /// For reading: see [`Store`] on changes made through it.
    pub fn image_store(&self) -> &Images {
        &self.images
    }

    /// The names (containerd's image records).
    /// For reading: see [`Store`] on changes made through it.
    pub fn refs(&self) -> &RefStore<AnyBackend> {
        &self.refs
    }

    /// The CRI cache of the namespace (every name and the image it means,
    /// in memory, for callers that resolve names many times a second):
    /// built on first use (O(names): a scan of the namespace's name index
    /// and each meant image's config), and rebuilt when another change of
    /// the records (by any process) happened since. What tells is the
    /// root's change count (one atomic load of a shared mapping, moved by
    /// every change made through a `Store`) while it says nothing changed,
    /// else the backends' own change counters (one read each).
    pub fn cache(&self) -> Result<&RefCache> {
        let changes = self.lock.changes();
        let count = changes.map(ChangeCount::load);
        if let Some(count) = count
            && is_quiet(count)
            && self.cache_stamp.load(Ordering::Acquire) == count
        {
            return Ok(&self.cache);
        }
        let counters = (
            self.content.change_counter()?,
            self.images.backend().change_counter()?,
        );
        let mut built_at = self
            .cache_built_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *built_at != Some(counters) {
            self.cache
                .replace(rebuild_cache(&self.namespace, &self.content, &self.images)?);
            *built_at = Some(counters);
        }
        // Current as of `count`, read before the backends were: a change
        // that began after it moved the count on.
        let stamp = match count {
            Some(count) if is_quiet(count) => count,
            _ => NOT_STAMPED,
        };
        self.cache_stamp.store(stamp, Ordering::Release);
        Ok(&self.cache)
    }

    /// Every name of the namespace, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .refs
            .list(&self.namespace, &[])?
            .iter()
            .map(|record| record.name.clone())
            .collect())
    }

    /// Takes the locks every change holds: this process's, then the root's.
    pub(crate) fn lock_imports(&self) -> Result<Change<'_>> {
        let guard = self.lock.change()?;
        Ok(Change::new(guard))
    }

    /// Every image visible in the namespace (its names reach it, or no name
    /// of any namespace does; see [`Options::namespace`]), Docker's
    /// `images` view: its ID, the names of the namespace
    /// pointing at it (most informative first), Docker's SIZE (the bytes of
    /// the regular files of its layers, see [`Store::disk_usage`]),
    /// containerd's content size (the sum of manifest, config and layer
    /// blobs; for an image no name reaches, of config and layer blobs), the
    /// creation time from the config, whether it is pinned, and its parent.
    /// Sorted by ID ([`list_images`](Store::list_images) sorts as Docker).
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let mut images: Vec<ImageSummary> = self
            .listing_entries()?
            .into_iter()
            .map(|entry| entry.summary)
            .collect();
        images.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(images)
    }

    /// One image's [`ImageSummary`] (see [`Store::images`]): its stored
    /// summary and the names of the namespace that mean it. `NotFound`
    /// when it is not stored.
    pub(crate) fn summary_of(&self, id: ImageId) -> Result<ImageSummary> {
        let Some(summary) = self.images.summary(&id)? else {
            return Err(imgstore_image::ImageError::NotFound {
                term: id.to_string(),
            }
            .into());
        };
        let names = self.names_meaning(&id)?;
        Ok(listed(id, &summary, &names))
    }

    /// The image a user means: a name of the namespace exactly as stored, a
    /// name as typed (`busybox` is `docker.io/library/busybox:latest`), a
    /// full image ID or a unique prefix of one (with or without `sha256:`)
    /// among the images visible in the namespace: an image only other
    /// namespaces' names reach is `NotFound` here.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageId> {
        if let Some(id) = self.image_of_name(name_or_id)? {
            return Ok(id);
        }
        if let Ok(normalized) = imgstore_refs::reference::normalize(name_or_id)
            && let Some(id) = self.image_of_name(&normalized)?
        {
            return Ok(id);
        }
        self.search_visible(name_or_id)
    }
}

/// An [`ImageSummary`] from the image's stored summary and the names of
/// the namespace meaning it, ranked: no config is read.
pub(crate) fn listed(id: ImageId, summary: &Summary, names: &[NameOfImage]) -> ImageSummary {
    let content_size = match names.first() {
        Some(name) => name.reach.size,
        None => summary.config_size + summary.blobs_size,
    };
    ImageSummary {
        references: names.iter().map(|n| n.name.clone()).collect(),
        pinned: names.iter().any(|n| n.reach.pinned),
        size: summary.size,
        content_size,
        created: summary.created.clone(),
        parent: summary.parent.clone(),
        id,
    }
}

/// One image as [`Store::images`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The image ID (config digest).
    pub id: ImageId,
    /// Names pointing at it, most informative first; empty when dangling.
    pub references: Vec<String>,
    /// Docker's SIZE: the bytes of the regular files in its layers' tars.
    pub size: u64,
    /// containerd's image size: manifest + config + layer blobs, in bytes.
    pub content_size: u64,
    /// The config's `created` time, as written there.
    pub created: Option<String>,
    /// True while any of its names is pinned.
    pub pinned: bool,
    /// The parent image, when one is recorded.
    pub parent: Option<ImageId>,
}
