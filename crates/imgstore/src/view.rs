//! Read-only views of a [`Store`] as a Docker user reads them: the image
//! list with `docker images` filters ([`Store::list_images`]), `docker
//! inspect` ([`Store::inspect`]), `docker history` ([`Store::history`]) and
//! how many images use each layer ([`Store::layer_usage`]).
//!
//! Nothing here writes; every view is computed from the stores' memory and
//! the image configs.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use imgstore_digest::Digest;
use imgstore_image::time::parse_rfc3339;
use imgstore_image::{ImageId, ImageStore};
use imgstore_layer::{ChainId, Layer};
use imgstore_refs::filters::{Adaptor, Filter};
use imgstore_refs::reference::{Reference, familiar_match};
use serde::Serialize;
use serde_json::Value;

use crate::name_index::{meaning_in, visible_in};
use crate::{Error, ImageSummary, Result, Store};

/// Docker's zero time, which `docker inspect` prints for a time not set.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What [`Store::list_images`] lists: Docker's `docker images` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    /// `-a`: also intermediate images (no name, and child images).
    pub all: bool,
    /// `--filter` values, each `key=value`: `dangling=true|false`,
    /// `reference=PATTERN` (a shell pattern over the name as Docker shows
    /// it; several are alternatives), `before=IMAGE`, `since=IMAGE`
    /// (created before / after that image), `label=KEY` or
    /// `label=KEY=VALUE` (config labels; several must all hold).
    pub filters: Vec<String>,
}

/// One image as `docker inspect` prints it: every field of Docker 20.10's
/// `ImageInspect`, in its order, zero values included.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectView {
    /// The image ID (`sha256:…`).
    pub id: String,
    /// The tags naming it, as Docker shows them (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `repository@digest` of the manifest or index each name points at,
    /// for the names whose manifest came with the image (none for an image
    /// from a `docker save` archive, as Docker; see
    /// [`digest_shown`](crate::digest_shown)).
    pub repo_digests: Vec<String>,
    /// The parent image ID, empty when none is recorded.
    pub parent: String,
    /// The config's `comment`, empty when unset.
    pub comment: String,
    /// The config's `created`, Docker's zero time when unset.
    pub created: String,
    /// The config's `container` (the build container), empty when unset.
    pub container: String,
    /// The config's `container_config`, Docker's zero config when unset.
    pub container_config: ContainerConfig,
    /// The config's `docker_version`, empty when unset.
    pub docker_version: String,
    /// The config's `author`, empty when unset.
    pub author: String,
    /// The config's `config` as Docker's whole `container.Config`, `null`
    /// when absent.
    pub config: Option<ContainerConfig>,
    /// The config's `architecture`, empty when unset.
    pub architecture: String,
    /// The config's `variant`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The config's `os`.
    pub os: String,
    /// The config's `os.version`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// The size [`Store::images`] reports ([`ImageSummary::size`]).
    pub size: u64,
    /// The same as `size`, as Docker 20.10 prints it.
    pub virtual_size: u64,
    /// Where the layers are kept: Docker's storage driver, here the
    /// store's backend.
    pub graph_driver: GraphDriver,
    /// The layers.
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    /// Store metadata.
    pub metadata: InspectMetadata,
}

/// `GraphDriver` of [`InspectView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// Driver data: none (`null`).
    pub data: Option<BTreeMap<String, String>>,
    /// The backend's name (`sqlite`, `fs`), where Docker names its
    /// storage driver (`overlay2`, `vfs`).
    pub name: String,
}

