//! The name index: what each name leads to, kept on disk beside the names.
//!
//! Derived from a name's record (`refs`), the manifests and indexes it
//! leads to (content) and which images are stored (the image store), by the
//! one platform rule (`imgstore_cri::read_records`). Written in the same
//! batch as the name's record, so "which image does this name mean?" is
//! one read and "does any name, in any namespace, reach this image?" is one
//! bounded prefix probe: nothing is rebuilt when a store opens.
//!
//! Buckets (all in the content backend's records):
//!
//! - `name-images/<ns>/<name>` -> [`NameEntry`] (JSON): the images the name
//!   may mean, most preferred first, and the one it means.
//! - `image-names/<hex> <ns>/<name>` -> [`Reach`] (binary, format
//!   [`REACH_FORMAT`]: a listing decodes one per name): one per image
//!   the name reaches (every candidate, whatever the platform: all are in
//!   use while the name exists), saying whether the name means it.
//! - `index-names/<ns>/<name>` -> empty: the names whose target is an index,
//!   whose meaning can change when another platform's image is stored.
//!
//! `fsck` re-derives every entry and compares (see `fsck.rs`).

use std::collections::BTreeMap;

use imgstore_backend::codec::{CodecError, Decoder, Encoder};
use imgstore_backend::{Batch, RecordStore};
use imgstore_cri::{NameTarget, read_records};
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageStore};
use imgstore_refs::ImageRecord;
use serde::{Deserialize, Serialize};

use crate::{AnyBackend, Error, Result, Store};

/// `name-images`: `<ns>/<name>` -> [`NameEntry`].
pub(crate) const NAME_IMAGES: &str = "name-images";
/// `image-names`: `<hex> <ns>/<name>` -> [`Reach`].
pub(crate) const IMAGE_NAMES: &str = "image-names";
/// `index-names`: `<ns>/<name>` -> empty, for names of indexes.
pub(crate) const INDEX_NAMES: &str = "index-names";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One image a name may mean: its ID and containerd's size of it through
/// that name (manifest + config + layer blobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Candidate {
    /// The image ID.
    pub id: ImageId,
    /// Manifest + config + layer blobs, in bytes.
    pub size: u64,
}

/// What one name leads to, as derived when its record last changed (or an
/// image it may mean was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameEntry {
    /// The record's target this was derived from.
    pub target: Digest,
    /// The images of the stored manifests the name may mean, most
    /// preferred first (the platform rule); each image once.
    pub candidates: Vec<Candidate>,
    /// The position in `candidates` of the image the name means: the first
    /// that is stored. `None` when none is.
    pub chosen: Option<usize>,
    /// The name carries the pinned label.
    pub pinned: bool,
    /// The target is an index.
    pub index: bool,
}

impl NameEntry {
    /// The image the name means, with its size.
    pub(crate) fn chosen(&self) -> Option<&Candidate> {
        self.candidates.get(self.chosen?)
    }
}

/// The format byte of an `image-names` value: 1, then a flags byte
/// ([`Reach::chosen`] 1, [`Reach::pinned`] 2) and the size (8 bytes,
/// little-endian). JSON in store format 2.
pub(crate) const REACH_FORMAT: u8 = 1;

/// An `image-names` value: how one name reaches one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    /// The name means this image (else it only reaches it, as another
    /// platform of its index).
    pub chosen: bool,
    /// The name is pinned.
    pub pinned: bool,
    /// containerd's size of the image through this name.
    pub size: u64,
}

impl Reach {
    fn encode(&self) -> Vec<u8> {
        let flags = u8::from(self.chosen) | (u8::from(self.pinned) << 1);
        let mut encoder = Encoder::new(REACH_FORMAT);
        encoder.u8(flags).u64(self.size);
        encoder.finish()
    }

    fn decode(value: &[u8]) -> Result<Reach, CodecError> {
        let mut decoder = Decoder::new(value, REACH_FORMAT)?;
        let flags = decoder.u8()?;
        if flags > 3 {
            return Err(CodecError::new(format!("flags {flags:#04x}")));
        }
        let size = decoder.u64()?;
        decoder.finish()?;
        Ok(Reach {
            chosen: flags & 1 != 0,
            pinned: flags & 2 != 0,
            size,
        })
    }
}

