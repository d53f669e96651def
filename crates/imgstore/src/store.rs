//! `Store`: the stores composed over two backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use imgstore_cri::{RefCache, StoreResolver, images_of, read_names};
use imgstore_fs::FsBackend;
use imgstore_image::{Image, ImageId, ImageStore};
use imgstore_layer::{ChainId, LayerStore};
use imgstore_refs::{RefStore, validate_namespace};
use imgstore_sqlite::SqliteBackend;

use crate::lock::{Change, StoreLock};
use crate::namespaces::{Elsewhere, reached_elsewhere};
use crate::{AnyBackend, Result};
use imgstore_backend::StateLock;

/// The CRI cache of every name of `namespace`, derived afresh.
pub(crate) fn rebuild_cache(
    namespace: &str,
    refs: &RefStore<AnyBackend>,
    content: &AnyBackend,
    images: &Images,
) -> Result<RefCache> {
    let names: Vec<String> = refs
        .list(namespace, &[])?
        .iter()
        .map(|record| record.name.clone())
        .collect();
    let resolver = StoreResolver {
        namespace,
        refs,
        content,
        images,
    };
    Ok(RefCache::rebuild(&resolver, &names)?)
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
}

impl Backend {
    /// What the backend keeps at the root, as [`Backend`]'s variants say.
    pub(crate) fn files(self) -> [&'static str; 2] {
        match self {
            Backend::Sqlite => ["content.db", "images.db"],
            Backend::Fs => ["content", "imagedb"],
        }
    }

    /// The backend's name, as `store.json` and `--backend` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Fs => "fs",
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

    /// `sqlite` or `fs`.
    fn from_str(name: &str) -> std::result::Result<Backend, ()> {
        match name {
            "sqlite" => Ok(Backend::Sqlite),
            "fs" => Ok(Backend::Fs),
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
    /// How long a change (or a read of the catalog) waits for another
    /// process's change to finish before failing with
    /// [`Error::LockTimeout`](crate::Error::LockTimeout) naming the holder (60 s by default).
    pub lock_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: None,
            namespace: "default".to_owned(),
            create: true,
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// A local image store: content, layers, images, names and the CRI cache,
/// composed as DESIGN.md's "How the facade composes the stores" says.
///
/// Changes go through the methods of `Store`, which take the root's change
/// lock. The sub-stores it hands out ([`content`](Store::content),
/// [`layers`](Store::layers), [`image_store`](Store::image_store),
/// [`refs`](Store::refs)) are for reading: a change made through one of
/// them bypasses that lock, so other processes sharing the root do not
/// reload for it, and the catalog (see [`flush_catalog`](Store::flush_catalog))
/// shows it only after the next change through the facade is flushed.
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
    pub(crate) cache: RefCache,
    /// What the names of the other namespaces reach (see `namespaces.rs`):
    /// images in use there, never deleted from here.
    pub(crate) elsewhere: StateLock<Elsewhere>,
    /// Serialises changes, in this process and between processes sharing
    /// the root, so one's undo never meets another's changes and no change
    /// works from a stale view.
    lock: StoreLock,
    /// Memory holds a state the catalog at the root does not show yet
    /// (see [`Store::flush_catalog`]).
    catalog_dirty: AtomicBool,
    /// A change failed since memory was last loaded: the catalog is written
    /// only after a reload.
    catalog_blocked: AtomicBool,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.flush_catalog();
    }
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
    /// Order: backends; then, side by side, the layer store and the image
    /// store (which takes each image's layer reference), and the names with
    /// the manifests they lead to; then the CRI cache built from every name
    /// of the namespace.
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
        };
        if prepared.unrecorded {
            // Of two opens creating one root at once, the first record wins.
            let recorded = crate::root::record(&root, prepared.backend)?;
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
        let lock = StoreLock::open(&root, lock_timeout)?;
        let content = Arc::new(content);
        let (layers, images, refs, cache, elsewhere) = lock.load(|| {
            // Two strands that share nothing until the cache is built, run
            // side by side: layers, then images (which take their layer
            // references); names, then the manifests they lead to.
            let (stores, names) = std::thread::scope(|scope| {
                let stores = scope.spawn(|| -> Result<_> {
                    let layers = Arc::new(LayerStore::open(Arc::clone(&content))?);
                    let images =
                        imgstore_image::Store::open(Arc::new(image_backend), Arc::clone(&layers))?;
                    Ok((layers, images))
                });
                let names = (|| -> Result<_> {
                    let refs = RefStore::open(Arc::clone(&content))?;
                    let names: Vec<String> = refs
                        .list(&namespace, &[])?
                        .iter()
                        .map(|record| record.name.clone())
                        .collect();
                    let listed: Vec<&str> = names.iter().map(String::as_str).collect();
                    let targets = read_names(&namespace, &refs, &*content, &listed)?;
                    let elsewhere = reached_elsewhere(&refs, &content, &namespace)?;
                    Ok((refs, names, targets, elsewhere))
                })();
                let stores = stores
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (stores, names)
            });
            let (layers, images) = stores?;
            let (refs, names, targets, elsewhere) = names?;
            let listed: Vec<&str> = names.iter().map(String::as_str).collect();
            let cache = RefCache::from_resolved(&listed, images_of(&images, &listed, targets)?)?;
            Ok((layers, images, refs, cache, elsewhere))
        })?;
        let store = Store {
            root,
            namespace,
            content,
            layers,
            images,
            refs,
            cache,
            elsewhere: StateLock::new(elsewhere),
            lock,
            catalog_dirty: AtomicBool::new(false),
            catalog_blocked: AtomicBool::new(false),
        };
        let loaded = store.lock.loaded();
        if !store.catalog_is_current(loaded) {
            store.catalog_dirty.store(true, Ordering::SeqCst);
        }
        Ok(store)
    }

