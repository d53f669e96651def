//! `check` and `rebuild_index`: the image records are derived data,
//! recomputed here from the primary data (the configs, their `parent`
//! metadata and the layer records) and compared or rewritten. Both are
//! O(n) in the images: for fsck and the one-time migration, never on a
//! command's path.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_layer::{ChainId, LayerError, LayerGetReleaser, LayerStore};

use crate::store::{MAX_PARENT_DEPTH, PARENT, parse_parent, refuse_os};
use crate::summary::{
    CHILDREN_BUCKET, IMAGES_BUCKET, Summary, child_key, holder, id_of_key, parse_child_key,
};
use crate::{Image, ImageError, ImageId, Store};

type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Records per batch that [`Store::rebuild_index`] commits: bounded, so a
/// store of any size is rebuilt in transactions of a bounded size.
const BATCH_OPS: usize = 512;

/// What [`Store::check`] and [`Store::rebuild_index`] need of a layer
/// store beyond [`LayerGetReleaser`]: the named holders of a layer.
pub trait LayerHolders {
    /// The holders of persistent references on `chain_id` (`image:<hex>`,
    /// ...); empty when there are none or the layer is absent.
    fn holders_of(&self, chain_id: &ChainId) -> Result<Vec<String>, LayerError>;
}

impl<B: StoreBackend + RecordStore> LayerHolders for LayerStore<B> {
    fn holders_of(&self, chain_id: &ChainId) -> Result<Vec<String>, LayerError> {
        self.holders(chain_id)
    }
}

/// The holders of each layer asked about, read once per layer: many images
/// can share a top layer, and check must stay O(n).
struct HeldBy<'a, L> {
    layers: &'a L,
    read: HashMap<ChainId, HashSet<String>>,
}

