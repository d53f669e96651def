//! What the commands print: Docker's tables, JSON and messages, written
//! from the facade's views.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use imgstore::image::time::parse_rfc3339;
use imgstore::refs::reference::{FamiliarParts, Reference, familiar_parts};
use imgstore::{ImageSummary, ImageUsage, RemoveOptions, RemoveReport, Removed, Store};
use serde_json::{Value, json};

use crate::format::{
    created_since, ellipsis, go_rfc3339, go_time_string, human_size, human_size_precision, table,
};
use imgstore_cli::args::{HistoryArgs, ImagesArgs, InspectArgs, ListFormat, OutputFormat, RmiArgs};

use crate::template::{
    DF_HEADERS, DF_IMAGES_TABLE, DF_TABLE, HISTORY_HEADERS, HISTORY_TABLE, HISTORY_TABLE_NOT_HUMAN,
    IMAGES_HEADERS, IMAGES_TABLE, IMAGES_TABLE_WITH_DIGEST, QUIET_FORMAT, TemplateError,
    docker_format, render_inspect, render_rows, validate,
};
use crate::{image_query, output_error};

/// The name as Docker prints it (`busybox:latest`), or as stored when it
/// does not parse.
pub fn familiar(name: &str) -> String {
    imgstore::refs::reference::familiar(name).unwrap_or_else(|_| name.to_owned())
}

pub fn short_id(id: &imgstore::image::ImageId) -> String {
    id.digest().encoded().chars().take(12).collect()
}

/// A JSON object with its keys in the order given (Docker's keys sort as
/// Go sorts a map's; imgstore's own follow them).
fn ordered_json(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
        .collect();
    go_json_escapes(&format!("{{{}}}", body.join(",")))
}