    /// Writes the catalog (`<root>/catalog/<namespace>`, the list that
    /// `imgstore images` reads instead of opening the store) when this
    /// store's changes, or an open that found it missing or stale, left it
    /// behind memory. Dropping the store does this; a long-lived process
    /// calls it after a batch of changes so that other processes list
    /// without opening the store. Best effort: a catalog not written is
    /// only missing, never wrong. Under the shared lock, and only when no
    /// other process changed the store since this one's memory was loaded
    /// (it then writes its own); the backends are made durable first, so
    /// no power loss leaves a catalog ahead of the databases. Never waits:
    /// while a change runs (here or in another process) it does nothing,
    /// and the catalog stays marked for the next call. Costs about
    /// 20 ms for 10k images, which is why changes do not write it each.
    pub fn flush_catalog(&self) {
        if !self.catalog_dirty.load(Ordering::SeqCst) {
            return;
        }
        self.lock.try_with_shared(|generation| {
            if generation != self.lock.loaded() {
                // Another process changed the store: its catalog is its own.
                self.catalog_dirty.store(false, Ordering::SeqCst);
                return Some(());
            }
            // After a failed change memory is reloaded first rather than
            // trusted (the undo should have restored it; the catalog does
            // not rely on that).
            if self.catalog_blocked.load(Ordering::SeqCst) {
                self.reload().ok()?;
            }
            self.content
                .make_durable()
                .and_then(|()| self.images.backend().make_durable())
                .ok()?;
            self.write_catalog(generation);
            self.catalog_dirty.store(false, Ordering::SeqCst);
            Some(())
        });
    }

    /// What a successful change does before it lets go of the lock (see
    /// `Change::commit`): memory matches what is stored and the catalog is
    /// behind it.
    pub(crate) fn after_change(&self) {
        self.catalog_dirty.store(true, Ordering::SeqCst);
    }

    /// What a change that did not commit does (see `Change`'s drop).
    pub(crate) fn after_failed_change(&self) {
        self.catalog_blocked.store(true, Ordering::SeqCst);
        self.catalog_dirty.store(true, Ordering::SeqCst);
    }

    /// The generation of the root this store's memory reflects.
    pub(crate) fn loaded_generation(&self) -> u64 {
        self.lock.loaded()
    }

    /// The kind of backend the store was opened with.
    pub(crate) fn backend_kind(&self) -> Backend {
        if self.content.as_sqlite().is_some() {
            Backend::Sqlite
        } else {
            Backend::Fs
        }
    }