impl<'a, L: LayerHolders> HeldBy<'a, L> {
    fn new(layers: &'a L) -> HeldBy<'a, L> {
        HeldBy {
            layers,
            read: HashMap::new(),
        }
    }

    fn holds(&mut self, chain_id: &ChainId, holder: &str) -> Result<bool> {
        if !self.read.contains_key(chain_id) {
            let holders = self.layers.holders_of(chain_id)?.into_iter().collect();
            self.read.insert(chain_id.clone(), holders);
        }
        Ok(self.read.get(chain_id).is_some_and(|h| h.contains(holder)))
    }
}

/// One disagreement between the image records and the primary data they
/// are derived from, found by [`Store::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageProblem {
    /// A config that can be an image but has no summary (a create that
    /// stopped before its last step, or a store written before the records
    /// existed). Invisible until [`Store::rebuild_index`] indexes it.
    UnindexedConfig {
        /// The config's digest.
        id: ImageId,
    },
    /// A config with no summary that cannot be an image (corrupt,
    /// unparsable, of a foreign OS, or a layer of its chain is missing):
    /// invisible, left for gc to delete. Not repairable.
    UnusableConfig {
        /// The config's digest.
        id: ImageId,
        /// Why it cannot be an image.
        reason: String,
    },
    /// A summary whose config is not in the backend. Repair removes the
    /// summary (the image was gone already).
    MissingConfig {
        /// The image.
        id: ImageId,
    },
    /// A summary whose config is stored but cannot be an image (corrupt,
    /// unparsable, of a foreign OS). Not repairable: repair unlists the
    /// image and leaves the config for gc.
    BrokenConfig {
        /// The image.
        id: ImageId,
        /// What is wrong with the config.
        reason: String,
    },
    /// A layer of a listed image's chain is missing. Not repairable: the
    /// layer's data is gone; repair unlists the image.
    LayerMissing {
        /// The image.
        id: ImageId,
        /// The missing layer.
        chain_id: ChainId,
    },
    /// The summary differs from what the config, the `parent` metadata and
    /// the layer records give. Repair rewrites it.
    StaleSummary {
        /// The image.
        id: ImageId,
        /// The stored summary.
        stored: Box<Summary>,
        /// The summary recomputed from the primary data.
        expected: Box<Summary>,
    },
    /// The image's top layer is not held by `image:<hex>`, so the layer
    /// store could free it under the image. Repair takes the hold.
    TopLayerNotHeld {
        /// The image.
        id: ImageId,
        /// Its top layer.
        chain_id: ChainId,
    },
    /// `child`'s `parent` metadata names `parent` (an image) but the
    /// children link is missing. Repair writes it.
    MissingChildLink {
        /// The parent.
        parent: ImageId,
        /// The child.
        child: ImageId,
    },
    /// A children link that the `parent` metadata does not give (the child
    /// or the parent is gone, or the child names another parent). Repair
    /// deletes it.
    DanglingChildLink {
        /// The parent the link names.
        parent: ImageId,
        /// The child it names.
        child: ImageId,
    },
    /// `id`'s `parent` metadata names `parent`, but following it would
    /// close a cycle (`a -> b -> a`, as a moby imagedb can hold): the link
    /// is not indexed and `id` reads as having no parent. Not repairable
    /// here: the fix is to delete or rewrite the metadata.
    ParentCycle {
        /// The image whose `parent` metadata is not followed.
        id: ImageId,
        /// The parent it names.
        parent: ImageId,
    },
    /// A record of the image buckets that cannot be read (a key that is not
    /// an image ID, a summary that is not JSON). Repair deletes or rewrites
    /// it.
    BadRecord {
        /// `images` or `image-children`.
        bucket: &'static str,
        /// The record key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ImageProblem {
    /// True when [`Store::rebuild_index`] restores what the records should
    /// say. False when data is lost (a missing layer, a broken config) or
    /// the fix is gc's (an unusable config): rebuild then only unlists.
    pub fn is_repairable(&self) -> bool {
        !matches!(
            self,
            ImageProblem::UnusableConfig { .. }
                | ImageProblem::BrokenConfig { .. }
                | ImageProblem::LayerMissing { .. }
                | ImageProblem::ParentCycle { .. }
        )
    }
}

impl fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageProblem::UnindexedConfig { id } => {
                write!(f, "image config {id} has no summary")
            }
            ImageProblem::UnusableConfig { id, reason } => {
                write!(f, "image config {id} cannot be an image: {reason}")
            }
            ImageProblem::MissingConfig { id } => {
                write!(f, "image {id} has a summary but no config")
            }
            ImageProblem::BrokenConfig { id, reason } => {
                write!(f, "image {id}: {reason}")
            }
            ImageProblem::LayerMissing { id, chain_id } => {
                write!(f, "image {id}: layer {chain_id} does not exist")
            }
            ImageProblem::StaleSummary { id, .. } => {
                write!(
                    f,
                    "image {id}: the summary disagrees with its config and layers"
                )
            }
            ImageProblem::TopLayerNotHeld { id, chain_id } => {
                write!(
                    f,
                    "image {id}: layer {chain_id} is not held by {}",
                    holder(id)
                )
            }
            ImageProblem::MissingChildLink { parent, child } => {
                write!(
                    f,
                    "image {child}: the children link under {parent} is missing"
                )
            }
            ImageProblem::DanglingChildLink { parent, child } => {
                write!(
                    f,
                    "children link {parent} -> {child} has no `parent` metadata behind it"
                )
            }
            ImageProblem::ParentCycle { id, parent } => {
                write!(
                    f,
                    "image {id}: parent {parent} is not followed: it closes a cycle"
                )
            }
            ImageProblem::BadRecord {
                bucket,
                key,
                reason,
            } => write!(f, "image store record {bucket}/{key} is corrupt: {reason}"),
        }
    }
}

/// Why a stored config cannot be an image.
enum Unusable {
    /// A layer of its chain is missing.
    Layer(ChainId),
    /// Anything else, as text.
    Other(String),
}

/// What the primary data says the records should be.
struct Derived {
    /// Every image the configs give, with its summary.
    summaries: BTreeMap<ImageId, Summary>,
    /// Configs that cannot be images.
    unusable: BTreeMap<ImageId, Unusable>,
    /// `parent` metadata not followed because it closes a cycle.
    cycles: Vec<(ImageId, ImageId)>,
}

