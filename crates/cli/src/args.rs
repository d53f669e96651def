//! The command line's arguments: clap's derive types for every command.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A local container image store.
#[derive(Debug, Parser)]
#[command(name = "imgstore", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// The store's directory [default: $IMGSTORE_ROOT, else
    /// $XDG_DATA_HOME/imgstore, else ~/.local/share/imgstore]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// The backend the store keeps its state in [default: the one the
    /// root was created with; sqlite for a new root]
    #[arg(long, global = true, value_enum, env = "IMGSTORE_BACKEND")]
    pub(crate) backend: Option<BackendArg>,
    /// The namespace of the names (containerd's).
    #[arg(
        long,
        global = true,
        value_name = "NS",
        env = "IMGSTORE_NAMESPACE",
        default_value = "default"
    )]
    pub(crate) namespace: String,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendArg {
    /// SQLite databases (content.db, images.db).
    Sqlite,
    /// Files in moby's layout (content/, imagedb/).
    Fs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// A table for people.
    Table,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SaveFormat {
    /// A `docker save` tar (`docker load` reads it).
    Docker,
    /// An oci-archive: an OCI image layout in a tar.
    Oci,
    /// An OCI image layout directory.
    OciLayout,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