/// One `image-names` record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameOfImage {
    /// The namespace of the name.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// How it reaches the image.
    pub reach: Reach,
}

fn name_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn image_prefix(id: &ImageId) -> String {
    format!("{} ", id.digest().encoded())
}

/// A record of the index that does not decode: an I/O error of kind
/// `InvalidData` naming the record (fsck re-derives it).
fn corrupt_record(
    bucket: &str,
    key: &str,
    reason: impl std::fmt::Display,
) -> imgstore_backend::Error {
    imgstore_backend::Error::io(
        "decode",
        imgstore_backend::Subject::Record {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        },
        std::io::Error::new(std::io::ErrorKind::InvalidData, reason.to_string()),
    )
}

/// [`corrupt_record`] as the facade's error.
fn corrupt(bucket: &str, key: &str, reason: impl std::fmt::Display) -> Error {
    corrupt_record(bucket, key, reason).into()
}

fn encode<T: Serialize>(bucket: &str, key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| corrupt(bucket, key, e))
}

/// Derives the entries of `records` (all of namespace `namespace`), in
/// order, reading their manifests from `content`; `stored` says whether an
/// image is in the image store. Nothing is written.
pub(crate) fn derive(
    content: &AnyBackend,
    records: &[&ImageRecord],
    stored: &dyn Fn(&ImageId) -> Result<bool>,
) -> Result<Vec<NameEntry>> {
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let wrapped: Vec<Option<&ImageRecord>> = records.iter().map(|r| Some(*r)).collect();
    let targets = read_records(content, &names, &wrapped)?;
    let mut entries = Vec::with_capacity(records.len());
    for (record, target) in records.iter().zip(targets) {
        entries.push(entry_of(record, target, stored)?);
    }
    Ok(entries)
}

fn entry_of(
    record: &ImageRecord,
    target: Option<NameTarget>,
    stored: &dyn Fn(&ImageId) -> Result<bool>,
) -> Result<NameEntry> {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut pinned = record
        .labels
        .get(imgstore_cri::PINNED_LABEL)
        .is_some_and(|v| v == "pinned");
    if let Some(target) = target {
        pinned = target.pinned;
        for candidate in target.candidates {
            if !candidates.iter().any(|c| c.id == candidate.id) {
                candidates.push(Candidate {
                    id: candidate.id,
                    size: candidate.size,
                });
            }
        }
    }
    let mut chosen = None;
    for (i, candidate) in candidates.iter().enumerate() {
        if stored(&candidate.id)? {
            chosen = Some(i);
            break;
        }
    }
    Ok(NameEntry {
        target: record.target.digest.clone(),
        candidates,
        chosen,
        pinned,
        index: INDEX_TYPES.contains(&record.target.media_type.as_str()),
    })
}

/// Adds to `batch` what replaces `old` (the stored entry, if any) by `new`
/// for the name `namespace/name`: the entry, its `image-names` records and
/// its `index-names` mark. With `new` = `None`, only removes.
pub(crate) fn stage(
    batch: &mut Batch,
    namespace: &str,
    name: &str,
    old: Option<&NameEntry>,
    new: Option<&NameEntry>,
) -> Result<()> {
    let key = name_key(namespace, name);
    let reached = |entry: &NameEntry| -> BTreeMap<String, Reach> {
        entry
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    format!("{}{key}", image_prefix(&c.id)),
                    Reach {
                        chosen: entry.chosen == Some(i),
                        pinned: entry.pinned,
                        size: c.size,
                    },
                )
            })
            .collect()
    };
    let before = old.map(reached).unwrap_or_default();
    let after = new.map(reached).unwrap_or_default();
    for gone in before.keys().filter(|k| !after.contains_key(*k)) {
        batch.delete(IMAGE_NAMES, gone);
    }
    for (image_key, reach) in &after {
        if before.get(image_key) != Some(reach) {
            batch.put(IMAGE_NAMES, image_key, reach.encode());
        }
    }
    match new {
        Some(entry) => {
            batch.put(NAME_IMAGES, &key, encode(NAME_IMAGES, &key, entry)?);
            if entry.index {
                batch.put(INDEX_NAMES, &key, Vec::new());
            } else if old.is_some_and(|o| o.index) {
                batch.delete(INDEX_NAMES, &key);
            }
        }
        None => {
            batch.delete(NAME_IMAGES, &key);
            if old.is_some_and(|o| o.index) {
                batch.delete(INDEX_NAMES, &key);
            }
        }
    }
    Ok(())
}