impl Derived {
    fn links(&self) -> BTreeSet<(ImageId, ImageId)> {
        self.summaries
            .iter()
            .filter_map(|(id, s)| Some((s.parent.clone()?, id.clone())))
            .collect()
    }
}

/// The records as stored, decoded where they can be.
struct Stored {
    summaries: BTreeMap<ImageId, (Vec<u8>, Option<Summary>)>,
    links: BTreeSet<(ImageId, ImageId)>,
    bad: Vec<ImageProblem>,
}

impl<B: StoreBackend + RecordStore, L: LayerGetReleaser + LayerHolders> Store<B, L> {
    /// Recomputes every image record from the configs, their `parent`
    /// metadata and the layer records, and reports each disagreement. O(n):
    /// reads every config. Changes nothing.
    pub fn check(&self) -> Result<Vec<ImageProblem>> {
        let derived = self.derive()?;
        let stored = self.stored()?;
        let mut problems = stored.bad;
        let mut held = HeldBy::new(&*self.layers);
        for (id, (_, summary)) in &stored.summaries {
            let Some(summary) = summary else { continue };
            match (derived.summaries.get(id), derived.unusable.get(id)) {
                (Some(expected), _) => {
                    if expected != summary {
                        problems.push(ImageProblem::StaleSummary {
                            id: id.clone(),
                            stored: Box::new(summary.clone()),
                            expected: Box::new(expected.clone()),
                        });
                    }
                    if let Some(top) = &expected.top
                        && !held.holds(top, &holder(id))?
                    {
                        problems.push(ImageProblem::TopLayerNotHeld {
                            id: id.clone(),
                            chain_id: top.clone(),
                        });
                    }
                }
                (None, Some(Unusable::Layer(chain_id))) => {
                    problems.push(ImageProblem::LayerMissing {
                        id: id.clone(),
                        chain_id: chain_id.clone(),
                    })
                }
                (None, Some(Unusable::Other(reason))) => {
                    problems.push(ImageProblem::BrokenConfig {
                        id: id.clone(),
                        reason: reason.clone(),
                    })
                }
                (None, None) => problems.push(ImageProblem::MissingConfig { id: id.clone() }),
            }
        }
        for id in derived.summaries.keys() {
            if !stored.summaries.contains_key(id) {
                problems.push(ImageProblem::UnindexedConfig { id: id.clone() });
            }
        }
        for (id, why) in &derived.unusable {
            if !stored.summaries.contains_key(id) {
                let reason = match why {
                    Unusable::Layer(chain_id) => format!("layer {chain_id} does not exist"),
                    Unusable::Other(reason) => reason.clone(),
                };
                problems.push(ImageProblem::UnusableConfig {
                    id: id.clone(),
                    reason,
                });
            }
        }
        for (id, parent) in &derived.cycles {
            problems.push(ImageProblem::ParentCycle {
                id: id.clone(),
                parent: parent.clone(),
            });
        }
        let expected_links = derived.links();
        for (parent, child) in expected_links.difference(&stored.links) {
            problems.push(ImageProblem::MissingChildLink {
                parent: parent.clone(),
                child: child.clone(),
            });
        }
        for (parent, child) in stored.links.difference(&expected_links) {
            problems.push(ImageProblem::DanglingChildLink {
                parent: parent.clone(),
                child: child.clone(),
            });
        }
        Ok(problems)
    }