/// JSON text with the escapes Go's encoder adds (`<`, `>`, `&`, U+2028,
/// U+2029 as `\u003c`, ...), so Docker's output matches byte for byte.
/// Those characters only ever occur inside JSON strings.
fn go_json_escapes(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// Docker's `images` row (`docker images --format '{{json .}}'`), its
/// keys in Go's sorted order, every value a string: what `--format json`
/// prints first and what a `--format` template sees. `id` is the ID as
/// the row shows it (short, or full with `--no-trunc`).
fn docker_image_row(
    summary: &ImageSummary,
    [repository, tag, digest]: [String; 3],
    id: String,
    now: SystemTime,
) -> Vec<(&'static str, Value)> {
    let size = human_size(summary.size);
    vec![
        // `docker images` has no container counts or shared sizes: N/A.
        ("Containers", json!("N/A")),
        (
            "CreatedAt",
            json!(go_time_string(summary.created.as_deref())),
        ),
        (
            "CreatedSince",
            json!(created_since(summary.created.as_deref(), now)),
        ),
        ("Digest", json!(digest)),
        ("ID", json!(id)),
        ("Repository", json!(repository)),
        ("SharedSize", json!("N/A")),
        ("Size", json!(size)),
        ("Tag", json!(tag)),
        ("UniqueSize", json!("N/A")),
        ("VirtualSize", json!(size)),
    ]
}

/// One line of `images --format json`: Docker's row, then imgstore's own
/// facts about the image.
fn image_json_row(summary: &ImageSummary, row: [String; 3], now: SystemTime) -> String {
    let mut references = summary.references.clone();
    references.sort();
    let mut fields = docker_image_row(summary, row, short_id(&summary.id), now);
    fields.extend([
        ("Pinned", json!(summary.pinned)),
        ("ContentSize", json!(summary.content_size)),
        ("Id", json!(summary.id.to_string())),
        ("References", json!(references)),
        (
            "Parent",
            json!(summary.parent.as_ref().map(ToString::to_string)),
        ),
        ("SizeBytes", json!(summary.size)),
    ]);
    ordered_json(&fields)
}

/// A row as the JSON object a template runs on.
fn object(fields: Vec<(&'static str, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// Docker's words for a `--format` template that does not parse or fails
/// on a row: `template parsing error: template: :1: ...` on stderr, exit 1
/// (and nothing on stdout).
fn template_failed(error: &TemplateError) -> ExitCode {
    eprintln!("template parsing error: {error}");
    ExitCode::FAILURE
}

/// Docker's Go types of the rows a `--format` template runs on, which its
/// errors name.
const IMAGE_ROW_TYPE: &str = "*formatter.imageContext";
const HISTORY_ROW_TYPE: &str = "*image.historyContext";
/// `system df`'s first row, where a bad field fails first.
const DF_ROW_TYPE: &str = "*formatter.diskUsageImagesContext";

/// Writes what [`render_rows`] made of `rows`, or says why it failed.
fn write_rendered(
    rendered: Result<String, TemplateError>,
    row_type: &str,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    match rendered {
        Ok(text) => {
            out.write_all(text.as_bytes()).map_err(output_error)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Ok(template_failed(&as_struct_error(error, row_type))),
    }
}

/// An error of a template run on rows in the words Go uses for Docker's
/// row structs: a row is a flat object of strings, so a key it lacks is a
/// field `row_type` lacks, and a field of one of its values is a field of
/// a `string`.
fn as_struct_error(error: TemplateError, row_type: &str) -> TemplateError {
    let TemplateError::Execute {
        line,
        column,
        node,
        message,
    } = error
    else {
        return error;
    };
    let message = if let Some(key) = message
        .strip_prefix("map has no entry for key \"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        format!("can't evaluate field {key} in type {row_type}")
    } else if let Some(field) = message
        .strip_prefix("can't evaluate field ")
        .and_then(|rest| rest.strip_suffix(" in type interface {}"))
    {
        format!("can't evaluate field {field} in type string")
    } else {
        message
    };
    TemplateError::Execute {
        line,
        column,
        node,
        message,
    }
}

/// The rows an image shows in `images`, as Docker's: (repository, tag,
/// digest) per tag, the digest from `targets` (`<none>` when absent); one
/// per digest name whose repository has no tag row (its digest only
/// `with_digests`, as Docker leaves it empty otherwise); `<none>` rows
/// when it has no name.
pub fn image_rows(
    summary: &ImageSummary,
    targets: &BTreeMap<String, String>,
    with_digests: bool,
) -> Vec<[String; 3]> {
    let none = || "<none>".to_owned();
    let mut rows: Vec<[String; 3]> = Vec::new();
    // Stored names are in full form: slicing them is enough (a parse of
    // each name was an eighth of `images -q` at 10k).
    let parsed: Vec<(&String, Parts)> = summary
        .references
        .iter()
        .filter_map(|name| Some((name, Parts::of(name)?)))
        .collect();
    for (name, parts) in &parsed {
        if let (Some(tag), None) = (parts.tag(), parts.digest()) {
            rows.push([
                parts.name().to_owned(),
                tag.to_owned(),
                targets.get(*name).cloned().unwrap_or_else(none),
            ]);
        }
    }
    for (_, parts) in &parsed {
        if let Some(digest) = parts.digest() {
            let repository = parts.name();
            if !rows.iter().any(|row| row[0] == repository) {
                let digest = if with_digests {
                    digest.to_owned()
                } else {
                    String::new()
                };
                rows.push([repository.to_owned(), none(), digest]);
            }
        }
    }
    if rows.is_empty() {
        rows.push([none(), none(), none()]);
    }
    rows
}

/// A stored name's familiar parts: sliced from its full form, or parsed
/// when it is not in that form.
enum Parts<'a> {
    Sliced(FamiliarParts<'a>),
    Parsed { name: String, reference: Reference },
}

impl<'a> Parts<'a> {
    fn of(stored: &'a str) -> Option<Parts<'a>> {
        if let Some(parts) = familiar_parts(stored) {
            return Some(Parts::Sliced(parts));
        }
        let reference = Reference::parse_normalized(stored).ok()?;
        Some(Parts::Parsed {
            name: reference.familiar_name(),
            reference,
        })
    }

    fn name(&self) -> &str {
        match self {
            Parts::Sliced(parts) => parts.name,
            Parts::Parsed { name, .. } => name,
        }
    }

    fn tag(&self) -> Option<&str> {
        match self {
            Parts::Sliced(parts) => parts.tag,
            Parts::Parsed { reference, .. } => reference.tag(),
        }
    }

    fn digest(&self) -> Option<&str> {
        match self {
            Parts::Sliced(parts) => parts.digest,
            Parts::Parsed { reference, .. } => reference.digest().map(|d| d.as_str()),
        }
    }
}

pub fn images(store: &Store, args: &ImagesArgs, out: &mut impl Write) -> Result<ExitCode, String> {
    let listed = store
        .list_images(&image_query(args))
        .map_err(|e| e.to_string())?;
    let targets: BTreeMap<String, String> = if needs_digests(args) {
        store
            .name_digests()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(name, digest)| (name, digest.to_string()))
            .collect()
    } else {
        BTreeMap::new()
    };
    print_images(&listed, &targets, args, out)
}

/// Whether the rows carry their digests: with `--digests`, or when a
/// `--format` template shows them (Docker's `needDigest`).
fn needs_digests(args: &ImagesArgs) -> bool {
    args.digests
        || args
            .format
            .as_deref()
            .is_some_and(|format| format.contains("{{.Digest}}"))
}

/// Prints the listed images: JSON lines, or a template run on Docker's
/// rows: Docker's table (with the DIGEST column, from `targets`, when
/// `digests`), the IDs with `-q`, or the user's `--format`.
pub fn print_images(
    listed: &[ImageSummary],
    targets: &BTreeMap<String, String>,
    args: &ImagesArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let now = SystemTime::now();
    let template = match ListFormat::parse(args.format.as_deref()) {
        ListFormat::Json => {
            let mut text = String::new();
            for summary in listed {
                for row in image_rows(summary, targets, args.digests) {
                    text.push_str(&image_json_row(summary, row, now));
                    text.push('\n');
                }
            }
            out.write_all(text.as_bytes()).map_err(output_error)?;
            return Ok(ExitCode::SUCCESS);
        }
        // Docker's choice: `-q` wins over the table, not over a template.
        ListFormat::Table if args.quiet => QUIET_FORMAT,
        ListFormat::Table if args.digests => IMAGES_TABLE_WITH_DIGEST,
        ListFormat::Table => IMAGES_TABLE,
        ListFormat::Template(template) => template,
    };
    let id = |summary: &ImageSummary| {
        if args.no_trunc {
            summary.id.to_string()
        } else {
            short_id(&summary.id)
        }
    };
    // Docker's own formats print directly, the same bytes as the template
    // would (`tests/templates_cli.rs` checks): running it on 10k rows made
    // `images -q` three times slower.
    if [QUIET_FORMAT, IMAGES_TABLE, IMAGES_TABLE_WITH_DIGEST].contains(&template) {
        let text = default_images_table(listed, targets, template, id, now);
        out.write_all(text.as_bytes()).map_err(output_error)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for summary in listed {
        for row in image_rows(summary, targets, needs_digests(args)) {
            rows.push(object(docker_image_row(summary, row, id(summary), now)));
        }
    }
    write_rendered(
        render_rows(template, &rows, IMAGES_HEADERS),
        IMAGE_ROW_TYPE,
        out,
    )
}

/// What Docker's `images` formats print: [`QUIET_FORMAT`] the IDs, one per
/// row; [`IMAGES_TABLE`] (or with a DIGEST column
/// [`IMAGES_TABLE_WITH_DIGEST`]) the table.
fn default_images_table(
    listed: &[ImageSummary],
    targets: &BTreeMap<String, String>,
    template: &str,
    id: impl Fn(&ImageSummary) -> String,
    now: SystemTime,
) -> String {
    let digests = template == IMAGES_TABLE_WITH_DIGEST;
    let mut rows = Vec::new();
    let mut ids = String::new();
    for summary in listed {
        let id = id(summary);
        for [repository, tag, digest] in image_rows(summary, targets, digests) {
            if template == QUIET_FORMAT {
                ids.push_str(&id);
                ids.push('\n');
                continue;
            }
            let mut row = vec![repository, tag];
            if digests {
                row.push(digest);
            }
            row.extend([
                id.clone(),
                created_since(summary.created.as_deref(), now),
                human_size(summary.size),
            ]);
            rows.push(row);
        }
    }
    if template == QUIET_FORMAT {
        return ids;
    }
    let header: &[&str] = if digests {
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    table(header, &rows)
}

/// Pretty JSON with four-space indentation, as `docker inspect` prints.
pub fn pretty(value: &impl serde::Serialize) -> Result<String, String> {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|e| e.to_string())?;
    // Not Go's HTML escapes: `docker inspect` turns them off.
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// `docker inspect`: the images as one JSON array, or with `-f` the
/// template run on each image's JSON object, a line each.
pub fn inspect(store: &Store, args: &InspectArgs, out: &mut impl Write) -> ExitCode {
    if let Some(template) = args.format.as_deref().filter(|format| !format.is_empty()) {
        return inspect_template(store, &args.images, template, out);
    }
    let mut views = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in &args.images {
        match store.inspect(name) {
            Ok(view) => views.push(view),
            Err(e) => {
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    match pretty(&views) {
        Ok(text) => {
            let _ = writeln!(out, "{text}");
        }
        Err(e) => {
            eprintln!("Error: {e}");
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// `docker inspect -f TEMPLATE`, as Docker's template inspector: a
/// template that does not parse fails first (exit 64); then a line per
/// image the template ran on, an empty line when none did, and the
/// failures (unknown images, template errors) after the output, exit 1.
fn inspect_template(
    store: &Store,
    names: &[String],
    template: &str,
    out: &mut impl Write,
) -> ExitCode {
    if let Err(error) = validate(template) {
        eprintln!("template parsing error: {error}");
        return ExitCode::from(64);
    }
    let mut text = String::new();
    let mut failures = Vec::new();
    for name in names {
        let rendered = store
            .inspect(name)
            .map_err(|e| format!("Error: {e}"))
            .and_then(|view| serde_json::to_value(view).map_err(|e| format!("Error: {e}")))
            .and_then(|value| {
                render_inspect(template, &value)
                    .map_err(|error| format!("template parsing error: {error}"))
            });
        match rendered {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
            }
            Err(failure) => failures.push(failure),
        }
    }
    if text.is_empty() {
        text.push('\n');
    }
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    for failure in &failures {
        eprintln!("{failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `docker history`: the table (`--no-trunc`: full IDs and CREATED BY;
/// `--human=false`: CREATED AT in RFC 3339 and sizes in bytes), with `-q`
/// the IDs only (`<missing>` for layers without an image), or JSON rows.
pub fn history(
    store: &Store,
    args: &HistoryArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let entries = store.history(&args.image).map_err(|e| e.to_string())?;
    let no_trunc = args.no_trunc;
    let id = |entry: &imgstore::HistoryEntry| match &entry.id {
        None => "<missing>".to_owned(),
        Some(id) if no_trunc => id.to_string(),
        Some(id) => short_id(id),
    };
    let template = match ListFormat::parse(args.format.as_deref()) {
        ListFormat::Json => {
            let now = SystemTime::now();
            let text: String = entries
                .iter()
                .map(|entry| {
                    let created_by = entry.created_by.replace('\t', " ");
                    let id = id(entry);
                    // Docker's row (`docker history --format '{{json .}}'`),
                    // then imgstore's own facts.
                    ordered_json(&[
                        ("Comment", json!(entry.comment)),
                        ("CreatedAt", json!(go_rfc3339(entry.created.as_deref()))),
                        (
                            "CreatedBy",
                            json!(if no_trunc {
                                created_by
                            } else {
                                ellipsis(&created_by, 45)
                            }),
                        ),
                        (
                            "CreatedSince",
                            json!(created_since(entry.created.as_deref(), now)),
                        ),
                        ("ID", json!(id)),
                        ("Size", json!(human_size(entry.size))),
                        ("Id", json!(entry.id.as_ref().map(ToString::to_string))),
                        ("Created", json!(entry.created)),
                        ("SizeBytes", json!(entry.size)),
                        ("EmptyLayer", json!(entry.empty_layer)),
                    ]) + "\n"
                })
                .collect();
            out.write_all(text.as_bytes()).map_err(output_error)?;
            return Ok(ExitCode::SUCCESS);
        }
        ListFormat::Table if args.quiet => QUIET_FORMAT,
        ListFormat::Table if args.human => HISTORY_TABLE,
        ListFormat::Table => HISTORY_TABLE_NOT_HUMAN,
        ListFormat::Template(template) => template,
    };
    let now = SystemTime::now();
    // Docker's `historyContext`: `--human=false` gives CreatedSince as
    // RFC 3339 and Size in bytes.
    let rows: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let created_by = entry.created_by.replace('\t', " ");
            let created_at = go_rfc3339(entry.created.as_deref());
            json!({
                "ID": id(entry),
                "CreatedSince": if args.human {
                    created_since(entry.created.as_deref(), now)
                } else {
                    created_at.clone()
                },
                "CreatedAt": created_at,
                "CreatedBy": if no_trunc {
                    created_by
                } else {
                    ellipsis(&created_by, 45)
                },
                "Size": if args.human {
                    human_size(entry.size)
                } else {
                    entry.size.to_string()
                },
                "Comment": entry.comment,
            })
        })
        .collect();
    write_rendered(
        render_rows(template, &rows, HISTORY_HEADERS),
        HISTORY_ROW_TYPE,
        out,
    )
}

pub fn layers(
    store: &Store,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let usage = store.layer_usage().map_err(|e| e.to_string())?;
    let text = match format {
        OutputFormat::Json => usage
            .iter()
            .map(|layer| {
                json!({
                    "chain_id": layer.chain_id.to_string(),
                    "diff_id": layer.diff_id.to_string(),
                    "parent": layer.parent.as_ref().map(ToString::to_string),
                    "size": layer.size,
                    "files_size": layer.files_size,
                    "used_by": layer.used_by,
                })
                .to_string()
                    + "\n"
            })
            .collect(),
        OutputFormat::Table => {
            let short = |s: &str| -> String {
                s.split_once(':')
                    .map_or(s, |(_, hex)| hex)
                    .chars()
                    .take(12)
                    .collect()
            };
            let rows: Vec<Vec<String>> = usage
                .iter()
                .map(|layer| {
                    vec![
                        short(layer.chain_id.as_str()),
                        short(layer.diff_id.as_str()),
                        layer
                            .parent
                            .as_ref()
                            .map_or_else(|| "<none>".to_owned(), |p| short(p.as_str())),
                        human_size(layer.size),
                        layer.used_by.to_string(),
                    ]
                })
                .collect();
            table(&["CHAIN ID", "DIFF ID", "PARENT", "SIZE", "USED BY"], &rows)
        }
    };
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(store: &Store, args: &RmiArgs, out: &mut impl Write) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let mut left_for_gc = 0;
    let options = RemoveOptions {
        force: args.force,
        prune: !args.no_prune,
    };
    for name in &args.images {
        match store.remove_with(name, &options) {
            Ok(report) => {
                let _ = out.write_all(removed_lines(&report, "Untagged", "Deleted").as_bytes());
                left_for_gc += report.blobs_left_for_gc.len();
            }
            Err(e) => {
                // Keep the order of stdout and stderr when both are one stream.
                let _ = out.flush();
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    let _ = out.flush();
    note_left_for_gc(left_for_gc);
    code
}

/// Docker's lines for one image removed ([`RemoveReport::docker_lines`]),
/// with its words for them (`Untagged`, or `untagged` in a prune report).
fn removed_lines(report: &RemoveReport, untagged: &str, deleted: &str) -> String {
    let mut text = String::new();
    for line in report.docker_lines() {
        match line {
            Removed::Untagged(name) => text.push_str(&format!("{untagged}: {name}\n")),
            Removed::Deleted(id) => text.push_str(&format!("{deleted}: {id}\n")),
        }
    }
    text
}

/// Says on stderr (stdout stays Docker's) that blobs of the removed
/// images are left for `gc`.
fn note_left_for_gc(blobs: usize) {
    match blobs {
        0 => {}
        1 => eprintln!(
            "Note: 1 blob nothing uses any more (a manifest or config) stays until `imgstore gc`"
        ),
        n => eprintln!(
            "Note: {n} blobs nothing uses any more (manifests, configs) stay until `imgstore gc`"
        ),
    }
}

pub fn gc(store: &Store, out: &mut impl Write) -> Result<ExitCode, String> {
    let report = store.gc().map_err(|e| e.to_string())?;
    for note in &report.notes {
        eprintln!("Note: {note}");
    }
    writeln!(
        out,
        "Removed {} layer(s), {} blob(s), {} leftover file(s)\nTotal reclaimed space: {}",
        report.layers_removed,
        report.blobs_removed,
        report.orphan_files_removed,
        human_size(report.bytes_freed)
    )
    .map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

pub fn pin(store: &Store, names: &[String], pin: bool, out: &mut impl Write) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        let result = if pin {
            store.pin(name)
        } else {
            store.unpin(name)
        };
        match result {
            Ok(changed) => {
                for name in changed {
                    let verb = if pin { "Pinned" } else { "Unpinned" };
                    let _ = writeln!(out, "{verb}: {}", familiar(&name));
                }
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

/// Docker's `image prune`: asks first unless forced (no answer is no).
pub fn prune(
    store: &Store,
    all: bool,
    force: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    if !force {
        let warning = if all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        let _ = write!(out, "{warning}\nAre you sure you want to continue? [y/N] ");
        let _ = out.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y") {
            let _ = writeln!(out);
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = store.prune(all).map_err(|e| e.to_string())?;
    let mut text = String::new();
    if !report.images.is_empty() {
        text.push_str("Deleted Images:\n");
        for image in &report.images {
            text.push_str(&removed_lines(image, "untagged", "deleted"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.space_reclaimed)
    ));
    out.write_all(text.as_bytes()).map_err(output_error)?;
    out.flush().map_err(output_error)?;
    note_left_for_gc(report.blobs_left_for_gc.len());
    Ok(ExitCode::SUCCESS)
}

/// Prints what fsck found and did; exit 1 when it found problems it was
/// not asked to repair.
pub fn fsck(store: &Store, repair: bool, out: &mut impl Write) -> Result<ExitCode, String> {
    let report = store.fsck(repair).map_err(|e| e.to_string())?;
    let mut text = format!(
        "checked {} blob(s) ({}), {} layer(s), {} name(s): {}\n",
        report.blobs_checked,
        human_size(report.bytes_checked),
        report.layers_checked,
        report.names_checked,
        match report.problems.len() {
            0 => "clean".to_owned(),
            1 => "1 problem".to_owned(),
            n => format!("{n} problems"),
        }
    );
    for problem in &report.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    for repair in &report.repairs {
        text.push_str(&format!("repaired: {repair}\n"));
    }
    if let Some(gc) = &report.gc {
        text.push_str(&format!(
            "gc: removed {} layer(s), {} blob(s), {} leftover file(s), {}\n",
            gc.layers_removed,
            gc.blobs_removed,
            gc.orphan_files_removed,
            human_size(gc.bytes_freed)
        ));
    }
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(if report.is_clean() || repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `docker system df`: Docker's table of the four types (images hold
/// everything here: imgstore runs no containers and keeps no volumes or
/// build cache); `-v` per image, newest first; `--format json` Docker's
/// JSON (`{{json .}}`): a line per type, or with `-v` one object.
pub fn df(
    store: &Store,
    verbose: bool,
    format: Option<&str>,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let usage = store.disk_usage().map_err(|e| e.to_string())?;
    // Newest first, then by ID, as `docker system df -v` lists them: the
    // usage comes in ID order, so a stable sort by time keeps that order
    // among equal times.
    let mut images: Vec<&ImageUsage> = usage.images.iter().collect();
    images.sort_by_cached_key(|image| {
        std::cmp::Reverse(image.created.as_deref().and_then(parse_rfc3339))
    });
    let now = SystemTime::now();
    // With no containers nothing is active and every byte reclaimable, as
    // Docker counts it.
    let reclaimable = usage.layers_size;
    let images_row = [
        "Images".to_owned(),
        usage.images.len().to_string(),
        "0".to_owned(),
        human_size_precision(usage.layers_size, 4),
        // Docker adds the percentage only when there is a total.
        match (reclaimable * 100).checked_div(usage.layers_size) {
            Some(percent) => format!("{} ({percent}%)", human_size_precision(reclaimable, 4)),
            None => human_size_precision(reclaimable, 4),
        },
    ];
    let empty_row = |kind: &str| {
        [
            kind.to_owned(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ]
    };
    let type_rows = [
        images_row,
        empty_row("Containers"),
        empty_row("Local Volumes"),
        empty_row("Build Cache"),
    ];
    // Docker's `-v` image rows: the full ID but in the table.
    let image_rows = |full_id: bool| -> Vec<Vec<(&'static str, Value)>> {
        images
            .iter()
            .map(|image| {
                let [repository, tag] = first_tag(&image.references);
                let created = image.created.as_deref();
                vec![
                    ("Containers", json!("0")),
                    ("CreatedAt", json!(go_time_string(created))),
                    ("CreatedSince", json!(created_since(created, now))),
                    ("Digest", json!("")),
                    (
                        "ID",
                        json!(if full_id {
                            image.id.to_string()
                        } else {
                            short_id(&image.id)
                        }),
                    ),
                    ("Repository", json!(repository)),
                    ("SharedSize", json!(human_size(image.shared_size))),
                    ("Size", json!(human_size(image.size))),
                    ("Tag", json!(tag)),
                    ("UniqueSize", json!(human_size(image.unique_size))),
                    ("VirtualSize", json!(human_size(image.size))),
                ]
            })
            .collect()
    };
    let type_objects = || -> Vec<Value> {
        type_rows
            .iter()
            .map(|[kind, total, active, size, reclaimable]| {
                json!({
                    "Active": active,
                    "Reclaimable": reclaimable,
                    "Size": size,
                    "TotalCount": total,
                    "Type": kind,
                })
            })
            .collect()
    };
    let text = match ListFormat::parse(format) {
        ListFormat::Json if verbose => {
            let rows: Vec<String> = image_rows(true)
                .into_iter()
                .zip(&images)
                .map(|(mut fields, image)| {
                    let mut references = image.references.clone();
                    references.sort();
                    fields.extend([
                        ("References", json!(references)),
                        ("SizeBytes", json!(image.size)),
                        ("SharedSizeBytes", json!(image.shared_size)),
                        ("UniqueSizeBytes", json!(image.unique_size)),
                    ]);
                    ordered_json(&fields)
                })
                .collect();
            go_json_escapes(&format!(
                "{{\"Images\":[{}],\"Containers\":[],\"Volumes\":[],\"BuildCache\":[],\"LayersSize\":{},\"ContentSize\":{}}}\n",
                rows.join(","),
                usage.layers_size,
                usage.content_size
            ))
        }
        ListFormat::Json => type_rows
            .iter()
            .map(|[kind, total, active, size, reclaimable]| {
                ordered_json(&[
                    ("Active", json!(active)),
                    ("Reclaimable", json!(reclaimable)),
                    ("Size", json!(size)),
                    ("TotalCount", json!(total)),
                    ("Type", json!(kind)),
                ]) + "\n"
            })
            .collect(),
        // Docker runs a `-v` template once, on the whole usage, and prints
        // no newline after it.
        ListFormat::Template(template) if verbose => {
            let usage = json!({
                "Images": image_rows(true).into_iter().map(object).collect::<Vec<_>>(),
                "Containers": [],
                "Volumes": [],
                "BuildCache": [],
            });
            match render_inspect(&docker_format(template), &usage) {
                Ok(text) => text,
                Err(error @ TemplateError::Parse { .. }) => return Ok(template_failed(&error)),
                // Docker prints a failure while running without its prefix.
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        ListFormat::Template(template) => {
            return write_rendered(
                render_rows(template, &type_objects(), DF_HEADERS),
                DF_ROW_TYPE,
                out,
            );
        }
        ListFormat::Table if verbose => {
            let rows: Vec<Value> = image_rows(false).into_iter().map(object).collect();
            let images = match render_rows(DF_IMAGES_TABLE, &rows, IMAGES_HEADERS) {
                Ok(text) => text,
                Err(error) => return Ok(template_failed(&error)),
            };
            let containers = table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "LOCAL VOLUMES",
                    "SIZE",
                    "CREATED",
                    "STATUS",
                    "NAMES",
                ],
                &[],
            );
            let volumes = table(&["VOLUME NAME", "LINKS", "SIZE"], &[]);
            let cache = table(
                &[
                    "CACHE ID",
                    "CACHE TYPE",
                    "SIZE",
                    "CREATED",
                    "LAST USED",
                    "USAGE",
                    "SHARED",
                ],
                &[],
            );
            format!(
                "Images space usage:\n\n{images}\nContainers space usage:\n\n{containers}\nLocal Volumes space usage:\n\n{volumes}\nBuild cache usage: 0B\n\n{cache}"
            )
        }
        ListFormat::Table => {
            return write_rendered(
                render_rows(DF_TABLE, &type_objects(), DF_HEADERS),
                DF_ROW_TYPE,
                out,
            );
        }
    };
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

/// The repository and tag `docker system df -v` shows for an image: its
/// first tag only (in name order here), `<none>` when it has none.
fn first_tag(references: &[String]) -> [String; 2] {
    let mut tagged: Vec<Reference> = references
        .iter()
        .filter_map(|name| Reference::parse_normalized(name).ok())
        .filter(|reference| reference.tag().is_some() && reference.digest().is_none())
        .collect();
    tagged.sort_by_key(Reference::familiar_string);
    match tagged.first() {
        Some(reference) => [
            reference.familiar_name(),
            reference.tag().unwrap_or_default().to_owned(),
        ],
        None => ["<none>".to_owned(), "<none>".to_owned()],
    }
}