/// Docker's `container.Config` (API 1.41), as `docker inspect` prints an
/// image's `Config` and `ContainerConfig`: every field in Docker's order,
/// the `omitempty` ones left out when empty. Built from the config JSON;
/// a field of the wrong type reads as unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `Hostname`.
    pub hostname: String,
    /// `Domainname`.
    pub domainname: String,
    /// `User`.
    pub user: String,
    /// `AttachStdin`.
    pub attach_stdin: bool,
    /// `AttachStdout`.
    pub attach_stdout: bool,
    /// `AttachStderr`.
    pub attach_stderr: bool,
    /// `ExposedPorts` (`{"80/tcp": {}}`), left out when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// `Tty`.
    pub tty: bool,
    /// `OpenStdin`.
    pub open_stdin: bool,
    /// `StdinOnce`.
    pub stdin_once: bool,
    /// `Env`.
    pub env: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Healthcheck`, left out when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `ArgsEscaped`, left out when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// `Image`.
    pub image: String,
    /// `Volumes` (`{"/data": {}}`).
    pub volumes: Option<BTreeMap<String, Value>>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `NetworkDisabled`, left out when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    /// `MacAddress`, left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `OnBuild`.
    pub on_build: Option<Vec<String>>,
    /// `Labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal`, left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// `StopTimeout`, left out when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `Shell`, left out when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's `container.HealthConfig`, the `Healthcheck` of a
/// [`ContainerConfig`]: its fields in Docker's order, each left out when
/// empty (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `Test`: the command (`["CMD", ...]`, `["NONE"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// `Interval`.
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// `Timeout`.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// `StartPeriod`.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// `Retries`.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl HealthConfig {
    fn from_json(value: &Value) -> HealthConfig {
        let number = |key: &str| value.get(key).and_then(Value::as_i64).unwrap_or(0);
        HealthConfig {
            test: value
                .get("Test")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            interval: number("Interval"),
            timeout: number("Timeout"),
            start_period: number("StartPeriod"),
            retries: number("Retries"),
        }
    }
}

impl ContainerConfig {
    /// Reads a config's `config` (or `container_config`) object as Docker
    /// decodes it into `container.Config`.
    pub fn from_json(value: &Value) -> ContainerConfig {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        // Docker's `StrSlice` also takes a single string.
        let strings = |key: &str| -> Option<Vec<String>> {
            match value.get(key)? {
                Value::String(one) => Some(vec![one.clone()]),
                Value::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            }
        };
        let set = |key: &str| -> Option<BTreeMap<String, Value>> {
            let object = value.get(key)?.as_object()?;
            Some(
                object
                    .keys()
                    .map(|key| (key.clone(), Value::Object(serde_json::Map::new())))
                    .collect(),
            )
        };
        ContainerConfig {
            hostname: text("Hostname"),
            domainname: text("Domainname"),
            user: text("User"),
            attach_stdin: flag("AttachStdin"),
            attach_stdout: flag("AttachStdout"),
            attach_stderr: flag("AttachStderr"),
            exposed_ports: set("ExposedPorts").filter(|ports| !ports.is_empty()),
            tty: flag("Tty"),
            open_stdin: flag("OpenStdin"),
            stdin_once: flag("StdinOnce"),
            env: strings("Env"),
            cmd: strings("Cmd"),
            healthcheck: value
                .get("Healthcheck")
                .filter(|h| h.is_object())
                .map(HealthConfig::from_json),
            args_escaped: flag("ArgsEscaped"),
            image: text("Image"),
            volumes: set("Volumes"),
            working_dir: text("WorkingDir"),
            entrypoint: strings("Entrypoint"),
            network_disabled: flag("NetworkDisabled"),
            mac_address: text("MacAddress"),
            on_build: strings("OnBuild"),
            labels: value
                .get("Labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                        .collect()
                }),
            stop_signal: text("StopSignal"),
            stop_timeout: value.get("StopTimeout").and_then(Value::as_i64),
            shell: strings("Shell").filter(|shell| !shell.is_empty()),
        }
    }
}

/// `RootFS` of [`InspectView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The diff IDs, bottom-up.
    pub layers: Vec<String>,
}

/// `Metadata` of [`InspectView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectMetadata {
    /// When the image was last tagged through the image store
    /// (`set_last_updated`), Docker's zero time otherwise.
    pub last_tag_time: String,
}

/// One line of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The image ID for the newest entry; `None` (Docker's `<missing>`) for
    /// the others.
    pub id: Option<ImageId>,
    /// When the step ran, as the config writes it.
    pub created: Option<String>,
    /// The command that made the step, empty when unset.
    pub created_by: String,
    /// The bytes of the layer the step made, as Docker counts them: the
    /// regular files in the layer ([`Layer::files_size`]; the tar's size
    /// for a layer recorded without it); 0 for a step without layer.
    pub size: u64,
    /// The step's comment, empty when unset.
    pub comment: String,
    /// True when the step made no layer (ENV, LABEL, ...).
    pub empty_layer: bool,
}