    /// (Re)derives every summary, children link and `image:<hex>` hold
    /// from the configs and metadata in the backend, and removes the
    /// records nothing derives: what fsck's repair and the one-time
    /// migration of a store written before the records existed (configs
    /// and metadata only) call. Holds are taken before the summaries that
    /// need them; records are written in batches of at most 512 changes.
    /// Idempotent. Returns the number of records and holds it changed
    /// (0 when the index was right). O(n): reads every config.
    pub fn rebuild_index(&self) -> Result<usize> {
        let _writer = self.lock_writer();
        let derived = self.derive()?;
        let stored = self.stored()?;
        let mut changed = 0;
        let mut held = HeldBy::new(&*self.layers);
        for (id, summary) in &derived.summaries {
            if let Some(top) = &summary.top
                && !held.holds(top, &holder(id))?
            {
                self.layers.hold(top, &holder(id))?;
                changed += 1;
            }
        }
        let mut batch = Batch::new();
        let commit = |batch: &mut Batch, force: bool| -> Result<()> {
            if batch.len() >= BATCH_OPS || (force && !batch.is_empty()) {
                self.backend.apply(batch)?;
                *batch = Batch::new();
            }
            Ok(())
        };
        for (id, summary) in &derived.summaries {
            let bytes = summary.encode();
            let key = id.digest().encoded();
            if stored.summaries.get(id).map(|(b, _)| b) != Some(&bytes) {
                batch.put(IMAGES_BUCKET, key, bytes);
                changed += 1;
                commit(&mut batch, false)?;
            }
        }
        let mut unlisted = Vec::new();
        for (id, (_, summary)) in &stored.summaries {
            if !derived.summaries.contains_key(id) {
                batch.delete(IMAGES_BUCKET, id.digest().encoded());
                changed += 1;
                commit(&mut batch, false)?;
                if let Some(top) = summary.as_ref().and_then(|s| s.top.clone()) {
                    unlisted.push((id.clone(), top));
                }
            }
        }
        for problem in &stored.bad {
            if let ImageProblem::BadRecord { bucket, key, .. } = problem
                // Summaries under a valid key were handled above.
                && !(bucket == &IMAGES_BUCKET && id_of_key(key).is_some())
            {
                batch.delete(bucket, key);
                changed += 1;
                commit(&mut batch, false)?;
            }
        }
        let expected_links = derived.links();
        for (parent, child) in expected_links.difference(&stored.links) {
            batch.put(CHILDREN_BUCKET, &child_key(parent, child), Vec::new());
            changed += 1;
            commit(&mut batch, false)?;
        }
        for (parent, child) in stored.links.difference(&expected_links) {
            batch.delete(CHILDREN_BUCKET, &child_key(parent, child));
            changed += 1;
            commit(&mut batch, false)?;
        }
        commit(&mut batch, true)?;
        // Unlisted images let go of their layers (best effort: a layer that
        // is missing has nothing to let go of).
        for (id, top) in unlisted {
            if held.holds(&top, &holder(&id)).unwrap_or(false) {
                let _ = self.layers.unhold(&top, &holder(&id));
                changed += 1;
            }
        }
        Ok(changed)
    }
}

impl<B: StoreBackend + RecordStore, L: LayerGetReleaser> Store<B, L> {
    /// Every config in the backend, read, verified and parsed, with its
    /// `parent` metadata linked as moby's restore does: in ID order, a link
    /// to an image that is not usable is ignored, and one that would close
    /// a cycle is not followed.
    fn derive(&self) -> Result<Derived> {
        let mut ids = Vec::new();
        self.backend.walk(&mut |digest| {
            ids.push(ImageId::from(digest.clone()));
            Ok(())
        })?;
        ids.sort();
        // Summaries without their parent yet: no config is kept in memory.
        let mut usable: BTreeMap<ImageId, Summary> = BTreeMap::new();
        let mut unusable = BTreeMap::new();
        for chunk in ids.chunks(BATCH_OPS) {
            let digests: Vec<_> = chunk.iter().map(|id| id.digest().clone()).collect();
            for (id, raw) in chunk.iter().zip(self.backend.get_many(&digests)) {
                match self.usable(raw) {
                    Ok(found) => {
                        usable.insert(id.clone(), found);
                    }
                    Err(why) => {
                        unusable.insert(id.clone(), why);
                    }
                }
            }
        }
        let usable_ids: Vec<ImageId> = usable.keys().cloned().collect();
        let mut parents: HashMap<ImageId, ImageId> = HashMap::new();
        let mut cycles = Vec::new();
        for chunk in usable_ids.chunks(BATCH_OPS) {
            let digests: Vec<_> = chunk.iter().map(|id| id.digest().clone()).collect();
            for (id, value) in chunk
                .iter()
                .zip(self.backend.get_metadata_many(&digests, PARENT))
            {
                let parent = match value {
                    Ok(bytes) => parse_parent(&bytes),
                    Err(e) if e.kind() == imgstore_backend::ErrorKind::NotFound => None,
                    Err(e) => return Err(e.into()),
                };
                // A parent that is not an image is ignored, as in moby.
                if let Some(parent) = parent
                    && usable.contains_key(&parent)
                {
                    if closes_cycle(&parents, id, &parent) {
                        cycles.push((id.clone(), parent));
                    } else {
                        parents.insert(id.clone(), parent);
                    }
                }
            }
        }
        for (id, summary) in usable.iter_mut() {
            summary.parent = parents.remove(id);
        }
        Ok(Derived {
            summaries: usable,
            unusable,
            cycles,
        })
    }

