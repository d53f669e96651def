//! Disk usage as Docker reports it (`docker system df -v`): per image its
//! size, the part shared with other images and the part only it uses.
//!
//! A layer's size is Docker's: the bytes of the regular files in its tar
//! (whiteouts, directories and links count 0), recorded at import
//! ([`Layer::files_size`]). For a layer recorded without it (stored by an
//! older version, or registered directly through the layer store) the size
//! of its uncompressed tar stands in, an upper bound.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use imgstore_backend::StoreBackend;
use imgstore_image::{ImageId, ImageStore};
use imgstore_layer::{ChainId, Layer};

use crate::Store;
use crate::name_index::{NamesInIdOrder, meaning_in};

/// One image in [`DiskUsage`], as a row of `docker system df -v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUsage {
    /// The image ID.
    pub id: ImageId,
    /// Names pointing at it, most informative first.
    pub references: Vec<String>,
    /// Docker's SIZE: the sum of its layers' sizes.
    pub size: u64,
    /// The sizes of its layers that another stored image also uses.
    pub shared_size: u64,
    /// `size - shared_size`: what removing only this image would free.
    pub unique_size: u64,
    /// The config's `created` time, as written there.
    pub created: Option<String>,
}

/// What [`Store::disk_usage`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Every image, sorted by ID.
    pub images: Vec<ImageUsage>,
    /// Docker's total for images: the size of every distinct layer once.
    pub layers_size: u64,
    /// Bytes of every stored content blob (compressed layers, manifests,
    /// indexes, configs): what the store holds on disk, before overhead.
    pub content_size: u64,
    /// Docker's RECLAIMABLE: the layer bytes of images no name points at
    /// and that no named image uses too.
    pub reclaimable: u64,
}

/// Docker's size of a layer (see the module docs).
pub(crate) fn docker_layer_size(layer: &Layer) -> u64 {
    layer.files_size().unwrap_or_else(|| layer.size())
}

impl Store {
    /// Disk usage, Docker's way: for every image its size, shared size and
    /// unique size (a layer is shared when the layer chains of two or more
    /// images include it), plus totals. Reads the layer records, the image
    /// summaries and the name index (one ordered scan each; no config) and
    /// the content's total size.
    pub fn disk_usage(&self) -> crate::Result<DiskUsage> {
        // Each layer's parent and size, by chain ID.
        let mut layers: HashMap<ChainId, (Option<ChainId>, u64), RandomState> = HashMap::default();
        let mut layers_size = 0u64;
        self.layers.scan(&mut |layer| {
            let size = docker_layer_size(&layer);
            layers_size += size;
            layers.insert(layer.chain_id().clone(), (layer.parent().cloned(), size));
        })?;
        let size_of = |chain_id: &ChainId| layers.get(chain_id).map_or(0, |(_, size)| *size);

        // Each image's chain, top first, and how many images use each layer.
        let mut names = NamesInIdOrder::read(&self.content)?;
        let mut images = Vec::new();
        let mut chains: Vec<Vec<&ChainId>> = Vec::new();
        let mut users: HashMap<&ChainId, usize, RandomState> = HashMap::default();
        self.images.scan_summaries(&mut |id, summary| {
            let mut chain = Vec::new();
            let mut current = summary.top.as_ref();
            while let Some(chain_id) = current {
                // The scan took the records' keys unchecked: a corrupt
                // parent could close a loop, which fsck reports.
                let Some((key, (parent, _))) = layers.get_key_value(chain_id) else {
                    break;
                };
                if chain.len() == layers.len() {
                    break;
                }
                chain.push(key);
                *users.entry(key).or_default() += 1;
                current = parent.as_ref();
            }
            let references = meaning_in(&self.namespace, names.take(&id))
                .into_iter()
                .map(|n| n.name)
                .collect();
            images.push(ImageUsage {
                id,
                references,
                size: 0,
                shared_size: 0,
                unique_size: 0,
                created: summary.created,
            });
            chains.push(chain);
        })?;

        let mut named_layers: HashSet<&ChainId, RandomState> = HashSet::default();
        let mut unnamed = Vec::new();
        for (image, chain) in images.iter_mut().zip(&chains) {
            image.size = chain.iter().map(|c| size_of(c)).sum();
            image.shared_size = chain
                .iter()
                .filter(|c| users.get(*c).copied().unwrap_or(0) > 1)
                .map(|c| size_of(c))
                .sum();
            image.unique_size = image.size - image.shared_size;
            if image.references.is_empty() {
                unnamed.push(chain);
            } else {
                named_layers.extend(chain.iter().copied());
            }
        }
        let reclaimable: HashSet<&ChainId, RandomState> = unnamed
            .into_iter()
            .flatten()
            .filter(|c| !named_layers.contains(*c))
            .copied()
            .collect();
        Ok(DiskUsage {
            reclaimable: reclaimable.iter().map(|c| size_of(c)).sum(),
            content_size: self.content.total_size()?,
            layers_size,
            images,
        })
    }
}