/// One stored layer and how many images use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerUsage {
    /// Its chain ID.
    pub chain_id: ChainId,
    /// Its diff ID.
    pub diff_id: Digest,
    /// The chain ID of the layer below, `None` for a bottom layer.
    pub parent: Option<ChainId>,
    /// The uncompressed size of its tar, in bytes.
    pub size: u64,
    /// The bytes of the regular files in it (Docker's measure), when the
    /// record has them.
    pub files_size: Option<u64>,
    /// How many images' layer chains include it (at any level).
    pub used_by: usize,
}

/// A parsed `--filter` list.
#[derive(Default)]
pub(crate) struct ImageFilters {
    dangling: Option<bool>,
    references: Vec<String>,
    before: Option<SystemTime>,
    since: Option<SystemTime>,
    /// Docker's `until`: images created at or before it.
    until: Option<SystemTime>,
    labels: Option<Filter>,
}

/// An image's config labels, as a containerd filter sees them
/// (`labels."key"`).
struct ConfigLabels<'a>(&'a BTreeMap<String, String>);

impl Adaptor for ConfigLabels<'_> {
    fn field(&self, path: &[String]) -> Option<&str> {
        match path {
            [first, key] if first == "labels" => self.0.get(key).map(String::as_str),
            _ => None,
        }
    }
}

/// A string quoted for the containerd filter language (Go escapes, which
/// JSON's are a subset of).
fn filter_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// The creation time of a config, the epoch when unset or unreadable
/// (Docker's zero time sorts first too).
fn created_time(created: Option<&str>) -> SystemTime {
    created.and_then(parse_rfc3339).unwrap_or(UNIX_EPOCH)
}

impl ImageFilters {
    /// Parses `docker images` filters; `created_of` gives the creation
    /// time of the image a `before`/`since` filter names (`None`: the
    /// caller cannot, and the filter is refused as unsupported there).
    pub(crate) fn parse(
        filters: &[String],
        created_of: &dyn Fn(&str) -> Result<Option<SystemTime>>,
    ) -> Result<ImageFilters> {
        let invalid = |raw: &str, reason: &str| Error::InvalidInput {
            what: format!("filter {raw:?}"),
            reason: reason.to_owned(),
        };
        let mut parsed = ImageFilters::default();
        let mut label_selectors = Vec::new();
        for raw in filters {
            let Some((key, value)) = raw.split_once('=') else {
                return Err(invalid(raw, "expected key=value"));
            };
            match key {
                "dangling" => {
                    parsed.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid(raw, "dangling must be true or false")),
                    });
                }
                "reference" => parsed.references.push(value.to_owned()),
                "before" | "since" => {
                    let Some(time) = created_of(value)? else {
                        return Err(invalid(raw, "needs the opened store"));
                    };
                    if key == "before" {
                        parsed.before = Some(time);
                    } else {
                        parsed.since = Some(time);
                    }
                }
                "until" => {
                    parsed.until = Some(
                        crate::timestamp::parse_timestamp(value, SystemTime::now()).ok_or_else(
                            || invalid(raw, "failed to parse value as time or duration"),
                        )?,
                    );
                }
                "label" => {
                    let selector = match value.split_once('=') {
                        Some((k, v)) => {
                            format!("labels.{}=={}", filter_quote(k), filter_quote(v))
                        }
                        None => format!("labels.{}", filter_quote(value)),
                    };
                    if value.is_empty() {
                        return Err(invalid(raw, "a label filter needs a key"));
                    }
                    label_selectors.push(selector);
                }
                _ => {
                    return Err(invalid(
                        raw,
                        "unknown filter (dangling, reference, before, since, until, label)",
                    ));
                }
            }
        }
        if !label_selectors.is_empty() {
            // One string: its selectors must all hold (Docker's label rule).
            let joined = label_selectors.join(",");
            parsed.labels =
                Some(Filter::parse(&joined).map_err(|e| invalid(&joined, &e.to_string()))?);
        }
        Ok(parsed)
    }
}