/// The stored entry of `namespace/name`, if any.
pub(crate) fn entry(
    content: &AnyBackend,
    namespace: &str,
    name: &str,
) -> Result<Option<NameEntry>> {
    let key = name_key(namespace, name);
    match content.get_record(NAME_IMAGES, &key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(NAME_IMAGES, &key, e)),
    }
}

/// Every entry of `namespace`'s names, in name order: one prefix scan of
/// `name-images`.
pub(crate) fn entries_in(
    content: &AnyBackend,
    namespace: &str,
) -> Result<Vec<(String, NameEntry)>> {
    let prefix = name_key(namespace, "");
    let mut entries = Vec::new();
    content.scan_records(NAME_IMAGES, &prefix, &mut |key, value| {
        let entry: NameEntry =
            serde_json::from_slice(value).map_err(|e| corrupt_record(NAME_IMAGES, key, e))?;
        entries.push((key[prefix.len()..].to_owned(), entry));
        Ok(())
    })?;
    Ok(entries)
}

/// One `image-names` record decoded: the image's 64 hex digits and how the
/// name reaches it.
fn decode_name_of_image<'k>(
    key: &'k str,
    value: &[u8],
) -> imgstore_backend::Result<(&'k str, NameOfImage)> {
    // `<64 hex> <namespace>/<name>`: the separators found by position and
    // by a byte search (a listing splits one key per name).
    let parsed = (key.as_bytes().get(64) == Some(&b' '))
        .then(|| (&key[..64], &key[65..]))
        .and_then(|(hex, full)| {
            let valid = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let slash = full.bytes().position(|b| b == b'/')?;
            valid.then(|| (hex, full[..slash].to_owned(), full[slash + 1..].to_owned()))
        });
    let Some((hex, namespace, name)) = parsed else {
        return Err(corrupt_record(
            IMAGE_NAMES,
            key,
            "not `<hex> <namespace>/<name>`",
        ));
    };
    let reach = Reach::decode(value).map_err(|e| corrupt_record(IMAGE_NAMES, key, e))?;
    Ok((
        hex,
        NameOfImage {
            namespace,
            name,
            reach,
        },
    ))
}

/// Calls `visit` for each `image-names` record under `prefix`, decoded, in
/// key order (so grouped by image: its 64 hex digits start the key).
pub(crate) fn scan_names(
    content: &AnyBackend,
    prefix: &str,
    visit: &mut dyn FnMut(&str, NameOfImage),
) -> Result<()> {
    content.scan_records(IMAGE_NAMES, prefix, &mut |key, value| {
        let (hex, name) = decode_name_of_image(key, value)?;
        visit(hex, name);
        Ok(())
    })?;
    Ok(())
}

/// Every name, of every namespace, that reaches `id` (one prefix scan,
/// bounded by the image's own names).
pub(crate) fn names_of(content: &AnyBackend, id: &ImageId) -> Result<Vec<NameOfImage>> {
    let mut out = Vec::new();
    scan_names(content, &image_prefix(id), &mut |_, name| out.push(name))?;
    Ok(out)
}

/// Whether any name of any namespace reaches `id`: one probe.
pub(crate) fn is_reached(content: &AnyBackend, id: &ImageId) -> Result<bool> {
    Ok(!content
        .first_records(IMAGE_NAMES, &image_prefix(id), 1)?
        .is_empty())
}

/// Every `image-names` record in key order, handed out image by image to a
/// caller that walks the images in ID order too (a listing's scan of the
/// summaries): a merge join, with no map from IDs to names.
pub(crate) struct NamesInIdOrder {
    names: std::iter::Peekable<std::vec::IntoIter<(String, NameOfImage)>>,
}

