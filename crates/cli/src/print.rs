//! What the commands print: Docker's tables, JSON and messages, written
//! from the facade's views.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use imgstore::refs::reference::Reference;
use imgstore::{ImageQuery, ImageSummary, Store};
use serde_json::{Value, json};

use crate::format::{created_since, ellipsis, human_size, table};
use crate::{OutputFormat, output_error};

/// The name as Docker prints it (`busybox:latest`), or as stored when it
/// does not parse.
pub fn familiar(name: &str) -> String {
    imgstore::refs::reference::familiar(name).unwrap_or_else(|_| name.to_owned())
}

pub fn short_id(id: &imgstore::image::ImageId) -> String {
    id.digest().encoded().chars().take(12).collect()
}

/// One line of `images --format json`.
pub fn image_json(summary: &ImageSummary) -> Value {
    let mut references = summary.references.clone();
    references.sort();
    json!({
        "id": summary.id.to_string(),
        "references": references,
        "size": summary.size,
        "content_size": summary.content_size,
        "created": summary.created,
        "pinned": summary.pinned,
        "parent": summary.parent.as_ref().map(ToString::to_string),
    })
}

/// The rows an image shows in the `images` table: (repository, tag,
/// digest) per tag, one per digest name whose repository has no tag row,
/// `<none>` when it has no name.
pub fn image_rows(summary: &ImageSummary, targets: &BTreeMap<String, String>) -> Vec<[String; 3]> {
    let none = || "<none>".to_owned();
    let mut rows: Vec<[String; 3]> = Vec::new();
    let parsed: Vec<(&String, Reference)> = summary
        .references
        .iter()
        .filter_map(|name| Some((name, Reference::parse_normalized(name).ok()?)))
        .collect();
    for (name, reference) in &parsed {
        if let (Some(tag), None) = (reference.tag(), reference.digest()) {
            rows.push([
                reference.familiar_name(),
                tag.to_owned(),
                targets.get(*name).cloned().unwrap_or_else(none),
            ]);
        }
    }
    for (_, reference) in &parsed {
        if let Some(digest) = reference.digest() {
            let repository = reference.familiar_name();
            if !rows.iter().any(|row| row[0] == repository) {
                rows.push([repository, none(), digest.to_string()]);
            }
        }
    }
    if rows.is_empty() {
        rows.push([none(), none(), none()]);
    }
    rows
}

pub fn images(
    store: &Store,
    all: bool,
    digests: bool,
    filters: Vec<String>,
    format: OutputFormat,
    ids_only: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let listed = store
        .list_images(&ImageQuery { all, filters })
        .map_err(|e| e.to_string())?;
    let targets: BTreeMap<String, String> = if digests {
        store
            .refs()
            .list(store.namespace(), &[])
            .map_err(|e| e.to_string())?
            .iter()
            .map(|record| (record.name.clone(), record.target.digest.to_string()))
            .collect()
    } else {
        BTreeMap::new()
    };
    print_images(&listed, &targets, digests, format, ids_only, out)
}

