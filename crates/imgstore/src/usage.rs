//! Disk usage as Docker reports it (`docker system df -v`): per image its
//! size, the part shared with other images and the part only it uses.
//!
//! A layer's size is Docker's: the bytes of the regular files in its tar
//! (whiteouts, directories and links count 0), recorded at import
//! ([`Layer::files_size`]). For a layer recorded without it (stored by an
//! older version, or registered directly through the layer store) the size
//! of its uncompressed tar stands in, an upper bound.

use std::collections::{HashMap, HashSet};

use imgstore_backend::StoreBackend;
use imgstore_image::{ImageId, ImageStore};
use imgstore_layer::{ChainId, Layer};

use crate::Store;

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
    /// summaries and the name index (one scan each; no config) and the
    /// content's total size.
    pub fn disk_usage(&self) -> crate::Result<DiskUsage> {
        let layers = self.layers.map()?;
        let images = self.images.summaries()?;
        // Each image's chain, top first, and how many images use each layer.
        let mut chains: Vec<(ImageId, Vec<&ChainId>)> = Vec::with_capacity(images.len());
        let mut users: HashMap<&ChainId, usize> = HashMap::new();
        for (id, summary) in &images {
            let mut chain = Vec::new();
            let mut current = summary.top.as_ref();
            while let Some(chain_id) = current {
                let Some((key, layer)) = layers.get_key_value(chain_id) else {
                    break;
                };
                chain.push(key);
                *users.entry(key).or_default() += 1;
                current = layer.parent();
            }
            chains.push((id.clone(), chain));
        }
        let size_of = |chain_id: &ChainId| layers.get(chain_id).map_or(0, docker_layer_size);

        let mut usage = DiskUsage {
            layers_size: layers.values().map(docker_layer_size).sum(),
            ..DiskUsage::default()
        };
        let mut named_layers: HashSet<&ChainId> = HashSet::new();
        let mut unnamed = Vec::new();
        let mut names = crate::name_index::all_names(&self.content)?;
        for (id, chain) in &chains {
            let references: Vec<String> = crate::name_index::meaning_in(
                &self.namespace,
                names.remove(id).unwrap_or_default(),
            )
            .into_iter()
            .map(|n| n.name)
            .collect();
            let size: u64 = chain.iter().map(|c| size_of(c)).sum();
            let shared_size: u64 = chain
                .iter()
                .filter(|c| users.get(*c).copied().unwrap_or(0) > 1)
                .map(|c| size_of(c))
                .sum();
            if references.is_empty() {
                unnamed.push(chain);
            } else {
                named_layers.extend(chain.iter().copied());
            }
            usage.images.push(ImageUsage {
                id: id.clone(),
                references,
                size,
                shared_size,
                unique_size: size - shared_size,
            });
        }
        let reclaimable: HashSet<&ChainId> = unnamed
            .into_iter()
            .flatten()
            .filter(|c| !named_layers.contains(*c))
            .copied()
            .collect();
        usage.reclaimable = reclaimable.iter().map(|c| size_of(c)).sum();
        usage.content_size = self.content.total_size()?;
        Ok(usage)
    }
}
