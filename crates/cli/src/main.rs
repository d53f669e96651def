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
//! ```

mod format;
mod print;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use imgstore::{
    Backend, ExportFormat, ImageQuery, ImportOptions, Options, Platform, PlatformChoice, Store,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::print::{
    df, familiar, fsck, gc, history, images, inspect, layers, pin, print_images, prune, rmi,
};

/// mimalloc: a listing or an open of 10k images makes some 100k small
/// allocations; with it the whole `images -q` process took 13 ms instead
/// of 22 ms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local container image store.
#[derive(Debug, Parser)]
#[command(name = "imgstore", version, about, max_term_width = 100)]
struct Cli {
    /// The store's directory [default: $IMGSTORE_ROOT, else
    /// $XDG_DATA_HOME/imgstore, else ~/.local/share/imgstore]
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The backend the store keeps its state in [default: the one the
    /// root was created with; sqlite for a new root]
    #[arg(long, global = true, value_enum, env = "IMGSTORE_BACKEND")]
    backend: Option<BackendArg>,
    /// The namespace of the names (containerd's).
    #[arg(
        long,
        global = true,
        value_name = "NS",
        env = "IMGSTORE_NAMESPACE",
        default_value = "default"
    )]
    namespace: String,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// SQLite databases (content.db, images.db).
    Sqlite,
    /// Files in moby's layout (content/, imagedb/).
    Fs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// A table for people.
    Table,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SaveFormat {
    /// A `docker save` tar (`docker load` reads it).
    Docker,
    /// An oci-archive: an OCI image layout in a tar.
    Oci,
    /// An OCI image layout directory.
    OciLayout,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load images from OCI layouts, oci-archive or `docker save` tarballs
    /// (also gzip-compressed).
    Load {
        /// An OCI layout directory or an image tarball (repeatable).
        #[arg(short, long = "input", value_name = "FILE|DIR", required = true)]
        inputs: Vec<PathBuf>,
        /// From multi-platform indexes: `all`, or OS/ARCH[/VARIANT]
        /// [default: this host's]
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
    },
    /// List images.
    Images {
        /// Show all images (also intermediate ones).
        #[arg(short, long)]
        all: bool,
        /// Show digests.
        #[arg(long)]
        digests: bool,
        /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE,
        /// since=IMAGE, label=KEY[=VALUE] (repeatable).
        #[arg(short, long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Only show image IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show images as JSON, as `docker inspect` does.
    Inspect {
        /// Names or (short) IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show the history of an image.
    History {
        /// A name or (short) ID.
        image: String,
        /// Do not truncate CREATED BY.
        #[arg(long)]
        no_trunc: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// List stored layers and how many images use each.
    Layers {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Create a name TARGET that refers to SOURCE.
    Tag {
        /// A name or (short) ID.
        source: String,
        /// The new name.
        target: String,
    },
    /// Save images to a `docker save` tar, an oci-archive or an OCI layout.
    Save {
        /// The file (or, for oci-layout, directory) to write; must not exist.
        #[arg(short, long, value_name = "FILE", required = true)]
        output: PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value_t = SaveFormat::Docker)]
        format: SaveFormat,
        /// Names or (short) IDs; a name keeps its name.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show disk usage: layer bytes, shared and unique per image.
    Df {
        /// Per image: SIZE, SHARED SIZE, UNIQUE SIZE.
        #[arg(short, long)]
        verbose: bool,
        /// Output format (json: one object per image).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Remove names and images, as `docker rmi`.
    Rmi {
        /// Remove an image several names point at, by ID.
        #[arg(short, long)]
        force: bool,
        /// Names or (short) IDs.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Pin images (the CRI's pinned label): prune keeps them, rmi needs -f.
    Pin {
        /// Names or (short) IDs; an ID pins every name of the image.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Undo pin.
    Unpin {
        /// Names or (short) IDs; an ID unpins every name of the image.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove unused images: dangling ones, or with -a every image without
    /// child images (pinned images are kept).
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove unreferenced layers and unreachable blobs.
    Gc,
    /// Re-verify every blob, layer record and name; report (and repair).
    Fsck {
        /// Delete what is corrupt or dangling, then gc.
        #[arg(long)]
        repair: bool,
    },
}

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
    let root = cli.root.clone().unwrap_or_else(imgstore::default_root);
    let options = Options {
        backend: cli.backend.map(|backend| match backend {
            BackendArg::Sqlite => Backend::Sqlite,
            BackendArg::Fs => Backend::Fs,
        }),
        namespace: cli.namespace.clone(),
        // Only `load` makes a store; every other command on a root that
        // holds none says so (a mistyped --root creates nothing).
        create: matches!(cli.command, Command::Load { .. }),
        ..Options::default()
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    // A listing needs no open store when the catalog the last flush left is
    // current (see `imgstore::list_images_and_targets_cached`).
    if let Command::Images {
        all,
        digests,
        filters,
        format,
        quiet,
    } = &cli.command
    {
        let query = ImageQuery {
            all: *all,
            filters: filters.clone(),
        };
        let cached = if *digests {
            imgstore::list_images_and_targets_cached(&root, &options, &query)
        } else {
            imgstore::list_images_cached(&root, &options, &query)
                .map(|listed| listed.map(|listed| (listed, BTreeMap::new())))
        };
        if let Some((listed, targets)) = cached.map_err(|e| e.to_string())? {
            let result = print_images(&listed, &targets, *digests, *format, *quiet, &mut out);
            out.flush().map_err(output_error)?;
            return result;
        }
    }
    let store = Store::open_with(&root, options).map_err(|e| match e {
        imgstore::Error::NoStore { .. } => e.to_string(),
        e => format!("cannot open the store at {}: {e}", root.display()),
    })?;
    let result = match cli.command {
        Command::Load { inputs, platform } => {
            let platform = match platform.as_deref() {
                None => PlatformChoice::Host,
                Some("all") => PlatformChoice::All,
                Some(exact) => PlatformChoice::Exact(
                    exact
                        .parse::<Platform>()
                        .map_err(|e| format!("--platform {exact:?}: {e}"))?,
                ),
            };
            let options = ImportOptions::with_platform(platform);
            Ok(load(&store, &inputs, &options, cli.quiet, &mut out))
        }
        Command::Images {
            all,
            digests,
            filters,
            format,
            quiet,
        } => images(&store, all, digests, filters, format, quiet, &mut out),
        Command::Inspect { images } => Ok(inspect(&store, &images, &mut out)),
        Command::History {
            image,
            no_trunc,
            format,
        } => history(&store, &image, no_trunc, format, &mut out),
        Command::Layers { format } => layers(&store, format, &mut out),
        Command::Tag { source, target } => store
            .tag(&source, &target)
            .map(|_| ExitCode::SUCCESS)
            .map_err(|e| e.to_string()),
        Command::Rmi { force, images } => Ok(rmi(&store, &images, force, &mut out)),
        Command::Save {
            output,
            format,
            images,
        } => save(&store, &output, format, &images, cli.quiet),
        Command::Df { verbose, format } => df(&store, verbose, format, &mut out),
        Command::Pin { images } => Ok(pin(&store, &images, true, &mut out)),
        Command::Unpin { images } => Ok(pin(&store, &images, false, &mut out)),
        Command::Prune { all, force } => prune(&store, all, force, &mut out),
        Command::Gc => gc(&store, &mut out),
        Command::Fsck { repair } => fsck(&store, repair, &mut out),
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

fn load(
    store: &Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
    quiet: bool,
    out: &mut impl Write,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for input in inputs {
        let result = with_progress(quiet, format!("Loading {}", input.display()), || {
            store.import_with(input, options)
        });
        match result {
            Ok(imported) => {
                for image in imported {
                    for (name, previous) in &image.renamed {
                        let _ = writeln!(
                            out,
                            "The image {} already exists, renaming the old one with ID {previous} to empty string",
                            familiar(name)
                        );
                    }
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

fn save(
    store: &Store,
    output: &Path,
    format: SaveFormat,
    images: &[String],
    quiet: bool,
) -> Result<ExitCode, String> {
    let format = match format {
        SaveFormat::Docker => ExportFormat::DockerSave,
        SaveFormat::Oci => ExportFormat::OciArchive,
        SaveFormat::OciLayout => ExportFormat::OciLayout,
    };
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    with_progress(quiet, format!("Saving {}", output.display()), || {
        // `docker save -o` replaces an existing file.
        store.export_replacing(&images, output, format)
    })
    .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