/// The images of `entries` (in ID order) that `docker images` shows with
/// these filters (without `all`, not the intermediate ones: no name and
/// child images), newest first (by `created`, then by ID); the `label` filters match the
/// labels of each entry's summary. A `reference` filter also narrows each
/// image's references to those it matches.
pub(crate) fn select_images(
    mut entries: Vec<ListingEntry>,
    all: bool,
    filters: &ImageFilters,
) -> Result<Vec<ImageSummary>> {
    // Filtered and sorted in place: a listing of 10k images moves no
    // summary into a new buffer until the last step.
    let mut failed = None;
    entries.retain_mut(|entry| match keeps(entry, all, filters) {
        Ok(keep) => keep,
        Err(e) => {
            failed.get_or_insert(e);
            false
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    // Newest first, then by ID: the entries came in ID order and the sort
    // is stable.
    entries.sort_by_cached_key(|entry| std::cmp::Reverse(entry.created));
    Ok(entries.into_iter().map(|entry| entry.summary).collect())
}

/// Whether `docker images` shows `entry` with these filters (see
/// [`select_images`]); narrows its references to those a `reference`
/// filter matches.
fn keeps(entry: &mut ListingEntry, all: bool, filters: &ImageFilters) -> Result<bool> {
    let summary = &mut entry.summary;
    if !all && summary.references.is_empty() && entry.has_children {
        return Ok(false);
    }
    if let Some(dangling) = filters.dangling
        && dangling != summary.references.is_empty()
    {
        return Ok(false);
    }
    if !filters.references.is_empty() {
        let mut kept = Vec::new();
        for reference in &summary.references {
            for pattern in &filters.references {
                if familiar_match(pattern, reference).map_err(|e| Error::InvalidInput {
                    what: format!("filter \"reference={pattern}\""),
                    reason: e.to_string(),
                })? {
                    kept.push(reference.clone());
                    break;
                }
            }
        }
        if kept.is_empty() {
            return Ok(false);
        }
        summary.references = kept;
    }
    let created = entry.created;
    if filters.before.is_some_and(|before| created >= before)
        || filters.since.is_some_and(|since| created <= since)
        || filters.until.is_some_and(|until| created > until)
    {
        return Ok(false);
    }
    if let Some(filter) = &filters.labels
        && !filter.matches(&ConfigLabels(&entry.labels))
    {
        return Ok(false);
    }
    Ok(true)
}

/// One image of a listing: its summary and whether it has child images
/// (an unnamed image with children is an intermediate one, hidden without
/// `-a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListingEntry {
    pub(crate) summary: ImageSummary,
    pub(crate) has_children: bool,
    /// The config's `created`, parsed (the epoch when unset or unreadable).
    pub(crate) created: SystemTime,
    /// The config's labels (what `label=` filters match).
    pub(crate) labels: BTreeMap<String, String>,
}

impl Store {
    /// Docker's `docker images`: every image (without `all`, not the
    /// intermediate ones: no name and child images) that the filters keep,
    /// newest first (by the config's `created`, then by ID). A `reference`
    /// filter also narrows each image's references to those it matches.
    /// A malformed filter is `InvalidArgument` naming it; an image named
    /// by `before`/`since` that does not exist is `NotFound`.
    pub fn list_images(&self, query: &ImageQuery) -> Result<Vec<ImageSummary>> {
        let filters = ImageFilters::parse(&query.filters, &|reference| {
            let id = self.resolve(reference)?;
            let created = self.images.summary(&id)?.and_then(|s| s.created);
            Ok(Some(created_time(created.as_deref())))
        })?;
        let entries = self.listing_entries()?;
        select_images(entries, query.all, &filters)
    }

    /// Docker's `docker inspect` of one image (a name, a full ID or a unique
    /// prefix). `NotFound` when nothing matches.
    pub fn inspect(&self, name_or_id: &str) -> Result<InspectView> {
        let id = self.resolve(name_or_id)?;
        let image = self.images.get(&id)?;
        let summary = self.summary_of(id.clone())?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        // The names resolving to it, in name order (not a scan of every name).
        let mut names = summary.references.clone();
        names.sort();
        for name in &names {
            let record = match self.refs.get(&self.namespace, name) {
                Ok(record) => record,
                Err(e) if e.kind() == imgstore_backend::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(reference) = Reference::parse_normalized(&record.name) else {
                continue;
            };
            if reference.tag().is_some() && reference.digest().is_none() {
                repo_tags.push(reference.familiar_string());
            }
            if let Some(digest) = crate::digest_shown(&record.target) {
                repo_digests.push(format!("{}@{digest}", reference.familiar_name()));
            }
        }
        repo_digests.sort();
        repo_digests.dedup();
        let text = |field: Option<&str>| field.unwrap_or_default().to_owned();
        let last_tag_time = self
            .images
            .get_last_updated(&id)?
            .map(imgstore_image::time::format_rfc3339_nanos)
            .unwrap_or_else(|| ZERO_TIME.to_owned());
        Ok(InspectView {
            id: id.to_string(),
            repo_tags,
            repo_digests,
            parent: self
                .images
                .get_parent(&id)
                .map(|p| p.to_string())
                .unwrap_or_default(),
            comment: text(image.comment()),
            created: image.created().unwrap_or(ZERO_TIME).to_owned(),
            container: text(image.field("container").and_then(Value::as_str)),
            container_config: image
                .field("container_config")
                .map(ContainerConfig::from_json)
                .unwrap_or_default(),
            docker_version: text(image.field("docker_version").and_then(Value::as_str)),
            author: text(image.author()),
            config: image
                .field("config")
                .filter(|config| config.is_object())
                .map(ContainerConfig::from_json),
            architecture: text(image.architecture()),
            variant: image
                .field("variant")
                .and_then(Value::as_str)
                .map(str::to_owned),
            os: image.os().to_owned(),
            os_version: image
                .field("os.version")
                .and_then(Value::as_str)
                .filter(|version| !version.is_empty())
                .map(str::to_owned),
            size: summary.size,
            virtual_size: summary.size,
            graph_driver: GraphDriver {
                data: None,
                name: self.content.driver_name().to_owned(),
            },
            root_fs: InspectRootFs {
                kind: image
                    .rootfs()
                    .map_or_else(|| "layers".to_owned(), |r| r.kind.clone()),
                layers: image.diff_ids().iter().map(Digest::to_string).collect(),
            },
            metadata: InspectMetadata { last_tag_time },
        })
    }

    /// Each name of this namespace with the digest Docker shows for it
    /// (`images --digests`, `RepoDigests`): the manifest or index its
    /// record targets, when that came with the image
    /// ([`digest_shown`](crate::digest_shown)); names whose manifest the
    /// facade wrote are left out.
    pub fn name_digests(&self) -> Result<BTreeMap<String, Digest>> {
        Ok(self
            .refs
            .list(&self.namespace, &[])?
            .iter()
            .filter_map(|record| {
                let digest = crate::digest_shown(&record.target)?;
                Some((record.name.clone(), digest.clone()))
            })
            .collect())
    }

    /// Docker's `docker history` of one image (a name, a full ID or a
    /// unique prefix): the config's history, newest first; the entries that
    /// made a layer take, in order, the sizes of the image's layers.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let id = self.resolve(name_or_id)?;
        let image = self.images.get(&id)?;
        let layers = self.chain_of(image.top_chain_id());
        let mut layer_sizes = layers
            .iter()
            .map(|layer| layer.files_size().unwrap_or(layer.size()));
        let mut entries: Vec<HistoryEntry> = image
            .history()
            .iter()
            .map(|step| HistoryEntry {
                id: None,
                created: step.created.clone(),
                created_by: step.created_by.clone().unwrap_or_default(),
                size: if step.empty_layer {
                    0
                } else {
                    layer_sizes.next().unwrap_or(0)
                },
                comment: step.comment.clone().unwrap_or_default(),
                empty_layer: step.empty_layer,
            })
            .collect();
        entries.reverse();
        if let Some(newest) = entries.first_mut() {
            newest.id = Some(id);
        }
        Ok(entries)
    }

    /// Every stored layer, by chain ID, with the number of images whose
    /// layer chain includes it.
    pub fn layer_usage(&self) -> Result<Vec<LayerUsage>> {
        let mut used_by: HashMap<ChainId, usize> = HashMap::new();
        // An unreadable image store counts no users (see `images_with`).
        for image in self.images.map().unwrap_or_default().values() {
            for layer in self.chain_of(image.top_chain_id()) {
                *used_by.entry(layer.chain_id().clone()).or_default() += 1;
            }
        }
        let layers: BTreeMap<ChainId, Layer> = self.layers.map()?;
        Ok(layers
            .into_values()
            .map(|layer| LayerUsage {
                used_by: used_by.get(layer.chain_id()).copied().unwrap_or(0),
                chain_id: layer.chain_id().clone(),
                diff_id: layer.diff_id().clone(),
                parent: layer.parent().cloned(),
                size: layer.size(),
                files_size: layer.files_size(),
            })
            .collect())
    }

    /// The layers of a chain, bottom-up (stopping at a missing or
    /// unreadable record).
    pub(crate) fn chain_of(&self, top: Option<&ChainId>) -> Vec<Layer> {
        let mut chain = Vec::new();
        let mut current = top.cloned();
        while let Some(chain_id) = current {
            let Some(layer) = self.layers.layer(&chain_id).ok().flatten() else {
                break;
            };
            current = layer.parent().cloned();
            chain.push(layer);
        }
        chain.reverse();
        chain
    }
}

impl Store {
    /// Every image visible in the namespace with whether it has children,
    /// in ID order: the image summaries joined with the name index, each
    /// read in one ordered scan (the names first, then each summary becomes
    /// its entry as it is read).
    pub(crate) fn listing_entries(&self) -> Result<Vec<ListingEntry>> {
        let mut names = crate::name_index::NamesInIdOrder::read(&self.content)?;
        let mut parents = std::collections::HashSet::new();
        let mut entries = Vec::new();
        self.images.scan_summaries(&mut |id, mut summary| {
            let reached = names.take(&id);
            if let Some(parent) = &summary.parent {
                parents.insert(parent.clone());
            }
            if !visible_in(&self.namespace, &reached) {
                return;
            }
            let meaning = meaning_in(&self.namespace, reached);
            entries.push(ListingEntry {
                has_children: false,
                created: created_time(summary.created.as_deref()),
                labels: std::mem::take(&mut summary.labels),
                summary: crate::store::listed(id, &summary, &meaning),
            });
        })?;
        for entry in &mut entries {
            entry.has_children = parents.contains(&entry.summary.id);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_config_prints_every_field_in_dockers_order() {
        let empty = serde_json::to_string(&ContainerConfig::default()).expect("JSON");
        assert_eq!(
            empty,
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
        let config = ContainerConfig::from_json(&serde_json::json!({
            "User": "1000",
            "ExposedPorts": {"80/tcp": {"ignored": 1}, "53/udp": {}},
            "Env": ["A=1"],
            "Cmd": "echo hi",
            "Healthcheck": {"Retries": 3, "Test": ["CMD", "true"], "Interval": 5_000_000_000_i64},
            "ArgsEscaped": true,
            "Volumes": {},
            "Entrypoint": 7,
            "Labels": {"a": "b", "n": 1},
            "StopSignal": "SIGTERM",
            "StopTimeout": 10,
            "Shell": ["/bin/bash", "-c"],
            "Unknown": "dropped, as Docker's decoder drops it",
        }));
        assert_eq!(
            serde_json::to_string(&config).expect("JSON"),
            r#"{"Hostname":"","Domainname":"","User":"1000","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"53/udp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["echo hi"],"Healthcheck":{"Test":["CMD","true"],"Interval":5000000000,"Retries":3},"ArgsEscaped":true,"Image":"","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b"},"StopSignal":"SIGTERM","StopTimeout":10,"Shell":["/bin/bash","-c"]}"#
        );
    }

    #[test]
    fn filter_quote_escapes_for_the_filter_language() {
        assert_eq!(filter_quote("a.b"), "\"a.b\"");
        assert_eq!(filter_quote("say \"hi\""), r#""say \"hi\"""#);
        let filter = Filter::parse(&format!("labels.{}==x", filter_quote("a \"b\"")))
            .expect("a quoted label key parses");
        let mut labels = BTreeMap::new();
        labels.insert("a \"b\"".to_owned(), "x".to_owned());
        assert!(filter.matches(&ConfigLabels(&labels)));
        assert!(!filter.matches(&ConfigLabels(&BTreeMap::new())));
    }
}