impl NamesInIdOrder {
    /// Reads every `image-names` record: one ordered scan.
    pub(crate) fn read(content: &AnyBackend) -> Result<NamesInIdOrder> {
        let mut names = Vec::new();
        scan_names(content, "", &mut |hex, name| {
            names.push((hex.to_owned(), name))
        })?;
        Ok(NamesInIdOrder {
            names: names.into_iter().peekable(),
        })
    }

    /// The names reaching `id`; the IDs asked for must ascend (names of
    /// images passed over are dropped).
    pub(crate) fn take(&mut self, id: &ImageId) -> Vec<NameOfImage> {
        let hex = id.digest().encoded();
        let mut reached = Vec::new();
        while let Some((name_hex, _)) = self.names.peek() {
            match name_hex.as_str().cmp(hex) {
                std::cmp::Ordering::Less => {
                    self.names.next();
                }
                std::cmp::Ordering::Equal => {
                    reached.extend(self.names.next().map(|(_, name)| name));
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        reached
    }
}

/// Every `image-names` record, grouped by image (one ordered scan).
pub(crate) fn all_names(content: &AnyBackend) -> Result<BTreeMap<ImageId, Vec<NameOfImage>>> {
    let mut out: BTreeMap<ImageId, Vec<NameOfImage>> = BTreeMap::new();
    let mut bad = None;
    scan_names(
        content,
        "",
        &mut |hex, name| match format!("sha256:{hex}").parse::<ImageId>() {
            Ok(id) => out.entry(id).or_default().push(name),
            Err(e) => {
                bad.get_or_insert_with(|| corrupt(IMAGE_NAMES, hex, e));
            }
        },
    )?;
    match bad {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The names, of every namespace, whose target is an index, as
/// `(namespace, name)`.
pub(crate) fn index_names(content: &AnyBackend) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    content.scan_records(INDEX_NAMES, "", &mut |key, _| {
        if let Some((namespace, name)) = key.split_once('/') {
            out.push((namespace.to_owned(), name.to_owned()));
        }
        Ok(())
    })?;
    Ok(out)
}

/// One derived entry that differs from what the records give now: what
/// `fsck` reports as drift and its repair rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameDrift {
    /// The namespace of the name.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// What differs.
    pub detail: String,
}

impl Store {
    /// Whether an image is stored (its summary exists): what decides which
    /// candidate a name means.
    pub(crate) fn is_stored(&self, id: &ImageId) -> Result<bool> {
        Ok(self.images.summary(id)?.is_some())
    }

    /// The image the name `name` (as stored) of this namespace means, from
    /// its derived entry; `None` when it means none (or does not exist).
    pub(crate) fn image_of_name(&self, name: &str) -> Result<Option<ImageId>> {
        match entry(&self.content, &self.namespace, name) {
            Ok(entry) => Ok(entry.and_then(|entry| entry.chosen().map(|c| c.id.clone()))),
            // No name can be spelled so (empty, too long, NUL): none.
            Err(Error::Backend(e)) if e.kind() == imgstore_backend::ErrorKind::InvalidArgument => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The names of this namespace that mean `id`, most informative first.
    pub(crate) fn names_meaning(&self, id: &ImageId) -> Result<Vec<NameOfImage>> {
        Ok(meaning_in(&self.namespace, names_of(&self.content, id)?))
    }

    /// The other namespaces whose names reach `id`, sorted; empty when none.
    pub(crate) fn namespaces_elsewhere(&self, id: &ImageId) -> Result<Vec<String>> {
        let mut namespaces: Vec<String> = names_of(&self.content, id)?
            .into_iter()
            .filter(|n| n.namespace != self.namespace)
            .map(|n| n.namespace)
            .collect();
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
    }

    /// Whether the namespace sees the image: one of its names means it, or
    /// no name of another namespace reaches it.
    pub(crate) fn is_visible(&self, id: &ImageId) -> Result<bool> {
        let names = names_of(&self.content, id)?;
        Ok(visible_in(&self.namespace, &names))
    }

    /// Adds to `batch` the name index of the names of `namespace` whose
    /// records `batch` changes: each as `(name, the record as the batch
    /// leaves it)`, `None` for a name it deletes. So a name and what is
    /// derived from it commit together, or not at all.
    pub(crate) fn stage_names(
        &self,
        batch: &mut Batch,
        namespace: &str,
        changes: &[(&str, Option<&ImageRecord>)],
    ) -> Result<()> {
        let records: Vec<&ImageRecord> = changes.iter().filter_map(|(_, r)| *r).collect();
        let mut fresh = derive(&self.content, &records, &|id| self.is_stored(id))?.into_iter();
        for (name, record) in changes {
            let old = entry(&self.content, namespace, name)?;
            let new = match record {
                Some(_) => fresh.next(),
                None => None,
            };
            if old != new {
                stage(batch, namespace, name, old.as_ref(), new.as_ref())?;
            }
        }
        Ok(())
    }

    /// Re-derives the entries of `names` (of any namespace) from their
    /// records as stored now, and writes what changed in one batch.
    pub(crate) fn reindex_pairs(&self, names: &[(&str, &str)]) -> Result<()> {
        let mut batch = Batch::new();
        for (namespace, name) in names {
            self.stage_reindex(&mut batch, namespace, name)?;
        }
        if !batch.is_empty() {
            self.content.apply(&batch)?;
        }
        Ok(())
    }

    /// Adds to `batch` what brings the entry of `namespace/name` in line
    /// with its record; returns whether anything differed.
    fn stage_reindex(&self, batch: &mut Batch, namespace: &str, name: &str) -> Result<bool> {
        let record = match self.refs.get(namespace, name) {
            Ok(record) => Some(record),
            Err(e) if e.kind() == imgstore_backend::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let old = entry(&self.content, namespace, name)?;
        let new = match &record {
            Some(record) => derive(&self.content, &[&**record], &|id| self.is_stored(id))?.pop(),
            None => None,
        };
        if old == new {
            return Ok(false);
        }
        stage(batch, namespace, name, old.as_ref(), new.as_ref())?;
        Ok(true)
    }

    /// After images were stored: re-derives every name of an index, in
    /// every namespace (a newly stored platform may be what it means now).
    pub(crate) fn reindex_index_names(&self) -> Result<()> {
        let names = index_names(&self.content)?;
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .map(|(namespace, name)| (namespace.as_str(), name.as_str()))
            .collect();
        self.reindex_pairs(&pairs)
    }

    /// Compares every entry of the index with a fresh derivation from every
    /// record of every namespace (O(names)); with `repair`, rewrites what
    /// drifted (and removes entries of names that no longer exist).
    pub(crate) fn check_name_index(&self, repair: bool) -> Result<Vec<NameDrift>> {
        let mut drifted = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for namespace in self.refs.namespaces()? {
            let records = self.refs.list(&namespace, &[])?;
            let refs: Vec<&ImageRecord> = records.iter().map(|r| &**r).collect();
            for chunk in refs.chunks(1024) {
                let fresh = derive(&self.content, chunk, &|id| self.is_stored(id))?;
                let mut batch = Batch::new();
                for (record, fresh) in chunk.iter().zip(fresh) {
                    seen.insert(name_key(&namespace, &record.name));
                    let old = entry(&self.content, &namespace, &record.name)?;
                    if old.as_ref() == Some(&fresh)
                        && self.image_names_match(&namespace, &record.name, &fresh)?
                    {
                        continue;
                    }
                    drifted.push(NameDrift {
                        namespace: namespace.clone(),
                        name: record.name.clone(),
                        detail: match &old {
                            None => "no derived entry".to_owned(),
                            Some(old) if old != &fresh => format!(
                                "it means {:?}, the records say {:?}",
                                old.chosen().map(|c| c.id.to_string()),
                                fresh.chosen().map(|c| c.id.to_string())
                            ),
                            Some(_) => "its image-names or index-names records differ".to_owned(),
                        },
                    });
                    // Rewrite whole: the old entry's image-names go, the
                    // fresh ones are written.
                    if let Some(old) = &old {
                        stage(&mut batch, &namespace, &record.name, Some(old), None)?;
                    }
                    if !fresh.index {
                        batch.delete(INDEX_NAMES, &name_key(&namespace, &record.name));
                    }
                    stage(&mut batch, &namespace, &record.name, None, Some(&fresh))?;
                }
                if repair && !batch.is_empty() {
                    self.content.apply(&batch)?;
                }
            }
        }
        // Entries (and image-names records) of names that are gone.
        let mut stale: Vec<String> = Vec::new();
        self.content.scan_records(NAME_IMAGES, "", &mut |key, _| {
            if !seen.contains(key) {
                stale.push(key.to_owned());
            }
            Ok(())
        })?;
        let mut orphans: Vec<String> = Vec::new();
        self.content.scan_records(IMAGE_NAMES, "", &mut |key, _| {
            if let Some((_, full)) = key.split_once(' ')
                && !seen.contains(full)
            {
                orphans.push(key.to_owned());
            }
            Ok(())
        })?;
        let mut batch = Batch::new();
        for key in &stale {
            let (namespace, name) = key.split_once('/').unwrap_or(("", key));
            drifted.push(NameDrift {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                detail: "an entry for a name that does not exist".to_owned(),
            });
            batch.delete(NAME_IMAGES, key);
            batch.delete(INDEX_NAMES, key);
        }
        for key in &orphans {
            let full = key.split_once(' ').map_or(key.as_str(), |(_, full)| full);
            if stale.iter().any(|s| s == full) {
                batch.delete(IMAGE_NAMES, key);
                continue;
            }
            let (namespace, name) = full.split_once('/').unwrap_or(("", full));
            drifted.push(NameDrift {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                detail: format!("an image-names record {key:?} of a name that does not exist"),
            });
            batch.delete(IMAGE_NAMES, key);
        }
        if repair && !batch.is_empty() {
            self.content.apply(&batch)?;
        }
        Ok(drifted)
    }

    /// Whether the `image-names` records of one name, and its `index-names`
    /// mark, are exactly those its entry gives.
    fn image_names_match(&self, namespace: &str, name: &str, entry: &NameEntry) -> Result<bool> {
        let marked = self
            .content
            .get_record(INDEX_NAMES, &name_key(namespace, name))?
            .is_some();
        if marked != entry.index {
            return Ok(false);
        }
        for (i, candidate) in entry.candidates.iter().enumerate() {
            let key = format!(
                "{}{}",
                image_prefix(&candidate.id),
                name_key(namespace, name)
            );
            let want = Reach {
                chosen: entry.chosen == Some(i),
                pinned: entry.pinned,
                size: candidate.size,
            };
            let have = self
                .content
                .get_record(IMAGE_NAMES, &key)?
                .and_then(|bytes| Reach::decode(&bytes).ok());
            if have != Some(want) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The names of `namespace` among `names` (those reaching one image) that
/// mean the image, most informative first.
pub(crate) fn meaning_in(namespace: &str, names: Vec<NameOfImage>) -> Vec<NameOfImage> {
    let mut meaning: Vec<NameOfImage> = names
        .into_iter()
        .filter(|n| n.namespace == namespace && n.reach.chosen)
        .collect();
    if meaning.len() > 1 {
        imgstore_cri::rank_references(&mut meaning, |n| n.name.as_str());
    }
    meaning
}

/// The visibility rule over the names that reach one image: a name of
/// `namespace` means it, or no name of another namespace reaches it.
pub(crate) fn visible_in(namespace: &str, names: &[NameOfImage]) -> bool {
    names
        .iter()
        .any(|n| n.namespace == namespace && n.reach.chosen)
        || names.iter().all(|n| n.namespace == namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reach_reads_back_and_a_bad_one_is_refused() {
        for (chosen, pinned) in [(false, false), (true, false), (false, true), (true, true)] {
            let reach = Reach {
                chosen,
                pinned,
                size: 1 << 40,
            };
            assert_eq!(Reach::decode(&reach.encode()), Ok(reach));
        }
        assert_eq!(
            Reach::decode(&[REACH_FORMAT, 4, 0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .to_string(),
            "flags 0x04"
        );
        // Store format 2 wrote JSON: not read as a reach (the upgrade and
        // fsck rewrite it).
        assert!(Reach::decode(br#"{"chosen":true,"pinned":false,"size":1}"#).is_err());
    }
}