    /// Re-reads every store from the backends: layers first (their
    /// transient references start from zero), then images (which re-take
    /// them), names, and the CRI cache.
    fn reload(&self) -> Result<()> {
        // Until the reload completes, memory is no base for a catalog.
        self.catalog_blocked.store(true, Ordering::SeqCst);
        self.layers.reload()?;
        self.refs.reload()?;
        self.rebuild_derived()?;
        self.catalog_blocked.store(false, Ordering::SeqCst);
        self.catalog_dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Rebuilds what memory derives from the records: this namespace's CRI
    /// cache and what the other namespaces' names reach.
    pub(crate) fn rebuild_derived(&self) -> Result<()> {
        self.cache.replace(rebuild_cache(
            &self.namespace,
            &self.refs,
            &self.content,
            &self.images,
        )?);
        self.reload_elsewhere()
    }

    /// Brings this process's view up to date with changes other processes
    /// made to the same root since it opened or last changed the store
    /// (see `store.lock` in `docs/ARCHITECTURE.md`). Changes do this by
    /// themselves; a long-lived reader calls it before reading. Returns
    /// whether anything was reloaded.
    pub fn refresh(&self) -> Result<bool> {
        self.lock.refresh(|| self.reload())
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

    /// The CRI cache, derived from the names and images.
    pub fn cache(&self) -> &RefCache {
        &self.cache
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

    /// What resolves names for the CRI cache: the stores themselves.
    pub(crate) fn resolver(&self) -> StoreResolver<'_, AnyBackend, AnyBackend, Images> {
        StoreResolver {
            namespace: &self.namespace,
            refs: &self.refs,
            content: &*self.content,
            images: &self.images,
        }
    }

    /// Takes the locks every change holds: this process's, then the root's
    /// (reloading first when another process changed the store).
    pub(crate) fn lock_imports(&self) -> Result<Change<'_>> {
        let guard = self.lock.change(|| self.reload())?;
        Ok(Change::new(self, guard))
    }

    /// Every image visible in the namespace (its names reach it, or no name
    /// of any namespace does; see [`Options::namespace`]), Docker's
    /// `images` view, sorted by ID: its ID, the names of the namespace
    /// pointing at it (most informative first), Docker's SIZE (the bytes of
    /// the regular files of its layers, see [`Store::disk_usage`]),
    /// containerd's content size (the sum of manifest, config and layer
    /// blobs; for an image no name reaches, of config and layer blobs), the
    /// creation time from the config, whether it is pinned, and its parent.
    pub fn images(&self) -> Vec<ImageSummary> {
        self.images_with(&self.cache, &self.elsewhere.read())
    }

    /// [`images`](Store::images) as a namespace whose CRI cache is `cache`
    /// and whose other namespaces reach `elsewhere` sees them (what `fsck`
    /// derives afresh to compare).
    pub(crate) fn images_with(&self, cache: &RefCache, elsewhere: &Elsewhere) -> Vec<ImageSummary> {
        // Reads every config; an unreadable store lists nothing here (the
        // listing moves to the image summaries with the facade's rewrite).
        self.images
            .map()
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, _)| cache.reference_count(id) > 0 || !elsewhere.contains_key(id))
            .map(|(id, image)| self.summary_with(cache, id, &image))
            .collect()
    }

    /// One image's [`ImageSummary`] (see [`Store::images`]).
    pub(crate) fn summary_of(&self, id: ImageId, image: &Image) -> ImageSummary {
        self.summary_with(&self.cache, id, image)
    }

    fn summary_with(&self, cache: &RefCache, id: ImageId, image: &Image) -> ImageSummary {
        let cri = cache.get_by_id(&id);
        let (size, layer_blobs) = self.chain_sizes(image.top_chain_id());
        let content_size = match &cri {
            Some(cri) => cri.size,
            None => image.raw().len() as u64 + layer_blobs,
        };
        ImageSummary {
            references: cri
                .as_ref()
                .map(|c| c.references.clone())
                .unwrap_or_default(),
            pinned: cri.as_ref().is_some_and(|c| c.pinned),
            size,
            content_size,
            created: image.created().map(str::to_owned),
            parent: self.images.get_parent(&id).ok(),
            id,
        }
    }

    /// Docker's size and the stored blob size of a chain of layers.
    fn chain_sizes(&self, top: Option<&ChainId>) -> (u64, u64) {
        let (mut size, mut blobs) = (0, 0);
        if let Some(top) = top {
            self.layers.walk_chain(top, |layer| {
                size += crate::usage::docker_layer_size(layer);
                blobs += layer.compressed_size().unwrap_or(0);
            });
        }
        (size, blobs)
    }

    /// The image a user means: a name of the namespace exactly as stored, a
    /// name as typed (`busybox` is `docker.io/library/busybox:latest`), a
    /// full image ID or a unique prefix of one (with or without `sha256:`)
    /// among the images visible in the namespace: an image only other
    /// namespaces' names reach is `NotFound` here.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageId> {
        if let Ok(id) = self.cache.resolve(name_or_id) {
            return Ok(id);
        }
        if let Ok(normalized) = imgstore_refs::reference::normalize(name_or_id)
            && let Ok(id) = self.cache.resolve(&normalized)
        {
            return Ok(id);
        }
        self.search_visible(name_or_id)
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
