//! `imgstore`: the command line of the imgstore facade, with the output a
//! Docker user expects (`Loaded image: NAME`, the `images` table,
//! `Untagged:` / `Deleted:` lines, `docker inspect` JSON).
//!
//! The binary is thin: it parses arguments (clap) and prints; everything it
//! does is a call on [`imgstore::Store`] a library user could make too.
//! Exit codes: 0 success, 1 an operation failed (`Error: <message>` on
//! stderr), 2 a usage error.
//!
//! ```text
//! imgstore load -i corpus/oci/main -i corpus/docker/child.docker.tar
//! imgstore images --format json
//! imgstore rmi registry.demo.test/demo/sibling:v1
//! imgstore save registry.demo.test/demo/base:v1 | ssh host imgstore load
//! imgstore image ls --no-trunc; imgstore system df
//! ```
//!
//! The arguments are defined in the crate's library (`args.rs`), shared
//! with `imgstore completion` and the man pages of `cargo xtask dist`.

mod format;
mod registry;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use imgstore::refs::reference::Reference;
use imgstore::{
    Backend, ExportFormat, ImageQuery, ImageSummary, ImportOptions, Options, Platform,
    PlatformChoice, RemoveOptions, Store,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use imgstore_cli::args::{
    BackendArg, Cli, Command, HistoryArgs, ImagesArgs, OutputFormat, RmiArgs, SaveArgs, SaveFormat,
};

use crate::format::{created_at, created_since, ellipsis, human_size, table};

/// mimalloc: a listing or an open of 10k images makes some 100k small
/// allocations; with it the whole `images -q` process took 13 ms instead
/// of 22 ms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What [`output_error`] says for a closed stdout, which `run` forgives.
const BROKEN_PIPE: &str = "write output: broken pipe";

/// The message of a failed write to stdout.
fn output_error(error: std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        BROKEN_PIPE.to_owned()
    } else {
        format!("write output: {error}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A reader that went away (`imgstore inspect x | head`) is no failure.
        Err(message) if message == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; `Err` is a failure before any output (opening the
/// store, a bad filter). Commands over several arguments report each
/// failure themselves and return exit code 1.
fn run(cli: Cli) -> Result<ExitCode, String> {
    let command = cli.command.canonical();
    // What needs no store: completions, and Docker's refusals to read a
    // tar from or write one to a terminal.
    match &command {
        Command::Completion { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut imgstore_cli::command(), "imgstore", &mut out);
            out.flush().map_err(output_error)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Login(args) => return registry::login(args),
        Command::Logout { server } => return registry::logout(server.as_deref()),
        Command::Load(args) if reads_stdin(&args.inputs) && std::io::stdin().is_terminal() => {
            return Err("requested load from stdin, but stdin is empty".to_owned());
        }
        Command::Save(args) if writes_stdout(&args.output) && std::io::stdout().is_terminal() => {
            return Err(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect".to_owned(),
            );
        }
        _ => {}
    }
    let root = cli.root.clone().unwrap_or_else(imgstore::default_root);
    let options = Options {
        backend: cli.backend.map(|backend| match backend {
            BackendArg::Sqlite => Backend::Sqlite,
            BackendArg::Fs => Backend::Fs,
        }),
        namespace: cli.namespace.clone(),
        // Only `load` and `pull` make a store; every other command on a root that
        // holds none says so (a mistyped --root creates nothing).
        create: matches!(command, Command::Load(_) | Command::Pull(_)),
        ..Options::default()
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    // A listing needs no open store when the catalog the last flush left is
    // current (see `imgstore::list_images_and_targets_cached`).
    if let Command::Images(args) = &command {
        let query = image_query(args);
        let cached = if args.digests {
            imgstore::list_images_and_targets_cached(&root, &options, &query)
        } else {
            imgstore::list_images_cached(&root, &options, &query)
                .map(|listed| listed.map(|listed| (listed, BTreeMap::new())))
        };
        if let Some((listed, targets)) = cached.map_err(|e| e.to_string())? {
            let result = print_images(&listed, &targets, args, &mut out);
            out.flush().map_err(output_error)?;
            return result;
        }
    }
    let store = Store::open_with(&root, options).map_err(|e| match e {
        imgstore::Error::NoStore { .. } => e.to_string(),
        e => format!("cannot open the store at {}: {e}", root.display()),
    })?;
    let quiet = cli.quiet;
    let result = match command {
        Command::Load(args) => {
            let platform = match args.platform.as_deref() {
                None => PlatformChoice::Host,
                Some("all") => PlatformChoice::All,
                Some(exact) => PlatformChoice::Exact(
                    exact
                        .parse::<Platform>()
                        .map_err(|e| format!("--platform {exact:?}: {e}"))?,
                ),
            };
            let options = ImportOptions::with_platform(platform);
            Ok(load(
                &store,
                &args.inputs,
                &options,
                quiet || args.quiet,
                &mut out,
            ))
        }
        Command::Pull(args) => registry::pull(&store, &args, &mut out),
        Command::Push(args) => registry::push(&store, &args, &mut out),
        Command::Images(args) => images(&store, &args, &mut out),
        Command::Inspect(args) => Ok(inspect(&store, &args.images, &mut out)),
        Command::History(args) => history(&store, &args, &mut out),
        Command::Layers { format } => layers(&store, format, &mut out),
        Command::Tag(args) => store
            .tag(&args.source, &args.target)
            .map(|_| ExitCode::SUCCESS)
            .map_err(|e| e.to_string()),
        Command::Rmi(args) => Ok(rmi(&store, &args, &mut out)),
        Command::Save(args) => save(&store, &args, quiet || args.quiet, &mut out),
        Command::Df(args) => df(&store, args.verbose, args.format, &mut out),
        Command::Pin { images } => Ok(pin(&store, &images, true, &mut out)),
        Command::Unpin { images } => Ok(pin(&store, &images, false, &mut out)),
        Command::Prune(args) => prune(&store, args.all, args.force, &mut out),
        Command::Gc => gc(&store, &mut out),
        Command::Fsck { repair } => fsck(&store, repair, &mut out),
        Command::Image { .. }
        | Command::System { .. }
        | Command::Completion { .. }
        | Command::Login(_)
        | Command::Logout { .. } => {
            unreachable!(
                "canonical() maps image and system commands; completion, login and logout returned above"
            )
        }
    };
    out.flush().map_err(output_error)?;
    // The next `images` reads the catalog instead of opening the store.
    store.flush_catalog();
    // Every change is durable and its locks are released by now; the
    // process ends next, and the kernel closes files and frees memory
    // faster than dropping 10k images' worth of state one by one (about
    // 25 ms). SQLite treats the unclosed connections like a crash it
    // recovers from, which every committed write survives.
    std::mem::forget(store);
    result
}

/// `-` names standard input or output, as for Docker's `-i` and `-o`.
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `load` reads standard input: no `-i`, or `-i -`.
fn reads_stdin(inputs: &[PathBuf]) -> bool {
    inputs.is_empty() || inputs.iter().any(|input| is_stdio(input))
}

/// Whether `save` writes to standard output: no `-o`, or `-o -`.
fn writes_stdout(output: &Option<PathBuf>) -> bool {
    output.as_deref().is_none_or(is_stdio)
}

/// The listing `images` asks for: the positional `REPOSITORY[:TAG]` is a
/// reference filter, as Docker adds it.
fn image_query(args: &ImagesArgs) -> ImageQuery {
    let mut filters = args.filters.clone();
    if let Some(reference) = &args.reference {
        filters.push(format!("reference={reference}"));
    }
    ImageQuery {
        all: args.all,
        filters,
    }
}

/// A spinner on stderr while `work` runs, when stderr is a terminal and
/// progress is not silenced.
fn with_progress<T>(quiet: bool, message: String, work: impl FnOnce() -> T) -> T {
    if quiet || !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    let result = work();
    bar.finish_and_clear();
    result
}

/// The name as Docker prints it (`busybox:latest`), or as stored when it
/// does not parse.
fn familiar(name: &str) -> String {
    imgstore::refs::reference::familiar(name).unwrap_or_else(|_| name.to_owned())
}

fn short_id(id: &imgstore::image::ImageId) -> String {
    id.digest().encoded().chars().take(12).collect()
}

fn load(
    store: &Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
    quiet: bool,
    out: &mut impl Write,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let stdin_only = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin_only[..]
    } else {
        inputs
    };
    for input in inputs {
        let result = if is_stdio(input) {
            with_progress(quiet, "Loading from stdin".to_owned(), || {
                store.import_reader(std::io::stdin().lock(), "stdin", options)
            })
        } else {
            with_progress(quiet, format!("Loading {}", input.display()), || {
                store.import_with(input, options)
            })
        };
        match result {
            Ok(imported) => {
                for image in imported {
                    if image.names.is_empty() {
                        let _ = writeln!(out, "Loaded image ID: {}", image.id);
                    }
                    for name in &image.names {
                        let _ = writeln!(out, "Loaded image: {}", familiar(name));
                    }
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

/// One line of `images --format json`.
fn image_json(summary: &ImageSummary) -> Value {
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
fn image_rows(summary: &ImageSummary, targets: &BTreeMap<String, String>) -> Vec<[String; 3]> {
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

fn images(store: &Store, args: &ImagesArgs, out: &mut impl Write) -> Result<ExitCode, String> {
    let listed = store
        .list_images(&image_query(args))
        .map_err(|e| e.to_string())?;
    let targets: BTreeMap<String, String> = if args.digests {
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
    print_images(&listed, &targets, args, out)
}

/// Prints the listed images: JSON lines, IDs only, or Docker's table
/// (with the DIGEST column, from `targets`, when `digests`).
fn print_images(
    listed: &[ImageSummary],
    targets: &BTreeMap<String, String>,
    args: &ImagesArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let (digests, format, ids_only) = (args.digests, args.format, args.quiet);
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
        let id = if args.no_trunc {
            summary.id.to_string()
        } else {
            short_id(&summary.id)
        };
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
fn pretty(value: &impl serde::Serialize) -> Result<String, String> {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn inspect(store: &Store, names: &[String], out: &mut impl Write) -> ExitCode {
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

/// `docker history`: the table (`--no-trunc`: full IDs and CREATED BY;
/// `--human=false`: CREATED AT in RFC 3339 and sizes in bytes), or with
/// `-q` the IDs only (`<missing>` for layers without an image).
fn history(store: &Store, args: &HistoryArgs, out: &mut impl Write) -> Result<ExitCode, String> {
    let entries = store.history(&args.image).map_err(|e| e.to_string())?;
    let no_trunc = args.no_trunc;
    let id = |entry: &imgstore::HistoryEntry| match &entry.id {
        None => "<missing>".to_owned(),
        Some(id) if no_trunc => id.to_string(),
        Some(id) => short_id(id),
    };
    let text = match args.format {
        OutputFormat::Table if args.quiet => entries.iter().map(|entry| id(entry) + "\n").collect(),
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
                        id(entry),
                        if args.human {
                            created_since(entry.created.as_deref(), now)
                        } else {
                            created_at(entry.created.as_deref())
                        },
                        if no_trunc {
                            created_by
                        } else {
                            ellipsis(&created_by, 45)
                        },
                        if args.human {
                            human_size(entry.size)
                        } else {
                            entry.size.to_string()
                        },
                        entry.comment.clone(),
                    ]
                })
                .collect();
            let created = if args.human { "CREATED" } else { "CREATED AT" };
            table(&["IMAGE", created, "CREATED BY", "SIZE", "COMMENT"], &rows)
        }
    };
    out.write_all(text.as_bytes()).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

fn layers(store: &Store, format: OutputFormat, out: &mut impl Write) -> Result<ExitCode, String> {
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

fn rmi(store: &Store, args: &RmiArgs, out: &mut impl Write) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let options = RemoveOptions {
        force: args.force,
        prune: !args.no_prune,
    };
    for name in &args.images {
        match store.remove_with(name, &options) {
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

fn gc(store: &Store, out: &mut impl Write) -> Result<ExitCode, String> {
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

fn pin(store: &Store, names: &[String], pin: bool, out: &mut impl Write) -> ExitCode {
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
fn prune(store: &Store, all: bool, force: bool, out: &mut impl Write) -> Result<ExitCode, String> {
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
fn fsck(store: &Store, repair: bool, out: &mut impl Write) -> Result<ExitCode, String> {
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

/// `docker save`: to the file `-o` names (replaced, as Docker does), else
/// to standard output (`run` has refused a terminal), streamed.
fn save(
    store: &Store,
    args: &SaveArgs,
    quiet: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let format = match args.format {
        SaveFormat::Docker => ExportFormat::DockerSave,
        SaveFormat::Oci => ExportFormat::OciArchive,
        SaveFormat::OciLayout => ExportFormat::OciLayout,
    };
    let images: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let result = match args.output.as_deref().filter(|output| !is_stdio(output)) {
        Some(output) => with_progress(quiet, format!("Saving {}", output.display()), || {
            // `docker save -o` replaces an existing file.
            store.export_replacing(&images, output, format)
        }),
        None => with_progress(quiet, "Saving to stdout".to_owned(), || {
            store.export_to_writer(&images, &mut *out, "stdout", format)
        }),
    };
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // A reader that went away (`imgstore save x | head -c 10`) is no
        // failure, as for every other command's output.
        Err(imgstore::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Err(BROKEN_PIPE.to_owned())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `docker system df` for images; `-v` per image, `--format json` one
/// object per image.
fn df(
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