    /// The summary (without parent), or why the config cannot be an image.
    /// A failing layer store (other than a missing layer) is an `Other`
    /// reason too: check reports it rather than stopping.
    fn usable(
        &self,
        raw: imgstore_backend::Result<Vec<u8>>,
    ) -> std::result::Result<Summary, Unusable> {
        let raw = raw.map_err(|e| Unusable::Other(format!("failed to read config: {e}")))?;
        let image = Image::from_config(&raw).map_err(|e| Unusable::Other(e.to_string()))?;
        if let Some(refused) = refuse_os(&image) {
            return Err(Unusable::Other(refused.to_string()));
        }
        match self.chain_sizes(image.top_chain_id()) {
            Ok(sizes) => Ok(Summary::of(&image, None, sizes)),
            Err(ImageError::Layer(LayerError::NotFound { chain_id })) => {
                Err(Unusable::Layer(chain_id))
            }
            Err(e) => Err(Unusable::Other(e.to_string())),
        }
    }

    /// The image records as stored: summaries (raw and decoded), children
    /// links, and the records that cannot be read.
    fn stored(&self) -> Result<Stored> {
        let mut stored = Stored {
            summaries: BTreeMap::new(),
            links: BTreeSet::new(),
            bad: Vec::new(),
        };
        self.backend
            .scan_records(IMAGES_BUCKET, "", &mut |key, value| {
                let Some(id) = id_of_key(key) else {
                    stored.bad.push(ImageProblem::BadRecord {
                        bucket: IMAGES_BUCKET,
                        key: key.to_owned(),
                        reason: "the key is not 64 hex digits".into(),
                    });
                    return Ok(());
                };
                let summary = match Summary::decode(key, value) {
                    Ok(summary) => Some(summary),
                    Err(e) => {
                        stored.bad.push(ImageProblem::BadRecord {
                            bucket: IMAGES_BUCKET,
                            key: key.to_owned(),
                            reason: e.to_string(),
                        });
                        None
                    }
                };
                stored.summaries.insert(id, (value.to_vec(), summary));
                Ok(())
            })?;
        self.backend
            .scan_records(CHILDREN_BUCKET, "", &mut |key, value| {
                match parse_child_key(key) {
                    Some(link) if value.is_empty() => {
                        stored.links.insert(link);
                    }
                    _ => stored.bad.push(ImageProblem::BadRecord {
                        bucket: CHILDREN_BUCKET,
                        key: key.to_owned(),
                        reason: "not a `<parent hex> <child hex>` key with an empty value".into(),
                    }),
                }
                Ok(())
            })?;
        Ok(stored)
    }
}

/// True when linking `child -> parent` closes a cycle among `parents`:
/// `child` is `parent` or one of its ancestors. Bounded; a walk that runs
/// out counts as a cycle.
fn closes_cycle(parents: &HashMap<ImageId, ImageId>, child: &ImageId, parent: &ImageId) -> bool {
    let mut current = parent;
    for _ in 0..=parents.len().min(MAX_PARENT_DEPTH) {
        if current == child {
            return true;
        }
        match parents.get(current) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}
