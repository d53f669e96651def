//! Docker's words for the facade's results, in one place for every front
//! end: the `imgstore` command prints them, `imgstore serve` sends them to
//! the docker CLI, which prints them the same way.
//!
//! - [`RemoveReport::docker_lines`]: `docker rmi`'s `Untagged:` / `Deleted:`
//!   lines (the Engine API's `DELETE /images/{name}` array, and the groups of
//!   `docker image prune`).
//! - [`Imported::load_messages`]: `docker load`'s `Loaded image: NAME` lines.
//! - [`repo_names`]: an image's `RepoTags` and `RepoDigests`.

use std::collections::BTreeMap;

use imgstore_digest::Digest;
use imgstore_refs::reference::{Reference, familiar};

use crate::{Imported, RemoveReport};

/// One line of what `docker rmi` prints for an image removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A name removed, as Docker shows it (`busybox:latest`).
    Untagged(String),
    /// An image ID or a layer's chain ID deleted (`sha256:…`).
    Deleted(String),
}

/// A stored name as Docker shows it, or as stored when it does not parse.
fn familiar_or_stored(name: &str) -> String {
    familiar(name).unwrap_or_else(|_| name.to_owned())
}

impl RemoveReport {
    /// Docker's lines for this removal, in its order: the names untagged,
    /// then each image deleted followed by the layers it freed, top first.
    pub fn docker_lines(&self) -> Vec<Removed> {
        let mut lines: Vec<Removed> = self
            .untagged
            .iter()
            .map(|name| Removed::Untagged(familiar_or_stored(name)))
            .collect();
        let mut layers = self.deleted_layers.iter();
        for (i, id) in self.deleted.iter().enumerate() {
            lines.push(Removed::Deleted(id.to_string()));
            let freed = self.deleted_layer_counts.get(i).copied().unwrap_or(0);
            for layer in layers.by_ref().take(freed) {
                lines.push(Removed::Deleted(layer.to_string()));
            }
        }
        // Layers no count attributes (a report built by hand) come last.
        lines.extend(layers.map(|layer| Removed::Deleted(layer.to_string())));
        lines
    }
}

impl Imported {
    /// What `docker load` prints for this image, a line each (without the
    /// newline): the names it took from other images, then `Loaded image:
    /// NAME` per name, or `Loaded image ID: ID` when it has none.
    pub fn load_messages(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .renamed
            .iter()
            .map(|(name, previous)| {
                format!(
                    "The image {} already exists, renaming the old one with ID {previous} to empty string",
                    familiar_or_stored(name)
                )
            })
            .collect();
        if self.names.is_empty() {
            lines.push(format!("Loaded image ID: {}", self.id));
        }
        for name in &self.names {
            lines.push(format!("Loaded image: {}", familiar_or_stored(name)));
        }
        lines
    }
}

/// An image's names as Docker's image lists show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoNames {
    /// `busybox:latest`: its tags, sorted.
    pub tags: Vec<String>,
    /// `busybox@sha256:…`: its digest names, and for each tag the manifest
    /// it points at when that came with the image
    /// ([`digest_shown`](crate::digest_shown)); sorted, once each.
    pub digests: Vec<String>,
}

/// The [`RepoNames`] of an image named by `references` (stored, full
/// names), given each name's shown digest ([`Store::name_digests`]).
/// Names that do not parse are left out, as Docker skips them.
///
/// [`Store::name_digests`]: crate::Store::name_digests
pub fn repo_names(references: &[String], name_digests: &BTreeMap<String, Digest>) -> RepoNames {
    let mut names = RepoNames::default();
    for stored in references {
        let Ok(reference) = Reference::parse_normalized(stored) else {
            continue;
        };
        if let Some(digest) = reference.digest() {
            names
                .digests
                .push(format!("{}@{digest}", reference.familiar_name()));
        } else if reference.tag().is_some() {
            names.tags.push(reference.familiar_string());
        }
        if let Some(digest) = name_digests.get(stored) {
            names
                .digests
                .push(format!("{}@{digest}", reference.familiar_name()));
        }
    }
    names.tags.sort();
    names.digests.sort();
    names.digests.dedup();
    names
}