/// Prints the listed images: JSON lines, IDs only, or Docker's table
/// (with the DIGEST column, from `targets`, when `digests`).
pub fn print_images(
    listed: &[ImageSummary],
    targets: &BTreeMap<String, String>,
    digests: bool,
    format: OutputFormat,
    ids_only: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let write =
        |out: &mut dyn Write, text: &str| out.write_all(text.as_bytes()).map_err(output_error);
    if format == OutputFormat::Json {
        let mut text = String::new();
        for summary in listed {
            text.push_str(&image_json(summary).to_string());
            text.push('\n');
        }
        write(out, &text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now();
    let mut rows = Vec::new();
    let mut ids = String::new();
    for summary in listed {
        let id = short_id(&summary.id);
        for [repository, tag, digest] in image_rows(summary, targets) {
            if ids_only {
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
    if ids_only {
        write(out, &ids)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header: &[&str] = if digests {
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    write(out, &table(header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// Pretty JSON with four-space indentation, as `docker inspect` prints.
pub fn pretty(value: &impl serde::Serialize) -> Result<String, String> {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

pub fn inspect(store: &Store, names: &[String], out: &mut impl Write) -> ExitCode {
    let mut views = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in names {
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

pub fn history(
    store: &Store,
    image: &str,
    no_trunc: bool,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let entries = store.history(image).map_err(|e| e.to_string())?;
    let text = match format {
        OutputFormat::Json => entries
            .iter()
            .map(|entry| {
                json!({
                    "id": entry.id.as_ref().map(ToString::to_string),
                    "created": entry.created,
                    "created_by": entry.created_by,
                    "size": entry.size,
                    "comment": entry.comment,
                    "empty_layer": entry.empty_layer,
                })
                .to_string()
                    + "\n"
            })
            .collect(),
        OutputFormat::Table => {
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|entry| {
                    let created_by = entry.created_by.replace('\t', " ");
                    vec![
                        entry
                            .id
                            .as_ref()
                            .map_or_else(|| "<missing>".to_owned(), short_id),
                        created_since(entry.created.as_deref(), now),
                        if no_trunc {
                            created_by
                        } else {
                            ellipsis(&created_by, 45)
                        },
                        human_size(entry.size),
                        entry.comment.clone(),
                    ]
                })
                .collect();
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &rows,
            )
        }
    };
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

pub fn layers(
    store: &Store,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let usage = store.layer_usage();
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

pub fn rmi(store: &Store, names: &[String], force: bool, out: &mut impl Write) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match store.remove(name, force) {
            Ok(report) => {
                for untagged in &report.untagged {
                    let _ = writeln!(out, "Untagged: {}", familiar(untagged));
                }
                for deleted in &report.deleted {
                    let _ = writeln!(out, "Deleted: {deleted}");
                }
            }
            Err(e) => {
                // Keep the order of stdout and stderr when both are one stream.
                let _ = out.flush();
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
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
    if !report.untagged.is_empty() || !report.deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        for name in &report.untagged {
            text.push_str(&format!("untagged: {}\n", familiar(name)));
        }
        for id in &report.deleted {
            text.push_str(&format!("deleted: {id}\n"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.space_reclaimed)
    ));
    out.write_all(text.as_bytes()).map_err(output_error)?;
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

/// `docker system df` for images; `-v` per image, `--format json` one
/// object per image.
pub fn df(
    store: &Store,
    verbose: bool,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let usage = store.disk_usage().map_err(|e| e.to_string())?;
    let text = match format {
        OutputFormat::Json => usage
            .images
            .iter()
            .map(|image| {
                let mut references = image.references.clone();
                references.sort();
                json!({
                    "id": image.id.to_string(),
                    "references": references,
                    "size": image.size,
                    "shared_size": image.shared_size,
                    "unique_size": image.unique_size,
                })
                .to_string()
                    + "\n"
            })
            .collect(),
        OutputFormat::Table if verbose => {
            let created: BTreeMap<_, _> = store
                .images()
                .into_iter()
                .map(|summary| (summary.id.clone(), summary))
                .collect();
            let now = SystemTime::now();
            let no_targets = BTreeMap::new();
            let mut rows = Vec::new();
            for image in &usage.images {
                let Some(summary) = created.get(&image.id) else {
                    continue;
                };
                for [repository, tag, _] in image_rows(summary, &no_targets) {
                    rows.push(vec![
                        repository,
                        tag,
                        short_id(&image.id),
                        created_since(summary.created.as_deref(), now),
                        human_size(image.size),
                        human_size(image.shared_size),
                        human_size(image.unique_size),
                    ]);
                }
            }
            format!(
                "Images space usage:\n\n{}",
                table(
                    &[
                        "REPOSITORY",
                        "TAG",
                        "IMAGE ID",
                        "CREATED",
                        "SIZE",
                        "SHARED SIZE",
                        "UNIQUE SIZE"
                    ],
                    &rows
                )
            )
        }
        OutputFormat::Table => {
            let percent = (usage.reclaimable * 100)
                .checked_div(usage.layers_size)
                .unwrap_or(0);
            table(
                &["TYPE", "TOTAL", "SIZE", "RECLAIMABLE"],
                &[vec![
                    "Images".to_owned(),
                    usage.images.len().to_string(),
                    human_size(usage.layers_size),
                    format!("{} ({percent}%)", human_size(usage.reclaimable)),
                ]],
            )
        }
    };
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}
